//! Policy documents: defaults, round trips, partial documents, and every refusal.

use serde_json::json;

use super::Policy;
use heidi_core::Duration;
use heidi_core::breaker::RateWindow;
use heidi_core::limit::Operation;

fn refuse(doc: serde_json::Value) -> String {
    Policy::from_json(&doc).unwrap_err().to_string()
}

#[test]
fn empty_document_is_the_defaults_and_round_trips() {
    assert_eq!(Policy::from_json(&json!({})).unwrap(), Policy::default());
    let p = Policy::default();
    assert_eq!(Policy::from_json(&p.to_json()).unwrap(), p);
    assert_eq!(p.retry("kernel_bridge").unwrap().max_attempts, 3);
    assert_eq!(p.leases().limit_per_key, 5);
}

#[test]
fn a_full_custom_document_round_trips() {
    let doc = json!({
        "limits": {"embed": {"capacity_tokens": 7, "window_ms": 1000}},
        "retry": {"llm": {"max_attempts": 4, "base_delay_ms": 250, "max_delay_ms": 4000, "multiplier": 3, "jitter": "full"}},
        "breakers": {
            "default": {"failure_threshold": 3, "slow_call_threshold_ms": 2000},
            "llm": {"rate": {"threshold_permille": 250, "min_calls": 10, "window_ms": 30000}, "failure_threshold": 0},
            "db": {"rate": {"window_calls": 50}, "slow_call_threshold_ms": null}
        },
        "leases": {"limit_per_key": 16, "ttl_ms": 5000},
        "health": {"interval_ms": 1000, "failure_threshold": 100},
        "idempotency": {"ttl_ms": 60000, "in_progress_timeout_ms": 1000, "remember_failures": true}
    });
    let p = Policy::from_json(&doc).unwrap();
    assert_eq!(p.limits().get(Operation::Embed).capacity_tokens(), 7);
    assert_eq!(
        p.limits().get(Operation::Search).capacity_tokens(),
        30,
        "unlisted keeps default"
    );
    assert_eq!(p.retry("llm").unwrap().multiplier, 3);
    assert!(p.retry("quick").is_some(), "built-in policies stay");
    // Named breakers inherit from the document's default.
    assert_eq!(
        p.breaker("llm").slow_call_threshold,
        Some(Duration::from_secs(2))
    );
    assert_eq!(
        p.breaker("llm").rate.unwrap().window,
        RateWindow::Time(Duration::from_secs(30))
    );
    assert_eq!(p.breaker("db").failure_threshold, 3);
    assert_eq!(p.breaker("db").slow_call_threshold, None);
    assert_eq!(p.breaker("db").rate.unwrap().min_calls, 20);
    assert_eq!(p.breaker("unnamed").failure_threshold, 3);
    assert_eq!(Policy::from_json(&p.to_json()).unwrap(), p);
    // Rate off again with false.
    let off = json!({"breakers": {"default": {"rate": false}}});
    assert_eq!(
        Policy::from_json(&off).unwrap().breaker_default().rate,
        None
    );
}

#[test]
fn every_refusal_names_the_field() {
    let cases = [
        (
            json!([]),
            "(document): not a JSON object (invalid at byte 0)",
        ),
        (json!({"limits": []}), "limits: must be an object"),
        (
            json!({"limits": {"other": {"capacity_tokens": 0}}}),
            "limits.other.capacity_tokens: must be an integer from 1",
        ),
        (
            json!({"limits": {"search": {"window_ms": 0}}}),
            "limits.search.window_ms: must be an integer from 1",
        ),
        (
            json!({"limits": {"search": {"window_ms": 2_592_000_001_u64}}}),
            "limits.search.window_ms: must be an integer from 1 to 2592000000",
        ),
        (
            json!({"limits": {"search": {"burst": 1}}}),
            "limits.search.burst: unknown field (expected one of: capacity_tokens, window_ms)",
        ),
        (
            json!({"retry": {"bad name": {}}}),
            "retry.bad name: names are",
        ),
        (
            json!({"retry": {"x": {"max_attempts": 0}}}),
            "retry.x.max_attempts: must be an integer from 1 to 100",
        ),
        (
            json!({"retry": {"x": {"multiplier": 1.5}}}),
            "retry.x.multiplier: must be an integer",
        ),
        (
            json!({"retry": {"x": {"jitter": "some"}}}),
            "retry.x.jitter: must be",
        ),
        (
            json!({"retry": {"x": {"base_delay_ms": 10, "max_delay_ms": 5}}}),
            "retry.x.max_delay_ms: retry policy",
        ),
        (
            json!({"breakers": {"default": {"failure_threshold": 0}}}),
            "breakers.default.failure_threshold: breaker config",
        ),
        (
            json!({"breakers": {"x": {"reset_timeout_ms": 5000, "reset_timeout_max_ms": 1000}}}),
            "breakers.x.reset_timeout_max_ms: ",
        ),
        (
            json!({"breakers": {"x": {"half_open_max_probes": 9}}}),
            "breakers.x.half_open_max_probes: must be an integer from 1 to 8",
        ),
        (
            json!({"breakers": {"x": {"rate": {"window_calls": 10, "window_ms": 10}}}}),
            "breakers.x.rate.window_ms: give window_calls or window_ms, not both",
        ),
        (
            json!({"breakers": {"x": {"rate": {"window_calls": 10}}}}),
            "breakers.x.rate.min_calls: ",
        ),
        (
            json!({"breakers": {"x": {"rate": {"window_calls": 129}}}}),
            "breakers.x.rate.window_calls: must be an integer from 1 to 128",
        ),
        (
            json!({"breakers": {"x": {"rate": 5}}}),
            "breakers.x.rate: must be an object",
        ),
        (
            json!({"leases": {"limit_per_key": 17}}),
            "leases.limit_per_key: must be an integer from 1 to 16",
        ),
        (json!({"leases": {"ttl_ms": 0}}), "leases.ttl_ms: "),
        (
            json!({"health": {"failure_threshold": 101}}),
            "health.failure_threshold: must be an integer from 1 to 100",
        ),
        (
            json!({"idempotency": {"remember_failures": 1}}),
            "idempotency.remember_failures: must be true or false",
        ),
        (
            json!({"idempotency": {"in_progress_timeout_ms": 0}}),
            "idempotency.in_progress_timeout_ms: ",
        ),
        (
            json!({"retries": {}}),
            "retries: unknown field (expected one of: breakers, default_tier, health, idempotency, leases, limits, readiness, retry, tiers)",
        ),
    ];
    for (doc, prefix) in cases {
        let got = refuse(doc.clone());
        assert!(got.starts_with(prefix), "{doc}: {got}");
    }
}

#[test]
fn section_size_limits_are_reached() {
    let mut retry = serde_json::Map::new();
    for i in 0..(crate::kernel::RETRY_POLICIES_MAX - 5) {
        retry.insert(format!("r{i}"), json!({}));
    }
    assert!(Policy::from_json(&json!({"retry": retry.clone()})).is_ok());
    retry.insert("one_more".into(), json!({}));
    assert!(refuse(json!({"retry": retry})).starts_with("retry: at most 32"));
    let mut breakers = serde_json::Map::new();
    for i in 0..crate::kernel::BREAKER_POLICIES_MAX {
        breakers.insert(format!("b{i}"), json!({}));
    }
    assert!(Policy::from_json(&json!({"breakers": breakers.clone()})).is_ok());
    breakers.insert("one_more".into(), json!({}));
    assert!(refuse(json!({"breakers": breakers})).starts_with("breakers: at most 64"));
}

#[test]
fn toml_config_converts_to_the_same_document() {
    let text = r#"
        [limits.search]
        capacity_tokens = 12
        [breakers.default]
        reset_timeout_ms = 1000
    "#;
    let value: toml::Value = toml::from_str(text).unwrap();
    let doc = serde_json::to_value(value).unwrap();
    let p = Policy::from_json(&doc).unwrap();
    assert_eq!(p.limits().get(Operation::Search).capacity_tokens(), 12);
    assert_eq!(p.breaker_default().reset_timeout, Duration::from_secs(1));
}

#[test]
fn readiness_names_checks_and_is_bounded() {
    use crate::kernel::READINESS_CHECKS_MAX;
    let p = Policy::from_json(&json!({"readiness": {"checks": ["db", "queue:jobs"]}})).unwrap();
    assert_eq!(p.readiness_checks(), ["db", "queue:jobs"]);
    assert_eq!(Policy::from_json(&p.to_json()).unwrap(), p);
    assert_eq!(
        p.to_json()["readiness"]["checks"],
        json!(["db", "queue:jobs"])
    );
    // Empty (the default) is left out of the document, so older digests still match.
    let empty = Policy::from_json(&json!({"readiness": {"checks": []}})).unwrap();
    assert_eq!(empty, Policy::default());
    assert!(Policy::from_json(&json!({"readiness": {}})).unwrap() == Policy::default());
    assert!(Policy::default().to_json().get("readiness").is_none());
    assert_ne!(p.digest_hex(), Policy::default().digest_hex());

    let most: Vec<String> = (0..READINESS_CHECKS_MAX).map(|i| format!("c{i}")).collect();
    let p = Policy::from_json(&json!({"readiness": {"checks": most}})).unwrap();
    assert_eq!(p.readiness_checks().len(), READINESS_CHECKS_MAX);
    let too_many: Vec<String> = (0..=READINESS_CHECKS_MAX)
        .map(|i| format!("c{i}"))
        .collect();
    assert_eq!(
        refuse(json!({"readiness": {"checks": too_many}})),
        format!("readiness.checks: at most {READINESS_CHECKS_MAX} checks")
    );
    let cases = [
        (
            json!({"checks": "db"}),
            "readiness.checks: must be an array of health check names",
        ),
        (
            json!({"checks": ["db", 3]}),
            "readiness.checks[1]: must be a string",
        ),
        (
            json!({"checks": ["db", "no spaces"]}),
            "readiness.checks[1]: names are 1 to 64 of A-Z a-z 0-9 _ . : -",
        ),
        (
            json!({"checks": [""]}),
            "readiness.checks[0]: names are 1 to 64 of A-Z a-z 0-9 _ . : -",
        ),
        (
            json!({"checks": ["db", "x", "db"]}),
            "readiness.checks[2]: \"db\" is named twice",
        ),
        (
            json!({"check": ["db"]}),
            "readiness.check: unknown field (expected one of: checks)",
        ),
        (json!(["db"]), "readiness: must be an object"),
    ];
    for (section, expected) in cases {
        assert_eq!(refuse(json!({"readiness": section})), expected);
    }
}

/// Custom operations and tiers are the core's model: read, bounded, refused by field path,
/// and written back so that the document reads back as the same policy. A document without
/// them writes neither `tiers` nor `default_tier` (its digest is the one it always had).
#[test]
fn custom_operations_and_tiers_round_trip_and_are_bounded() {
    let doc = json!({
        "limits": {"llm_call": {"capacity_tokens": 100}},
        "tiers": {"free": {"limits": {"llm_call": {"capacity_tokens": 10}}}, "pro": {"limits": {}}},
        "default_tier": "free"
    });
    let p = Policy::from_json(&doc).unwrap();
    let rate = p.rate();
    let op = rate.operation("llm_call");
    assert_eq!(rate.limit(op, rate.default_tier()).capacity_tokens(), 10);
    assert_eq!(Policy::from_json(&p.to_json()).unwrap(), p);
    assert_eq!(p.to_json()["default_tier"], "free");
    assert_eq!(p.to_json()["tiers"]["pro"], json!({"limits": {}}));
    let plain = Policy::default().to_json();
    assert!(plain.get("tiers").is_none() && plain.get("default_tier").is_none());

    let mut limits = serde_json::Map::new();
    for i in 0..250 {
        limits.insert(format!("op{i:03}"), json!({}));
    }
    assert!(Policy::from_json(&json!({"limits": limits.clone()})).is_ok());
    limits.insert("op999".to_owned(), json!({}));
    assert!(
        refuse(json!({"limits": limits})).starts_with("limits.op999: at most 256 operations"),
        "the 257th operation is named"
    );
    assert!(refuse(json!({"limits": {"bad name": {}}})).starts_with("limits.bad name: names are"));
    assert!(refuse(json!({"default_tier": "gold"})).starts_with("default_tier: unknown tier"));
}

#[test]
fn the_canonical_bytes_are_sorted_compact_json_and_the_default_digest_is_stable() {
    let docs = [
        json!({}),
        json!({
            "limits": {"llm_call": {"capacity_tokens": 5, "window_ms": 1000}, "embed": {"capacity_tokens": 7}},
            "tiers": {"pro": {"limits": {"llm_call": {"capacity_tokens": 50}, "search": {"capacity_tokens": 9}}}, "free": {}},
            "default_tier": "free",
            "retry": {"llm": {"max_attempts": 4, "jitter": "equal"}},
            "breakers": {"zzz": {"rate": {"window_ms": 5000, "min_calls": 3}}, "aaa": {"rate": false},
                         "default": {"failure_threshold": 3, "slow_call_threshold_ms": 250}, "dz": {}},
            "leases": {"limit_per_key": 9},
            "health": {"interval_ms": 1500},
            "idempotency": {"remember_failures": true},
            "readiness": {"checks": ["z", "a"]}
        }),
    ];
    for doc in docs {
        let p = Policy::from_json(&doc).unwrap();
        let bytes = p.canonical_bytes();
        // serde_json writes a `Value` with its keys sorted: the same bytes back means the
        // document was compact and sorted at every level.
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(serde_json::to_vec(&v).unwrap(), bytes);
        assert_eq!(
            Policy::from_json(&v).unwrap(),
            p,
            "it reads back as the same policy"
        );
    }
    // The digest of the default policy, as every earlier version wrote it: `policy.json`
    // files written by them still verify.
    assert_eq!(
        Policy::default().digest_hex(),
        "5ab211bf7bd3f70a9eb05d4eaa2e18c4b1f6072267037875d1488f6b1e38257c"
    );
}
