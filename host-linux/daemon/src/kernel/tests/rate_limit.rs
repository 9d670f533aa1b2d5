//! RATE_LIMIT_CHECK and RATE_LIMIT_CONSUME reach the core's service (whose own tests in
//! `core/src/service/tests.rs` cover params, decisions and replies); here: the routing, the
//! typed outcome, the table size, the stats and the sweep on tick.

use heidi_core::proto::Method::{RateLimitCheck as Check, RateLimitConsume as Consume};
use heidi_core::proto::{ErrorCode, Request};
use heidi_core::service::Outcome;

use super::{SEEDS, at, err, kernel, ok};
use crate::kernel::{Handled, Kernel, KernelCapacity, Policy};

const T10: &str = r#"{"key":"u1","operation":"transform","cost":1}"#;

#[test]
fn consume_grants_capacity_then_says_when_and_counts_the_denial() {
    let mut k = kernel();
    for i in 0..10 {
        let v = ok(&mut k, at(1), Consume, T10);
        assert_eq!(v["remaining"], 9 - i);
    }
    let v = err(&mut k, at(1), Consume, T10, "RATE_LIMITED");
    assert_eq!(v["retry_after_ms"], 6_000);
    assert_eq!(ok(&mut k, at(7), Consume, T10)["allowed"], true);
    let stats = k.stats();
    assert!(stats.limiter_denials.contains(&("transform".to_owned(), 1)));
    assert!(stats.limiter_denials.contains(&("search".to_owned(), 0)));
    assert_eq!(stats.limiter_denials.len(), 6);
}

/// A parsed frame and its params text give the same bytes and the same typed outcome, which
/// says what the bytes say.
#[test]
fn both_entry_points_answer_alike_with_the_typed_outcome() {
    let (mut by_text, mut by_request) = (kernel(), kernel());
    let cases = [
        (Consume, T10, Outcome::Allowed, None),
        (
            Check,
            r#"{"key":"u1","operation":"transform","cost":10}"#,
            Outcome::Denied { retry_at: at(7) },
            None,
        ),
        (
            Consume,
            r#"{"key":"u1"}"#,
            Outcome::Refused {
                code: ErrorCode::BadRequest,
                retry_at: None,
            },
            Some(ErrorCode::BadRequest),
        ),
    ];
    for (method, params, outcome, error) in cases {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let frame = format!(r#"{{"method":"{method}","params":{params}}}"#);
        let request = Request::parse(&frame).unwrap();
        let Handled::Decided(ra) = by_text.handle(at(1), method, params, &mut a) else {
            panic!("{method} is the service's");
        };
        let Handled::Decided(rb) = by_request.handle_request(at(1), &request, &mut b) else {
            panic!("{method} is the service's");
        };
        assert_eq!((ra, &a), (rb, &b), "{params}");
        assert_eq!((ra.outcome, ra.error), (outcome, error), "{params}");
        assert_eq!(ra.len, a.len());
    }
}

#[test]
fn the_configured_table_size_is_reached() {
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

/// A custom operation and tiers from APPLY_POLICY: each tier is limited at its own capacity,
/// the default tier serves a call that names none, an unknown tier is refused by name, and
/// the custom operation's denials are counted under its name.
#[test]
fn custom_operations_and_tiers_are_served_and_counted() {
    use heidi_core::proto::Method::ApplyPolicy;
    let mut k = kernel();
    let doc = r#"{"policy":{"limits":{"llm_call":{"capacity_tokens":50,"window_ms":60000}},
        "tiers":{"free":{"limits":{"llm_call":{"capacity_tokens":2}}},
                 "pro":{"limits":{"llm_call":{"capacity_tokens":5}}}},
        "default_tier":"free"}}"#;
    assert_eq!(ok(&mut k, at(1), ApplyPolicy, doc)["version"], 2);
    let consume = |key: &str, tier: &str| {
        let tier = if tier.is_empty() {
            String::new()
        } else {
            format!(r#","tier":"{tier}""#)
        };
        format!(r#"{{"key":"{key}","operation":"llm_call"{tier}}}"#)
    };
    // The default tier (free) and free share one bucket: 2 in all.
    assert_eq!(
        ok(&mut k, at(2), Consume, &consume("u1", ""))["tier"],
        "free"
    );
    assert_eq!(
        ok(&mut k, at(2), Consume, &consume("u1", "free"))["limit"],
        2
    );
    err(
        &mut k,
        at(2),
        Consume,
        &consume("u1", "free"),
        "RATE_LIMITED",
    );
    // A key that used all of free's window is short of all of pro's too: the tier chooses
    // the limit, not the bucket.
    err(
        &mut k,
        at(2),
        Consume,
        &consume("u1", "pro"),
        "RATE_LIMITED",
    );
    for _ in 0..5 {
        let v = ok(&mut k, at(2), Consume, &consume("u2", "pro"));
        assert_eq!(
            (v["operation"].as_str(), v["limit"].as_u64()),
            (Some("llm_call"), Some(5))
        );
    }
    let v = err(
        &mut k,
        at(2),
        Consume,
        &consume("u2", "gold"),
        "BAD_REQUEST",
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("params.tier: unknown tier")
    );
    let denials = k.stats().limiter_denials;
    assert_eq!(denials.len(), 7);
    assert_eq!(denials[6], ("llm_call".to_owned(), 2));
    // GET_POLICY writes the custom operation and the tiers back.
    let got = ok(&mut k, at(3), heidi_core::proto::Method::GetPolicy, "{}");
    assert_eq!(got["policy"]["limits"]["llm_call"]["capacity_tokens"], 50);
    assert_eq!(
        got["policy"]["tiers"]["pro"]["limits"]["llm_call"]["capacity_tokens"],
        5
    );
    assert_eq!(got["policy"]["default_tier"], "free");
}
