//! The policy document's sections besides the rate limits: defaults, inheritance, bounds and
//! every refusal's path and reason.

extern crate std;

use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use super::*;
use crate::Duration;
use crate::breaker::{BreakerConfig, RateWindow};
use crate::retry::{Jitter, RetryPolicy};

fn refuse(doc: &str) -> String {
    Sections::parse(doc).unwrap_err().to_string()
}

#[test]
fn an_empty_document_is_the_defaults() {
    let s = Sections::parse("{}").unwrap();
    assert_eq!(s, Sections::default());
    let names: Vec<&str> = s.retry_policies().map(|(n, _)| n).collect();
    let mut sorted: Vec<&str> = RetryPolicy::NAMED.iter().map(|(n, _)| *n).collect();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    assert_eq!(s.breaker_default(), &BreakerConfig::DEFAULT);
    assert_eq!(s.readiness_checks().count(), 0);
    let nulls = r#"{"retry":null,"breakers":null,"leases":null,"health":null,"idempotency":null,"readiness":null}"#;
    assert_eq!(Sections::parse(nulls).unwrap(), Sections::default());
}

#[test]
fn fields_override_defaults_and_named_breakers_inherit_the_default() {
    let doc = r#"{
        "retry": {"llm": {"max_attempts": 4, "multiplier": 3, "jitter": "equal"},
                  "quick": {"max_attempts": 2}},
        "breakers": {"db": {"rate": {"window_calls": 40, "min_calls": 20}},
                     "default": {"failure_threshold": 3, "slow_call_threshold_ms": 0},
                     "\u0061pi": {"rate": false, "slow_call_threshold_ms": null}},
        "leases": {"limit_per_key": 16, "ttl_ms": 1000},
        "health": {"interval_ms": 5000, "failure_threshold": 100},
        "idempotency": {"remember_failures": true, "ttl_ms": 60000},
        "readiness": {"checks": ["db", "queue:jobs"]}
    }"#;
    let s = Sections::parse(doc).unwrap();
    let llm = s.retry_policy("llm").unwrap();
    assert_eq!(
        (llm.max_attempts, llm.multiplier, llm.jitter),
        (4, 3, Jitter::Equal)
    );
    assert_eq!(s.retry_policy("quick").unwrap().max_attempts, 2);
    assert!(
        s.retry_policy("conservative").is_some(),
        "built-in ones stay"
    );
    let named: Vec<(&str, &BreakerConfig)> = s.named_breakers().collect();
    assert_eq!(
        named.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["api", "db"]
    );
    let db = named[1].1;
    assert_eq!(
        (db.failure_threshold, db.slow_call_threshold),
        (3, None),
        "inherited"
    );
    assert_eq!(db.rate.unwrap().window, RateWindow::LastCalls(40));
    assert_eq!(named[0].1.rate, None);
    assert_eq!(
        (s.leases().limit_per_key, s.leases().ttl),
        (16, Duration::from_secs(1))
    );
    assert_eq!(s.health().failure_threshold, 100);
    assert!(s.idempotency().remember_failures);
    assert_eq!(
        s.readiness_checks().collect::<Vec<_>>(),
        ["db", "queue:jobs"]
    );
}

#[test]
fn every_refusal_names_the_field() {
    let cases = [
        (r#"{"retry":[]}"#, "retry: must be an object"),
        (
            r#"{"retry":{"bad name":{}}}"#,
            "retry.bad name: names are 1 to 64 of A-Z a-z 0-9 _ . : -",
        ),
        (r#"{"retry":{"x":{},"x":{}}}"#, "retry.x: duplicate field"),
        (
            r#"{"retry":{"x":{"max_attempts":0}}}"#,
            "retry.x.max_attempts: must be an integer from 1 to 100",
        ),
        (
            r#"{"retry":{"x":{"multiplier":1.5}}}"#,
            "retry.x.multiplier: must be an integer from 1 to 100",
        ),
        (
            r#"{"retry":{"x":{"jitter":"some"}}}"#,
            r#"retry.x.jitter: must be "none", "equal" or "full""#,
        ),
        (
            r#"{"retry":{"x":{"base_delay_ms":10,"max_delay_ms":5}}}"#,
            "retry.x.max_delay_ms: retry policy: `max_delay` must not be shorter than base_delay",
        ),
        (
            r#"{"retry":{"x":{"tries":1}}}"#,
            "retry.x.tries: unknown field (expected one of: base_delay_ms, jitter, max_attempts, max_delay_ms, multiplier)",
        ),
        (
            r#"{"breakers":{"default":{"failure_threshold":0}}}"#,
            "breakers.default.failure_threshold: breaker config: `failure_threshold` is 0 and no rate rule is set, so the breaker could never trip",
        ),
        (
            r#"{"breakers":{"x":{"reset_timeout_ms":5000,"reset_timeout_max_ms":1000}}}"#,
            "breakers.x.reset_timeout_max_ms: breaker config: `reset_timeout_max` is shorter than reset_timeout",
        ),
        (
            r#"{"breakers":{"x":{"half_open_max_probes":9}}}"#,
            "breakers.x.half_open_max_probes: must be an integer from 1 to 8",
        ),
        (
            r#"{"breakers":{"x":{"rate":{"window_calls":10,"window_ms":10}}}}"#,
            "breakers.x.rate.window_ms: give window_calls or window_ms, not both",
        ),
        (
            r#"{"breakers":{"x":{"rate":{"window_calls":10}}}}"#,
            "breakers.x.rate.min_calls: breaker config: `rate.min_calls` must be at least 1 and fit in the window",
        ),
        (
            r#"{"breakers":{"x":{"rate":{"window_calls":129}}}}"#,
            "breakers.x.rate.window_calls: must be an integer from 1 to 128",
        ),
        (
            r#"{"breakers":{"x":{"rate":5}}}"#,
            "breakers.x.rate: must be an object",
        ),
        (
            r#"{"breakers":{"x":{},"x":{}}}"#,
            "breakers.x: duplicate field",
        ),
        (
            r#"{"breakers":{"default":{},"default":{}}}"#,
            "breakers.default: duplicate field",
        ),
        (
            r#"{"breakers":{"x y":{}}}"#,
            "breakers.x y: names are 1 to 64 of A-Z a-z 0-9 _ . : -",
        ),
        (
            r#"{"leases":{"limit_per_key":17}}"#,
            "leases.limit_per_key: must be an integer from 1 to 16",
        ),
        (
            r#"{"leases":{"ttl_ms":0}}"#,
            "leases.ttl_ms: must be an integer from 1 to 2592000000",
        ),
        (
            r#"{"health":{"failure_threshold":101}}"#,
            "health.failure_threshold: must be an integer from 1 to 100",
        ),
        (
            r#"{"idempotency":{"remember_failures":1}}"#,
            "idempotency.remember_failures: must be true or false",
        ),
        (
            r#"{"idempotency":{"in_progress_timeout_ms":0}}"#,
            "idempotency.in_progress_timeout_ms: must be an integer from 1 to 2592000000",
        ),
        (
            r#"{"idempotency":{"ttl_ms":1,"ttl_ms":2}}"#,
            "idempotency.ttl_ms: duplicate field",
        ),
        (
            r#"{"readiness":{"checks":"db"}}"#,
            "readiness.checks: must be an array of health check names",
        ),
        (
            r#"{"readiness":{"checks":["db",3]}}"#,
            "readiness.checks[1]: must be a string",
        ),
        (
            r#"{"readiness":{"checks":["db","no spaces"]}}"#,
            "readiness.checks[1]: names are 1 to 64 of A-Z a-z 0-9 _ . : -",
        ),
        (
            r#"{"readiness":{"checks":[""]}}"#,
            "readiness.checks[0]: names are 1 to 64 of A-Z a-z 0-9 _ . : -",
        ),
        (
            r#"{"readiness":{"checks":["db","x","d\u0062"]}}"#,
            r#"readiness.checks[2]: "db" is named twice"#,
        ),
        (
            r#"{"readiness":{"check":["db"]}}"#,
            "readiness.check: unknown field (expected one of: checks)",
        ),
        (r#"{"readiness":["db"]}"#, "readiness: must be an object"),
    ];
    for (doc, expected) in cases {
        assert_eq!(refuse(doc), expected, "{doc}");
    }
}

#[test]
fn section_bounds_are_reached() {
    // 27 of their own and the 5 built-in ones: 32.
    let retry: Vec<String> = (0..RETRY_POLICIES_MAX - 5)
        .map(|i| format!(r#""r{i}":{{}}"#))
        .collect();
    let doc = format!(r#"{{"retry":{{{}}}}}"#, retry.join(","));
    assert_eq!(
        Sections::parse(&doc).unwrap().retry_policies().count(),
        RETRY_POLICIES_MAX
    );
    let doc = format!(r#"{{"retry":{{{},"one_more":{{}}}}}}"#, retry.join(","));
    assert_eq!(
        refuse(&doc),
        "retry: at most 32 retry policies (built-in included)"
    );
    // Overriding a built-in one does not count twice.
    let doc = format!(r#"{{"retry":{{{},"quick":{{}}}}}}"#, retry.join(","));
    assert!(Sections::parse(&doc).is_ok());

    let breakers: Vec<String> = (0..BREAKER_ENTRIES_MAX)
        .map(|i| format!(r#""b{i}":{{}}"#))
        .collect();
    let doc = format!(r#"{{"breakers":{{{}}}}}"#, breakers.join(","));
    assert_eq!(
        Sections::parse(&doc).unwrap().named_breakers().count(),
        BREAKER_ENTRIES_MAX
    );
    let doc = format!(
        r#"{{"breakers":{{{},"default":{{}}}}}}"#,
        breakers.join(",")
    );
    assert_eq!(
        refuse(&doc),
        "breakers: at most 64 entries (default included)"
    );

    let checks: Vec<String> = (0..=READINESS_CHECKS_MAX)
        .map(|i| format!(r#""c{i}""#))
        .collect();
    let doc = format!(
        r#"{{"readiness":{{"checks":[{}]}}}}"#,
        checks[1..].join(",")
    );
    assert_eq!(
        Sections::parse(&doc).unwrap().readiness_checks().count(),
        READINESS_CHECKS_MAX
    );
    // Too many is said before a bad element.
    let doc = format!(
        r#"{{"readiness":{{"checks":[{},7]}}}}"#,
        checks[1..].join(",")
    );
    assert_eq!(refuse(&doc), "readiness.checks: at most 32 checks");
}

#[test]
fn the_written_document_is_canonical_and_reads_back_the_same() {
    let doc = r#"{
        "limits": {"llm_call": {"capacity_tokens": 5, "window_ms": 1000}, "a.b": {}},
        "tiers": {"pro": {"limits": {"llm_call": {"capacity_tokens": 50}}}, "free": {}},
        "default_tier": "pro",
        "retry": {"llm": {"max_attempts": 4}},
        "breakers": {"zz": {"rate": {"window_ms": 5000, "min_calls": 3}}, "a": {"rate": false},
                     "default": {"slow_call_threshold_ms": 250}},
        "readiness": {"checks": ["z", "a"]}
    }"#;
    for doc in ["{}", doc] {
        let rate = RatePolicy::<4, 2>::parse(doc).unwrap();
        let sections = Sections::parse(doc).unwrap();
        let mut text = String::new();
        write_document(&rate, &sections, &mut text).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            text,
            "compact, keys sorted"
        );
        assert_eq!(RatePolicy::<4, 2>::parse(&text).unwrap(), rate);
        assert_eq!(Sections::parse(&text).unwrap(), sections);
    }
}
