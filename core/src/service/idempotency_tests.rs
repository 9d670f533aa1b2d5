//! The service's idempotency methods: replies (canonical JSON, typed outcome), what must be
//! durable before each reply, params errors, bounds, restore and the sweep.

extern crate std;

use std::collections::HashMap;
use std::format;
use std::string::{String, ToString};
use std::vec;

use serde_json::Value;

use super::tests::{Boxed, at};
use super::*;
use crate::Duration;
use crate::idempotency::{IdempotencyConfig, Outcome as IdemOutcome, Record, Saved, Token};
use crate::key::KeyHash;

type RecordSlots = std::boxed::Box<[Slot<Record>]>;

/// Responses in a map, as the daemon keeps them.
#[derive(Default)]
struct Map(HashMap<KeyHash, String>);

impl Responses for Map {
    fn get(&self, key: KeyHash) -> Option<&str> {
        self.0.get(&key).map(String::as_str)
    }
    fn insert(&mut self, _: Instant, key: KeyHash, _: Instant, response: &str) {
        self.0.insert(key, response.to_string());
    }
    fn remove(&mut self, key: KeyHash) {
        self.0.remove(&key);
    }
}

type Svc = Service<Boxed, 0, 0, NoBreakers, NoLeases, NoHealth, Idempotency<RecordSlots, Map>>;

fn make(slots: usize) -> RecordSlots {
    vec![Slot::empty(); slots].into_boxed_slice()
}

fn service_with(slots: usize, config: IdempotencyConfig) -> Svc {
    let limiter = vec![Slot::empty(); 8].into_boxed_slice();
    let idem = Idempotency::new(slots, make, config, [6; 16], Map::default()).unwrap();
    Service::new(KeyHasher::new([1; 16]), PolicyTable::DEFAULT, limiter).with_idempotency(idem)
}

fn service() -> Svc {
    service_with(64, IdempotencyConfig::DEFAULT)
}

const BEGIN: Method = Method::IdempotencyBegin;
const COMPLETE: Method = Method::IdempotencyComplete;
const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// Serves through the large path (the only one for these methods); checks the reply's JSON
/// against its typed outcome, and that a success reply is canonical.
fn call(s: &mut Svc, now: Instant, method: Method, params: &str) -> (Reply, Value) {
    let frame = format!(r#"{{"method":"{method}","params":{params}}}"#);
    let request = Request::parse(&frame).expect("a valid frame");
    let mut small = [0u8; REPLY_MAX_BYTES];
    assert_eq!(s.handle(now, &request, &mut small), Served::LargeReply);
    let mut out = vec![0u8; s.large_reply_max_bytes()];
    let Served::Reply(reply) = s.handle_large(now, &request, &mut out) else {
        panic!("{method} is covered")
    };
    let body = &out[..reply.len];
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    match reply.error {
        Some(code) => assert_eq!(v["code"], code.as_str()),
        None => {
            assert_eq!(body, serde_json::to_vec(&v).unwrap(), "canonical: {v}");
            assert_eq!(reply.outcome, Outcome::Allowed);
        }
    }
    (reply, v)
}

fn begin(s: &mut Svc, now: Instant, key: &str) -> Value {
    call(s, now, BEGIN, &format!(r#"{{"key":"{key}"}}"#)).1
}

fn token_of(v: &Value) -> String {
    v["token"].as_str().expect("a token").to_string()
}

fn owned(d: Option<Durable<'_>>) -> Option<String> {
    d.map(|d| format!("{d:?}"))
}

#[test]
fn begin_complete_begin_with_what_must_be_durable() {
    let mut s = service();
    let v = begin(&mut s, at(1), r"order:\u0034\u0032");
    assert_eq!(
        (&v["status"], &v["expires_in_ms"]),
        (&"started".into(), &300_000.into())
    );
    let token = token_of(&v);
    let Some(Durable::Record(IdemRecord::Begun {
        key,
        token: t,
        since,
        expires_at,
    })) = s.durable()
    else {
        panic!("{:?}", owned(s.durable()))
    };
    assert_eq!(
        (key, t.get().to_string(), since),
        ("order:42", token.clone(), at(1))
    );
    assert_eq!(expires_at, at(301));
    // Someone else meanwhile: in progress, nothing to persist.
    let (reply, v) = call(&mut s, at(3), BEGIN, r#"{"key":"order:42"}"#);
    assert_eq!(reply.error, Some(ErrorCode::InProgress));
    assert_eq!(
        (&v["since_ms"], &v["expires_in_ms"]),
        (&2_000.into(), &298_000.into())
    );
    assert_eq!(s.durable(), None);
    // The owner completes with a response that needs escapes.
    let params = format!(
        r#"{{"key":"order:42","token":"{token}","outcome":"success","digest":"{DIGEST}","response":"{{\"id\":42}}\n"}}"#
    );
    let (_, v) = call(&mut s, at(4), COMPLETE, &params);
    assert_eq!(
        v,
        serde_json::json!({"expires_in_ms": 86_400_000, "ok": true, "status": "remembered"})
    );
    let Some(Durable::Record(IdemRecord::Done {
        key,
        digest,
        response,
        completed_at,
        ..
    })) = s.durable()
    else {
        panic!("{:?}", owned(s.durable()))
    };
    assert_eq!(
        (key, response, completed_at),
        ("order:42", Some("{\"id\":42}\n"), at(4))
    );
    assert_eq!(digest.map(|d| d[0]), Some(0x9f));
    // Asked again: done, with the digest and the response; the reply waits for a barrier.
    let v = begin(&mut s, at(5), "order:42");
    assert_eq!(
        v,
        serde_json::json!({"completed_ago_ms": 1_000, "digest": DIGEST,
            "expires_in_ms": 86_399_000, "response": "{\"id\":42}\n", "status": "done"})
    );
    assert_eq!(s.durable(), Some(Durable::Barrier));
    // Another method served since: nothing pending.
    let mut out = vec![0u8; s.large_reply_max_bytes()];
    let _ = s.handle_large_params(at(5), Method::RateLimitCheck, r#"{"key":"k"}"#, &mut out);
    assert_eq!(s.durable(), None);
}

#[test]
fn a_failure_is_released_unless_remembered() {
    let mut s = service();
    let token = token_of(&begin(&mut s, at(1), "k"));
    let params = format!(r#"{{"key":"k","token":{token},"outcome":"failure"}}"#);
    let (_, v) = call(&mut s, at(2), COMPLETE, &params);
    assert_eq!(v, serde_json::json!({"ok": true, "status": "released"}));
    assert_eq!(
        s.durable(),
        Some(Durable::Record(IdemRecord::Released { key: "k" }))
    );
    assert_eq!(begin(&mut s, at(3), "k")["status"], "started");

    let remember = IdempotencyConfig {
        remember_failures: true,
        ..IdempotencyConfig::DEFAULT
    };
    let mut s = service_with(64, remember);
    let token = token_of(&begin(&mut s, at(1), "k"));
    let params = format!(r#"{{"key":"k","token":"{token}","outcome":"failure","response":""}}"#);
    let _ = call(&mut s, at(2), COMPLETE, &params);
    let v = begin(&mut s, at(3), "k");
    assert_eq!(
        v,
        serde_json::json!({"completed_ago_ms": 1_000, "expires_in_ms": 86_399_000,
            "response": "", "status": "failed"})
    );
}

#[test]
fn refusals_say_why() {
    let mut s = service();
    let token = token_of(&begin(&mut s, at(1), "k"));
    let complete = |token: &str| {
        format!(r#"{{"key":"k","token":"{token}","outcome":"success","digest":"{DIGEST}"}}"#)
    };
    let reason = |s: &mut Svc, now, params: &str| {
        let (reply, v) = call(s, now, COMPLETE, params);
        assert_eq!(reply.error, Some(ErrorCode::Refused), "{v}");
        assert_eq!(s.durable(), None);
        v["reason"].as_str().unwrap().to_string()
    };
    assert_eq!(reason(&mut s, at(2), &complete("12345")), "not_owner");
    let _ = call(&mut s, at(2), COMPLETE, &complete(&token));
    assert_eq!(
        reason(&mut s, at(3), &complete(&token)),
        "already_completed"
    );
    let unknown = format!(r#"{{"key":"other","token":"{token}","outcome":"failure"}}"#);
    assert_eq!(reason(&mut s, at(3), &unknown), "unknown");
    let token = token_of(&begin(&mut s, at(10), "late"));
    let late = format!(r#"{{"key":"late","token":"{token}","outcome":"failure"}}"#);
    assert_eq!(reason(&mut s, at(400), &late), "expired");
}

#[test]
fn params_errors_name_the_field() {
    let mut s = service();
    let ok = format!(r#""key":"k","token":"1","outcome":"success","digest":"{DIGEST}""#);
    let cases = [
        (BEGIN, "{}".to_string(), "params.key: is required"),
        (
            BEGIN,
            r#"{"key":"k","token":"1"}"#.to_string(),
            "params.token: unknown field (expected one of: key)",
        ),
        (
            COMPLETE,
            r#"{"key":"k"}"#.to_string(),
            "params.token: is required",
        ),
        (
            COMPLETE,
            r#"{"key":"k","token":"x","outcome":"failure"}"#.to_string(),
            "params.token: must be a 64-bit id as a decimal string",
        ),
        (
            COMPLETE,
            r#"{"key":"k","token":"1","outcome":"maybe"}"#.to_string(),
            r#"params.outcome: must be "success" or "failure""#,
        ),
        (
            COMPLETE,
            r#"{"key":"k","token":"1","outcome":"success"}"#.to_string(),
            r#"params.digest: is required with outcome "success""#,
        ),
        (
            COMPLETE,
            format!(r#"{{"key":"k","token":"1","outcome":"failure","digest":"{DIGEST}"}}"#),
            r#"params.digest: only goes with outcome "success""#,
        ),
        (
            COMPLETE,
            r#"{"key":"k","token":"1","outcome":"success","digest":"xyz"}"#.to_string(),
            "params.digest: must be 64 hex digits",
        ),
        (
            COMPLETE,
            format!(r#"{{{ok},"response":7}}"#),
            "params.response: must be a string",
        ),
        (
            COMPLETE,
            format!(r#"{{{ok},"response":"{}"}}"#, "r".repeat(4_097)),
            "params.response: is 4097 bytes; at most 4096 are stored",
        ),
        (
            COMPLETE,
            // 1,366 escapes of 3 bytes each: 4,098 bytes once unescaped.
            format!(r#"{{{ok},"response":"{}"}}"#, r"\u20ac".repeat(1_366)),
            "params.response: is 4098 bytes; at most 4096 are stored",
        ),
        (
            COMPLETE,
            format!(r#"{{{ok},"response":"\ud800"}}"#),
            "params.response: holds an invalid escape",
        ),
        (
            COMPLETE,
            format!(r#"{{{ok},"zz":1}}"#),
            "params.zz: unknown field (expected one of: digest, key, outcome, response, token)",
        ),
    ];
    for (method, params, message) in cases {
        let (reply, v) = call(&mut s, at(1), method, &params);
        assert_eq!(reply.error, Some(ErrorCode::BadRequest), "{params}");
        assert_eq!(v["message"], message, "{params}");
    }
}

#[test]
fn the_longest_response_is_stored_and_replayed() {
    let mut s = service();
    let token = token_of(&begin(&mut s, at(1), "big"));
    // 4,096 bytes once unescaped, each a control character: 6 bytes each in the reply.
    let response = r"\u0001".repeat(IDEMPOTENCY_RESPONSE_MAX_BYTES);
    let params = format!(
        r#"{{"key":"big","token":"{token}","outcome":"success","digest":"{DIGEST}","response":"{response}"}}"#
    );
    let (reply, _) = call(&mut s, at(2), COMPLETE, &params);
    assert_eq!(reply.error, None);
    let v = begin(&mut s, at(3), "big");
    assert_eq!(v["response"].as_str().unwrap(), "\u{1}".repeat(4_096));
}

#[test]
fn a_full_table_is_overloaded_and_the_sweep_frees_it() {
    let short = IdempotencyConfig {
        ttl: Duration::from_secs(10),
        in_progress_timeout: Duration::from_secs(5),
        remember_failures: false,
    };
    let mut s = service_with(8, short);
    for i in 0..8 {
        begin(&mut s, at(1), &format!("k{i}"));
    }
    let (reply, v) = call(&mut s, at(1), BEGIN, r#"{"key":"k8"}"#);
    assert_eq!(reply.error, Some(ErrorCode::Overloaded));
    assert_eq!(v["retry_after_ms"], 5_000);
    assert_eq!(s.idempotency().len(), 8);
    let mut now = at(6);
    while let Some(due) = s.poll_timeout() {
        if due > at(10) {
            break;
        }
        now = now.max(due);
        s.handle_timeout(now);
        now += Duration::from_millis(1);
    }
    assert_eq!(s.idempotency().len(), 0);
    assert_eq!(begin(&mut s, at(6), "k8")["status"], "started");
}

#[test]
fn restored_records_answer_as_before() {
    let mut s = service();
    let hasher = KeyHasher::new([1; 16]);
    let saved = Saved::Done {
        token: Token::from_raw(9),
        outcome: IdemOutcome::Success([0xab; 32]),
        completed_at: at(1),
        expires_at: at(100),
    };
    let restored = s
        .idempotency_mut()
        .restore(at(2), &hasher, "order:7", saved, Some("{}"));
    assert_eq!(restored, Ok(true));
    let v = begin(&mut s, at(3), "order:7");
    assert_eq!(
        (&v["status"], &v["response"]),
        (&"done".into(), &"{}".into())
    );
    assert_eq!(v["digest"], "ab".repeat(32));
    let in_progress = Saved::InProgress {
        token: Token::from_raw(5),
        since: at(1),
        expires_at: at(50),
    };
    let idem = s.idempotency_mut();
    assert_eq!(
        idem.restore(at(2), &hasher, "job", in_progress, None),
        Ok(true)
    );
    let params = r#"{"key":"job","token":"5","outcome":"failure"}"#;
    let (_, v) = call(&mut s, at(3), COMPLETE, params);
    assert_eq!(
        v["status"], "released",
        "the owner completes after the restart"
    );
}

#[test]
fn without_a_table_the_methods_are_not_covered() {
    let limiter = vec![Slot::empty(); 8].into_boxed_slice();
    let mut s = Service::new(KeyHasher::new([1; 16]), PolicyTable::DEFAULT, limiter);
    let mut out = [0u8; REPLY_MAX_BYTES];
    for method in [BEGIN, COMPLETE] {
        assert_eq!(
            s.handle_params(at(1), method, "{}", &mut out),
            Served::NotCovered
        );
        let mut big = vec![0u8; s.large_reply_max_bytes()];
        assert_eq!(
            s.handle_large_params(at(1), method, "{}", &mut big),
            Served::NotCovered
        );
    }
    assert_eq!(s.durable(), None);
}

#[test]
fn unescaped_lengths() {
    use super::fields::unescaped_len;
    for (quoted, len) in [
        (r#""""#, Some(0)),
        (r#""abc""#, Some(3)),
        (r#""é""#, Some(2)),
        (r#""\n\"\\\/""#, Some(4)),
        (r#""\u0041\u00e9\u20ac""#, Some(6)),
        (r#""\ud83d\ude00""#, Some(4)),
        (r#""\ud83d""#, None),
        (r#""\ude00""#, None),
        (r#""\x""#, None),
        (r#""\u12""#, None),
    ] {
        assert_eq!(unescaped_len(quoted), len, "{quoted}");
    }
}
