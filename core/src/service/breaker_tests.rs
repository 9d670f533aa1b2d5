//! The service's breaker methods: replies byte for byte, every params rule, the permit table's
//! bounds, the effect queue's bound, and the timers.

extern crate std;

use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use serde_json::Value;

use super::*;
use crate::breaker::{BreakerConfig, State};
use crate::{Duration, Instant};

type Boxed = std::boxed::Box<[Slot<Tat>]>;
type Permits = std::boxed::Box<[PermitSlot]>;
type Svc = Service<Boxed, 0, 0, Breakers<Permits>>;

const ACQUIRE: Method = Method::BreakerAcquire;
const RECORD: Method = Method::BreakerRecord;
const UP: &str = r#"{"name":"up"}"#;

fn service_with(permits: usize, policies: BreakerPolicies) -> Svc {
    let slots = std::vec![Slot::empty(); 64].into_boxed_slice();
    let permit_slots = std::vec![PermitSlot::EMPTY; permits].into_boxed_slice();
    let breakers = Breakers::new(policies, permit_slots, [9; 16]);
    Service::new(KeyHasher::new([1; 16]), PolicyTable::DEFAULT, slots).with_breakers(breakers)
}

fn service() -> Svc {
    service_with(16, BreakerPolicies::new(BreakerConfig::DEFAULT))
}

/// Trips on the first failure.
fn touchy() -> BreakerPolicies {
    BreakerPolicies::new(BreakerConfig {
        failure_threshold: 1,
        ..BreakerConfig::DEFAULT
    })
}

fn at(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

/// Serves `params`, checks the body is JSON and agrees with the typed reply; returns the
/// reply and the body.
fn call(s: &mut Svc, now: Instant, method: Method, params: &str) -> (Reply, String) {
    let frame = format!(r#"{{"method":"{method}","params":{params}}}"#);
    let request = Request::parse(&frame).expect("a valid frame");
    let mut out = [0u8; REPLY_MAX_BYTES];
    let Served::Reply(reply) = s.handle(now, &request, &mut out) else {
        panic!("{method} is covered");
    };
    let body = core::str::from_utf8(&out[..reply.len]).unwrap().to_string();
    let v: Value = serde_json::from_str(&body).expect("a JSON reply");
    assert_eq!(v["error"] == true, reply.error.is_some(), "{body}");
    if let Some(code) = reply.error {
        assert_eq!(v["code"], code.as_str(), "{body}");
    }
    if let Some(b) = s.breakers() {
        b.assert_invariants();
    }
    (reply, body)
}

fn acquire(s: &mut Svc, now: Instant, name: &str) -> u64 {
    let (reply, body) = call(s, now, ACQUIRE, &format!(r#"{{"name":"{name}"}}"#));
    assert_eq!(reply.outcome, Outcome::Allowed, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["permit"].as_str().unwrap().parse().unwrap()
}

fn record(s: &mut Svc, now: Instant, name: &str, permit: u64, outcome: &str) -> String {
    let params = format!(r#"{{"name":"{name}","permit":"{permit}","outcome":"{outcome}"}}"#);
    call(s, now, RECORD, &params).1
}

fn refused(s: &mut Svc, now: Instant, method: Method, params: &str) -> (ErrorCode, String) {
    let (reply, body) = call(s, now, method, params);
    (reply.error.expect("an error reply"), body)
}

fn message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    v["message"].as_str().unwrap().to_string()
}

fn effects(s: &mut Svc) -> Vec<(String, State, State, TransitionReason)> {
    core::iter::from_fn(|| s.poll_effect())
        .map(|Effect::BreakerTransition(t)| (t.name.as_str().to_string(), t.from, t.to, t.reason))
        .collect()
}

#[test]
fn replies_are_the_daemons_bytes() {
    let mut s = service();
    let (reply, body) = call(&mut s, at(1), ACQUIRE, UP);
    assert_eq!(reply.outcome, Outcome::Allowed);
    let v: Value = serde_json::from_str(&body).unwrap();
    let permit = v["permit"].as_str().unwrap();
    assert_eq!(
        body,
        format!(r#"{{"allowed":true,"permit":"{permit}","probe":false,"state":"closed"}}"#)
    );
    let permit: u64 = permit.parse().unwrap();
    assert_ne!(permit, 0);
    assert_eq!(
        record(&mut s, at(2), "up", permit, "success"),
        r#"{"ok":true,"recorded":"counted","state":"closed"}"#
    );
    // Recorded twice: unknown, and nothing counts.
    assert_eq!(
        record(&mut s, at(2), "up", permit, "failure"),
        r#"{"ok":true,"recorded":"unknown","state":"closed"}"#
    );
    assert_eq!(
        record(&mut s, at(2), "nobody", permit, "failure"),
        r#"{"ok":true,"recorded":"unknown","state":null}"#
    );
    assert_eq!(s.breakers().unwrap().held_permits(), 0);
    assert_eq!(s.poll_effect(), None);
}

#[test]
fn trips_half_opens_by_handle_timeout_and_closes_with_typed_effects() {
    let mut s = service();
    for _ in 0..5 {
        let p = acquire(&mut s, at(2), "up");
        let body = record(&mut s, at(2), "up", p, "failure");
        assert!(body.contains(r#""recorded":"counted""#), "{body}");
    }
    let (reply, body) = call(&mut s, at(12), ACQUIRE, UP);
    assert_eq!(
        body,
        r#"{"error":true,"code":"CIRCUIT_OPEN","message":"circuit breaker `up` is open","retry_after_ms":50000,"state":"open"}"#
    );
    assert_eq!(reply.outcome, Outcome::Denied { retry_at: at(62) });
    assert_eq!(
        effects(&mut s),
        [(
            "up".into(),
            State::Closed,
            State::Open,
            TransitionReason::Tripped
        )]
    );
    // On time, without a call.
    assert_eq!(s.poll_timeout(), Some(at(62)));
    s.handle_timeout(at(62));
    assert_eq!(
        effects(&mut s),
        [(
            "up".into(),
            State::Open,
            State::HalfOpen,
            TransitionReason::OpenPeriodEnded
        )]
    );
    let (_, body) = call(&mut s, at(63), ACQUIRE, UP);
    assert!(
        body.contains(r#""probe":true,"state":"half_open""#),
        "{body}"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    let probe: u64 = v["permit"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        refused(&mut s, at(63), ACQUIRE, UP).0,
        ErrorCode::CircuitOpen
    );
    assert_eq!(
        record(&mut s, at(63), "up", probe, "success"),
        r#"{"ok":true,"recorded":"counted","state":"closed"}"#
    );
    assert_eq!(
        effects(&mut s),
        [(
            "up".into(),
            State::HalfOpen,
            State::Closed,
            TransitionReason::Recovered
        )]
    );
}

#[test]
fn a_record_that_opens_says_when_it_half_opens() {
    let mut s = service_with(16, touchy());
    let p = acquire(&mut s, at(1), "up");
    let body = record(&mut s, at(1), "up", p, "failure");
    assert_eq!(
        body,
        r#"{"ok":true,"recorded":"counted","retry_after_ms":60000,"state":"open"}"#
    );
}

#[test]
fn abandoned_and_stale_and_expired_records() {
    let mut s = service_with(16, touchy());
    let p = acquire(&mut s, at(1), "up");
    let body = record(&mut s, at(1), "up", p, "abandoned");
    assert_eq!(
        body,
        r#"{"ok":true,"recorded":"abandoned","state":"closed"}"#
    );
    let a = acquire(&mut s, at(1), "up");
    let b = acquire(&mut s, at(1), "up");
    record(&mut s, at(1), "up", a, "failure");
    assert!(record(&mut s, at(1), "up", b, "success").contains(r#""recorded":"stale""#));
    // Recorded after the TTL, before any timeout ran: expired, counts for nothing.
    let ttl = Duration::from_millis(PERMIT_TTL_MS);
    let late = acquire(&mut s, at(100), "other");
    let body = record(&mut s, at(100) + ttl, "other", late, "failure");
    assert_eq!(body, r#"{"ok":true,"recorded":"expired","state":"closed"}"#);
}

#[test]
fn permits_expire_by_handle_timeout() {
    let mut s = service();
    let p = acquire(&mut s, at(1), "up");
    let ttl = Duration::from_millis(PERMIT_TTL_MS);
    assert_eq!(s.poll_timeout(), Some(at(1) + ttl));
    s.handle_timeout(at(1) + ttl - Duration::from_micros(1));
    assert_eq!(s.breakers().unwrap().held_permits(), 1);
    s.handle_timeout(at(1) + ttl);
    assert_eq!(s.breakers().unwrap().held_permits(), 0);
    assert_eq!(s.poll_timeout(), None);
    let body = record(&mut s, at(1) + ttl, "up", p, "failure");
    assert!(body.contains(r#""recorded":"unknown""#), "{body}");
}

#[test]
fn a_full_permit_table_says_when_the_oldest_expires() {
    let mut s = service_with(3, BreakerPolicies::new(BreakerConfig::DEFAULT));
    let first = acquire(&mut s, at(1), "up");
    acquire(&mut s, at(2), "up");
    acquire(&mut s, at(3), "up");
    let (code, body) = refused(&mut s, at(4), ACQUIRE, UP);
    assert_eq!(code, ErrorCode::Overloaded);
    assert_eq!(
        message(&body),
        "too many breaker permits are outstanding; record them first"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["retry_after_ms"], PERMIT_TTL_MS - 3_000);
    record(&mut s, at(4), "up", first, "success");
    acquire(&mut s, at(4), "up");
    // Slots are reused; old ids stay dead.
    assert!(record(&mut s, at(4), "up", first, "success").contains("unknown"));
}

#[test]
fn a_permit_of_another_breaker_is_refused_and_stays_held() {
    let mut s = service();
    let p = acquire(&mut s, at(1), "a");
    acquire(&mut s, at(1), "b");
    let params = format!(r#"{{"name":"b","permit":"{p}","outcome":"failure"}}"#);
    let (code, body) = refused(&mut s, at(1), RECORD, &params);
    assert_eq!(code, ErrorCode::BadRequest);
    assert_eq!(
        message(&body),
        "params.permit: was issued by breaker `a`, not `b`"
    );
    assert_eq!(s.breakers().unwrap().held_permits(), 2);
    // A permit as a JSON integer works too.
    let params = format!(r#"{{"name":"a","permit":{p},"outcome":"success","duration_ms":5}}"#);
    assert!(call(&mut s, at(1), RECORD, &params).1.contains("counted"));
}

#[test]
fn the_registry_is_bounded() {
    let mut s = service_with(
        BREAKERS_MAX + 8,
        BreakerPolicies::new(BreakerConfig::DEFAULT),
    );
    for i in 0..BREAKERS_MAX {
        acquire(&mut s, at(1), &format!("b{i}"));
    }
    let (code, body) = refused(&mut s, at(1), ACQUIRE, r#"{"name":"one-more"}"#);
    assert_eq!(code, ErrorCode::Overloaded);
    assert_eq!(message(&body), "breaker registry full (256 breakers)");
    assert!(!body.contains("retry_after_ms"));
    acquire(&mut s, at(1), "b0");
}

#[test]
fn a_full_effect_queue_is_an_answer_and_nothing_is_dropped() {
    let mut s = service_with(EFFECTS_MAX + 8, touchy());
    // One trip per breaker, never drained: the queue fills.
    for i in 0..EFFECTS_MAX {
        let name = format!("b{i}");
        let p = acquire(&mut s, at(1), &name);
        assert!(record(&mut s, at(1), &name, p, "failure").contains("open"));
    }
    let held = acquire_held_before_full(&mut s);
    let (code, body) = refused(&mut s, at(1), ACQUIRE, UP);
    assert_eq!(code, ErrorCode::Overloaded);
    assert_eq!(
        message(&body),
        "breaker state changes are waiting to be journaled; try again shortly"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["retry_after_ms"], EFFECTS_FULL_RETRY_AFTER_MS);
    // A record of a held permit is refused before anything changes; the permit stays.
    let (code, _) = refused(
        &mut s,
        at(1),
        RECORD,
        &format!(r#"{{"name":"held","permit":"{held}","outcome":"failure"}}"#),
    );
    assert_eq!(code, ErrorCode::Overloaded);
    assert_eq!(s.breakers().unwrap().held_permits(), 1);
    // An unknown permit touches no breaker: answered.
    assert!(record(&mut s, at(1), "held", 12345, "failure").contains("unknown"));
    // Due timeouts wait for room: the open periods end at 61 s.
    s.handle_timeout(at(61));
    assert_eq!(s.poll_timeout(), Some(at(61)));
    let drained = effects(&mut s);
    assert_eq!(drained.len(), EFFECTS_MAX);
    assert!(drained.iter().all(|e| e.3 == TransitionReason::Tripped));
    s.handle_timeout(at(61));
    let half = effects(&mut s);
    assert_eq!(half.len(), EFFECTS_MAX);
    assert!(half.iter().all(|e| e.2 == State::HalfOpen));
    assert!(record(&mut s, at(61), "held", held, "failure").contains("counted"));
    assert_eq!(effects(&mut s).len(), 1);
}

/// A permit of breaker `held`, acquired while the queue still takes nothing new: acquires
/// are refused when it is full, so this takes it from before (the queue is full now).
fn acquire_held_before_full(s: &mut Svc) -> u64 {
    // Drain one, acquire, and fill the one slot back with another trip.
    let first = s.poll_effect().expect("an effect");
    let held = acquire(s, at(1), "held");
    let p = acquire(s, at(1), "filler");
    record(s, at(1), "filler", p, "failure");
    assert_eq!(s.breakers().unwrap().effects_queued(), EFFECTS_MAX);
    let _ = first;
    held
}

#[test]
fn params_errors_are_the_protocols() {
    let mut s = service();
    let cases: &[(Method, &str, &str)] = &[
        (ACQUIRE, r#"{}"#, "params.name: is required"),
        (ACQUIRE, r#"{"name":null}"#, "params.name: is required"),
        (ACQUIRE, r#"{"name":5}"#, "params.name: must be a string"),
        (
            ACQUIRE,
            r#"{"name":""}"#,
            "params.name: must be 1 to 64 bytes long",
        ),
        (
            ACQUIRE,
            r#"{"name":"a b"}"#,
            "params.name: names are 1 to 64 of A-Z a-z 0-9 _ . : -",
        ),
        (
            ACQUIRE,
            r#"{"name":"a","name":"b"}"#,
            "params.name: duplicate field",
        ),
        (
            ACQUIRE,
            r#"{"name":"a","z":1,"permit":"1"}"#,
            "params.permit: unknown field (expected one of: name)",
        ),
        (
            RECORD,
            r#"{"name":"a","outcome":"success"}"#,
            "params.permit: is required",
        ),
        (
            RECORD,
            r#"{"name":"a","permit":"x1","outcome":"success"}"#,
            "params.permit: must be a 64-bit id as a decimal string",
        ),
        (
            RECORD,
            r#"{"name":"a","permit":"18446744073709551616","outcome":"success"}"#,
            "params.permit: must be a 64-bit id as a decimal string",
        ),
        (
            RECORD,
            r#"{"name":"a","permit":-1,"outcome":"success"}"#,
            "params.permit: must be a 64-bit id as a decimal string",
        ),
        (
            RECORD,
            r#"{"name":"a","permit":"1"}"#,
            "params.outcome: is required",
        ),
        (
            RECORD,
            r#"{"name":"a","permit":"1","outcome":"sucks","duration_ms":-1}"#,
            "params.duration_ms: must be an integer from 0 to 2592000000",
        ),
        (
            RECORD,
            r#"{"name":"a","permit":"1","outcome":"sucks"}"#,
            "params.outcome: must be \"success\", \"failure\" or \"abandoned\"",
        ),
        (
            RECORD,
            r#"{"name":"a","permit":"1","outcome":"success","x":1}"#,
            "params.x: unknown field (expected one of: duration_ms, name, outcome, permit)",
        ),
    ];
    for &(method, params, expected) in cases {
        let (code, body) = refused(&mut s, at(1), method, params);
        assert_eq!(code, ErrorCode::BadRequest, "{params}");
        assert_eq!(message(&body), expected, "{params}");
    }
    // Escapes decode before the rules apply.
    let (reply, body) = call(&mut s, at(1), ACQUIRE, r#"{"n\u0061me":"\u0075p"}"#);
    assert_eq!(reply.outcome, Outcome::Allowed, "{body}");
    assert_eq!(
        s.breakers()
            .unwrap()
            .registry()
            .name(crate::breaker::BreakerId(0)),
        Some("up")
    );
}

#[test]
fn without_breakers_the_methods_are_not_covered() {
    let slots = std::vec![Slot::empty(); 8].into_boxed_slice();
    let mut s = Service::new(KeyHasher::new([1; 16]), PolicyTable::DEFAULT, slots);
    let request = Request::parse(r#"{"method":"BREAKER_ACQUIRE","params":{"name":"a"}}"#).unwrap();
    let mut out = [0u8; REPLY_MAX_BYTES];
    assert_eq!(s.handle(at(1), &request, &mut out), Served::NotCovered);
    assert_eq!(s.poll_effect(), None);
    assert!(s.breakers().is_none());
}

#[test]
fn the_limiter_sweep_is_a_timer() {
    let mut s = service();
    assert_eq!(s.poll_timeout(), None);
    let params = r#"{"key":"u","operation":"transform","cost":1}"#;
    let (reply, _) = call(&mut s, at(5), Method::RateLimitConsume, params);
    assert_eq!(reply.outcome, Outcome::Allowed);
    assert_eq!(s.poll_timeout(), Some(Instant::ZERO));
    s.handle_timeout(at(5));
    assert_eq!(s.poll_timeout(), Some(at(6)));
    // Refilled after 6 s: the sweep frees the bucket and the timer stops.
    s.handle_timeout(at(12));
    assert_eq!(s.limiter_keys(), 0);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn policies_name_breakers_and_reconfigure_keeps_state() {
    let mut policies = BreakerPolicies::new(BreakerConfig::DEFAULT);
    policies.insert("touchy", *touchy().get("x")).unwrap();
    let mut s = service_with(16, policies);
    let p = acquire(&mut s, at(1), "touchy");
    assert!(record(&mut s, at(1), "touchy", p, "failure").contains("open"));
    let p = acquire(&mut s, at(1), "calm");
    assert!(record(&mut s, at(1), "calm", p, "failure").contains("closed"));
    let b = s.breakers_mut().unwrap();
    let calm = b.registry().find("calm").unwrap();
    b.reconfigure(at(2), calm, *touchy().get("x")).unwrap();
    assert_eq!(b.registry().get(calm).unwrap().state(), State::Closed);
    let mut full = BreakerPolicies::new(BreakerConfig::DEFAULT);
    for i in 0..BREAKER_POLICIES_MAX {
        full.insert(&format!("p{i}"), BreakerConfig::DEFAULT)
            .unwrap();
    }
    assert_eq!(full.insert("p0", BreakerConfig::DEFAULT), Ok(()));
    assert_eq!(
        full.insert("one-more", BreakerConfig::DEFAULT),
        Err(PoliciesFull)
    );
}

/// Random calls against a reference count of permits and transitions: every transition a
/// breaker makes comes out as exactly one effect, in order, and the table never leaks.
#[test]
fn seeded_random_calls_keep_every_bound() {
    for seed in 1..=20u64 {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut s = service_with(8, touchy());
        let mut held: Vec<(u64, String)> = Vec::new();
        let mut now = at(1);
        let mut drained = 0usize;
        let mut states: Vec<(String, State)> = Vec::new();
        for _ in 0..2_000 {
            now += Duration::from_millis(next(20_000));
            let name = format!("b{}", next(3));
            match next(5) {
                0 | 1 => {
                    let (reply, body) =
                        call(&mut s, now, ACQUIRE, &format!(r#"{{"name":"{name}"}}"#));
                    if reply.outcome == Outcome::Allowed {
                        let v: Value = serde_json::from_str(&body).unwrap();
                        held.push((v["permit"].as_str().unwrap().parse().unwrap(), name));
                    }
                }
                2 | 3 if !held.is_empty() => {
                    let (p, name) = held.swap_remove(next(held.len() as u64) as usize);
                    let outcome = ["success", "failure", "abandoned"][next(3) as usize];
                    let body = record(&mut s, now, &name, p, outcome);
                    assert!(body.starts_with(r#"{"ok":true"#), "seed {seed}: {body}");
                }
                _ => {
                    if let Some(t) = s.poll_timeout() {
                        s.handle_timeout(t.max(now));
                        now = now.max(t);
                    }
                }
            }
            if next(4) == 0 {
                drained += follow(&mut s, &mut states, seed);
            }
            let b = s.breakers().unwrap();
            assert!(b.held_permits() <= 8);
            assert!(b.effects_queued() <= EFFECTS_MAX);
        }
        drained += follow(&mut s, &mut states, seed);
        assert!(drained > 0, "seed {seed}: some transitions happened");
    }
}

/// Drains the effects into the states they describe: each starts where the last one of its
/// breaker ended, and once drained every breaker is where its last effect left it.
fn follow(s: &mut Svc, states: &mut Vec<(String, State)>, seed: u64) -> usize {
    let drained = effects(s);
    for (name, from, to, _) in &drained {
        let i = match states.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                states.push((name.clone(), State::Closed));
                states.len() - 1
            }
        };
        assert_eq!(states[i].1, *from, "seed {seed}: {name} continues");
        states[i].1 = *to;
    }
    let b = s.breakers().unwrap();
    for (_, name, breaker) in b.registry().iter() {
        let known = states
            .iter()
            .find(|(n, _)| n == name)
            .map_or(State::Closed, |e| e.1);
        assert_eq!(breaker.state(), known, "seed {seed}: {name}");
    }
    drained.len()
}

#[test]
fn new_policies_reconfigure_existing_breakers_and_a_bad_one_changes_nothing() {
    let mut s = service();
    let held = acquire(&mut s, at(1), "up");
    // A configuration no breaker can use: refused, nothing changes.
    let bad = BreakerPolicies::new(BreakerConfig {
        failure_threshold: 0,
        rate: None,
        ..BreakerConfig::DEFAULT
    });
    let b = s.breakers_mut().unwrap();
    assert!(b.apply_policies(at(2), bad).is_err());
    assert_eq!(b.policies(), &BreakerPolicies::new(BreakerConfig::DEFAULT));
    // Tripping on the first failure, for the breaker that exists and for new ones.
    s.breakers_mut()
        .unwrap()
        .apply_policies(at(2), touchy())
        .unwrap();
    let body = record(&mut s, at(3), "up", held, "failure");
    assert!(
        body.contains(r#""recorded":"stale""#),
        "a permit of the old configuration: {body}"
    );
    let permit = acquire(&mut s, at(3), "up");
    record(&mut s, at(3), "up", permit, "failure");
    let permit = acquire(&mut s, at(3), "new");
    record(&mut s, at(3), "new", permit, "failure");
    let opened: Vec<String> = effects(&mut s).into_iter().map(|e| e.0).collect();
    assert_eq!(opened, ["up", "new"], "each opened on one failure");
}
