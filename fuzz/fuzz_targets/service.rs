//! Request sequences against the core's service (`RATE_LIMIT_CHECK`, `RATE_LIMIT_CONSUME`),
//! on a virtual clock, under limits drawn per run. Oracles:
//!
//! - no panic; every reply is one JSON object (parsed by serde_json) of the documented shape:
//!   a success reply with exactly its members in sorted order (the bytes serde_json writes),
//!   or `{"error":true,"code","message"}` plus only the documented extra members;
//! - the typed outcome says what the bytes say (error code, allowed or not);
//! - replies fit [`REPLY_MAX_BYTES`];
//! - a request built from known parts is refused with `BAD_REQUEST` exactly when its params
//!   break a rule (or its cost is above the operation's capacity), whatever escapes,
//!   whitespace and member order it is written with;
//! - a model: per (key, operation), the tokens granted since the start never exceed
//!   `capacity + capacity × elapsed / refill time`.
#![no_main]

use std::collections::HashMap;
use std::fmt::Write;

use arbitrary::Arbitrary;
use heidi_core::key::KeyHasher;
use heidi_core::limit::{LimitPolicy, Operation, PolicyTable};
use heidi_core::proto::{Method, Request};
use heidi_core::service::{Outcome, REPLY_MAX_BYTES, Served, Service};
use heidi_core::table::Slot;
use heidi_core::{Duration, Instant};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

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
enum Op {
    Advance(u32),
    Call(Call),
    Raw { consume: bool, params: String },
    Sweep(u8),
}

#[derive(Arbitrary, Debug)]
struct Run {
    limits: [(u8, u16); 6],
    ops: Vec<Op>,
}

fuzz_target!(|run: Run| {
    let mut limits = PolicyTable::DEFAULT;
    for (op, (capacity, window_ms)) in Operation::ALL.into_iter().zip(run.limits) {
        let window = Duration::from_millis(u64::from(window_ms.max(1)));
        limits.set(
            op,
            LimitPolicy::new(u32::from(capacity.max(1)), window).expect("valid"),
        );
    }
    let mut service = Service::new(KeyHasher::new([9; 16]), limits, [Slot::empty(); 32]);
    let start = Instant::from_secs(1);
    let mut now = start;
    let mut model = Model::default();
    let mut out = [0u8; REPLY_MAX_BYTES];
    for op in run.ops.iter().take(500) {
        let (consume, params, expect) = match op {
            Op::Advance(us) => {
                now += Duration::from_micros(u64::from(*us));
                continue;
            }
            Op::Sweep(max) => {
                service.sweep(now, usize::from(*max));
                continue;
            }
            Op::Call(call) => {
                let (params, valid) = write_call(call);
                (call.consume, params, Some(valid))
            }
            Op::Raw { consume, params } => (*consume, params.clone(), None),
        };
        let method = if consume {
            Method::RateLimitConsume
        } else {
            Method::RateLimitCheck
        };
        let frame = format!(r#"{{"method":"{method}","params":{params}}}"#);
        let Ok(request) = Request::parse(&frame) else {
            assert!(expect.is_none(), "a built request parses: {frame}");
            continue;
        };
        let Served::Reply(reply) = service.handle(now, &request, &mut out) else {
            panic!("{method} is covered");
        };
        assert!(reply.len <= REPLY_MAX_BYTES);
        let body = &out[..reply.len];
        let v: Value = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(body)));
        check_shape(
            &v,
            body,
            consume,
            &reply.outcome,
            reply.error.map(|c| c.as_str()),
        );
        let code = v["code"].as_str();
        if let Some(valid) = expect {
            let over_capacity = v["message"].as_str().is_some_and(|m| {
                m.starts_with("params.cost: ") && m.contains("above the capacity")
            });
            let bad = code == Some("BAD_REQUEST");
            assert_eq!(bad && !over_capacity, !valid, "{params}: {v}");
        }
        if consume && v["allowed"] == true {
            model.granted(now, start, &limits, &params, &v);
        }
    }
});

/// Tokens granted per (key, operation) since the start.
#[derive(Default)]
struct Model {
    granted: HashMap<(String, String), u64>,
}

impl Model {
    fn granted(
        &mut self,
        now: Instant,
        start: Instant,
        limits: &PolicyTable,
        params: &str,
        v: &Value,
    ) {
        // serde_json reads the same params the service accepted (escapes decoded).
        let p: Value = serde_json::from_str(params).expect("accepted params are JSON");
        let key = p["key"]
            .as_str()
            .expect("a granted call has a key")
            .to_owned();
        let op = v["operation"]
            .as_str()
            .expect("a success reply names the operation");
        let cost = p.get("cost").and_then(Value::as_u64).unwrap_or(1);
        let total = self.granted.entry((key, op.to_owned())).or_default();
        *total += cost;
        let policy = limits.get(Operation::from_name(op));
        let capacity = u64::from(policy.capacity_tokens());
        let elapsed = now.saturating_duration_since(start).as_micros();
        let bound = capacity + capacity * elapsed / policy.refill_time().as_micros();
        assert!(*total <= bound, "granted {total} > {bound} for {params}");
    }
}

fn check_shape(v: &Value, body: &[u8], consume: bool, outcome: &Outcome, error: Option<&str>) {
    let obj = v.as_object().expect("an object");
    if v.get("error").is_some() {
        assert_eq!(v["error"], true);
        assert_eq!(
            v["code"].as_str(),
            error,
            "the outcome's code is the reply's"
        );
        assert!(v["message"].is_string());
        let extras = ["retry_after_ms", "remaining", "limit", "operation"];
        for name in obj.keys() {
            let known = ["error", "code", "message"].contains(&name.as_str());
            assert!(
                known || extras.contains(&name.as_str()),
                "extra member {name}"
            );
        }
        match outcome {
            Outcome::Denied { .. } => assert_eq!(error, Some("RATE_LIMITED")),
            Outcome::Refused { code, .. } => assert_eq!(error, Some(code.as_str())),
            Outcome::Allowed => panic!("an allowed call is not an error: {v}"),
        }
        return;
    }
    assert_eq!(error, None);
    let names: Vec<&str> = obj.keys().map(String::as_str).collect();
    let expected = if consume {
        [
            "allowed",
            "limit",
            "operation",
            "remaining",
            "reset_after_ms",
            "window_ms",
        ]
    } else {
        [
            "allowed",
            "limit",
            "operation",
            "remaining",
            "retry_after_ms",
            "window_ms",
        ]
    };
    assert_eq!(names, expected);
    assert_eq!(body, serde_json::to_vec(v).unwrap(), "canonical bytes");
    match outcome {
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
