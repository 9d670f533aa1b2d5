//! BREAKER_ACQUIRE and BREAKER_RECORD.

use heidi_core::Instant;
use heidi_core::proto::Method::{BreakerAcquire as Acquire, BreakerRecord as Record};

use super::{SEEDS, SMALL, at, err, kernel, ok};
use crate::kernel::{BREAKERS_MAX, Kernel, KernelCapacity, PERMIT_TTL_MS, Policy};

const UP: &str = r#"{"name":"upstream"}"#;

fn permit(v: &serde_json::Value) -> String {
    v["permit"].as_str().expect("permit is a string").to_owned()
}

fn record(k: &mut Kernel, now: Instant, permit: &str, outcome: &str) -> serde_json::Value {
    let p = format!(r#"{{"name":"upstream","permit":"{permit}","outcome":"{outcome}"}}"#);
    ok(k, now, Record, &p)
}

#[test]
fn trips_opens_half_opens_on_time_and_closes() {
    let mut k = kernel();
    let v = ok(&mut k, at(1), Acquire, UP);
    assert_eq!(
        (v["allowed"].clone(), v["probe"].clone()),
        (true.into(), false.into())
    );
    assert_eq!(v["state"], "closed");
    assert_eq!(
        record(&mut k, at(1), &permit(&v), "success")["recorded"],
        "counted"
    );
    for _ in 0..5 {
        let p = permit(&ok(&mut k, at(2), Acquire, UP));
        record(&mut k, at(2), &p, "failure");
    }
    let v = err(&mut k, at(12), Acquire, UP, "CIRCUIT_OPEN");
    assert_eq!(v["retry_after_ms"], 50_000); // open for 60 s from t = 2 s
    assert_eq!(v["state"], "open");
    assert_eq!(k.stats().breakers, vec![("upstream".to_owned(), "open")]);
    // Half-open on time, without a call.
    assert_eq!(k.poll_timeout(), Some(at(62)));
    k.tick(at(62));
    assert_eq!(
        k.stats().breakers,
        vec![("upstream".to_owned(), "half_open")]
    );
    let v = ok(&mut k, at(63), Acquire, UP);
    assert_eq!(v["probe"], true);
    // The single probe slot is taken.
    err(&mut k, at(63), Acquire, UP, "CIRCUIT_OPEN");
    let v = record(&mut k, at(63), &permit(&v), "success");
    assert_eq!(v["state"], "closed");
    let events: Vec<_> = std::iter::from_fn(|| k.poll_journal()).collect();
    let messages: Vec<_> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "breaker upstream: closed -> open",
            "breaker upstream: open -> half_open",
            "breaker upstream: half_open -> closed"
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e.event_type == "breaker_transition" && e.stage == "kernel")
    );
}

#[test]
fn permits_round_trip_exactly_and_count_once() {
    let mut k = kernel();
    let v = ok(&mut k, at(1), Acquire, UP);
    let p = permit(&v);
    let id: u64 = p.parse().expect("decimal u64");
    assert_ne!(id, 0);
    assert_eq!(id.to_string(), p);
    // A permit given back as a JSON integer works too when it fits.
    let raw = format!(r#"{{"name":"upstream","permit":{id},"outcome":"success"}}"#);
    let v = ok(&mut k, at(1), Record, &raw);
    assert_eq!(v["recorded"], "counted");
    // A second report of the same permit is unknown: it counts once.
    assert_eq!(record(&mut k, at(1), &p, "failure")["recorded"], "unknown");
    assert_eq!(
        record(&mut k, at(1), "18446744073709551615", "failure")["recorded"],
        "unknown"
    );
}

#[test]
fn a_permit_goes_back_to_its_own_breaker_only() {
    let mut k = kernel();
    let p = permit(&ok(&mut k, at(1), Acquire, UP));
    ok(&mut k, at(1), Acquire, r#"{"name":"other"}"#);
    let wrong = format!(r#"{{"name":"other","permit":"{p}","outcome":"failure"}}"#);
    let v = err(&mut k, at(1), Record, &wrong, "BAD_REQUEST");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("issued by breaker `upstream`")
    );
    // Still held: the right breaker takes it.
    assert_eq!(
        record(&mut k, at(1), &p, "abandoned")["recorded"],
        "abandoned"
    );
}

#[test]
fn bad_params_are_refused() {
    let mut k = kernel();
    err(
        &mut k,
        at(1),
        Acquire,
        r#"{"name":"has space"}"#,
        "BAD_REQUEST",
    );
    err(&mut k, at(1), Acquire, r#"{}"#, "BAD_REQUEST");
    let long = format!(r#"{{"name":"{}"}}"#, "n".repeat(65));
    err(&mut k, at(1), Acquire, &long, "BAD_REQUEST");
    let p = permit(&ok(&mut k, at(1), Acquire, UP));
    for bad in [
        format!(r#"{{"name":"upstream","permit":"{p}","outcome":"meh"}}"#),
        r#"{"name":"upstream","permit":"-1","outcome":"success"}"#.to_owned(),
        r#"{"name":"upstream","permit":"18446744073709551616","outcome":"success"}"#.to_owned(),
        r#"{"name":"upstream","outcome":"success"}"#.to_owned(),
        format!(r#"{{"name":"upstream","permit":"{p}"}}"#),
    ] {
        let v = err(&mut k, at(1), Record, &bad, "BAD_REQUEST");
        assert!(v["message"].as_str().unwrap().starts_with("params."), "{v}");
    }
}

#[test]
fn outstanding_permits_are_bounded_and_expire() {
    let small = KernelCapacity {
        held_permits: 3,
        ..SMALL
    };
    let mut k = Kernel::with_capacity(SEEDS, Policy::default(), small);
    for _ in 0..3 {
        ok(&mut k, at(1), Acquire, UP);
    }
    let v = err(&mut k, at(1), Acquire, UP, "OVERLOADED");
    assert_eq!(v["retry_after_ms"], PERMIT_TTL_MS);
    let expiry = at(1) + heidi_core::Duration::from_millis(PERMIT_TTL_MS);
    assert_eq!(k.poll_timeout(), Some(expiry));
    k.tick(expiry);
    assert_eq!(k.stats().breaker_permits, 0);
    assert_eq!(k.poll_timeout(), None);
    ok(&mut k, expiry, Acquire, UP);
}

#[test]
fn a_late_record_is_expired() {
    let mut k = kernel();
    let p = permit(&ok(&mut k, at(1), Acquire, UP));
    let late = at(1) + heidi_core::Duration::from_millis(PERMIT_TTL_MS);
    assert_eq!(record(&mut k, late, &p, "failure")["recorded"], "expired");
}

#[test]
fn the_registry_is_bounded() {
    let mut k = Kernel::with_capacity(
        SEEDS,
        Policy::default(),
        KernelCapacity {
            held_permits: 1024,
            ..SMALL
        },
    );
    for i in 0..BREAKERS_MAX {
        ok(&mut k, at(1), Acquire, &format!(r#"{{"name":"b{i}"}}"#));
    }
    let v = err(
        &mut k,
        at(1),
        Acquire,
        r#"{"name":"one_more"}"#,
        "OVERLOADED",
    );
    assert!(v["message"].as_str().unwrap().contains("full"), "{v}");
    ok(&mut k, at(1), Acquire, r#"{"name":"b0"}"#);
}

#[test]
fn only_entering_open_is_journaled_as_a_warning() {
    use heidi_core::journal::Level;
    let mut k = kernel();
    for _ in 0..5 {
        let v = ok(&mut k, at(1), Acquire, UP);
        record(&mut k, at(1), &permit(&v), "failure");
    }
    k.tick(at(61));
    let v = ok(&mut k, at(61), Acquire, UP);
    record(&mut k, at(61), &permit(&v), "success");
    let levels: Vec<_> = std::iter::from_fn(|| k.poll_journal())
        .map(|e| (e.message, e.level))
        .collect();
    assert_eq!(
        levels,
        [
            (
                "breaker upstream: closed -> open".to_owned(),
                Level::Warning
            ),
            (
                "breaker upstream: open -> half_open".to_owned(),
                Level::Info
            ),
            (
                "breaker upstream: half_open -> closed".to_owned(),
                Level::Info
            ),
        ]
    );
}

#[test]
fn undrained_transitions_are_never_dropped_and_a_full_queue_is_an_answer() {
    use heidi_core::service::EFFECTS_MAX;
    let mut k = Kernel::with_capacity(
        SEEDS,
        Policy::default(),
        KernelCapacity {
            held_permits: 1024,
            ..SMALL
        },
    );
    for i in 0..EFFECTS_MAX {
        let name = format!(r#"{{"name":"b{i}"}}"#);
        for _ in 0..5 {
            let p = permit(&ok(&mut k, at(1), Acquire, &name));
            let params = format!(r#"{{"name":"b{i}","permit":"{p}","outcome":"failure"}}"#);
            ok(&mut k, at(1), Record, &params);
        }
    }
    let v = err(&mut k, at(1), Acquire, UP, "OVERLOADED");
    assert_eq!(v["retry_after_ms"], 1_000);
    let events: Vec<_> = std::iter::from_fn(|| k.poll_journal()).collect();
    assert_eq!(events.len(), EFFECTS_MAX);
    assert_eq!(events[0].message, "breaker b0: closed -> open");
    assert_eq!(
        events[EFFECTS_MAX - 1].message,
        format!("breaker b{}: closed -> open", EFFECTS_MAX - 1)
    );
    ok(&mut k, at(1), Acquire, UP);
}
