//! Request sequences against the core's service (`RATE_LIMIT_CHECK`, `RATE_LIMIT_CONSUME`):
//! arbitrary time steps (µs, ms, and leaps towards the end of the clock), keys from a small
//! pool so buckets meet, costs, operations, malformed params and whole frames, floods of fresh
//! keys, sweeps and limit changes, on a table of 8 slots (one group: it fills, and the model knows when) or of
//! 1024. Oracles:
//!
//! - no panic; every reply fits [`REPLY_MAX_BYTES`] and is one JSON object (serde_json) of the
//!   documented shape: a success reply with exactly its members in sorted order (the bytes
//!   serde_json writes), or `{"error":true,"code","message"}` plus only the documented extras;
//! - [`Reply::outcome`] and [`Reply::error`] say what the bytes say;
//! - the reference model of `tests/tests/support/service_model.rs` (integer GCRA per
//!   (operation, key), cost 0 a peek, a cost above capacity refused, a full table
//!   `OVERLOADED`): every call the service accepts gets exactly the model's reply bytes and
//!   outcome, and `RATE_LIMITED` counts match;
//! - a request built from known parts is refused with `BAD_REQUEST` exactly when its params
//!   break a rule, whatever escapes, whitespace and member order it is written with;
//! - a check changes nothing: the same check again at the same `now` answers the same bytes;
//! - a method the service does not cover leaves the reply buffer untouched.
//!
//! Memory: the target allocates a few strings per call and nothing that grows with the run
//! (the model holds at most 22 keys × 6 operations, the steps are capped at [`MAX_STEPS`]).
//! Under `cargo fuzz run` its RSS was ~450 MiB, nearly all of it AddressSanitizer's quarantine
//! of freed blocks (256 MiB by default) and its shadow, which every allocation-heavy target
//! fills within seconds; [`__asan_default_options`] cuts the quarantine to 16 MiB, and the
//! peak to ~90 MiB.
#![no_main]

#[path = "../../tests/tests/support/service_model.rs"]
mod service_model;

use std::fmt::Write;

use arbitrary::Arbitrary;
use heidi_core::key::KeyHasher;
use heidi_core::limit::{LimitPolicy, Operation, PolicyTable, Tat};
use heidi_core::proto::{ErrorCode, Method, Request};
use heidi_core::service::{Outcome, REPLY_MAX_BYTES, Reply, Served, Service};
use heidi_core::table::Slot;
use heidi_core::{Duration, Instant};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use service_model::{Decision, Limit, Model, operation_index, reply_body};

/// Most steps of one run.
const MAX_STEPS: usize = 400;

const KEYS: [&str; 6] = ["u1", "u2", "k\"q", "ü ✓", "", "k"];
const OPS: [&str; 9] = [
    "search",
    "transform",
    "embed",
    "ai_generate",
    "health_check",
    "other",
    "invented",
    "",
    "Search",
];

#[derive(Arbitrary, Debug)]
enum Cost {
    Absent,
    Null,
    Int(u32),
    Small(u8),
    Big(u64),
    Float,
    Negative,
    Text,
}

#[derive(Arbitrary, Debug)]
struct Call {
    consume: bool,
    key: u8,
    /// Repeat the key to make it long (0: as is).
    key_repeat: u16,
    op: u8,
    cost: Cost,
    /// Bit 0: escape the key; 1: escape the operation; 2: escape the names; 3: whitespace;
    /// 4: an unknown member; 5: the key twice; 6: the key as a number.
    form: u8,
    /// Member order (a rotation).
    order: u8,
}

#[derive(Arbitrary, Debug)]
enum Step {
    AdvanceUs(u16),
    AdvanceMs(u16),
    /// Jumps `2^(63 - n % 64)` µs ahead (saturating at the end of the clock).
    Leap(u8),
    Call(Call),
    Raw {
        consume: bool,
        params: String,
    },
    Frame(String),
    Sweep(u8),
    /// Consumes of cost 1 by `n % 17` fresh keys of one operation: fills the small table.
    Flood {
        n: u8,
        op: u8,
    },
    SetLimit {
        op: u8,
        capacity: u8,
        window_us: u32,
    },
}

#[derive(Arbitrary, Debug)]
struct Run {
    limits: [(u8, u32); 6],
    small_table: bool,
    start_us: u32,
    steps: Vec<Step>,
}

/// AddressSanitizer's defaults for this target (`ASAN_OPTIONS` still overrides them): a
/// small quarantine. Use-after-free cannot happen in safe code, and the core is `forbid(unsafe)`.
#[unsafe(no_mangle)]
pub extern "C" fn __asan_default_options() -> *const std::ffi::c_char {
    c"quarantine_size_mb=16".as_ptr()
}

fn limit(capacity: u8, window_us: u32) -> Limit {
    Limit {
        capacity: u32::from(capacity.max(1)),
        window_us: u64::from(window_us.max(1)),
    }
}

fn policy(l: Limit) -> LimitPolicy {
    LimitPolicy::new(l.capacity, Duration::from_micros(l.window_us)).expect("a valid limit")
}

fuzz_target!(|run: Run| {
    let limits = run.limits.map(|(c, w)| limit(c, w));
    let mut table = PolicyTable::DEFAULT;
    for (op, l) in Operation::ALL.into_iter().zip(limits) {
        table.set(op, policy(l));
    }
    let slots = if run.small_table { 8 } else { 1024 };
    let storage = vec![Slot::empty(); slots].into_boxed_slice();
    let mut pair = Pair {
        service: Service::new(KeyHasher::new([9; 16]), table, storage),
        model: Model::new(limits, slots),
        out: [0; REPLY_MAX_BYTES],
    };
    let mut now = Instant::from_micros(u64::from(run.start_us));
    let mut frame = String::new();
    for step in run.steps.iter().take(MAX_STEPS) {
        frame.clear();
        let expect_valid = match step {
            Step::AdvanceUs(us) => {
                now = now.saturating_add(Duration::from_micros(u64::from(*us)));
                continue;
            }
            Step::AdvanceMs(ms) => {
                now = now.saturating_add(Duration::from_millis(u64::from(*ms)));
                continue;
            }
            Step::Leap(n) => {
                let us = 1u64 << (64 - u32::from(n % 64) - 1);
                now = now.saturating_add(Duration::from_micros(us));
                continue;
            }
            Step::Sweep(max) => {
                pair.service.sweep(now, usize::from(*max));
                continue;
            }
            Step::SetLimit {
                op,
                capacity,
                window_us,
            } => {
                let i = usize::from(*op) % 6;
                pair.model.limits[i] = limit(*capacity, *window_us);
                let mut table = *pair.service.limits();
                table.set(Operation::ALL[i], policy(pair.model.limits[i]));
                pair.service.set_limits(table);
                continue;
            }
            Step::Flood { n, op } => {
                let op = OPS[usize::from(*op) % 6];
                for i in 0..n % 17 {
                    frame.clear();
                    let params = format!(r#"{{"key":"flood-{i}","operation":"{op}"}}"#);
                    write_frame(&mut frame, Method::RateLimitConsume, &params);
                    let request = Request::parse(&frame).expect("a flood request parses");
                    pair.serve(now, &request, Some(true));
                }
                continue;
            }
            Step::Call(call) => {
                let (params, valid) = write_call(call);
                write_frame(&mut frame, method(call.consume), &params);
                Some(valid)
            }
            Step::Raw { consume, params } => {
                write_frame(&mut frame, method(*consume), params);
                None
            }
            Step::Frame(text) => {
                frame.push_str(text);
                None
            }
        };
        let Ok(request) = Request::parse(&frame) else {
            assert!(expect_valid.is_none(), "a built request parses: {frame}");
            continue;
        };
        pair.serve(now, &request, expect_valid);
        let denials = pair.service.denials().map(|(_, n)| n);
        assert_eq!(denials, pair.model.denials, "RATE_LIMITED counts");
        assert!(pair.service.limiter_keys() <= slots);
    }
});

fn method(consume: bool) -> Method {
    if consume {
        Method::RateLimitConsume
    } else {
        Method::RateLimitCheck
    }
}

fn write_frame(frame: &mut String, method: Method, params: &str) {
    let _ = write!(frame, r#"{{"method":"{method}","params":{params}}}"#);
}

/// The service under test, its model and the reply buffer.
struct Pair {
    service: Service<Box<[Slot<Tat>]>>,
    model: Model,
    out: [u8; REPLY_MAX_BYTES],
}

impl Pair {
    /// Serves one parsed request and holds the reply to every oracle.
    fn serve(&mut self, now: Instant, request: &Request<'_>, expect_valid: Option<bool>) {
        let out = &mut self.out;
        out.fill(0xA5);
        let consume = match request.method {
            Method::RateLimitConsume => true,
            Method::RateLimitCheck => false,
            _ => {
                assert_eq!(self.service.handle(now, request, out), Served::NotCovered);
                assert!(out.iter().all(|&b| b == 0xA5), "NotCovered wrote a reply");
                return;
            }
        };
        let Served::Reply(reply) = self.service.handle(now, request, out) else {
            panic!("{} is covered", request.method);
        };
        assert!(reply.len <= REPLY_MAX_BYTES);
        let body = out[..reply.len].to_vec();
        let v: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&body)));
        check_shape(&v, &body, consume, &reply);
        if !consume {
            // A check changes nothing: asked again, it answers the same bytes.
            let Served::Reply(again) = self.service.handle(now, request, out) else {
                panic!("covered");
            };
            assert_eq!(again, reply, "a repeated check");
            assert_eq!(&out[..again.len], &body[..], "a repeated check");
        }
        let accepted = reply.error != Some(ErrorCode::BadRequest)
            || v["message"]
                .as_str()
                .is_some_and(|m| m.contains("above the capacity"));
        if let Some(valid) = expect_valid {
            assert_eq!(accepted, valid, "{}: {v}", request.params);
        }
        if accepted {
            let body = String::from_utf8(body).expect("UTF-8");
            self.against_model(now, consume, request.params, &body, &reply);
        }
    }

    /// Holds an accepted call's reply to the model's, byte for byte.
    fn against_model(
        &mut self,
        now: Instant,
        consume: bool,
        params: &str,
        body: &str,
        reply: &Reply,
    ) {
        // serde_json reads the params the service accepted (escapes decoded; no duplicates).
        let p: Value = serde_json::from_str(params)
            .unwrap_or_else(|e| panic!("accepted params are JSON ({e}): {params}"));
        let key = p["key"].as_str().expect("an accepted call has a key");
        let op = operation_index(p["operation"].as_str().expect("and an operation"));
        let cost = match p.get("cost") {
            None | Some(Value::Null) => 1,
            Some(c) => u32::try_from(c.as_u64().expect("an integer cost")).expect("a u32 cost"),
        };
        let now_us = now.as_micros();
        let model = &mut self.model;
        let available = model.available(now_us, op, key);
        let limit = model.limits[op];
        let decision = if consume {
            model.consume(now_us, op, key, cost)
        } else {
            model.check(now_us, op, key, cost)
        };
        let expected = reply_body(consume, decision, limit, op, cost, now_us, available);
        assert_eq!(body, expected, "{params} at {now_us} µs: {decision:?}");
        let (outcome, error) = expected_outcome(consume, decision);
        assert_eq!((reply.outcome, reply.error), (outcome, error), "{body}");
    }
}

fn expected_outcome(consume: bool, d: Decision) -> (Outcome, Option<ErrorCode>) {
    let at = Instant::from_micros;
    match d {
        Decision::Granted { .. } => (Outcome::Allowed, None),
        Decision::Denied { retry_at_us } => (
            Outcome::Denied {
                retry_at: at(retry_at_us),
            },
            consume.then_some(ErrorCode::RateLimited),
        ),
        Decision::OverCapacity => (
            Outcome::Refused {
                code: ErrorCode::BadRequest,
                retry_at: None,
            },
            Some(ErrorCode::BadRequest),
        ),
        Decision::TableFull { retry_at_us } => (
            Outcome::Refused {
                code: ErrorCode::Overloaded,
                retry_at: Some(at(retry_at_us)),
            },
            Some(ErrorCode::Overloaded),
        ),
    }
}

fn check_shape(v: &Value, body: &[u8], consume: bool, reply: &Reply) {
    let obj = v.as_object().expect("an object");
    let error = reply.error.map(ErrorCode::as_str);
    if v.get("error").is_some() {
        assert_eq!(v["error"], true);
        assert_eq!(
            v["code"].as_str(),
            error,
            "the outcome's code is the reply's"
        );
        assert!(v["message"].is_string());
        let extras = ["retry_after_ms", "remaining", "limit", "operation"];
        // The error shape comes first (serde_json's map sorts, so read the bytes).
        assert!(body.starts_with(br#"{"error":true,"code":""#), "{v}");
        let known = ["error", "code", "message"];
        assert!(
            obj.keys()
                .all(|n| known.contains(&n.as_str()) || extras.contains(&n.as_str())),
            "{v}"
        );
        match reply.outcome {
            Outcome::Denied { .. } => assert_eq!(error, Some("RATE_LIMITED")),
            Outcome::Refused { code, .. } => assert_eq!(error, Some(code.as_str())),
            Outcome::Allowed => panic!("an allowed call is not an error: {v}"),
        }
        return;
    }
    assert_eq!(error, None);
    let names: Vec<&str> = obj.keys().map(String::as_str).collect();
    let last = if consume {
        "reset_after_ms"
    } else {
        "retry_after_ms"
    };
    let expected = [
        "allowed",
        "limit",
        "operation",
        "remaining",
        last,
        "window_ms",
    ];
    let mut sorted = expected;
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    assert_eq!(body, serde_json::to_vec(v).unwrap(), "canonical bytes");
    match reply.outcome {
        Outcome::Allowed => assert_eq!(v["allowed"], true),
        Outcome::Denied { .. } => {
            assert!(!consume, "a denied consume is an error reply");
            assert_eq!(v["allowed"], false);
        }
        Outcome::Refused { .. } => panic!("a refusal is an error reply: {v}"),
    }
}

/// The params text of `call`, and whether they follow every rule.
fn write_call(call: &Call) -> (String, bool) {
    let base = KEYS[usize::from(call.key) % KEYS.len()];
    let key = if call.key_repeat > 0 && !base.is_empty() {
        base.repeat(usize::from(call.key_repeat % 300) + 1)
    } else {
        base.to_owned()
    };
    let op = OPS[usize::from(call.op) % OPS.len()];
    let bit = |n: u8| call.form & (1 << n) != 0;
    let name = |n: &str| if bit(2) { escape_all(n) } else { n.to_owned() };
    let ws = if bit(3) { " \n\t" } else { "" };
    let mut members = Vec::new();
    let key_value = if bit(6) {
        "5".to_owned()
    } else {
        string(&key, bit(0))
    };
    members.push(format!("\"{}\"{ws}:{ws}{key_value}", name("key")));
    members.push(format!("\"{}\":{}", name("operation"), string(op, bit(1))));
    let (cost, cost_ok) = match call.cost {
        Cost::Absent => (None, true),
        Cost::Null => (Some("null".to_owned()), true),
        Cost::Int(n) => (Some(n.to_string()), true),
        Cost::Small(n) => (Some(n.to_string()), true),
        Cost::Big(n) => (Some(n.to_string()), n <= u64::from(u32::MAX)),
        Cost::Float => (Some("1.0".to_owned()), false),
        Cost::Negative => (Some("-1".to_owned()), false),
        Cost::Text => (Some("\"1\"".to_owned()), false),
    };
    if let Some(cost) = cost {
        members.push(format!("\"{}\":{cost}", name("cost")));
    }
    if bit(4) {
        members.push(format!("\"{}\":[1,{{}}]", name("extra")));
    }
    if bit(5) {
        members.push(format!("\"{}\":{}", name("key"), string(&key, false)));
    }
    let turn = usize::from(call.order) % members.len();
    members.rotate_left(turn);
    let params = format!(
        "{ws}{{{ws}{}{ws}}}{ws}",
        members.join(&format!("{ws},{ws}"))
    );
    let key_ok = !bit(6) && (1..=256).contains(&key.len());
    let op_ok = (1..=64).contains(&op.len());
    (params, key_ok && op_ok && cost_ok && !bit(4) && !bit(5))
}

/// `s` as a JSON string, every character as a `\u` escape when `escape`.
fn string(s: &str, escape: bool) -> String {
    if escape {
        format!("\"{}\"", escape_all(s))
    } else {
        serde_json::to_string(s).expect("a string serializes")
    }
}

fn escape_all(s: &str) -> String {
    let mut out = String::new();
    for unit in s.encode_utf16() {
        let _ = write!(out, "\\u{unit:04x}");
    }
    out
}
