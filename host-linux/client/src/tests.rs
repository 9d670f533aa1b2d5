//! Client tests against in-test fake daemons (see `fake.rs`).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use heidi_common::JournalEntry;
use heidi_core::proto::RESPONSE_MAX_BYTES;
use heidi_core::retry::{Jitter, RetryPolicy};
use serde_json::{Value, json};

use super::fake::{
    FakeServer, Gate, RecordingSleeper, RecordingTelemetry, eventually, read_request, write_reply,
};
use super::*;

fn config(endpoint: Endpoint) -> ClientConfig {
    ClientConfig {
        endpoint,
        timeout_ms: 5_000,
        ..ClientConfig::default()
    }
}

/// A client that records its retry delays and telemetry instead of sleeping and logging.
fn client(config: ClientConfig) -> (Client, Arc<RecordingSleeper>, Arc<RecordingTelemetry>) {
    let sleeper = Arc::new(RecordingSleeper::default());
    let telemetry = Arc::new(RecordingTelemetry::default());
    let c = Client::new(config)
        .unwrap()
        .with_sleeper(sleeper.clone())
        .with_telemetry(telemetry.clone());
    (c, sleeper, telemetry)
}

fn missing_socket() -> (tempfile::TempDir, Endpoint) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody.sock");
    (dir, Endpoint::Unix(path))
}

#[test]
fn unix_round_trip_uses_the_framing() {
    let seen = Arc::new(Mutex::new(None));
    let keep = seen.clone();
    let server = FakeServer::json(move |req| {
        *keep.lock().unwrap() = Some(req.clone());
        json!({"ok": true, "echo": req["params"]})
    });
    let (c, _, _) = client(config(server.endpoint()));
    let r = c.call("PING", json!({"x": 1}));
    assert_eq!(r.status, CallStatus::Ok, "{r:?}");
    assert!(r.success && r.reason.is_none() && r.error_code.is_none());
    assert_eq!(r.payload, Some(json!({"ok": true, "echo": {"x": 1}})));
    assert_eq!(r.payload_size, r#"{"echo":{"x":1},"ok":true}"#.len());
    assert_eq!(r.retry_count, 0);
    let req = seen.lock().unwrap().clone().unwrap();
    assert_eq!(req["method"], "PING");
    assert_eq!(req["params"], json!({"x": 1}));
    assert!(req["timestamp"].as_f64().unwrap() > 1.6e9);
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn error_replies_are_reported_and_never_retried() {
    let server = FakeServer::json(
        |_| json!({"error": true, "code": "RATE_LIMITED", "message": "slow down", "retry_after_ms": 250}),
    );
    let (c, sleeper, _) = client(config(server.endpoint()));
    let r = c.rate_limit_consume("k", "op", 1, None);
    assert_eq!(r.status, CallStatus::Error);
    assert_eq!(r.error_code.as_deref(), Some("RATE_LIMITED"));
    assert_eq!(r.reason.as_deref(), Some("slow down"));
    assert_eq!(r.retry_after_ms(), Some(250));
    assert_eq!(r.retry_count, 0);
    assert!(sleeper.0.lock().unwrap().is_empty());
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn a_reply_above_the_limit_is_refused_without_reading_it() {
    let gate = Arc::new(Gate::default());
    let hold = gate.clone();
    let server = FakeServer::start(move |_, mut s| {
        read_request(&mut s);
        // Announce one byte too many and send no body: reading it would time out.
        let _ = s.write_all(&(RESPONSE_MAX_BYTES as u32 + 1).to_be_bytes());
        hold.wait();
    });
    let (c, _, _) = client(config(server.endpoint()));
    let r = c.ping();
    gate.open();
    assert_eq!(r.status, CallStatus::Error, "{r:?}");
    assert_eq!(r.error_code.as_deref(), Some(codes::REPLY_TOO_LARGE));
    assert_eq!(r.retry_count, 0);
}

#[test]
fn a_reply_of_exactly_the_limit_is_accepted() {
    let server = FakeServer::start(|_, mut s| {
        read_request(&mut s);
        let overhead = r#"{"pad":""}"#.len();
        let pad = "p".repeat(RESPONSE_MAX_BYTES - overhead);
        write_reply(&mut s, &json!({ "pad": pad }));
    });
    let (c, _, _) = client(config(server.endpoint()));
    let r = c.ping();
    assert_eq!(r.status, CallStatus::Ok, "{:?}", r.reason);
    assert_eq!(r.payload_size, RESPONSE_MAX_BYTES);
}

#[test]
fn bad_replies_are_errors() {
    let server = FakeServer::start(|n, mut s| {
        read_request(&mut s);
        let body: &[u8] = if n == 0 { b"[1,2]" } else { b"\xff\xfe" };
        let _ = s.write_all(&(body.len() as u32).to_be_bytes());
        let _ = s.write_all(body);
    });
    let (c, _, _) = client(config(server.endpoint()));
    for _ in 0..2 {
        let r = c.ping();
        assert_eq!(r.status, CallStatus::Error);
        assert_eq!(r.error_code.as_deref(), Some(codes::BAD_REPLY));
    }
}

#[test]
fn a_silent_server_times_out_and_the_timeout_is_retried() {
    let gate = Arc::new(Gate::default());
    let hold = gate.clone();
    let server = FakeServer::start(move |_, mut s| {
        read_request(&mut s);
        hold.wait();
    });
    let cfg = ClientConfig {
        timeout_ms: 150,
        retry_attempts: 1,
        ..config(server.endpoint())
    };
    let (c, sleeper, _) = client(cfg);
    let started = std::time::Instant::now();
    let r = c.ping();
    gate.open();
    assert_eq!(r.status, CallStatus::Timeout, "{r:?}");
    assert_eq!(r.retry_count, 1);
    assert_eq!(sleeper.0.lock().unwrap().len(), 1);
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn connect_failures_are_retried_with_growing_delays_then_reported() {
    let (_dir, endpoint) = missing_socket();
    let cfg = ClientConfig {
        retry_attempts: 3,
        retry_delay_ms: 100,
        ..config(endpoint)
    };
    let (c, sleeper, telemetry) = client(cfg);
    let r = c.ping();
    assert_eq!(r.status, CallStatus::Unavailable);
    assert!(r.reason.unwrap().contains("cannot connect"));
    assert_eq!(r.retry_count, 3);
    let delays = sleeper.0.lock().unwrap().clone();
    // Equal jitter: the n-th delay lies in [d/2, d] with d = 100 ms × 2ⁿ⁻¹.
    let ms = Duration::from_millis;
    assert_eq!(delays.len(), 3);
    assert!(ms(50) <= delays[0] && delays[0] <= ms(100), "{delays:?}");
    assert!(ms(100) <= delays[1] && delays[1] <= ms(200), "{delays:?}");
    assert!(ms(200) <= delays[2] && delays[2] <= ms(400), "{delays:?}");
    assert!(delays[2] > delays[0]);
    assert_eq!(telemetry.0.lock().unwrap().len(), 1);
}

#[test]
fn a_server_that_fails_n_times_then_answers_gives_retry_count_n() {
    const FAILURES: usize = 2;
    // Close the first connections without a reply (a broken connection), then answer.
    let server = FakeServer::start(|n, mut s| {
        read_request(&mut s);
        if n >= FAILURES {
            write_reply(&mut s, &json!({"ok": true}));
        }
    });
    let (c, sleeper, telemetry) = client(config(server.endpoint()));
    let r = c.ping();
    assert_eq!(r.status, CallStatus::Ok, "{r:?}");
    assert_eq!(r.retry_count, FAILURES as u32);
    let delays = sleeper.0.lock().unwrap().clone();
    assert_eq!(delays.len(), FAILURES);
    assert!(delays[0] <= Duration::from_millis(100) && delays[1] >= Duration::from_millis(100));
    let events = telemetry.0.lock().unwrap().clone();
    assert_eq!(events, vec![("PING".to_owned(), CallStatus::Ok, 2)]);
}

#[test]
fn retries_stop_at_the_configured_attempts() {
    let server = FakeServer::start(|_, mut s| {
        read_request(&mut s); // always closes without replying
    });
    let cfg = ClientConfig {
        retry_attempts: 2,
        ..config(server.endpoint())
    };
    let (c, _, _) = client(cfg);
    let r = c.ping();
    assert_eq!(r.status, CallStatus::Unavailable);
    assert_eq!(r.retry_count, 2);
    assert_eq!(server.accepted.load(Ordering::SeqCst), 3);
}

#[test]
fn max_inflight_bounds_concurrency_exactly() {
    let gate = Arc::new(Gate::default());
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (hold, cur, top) = (gate.clone(), now.clone(), peak.clone());
    let server = FakeServer::start(move |_, mut s| {
        let Some(_) = read_request(&mut s) else {
            return;
        };
        let n = cur.fetch_add(1, Ordering::SeqCst) + 1;
        top.fetch_max(n, Ordering::SeqCst);
        hold.wait();
        cur.fetch_sub(1, Ordering::SeqCst);
        write_reply(&mut s, &json!({"ok": true}));
    });
    let cfg = ClientConfig {
        max_inflight: 3,
        timeout_ms: 30_000,
        ..config(server.endpoint())
    };
    let (c, _, _) = client(cfg);
    let c = Arc::new(c);
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || c.ping())
        })
        .collect();
    // All ten callers arrived: three are at the server, seven wait for a slot.
    let settled = eventually(|| now.load(Ordering::SeqCst) == 3 && c.waiting() == 7);
    assert!(
        settled,
        "running {} waiting {}",
        now.load(Ordering::SeqCst),
        c.waiting()
    );
    assert_eq!(c.in_flight(), 3);
    gate.open();
    for t in threads {
        assert!(t.join().unwrap().success);
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert_eq!(server.accepted.load(Ordering::SeqCst), 10);
}

#[test]
fn availability_is_real() {
    let server = FakeServer::json(|_| json!({"ok": true}));
    let (c, _, telemetry) = client(config(server.endpoint()));
    assert!(c.is_available());
    assert!(c.require().is_ok());
    assert!(telemetry.0.lock().unwrap().is_empty());

    let (_dir, endpoint) = missing_socket();
    let cfg = ClientConfig {
        required: true,
        ..config(endpoint)
    };
    let (c, sleeper, _) = client(cfg);
    assert!(!c.is_available());
    assert!(c.require().unwrap_err().contains("nobody.sock"));
    assert!(sleeper.0.lock().unwrap().is_empty(), "no retries");

    let busy = FakeServer::json(|_| json!({"error": true, "code": "OVERLOADED", "message": "x"}));
    assert!(!client(config(busy.endpoint())).0.is_available());

    let null = client(config(Endpoint::Null)).0;
    assert!(null.is_available());
}

#[test]
fn disabled_means_the_null_transport() {
    let (_dir, endpoint) = missing_socket();
    let cfg = ClientConfig {
        enabled: false,
        ..config(endpoint)
    };
    let (c, _, telemetry) = client(cfg);
    assert_eq!(c.endpoint(), "null");
    let r = c.apply_policy(json!({"a": 1}));
    assert_eq!((r.status, r.payload), (CallStatus::Ok, Some(json!({}))));
    assert_eq!(telemetry.0.lock().unwrap().len(), 1);
}

#[test]
fn one_telemetry_event_per_call() {
    let server = FakeServer::start(|n, mut s| {
        read_request(&mut s);
        if n != 1 {
            write_reply(&mut s, &json!({"ok": true}));
        }
    });
    let (c, _, telemetry) = client(config(server.endpoint()));
    c.ping(); // connection 0: answered
    c.status(); // connection 1 broken, 2 answered: one retry
    let big = "x".repeat(heidi_core::proto::REQUEST_MAX_BYTES);
    let r = c.journal_append(&JournalEntry::info("s", "e", big)); // refused before sending
    assert_eq!(r.error_code.as_deref(), Some(codes::REQUEST_TOO_LARGE));
    let events = telemetry.0.lock().unwrap().clone();
    assert_eq!(
        events,
        vec![
            ("PING".to_owned(), CallStatus::Ok, 0),
            ("STATUS".to_owned(), CallStatus::Ok, 1),
            ("JOURNAL_APPEND".to_owned(), CallStatus::Error, 0),
        ]
    );
    assert_eq!(server.accepted.load(Ordering::SeqCst), 3);
}

/// A fake daemon for `guard`: scripted answers per method, every request recorded.
fn guard_server(
    answer: impl Fn(&str, usize, &Value) -> Value + Send + Sync + 'static,
) -> (FakeServer, Arc<Mutex<Vec<Value>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let keep = log.clone();
    let server = FakeServer::json(move |req| {
        let method = req["method"].as_str().unwrap_or_default().to_owned();
        let mut log = keep.lock().unwrap();
        let n = log
            .iter()
            .filter(|r: &&Value| r["method"] == method.as_str())
            .count();
        log.push(req.clone());
        answer(&method, n, &req["params"])
    });
    (server, log)
}

fn methods(log: &Mutex<Vec<Value>>) -> Vec<String> {
    let log = log.lock().unwrap();
    log.iter()
        .map(|r| r["method"].as_str().unwrap().to_owned())
        .collect()
}

fn fast_retry(attempts: u32) -> RetryPolicy {
    let ms = heidi_core::Duration::from_millis;
    RetryPolicy::new(attempts, ms(10), ms(100), 2, Jitter::None).unwrap()
}

#[test]
fn guard_rate_limited() {
    let (server, log) = guard_server(
        |_, _, _| json!({"error": true, "code": "RATE_LIMITED", "message": "no", "retry_after_ms": 40}),
    );
    let (c, _, _) = client(config(server.endpoint()));
    let mut ran = false;
    let r: Result<(), GuardError<()>> = c.guard(&GuardSpec::new("k", "op", "b"), || {
        ran = true;
        Ok(())
    });
    assert_eq!(
        r,
        Err(GuardError::RateLimited {
            retry_after_ms: Some(40)
        })
    );
    assert!(!ran);
    assert_eq!(methods(&log), ["RATE_LIMIT_CONSUME"]);
    let params = log.lock().unwrap()[0]["params"].clone();
    assert_eq!(params, json!({"key": "k", "operation": "op", "cost": 1}));
    // A tier goes with the call when the spec names one.
    let pro = GuardSpec {
        tier: Some("pro"),
        ..GuardSpec::new("k", "op", "b")
    };
    let _ = c.guard(&pro, || Ok::<(), ()>(()));
    let params = log.lock().unwrap()[1]["params"].clone();
    assert_eq!(
        params,
        json!({"key": "k", "operation": "op", "cost": 1, "tier": "pro"})
    );
}

#[test]
fn guard_circuit_open() {
    let (server, log) = guard_server(|m, _, _| match m {
        "RATE_LIMIT_CONSUME" => json!({"allowed": true, "remaining": 4}),
        _ => {
            json!({"error": true, "code": "CIRCUIT_OPEN", "message": "open", "retry_after_ms": 900})
        }
    });
    let (c, _, _) = client(config(server.endpoint()));
    let r: Result<(), GuardError<()>> = c.guard(&GuardSpec::new("k", "op", "db"), || Ok(()));
    let open = GuardError::CircuitOpen {
        retry_after_ms: Some(900),
        last_error: None,
    };
    assert_eq!(r, Err(open));
    assert_eq!(methods(&log), ["RATE_LIMIT_CONSUME", "BREAKER_ACQUIRE"]);
    assert_eq!(log.lock().unwrap()[1]["params"], json!({"name": "db"}));
}

#[test]
fn guard_retries_then_succeeds_recording_every_outcome() {
    let (server, log) = guard_server(|m, n, _| match m {
        "RATE_LIMIT_CONSUME" => json!({"allowed": true, "remaining": 4}),
        "BREAKER_ACQUIRE" => json!({"permit": (100 + n).to_string()}),
        _ => json!({"ok": true}),
    });
    let (c, sleeper, _) = client(config(server.endpoint()));
    let spec = GuardSpec {
        retry: fast_retry(3),
        ..GuardSpec::new("k", "op", "db")
    };
    let mut calls = 0;
    let r = c.guard(&spec, || {
        calls += 1;
        if calls < 3 { Err("flaky") } else { Ok(calls) }
    });
    assert_eq!(r, Ok(3));
    assert_eq!(
        methods(&log),
        [
            "RATE_LIMIT_CONSUME",
            "BREAKER_ACQUIRE",
            "BREAKER_RECORD",
            "BREAKER_ACQUIRE",
            "BREAKER_RECORD",
            "BREAKER_ACQUIRE",
            "BREAKER_RECORD",
        ]
    );
    let log = log.lock().unwrap();
    let records: Vec<Value> = log
        .iter()
        .filter(|r| r["method"] == "BREAKER_RECORD")
        .map(|r| r["params"].clone())
        .collect();
    assert_eq!(
        records,
        [
            json!({"name": "db", "permit": "100", "outcome": "failure"}),
            json!({"name": "db", "permit": "101", "outcome": "failure"}),
            json!({"name": "db", "permit": "102", "outcome": "success"}),
        ]
    );
    let ms = Duration::from_millis;
    assert_eq!(*sleeper.0.lock().unwrap(), [ms(10), ms(20)]);
}

#[test]
fn guard_gives_up_after_the_policy_and_never_retries_into_an_open_breaker() {
    let (server, _) = guard_server(|m, _, _| match m {
        "RATE_LIMIT_CONSUME" => json!({"allowed": true}),
        "BREAKER_ACQUIRE" => json!({"permit": "9"}),
        _ => json!({"ok": true}),
    });
    let (c, _, _) = client(config(server.endpoint()));
    let spec = GuardSpec {
        retry: fast_retry(2),
        ..GuardSpec::new("k", "op", "db")
    };
    let r: Result<(), _> = c.guard(&spec, || Err("down"));
    assert_eq!(
        r,
        Err(GuardError::Failed {
            error: "down",
            attempts: 2
        })
    );

    // The breaker opens on the first failure for longer than the retry delay: no retry.
    let (server, log) = guard_server(|m, _, _| match m {
        "RATE_LIMIT_CONSUME" => json!({"allowed": true}),
        "BREAKER_ACQUIRE" => json!({"permit": "9"}),
        _ => json!({"state": "open", "retry_after_ms": 5_000}),
    });
    let (c, sleeper, _) = client(config(server.endpoint()));
    let r: Result<(), _> = c.guard(&spec, || Err("down"));
    let open = GuardError::CircuitOpen {
        retry_after_ms: Some(5_000),
        last_error: Some("down"),
    };
    assert_eq!(r, Err(open));
    assert_eq!(methods(&log).len(), 3);
    assert!(sleeper.0.lock().unwrap().is_empty());

    // The breaker refuses the re-acquire: stop with the last error.
    let (server, _) = guard_server(|m, n, _| match (m, n) {
        ("RATE_LIMIT_CONSUME", _) => json!({"allowed": true}),
        ("BREAKER_ACQUIRE", 0) => json!({"permit": "9"}),
        ("BREAKER_ACQUIRE", _) => json!({"error": true, "code": "CIRCUIT_OPEN", "message": "m"}),
        _ => json!({"ok": true}),
    });
    let (c, _, _) = client(config(server.endpoint()));
    let r: Result<(), _> = c.guard(&spec, || Err("down"));
    let open = GuardError::CircuitOpen {
        retry_after_ms: None,
        last_error: Some("down"),
    };
    assert_eq!(r, Err(open));
}

#[test]
fn guard_fails_closed_unless_fail_open() {
    let (_dir, endpoint) = missing_socket();
    let cfg = ClientConfig {
        retry_attempts: 0,
        ..config(endpoint)
    };
    let (c, _, _) = client(cfg);
    let spec = GuardSpec::new("k", "op", "db");
    let r: Result<u8, GuardError<()>> = c.guard(&spec, || Ok(7));
    assert!(matches!(r, Err(GuardError::Unavailable { .. })), "{r:?}");
    let open = GuardSpec {
        fail_open: true,
        ..spec
    };
    assert_eq!(c.guard::<u8, ()>(&open, || Ok(7)), Ok(7));
}

/// A one-request loopback HTTP server: returns the request head and body it received.
fn http_once(status: &str, body: &'static str) -> (Endpoint, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader, Read};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let status = status.to_owned();
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let (mut head, mut len) = (String::new(), 0usize);
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        let mut req = vec![0u8; len];
        reader.read_exact(&mut req).unwrap();
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        reader.get_mut().write_all(reply.as_bytes()).unwrap();
        head + &String::from_utf8(req).unwrap()
    });
    (Endpoint::parse(&url).unwrap(), thread)
}

#[test]
fn http_posts_to_api_call() {
    let (endpoint, server) = http_once("200 OK", r#"{"ok":true}"#);
    let (c, _, _) = client(config(endpoint));
    let r = c.ping();
    assert_eq!(r.status, CallStatus::Ok, "{r:?}");
    assert_eq!(r.payload, Some(json!({"ok": true})));
    let seen = server.join().unwrap();
    assert!(seen.starts_with("POST /api/call HTTP/1.1"), "{seen}");
    assert!(
        seen.contains(r#"{"method":"PING","params":{},"timestamp":"#),
        "{seen}"
    );

    let err = r#"{"error":true,"code":"REFUSED","message":"busy"}"#;
    let (endpoint, server) = http_once("409 Conflict", err);
    let r = client(config(endpoint)).0.pipeline_train_now();
    server.join().unwrap();
    assert_eq!(r.error_code.as_deref(), Some("REFUSED"));
    assert_eq!(r.retry_count, 0);
}

#[test]
fn http_connection_refused_is_unavailable_after_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let cfg = ClientConfig {
        retry_attempts: 1,
        ..config(Endpoint::parse(&url).unwrap())
    };
    let (c, sleeper, _) = client(cfg);
    let r = c.ping();
    assert_eq!(r.status, CallStatus::Unavailable, "{r:?}");
    assert_eq!(r.retry_count, 1);
    assert_eq!(sleeper.0.lock().unwrap().len(), 1);
}

#[test]
fn guard_gives_up_at_its_deadline_instead_of_waiting_past_it() {
    let (server, log) = guard_server(|m, n, _| match m {
        "RATE_LIMIT_CONSUME" => json!({"allowed": true}),
        "BREAKER_ACQUIRE" => json!({"permit": n.to_string()}),
        _ => json!({"ok": true}),
    });
    let (c, sleeper, _) = client(config(server.endpoint()));
    // Retries after 1 s and 2 s (the test's sleeper only records them); 2.5 s for the call:
    // the second retry would come at 3 s.
    let s = heidi_core::Duration::from_secs;
    let spec = GuardSpec {
        retry: RetryPolicy::new(5, s(1), s(10), 2, Jitter::None).unwrap(),
        deadline: Some(Duration::from_millis(2_500)),
        ..GuardSpec::new("k", "op", "db")
    };
    let r: Result<(), _> = c.guard(&spec, || Err("down"));
    let late = GuardError::Deadline {
        last_error: Some("down"),
        attempts: 2,
    };
    assert_eq!(r, Err(late));
    assert_eq!(*sleeper.0.lock().unwrap(), [Duration::from_secs(1)]);
    let records = methods(&log)
        .iter()
        .filter(|m| *m == "BREAKER_RECORD")
        .count();
    assert_eq!(records, 2);
    let shown = GuardError::Deadline {
        last_error: Some("down"),
        attempts: 2,
    }
    .to_string();
    assert_eq!(shown, "deadline reached after 2 attempts; last error: down");
}

#[test]
fn a_permit_the_deadline_left_unused_is_returned_abandoned() {
    // The acquire's reply comes after the whole call's deadline: the closure never runs, and
    // the permit goes back as `abandoned`, which counts for nothing (not as a failure).
    let (server, log) = guard_server(|m, _, _| match m {
        "RATE_LIMIT_CONSUME" => json!({"allowed": true}),
        "BREAKER_ACQUIRE" => {
            std::thread::sleep(Duration::from_millis(60));
            json!({"permit": "77"})
        }
        _ => json!({"ok": true, "state": "closed"}),
    });
    let (c, _, _) = client(config(server.endpoint()));
    let spec = GuardSpec {
        deadline: Some(Duration::from_millis(20)),
        ..GuardSpec::new("k", "op", "db")
    };
    let mut ran = false;
    let r: Result<(), GuardError<&str>> = c.guard(&spec, || {
        ran = true;
        Ok(())
    });
    let none = GuardError::Deadline {
        last_error: None,
        attempts: 0,
    };
    assert_eq!((r, ran), (Err(none), false));
    let log = log.lock().unwrap();
    let record = log
        .iter()
        .find(|r| r["method"] == "BREAKER_RECORD")
        .unwrap();
    assert_eq!(
        record["params"],
        json!({"name": "db", "permit": "77", "outcome": "abandoned"})
    );
}
