//! Request sequences against the core service's breaker methods (`BREAKER_ACQUIRE`,
//! `BREAKER_RECORD`), its timers and its effects, on a virtual clock, with a small permit
//! table and a threshold drawn per run. Oracles:
//!
//! - no panic; every reply is one JSON object that fits `REPLY_MAX_BYTES`, and the typed
//!   outcome says what the bytes say (error code, allowed or not);
//! - the permit table never holds more than its slots, and a permit the model holds is never
//!   `unknown` while it has not expired;
//! - effects: each starts where the last one of its breaker ended, the queue never exceeds
//!   `EFFECTS_MAX`, no breaker ever drops an event, and once drained every breaker is where
//!   its last effect left it (nothing was lost);
//! - a full effect queue is `OVERLOADED` with `retry_after_ms`, and `poll_timeout` never
//!   forgets a due timer.
#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use heidi_core::breaker::{BreakerConfig, State};
use heidi_core::key::KeyHasher;
use heidi_core::limit::{PolicyTable, Tat};
use heidi_core::proto::{ErrorCode, Request};
use heidi_core::service::{
    BreakerPolicies, Breakers, EFFECTS_MAX, Effect, Outcome, PERMIT_TTL_MS, PermitSlot,
    REPLY_MAX_BYTES, Served, Service,
};
use heidi_core::table::Slot;
use heidi_core::{Duration, Instant};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const NAMES: [&str; 4] = ["a", "b", "c:d", "e.f-g"];
const PERMIT_SLOTS: usize = 6;

#[derive(Arbitrary, Debug)]
enum Op {
    Advance(u32),
    Acquire {
        name: u8,
    },
    Record {
        which: u8,
        outcome: u8,
        duration_ms: Option<u16>,
        other_name: bool,
    },
    Unknown {
        permit: u64,
    },
    Raw {
        record: bool,
        params: String,
    },
    Timeout,
    Drain,
}

#[derive(Arbitrary, Debug)]
struct Run {
    threshold: u8,
    ops: Vec<Op>,
}

type Svc = Service<Box<[Slot<Tat>]>, 0, 0, Breakers<Box<[PermitSlot]>>>;

struct Held {
    id: u64,
    name: usize,
    expires_at: Instant,
}

fuzz_target!(|run: Run| {
    let config = BreakerConfig {
        failure_threshold: u32::from(run.threshold % 4) + 1,
        ..BreakerConfig::DEFAULT
    };
    let breakers = Breakers::new(
        BreakerPolicies::new(config),
        vec![PermitSlot::EMPTY; PERMIT_SLOTS].into_boxed_slice(),
        [3; 16],
    );
    let slots = vec![Slot::empty(); 8].into_boxed_slice();
    let mut s: Svc =
        Service::new(KeyHasher::new([1; 16]), PolicyTable::DEFAULT, slots).with_breakers(breakers);
    let mut now = Instant::from_secs(1);
    let mut held: Vec<Held> = Vec::new();
    let mut states: HashMap<String, State> = HashMap::new();
    for op in run.ops.iter().take(400) {
        match op {
            Op::Advance(us) => now += Duration::from_micros(u64::from(*us) * 64),
            Op::Acquire { name } => {
                let name = usize::from(*name) % NAMES.len();
                let params = format!(r#"{{"name":"{}"}}"#, NAMES[name]);
                let (v, outcome, code) = serve(&mut s, now, "BREAKER_ACQUIRE", &params);
                if outcome == Outcome::Allowed {
                    let id = v["permit"]
                        .as_str()
                        .expect("a permit")
                        .parse()
                        .expect("an id");
                    let ttl = Duration::from_millis(PERMIT_TTL_MS);
                    held.push(Held {
                        id,
                        name,
                        expires_at: now + ttl,
                    });
                } else if code == Some(ErrorCode::Overloaded) {
                    assert!(v["retry_after_ms"].is_u64(), "{v}");
                }
            }
            Op::Record {
                which,
                outcome,
                duration_ms,
                other_name,
            } => {
                if held.is_empty() {
                    continue;
                }
                let i = usize::from(*which) % held.len();
                let name = (held[i].name + usize::from(*other_name)) % NAMES.len();
                let outcome = ["success", "failure", "abandoned"][usize::from(*outcome) % 3];
                let duration =
                    duration_ms.map_or(String::new(), |ms| format!(r#","duration_ms":{ms}"#));
                let params = format!(
                    r#"{{"name":"{}","permit":"{}","outcome":"{outcome}"{duration}}}"#,
                    NAMES[name], held[i].id
                );
                let (v, _, code) = serve(&mut s, now, "BREAKER_RECORD", &params);
                match code {
                    None => {
                        let recorded = v["recorded"].as_str().expect("recorded");
                        if now < held[i].expires_at {
                            assert_ne!(recorded, "unknown", "a held permit: {v}");
                        }
                        held.swap_remove(i);
                    }
                    Some(ErrorCode::BadRequest) => assert!(*other_name, "{v}"),
                    Some(ErrorCode::Overloaded) => assert!(v["retry_after_ms"].is_u64(), "{v}"),
                    Some(other) => panic!("{other:?}: {v}"),
                }
            }
            Op::Unknown { permit } => {
                if held.iter().any(|h| h.id == *permit) {
                    continue;
                }
                let params = format!(r#"{{"name":"a","permit":"{permit}","outcome":"failure"}}"#);
                let (v, _, code) = serve(&mut s, now, "BREAKER_RECORD", &params);
                assert_eq!(code, None, "{v}");
                assert_eq!(v["recorded"], "unknown");
            }
            Op::Raw { record, params } => {
                let method = if *record {
                    "BREAKER_RECORD"
                } else {
                    "BREAKER_ACQUIRE"
                };
                let frame = format!(r#"{{"method":"{method}","params":{params}}}"#);
                if let Ok(request) = Request::parse(&frame) {
                    let mut out = [0u8; REPLY_MAX_BYTES];
                    if let Served::Reply(reply) = s.handle(now, &request, &mut out) {
                        check(&out[..reply.len], reply.outcome, reply.error);
                        // A permit it may have handed out is not the model's; forget all.
                        held.clear();
                    }
                }
            }
            Op::Timeout => {
                if let Some(at) = s.poll_timeout() {
                    now = now.max(at);
                    s.handle_timeout(now);
                    held.retain(|h| h.expires_at > now);
                }
            }
            Op::Drain => drain(&mut s, &mut states),
        }
        let b = s.breakers().expect("breakers");
        assert!(b.held_permits() <= PERMIT_SLOTS);
        assert!(b.effects_queued() <= EFFECTS_MAX);
        for (_, _, breaker) in b.registry().iter() {
            assert_eq!(breaker.dropped_events(), 0);
        }
    }
    drain(&mut s, &mut states);
});

/// Serves one built request; returns the reply's JSON, outcome and error code.
fn serve(
    s: &mut Svc,
    now: Instant,
    method: &str,
    params: &str,
) -> (Value, Outcome, Option<ErrorCode>) {
    let frame = format!(r#"{{"method":"{method}","params":{params}}}"#);
    let request = Request::parse(&frame).expect("a built request parses");
    let mut out = [0u8; REPLY_MAX_BYTES];
    let Served::Reply(reply) = s.handle(now, &request, &mut out) else {
        panic!("{method} is covered");
    };
    let v = check(&out[..reply.len], reply.outcome, reply.error);
    (v, reply.outcome, reply.error)
}

fn check(body: &[u8], outcome: Outcome, error: Option<ErrorCode>) -> Value {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(body)));
    assert!(v.is_object());
    match error {
        Some(code) => {
            assert_eq!(v["error"], true);
            assert_eq!(v["code"], code.as_str());
            assert_ne!(outcome, Outcome::Allowed);
        }
        None => {
            assert!(v.get("error").is_none(), "{v}");
            assert_eq!(outcome, Outcome::Allowed);
        }
    }
    v
}

/// Drains the effects: each continues its breaker's last one, and afterwards every breaker
/// is in the state its last effect left it.
fn drain(s: &mut Svc, states: &mut HashMap<String, State>) {
    while let Some(Effect::BreakerTransition(t)) = s.poll_effect() {
        let last = states
            .entry(t.name.as_str().to_owned())
            .or_insert(State::Closed);
        assert_eq!(*last, t.from, "{} continues where it was", t.name);
        *last = t.to;
    }
    let b = s.breakers().expect("breakers");
    for (_, name, breaker) in b.registry().iter() {
        let known = states.get(name).copied().unwrap_or(State::Closed);
        assert_eq!(breaker.state(), known, "{name}");
    }
}
