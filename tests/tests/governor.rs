//! Model-based property tests of `heidi_core::governor::Governor` against a model written
//! straight from the rules in docs/CORE.md.
//!
//! Invariants: every answer matches the model; starts are at least `start_gap` apart; nothing
//! starts while a limit is reached; a hold always says a `retry_at` in the future and never
//! before the start gap ends; a reject happens exactly when the queue is full; `decide` never
//! changes state.

use heidi_core::governor::{Admission, Governor, GovernorConfig, HoldReason, Load, RejectReason};
use heidi_core::{Duration, Instant};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Admit(Load),
    Decide(Load),
    RecordStart,
}

/// Loads clustered around the limits so boundaries are hit often.
fn load() -> impl Strategy<Value = Load> {
    let around = |limit: u32| prop_oneof![Just(limit - 1), Just(limit), 0..limit, limit..limit * 2];
    (around(10), around(100), around(850), around(900)).prop_map(|(r, q, c, m)| Load {
        running: r,
        queued: q,
        cpu_permille: c as u16,
        mem_permille: m as u16,
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..300_000).prop_map(Op::Advance),
        6 => load().prop_map(Op::Admit),
        2 => load().prop_map(Op::Decide),
        1 => Just(Op::RecordStart),
    ]
}

fn config_strategy() -> impl Strategy<Value = GovernorConfig> {
    (
        1u32..=8,
        1u32..=120,
        prop_oneof![Just(0u16), 600u16..=1000],
        prop_oneof![Just(0u16), 600u16..=1000],
        1u64..=2_000,
        0u64..=500,
    )
        .prop_map(
            |(running_max, queue_max, cpu, mem, cooldown_ms, gap_ms)| GovernorConfig {
                queue_max,
                running_max,
                cpu_hold_permille: cpu,
                mem_hold_permille: mem,
                cooldown: Duration::from_millis(cooldown_ms),
                start_gap: Duration::from_millis(gap_ms),
            },
        )
}

struct Model {
    c: GovernorConfig,
    last_start: Option<Instant>,
}

impl Model {
    fn decide(&self, now: Instant, l: Load) -> Admission {
        let c = &self.c;
        let gap_end = self
            .last_start
            .map(|t| t + c.start_gap)
            .filter(|&end| now < end);
        let hold = |reason, retry_at: Instant| Admission::Hold {
            retry_at: retry_at.max(gap_end.unwrap_or(retry_at)),
            reason,
        };
        if l.queued >= c.queue_max {
            Admission::Reject {
                reason: RejectReason::QueueFull,
            }
        } else if l.running >= c.running_max {
            hold(HoldReason::Running, now + c.cooldown)
        } else if c.cpu_hold_permille != 0 && l.cpu_permille >= c.cpu_hold_permille {
            hold(HoldReason::Cpu, now + c.cooldown)
        } else if c.mem_hold_permille != 0 && l.mem_permille >= c.mem_hold_permille {
            hold(HoldReason::Mem, now + c.cooldown)
        } else if let Some(end) = gap_end {
            hold(HoldReason::StartGap, end)
        } else {
            Admission::Start
        }
    }
}

fn check_answer(
    c: &GovernorConfig,
    now: Instant,
    l: Load,
    last_start: Option<Instant>,
    answer: Admission,
) -> Result<(), TestCaseError> {
    let limited = l.running >= c.running_max
        || (c.cpu_hold_permille != 0 && l.cpu_permille >= c.cpu_hold_permille)
        || (c.mem_hold_permille != 0 && l.mem_permille >= c.mem_hold_permille);
    match answer {
        Admission::Start => {
            prop_assert!(!limited && l.queued < c.queue_max);
            if let Some(t) = last_start {
                prop_assert!(now >= t + c.start_gap, "start within the gap");
            }
        }
        Admission::Hold { retry_at, .. } => {
            prop_assert!(retry_at > now);
            if let Some(t) = last_start {
                prop_assert!(retry_at >= t + c.start_gap);
            }
        }
        Admission::Reject { .. } => prop_assert!(l.queued >= c.queue_max),
    }
    Ok(())
}

fn against_model(config: GovernorConfig, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut g = Governor::new(config).unwrap();
    let mut model = Model {
        c: config,
        last_start: None,
    };
    let mut now = Instant::from_secs(1);
    for op in ops {
        match *op {
            Op::Advance(us) => now += Duration::from_micros(us),
            Op::Admit(load) => {
                let want = model.decide(now, load);
                let got = g.admit(now, load);
                prop_assert_eq!(got, want, "admit {:?} at {}", load, now);
                check_answer(&config, now, load, model.last_start, got)?;
                if got == Admission::Start {
                    model.last_start = Some(now);
                }
            }
            Op::Decide(load) => {
                let got = g.decide(now, load);
                prop_assert_eq!(got, model.decide(now, load));
                check_answer(&config, now, load, model.last_start, got)?;
            }
            Op::RecordStart => {
                g.record_start(now);
                model.last_start = Some(now);
            }
        }
        prop_assert_eq!(g.last_start(), model.last_start);
    }
    Ok(())
}

fn proptest_config() -> ProptestConfig {
    heidi_tests::proptest_config(256)
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn governor_matches_the_model(
        config in config_strategy(),
        ops in prop::collection::vec(op(), 0..200),
    ) {
        against_model(config, &ops)?;
    }

    #[test]
    fn default_governor_matches_the_model(ops in prop::collection::vec(op(), 0..200)) {
        against_model(GovernorConfig::default(), &ops)?;
    }
}
