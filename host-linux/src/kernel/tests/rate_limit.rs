//! RATE_LIMIT_CHECK and RATE_LIMIT_CONSUME.

use heidi_core::proto::Method::{RateLimitCheck as Check, RateLimitConsume as Consume};

use super::{SEEDS, at, err, kernel, ok};
use crate::kernel::{Kernel, KernelCapacity, Policy};

const T10: &str = r#"{"key":"u1","operation":"transform","cost":1}"#;

#[test]
fn consume_grants_capacity_then_says_when() {
    let mut k = kernel();
    for i in 0..10 {
        let v = ok(&mut k, at(1), Consume, T10);
        assert_eq!(v["allowed"], true);
        assert_eq!(v["remaining"], 9 - i);
        assert_eq!(v["limit"], 10);
        assert_eq!(v["operation"], "transform");
        // Full again (i + 1) × 6 s from now.
        assert_eq!(v["reset_after_ms"], (i + 1) * 6_000);
    }
    let v = err(&mut k, at(1), Consume, T10, "RATE_LIMITED");
    assert_eq!(v["retry_after_ms"], 6_000);
    assert_eq!(v["remaining"], 0);
    // Exactly then it is granted.
    assert_eq!(ok(&mut k, at(7), Consume, T10)["allowed"], true);
    let stats = k.stats();
    assert!(stats.limiter_denials.contains(&("transform", 1)));
    assert!(stats.limiter_denials.contains(&("search", 0)));
}

#[test]
fn cost_five_five_five() {
    let mut k = kernel();
    let p = r#"{"key":"u","operation":"transform","cost":5}"#;
    ok(&mut k, at(1), Consume, p);
    ok(&mut k, at(1), Consume, p);
    err(&mut k, at(1), Consume, p, "RATE_LIMITED");
}

#[test]
fn check_takes_nothing() {
    let mut k = kernel();
    let v = ok(
        &mut k,
        at(1),
        Check,
        r#"{"key":"u","operation":"transform","cost":10}"#,
    );
    assert_eq!(
        (v["allowed"].clone(), v["remaining"].clone()),
        (true.into(), 10.into())
    );
    assert_eq!(v["retry_after_ms"], 0);
    assert_eq!(k.stats().limiter_keys, 0, "a check never takes a slot");
    ok(
        &mut k,
        at(1),
        Consume,
        r#"{"key":"u","operation":"transform","cost":8}"#,
    );
    let v = ok(
        &mut k,
        at(1),
        Check,
        r#"{"key":"u","operation":"transform","cost":3}"#,
    );
    assert_eq!(v["allowed"], false);
    assert_eq!(v["remaining"], 2);
    assert_eq!(v["retry_after_ms"], 6_000);
}

#[test]
fn keys_and_operations_have_separate_buckets_unknown_ops_share_other() {
    let mut k = kernel();
    let p = |key: &str, op: &str| format!(r#"{{"key":"{key}","operation":"{op}","cost":30}}"#);
    ok(&mut k, at(1), Consume, &p("a", "search"));
    ok(&mut k, at(1), Consume, &p("b", "search"));
    let v = ok(&mut k, at(1), Consume, &p("a", "invented"));
    assert_eq!(v["operation"], "other");
    let v = err(&mut k, at(1), Consume, &p("a", "made_up"), "RATE_LIMITED");
    assert_eq!(v["operation"], "other");
}

#[test]
fn bad_params_name_the_param() {
    let mut k = kernel();
    let cases = [
        (r#"{"operation":"search"}"#, "params.key: is required"),
        (
            r#"{"key":5,"operation":"search"}"#,
            "params.key: must be a string",
        ),
        (
            r#"{"key":"","operation":"search"}"#,
            "params.key: must be 1 to 256 bytes long",
        ),
        (r#"{"key":"k"}"#, "params.operation: is required"),
        (
            r#"{"key":"k","operation":"search","cost":0}"#,
            "params.cost: must be an integer",
        ),
        (
            r#"{"key":"k","operation":"search","cost":-1}"#,
            "params.cost: must be an integer",
        ),
        (
            r#"{"key":"k","operation":"search","cost":1.5}"#,
            "params.cost: must be an integer",
        ),
        (
            r#"{"key":"k","operation":"search","cost":31}"#,
            "params.cost: 31 is above the capacity",
        ),
        (
            r#"{"key":"k","operation":"search","costs":1}"#,
            "params.costs: unknown field",
        ),
    ];
    for method in [Check, Consume] {
        for (params, message) in cases {
            let v = err(&mut k, at(1), method, params, "BAD_REQUEST");
            let got = v["message"].as_str().unwrap();
            assert!(got.starts_with(message), "{params}: {got}");
        }
    }
}

#[test]
fn key_length_limit_is_reached() {
    let mut k = kernel();
    let key = "k".repeat(256);
    let p = format!(r#"{{"key":"{key}","operation":"search"}}"#);
    ok(&mut k, at(1), Consume, &p);
    let p = format!(r#"{{"key":"{key}x","operation":"search"}}"#);
    err(&mut k, at(1), Consume, &p, "BAD_REQUEST");
}

#[test]
fn a_full_table_is_overloaded_with_retry_after() {
    let small = KernelCapacity {
        limiter_slots: 8,
        ..super::SMALL
    };
    let mut k = Kernel::with_capacity(SEEDS, Policy::default(), small);
    let p = |i: usize| format!(r#"{{"key":"k{i}","operation":"search"}}"#);
    for i in 0..8 {
        ok(&mut k, at(1), Consume, &p(i));
    }
    let v = err(&mut k, at(1), Consume, &p(8), "OVERLOADED");
    // One token of 30 per 60 s refills in 2 s, then the slot is reusable.
    assert_eq!(v["retry_after_ms"], 2_000);
    ok(&mut k, at(3), Consume, &p(8));
}

#[test]
fn sweeps_free_refilled_buckets_on_tick() {
    let mut k = kernel();
    assert_eq!(k.poll_timeout(), None);
    ok(&mut k, at(1), Consume, T10);
    assert_eq!(k.stats().limiter_keys, 1);
    let due = k.poll_timeout().expect("a sweep is scheduled");
    k.tick(due.max(at(10)));
    assert_eq!(k.stats().limiter_keys, 0, "refilled after 6 s");
    assert_eq!(k.poll_timeout(), None);
}

#[test]
fn duplicate_params_are_refused_not_last_wins() {
    let mut k = kernel();
    let v = err(
        &mut k,
        at(1),
        Consume,
        r#"{"key":"a","operation":"other","cost":1,"cost":2}"#,
        "BAD_REQUEST",
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("params.cost: duplicate field"),
        "{v}"
    );
    // Nothing was taken.
    let v = ok(&mut k, at(1), Check, r#"{"key":"a","operation":"other"}"#);
    assert_eq!(v["remaining"], v["limit"]);
}
