//! The client library against a real `heidid`: every typed helper's parameters are accepted
//! and its reply has the fields `docs/PROTOCOL.md` promises; `guard` end to end (rate limit,
//! breaker opening, retry then success); availability; the HTTP transport.

mod common;

use common::*;
use heidi_client::JournalEntry;
use heidi_client::endpoint::Endpoint;
use heidi_client::{
    BreakerOutcome, CallResult, CallStatus, Client, ClientConfig, GuardError, GuardSpec,
    IdempotencyOutcome, PipelineMode, Token,
};
use heidi_core::retry::{Jitter, RetryPolicy};
use serde_json::{Value, json};
use std::cell::Cell;
use std::time::Instant;

fn client_at(endpoint: Endpoint) -> Client {
    let config = ClientConfig {
        endpoint,
        retry_attempts: 1,
        retry_delay_ms: 10,
        ..ClientConfig::default()
    };
    Client::new(config).unwrap()
}

fn client(d: &Daemon) -> Client {
    client_at(Endpoint::Unix(d.socket.clone()))
}

/// The payload of a success reply (panics with the reply otherwise).
fn ok(r: &CallResult) -> &Value {
    assert_eq!(r.status, CallStatus::Ok, "{r:?}");
    r.payload.as_ref().unwrap()
}

/// The error code of an error reply (panics otherwise).
fn err(r: &CallResult) -> &str {
    assert_eq!(r.status, CallStatus::Error, "{r:?}");
    r.error_code.as_deref().unwrap()
}

/// A 64-bit id sent as a decimal string, as the protocol says.
fn decimal_id(r: &CallResult, name: &str) -> String {
    let field = r.field(name).unwrap_or(&Value::Null);
    assert!(field.is_string(), "{name} is not a string: {r:?}");
    r.id(name)
        .unwrap_or_else(|| panic!("{name} is not an id: {r:?}"))
}

fn fast_retry(attempts: u32) -> RetryPolicy {
    let ms = heidi_core::Duration::from_millis;
    RetryPolicy::new(attempts, ms(10), ms(20), 2, Jitter::None).unwrap()
}

#[test]
fn host_and_policy_helpers() {
    let d = Daemon::start(&[]);
    let c = client(&d);
    let pong = ok(&c.ping()).clone();
    assert_eq!(
        (pong["ok"].clone(), pong["pong"].clone()),
        (json!(true), json!(true))
    );
    assert!(pong["version"].is_string());
    let status = ok(&c.status()).clone();
    assert_eq!(status["protocol_version"], 1);
    assert_eq!(status["pid"], d.pid());
    assert_eq!(status["policy_version"], 1);
    assert!(status["journal"]["lines"].is_u64(), "{status}");

    let policy = ok(&c.get_policy()).clone();
    assert_eq!(policy["version"], 1);
    assert_eq!(policy["policy"]["limits"]["search"]["capacity_tokens"], 30);
    let applied = c.apply_policy(json!({"limits": {"search": {"capacity_tokens": 60}}}));
    assert_eq!(ok(&applied)["version"], 2);
    let policy = ok(&c.get_policy()).clone();
    assert_eq!(policy["version"], 2);
    assert_eq!(policy["policy"]["limits"]["search"]["capacity_tokens"], 60);
    let bad = c.apply_policy(json!({"limits": {"llm call": {}}}));
    assert_eq!(err(&bad), "INVALID_POLICY");
    assert!(
        bad.reason
            .as_deref()
            .unwrap()
            .starts_with("limits.llm call: names are"),
        "{bad:?}"
    );
    assert_eq!(ok(&c.status())["policy_version"], 2);

    // The pipeline is IDLE (no stage scripts here): these do not apply.
    for r in [
        c.pipeline_stop(),
        c.pipeline_pause(),
        c.pipeline_resume(),
        c.pipeline_reset(),
        c.pipeline_train_now(),
    ] {
        assert_eq!(err(&r), "REFUSED");
    }
    let started = ok(&c.pipeline_start(PipelineMode::Full)).clone();
    assert_eq!(started["status"]["mode"], "full", "{started}");
}

#[test]
fn rate_limit_helpers() {
    let d = Daemon::start(&[]);
    let c = client(&d);
    let tiny = json!({"limits": {"transform": {"capacity_tokens": 3, "window_ms": 60000}}});
    ok(&c.apply_policy(tiny));
    let check = ok(&c.rate_limit_check("u1", "transform", 1, None)).clone();
    assert_eq!(
        check,
        json!({"allowed": true, "remaining": 3, "retry_after_ms": 0, "limit": 3,
               "window_ms": 60000, "operation": "transform"})
    );
    for left in [2, 1, 0] {
        let r = ok(&c.rate_limit_consume("u1", "transform", 1, None)).clone();
        assert_eq!(
            (r["allowed"].clone(), r["remaining"].clone()),
            (json!(true), json!(left))
        );
        assert!(r["reset_after_ms"].as_u64().unwrap() > 0, "{r}");
    }
    let denied = c.rate_limit_consume("u1", "transform", 1, None);
    assert_eq!(err(&denied), "RATE_LIMITED");
    assert!(denied.retry_after_ms().unwrap() > 0, "{denied:?}");
    assert_eq!(denied.field("remaining"), Some(&json!(0)));
    let check = ok(&c.rate_limit_check("u1", "transform", 1, None)).clone();
    assert_eq!(check["allowed"], false);
    assert!(check["retry_after_ms"].as_u64().unwrap() > 0, "{check}");
    // Another key has its own bucket; unknown operations count as `other`.
    let other = ok(&c.rate_limit_consume("u2", "llm_call", 2, None)).clone();
    assert_eq!(
        (other["operation"].clone(), other["remaining"].clone()),
        (json!("other"), json!(28))
    );
    let too_big = c.rate_limit_consume("u2", "transform", 4, None);
    assert_eq!(err(&too_big), "BAD_REQUEST");
    assert!(too_big.reason.unwrap().starts_with("params.cost:"));
}

#[test]
fn breaker_helpers() {
    let d = Daemon::start(&[]);
    let c = client(&d);
    let acquired = c.breaker_acquire("db");
    let permit = decimal_id(&acquired, "permit");
    let p = ok(&acquired);
    assert_eq!(
        (p["allowed"].clone(), p["probe"].clone(), p["state"].clone()),
        (json!(true), json!(false), json!("closed"))
    );
    let recorded = ok(&c.breaker_record("db", &permit, BreakerOutcome::Success, None)).clone();
    assert_eq!(
        recorded,
        json!({"ok": true, "recorded": "counted", "state": "closed"})
    );
    let again = ok(&c.breaker_record("db", &permit, BreakerOutcome::Success, None)).clone();
    assert_eq!(again["recorded"], "unknown");

    let permit = decimal_id(&c.breaker_acquire("db"), "permit");
    let r = ok(&c.breaker_record("db", &permit, BreakerOutcome::Abandoned, None)).clone();
    assert_eq!(r["recorded"], "abandoned");
    let permit = decimal_id(&c.breaker_acquire("db"), "permit");
    let r = ok(&c.breaker_record("db", &permit, BreakerOutcome::Failure, Some(12))).clone();
    assert_eq!(
        (r["recorded"].clone(), r["state"].clone()),
        (json!("counted"), json!("closed"))
    );
    // A permit under another breaker's name is refused and stays outstanding.
    let permit = decimal_id(&c.breaker_acquire("db"), "permit");
    let wrong = c.breaker_record("cache", &permit, BreakerOutcome::Success, None);
    assert_eq!(err(&wrong), "BAD_REQUEST");
    let r = ok(&c.breaker_record("db", &permit, BreakerOutcome::Success, None)).clone();
    assert_eq!(r["recorded"], "counted");
}

#[test]
fn lease_and_idempotency_helpers() {
    let d = Daemon::start(&[]);
    let c = client(&d);
    let acquired = c.lease_acquire("user:1");
    let id = decimal_id(&acquired, "lease_id");
    let a = ok(&acquired);
    assert_eq!(
        (
            a["expires_in_ms"].clone(),
            a["active"].clone(),
            a["limit"].clone()
        ),
        (json!(180000), json!(1), json!(5))
    );
    let refreshed = c.lease_refresh("user:1", &id);
    assert_eq!(decimal_id(&refreshed, "lease_id"), id);
    assert_eq!(ok(&refreshed)["expires_in_ms"], 180000);
    let released = ok(&c.lease_release("user:1", &id)).clone();
    assert_eq!(released, json!({"ok": true, "released": true, "active": 0}));
    assert_eq!(err(&c.lease_refresh("user:1", &id)), "LEASE_NOT_FOUND");
    assert_eq!(err(&c.lease_release("user:1", &id)), "LEASE_NOT_FOUND");

    let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let begun = c.idempotency_begin("order:42");
    assert_eq!(ok(&begun)["status"], "started");
    assert_eq!(ok(&begun)["expires_in_ms"], 300000);
    let token = decimal_id(&begun, "token");
    let busy = c.idempotency_begin("order:42");
    assert_eq!(err(&busy), "IN_PROGRESS");
    assert!(busy.field("expires_in_ms").is_some(), "{busy:?}");
    let done = c.idempotency_complete("order:42", &token, IdempotencyOutcome::Success { digest });
    assert_eq!(ok(&done)["status"], "remembered");
    let replay = ok(&c.idempotency_begin("order:42")).clone();
    assert_eq!(
        (replay["status"].clone(), replay["digest"].clone()),
        (json!("done"), json!(digest))
    );
    let twice = c.idempotency_complete("order:42", &token, IdempotencyOutcome::Success { digest });
    assert_eq!(err(&twice), "REFUSED");
    assert_eq!(twice.field("reason"), Some(&json!("already_completed")));

    let token = decimal_id(&c.idempotency_begin("order:43"), "token");
    let failed =
        ok(&c.idempotency_complete("order:43", &token, IdempotencyOutcome::Failure)).clone();
    assert_eq!(failed, json!({"ok": true, "status": "released"}));
    assert_eq!(ok(&c.idempotency_begin("order:43"))["status"], "started");
    let unknown = c.idempotency_complete("order:44", "1", IdempotencyOutcome::Failure);
    assert_eq!(unknown.field("reason"), Some(&json!("unknown")));

    let token = decimal_id(&c.idempotency_begin("order:45"), "token");
    let success = IdempotencyOutcome::Success { digest };
    let stored = c.idempotency_complete_with_response("order:45", &token, success, "{\"id\":45}");
    assert_eq!(ok(&stored)["status"], "remembered");
    let replay = ok(&c.idempotency_begin("order:45")).clone();
    assert_eq!(replay["response"], "{\"id\":45}");
}

#[test]
fn health_and_journal_helpers() {
    let d = Daemon::start(&[]);
    let c = client(&d);
    let r = ok(&c.health_report("db", false)).clone();
    assert_eq!(
        (
            r["name"].clone(),
            r["status"].clone(),
            r["consecutive_failures"].clone()
        ),
        (json!("db"), json!("healthy"), json!(1))
    );
    assert_eq!(r["unknown_in_ms"], 60000);
    ok(&c.health_report("cache", true));
    let agg = ok(&c.health_aggregate()).clone();
    assert_eq!(agg["status"], "healthy");
    assert_eq!(
        agg["checks"],
        json!([{"name": "cache", "status": "healthy"}, {"name": "db", "status": "healthy"}])
    );
    for _ in 0..2 {
        ok(&c.health_report("db", false));
    }
    let agg = ok(&c.health_aggregate()).clone();
    assert_eq!(
        (
            agg["status"].clone(),
            agg["healthy"].clone(),
            agg["unhealthy"].clone()
        ),
        (json!("degraded"), json!(1), json!(1))
    );

    let mut entry = JournalEntry::info("batcher", "batch_done", "wrote 120 rows");
    entry.level = heidi_core::journal::Level::Warning;
    entry.counters_delta = vec![("rows".into(), 120)];
    entry.usage_delta = vec![("cpu_ms".into(), 7)];
    entry.artifact_paths = vec!["out/batch-1.jsonl".into()];
    entry.error = Some("one row skipped".into());
    let appended = ok(&c.journal_append(&entry)).clone();
    let hash = appended["hash"].as_str().unwrap();
    assert!(
        hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{appended}"
    );
    assert!(appended["line"].as_u64().unwrap() >= 1);
    let plain = ok(&c.journal_append(&JournalEntry::info("client", "note", "n"))).clone();
    assert_eq!(
        plain["line"].as_u64(),
        appended["line"].as_u64().map(|l| l + 1)
    );
    let reserved = c.journal_append(&JournalEntry::info("kernel", "fake", "x"));
    assert_eq!(err(&reserved), "BAD_REQUEST");

    let tail = ok(&c.journal_tail(2)).clone();
    let events = tail["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{tail}");
    let e = &events[0];
    assert_eq!(
        (
            e["stage"].clone(),
            e["level"].clone(),
            e["event_type"].clone()
        ),
        (json!("batcher"), json!("warning"), json!("batch_done"))
    );
    assert_eq!(e["counters_delta"], json!({"rows": 120}));
    assert_eq!(e["usage_delta"], json!({"cpu_ms": 7}));
    assert_eq!(e["artifact_paths"], json!(["out/batch-1.jsonl"]));
    assert_eq!(e["error"], "one row skipped");
    assert_eq!(events[1]["event_type"], "note");
    assert_eq!(err(&c.journal_tail(0)), "BAD_REQUEST");
    assert_eq!(err(&c.journal_tail(257)), "BAD_REQUEST");
}

#[test]
fn guard_is_rate_limited_by_an_applied_policy() {
    let d = Daemon::start(&[]);
    let c = client(&d);
    let tiny = json!({"limits": {"embed": {"capacity_tokens": 2, "window_ms": 60000}}});
    ok(&c.apply_policy(tiny));
    let spec = GuardSpec::new("tenant:1", "embed", "embedder");
    let calls = Cell::new(0);
    let run = || {
        calls.set(calls.get() + 1);
        Ok::<_, String>(calls.get())
    };
    assert_eq!(c.guard(&spec, run), Ok(1));
    assert_eq!(c.guard(&spec, run), Ok(2));
    match c.guard(&spec, run) {
        Err(GuardError::RateLimited {
            retry_after_ms: Some(ms),
        }) => {
            assert!(ms > 0 && ms <= 60_000, "{ms}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(calls.get(), 2, "the closure ran while rate limited");
}

#[test]
fn guard_opens_the_breaker_then_refuses_without_running() {
    let d = Daemon::start(&[]);
    let c = client(&d);
    let policy =
        json!({"breakers": {"flaky": {"failure_threshold": 2, "reset_timeout_ms": 300000}}});
    ok(&c.apply_policy(policy));
    let spec = GuardSpec {
        retry: fast_retry(5),
        ..GuardSpec::new("tenant:1", "other", "flaky")
    };
    let calls = Cell::new(0);
    let failing = || {
        calls.set(calls.get() + 1);
        Err::<(), _>("upstream down")
    };
    match c.guard(&spec, failing) {
        Err(GuardError::CircuitOpen {
            retry_after_ms: Some(ms),
            last_error: Some("upstream down"),
        }) => {
            assert!(ms > 200_000 && ms <= 300_000, "{ms}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        calls.get(),
        2,
        "the threshold is 2 failures; no attempt into the open breaker"
    );
    match c.guard(&spec, failing) {
        Err(GuardError::CircuitOpen {
            retry_after_ms: Some(ms),
            last_error: None,
        }) => {
            assert!(ms > 0, "{ms}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(calls.get(), 2, "the closure ran with the breaker open");
    let refused = c.breaker_acquire("flaky");
    assert_eq!(err(&refused), "CIRCUIT_OPEN");
    assert_eq!(refused.field("state"), Some(&json!("open")));

    // The transition is journaled (in the background: wait for it, bounded).
    let start = Instant::now();
    loop {
        let tail = ok(&c.journal_tail(20)).clone();
        let opened = tail["events"].as_array().unwrap().iter().any(|e| {
            e["event_type"] == "breaker_transition"
                && e["level"] == "warning"
                && e["message"].as_str().unwrap_or("").contains("flaky")
        });
        if opened {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no breaker_transition event: {tail}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn guard_retry_then_success_records_the_success() {
    let d = Daemon::start(&[]);
    let c = client(&d);
    let policy = json!({"breakers": {"b2": {"failure_threshold": 2, "reset_timeout_ms": 300000}}});
    ok(&c.apply_policy(policy));
    let spec = GuardSpec {
        retry: fast_retry(3),
        ..GuardSpec::new("tenant:1", "other", "b2")
    };
    let calls = Cell::new(0);
    let flaky = || {
        calls.set(calls.get() + 1);
        if calls.get() < 2 {
            Err("flaky")
        } else {
            Ok(calls.get())
        }
    };
    assert_eq!(c.guard(&spec, flaky), Ok(2));
    // One more failure: had the success not been recorded, this would be the second
    // consecutive failure and open the breaker.
    let once = GuardSpec {
        retry: fast_retry(1),
        ..spec
    };
    assert_eq!(
        c.guard(&once, || Err::<(), _>("down")),
        Err(GuardError::Failed {
            error: "down",
            attempts: 1
        })
    );
    let acquired = c.breaker_acquire("b2");
    assert_eq!(ok(&acquired)["state"], "closed", "{acquired:?}");
    let permit = decimal_id(&acquired, "permit");
    ok(&c.breaker_record("b2", &permit, BreakerOutcome::Abandoned, None));
    // And the guard's permits were all recorded: a second failure now opens it.
    assert!(matches!(
        c.guard(&once, || Err::<(), _>("down")),
        Err(GuardError::Failed { attempts: 1, .. })
    ));
    assert_eq!(err(&c.breaker_acquire("b2")), "CIRCUIT_OPEN");
}

#[test]
fn is_available_follows_the_daemon() {
    let mut d = Daemon::start(&[]);
    let c = client(&d);
    assert!(c.is_available());
    assert!(c.require().is_ok());
    d.stop();
    assert!(!c.is_available());
    let r = c.ping();
    assert_eq!(r.status, CallStatus::Unavailable, "{r:?}");
    assert_eq!(r.retry_count, 1);
}

#[test]
fn http_transport_pings_and_reads_status() {
    let d = Daemon::start(&[]);
    let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{}", d.port)).unwrap();
    let c = client_at(endpoint);
    assert!(c.is_available());
    assert_eq!(ok(&c.ping())["pong"], true);
    let status = ok(&c.status()).clone();
    assert_eq!(
        (status["protocol_version"].clone(), status["pid"].clone()),
        (json!(1), json!(d.pid()))
    );
    let permit = decimal_id(&c.breaker_acquire("http"), "permit");
    let r = ok(&c.breaker_record("http", &permit, BreakerOutcome::Success, None)).clone();
    assert_eq!(r["recorded"], "counted");
    assert_eq!(err(&c.pipeline_train_now()), "REFUSED");
}

const TOKEN: &str = "e2e-token-0123456789abcdef";

/// A client of `d`'s HTTP listener sending `token`.
fn http_client(d: &Daemon, token: Option<&str>) -> Client {
    let config = ClientConfig {
        endpoint: Endpoint::parse(&format!("http://127.0.0.1:{}", d.port)).unwrap(),
        retry_attempts: 0,
        token: token.map(|t| Token::new(t).unwrap()),
        ..ClientConfig::default()
    };
    Client::new(config).unwrap()
}

#[test]
fn http_transport_sends_the_bearer_token() {
    let d = Daemon::start_with_env(&[], None, &[("HEIDI_HTTP_TOKEN", TOKEN)]);
    let right = http_client(&d, Some(TOKEN));
    assert!(right.is_available());
    assert_eq!(ok(&right.ping())["pong"], true);
    assert_eq!(
        ok(&right.rate_limit_consume("k", "op", 1, None))["allowed"],
        true
    );

    let none = http_client(&d, None);
    assert!(!none.is_available());
    let r = none.ping();
    assert_eq!(err(&r), "REFUSED");
    let reason = r.reason.clone().unwrap();
    assert!(
        reason.contains("HTTP 401") && reason.contains("HEIDI_KERNEL_TOKEN"),
        "{reason}"
    );

    let wrong = http_client(&d, Some("e2e-token-wrong-0123456789"));
    let r = wrong.ping();
    assert_eq!(err(&r), "REFUSED");
    let reason = r.reason.clone().unwrap();
    assert!(reason.contains("refused the token sent"), "{reason}");
    // Nothing the client prints shows the token.
    for shown in [format!("{wrong:?}"), format!("{r:?}")] {
        assert!(!shown.contains("e2e-token"), "{shown}");
    }
}
