//! The service's rate-limit methods: every reply is parsed as JSON and checked against the
//! reply's typed outcome.

extern crate std;

use std::format;
use std::string::String;

use serde_json::Value;

use super::*;
use crate::limit::LimitPolicy;
use crate::{Duration, Instant};

const T10: &str = r#"{"key":"u1","operation":"transform","cost":1}"#;
const CHECK: Method = Method::RateLimitCheck;
const CONSUME: Method = Method::RateLimitConsume;

pub(super) type Boxed = std::boxed::Box<[Slot<Tat>]>;

fn service_of(slots: usize) -> Service<Boxed> {
    let slots = std::vec![Slot::empty(); slots].into_boxed_slice();
    Service::new(KeyHasher::new([1; 16]), PolicyTable::DEFAULT, slots)
}

fn service() -> Service<Boxed> {
    service_of(64)
}

pub(super) fn at(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

/// Serves `params` through a parsed frame (the daemon's path) and through the params text;
/// both must write the same bytes. Returns the reply, its JSON and the body as sent.
pub(super) fn call<const C: usize, const T: usize>(
    s: &mut Service<Boxed, C, T>,
    now: Instant,
    method: Method,
    params: &str,
) -> (Reply, Value) {
    let frame = format!(r#"{{"method":"{method}","params":{params}}}"#);
    let request = Request::parse(&frame).expect("a valid frame");
    let mut twin = clone_of(s);
    let mut out = [0u8; REPLY_MAX_BYTES];
    let Served::Reply(reply) = s.handle(now, &request, &mut out) else {
        panic!("{method} is covered");
    };
    let mut text_out = [0u8; REPLY_MAX_BYTES];
    let Served::Reply(text_reply) = twin.handle_params(now, method, params, &mut text_out) else {
        panic!("{method} is covered");
    };
    let body = &out[..reply.len];
    assert_eq!(
        (reply, body),
        (text_reply, &text_out[..reply.len]),
        "{params}"
    );
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(body));
    });
    assert_eq!(
        reply.error.is_some(),
        v.get("error").is_some(),
        "{method} {params}: the outcome says what the bytes say: {v}"
    );
    if let Some(code) = reply.error {
        assert_eq!(v["error"], true);
        assert_eq!(v["code"], code.as_str());
        assert!(v["message"].is_string());
    } else {
        // Success replies are canonical: the bytes serde_json writes for the same object.
        assert_eq!(body, serde_json::to_vec(&v).unwrap(), "{v}");
    }
    (reply, v)
}

pub(super) fn clone_of<const C: usize, const T: usize>(
    s: &Service<Boxed, C, T>,
) -> Service<Boxed, C, T> {
    Service {
        hasher: s.hasher,
        policy: s.policy.clone(),
        rate: s.rate.clone(),
        breakers: NoBreakers,
        leases: NoLeases,
        health: NoHealth,
        idempotency: NoIdempotency,
        sweep: s.sweep,
    }
}

pub(super) fn ok<const C: usize, const T: usize>(
    s: &mut Service<Boxed, C, T>,
    now: Instant,
    method: Method,
    params: &str,
) -> Value {
    let (reply, v) = call(s, now, method, params);
    assert_eq!(reply.error, None, "{method} {params}: {v}");
    v
}

pub(super) fn err<const C: usize, const T: usize>(
    s: &mut Service<Boxed, C, T>,
    now: Instant,
    method: Method,
    params: &str,
    code: &str,
) -> Value {
    let (reply, v) = call(s, now, method, params);
    assert_eq!(
        reply.error.map(ErrorCode::as_str),
        Some(code),
        "{params}: {v}"
    );
    v
}

fn denials(s: &Service<Boxed>, op: Operation) -> u64 {
    s.denials()[op as usize].1
}

#[test]
fn consume_grants_capacity_then_says_when() {
    let mut s = service();
    for i in 0..10 {
        let (reply, v) = call(&mut s, at(1), CONSUME, T10);
        assert_eq!(reply.outcome, Outcome::Allowed);
        assert_eq!(v["allowed"], true);
        assert_eq!(v["remaining"], 9 - i);
        assert_eq!(v["limit"], 10);
        assert_eq!(v["operation"], "transform");
        // Full again (i + 1) × 6 s from now.
        assert_eq!(v["reset_after_ms"], (i + 1) * 6_000);
    }
    let (reply, v) = call(&mut s, at(1), CONSUME, T10);
    assert_eq!(reply.outcome, Outcome::Denied { retry_at: at(7) });
    assert_eq!(reply.error, Some(ErrorCode::RateLimited));
    assert_eq!(v["retry_after_ms"], 6_000);
    assert_eq!(v["remaining"], 0);
    // Exactly then it is granted.
    assert_eq!(ok(&mut s, at(7), CONSUME, T10)["allowed"], true);
    assert_eq!(denials(&s, Operation::Transform), 1);
    assert_eq!(denials(&s, Operation::Search), 0);
}

#[test]
fn a_denied_consume_is_the_documented_error_reply() {
    let mut s = service();
    let p = r#"{"key":"u","operation":"transform","cost":10}"#;
    ok(&mut s, at(1), CONSUME, p);
    let mut out = [0u8; REPLY_MAX_BYTES];
    let Served::Reply(reply) = s.handle_params(at(1), CONSUME, p, &mut out) else {
        panic!("covered");
    };
    assert_eq!(
        core::str::from_utf8(&out[..reply.len]).unwrap(),
        r#"{"error":true,"code":"RATE_LIMITED","message":"rate limit of operation `transform` reached for this key (10 per 60000 ms)","retry_after_ms":60000,"remaining":0,"limit":10,"operation":"transform"}"#
    );
}

#[test]
fn cost_five_five_five() {
    let mut s = service();
    let p = r#"{"key":"u","operation":"transform","cost":5}"#;
    ok(&mut s, at(1), CONSUME, p);
    ok(&mut s, at(1), CONSUME, p);
    err(&mut s, at(1), CONSUME, p, "RATE_LIMITED");
}

#[test]
fn check_takes_nothing() {
    let mut s = service();
    let v = ok(
        &mut s,
        at(1),
        CHECK,
        r#"{"key":"u","operation":"transform","cost":10}"#,
    );
    assert_eq!((&v["allowed"], &v["remaining"]), (&true.into(), &10.into()));
    assert_eq!(v["retry_after_ms"], 0);
    assert_eq!(s.limiter_keys(), 0, "a check never takes a slot");
    ok(
        &mut s,
        at(1),
        CONSUME,
        r#"{"key":"u","operation":"transform","cost":8}"#,
    );
    let p = r#"{"key":"u","operation":"transform","cost":3}"#;
    let (reply, v) = call(&mut s, at(1), CHECK, p);
    assert_eq!(reply.outcome, Outcome::Denied { retry_at: at(7) });
    assert_eq!(reply.error, None, "a denied check is a success reply");
    assert_eq!(v["allowed"], false);
    assert_eq!(v["remaining"], 2);
    assert_eq!(v["retry_after_ms"], 6_000);
    assert_eq!(denials(&s, Operation::Transform), 0, "only consumes count");
}

#[test]
fn cost_zero_is_the_limiters_peek() {
    let mut s = service();
    let zero = r#"{"key":"u","operation":"transform","cost":0}"#;
    let v = ok(&mut s, at(1), CONSUME, zero);
    assert_eq!((&v["allowed"], &v["remaining"]), (&true.into(), &10.into()));
    assert_eq!(v["reset_after_ms"], 0);
    assert_eq!(s.limiter_keys(), 0, "a peek takes no slot");
    ok(
        &mut s,
        at(1),
        CONSUME,
        r#"{"key":"u","operation":"transform","cost":10}"#,
    );
    let v = ok(&mut s, at(1), CONSUME, zero);
    assert_eq!(
        (&v["remaining"], &v["reset_after_ms"]),
        (&0.into(), &60_000.into())
    );
    let v = ok(&mut s, at(1), CHECK, zero);
    assert_eq!(
        (&v["allowed"], &v["retry_after_ms"]),
        (&true.into(), &0.into())
    );
}

#[test]
fn keys_and_operations_have_separate_buckets_unknown_ops_share_other() {
    let mut s = service();
    let p = |key: &str, op: &str| format!(r#"{{"key":"{key}","operation":"{op}","cost":30}}"#);
    ok(&mut s, at(1), CONSUME, &p("a", "search"));
    ok(&mut s, at(1), CONSUME, &p("b", "search"));
    let v = ok(&mut s, at(1), CONSUME, &p("a", "invented"));
    assert_eq!(v["operation"], "other");
    let v = err(&mut s, at(1), CONSUME, &p("a", "made_up"), "RATE_LIMITED");
    assert_eq!(v["operation"], "other");
}

#[test]
fn bad_params_name_the_param() {
    let mut s = service();
    let cases = [
        (r#"{"operation":"search"}"#, "params.key: is required"),
        (
            r#"{"key":null,"operation":"search"}"#,
            "params.key: is required",
        ),
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
            r#"{"key":"k","operation":[]}"#,
            "params.operation: must be a string",
        ),
        (
            r#"{"key":"k","operation":"search","cost":-1}"#,
            "params.cost: must be an integer from 0 to 4294967295",
        ),
        (
            r#"{"key":"k","operation":"search","cost":1.5}"#,
            "params.cost: must be an integer",
        ),
        (
            r#"{"key":"k","operation":"search","cost":1e2}"#,
            "params.cost: must be an integer",
        ),
        (
            r#"{"key":"k","operation":"search","cost":"1"}"#,
            "params.cost: must be an integer",
        ),
        (
            r#"{"key":"k","operation":"search","cost":4294967296}"#,
            "params.cost: must be an integer",
        ),
        (
            r#"{"key":"k","operation":"search","cost":31}"#,
            "params.cost: 31 is above the capacity of operation `search` (30 tokens), so it can never be granted",
        ),
        (
            r#"{"key":"k","operation":"search","costs":1}"#,
            "params.costs: unknown field (expected one of: cost, key, operation, tier)",
        ),
        // The duplicate comes first, then key, operation, cost, then the unknown name that
        // sorts first.
        (r#"{"key":5,"key":6}"#, "params.key: duplicate field"),
        (r#"{"zz":1,"key":5}"#, "params.key: must be a string"),
        (
            r#"{"zz":1,"key":"k","operation":"x","cost":-1}"#,
            "params.cost: must be",
        ),
        (
            r#"{"zz":1,"key":"k","operation":"x","b":2}"#,
            "params.b: unknown field",
        ),
        (
            r#"{"k\u0065y":"k","key":"k","operation":"x"}"#,
            "params.key: duplicate field",
        ),
        (
            r#"{"key":"k","operation":"x","\u00e9":1}"#,
            "params.é: unknown field",
        ),
    ];
    for method in [CHECK, CONSUME] {
        for (params, message) in cases {
            let (reply, v) = call(&mut s, at(1), method, params);
            assert_eq!(
                reply.outcome,
                Outcome::Refused {
                    code: ErrorCode::BadRequest,
                    retry_at: None
                }
            );
            let got = v["message"].as_str().unwrap();
            assert!(got.starts_with(message), "{params}: {got}");
        }
    }
    assert_eq!(s.limiter_keys(), 0, "a refused call takes nothing");
}

#[test]
fn text_that_is_not_an_object_is_refused() {
    let mut s = service();
    for bad in ["{", "[]", "", r#"{"key":"k"} x"#] {
        let mut out = [0u8; REPLY_MAX_BYTES];
        let Served::Reply(reply) = s.handle_params(at(1), CONSUME, bad, &mut out) else {
            panic!("covered");
        };
        let v: Value = serde_json::from_slice(&out[..reply.len]).unwrap();
        assert_eq!(v["code"], "BAD_REQUEST", "{bad:?}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .starts_with("params: not a JSON object")
        );
    }
}

/// Every way of writing the same call reads the same; escaped text is unescaped, not refused.
#[test]
fn escapes_and_whitespace_read_the_same() {
    let same = [
        r#"{"key":"u\"1","operation":"transform","cost":1}"#,
        r#" { "operation" : "transform" ,"key":"u\u00221" } "#,
        "{\"k\\u0065y\":\"u\\\"1\",\n\t\"operation\":\"tr\\u0061nsform\",\r\"cost\":null}",
        r#"{"cost":1,"key":"u\"1","operation":"\u0074ransform"}"#,
    ];
    for params in same {
        let mut s = service();
        for _ in 0..10 {
            ok(&mut s, at(1), CONSUME, same[0]);
        }
        let v = err(&mut s, at(1), CONSUME, params, "RATE_LIMITED");
        assert_eq!(v["operation"], "transform", "{params}");
    }
}

#[test]
fn length_limits_are_reached_plain_and_escaped() {
    let mut s = service();
    for (field, max) in [("key", KEY_MAX_BYTES), ("operation", OPERATION_MAX_BYTES)] {
        let p = |value: &str| {
            let other = if field == "key" { "operation" } else { "key" };
            format!(r#"{{"{field}":"{value}","{other}":"x"}}"#)
        };
        ok(&mut s, at(1), CONSUME, &p(&"k".repeat(max)));
        ok(&mut s, at(1), CONSUME, &p(&r"\u006b".repeat(max)));
        for long in ["k".repeat(max + 1), r"\u006b".repeat(max + 1)] {
            let v = err(&mut s, at(1), CONSUME, &p(&long), "BAD_REQUEST");
            let expected = format!("params.{field}: must be 1 to {max} bytes long");
            assert_eq!(v["message"], expected.as_str());
        }
    }
    // Multi-byte characters count in bytes.
    let v = err(
        &mut s,
        at(1),
        CONSUME,
        &format!(r#"{{"key":"{}","operation":"x"}}"#, "é".repeat(129)),
        "BAD_REQUEST",
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("params.key: must be 1 to 256")
    );
}

#[test]
fn a_lone_surrogate_is_a_bad_escape() {
    let mut s = service();
    let v = err(
        &mut s,
        at(1),
        CONSUME,
        r#"{"key":"\ud800","operation":"x"}"#,
        "BAD_REQUEST",
    );
    assert_eq!(v["message"], "params.key: holds an invalid escape");
}

#[test]
fn a_long_unknown_name_is_cut_in_the_message() {
    let mut s = service();
    let name = "n".repeat(1_000);
    let escaped = r"\u006e".repeat(300);
    for name in [name, escaped] {
        let p = format!(r#"{{"key":"k","operation":"x","{name}":1}}"#);
        let v = err(&mut s, at(1), CONSUME, &p, "BAD_REQUEST");
        let message = v["message"].as_str().unwrap();
        assert!(message.starts_with("params.nnn") || message.starts_with(r"params.\u006e"));
        assert_eq!(message.len(), crate::proto::ERROR_MESSAGE_MAX_BYTES);
    }
}

/// An escaped unknown name right at the length an error shows (found by fuzzing: one byte
/// over it once indexed past a buffer).
#[test]
fn escaped_unknown_names_around_the_shown_length_are_refused() {
    let mut s = service();
    let bound = crate::proto::ERROR_MESSAGE_MAX_BYTES;
    for len in bound - 3..=bound + 3 {
        let name = format!(r"\n{}", "n".repeat(len - 2));
        assert_eq!(name.len(), len);
        let p = format!(r#"{{"key":"k","operation":"x","{name}":1}}"#);
        err(&mut s, at(1), CONSUME, &p, "BAD_REQUEST");
        let tail = format!(r#"{{"{name}":1}}"#);
        let e = super::read_journal_tail(&tail).unwrap_err();
        assert!(format!("{e}").starts_with("params."), "{e}");
    }
}

#[test]
fn a_full_table_is_overloaded_with_retry_after() {
    let mut s = service_of(8);
    let p = |i: usize| format!(r#"{{"key":"k{i}","operation":"search"}}"#);
    for i in 0..8 {
        ok(&mut s, at(1), CONSUME, &p(i));
    }
    let (reply, v) = call(&mut s, at(1), CONSUME, &p(8));
    // One token of 30 per 60 s refills in 2 s, then the slot is reusable.
    assert_eq!(
        reply.outcome,
        Outcome::Refused {
            code: ErrorCode::Overloaded,
            retry_at: Some(at(3))
        }
    );
    assert_eq!(v["code"], "OVERLOADED");
    assert_eq!(v["retry_after_ms"], 2_000);
    assert_eq!(
        denials(&s, Operation::Search),
        0,
        "a full table is not a denial"
    );
    ok(&mut s, at(3), CONSUME, &p(8));
}

#[test]
fn sweeps_free_refilled_buckets() {
    let mut s = service();
    ok(&mut s, at(1), CONSUME, T10);
    assert_eq!(s.limiter_keys(), 1);
    s.sweep(at(6), 64);
    assert_eq!(s.limiter_keys(), 1, "not refilled before 7 s");
    s.sweep(at(7), 64);
    assert_eq!(s.limiter_keys(), 0, "refilled after 6 s");
}

#[test]
fn a_sweep_is_bounded_and_continues_where_it_stopped() {
    let mut s = service_of(64);
    for i in 0..40 {
        ok(
            &mut s,
            at(1),
            CONSUME,
            &format!(r#"{{"key":"k{i}","operation":"x"}}"#),
        );
    }
    let mut sweeps = 0;
    while s.limiter_keys() > 0 {
        s.sweep(at(100), 8);
        sweeps += 1;
        assert!(sweeps <= 8, "64 slots, 8 per sweep");
    }
    assert!(sweeps > 1);
}

#[test]
fn a_policy_change_applies_to_existing_buckets() {
    let mut s = service();
    ok(
        &mut s,
        at(1),
        CONSUME,
        r#"{"key":"u","operation":"search","cost":30}"#,
    );
    let mut limits = PolicyTable::DEFAULT;
    limits.set(
        Operation::Search,
        LimitPolicy::new(60, Duration::from_secs(60)).unwrap(),
    );
    s.set_limits(limits);
    assert_eq!(s.limits(), &limits);
    let v = ok(&mut s, at(1), CHECK, r#"{"key":"u","operation":"search"}"#);
    assert_eq!((&v["limit"], &v["remaining"]), (&60.into(), &0.into()));
}

#[test]
fn never_is_null_or_omitted() {
    let mut s = service();
    // A bucket whose TAT is near the end of time: the next call is never granted.
    let end = Instant::MAX;
    let p = r#"{"key":"u","operation":"search","cost":30}"#;
    ok(
        &mut s,
        Instant::from_micros(end.as_micros() - 60_000_000),
        CONSUME,
        p,
    );
    let late = Instant::from_micros(end.as_micros() - 30_000_000);
    let (reply, v) = call(&mut s, late, CONSUME, p);
    assert_eq!(
        reply.outcome,
        Outcome::Denied {
            retry_at: Instant::MAX
        },
        "{v}"
    );
    assert!(v.get("retry_after_ms").is_none(), "never is omitted: {v}");
    let v = ok(&mut s, late, CHECK, p);
    assert!(v["retry_after_ms"].is_null(), "a check says null: {v}");
}

#[test]
fn methods_not_covered_leave_the_buffer_alone() {
    let mut s = service();
    let mut out = [7u8; REPLY_MAX_BYTES];
    for &method in Method::ALL.iter().filter(|&&m| !covers(m)) {
        assert_eq!(
            s.handle_params(at(1), method, "{}", &mut out),
            Served::NotCovered
        );
    }
    assert!(out.iter().all(|&b| b == 7));
    assert_eq!(Method::ALL.iter().filter(|&&m| covers(m)).count(), 11);
}

/// The longest replies fit [`REPLY_MAX_BYTES`]: every message byte escaped, every extra at
/// its widest.
#[test]
fn the_longest_replies_fit() {
    let mut longest = [0u8; REPLY_MAX_BYTES];
    let message = "\u{1}".repeat(300);
    let name = "o".repeat(64);
    let refusal = super::reply::Refusal::new(ErrorCode::RateLimited, &message)
        .retry_at(Instant::ZERO, Instant::from_micros(u64::MAX - 1))
        .with(super::reply::Extra::Remaining(u32::MAX))
        .with(super::reply::Extra::Limit(u32::MAX))
        .with(super::reply::Extra::Operation(&name))
        .with(super::reply::Extra::Tier(&name));
    let reply = super::reply::encode_refusal(&mut longest, &refusal);
    let v: Value = serde_json::from_slice(&longest[..reply.len]).unwrap();
    assert_eq!(v["operation"], name.as_str());
    assert_eq!(v["tier"], name.as_str());
    assert!(reply.len <= REPLY_MAX_BYTES);
    assert!(
        REPLY_MAX_BYTES - reply.len < 40,
        "the bound is tight: {}",
        reply.len
    );
}
