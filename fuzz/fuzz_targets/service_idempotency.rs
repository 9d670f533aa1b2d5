//! Request sequences against the core service's idempotency methods (`IDEMPOTENCY_BEGIN`,
//! `IDEMPOTENCY_COMPLETE`), its sweep timer and restores, on a virtual clock, against a
//! model. Oracles:
//!
//! - no panic; every reply is one JSON object, a success reply is canonical (sorted keys, the
//!   bytes serde_json writes), and the typed outcome says what the bytes say;
//! - a begin starts exactly when the model has no live record for the key, answers
//!   `IN_PROGRESS` while one is in progress, and `done` (with the digest and the stored
//!   response) or `failed` while one is remembered; a completion is remembered, released or
//!   refused with the model's reason;
//! - what must be durable is exactly the model's: the begun record (its key unescaped and its
//!   token), a barrier for a `done` or `failed`, the completion's record, nothing for an
//!   error;
//! - arbitrary params text, on a twin service, never panics and always gets a JSON reply.
#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use heidi_core::idempotency::{IdempotencyConfig, Record};
use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::limit::{PolicyTable, Tat};
use heidi_core::proto::{ErrorCode, Method, Request};
use heidi_core::service::{
    Durable, IdemRecord, Idempotency, NoBreakers, NoHealth, NoLeases, Outcome, Reply, Responses,
    Served, Service,
};
use heidi_core::table::Slot;
use heidi_core::{Duration, Instant};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Client keys as sent, and as the service must record them.
const KEYS: [(&str, &str); 3] = [("a", "a"), ("o\\u0031", "o1"), ("k:\\\"q", "k:\"q")];
const RESPONSES: [&str; 3] = ["", "{\\\"id\\\":1}", "\\u00e9\\n"];
const RESPONSE_TEXT: [&str; 3] = ["", "{\"id\":1}", "é\n"];

#[derive(Default)]
struct Map(HashMap<KeyHash, String>);

impl Responses for Map {
    fn get(&self, key: KeyHash) -> Option<&str> {
        self.0.get(&key).map(String::as_str)
    }
    fn insert(&mut self, _: Instant, key: KeyHash, _: Instant, response: &str) {
        self.0.insert(key, response.to_owned());
    }
    fn remove(&mut self, key: KeyHash) {
        self.0.remove(&key);
    }
}

type Svc = Service<
    Box<[Slot<Tat>]>,
    0,
    0,
    NoBreakers,
    NoLeases,
    NoHealth,
    Idempotency<Box<[Slot<Record>]>, Map>,
>;

#[derive(Arbitrary, Debug)]
enum Op {
    Advance(u16),
    Begin {
        key: u8,
    },
    Complete {
        key: u8,
        stale: bool,
        success: bool,
        response: Option<u8>,
    },
    Timeout,
    Raw {
        complete: bool,
        params: String,
    },
}

#[derive(Arbitrary, Debug)]
struct Run {
    remember_failures: bool,
    ops: Vec<Op>,
}

#[derive(Clone, Copy, Debug)]
enum State {
    InProgress {
        token: u64,
        since: Instant,
        until: Instant,
    },
    Done {
        success: bool,
        at: Instant,
        until: Instant,
        response: Option<usize>,
    },
}

fn make(slots: usize) -> Box<[Slot<Record>]> {
    vec![Slot::empty(); slots].into_boxed_slice()
}

const TIMEOUT: Duration = Duration::from_secs(5);
const TTL: Duration = Duration::from_secs(20);
const DIGEST: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn service(remember_failures: bool) -> Svc {
    let config = IdempotencyConfig {
        ttl: TTL,
        in_progress_timeout: TIMEOUT,
        remember_failures,
    };
    let idem = Idempotency::new(16, make, config, [5; 16], Map::default()).unwrap();
    let limiter = vec![Slot::empty(); 8].into_boxed_slice();
    Service::new(KeyHasher::new([2; 16]), PolicyTable::DEFAULT, limiter).with_idempotency(idem)
}

fn serve(s: &mut Svc, now: Instant, method: Method, params: &str) -> (Reply, Value) {
    let frame = format!(r#"{{"method":"{method}","params":{params}}}"#);
    let request = Request::parse(&frame).expect("a valid frame");
    let mut out = vec![0u8; s.large_reply_max_bytes()];
    let Served::Reply(reply) = s.handle_large(now, &request, &mut out) else {
        panic!("{method} is covered")
    };
    let body = &out[..reply.len];
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    match reply.error {
        Some(code) => {
            assert_eq!(v["code"], code.as_str());
            assert!(matches!(reply.outcome, Outcome::Refused { code: c, .. } if c == code));
            assert_eq!(s.durable(), None, "an error waits for nothing");
        }
        None => {
            assert_eq!(body, serde_json::to_vec(&v).unwrap(), "canonical: {v}");
            assert_eq!(reply.outcome, Outcome::Allowed);
        }
    }
    (reply, v)
}

fn ms(d: Duration) -> u64 {
    d.as_millis_ceil()
}

fuzz_target!(|run: Run| {
    let mut s = service(run.remember_failures);
    let mut twin = service(run.remember_failures);
    let mut model: HashMap<usize, State> = HashMap::new();
    let mut now = Instant::from_secs(1);
    for op in run.ops.into_iter().take(200) {
        match op {
            Op::Advance(step) => now += Duration::from_millis(u64::from(step) * 4),
            Op::Begin { key } => {
                let k = usize::from(key) % KEYS.len();
                let params = format!(r#"{{"key":"{}"}}"#, KEYS[k].0);
                let (reply, v) = serve(&mut s, now, Method::IdempotencyBegin, &params);
                let live = model.get(&k).copied().filter(|st| match *st {
                    State::InProgress { until, .. } | State::Done { until, .. } => until > now,
                });
                match live {
                    None => {
                        assert_eq!(v["status"], "started", "{v}");
                        assert_eq!(v["expires_in_ms"], ms(TIMEOUT));
                        let token: u64 = v["token"].as_str().unwrap().parse().unwrap();
                        let Some(Durable::Record(IdemRecord::Begun {
                            key,
                            token: t,
                            since,
                            ..
                        })) = s.durable()
                        else {
                            panic!("a begun record: {:?}", s.durable())
                        };
                        assert_eq!((key, t.get(), since), (KEYS[k].1, token, now));
                        model.insert(
                            k,
                            State::InProgress {
                                token,
                                since: now,
                                until: now + TIMEOUT,
                            },
                        );
                    }
                    Some(State::InProgress { since, until, .. }) => {
                        assert_eq!(reply.error, Some(ErrorCode::InProgress), "{v}");
                        assert_eq!(
                            v["since_ms"],
                            now.saturating_duration_since(since).as_millis()
                        );
                        assert_eq!(v["expires_in_ms"], ms(until.saturating_duration_since(now)));
                    }
                    Some(State::Done {
                        success,
                        at,
                        until,
                        response,
                    }) => {
                        let status = if success { "done" } else { "failed" };
                        assert_eq!(v["status"], status, "{v}");
                        assert_eq!(
                            v["completed_ago_ms"],
                            now.saturating_duration_since(at).as_millis()
                        );
                        assert_eq!(v["expires_in_ms"], ms(until.saturating_duration_since(now)));
                        assert_eq!(v.get("digest").is_some(), success);
                        let expected = response.map(|r| RESPONSE_TEXT[r]);
                        assert_eq!(v.get("response").and_then(Value::as_str), expected, "{v}");
                        assert_eq!(s.durable(), Some(Durable::Barrier));
                    }
                }
            }
            Op::Complete {
                key,
                stale,
                success,
                response,
            } => {
                let k = usize::from(key) % KEYS.len();
                let owner = match model.get(&k) {
                    Some(State::InProgress { token, .. }) => Some(*token),
                    _ => None,
                };
                let token = match (owner, stale) {
                    (Some(t), false) => t,
                    (Some(t), true) => t ^ 1,
                    (None, _) => 77,
                };
                let response = response.map(|r| usize::from(r) % RESPONSES.len());
                let mut params = format!(r#"{{"key":"{}","token":"{token}""#, KEYS[k].0);
                if success {
                    params.push_str(&format!(r#","outcome":"success","digest":"{DIGEST}""#));
                } else {
                    params.push_str(r#","outcome":"failure""#);
                }
                if let Some(r) = response {
                    params.push_str(&format!(r#","response":"{}""#, RESPONSES[r]));
                }
                params.push('}');
                let (reply, v) = serve(&mut s, now, Method::IdempotencyComplete, &params);
                let state = model.get(&k).copied();
                let live_owner = matches!(state,
                    Some(State::InProgress { token: t, until, .. }) if t == token && until > now);
                if !live_owner {
                    assert_eq!(reply.error, Some(ErrorCode::Refused), "{v}");
                    let got = v["reason"].as_str().unwrap();
                    match state {
                        // Someone else's live record.
                        Some(State::InProgress {
                            token: t, until, ..
                        }) if until > now => {
                            assert_ne!(t, token);
                            assert_eq!(got, "not_owner", "{v}");
                        }
                        // Its own record timed out (and may have been swept since).
                        Some(State::InProgress { token: t, .. }) if t == token => {
                            assert!(got == "expired" || got == "unknown", "{v}");
                        }
                        _ => assert!(
                            ["unknown", "not_owner", "already_completed"].contains(&got),
                            "{v}"
                        ),
                    }
                    continue;
                }
                if success || run.remember_failures {
                    assert_eq!(v["status"], "remembered", "{v}");
                    assert_eq!(v["expires_in_ms"], ms(TTL));
                    let Some(Durable::Record(IdemRecord::Done {
                        key,
                        token: t,
                        digest,
                        response: r,
                        completed_at,
                        ..
                    })) = s.durable()
                    else {
                        panic!("a done record: {:?}", s.durable())
                    };
                    assert_eq!((key, t.get(), completed_at), (KEYS[k].1, token, now));
                    assert_eq!(digest.is_some(), success);
                    assert_eq!(r, response.map(|r| RESPONSE_TEXT[r]));
                    model.insert(
                        k,
                        State::Done {
                            success,
                            at: now,
                            until: now + TTL,
                            response,
                        },
                    );
                } else {
                    assert_eq!(v["status"], "released", "{v}");
                    assert_eq!(
                        s.durable(),
                        Some(Durable::Record(IdemRecord::Released { key: KEYS[k].1 }))
                    );
                    model.remove(&k);
                }
            }
            Op::Timeout => {
                if let Some(due) = s.poll_timeout() {
                    assert!(!s.idempotency().is_empty());
                    now = now.max(due);
                    s.handle_timeout(now);
                }
            }
            Op::Raw { complete, params } => {
                let method = if complete {
                    Method::IdempotencyComplete
                } else {
                    Method::IdempotencyBegin
                };
                let mut out = vec![0u8; twin.large_reply_max_bytes()];
                let Served::Reply(reply) = twin.handle_large_params(now, method, &params, &mut out)
                else {
                    panic!("covered")
                };
                let body = &out[..reply.len];
                let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
                    panic!("not JSON ({e}): {}", String::from_utf8_lossy(body))
                });
                assert_eq!(reply.error.is_some(), v.get("error").is_some(), "{v}");
                if reply.error.is_some() {
                    assert_eq!(twin.durable(), None);
                }
            }
        }
    }
});
