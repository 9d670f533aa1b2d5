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
