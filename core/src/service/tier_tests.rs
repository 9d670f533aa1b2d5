//! The service under a policy with custom operations and tiers: `params.tier`, the default
//! tier, the bucket a tier shares, and the built-in operations unchanged.

extern crate std;

use std::format;
use std::string::String;
use std::vec::Vec;

use super::tests::{Boxed, at, call, err, ok};
use super::*;
use crate::policy::{CUSTOM_OPERATIONS_MAX, TIERS_MAX};
use crate::{Duration, Instant};

const CHECK: Method = Method::RateLimitCheck;
const CONSUME: Method = Method::RateLimitConsume;

/// "free users 10/min, pro 100/min".
const TIERED: &str = r#"{
    "limits":{"llm_call":{"capacity_tokens":30,"window_ms":60000}},
    "tiers":{"free":{"limits":{"llm_call":{"capacity_tokens":10}}},
             "pro":{"limits":{"llm_call":{"capacity_tokens":100}}}}}"#;

fn service_with<const C: usize, const T: usize>(doc: &str) -> Service<Boxed, C, T> {
    let slots = std::vec![Slot::empty(); 64].into_boxed_slice();
    let policy = RatePolicy::parse(doc).unwrap();
    Service::with_policy(KeyHasher::new([1; 16]), policy, slots)
}

fn params(key: &str, op: &str, tier: Option<&str>) -> String {
    match tier {
        Some(t) => format!(r#"{{"key":"{key}","operation":"{op}","tier":"{t}"}}"#),
        None => format!(r#"{{"key":"{key}","operation":"{op}"}}"#),
    }
}

fn granted<const C: usize, const T: usize>(
    s: &mut Service<Boxed, C, T>,
    now: Instant,
    p: &str,
) -> usize {
    (0..200)
        .take_while(|_| call(s, now, CONSUME, p).0.outcome == Outcome::Allowed)
        .count()
}

#[test]
fn a_custom_operation_has_its_own_limit_and_name() {
    let mut s = service_with::<4, 0>(r#"{"limits":{"llm_call":{"capacity_tokens":2}}}"#);
    let p = params("u1", "llm_call", None);
    let v = ok(&mut s, at(1), CONSUME, &p);
    assert_eq!(
        v,
        serde_json::json!({"allowed":true,"limit":2,"operation":"llm_call","remaining":1,
                           "reset_after_ms":30000,"window_ms":60000})
    );
    ok(&mut s, at(1), CONSUME, &p);
    let v = err(&mut s, at(1), CONSUME, &p, "RATE_LIMITED");
    assert_eq!(v["operation"], "llm_call");
    assert_eq!(
        v["message"],
        "rate limit of operation `llm_call` reached for this key (2 per 60000 ms)"
    );
    assert!(v.get("tier").is_none());
    // Its bucket is not `other`'s, and unknown names still share `other`.
    assert_eq!(granted(&mut s, at(1), &params("u1", "other", None)), 30);
    let v = err(
        &mut s,
        at(1),
        CONSUME,
        &params("u1", "invented", None),
        "RATE_LIMITED",
    );
    assert_eq!(v["operation"], "other");
    let counts: Vec<(&str, u64)> = s.operation_denials().filter(|c| c.1 > 0).collect();
    assert_eq!(counts, [("other", 2), ("llm_call", 1)]);
    assert_eq!(s.denials()[Operation::Other as usize].1, 2);
}

#[test]
fn the_request_names_its_tier() {
    let mut s = service_with::<4, 2>(TIERED);
    assert_eq!(
        granted(&mut s, at(1), &params("a", "llm_call", Some("free"))),
        10
    );
    assert_eq!(
        granted(&mut s, at(1), &params("b", "llm_call", Some("pro"))),
        100
    );
    assert_eq!(granted(&mut s, at(1), &params("c", "llm_call", None)), 30);
    let v = ok(&mut s, at(1), CHECK, &params("d", "llm_call", Some("pro")));
    assert_eq!(
        v,
        serde_json::json!({"allowed":true,"limit":100,"operation":"llm_call","remaining":100,
                           "retry_after_ms":0,"tier":"pro","window_ms":60000})
    );
    let v = err(
        &mut s,
        at(1),
        CONSUME,
        &params("a", "llm_call", Some("free")),
        "RATE_LIMITED",
    );
    assert_eq!(v["tier"], "free");
    assert_eq!(v["limit"], 10);
    assert_eq!(
        v["message"],
        "rate limit of operation `llm_call` in tier `free` reached for this key (10 per 60000 ms)"
    );
    // Without a tier the reply is what it always was: no `tier` member.
    let v = ok(&mut s, at(1), CHECK, &params("e", "search", None));
    assert!(v.get("tier").is_none());
    // A tier that sets nothing for an operation follows the top level.
    let v = ok(&mut s, at(1), CHECK, &params("e", "search", Some("pro")));
    assert_eq!(
        (v["limit"].as_u64(), v["tier"].as_str()),
        (Some(30), Some("pro"))
    );
}

#[test]
fn the_default_tier_serves_requests_that_name_none() {
    let doc = TIERED.replace("}}}}}", "}}}},\"default_tier\":\"free\"}");
    let mut s = service_with::<4, 2>(&doc);
    assert_eq!(s.policy().default_tier(), s.policy().tier("free"));
    let v = ok(&mut s, at(1), CHECK, &params("a", "llm_call", None));
    assert_eq!(
        (v["limit"].as_u64(), v["tier"].as_str()),
        (Some(10), Some("free"))
    );
    assert_eq!(granted(&mut s, at(1), &params("a", "llm_call", None)), 10);
    assert_eq!(
        granted(&mut s, at(1), &params("b", "llm_call", Some("pro"))),
        100
    );
}

#[test]
fn a_key_has_one_bucket_whatever_its_tier() {
    let mut s = service_with::<4, 2>(TIERED);
    assert_eq!(
        granted(&mut s, at(1), &params("a", "llm_call", Some("free"))),
        10
    );
    // The whole window is used: naming another tier buys no fresh bucket. Under pro a token
    // comes back every 600 ms.
    let v = err(
        &mut s,
        at(1),
        CONSUME,
        &params("a", "llm_call", Some("pro")),
        "RATE_LIMITED",
    );
    assert_eq!(v["retry_after_ms"], 600);
    let later = at(1) + Duration::from_millis(600);
    ok(
        &mut s,
        later,
        CONSUME,
        &params("a", "llm_call", Some("pro")),
    );
    assert_eq!(
        s.limiter_keys(),
        1,
        "one bucket for key a, under both tiers"
    );
}

#[test]
fn an_unknown_tier_is_a_bad_request_naming_the_param() {
    let mut s = service_with::<4, 2>(TIERED);
    for method in [CHECK, CONSUME] {
        let v = err(
            &mut s,
            at(1),
            method,
            &params("a", "llm_call", Some("gold")),
            "BAD_REQUEST",
        );
        assert_eq!(
            v["message"],
            "params.tier: unknown tier (expected one of: free, pro)"
        );
    }
    let mut plain = service_with::<0, 0>("{}");
    let v = err(
        &mut plain,
        at(1),
        CHECK,
        &params("a", "search", Some("free")),
        "BAD_REQUEST",
    );
    assert_eq!(
        v["message"],
        "params.tier: unknown tier (the policy defines no tiers)"
    );
    let long = "t".repeat(65);
    for (p, message) in [
        (
            r#"{"key":"a","operation":"x","tier":""}"#.into(),
            "params.tier: must be 1 to 64 bytes long",
        ),
        (
            format!(r#"{{"key":"a","operation":"x","tier":"{long}"}}"#),
            "params.tier: must be 1 to 64 bytes long",
        ),
        (
            r#"{"key":"a","operation":"x","tier":5}"#.into(),
            "params.tier: must be a string",
        ),
        (
            r#"{"key":"a","operation":"x","tier":"free","tier":"pro"}"#.into(),
            "params.tier: duplicate field",
        ),
        (
            r#"{"key":"a","operation":"x","tier":"\ud800"}"#.into(),
            "params.tier: holds an invalid escape",
        ),
    ] {
        let v = err(&mut s, at(1), CHECK, &p, "BAD_REQUEST");
        assert_eq!(v["message"], message, "{p}");
    }
    // `null` counts as absent; an escaped name is read unescaped.
    ok(
        &mut s,
        at(1),
        CHECK,
        r#"{"key":"a","operation":"x","tier":null}"#,
    );
    let v = ok(
        &mut s,
        at(1),
        CHECK,
        r#"{"key":"a","operation":"x","tier":"fr\u0065e"}"#,
    );
    assert_eq!(v["tier"], "free");
    assert_eq!(s.limiter_keys(), 0);
}

#[test]
fn a_new_policy_keeps_buckets_and_counts_by_name() {
    let mut s = service_with::<4, 2>(r#"{"limits":{"m":{"capacity_tokens":1}}}"#);
    ok(&mut s, at(1), CONSUME, &params("k", "m", None));
    err(
        &mut s,
        at(1),
        CONSUME,
        &params("k", "m", None),
        "RATE_LIMITED",
    );
    // `a` sorts before `m`, so `m` moves in the table; its bucket and count stay.
    let mut spare = RatePolicy::parse(r#"{"limits":{"a":{},"m":{"capacity_tokens":1}}}"#).unwrap();
    s.swap_policy(&mut spare);
    assert_eq!(spare.operations_len(), 7, "the spare holds the old policy");
    err(
        &mut s,
        at(1),
        CONSUME,
        &params("k", "m", None),
        "RATE_LIMITED",
    );
    let counts: Vec<(&str, u64)> = s.operation_denials().skip(6).collect();
    assert_eq!(counts, [("a", 0), ("m", 2)]);
    // Dropping `m`: its name counts as `other` and its count goes.
    s.set_policy(RatePolicy::parse(r#"{"limits":{"a":{}}}"#).unwrap());
    let v = ok(&mut s, at(1), CONSUME, &params("k", "m", None));
    assert_eq!(v["operation"], "other");
    assert_eq!(s.operation_denials().map(|c| c.1).sum::<u64>(), 0);
    // The old constructor's policy: built-ins only.
    s.set_limits(PolicyTable::DEFAULT);
    assert_eq!(s.policy().operations_len(), 6);
    assert_eq!(*s.limits(), PolicyTable::DEFAULT);
}

#[test]
fn the_largest_table_serves_every_operation_and_tier() {
    let ops: Vec<String> = (0..CUSTOM_OPERATIONS_MAX)
        .map(|i| format!(r#""op{i:03}":{{"capacity_tokens":{}}}"#, i + 1))
        .collect();
    let tiers: Vec<String> = (0..TIERS_MAX)
        .map(|i| {
            format!(
                r#""t{i:02}":{{"limits":{{"op249":{{"capacity_tokens":{}}}}}}}"#,
                1000 + i
            )
        })
        .collect();
    let doc = format!(
        r#"{{"limits":{{{}}},"tiers":{{{}}}}}"#,
        ops.join(","),
        tiers.join(",")
    );
    let slots = std::vec![Slot::empty(); 64].into_boxed_slice();
    let policy =
        std::boxed::Box::new(RatePolicy::<CUSTOM_OPERATIONS_MAX, TIERS_MAX>::parse(&doc).unwrap());
    let mut s = std::boxed::Box::new(Service::with_policy(
        KeyHasher::new([1; 16]),
        *policy,
        slots,
    ));
    for i in [0, 1, 124, 248, 249] {
        let v = ok(
            &mut *s,
            at(1),
            CHECK,
            &params("k", &format!("op{i:03}"), None),
        );
        assert_eq!(v["limit"], i + 1);
    }
    let v = ok(&mut *s, at(1), CHECK, &params("k", "op249", Some("t15")));
    assert_eq!(v["limit"], 1015);
    let v = ok(&mut *s, at(1), CHECK, &params("k", "op250", Some("t15")));
    assert_eq!(v["operation"], "other");
}

#[test]
fn a_long_list_of_tiers_is_cut_in_the_message() {
    let tiers: Vec<String> = (0..TIERS_MAX)
        .map(|i| format!(r#""{}{i:02}":{{}}"#, "t".repeat(62)))
        .collect();
    let mut s = service_with::<0, TIERS_MAX>(&format!(r#"{{"tiers":{{{}}}}}"#, tiers.join(",")));
    let v = err(
        &mut s,
        at(1),
        CHECK,
        &params("a", "x", Some("gold")),
        "BAD_REQUEST",
    );
    let message = v["message"].as_str().unwrap();
    assert!(message.starts_with("params.tier: unknown tier (expected one of: ttt"));
    assert_eq!(message.len(), 256);
}

#[test]
fn a_success_reply_shows_the_policy_in_force_after_a_swap() {
    let mut s = service_with::<4, 2>(r#"{"limits":{"m":{"capacity_tokens":1}}}"#);
    let v = ok(&mut s, at(1), CHECK, &params("k", "m", None));
    assert_eq!(
        (v["limit"].as_u64(), v["operation"].as_str()),
        (Some(1), Some("m"))
    );
    ok(&mut s, at(1), CHECK, &params("k", "search", None));
    // `a` takes `m`'s place in the table (the first custom one); `search` gets a new limit.
    let mut spare = RatePolicy::parse(
        r#"{"limits":{"a":{"window_ms":1000},"m":{"capacity_tokens":5},"search":{"capacity_tokens":7}}}"#,
    )
    .unwrap();
    s.swap_policy(&mut spare);
    let v = ok(&mut s, at(1), CHECK, &params("k", "a", None));
    assert_eq!(
        v,
        serde_json::json!({"allowed":true,"limit":30,"operation":"a","remaining":30,
                           "retry_after_ms":0,"window_ms":1000})
    );
    let v = ok(&mut s, at(1), CONSUME, &params("k", "m", None));
    assert_eq!(
        (v["limit"].as_u64(), v["operation"].as_str()),
        (Some(5), Some("m"))
    );
    let v = ok(&mut s, at(1), CHECK, &params("k", "search", None));
    assert_eq!(v["limit"], 7);
    // Back to the defaults through `set_limits`.
    s.set_limits(PolicyTable::DEFAULT);
    let v = ok(&mut s, at(1), CHECK, &params("k", "search", None));
    assert_eq!(v["limit"], 30);
    let v = ok(&mut s, at(1), CHECK, &params("k", "a", None));
    assert_eq!(
        (v["limit"].as_u64(), v["operation"].as_str()),
        (Some(30), Some("other"))
    );
}

#[test]
fn calls_whose_reply_parts_share_a_cache_entry_each_get_their_own() {
    // Custom operations c00..c10 are 6..16; under tier `t` (code 1), c03 (9) shares the
    // entry of `search` (0) and of c10 (16): (index + 7 × tier code) mod 16.
    let ops: Vec<String> = (0..11)
        .map(|i| {
            format!(
                r#""c{i:02}":{{"capacity_tokens":{},"window_ms":{}}}"#,
                i + 2,
                1000 * (i + 1)
            )
        })
        .collect();
    let doc = format!(
        r#"{{"limits":{{{}}},"tiers":{{"t":{{"limits":{{"c03":{{"capacity_tokens":9}}}}}}}}}}"#,
        ops.join(",")
    );
    let mut s = service_with::<16, 1>(&doc);
    let expected = [
        (
            params("k", "search", None),
            serde_json::json!({"allowed":true,"limit":30,"operation":"search","remaining":30,
                               "retry_after_ms":0,"window_ms":60000}),
        ),
        (
            params("k", "c10", None),
            serde_json::json!({"allowed":true,"limit":12,"operation":"c10","remaining":12,
                               "retry_after_ms":0,"window_ms":11000}),
        ),
        (
            params("k", "c03", Some("t")),
            serde_json::json!({"allowed":true,"limit":9,"operation":"c03","remaining":9,
                               "retry_after_ms":0,"tier":"t","window_ms":4000}),
        ),
        (
            params("k", "c03", None),
            serde_json::json!({"allowed":true,"limit":5,"operation":"c03","remaining":5,
                               "retry_after_ms":0,"window_ms":4000}),
        ),
    ];
    for _ in 0..3 {
        for (p, want) in &expected {
            assert_eq!(&ok(&mut s, at(1), CHECK, p), want, "{p}");
        }
        for (p, want) in expected.iter().rev() {
            assert_eq!(&ok(&mut s, at(1), CHECK, p), want, "{p}");
        }
    }
}
