//! APPLY_POLICY and GET_POLICY.

use heidi_core::proto::Method::{
    ApplyPolicy as Apply, BreakerAcquire, BreakerRecord, GetPolicy as Get, HealthAggregate,
    HealthReport, LeaseAcquire, RateLimitConsume as Consume,
};

use super::{Called, at, call, err, kernel, ok};
use crate::kernel::Policy;

fn apply(policy: &str) -> String {
    format!(r#"{{"policy":{policy}}}"#)
}

#[test]
fn apply_bumps_the_version_and_journals() {
    let mut k = kernel();
    let (v, handled) = call(&mut k, at(1), Apply, &apply("{}"));
    assert_eq!(v, serde_json::json!({"ok": true, "version": 2}));
    let Called::Applied(entry) = handled else {
        panic!("APPLY_POLICY must be journaled")
    };
    assert_eq!(
        (entry.stage.as_str(), entry.event_type.as_str()),
        ("kernel", "policy_applied")
    );
    assert_eq!(
        heidi_core::journal::PolicyMessage::parse(&entry.message),
        Some(heidi_core::journal::PolicyMark {
            version: 2,
            digest: Policy::default().digest()
        }),
        "{}",
        entry.message
    );
    assert_eq!(k.policy_version(), 2);
    let v = ok(&mut k, at(1), Get, "{}");
    assert_eq!(v["version"], 2);
    assert_eq!(Policy::from_json(&v["policy"]).unwrap(), Policy::default());
}

#[test]
fn invalid_policy_changes_nothing() {
    let mut k = kernel();
    ok(
        &mut k,
        at(1),
        Apply,
        &apply(r#"{"limits":{"search":{"capacity_tokens":5}}}"#),
    );
    let before = k.policy().clone();
    let cases = [
        (
            r#"{"limits":{"search":{"capacity_tokens":0}}}"#,
            "limits.search.capacity_tokens: ",
        ),
        (
            r#"{"limits":{"llm call":{"capacity_tokens":3}}}"#,
            "limits.llm call: names are 1 to 64 of",
        ),
        (
            r#"{"tiers":{"free":{"limits":{"llm_call":{"capacity_tokens":3}}}}}"#,
            "tiers.free.limits.llm_call: unknown operation",
        ),
        (r#"{"default_tier":"pro"}"#, "default_tier: unknown tier"),
        (
            r#"{"leases":{"limit_per_key":5,"ttl":3}}"#,
            "leases.ttl: unknown field",
        ),
        (
            r#"{"breakers":{"default":{"failure_threshold":0}}}"#,
            "breakers.default.failure_threshold: ",
        ),
        (
            r#"{"retry":{"quick":{"max_delay_ms":1,"base_delay_ms":5}}}"#,
            "retry.quick.max_delay_ms: ",
        ),
        (r#"{"health":{"interval_ms":0}}"#, "health.interval_ms: "),
        (
            r#"{"idempotency":{"ttl_ms":1000}}"#,
            "idempotency: is fixed at start-up",
        ),
        (r#"{"test":true}"#, "test: unknown field"),
        // A valid section followed by an invalid one: nothing of it applies.
        (
            r#"{"leases":{"limit_per_key":1},"limits":{"embed":{"window_ms":-5}}}"#,
            "limits.embed.window_ms: ",
        ),
        ("[]", "(document): not a JSON object (invalid at byte 0)"),
    ];
    for (doc, prefix) in cases {
        let v = err(&mut k, at(2), Apply, &apply(doc), "INVALID_POLICY");
        let message = v["message"].as_str().unwrap();
        assert!(message.starts_with(prefix), "{doc}: {message}");
        assert_eq!(k.policy_version(), 2);
        assert_eq!(k.policy(), &before);
    }
    // Leases still 5 per key (the refused document said 1).
    for _ in 0..5 {
        ok(&mut k, at(3), LeaseAcquire, r#"{"key":"k"}"#);
    }
    err(&mut k, at(1), Apply, r#"{}"#, "BAD_REQUEST");
    err(
        &mut k,
        at(1),
        Apply,
        r#"{"policy":{},"extra":1}"#,
        "BAD_REQUEST",
    );
}

#[test]
fn a_new_limit_applies_to_an_existing_key() {
    let mut k = kernel();
    let p = r#"{"key":"u","operation":"search","cost":5}"#;
    ok(&mut k, at(1), Consume, p); // 25 of 30 left
    ok(
        &mut k,
        at(1),
        Apply,
        &apply(r#"{"limits":{"search":{"capacity_tokens":10,"window_ms":60000}}}"#),
    );
    // Same bucket, new limit: the bucket keeps "full again at the same instant", so a sixth
    // of it is used (10 s of the 60 s window): 8.3 tokens left, 3.3 after this call.
    let v = ok(&mut k, at(1), Consume, p);
    assert_eq!(
        (v["remaining"].clone(), v["limit"].clone()),
        (3.into(), 10.into())
    );
    err(&mut k, at(1), Consume, p, "RATE_LIMITED");
}

fn permit_of(v: &serde_json::Value) -> String {
    v["permit"].as_str().expect("a permit").to_owned()
}

fn failure(name: &str, permit: &str) -> String {
    format!(r#"{{"name":"{name}","permit":"{permit}","outcome":"failure"}}"#)
}

#[test]
fn a_breaker_change_reconfigures_only_changed_breakers() {
    let mut k = kernel();
    let permit = permit_of(&ok(&mut k, at(1), BreakerAcquire, r#"{"name":"a"}"#));
    let keep = permit_of(&ok(&mut k, at(1), BreakerAcquire, r#"{"name":"b"}"#));
    ok(
        &mut k,
        at(1),
        Apply,
        &apply(r#"{"breakers":{"a":{"failure_threshold":1}}}"#),
    );
    // a was reconfigured: its old permit is stale; b kept its permit.
    let v = ok(&mut k, at(1), BreakerRecord, &failure("a", &permit));
    assert_eq!(
        (&v["recorded"], &v["state"]),
        (&"stale".into(), &"closed".into())
    );
    let v = ok(&mut k, at(1), BreakerRecord, &failure("b", &keep));
    assert_eq!(v["recorded"], "counted");
    // a now trips on one failure.
    let p = permit_of(&ok(&mut k, at(2), BreakerAcquire, r#"{"name":"a"}"#));
    assert_eq!(
        ok(&mut k, at(2), BreakerRecord, &failure("a", &p))["state"],
        "open"
    );
}

#[test]
fn applying_a_policy_never_closes_an_open_breaker() {
    let mut k = kernel();
    let old = r#"{"breakers":{"up":{"failure_threshold":2,"reset_timeout_ms":600000}}}"#;
    ok(&mut k, at(1), Apply, &apply(old));
    for _ in 0..2 {
        let p = permit_of(&ok(&mut k, at(1), BreakerAcquire, r#"{"name":"up"}"#));
        ok(&mut k, at(1), BreakerRecord, &failure("up", &p));
    }
    let v = err(
        &mut k,
        at(2),
        BreakerAcquire,
        r#"{"name":"up"}"#,
        "CIRCUIT_OPEN",
    );
    assert_eq!(v["state"], "open");
    let journaled = std::iter::from_fn(|| k.poll_journal()).count();
    assert_eq!(journaled, 1, "closed -> open");
    let new = r#"{"breakers":{"up":{"failure_threshold":2,"reset_timeout_ms":600000,
        "probe_timeout_ms":1000}}}"#;
    ok(&mut k, at(3), Apply, &apply(new));
    assert_eq!(k.stats().breakers, vec![("up".to_owned(), "open")]);
    let v = err(
        &mut k,
        at(4),
        BreakerAcquire,
        r#"{"name":"up"}"#,
        "CIRCUIT_OPEN",
    );
    assert_eq!(v["state"], "open");
    assert_eq!(k.poll_journal().map(|e| e.message), None, "no transition");
    // Still open until 601 s (the deadline is kept), then half-open on time.
    assert_eq!(k.poll_timeout(), Some(at(601)));
    k.tick(at(601));
    let v = ok(&mut k, at(601), BreakerAcquire, r#"{"name":"up"}"#);
    assert_eq!(
        (&v["state"], &v["probe"]),
        (&"half_open".into(), &true.into())
    );
}

#[test]
fn a_shorter_reset_timeout_shortens_an_open_period() {
    let mut k = kernel();
    let old = r#"{"breakers":{"up":{"failure_threshold":1,"reset_timeout_ms":600000}}}"#;
    ok(&mut k, at(1), Apply, &apply(old));
    let p = permit_of(&ok(&mut k, at(1), BreakerAcquire, r#"{"name":"up"}"#));
    ok(&mut k, at(1), BreakerRecord, &failure("up", &p));
    k.tick(at(10)); // the daemon ticks at least once a second
    let new = r#"{"breakers":{"up":{"failure_threshold":1,"reset_timeout_ms":5000}}}"#;
    ok(&mut k, at(10), Apply, &apply(new));
    // min(601 s, 10 s + 5 s): open until 15 s.
    assert_eq!(k.poll_timeout(), Some(at(15)));
    err(
        &mut k,
        at(14),
        BreakerAcquire,
        r#"{"name":"up"}"#,
        "CIRCUIT_OPEN",
    );
    assert_eq!(
        ok(&mut k, at(15), BreakerAcquire, r#"{"name":"up"}"#)["probe"],
        true
    );
}

#[test]
fn a_health_change_keeps_each_checks_state() {
    let mut k = kernel();
    for _ in 0..2 {
        ok(&mut k, at(1), HealthReport, r#"{"name":"db","pass":false}"#);
    }
    ok(
        &mut k,
        at(1),
        Apply,
        &apply(r#"{"health":{"failure_threshold":2,"interval_ms":10000}}"#),
    );
    let v = ok(&mut k, at(2), HealthAggregate, "{}");
    assert_eq!(v["status"], "unhealthy");
    // Interval 10 s: silent since 1 s → unknown at 21 s.
    let v = ok(&mut k, at(21), HealthAggregate, "{}");
    assert_eq!(v["unknown"], 1);
}

#[test]
fn get_policy_takes_no_params() {
    let mut k = kernel();
    err(&mut k, at(1), Get, r#"{"x":1}"#, "BAD_REQUEST");
    let v = ok(&mut k, at(1), Get, "{}");
    assert_eq!(v["policy"]["limits"]["search"]["capacity_tokens"], 30);
    assert_eq!(v["policy"]["retry"]["kernel_bridge"]["base_delay_ms"], 100);
    let bytes = serde_json::to_vec(&v).unwrap();
    assert!(bytes.len() < heidi_core::proto::RESPONSE_MAX_BYTES);
}
