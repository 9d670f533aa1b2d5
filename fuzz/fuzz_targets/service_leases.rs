//! Request sequences against the core service's lease and health methods (`LEASE_ACQUIRE`,
//! `LEASE_REFRESH`, `LEASE_RELEASE`, `HEALTH_REPORT`, `HEALTH_AGGREGATE`), its sweep timer and
//! lease reconfiguration, on a virtual clock, against a model. Oracles:
//!
//! - no panic; every reply is one JSON object, a success reply is canonical (sorted keys, the
//!   bytes serde_json writes), and the typed outcome says what the bytes say;
//! - leases: an acquire is granted exactly when the key holds fewer live leases than the
//!   limit in force, and refused `LEASE_UNAVAILABLE` with `retry_after_ms` until the earliest
//!   expiry otherwise; `active` is the model's count; a refresh or release succeeds exactly for
//!   a live lease of that key, and a released or expired lease never comes back;
//! - health: each report's status and failure count are the model's, and the aggregate lists
//!   every check once, sorted, with counts that add up;
//! - arbitrary params text, on a twin service, never panics and always gets a JSON reply.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use heidi_core::health::{Health, HealthConfig};
use heidi_core::key::KeyHasher;
use heidi_core::lease::{LeaseConfig, LeaseSet};
use heidi_core::limit::{PolicyTable, Tat};
use heidi_core::proto::{ErrorCode, Method, Request};
use heidi_core::service::{LeaseTable, NoBreakers, Outcome, Reply, Served, Service};
use heidi_core::table::Slot;
use heidi_core::{Duration, Instant};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Client keys as sent: the second one is `u2` written with an escape.
const KEYS: [&str; 3] = ["u:1", "u\\u0032", "k"];
const CHECKS: [&str; 3] = ["db", "cache", "a.b"];
const K: usize = 4;

type Leases = LeaseTable<Box<[Slot<LeaseSet<K>>]>, K>;
type Svc = Service<Box<[Slot<Tat>]>, 0, 0, NoBreakers, Leases, Health<4>>;

#[derive(Arbitrary, Debug)]
enum Op {
    Advance(u16),
    Acquire { key: u8 },
    Refresh { key: u8, which: u8, as_int: bool },
    Release { key: u8, which: u8 },
    Foreign { key: u8, id: u64 },
    SetConfig { limit: u8, ttl_s: u8 },
    Timeout,
    Report { name: u8, pass: bool },
    Aggregate,
    Raw { method: u8, params: String },
}

fn make(slots: usize) -> Box<[Slot<LeaseSet<K>>]> {
    vec![Slot::empty(); slots].into_boxed_slice()
}

fn service() -> Svc {
    let config = LeaseConfig {
        limit_per_key: 2,
        ttl: Duration::from_secs(5),
    };
    let leases = LeaseTable::new(16, make, config, [4; 16]).unwrap();
    let limiter = vec![Slot::empty(); 8].into_boxed_slice();
    Service::new(KeyHasher::new([2; 16]), PolicyTable::DEFAULT, limiter)
        .with_leases(leases)
        .with_health(Health::new(HealthConfig::DEFAULT).unwrap())
}

/// Every lease the model knows of: (key, id) → expiry, released ones removed.
#[derive(Default)]
struct Model {
    leases: BTreeMap<(usize, u64), Instant>,
    dead: Vec<(usize, u64)>,
    limit: usize,
    ttl: Duration,
    /// name → (consecutive failures, last report)
    checks: BTreeMap<&'static str, (u32, Instant)>,
}

impl Model {
    fn live(&self, key: usize, now: Instant) -> Vec<(u64, Instant)> {
        let live = self
            .leases
            .iter()
            .filter(|&(&(k, _), &at)| k == key && at > now);
        live.map(|(&(_, id), &at)| (id, at)).collect()
    }
}

fn serve(s: &mut Svc, now: Instant, method: Method, params: &str) -> (Reply, Value) {
    let frame = format!(r#"{{"method":"{method}","params":{params}}}"#);
    let request = Request::parse(&frame).expect("a valid frame");
    let mut out = vec![0u8; s.large_reply_max_bytes()];
    let reply = match s.handle_large(now, &request, &mut out) {
        Served::Reply(reply) => reply,
        other => panic!("{method}: {other:?}"),
    };
    let body = &out[..reply.len];
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    match reply.error {
        Some(code) => {
            assert_eq!(v["code"], code.as_str());
            assert!(matches!(reply.outcome, Outcome::Refused { code: c, .. } if c == code));
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

fuzz_target!(|ops: Vec<Op>| {
    let mut s = service();
    let mut twin = service();
    let mut m = Model {
        limit: 2,
        ttl: Duration::from_secs(5),
        ..Model::default()
    };
    let mut now = Instant::from_secs(1);
    for op in ops.into_iter().take(256) {
        match op {
            Op::Advance(step) => now += Duration::from_millis(u64::from(step)),
            Op::Acquire { key } => {
                let key = usize::from(key) % KEYS.len();
                let params = format!(r#"{{"key":"{}"}}"#, KEYS[key]);
                let (reply, v) = serve(&mut s, now, Method::LeaseAcquire, &params);
                let live = m.live(key, now);
                if live.len() < m.limit {
                    assert_eq!(reply.error, None, "{v}");
                    let id: u64 = v["lease_id"].as_str().unwrap().parse().unwrap();
                    assert!(!m.dead.contains(&(key, id)), "an id came back: {v}");
                    m.leases.insert((key, id), now + m.ttl);
                    assert_eq!(v["active"], live.len() + 1);
                    assert_eq!(v["expires_in_ms"], ms(m.ttl));
                    assert_eq!(v["limit"], m.limit);
                } else {
                    assert_eq!(reply.error, Some(ErrorCode::LeaseUnavailable), "{v}");
                    // Room comes when enough leases have expired to be under the limit
                    // (more than one when the limit was lowered below the live count).
                    let mut expiries: Vec<Instant> = live.iter().map(|l| l.1).collect();
                    expiries.sort_unstable();
                    let room_at = expiries[live.len() - m.limit];
                    assert_eq!(
                        v["retry_after_ms"],
                        ms(room_at.saturating_duration_since(now))
                    );
                    assert_eq!(v["limit"], m.limit);
                }
            }
            Op::Refresh { key, which, as_int } => {
                let key = usize::from(key) % KEYS.len();
                let Some(id) = pick(&m, key, which) else {
                    continue;
                };
                let params = if as_int {
                    format!(r#"{{"key":"{}","lease_id":{id}}}"#, KEYS[key])
                } else {
                    format!(r#"{{"key":"{}","lease_id":"{id}"}}"#, KEYS[key])
                };
                let (reply, v) = serve(&mut s, now, Method::LeaseRefresh, &params);
                let live = m.leases.get(&(key, id)).is_some_and(|&at| at > now);
                if live {
                    assert_eq!(reply.error, None, "{v}");
                    assert_eq!(v["expires_in_ms"], ms(m.ttl));
                    m.leases.insert((key, id), now + m.ttl);
                } else {
                    assert_eq!(reply.error, Some(ErrorCode::LeaseNotFound), "{v}");
                    m.leases.remove(&(key, id));
                    m.dead.push((key, id));
                }
            }
            Op::Release { key, which } => {
                let key = usize::from(key) % KEYS.len();
                let Some(id) = pick(&m, key, which) else {
                    continue;
                };
                let params = format!(r#"{{"key":"{}","lease_id":"{id}"}}"#, KEYS[key]);
                let (reply, v) = serve(&mut s, now, Method::LeaseRelease, &params);
                let live = m.leases.get(&(key, id)).is_some_and(|&at| at > now);
                m.leases.remove(&(key, id));
                m.dead.push((key, id));
                if live {
                    assert_eq!(reply.error, None, "{v}");
                    assert_eq!(v["active"], m.live(key, now).len());
                } else {
                    assert_eq!(reply.error, Some(ErrorCode::LeaseNotFound), "{v}");
                }
            }
            Op::Foreign { key, id } => {
                let key = usize::from(key) % KEYS.len();
                if m.leases.contains_key(&(key, id)) {
                    continue;
                }
                let params = format!(r#"{{"key":"{}","lease_id":"{id}"}}"#, KEYS[key]);
                let (reply, _) = serve(&mut s, now, Method::LeaseRefresh, &params);
                assert_eq!(reply.error, Some(ErrorCode::LeaseNotFound));
            }
            Op::SetConfig { limit, ttl_s } => {
                let config = LeaseConfig {
                    limit_per_key: u16::from(limit % 6),
                    ttl: Duration::from_secs(u64::from(ttl_s % 20)),
                };
                let valid = config.validate(K).is_ok();
                assert_eq!(s.leases_mut().set_config(config).is_ok(), valid);
                if valid {
                    m.limit = usize::from(config.limit_per_key);
                    m.ttl = config.ttl;
                }
                assert_eq!(usize::from(s.leases().config().limit_per_key), m.limit);
            }
            Op::Timeout => {
                if let Some(due) = s.poll_timeout() {
                    assert!(s.leases().keys() > 0 || s.limiter_keys() > 0);
                    now = now.max(due);
                    s.handle_timeout(now);
                }
            }
            Op::Report { name, pass } => {
                let name = CHECKS[usize::from(name) % CHECKS.len()];
                let params = format!(r#"{{"name":"{name}","pass":{pass}}}"#);
                let (reply, v) = serve(&mut s, now, Method::HealthReport, &params);
                assert_eq!(reply.error, None, "{v}");
                let entry = m.checks.entry(name).or_insert((0, now));
                *entry = (if pass { 0 } else { entry.0 + 1 }, now);
                assert_eq!(v["consecutive_failures"], entry.0);
                let status = if entry.0 >= 3 { "unhealthy" } else { "healthy" };
                assert_eq!(v["status"], status);
                assert_eq!(v["unknown_in_ms"], 60_000);
            }
            Op::Aggregate => {
                let (reply, v) = serve(&mut s, now, Method::HealthAggregate, "{}");
                assert_eq!(reply.error, None);
                let listed = v["checks"].as_array().unwrap();
                let names: Vec<&str> = listed.iter().map(|c| c["name"].as_str().unwrap()).collect();
                let expected: Vec<&str> = m.checks.keys().copied().collect();
                let mut sorted = expected.clone();
                sorted.sort_unstable();
                assert_eq!(names, sorted);
                let total = ["healthy", "unhealthy", "unknown"]
                    .iter()
                    .map(|k| v[k].as_u64().unwrap())
                    .sum::<u64>();
                assert_eq!(total as usize, m.checks.len());
                for (c, name) in listed.iter().zip(&names) {
                    let (fails, last) = m.checks[name];
                    let status = if now >= last + Duration::from_secs(60) {
                        "unknown"
                    } else if fails >= 3 {
                        "unhealthy"
                    } else {
                        "healthy"
                    };
                    assert_eq!(c["status"], status, "{name}");
                }
            }
            Op::Raw { method, params } => {
                let method = [
                    Method::LeaseAcquire,
                    Method::LeaseRefresh,
                    Method::LeaseRelease,
                    Method::HealthReport,
                    Method::HealthAggregate,
                ][usize::from(method) % 5];
                let mut out = vec![0u8; twin.large_reply_max_bytes()];
                let Served::Reply(reply) = twin.handle_large_params(now, method, &params, &mut out)
                else {
                    panic!("covered");
                };
                let body = &out[..reply.len];
                let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
                    panic!("not JSON ({e}): {}", String::from_utf8_lossy(body))
                });
                assert_eq!(reply.error.is_some(), v.get("error").is_some(), "{v}");
            }
        }
    }
});

/// The `which`-th lease the model knows for `key` (live or not), else one it saw die.
fn pick(m: &Model, key: usize, which: u8) -> Option<u64> {
    let known: Vec<u64> = m
        .leases
        .keys()
        .filter(|(k, _)| *k == key)
        .map(|(_, id)| *id)
        .chain(m.dead.iter().filter(|(k, _)| *k == key).map(|(_, id)| *id))
        .collect();
    (!known.is_empty()).then(|| known[usize::from(which) % known.len()])
}
