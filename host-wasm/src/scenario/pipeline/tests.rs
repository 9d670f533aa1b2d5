//! Tests of the `pipeline` scenario.

use super::*;

fn sim(seed: u64, p: Params) -> PipelineTrace {
    simulate(seed, 10_000_000, p).unwrap()
}

#[test]
fn a_clean_run_completes_every_round_with_a_verified_journal() {
    let t = sim(
        1,
        Params {
            fail_permille: 0,
            ..Params::default()
        },
    );
    let s = &t.summary;
    assert!(s.complete, "{s:?}");
    assert_eq!(s.final_state, "IDLE");
    assert_eq!(s.stage_runs, 3 * 4);
    assert_eq!((s.stage_failures, s.stage_timeouts, s.restarts), (0, 0, 0));
    assert!(s.journal_verified, "{s:?}");
    assert_eq!(s.journal_verified_lines, s.journal_lines);
    // pipeline_start + 12 × (stage_start + stage_end) + pipeline_complete.
    assert_eq!(s.journal_lines, 1 + 24 + 1);
    let journal = t.journal.as_ref().unwrap();
    assert_eq!(journal.len() as u64, s.journal_lines);
    assert!(
        journal[0].starts_with(
            r#"{"event_version":"1.0","ts":"2026-01-01T00:00:00.000Z","run_id":"sim-1""#
        ),
        "{}",
        journal[0]
    );
    assert!(journal[0].ends_with(r#""prev_hash":"sim-1"}"#));
    assert!(
        t.events.iter().all(|e| !matches!(e, Event::Refused { .. })),
        "{:?}",
        t.events
    );
    assert!(!t.step_cap_reached);
    assert_eq!(t.ticks.last().unwrap().state, "IDLE");
}

#[test]
fn a_failure_errors_then_the_operator_restarts() {
    let t = sim(
        2,
        Params {
            fail_permille: 1_000,
            restarts: 2,
            ..Params::default()
        },
    );
    let s = &t.summary;
    assert!(!s.complete);
    assert_eq!(s.final_state, "ERROR");
    assert_eq!(s.restarts, 2);
    assert_eq!(s.stage_runs, 3, "each start fails in generate");
    assert!(s.journal_verified);
    let errors = t
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Pipeline {
                    event_type: "pipeline_error",
                    error: Some("stage_failed"),
                    ..
                }
            )
        })
        .count();
    assert_eq!(errors, 3);
    assert!(
        t.events.iter().all(|e| !matches!(e, Event::Refused { .. })),
        "{:?}",
        t.events
    );
}

#[test]
fn a_stage_past_its_timeout_is_killed() {
    let p = Params {
        fail_permille: 0,
        train_ms: 400_000,
        restarts: 0,
        ..Params::default()
    };
    let t = sim(3, p);
    assert_eq!(t.summary.stage_timeouts, 1);
    assert_eq!(t.summary.final_state, "ERROR");
    assert!(t.events.iter().any(|e| matches!(
        e,
        Event::Pipeline {
            error: Some("stage_timeout"),
            ..
        }
    )));
    assert!(t.summary.journal_verified);
}

#[test]
fn collect_mode_waits_for_train_now() {
    let p = Params {
        mode: "collect".into(),
        fail_permille: 0,
        rounds: 2,
        unit_tests: true,
        ..Params::default()
    };
    let t = sim(4, p);
    let s = &t.summary;
    assert!(s.complete, "{:?}", t.events);
    assert_eq!(s.stage_runs, 2 * 5);
    assert!(s.journal_verified);
    assert!(
        t.ticks.iter().any(|k| k.state == "IDLE" && k.round == 1)
            || t.ticks.iter().any(|k| k.stage == Some("unit_test"))
    );
}

#[test]
fn the_journal_is_tamper_evident() {
    let t = sim(
        5,
        Params {
            fail_permille: 0,
            ..Params::default()
        },
    );
    let mut journal: Vec<u8> = t.journal.unwrap().join("\n").into_bytes();
    journal.push(b'\n');
    let mut v = Verifier::new();
    assert!(v.feed(&journal).and_then(|()| v.finish()).is_ok());
    let at = journal.iter().position(|&b| b == b'3').unwrap();
    journal[at] = b'4';
    let mut v = Verifier::new();
    assert!(v.feed(&journal).and_then(|()| v.finish()).is_err());
}

#[test]
fn limits_are_reached_and_named() {
    use crate::scenario::testing::{assert_limits, assert_refused};
    use serde_json::json;
    assert_limits(
        "pipeline",
        &[
            (
                json!({"rounds": MAX_ROUNDS}),
                json!({"rounds": MAX_ROUNDS + 1}),
                "rounds",
            ),
            (
                json!({"restarts": MAX_RESTARTS}),
                json!({"restarts": MAX_RESTARTS + 1}),
                "restarts",
            ),
            (
                json!({"train_ms": MAX_STAGE_MS}),
                json!({"train_ms": MAX_STAGE_MS + 1}),
                "train_ms",
            ),
            (
                json!({"stage_timeout_ms": MAX_STAGE_MS}),
                json!({"stage_timeout_ms": MAX_STAGE_MS + 1}),
                "stage_timeout_ms",
            ),
            (
                json!({"train_now_delay_ms": MAX_STAGE_MS}),
                json!({"train_now_delay_ms": MAX_STAGE_MS + 1}),
                "train_now_delay_ms",
            ),
            (
                json!({"restart_delay_ms": MAX_STAGE_MS}),
                json!({"restart_delay_ms": MAX_STAGE_MS + 1}),
                "restart_delay_ms",
            ),
            (
                json!({"jitter_permille": 1_000}),
                json!({"jitter_permille": 1_001}),
                "jitter_permille",
            ),
        ],
    );
    assert_refused(
        "pipeline",
        &[
            (json!({"mode": "turbo"}), "mode"),
            // Core's rules, with core's message.
            (json!({"rounds": 0}), "rounds: rounds must be in 1..="),
            (
                json!({"stage_timeout_ms": 0}),
                "stage_timeout_ms: stage_timeouts.",
            ),
            (json!({"train_ms": 0}), "train_ms"),
        ],
    );
}

#[test]
fn timers_fire_once_per_deadline() {
    // Every stage has a timeout deadline; stale timer events are ignored, so the steps stay
    // close to the handful of events a run needs.
    let t = sim(
        1,
        Params {
            fail_permille: 0,
            ..Params::default()
        },
    );
    let ticks = t.ticks.len() as u64;
    let runs = t.summary.stage_runs;
    // Per stage run: its end and at most one live and one stale timer event; plus the
    // start and the tick boundaries.
    assert!(t.steps <= 1 + ticks + 3 * runs, "{} steps", t.steps);
}
