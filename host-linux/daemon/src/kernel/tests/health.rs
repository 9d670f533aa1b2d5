//! HEALTH_REPORT and HEALTH_AGGREGATE.

use heidi_core::proto::Method::{HealthAggregate as Aggregate, HealthReport as Report};

use super::{at, err, kernel, ok};
use crate::kernel::HEALTH_CHECKS_MAX;

fn report(name: &str, pass: bool) -> String {
    format!(r#"{{"name":"{name}","pass":{pass}}}"#)
}

#[test]
fn checks_turn_unhealthy_after_three_failures_and_aggregate() {
    let mut k = kernel();
    assert_eq!(ok(&mut k, at(0), Aggregate, "{}")["status"], "healthy");
    ok(&mut k, at(1), Report, &report("db", true));
    for i in 1..=3 {
        let v = ok(&mut k, at(1), Report, &report("cache", false));
        assert_eq!(v["consecutive_failures"], i);
        assert_eq!(v["status"], if i < 3 { "healthy" } else { "unhealthy" });
        assert_eq!(v["unknown_in_ms"], 60_000);
    }
    let v = ok(&mut k, at(2), Aggregate, "{}");
    assert_eq!(v["status"], "degraded");
    assert_eq!(
        (v["healthy"].clone(), v["unhealthy"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(v["checks"][0]["name"], "cache");
    assert_eq!(v["checks"][1]["status"], "healthy");
    // Silent for two intervals: unknown; none healthy → unhealthy.
    let v = ok(&mut k, at(61), Aggregate, "{}");
    assert_eq!(
        (v["status"].clone(), v["unknown"].clone()),
        ("unhealthy".into(), 2.into())
    );
}

#[test]
fn bad_params_and_the_capacity() {
    let mut k = kernel();
    err(&mut k, at(1), Report, r#"{"name":"db"}"#, "BAD_REQUEST");
    err(
        &mut k,
        at(1),
        Report,
        r#"{"name":"db","pass":"yes"}"#,
        "BAD_REQUEST",
    );
    err(
        &mut k,
        at(1),
        Report,
        &report("bad name", true),
        "BAD_REQUEST",
    );
    for i in 0..HEALTH_CHECKS_MAX {
        ok(&mut k, at(1), Report, &report(&format!("c{i}"), true));
    }
    err(
        &mut k,
        at(1),
        Report,
        &report("one_more", true),
        "OVERLOADED",
    );
    ok(&mut k, at(1), Report, &report("c0", false));
    assert_eq!(k.stats().health_checks, HEALTH_CHECKS_MAX);
    // The largest aggregate reply fits the 64 KiB reply limit.
    let mut out = Vec::new();
    k.handle(at(1), Aggregate, "{}", &mut out);
    assert!(out.len() < heidi_core::proto::RESPONSE_MAX_BYTES);
}

#[test]
fn readiness_follows_the_checks_the_policy_names() {
    use crate::kernel::{Kernel, NotReady, Policy};
    let doc = serde_json::json!({"readiness": {"checks": ["db", "cache"]}});
    let policy = Policy::from_json(&doc).unwrap();
    let mut k = Kernel::with_capacity(super::SEEDS, policy, super::SMALL);
    let names = |k: &Kernel, secs| {
        k.not_ready(at(secs))
            .into_iter()
            .map(|NotReady { name, status }| format!("{name}:{status}"))
            .collect::<Vec<_>>()
    };
    // Never reported: not ready.
    assert_eq!(names(&k, 0), ["db:unreported", "cache:unreported"]);
    ok(&mut k, at(1), Report, &report("db", true));
    ok(&mut k, at(1), Report, &report("cache", true));
    // A check the policy does not name does not matter.
    for _ in 0..3 {
        ok(&mut k, at(1), Report, &report("other", false));
    }
    assert!(names(&k, 1).is_empty());
    // Two failures are a blip (still healthy); the third makes it unhealthy.
    for _ in 0..2 {
        ok(&mut k, at(2), Report, &report("cache", false));
    }
    assert!(names(&k, 2).is_empty());
    ok(&mut k, at(2), Report, &report("cache", false));
    assert_eq!(names(&k, 2), ["cache:unhealthy"]);
    ok(&mut k, at(3), Report, &report("cache", true));
    assert!(names(&k, 3).is_empty());
    // Silent for two intervals (60 s): unknown.
    ok(&mut k, at(40), Report, &report("cache", true));
    assert_eq!(names(&k, 61), ["db:unknown"]);
    // No readiness checks: always ready.
    assert!(kernel().not_ready(at(0)).is_empty());
}
