//! The service's lease and health methods: replies (canonical JSON, typed outcome), params
//! errors, bounds, and the lease sweep as a timer.

extern crate std;

use std::format;
use std::string::{String, ToString};
use std::vec;

use core::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use super::tests::{Boxed, at};
use super::*;
use crate::health::{Health, HealthConfig};
use crate::lease::{LeaseConfig, LeaseSet};
use crate::{Duration, Instant};

type LeaseSlots = std::boxed::Box<[Slot<LeaseSet<4>>]>;
type Svc = Service<Boxed, 0, 0, NoBreakers, LeaseTable<LeaseSlots, 4>, Health<4>>;

fn make(slots: usize) -> LeaseSlots {
    vec![Slot::empty(); slots].into_boxed_slice()
}

/// Tables made by [`make_counted`], which only one test uses.
static TABLES_MADE: AtomicUsize = AtomicUsize::new(0);

fn make_counted(slots: usize) -> LeaseSlots {
    TABLES_MADE.fetch_add(1, Ordering::Relaxed);
    make(slots)
}

fn service() -> Svc {
    service_with(64, make)
}

fn service_with(lease_slots: usize, make: fn(usize) -> LeaseSlots) -> Svc {
    let limiter = vec![Slot::empty(); 64].into_boxed_slice();
    let config = LeaseConfig {
        limit_per_key: 3,
        ttl: Duration::from_secs(60),
    };
    let leases = LeaseTable::new(lease_slots, make, config, [9; 16]).unwrap();
    let health = Health::new(HealthConfig::DEFAULT).unwrap();
    Service::new(KeyHasher::new([1; 16]), PolicyTable::DEFAULT, limiter)
        .with_leases(leases)
        .with_health(health)
}

/// Serves a method whose reply may be long (`Served::LargeReply`) into the large buffer.
fn call(s: &mut Svc, now: Instant, method: Method, params: &str) -> (Reply, Value) {
    serve(s, now, method, params, true)
}

/// Serves a method into a [`ReplyBuf`].
fn small(s: &mut Svc, now: Instant, method: Method, params: &str) -> (Reply, Value) {
    serve(s, now, method, params, false)
}

/// Serves `params` as a parsed frame; checks that the outcome says what the bytes say and that
/// a success reply is canonical JSON.
fn serve(s: &mut Svc, now: Instant, method: Method, params: &str, large: bool) -> (Reply, Value) {
    let frame = format!(r#"{{"method":"{method}","params":{params}}}"#);
    let request = Request::parse(&frame).expect("a valid frame");
    let mut out = vec![0u8; s.large_reply_max_bytes()];
    let served = s.handle(
        now,
        &request,
        (&mut out[..REPLY_MAX_BYTES]).try_into().unwrap(),
    );
    let reply = match (served, large) {
        (Served::LargeReply, true) => match s.handle_large(now, &request, &mut out) {
            Served::Reply(reply) => reply,
            other => panic!("{method}: {other:?}"),
        },
        (Served::Reply(reply), false) => reply,
        (other, _) => panic!("{method}: {other:?}"),
    };
    let body = &out[..reply.len];
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    assert_eq!(reply.error.is_some(), v.get("error").is_some(), "{v}");
    match reply.error {
        Some(code) => assert_eq!(v["code"], code.as_str()),
        None => assert_eq!(body, serde_json::to_vec(&v).unwrap(), "canonical: {v}"),
    }
    (reply, v)
}

fn ok(s: &mut Svc, now: Instant, method: Method, params: &str) -> Value {
    let (reply, v) = small(s, now, method, params);
    assert_eq!(
        (reply.outcome, reply.error),
        (Outcome::Allowed, None),
        "{v}"
    );
    v
}

fn refused(s: &mut Svc, now: Instant, method: Method, params: &str) -> (ErrorCode, Value) {
    let (reply, v) = small(s, now, method, params);
    let code = reply.error.expect("an error reply");
    assert!(matches!(reply.outcome, Outcome::Refused { code: c, .. } if c == code));
    (code, v)
}

fn with_id(key: &str, id: &str) -> String {
    format!(r#"{{"key":"{key}","lease_id":"{id}"}}"#)
}

#[test]
fn leases_up_to_the_limit_then_unavailable_with_when() {
    let mut s = service();
    let mut ids = std::vec::Vec::new();
    for i in 0..3 {
        let v = ok(&mut s, at(i), Method::LeaseAcquire, r#"{"key":"u:1"}"#);
        assert_eq!(
            (&v["active"], &v["expires_in_ms"], &v["limit"]),
            (&(i + 1).into(), &60_000.into(), &3.into())
        );
        let id = v["lease_id"].as_str().unwrap().to_string();
        assert_eq!(id.parse::<u64>().unwrap().to_string(), id);
        ids.push(id);
    }
    let (code, v) = refused(&mut s, at(10), Method::LeaseAcquire, r#"{"key":"u:1"}"#);
    assert_eq!(code, ErrorCode::LeaseUnavailable);
    assert_eq!(v["message"], "this key holds its limit of 3 live leases");
    // The first lease expires at 60 s.
    assert_eq!(
        (&v["retry_after_ms"], &v["limit"]),
        (&50_000.into(), &3.into())
    );
    ok(&mut s, at(10), Method::LeaseAcquire, r#"{"key":"u:2"}"#);
    let v = ok(
        &mut s,
        at(10),
        Method::LeaseRelease,
        &with_id("u:1", &ids[0]),
    );
    assert_eq!((&v["active"], &v["released"]), (&2.into(), &true.into()));
    ok(&mut s, at(10), Method::LeaseAcquire, r#"{"key":"u:1"}"#);
}

#[test]
fn refresh_extends_and_a_dead_lease_stays_dead() {
    let mut s = service();
    let id = ok(&mut s, at(0), Method::LeaseAcquire, r#"{"key":"k"}"#)["lease_id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = ok(&mut s, at(50), Method::LeaseRefresh, &with_id("k", &id));
    assert_eq!(
        (&v["expires_in_ms"], &v["lease_id"]),
        (&60_000.into(), &id.as_str().into())
    );
    // The id may also come as a JSON integer.
    let as_int = format!(r#"{{"key":"k","lease_id":{id}}}"#);
    ok(&mut s, at(100), Method::LeaseRefresh, &as_int);
    ok(&mut s, at(101), Method::LeaseRelease, &with_id("k", &id));
    for method in [Method::LeaseRefresh, Method::LeaseRelease] {
        let (code, v) = refused(&mut s, at(101), method, &with_id("k", &id));
        assert_eq!(code, ErrorCode::LeaseNotFound, "{v}");
    }
    let id = ok(&mut s, at(200), Method::LeaseAcquire, r#"{"key":"k"}"#)["lease_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = refused(
        &mut s,
        at(200),
        Method::LeaseRelease,
        &with_id("other", &id),
    );
    assert_eq!(code, ErrorCode::LeaseNotFound, "another key's id");
    let (code, _) = refused(&mut s, at(260), Method::LeaseRefresh, &with_id("k", &id));
    assert_eq!(code, ErrorCode::LeaseNotFound, "expired");
}

#[test]
fn lease_params_errors_name_the_field() {
    let mut s = service();
    let cases = [
        (Method::LeaseAcquire, "{}", "params.key: is required"),
        (
            Method::LeaseAcquire,
            r#"{"key":null}"#,
            "params.key: is required",
        ),
        (
            Method::LeaseAcquire,
            r#"{"key":7}"#,
            "params.key: must be a string",
        ),
        (
            Method::LeaseAcquire,
            r#"{"key":""}"#,
            "params.key: must be 1 to 256 bytes long",
        ),
        (
            Method::LeaseAcquire,
            r#"{"key":"k","lease_id":"1"}"#,
            "params.lease_id: unknown field (expected one of: key)",
        ),
        (
            Method::LeaseAcquire,
            r#"{"key":"k","key":"j"}"#,
            "params.key: duplicate field",
        ),
        (
            Method::LeaseRefresh,
            r#"{"key":"k"}"#,
            "params.lease_id: is required",
        ),
        (
            Method::LeaseRefresh,
            r#"{"key":"k","lease_id":"abc"}"#,
            "params.lease_id: must be a 64-bit id as a decimal string",
        ),
        (
            Method::LeaseRelease,
            r#"{"key":"k","lease_id":1.5}"#,
            "params.lease_id: must be a 64-bit id as a decimal string",
        ),
        (
            Method::LeaseRelease,
            r#"{"key":"k","lease_id":"18446744073709551616"}"#,
            "params.lease_id: must be a 64-bit id as a decimal string",
        ),
        (
            Method::LeaseRelease,
            r#"{"lease_id":"1"}"#,
            "params.key: is required",
        ),
        (
            Method::LeaseRelease,
            r#"{"key":"k","lease_id":"1","zz":1,"\u0061a":2}"#,
            "params.aa: unknown field (expected one of: key, lease_id)",
        ),
    ];
    for (method, params, message) in cases {
        let (code, v) = refused(&mut s, at(1), method, params);
        assert_eq!(
            (code, v["message"].as_str().unwrap()),
            (ErrorCode::BadRequest, message)
        );
    }
    let key = "k".repeat(KEY_MAX_BYTES);
    ok(
        &mut s,
        at(1),
        Method::LeaseAcquire,
        &format!(r#"{{"key":"{key}"}}"#),
    );
    let (_, v) = refused(
        &mut s,
        at(1),
        Method::LeaseAcquire,
        &format!(r#"{{"key":"{key}k"}}"#),
    );
    assert_eq!(v["message"], "params.key: must be 1 to 256 bytes long");
    let mut out = [0u8; REPLY_MAX_BYTES];
    let served = s.handle_params(at(1), Method::LeaseAcquire, "[1]", &mut out);
    let Served::Reply(reply) = served else {
        panic!()
    };
    assert_eq!(reply.error, Some(ErrorCode::BadRequest));
}

#[test]
fn the_table_is_made_at_the_first_lease_call_and_bounded() {
    let mut s = service_with(8, make_counted);
    ok(
        &mut s,
        at(1),
        Method::HealthReport,
        r#"{"name":"db","pass":true}"#,
    );
    assert_eq!(
        (s.leases().keys(), TABLES_MADE.load(Ordering::Relaxed)),
        (0, 0)
    );
    for i in 0..8 {
        ok(
            &mut s,
            at(1),
            Method::LeaseAcquire,
            &format!(r#"{{"key":"k{i}"}}"#),
        );
    }
    assert_eq!(TABLES_MADE.load(Ordering::Relaxed), 1, "made once");
    assert_eq!(s.leases().keys(), 8);
    let (code, v) = refused(&mut s, at(1), Method::LeaseAcquire, r#"{"key":"k8"}"#);
    assert_eq!(
        (code, &v["retry_after_ms"]),
        (ErrorCode::Overloaded, &60_000.into())
    );
    // Expired slots are reclaimed on demand, and the sweep frees them as a timer.
    assert!(
        s.poll_timeout().is_some(),
        "a sweep is scheduled while keys are held"
    );
    let mut now = at(61);
    while let Some(due) = s.poll_timeout() {
        if due > at(70) {
            break;
        }
        now = now.max(due);
        s.handle_timeout(now);
        now += Duration::from_millis(1);
    }
    assert_eq!(s.leases().keys(), 0);
    assert_eq!(s.poll_timeout(), None, "nothing left to sweep");
    ok(&mut s, at(61), Method::LeaseAcquire, r#"{"key":"k8"}"#);
}

#[test]
fn a_new_lease_config_applies_to_the_next_acquire() {
    let mut s = service();
    for _ in 0..3 {
        ok(&mut s, at(1), Method::LeaseAcquire, r#"{"key":"k"}"#);
    }
    let wider = LeaseConfig {
        limit_per_key: 4,
        ttl: Duration::from_secs(10),
    };
    s.leases_mut().set_config(wider).unwrap();
    let v = ok(&mut s, at(2), Method::LeaseAcquire, r#"{"key":"k"}"#);
    assert_eq!(
        (&v["limit"], &v["expires_in_ms"]),
        (&4.into(), &10_000.into())
    );
    let too_many = LeaseConfig {
        limit_per_key: 5,
        ttl: Duration::from_secs(10),
    };
    assert!(
        s.leases_mut().set_config(too_many).is_err(),
        "4 slots per key"
    );
    assert_eq!(s.leases().config(), wider);
}

#[test]
fn health_reports_register_and_count_failures() {
    let mut s = service();
    let v = ok(
        &mut s,
        at(1),
        Method::HealthReport,
        r#"{"name":"db","pass":false}"#,
    );
    assert_eq!(
        v,
        serde_json::json!({"consecutive_failures": 1, "name": "db", "ok": true,
            "status": "healthy", "unknown_in_ms": 60_000})
    );
    ok(
        &mut s,
        at(2),
        Method::HealthReport,
        r#"{"name":"db","pass":false}"#,
    );
    let v = ok(
        &mut s,
        at(3),
        Method::HealthReport,
        r#"{"name":"db","pass":false}"#,
    );
    assert_eq!(
        (&v["status"], &v["consecutive_failures"]),
        (&"unhealthy".into(), &3.into())
    );
    ok(
        &mut s,
        at(3),
        Method::HealthReport,
        r#"{"name":"cache","pass":true}"#,
    );
    let (reply, v) = call(&mut s, at(4), Method::HealthAggregate, "{}");
    assert_eq!(reply.outcome, Outcome::Allowed);
    assert_eq!(
        v,
        serde_json::json!({"checks": [{"name": "cache", "status": "healthy"},
            {"name": "db", "status": "unhealthy"}],
            "healthy": 1, "status": "degraded", "unhealthy": 1, "unknown": 0})
    );
    // Silent for two intervals: unknown.
    let (_, v) = call(&mut s, at(64), Method::HealthAggregate, "{}");
    assert_eq!(
        (&v["status"], &v["unknown"]),
        (&"unhealthy".into(), &2.into())
    );
}

#[test]
fn health_params_and_bounds() {
    let mut s = service();
    let cases = [
        (r#"{"pass":true}"#, "params.name: is required"),
        (
            r#"{"name":"a b","pass":true}"#,
            "params.name: names are 1 to 64 of A-Z a-z 0-9 _ . : -",
        ),
        (r#"{"name":"db"}"#, "params.pass: is required"),
        (
            r#"{"name":"db","pass":"yes"}"#,
            "params.pass: must be true or false",
        ),
        (
            r#"{"name":"db","pass":true,"x":1}"#,
            "params.x: unknown field (expected one of: name, pass)",
        ),
    ];
    for (params, message) in cases {
        let (code, v) = refused(&mut s, at(1), Method::HealthReport, params);
        assert_eq!(
            (code, v["message"].as_str().unwrap()),
            (ErrorCode::BadRequest, message)
        );
    }
    let (reply, v) = call(&mut s, at(1), Method::HealthAggregate, r#"{"x":1}"#);
    assert_eq!(reply.error, Some(ErrorCode::BadRequest));
    assert_eq!(
        v["message"],
        "params.x: unknown field (this object takes no fields)"
    );
    for i in 0..4 {
        ok(
            &mut s,
            at(1),
            Method::HealthReport,
            &format!(r#"{{"name":"c{i}","pass":true}}"#),
        );
    }
    let (code, v) = refused(
        &mut s,
        at(1),
        Method::HealthReport,
        r#"{"name":"c4","pass":true}"#,
    );
    assert_eq!(code, ErrorCode::Overloaded);
    assert_eq!(v["message"], "health check set is full (4 checks)");
    // A known check still reports.
    ok(
        &mut s,
        at(1),
        Method::HealthReport,
        r#"{"name":"c3","pass":false}"#,
    );
}

#[test]
fn the_aggregate_needs_the_large_buffer() {
    let mut s = service();
    let request = Request::parse(r#"{"method":"HEALTH_AGGREGATE","params":{}}"#).unwrap();
    let mut out = [7u8; REPLY_MAX_BYTES];
    assert_eq!(s.handle(at(1), &request, &mut out), Served::LargeReply);
    assert_eq!(out, [7u8; REPLY_MAX_BYTES], "untouched");
    let longest = aggregate_reply_max_bytes(4).max(REPLY_MAX_BYTES);
    assert_eq!(s.large_reply_max_bytes(), longest);
    let mut short = [0u8; 64];
    let Served::Reply(reply) = s.handle_large(at(1), &request, &mut short) else {
        panic!()
    };
    assert_eq!(reply.error, Some(ErrorCode::Internal));
    // Other methods go through the large path too, with the same bytes.
    let mut big = vec![0u8; s.large_reply_max_bytes()];
    let served = s.handle_large_params(at(1), Method::LeaseAcquire, r#"{"key":"k"}"#, &mut big);
    let Served::Reply(reply) = served else {
        panic!()
    };
    assert!(big[..reply.len].starts_with(br#"{"active":1,"expires_in_ms":60000,"lease_id":""#));
}

#[test]
fn the_longest_aggregate_fits_its_bound() {
    let limiter = vec![Slot::empty(); 8].into_boxed_slice();
    let mut s = Service::new(KeyHasher::new([1; 16]), PolicyTable::DEFAULT, limiter)
        .with_health(Health::<8>::new(HealthConfig::DEFAULT).unwrap());
    for i in 0..8 {
        // Names of 64 bytes; the set may hold names the wire would refuse (the host
        // registers its own), which the reply escapes.
        let name = format!("{i}{}", "\u{1}".repeat(63));
        s.health_mut().register(at(1), &name).unwrap();
    }
    let mut out = vec![0u8; s.large_reply_max_bytes()];
    let served = s.handle_large_params(at(1), Method::HealthAggregate, "{}", &mut out);
    let Served::Reply(reply) = served else {
        panic!()
    };
    assert_eq!(reply.error, None);
    let v: Value = serde_json::from_slice(&out[..reply.len]).unwrap();
    assert_eq!(v["checks"].as_array().unwrap().len(), 8);
    assert!(
        reply.len > 8 * 64 * 6,
        "every name byte escaped: {}",
        reply.len
    );
}

#[test]
fn a_reconfigured_set_keeps_reports_and_failures() {
    let mut h = Health::<4>::new(HealthConfig::DEFAULT).unwrap();
    h.register(at(1), "a").unwrap();
    h.register(at(1), "b").unwrap();
    for _ in 0..3 {
        h.report(at(2), "b", false).unwrap();
    }
    let strict = HealthConfig {
        failure_threshold: 2,
        ..HealthConfig::DEFAULT
    };
    let new = h.reconfigured(strict).unwrap();
    let b = new.check(at(3), "b").unwrap();
    assert_eq!((b.consecutive_failures, b.last_report), (2, Some(at(2))));
    let a = new.check(at(3), "a").unwrap();
    assert_eq!(
        (a.last_report, a.unknown_at),
        (None, h.check(at(3), "a").unwrap().unknown_at)
    );
}

#[test]
fn without_the_components_the_methods_are_not_covered() {
    let limiter = vec![Slot::empty(); 8].into_boxed_slice();
    let mut s = Service::new(KeyHasher::new([1; 16]), PolicyTable::DEFAULT, limiter);
    let mut out = [0u8; REPLY_MAX_BYTES];
    for method in [
        Method::LeaseAcquire,
        Method::LeaseRefresh,
        Method::LeaseRelease,
        Method::HealthReport,
        Method::HealthAggregate,
    ] {
        assert!(covers(method));
        assert_eq!(
            s.handle_params(at(1), method, "{}", &mut out),
            Served::NotCovered
        );
    }
    assert_eq!(s.large_reply_max_bytes(), REPLY_MAX_BYTES);
}
