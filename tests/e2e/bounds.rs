//! Every bound and error path of a real `heidid`: oversized length prefix, malformed JSON,
//! unknown method, too many connections, idle timeout, an invalid policy, and no descriptor
//! leak over 1,000 connections; memory that returns after connection storms.

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[test]
fn oversized_length_prefix_gets_an_error_and_the_connection_closes() {
    let d = Daemon::start(&[]);
    let mut s = d.connect();
    s.write_all(&(8 * 1024 + 1u32).to_be_bytes()).unwrap();
    let reply = read_frame(&mut s).expect("an error reply");
    assert_eq!(reply["error"], true);
    assert_eq!(reply["code"], "FRAME_TOO_LARGE");
    assert!(
        read_frame(&mut s).is_none(),
        "connection closed after FRAME_TOO_LARGE"
    );
    // The daemon keeps serving.
    assert_eq!(d.call("PING", json!({}))["pong"], true);
}

#[test]
fn malformed_requests_get_the_error_shape_and_the_connection_survives() {
    let d = Daemon::start(&[]);
    let mut s = d.connect();
    let cases: [(&[u8], &str); 5] = [
        (b"{not json", "BAD_JSON"),
        (b"[1,2]", "BAD_REQUEST"),
        (br#"{"params":{}}"#, "BAD_REQUEST"),
        (br#"{"method":"FROB","params":{}}"#, "UNKNOWN_METHOD"),
        (b"\xff\xfe", "BAD_FRAME"),
    ];
    for (body, code) in cases {
        s.write_all(&frame(body)).unwrap();
        let reply = read_frame(&mut s).expect("reply");
        assert_eq!(reply["error"], true);
        assert_eq!(reply["code"], code, "{reply}");
        assert!(reply["message"].is_string());
    }
    // An escaped unknown member name of 257 bytes, one more than an error shows (found by
    // fuzzing: it once dropped the connection without a reply).
    let name = format!(r"\n{}", "n".repeat(255));
    let body = format!(
        r#"{{"method":"RATE_LIMIT_CONSUME","params":{{"key":"k","operation":"x","{name}":1}}}}"#
    );
    s.write_all(&frame(body.as_bytes())).unwrap();
    assert_eq!(read_frame(&mut s).expect("reply")["code"], "BAD_REQUEST");
    // Empty frame, then a good request on the same connection.
    s.write_all(&0u32.to_be_bytes()).unwrap();
    assert_eq!(read_frame(&mut s).unwrap()["code"], "BAD_FRAME");
    write_request(&mut s, "PING", json!({}));
    assert_eq!(read_frame(&mut s).unwrap()["pong"], true);
}

#[test]
fn too_many_connections_are_refused_with_overloaded() {
    let d = Daemon::start(&["--max-connections", "4"]);
    // Hold four connections that were each served. A connection closed just before (the
    // start-up probes) may still hold its slot for a moment, so a refused one is retried.
    let mut held = Vec::new();
    let start = Instant::now();
    while held.len() < 4 {
        let mut s = d.connect();
        write_request(&mut s, "PING", json!({}));
        match read_frame(&mut s) {
            Some(reply) if reply["pong"] == true => held.push(s),
            _ => assert!(start.elapsed() < DEADLINE, "four connections never fit"),
        }
    }
    let mut fifth = d.connect();
    write_request(&mut fifth, "PING", json!({}));
    let reply = read_frame(&mut fifth).expect("an OVERLOADED reply");
    assert_eq!(reply["code"], "OVERLOADED");
    assert!(read_frame(&mut fifth).is_none());
    drop(held);
    // Room again once they close (bounded wait).
    let start = Instant::now();
    loop {
        let mut s = d.connect();
        write_request(&mut s, "PING", json!({}));
        if read_frame(&mut s).is_some_and(|r| r["pong"] == true) {
            break;
        }
        assert!(start.elapsed() < DEADLINE);
    }
}

#[test]
fn idle_connections_are_closed() {
    let d = Daemon::start(&["--idle-timeout-ms", "200"]);
    let mut s = d.connect();
    write_request(&mut s, "PING", json!({}));
    assert_eq!(read_frame(&mut s).unwrap()["pong"], true);
    let start = Instant::now();
    let mut buf = [0u8; 1];
    // The daemon closes its side: read returns 0 (EOF) well before our own deadline.
    assert_eq!(s.read(&mut buf).unwrap(), 0);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(150),
        "closed too early: {waited:?}"
    );
    // A half-sent frame also times out instead of holding the connection forever.
    let mut s = d.connect();
    s.write_all(&[0, 0, 0, 10, b'{']).unwrap();
    assert_eq!(s.read(&mut buf).unwrap(), 0);
    // HTTP keep-alive connections too.
    let mut h = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    h.set_read_timeout(Some(DEADLINE)).unwrap();
    h.write_all(format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", d.port).as_bytes())
        .unwrap();
    let mut all = Vec::new();
    h.read_to_end(&mut all).unwrap();
    assert!(String::from_utf8_lossy(&all).contains(r#"{"health":"ok"}"#));
}

#[test]
fn invalid_policy_is_refused_and_the_old_one_stays() {
    let d = Daemon::start(&[]);
    let before = d.call("GET_POLICY", json!({}));
    let bad = d.call(
        "APPLY_POLICY",
        json!({"policy": {"limits": {"ai_generate": {"capacity_tokens": 0, "window_ms": 1000}}}}),
    );
    assert_eq!(bad["code"], "INVALID_POLICY", "{bad}");
    assert!(
        bad["message"].as_str().unwrap().contains("capacity_tokens"),
        "{bad}"
    );
    assert_eq!(d.call("GET_POLICY", json!({})), before);
    assert_eq!(d.call("STATUS", json!({}))["policy_version"], 1);
}

#[test]
fn no_descriptor_leak_over_1000_connections() {
    let d = Daemon::start(&[]);
    // Warm up: the runtime's own descriptors exist before we count.
    for _ in 0..20 {
        d.call("PING", json!({}));
    }
    let before = fd_count(d.pid());
    for i in 0..1000 {
        if i % 3 == 0 {
            // Some clients vanish without a request.
            drop(d.connect());
        } else {
            assert_eq!(d.call("PING", json!({}))["pong"], true);
        }
    }
    // Closed connections are reaped asynchronously: wait (bounded) for the count to settle.
    let start = Instant::now();
    loop {
        let after = fd_count(d.pid());
        if after <= before {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "descriptors leaked: {before} before, {after} after"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reply_limit_truncates_tails_and_refuses_oversized_replies() {
    let d = Daemon::start_with_config(&[], Some("[limits]\nresponse_max_bytes = 1024\n"));
    for i in 0..20 {
        d.call(
            "JOURNAL_APPEND",
            json!({"event_type": "note", "message": format!("note {i}")}),
        );
    }
    let tail = d.call("JOURNAL_TAIL", json!({"lines": 20}));
    assert_eq!(tail["truncated"], true, "{tail}");
    let kept = tail["events"].as_array().unwrap().len();
    assert!((1..20).contains(&kept), "{kept} events kept");
    // GET_POLICY's reply is larger than 1 KiB: refused with the error shape, never cut.
    let policy = d.call("GET_POLICY", json!({}));
    assert_eq!(policy["code"], "INTERNAL", "{policy}");
    assert!(
        policy["message"].as_str().unwrap().contains("1024"),
        "{policy}"
    );
}

#[test]
fn requests_beyond_max_inflight_are_overloaded() {
    let d = Daemon::start_with_config(&[], Some("[limits]\nmax_inflight = 1\n"));
    // Appends wait for fsync while holding their in-flight slot, so 16 concurrent writers
    // overlap; every request gets an answer, and some answers are OVERLOADED.
    let socket = d.socket.clone();
    let writers: Vec<_> = (0..16)
        .map(|t| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut codes = Vec::new();
                for i in 0..20 {
                    let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
                    s.set_read_timeout(Some(DEADLINE)).unwrap();
                    let params = json!({"event_type": "note", "message": format!("{t}/{i}")});
                    write_request(&mut s, "JOURNAL_APPEND", params);
                    let reply = read_frame(&mut s).expect("every request is answered");
                    codes.push(reply["code"].as_str().unwrap_or("ok").to_owned());
                }
                codes
            })
        })
        .collect();
    let codes: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        codes.iter().all(|c| c == "ok" || c == "OVERLOADED"),
        "{codes:?}"
    );
    assert!(
        codes.iter().any(|c| c == "OVERLOADED"),
        "max_inflight = 1 was never reached"
    );
    assert!(codes.iter().any(|c| c == "ok"));
}

#[test]
fn http_connections_beyond_the_limit_are_refused() {
    let d = Daemon::start(&["--max-connections", "2"]);
    // Hold two keep-alive connections that were each served (a refused one is retried: the
    // start-up probe may still hold its slot for a moment).
    let mut held = Vec::new();
    let start = Instant::now();
    while held.len() < 2 {
        let mut h = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        h.set_read_timeout(Some(DEADLINE)).unwrap();
        h.write_all(
            format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", d.port).as_bytes(),
        )
        .unwrap();
        let mut buf = [0u8; 512];
        let n = h.read(&mut buf).unwrap_or(0);
        if String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200") {
            held.push(h);
        } else {
            assert!(start.elapsed() < DEADLINE, "two connections never fit");
        }
    }
    let (code, _) = d.http_get("/health");
    assert_eq!(code, 503, "a third keep-alive connection is refused");
    drop(held);
    let start = Instant::now();
    while d.http_get("/health").0 != 200 {
        assert!(
            start.elapsed() < DEADLINE,
            "room again after the two closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_trickled_frame_cannot_hold_a_connection() {
    let d = Daemon::start(&["--idle-timeout-ms", "300"]);
    let mut s = d.connect();
    let mut writer = s.try_clone().unwrap();
    let start = Instant::now();
    let trickle = std::thread::spawn(move || {
        // A 200-byte frame, one byte every 100 ms: never idle for 300 ms, never complete.
        let _ = writer.write_all(&200u32.to_be_bytes());
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(100));
            if writer.write_all(b" ").is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without a reply");
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "the frame deadline did not close it ({took:?})"
    );
    trickle.join().unwrap();
}

#[test]
fn unknown_http_routes_get_the_error_shape() {
    let d = Daemon::start(&[]);
    let (code, body) = d.http_get("/nope");
    assert_eq!(code, 404);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"],
        true
    );
    let (code, body) = d.http_post("/health", "");
    assert_eq!(code, 405);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"],
        true
    );
}

/// A framed PING whose body is exactly `len` bytes (padded inside `params`, which PING ignores).
fn ping_of_len(len: usize) -> Vec<u8> {
    let empty = br#"{"method":"PING","params":{"pad":""}}"#.len();
    let body = format!(
        r#"{{"method":"PING","params":{{"pad":"{}"}}}}"#,
        "x".repeat(len - empty)
    );
    assert_eq!(body.len(), len);
    frame(body.as_bytes())
}

#[test]
fn the_request_limit_is_configurable_both_ways() {
    for limit in [1024usize, 16 * 1024] {
        let config = format!("[limits]\nrequest_max_bytes = {limit}\n");
        let d = Daemon::start_with_config(&[], Some(&config));
        let mut s = d.connect();
        s.write_all(&ping_of_len(limit)).unwrap();
        assert_eq!(
            read_frame(&mut s).unwrap()["pong"],
            true,
            "limit {limit}: exactly the limit"
        );
        s.write_all(&ping_of_len(limit + 1)).unwrap();
        assert_eq!(
            read_frame(&mut s).unwrap()["code"],
            "FRAME_TOO_LARGE",
            "limit {limit}"
        );
        assert!(read_frame(&mut s).is_none(), "closed after FRAME_TOO_LARGE");
        // The HTTP body limit is the same setting.
        let body = String::from_utf8(ping_of_len(limit + 1)[4..].to_vec()).unwrap();
        let (code, reply) = d.http_post("/api/call", &body);
        assert_eq!(code, 413, "{reply}");
        assert!(reply.contains("FRAME_TOO_LARGE"), "{reply}");
    }
}

#[test]
fn shutdown_gives_up_on_a_stuck_connection_after_the_drain_timeout() {
    let config = "[limits]\ndrain_timeout_ms = 300\nidle_timeout_ms = 60000\n";
    let mut d = Daemon::start_with_config(&[], Some(config));
    for i in 0..100 {
        d.call(
            "JOURNAL_APPEND",
            json!({"event_type": "note", "message": format!("{i} {}", "y".repeat(400))}),
        );
    }
    // A client that pipelines large replies and never reads them: the daemon's writer blocks
    // once the socket buffers are full, and the connection cannot finish on its own.
    let mut stuck = d.connect();
    let request = frame(br#"{"method":"JOURNAL_TAIL","params":{"lines":256}}"#);
    for _ in 0..200 {
        stuck.write_all(&request).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200)); // let the daemon fill the buffers
    let start = Instant::now();
    let status = d.stop();
    assert!(status.success(), "{status}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "drain timeout not honoured"
    );
    let lines = read_lines(&d.journal());
    assert!(lines.last().unwrap().contains("daemon_stopped"));
}

/// The audit lines (`heidid::audit`) of a logged daemon's log.
fn audit_lines(d: &Daemon) -> Vec<Value> {
    d.log_lines()
        .into_iter()
        .filter(|l| l["target"] == "heidid::audit")
        .collect()
}

#[test]
fn mutating_calls_are_counted_per_peer_not_logged_per_call() {
    const CALLS: usize = 3000;
    let mut d = Daemon::start_logged(&[], None, &[]);
    let mut s = d.connect();
    for batch in 0..CALLS / 500 {
        for i in 0..500 {
            let key = format!("k{batch}-{i}");
            write_request(
                &mut s,
                "RATE_LIMIT_CONSUME",
                json!({"key": key, "operation": "op"}),
            );
        }
        for _ in 0..500 {
            assert!(read_frame(&mut s).unwrap().get("allowed").is_some());
        }
    }
    drop(s);
    // Admin calls keep a line each, and are journaled with their caller.
    let policy =
        json!({"policy": {"limits": {"search": {"capacity_tokens": 5, "window_ms": 1000}}}});
    assert_eq!(d.call("APPLY_POLICY", policy)["version"], 2);
    let started = d.call("PIPELINE_START", json!({"mode": "collect"}));
    assert_eq!(started["accepted"], true, "{started}");
    assert!(d.stop().success());

    let audit = audit_lines(&d);
    let me = socket_peer();
    let counted: Vec<_> = audit
        .iter()
        .filter(|l| l["fields"]["message"] == "mutating calls")
        .collect();
    assert_eq!(counted.len(), 1, "{audit:#?}");
    assert_eq!(counted[0]["fields"]["peer"], me.as_str());
    assert_eq!(counted[0]["fields"]["calls"], CALLS);
    let methods = format!("RATE_LIMIT_CONSUME={CALLS}");
    assert_eq!(counted[0]["fields"]["methods"], methods.as_str());
    let admin: Vec<_> = audit
        .iter()
        .filter(|l| l["fields"]["message"] == "admin call")
        .map(|l| {
            (
                l["fields"]["method"].as_str().unwrap(),
                l["fields"]["peer"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        admin,
        [
            ("APPLY_POLICY", me.as_str()),
            ("PIPELINE_START", me.as_str())
        ]
    );
    assert_eq!(audit.len(), 3, "{audit:#?}");

    let journal = read_lines(&d.journal());
    let event = |event_type: &str| -> Value {
        let line = journal
            .iter()
            .find(|l| l.contains(&format!("\"event_type\":\"{event_type}\"")))
            .unwrap_or_else(|| panic!("no {event_type} in the journal"));
        serde_json::from_str(line).unwrap()
    };
    let applied = event("policy_applied");
    assert!(
        applied["message"]
            .as_str()
            .unwrap()
            .ends_with(&format!("(by {me})")),
        "{applied}"
    );
    let control = event("pipeline_control");
    assert_eq!(
        control["message"],
        format!("PIPELINE_START mode=collect accepted (by {me})").as_str()
    );
}

/// Sends `n` requests of `method` on one connection, 500 at a time, and checks each reply.
fn pipelined(d: &Daemon, n: usize, method: &str, params: Value, check: impl Fn(&Value)) {
    let mut s = d.connect();
    for batch in (0..n).step_by(500) {
        let size = (n - batch).min(500);
        for _ in 0..size {
            write_request(&mut s, method, params.clone());
        }
        for _ in 0..size {
            check(&read_frame(&mut s).unwrap());
        }
    }
}

#[test]
fn admin_calls_cannot_flood_the_audit_log() {
    const CALLS: usize = 2000;
    // Per peer: 10 `admin call` lines at once, then one per 6 s (docs/DAEMON.md, "Security").
    const BURST: u64 = 10;
    const REFILL_SECS: u64 = 6;
    // No periodic flush: the counts come out at shutdown only.
    let config = "[log]\naudit_interval_ms = 3600000\n";
    let mut d = Daemon::start_logged(&[], Some(config), &[]);
    let start = Instant::now();
    // The pipeline is idle: every stop is refused and changes nothing.
    pipelined(&d, CALLS, "PIPELINE_STOP", json!({}), |r| {
        assert_eq!(r["code"], "REFUSED", "{r}")
    });
    // Bad params fail before the pipeline sees them.
    let bad = d.call("PIPELINE_PAUSE", json!({"mode": "full"}));
    assert_eq!(bad["code"], "BAD_REQUEST", "{bad}");
    // Over HTTP too.
    for _ in 0..20 {
        let (code, body) = http(d.port, "POST", "/api/v1/action/train_now", None);
        assert_eq!(code, 409, "{body}");
    }
    // The same policy, applied again and again: each one is carried out and journaled.
    let policy =
        json!({"policy": {"limits": {"search": {"capacity_tokens": 5, "window_ms": 1000}}}});
    pipelined(&d, CALLS, "APPLY_POLICY", policy, |r| {
        assert_eq!(r["ok"], true, "{r}")
    });
    let elapsed = start.elapsed().as_secs();
    assert!(d.stop().success());

    let audit = audit_lines(&d);
    let me = socket_peer();
    let logged = audit
        .iter()
        .filter(|l| l["fields"]["message"] == "admin call")
        .inspect(|l| {
            assert_eq!(l["fields"]["method"], "APPLY_POLICY", "{l}");
            assert_eq!(l["fields"]["peer"], me.as_str(), "{l}");
        })
        .count() as u64;
    let bound = BURST + elapsed / REFILL_SECS + 1;
    assert!(
        (BURST..=bound).contains(&logged),
        "{logged} admin call lines, bound {bound}"
    );
    let counted = |message: &str| -> Vec<(String, u64, String)> {
        audit
            .iter()
            .filter(|l| l["fields"]["message"] == message)
            .map(|l| {
                let f = &l["fields"];
                let peer = f["peer"].as_str().unwrap().to_owned();
                (peer, f["calls"].as_u64().unwrap(), f["methods"].to_string())
            })
            .collect()
    };
    let http_peer = "http 127.0.0.1".to_owned();
    let refused = format!("\"PIPELINE_STOP={CALLS} PIPELINE_PAUSE=1\"");
    assert_eq!(
        counted("refused admin calls"),
        [
            (http_peer, 20, "\"PIPELINE_TRAIN_NOW=20\"".to_owned()),
            (me.clone(), CALLS as u64 + 1, refused)
        ]
    );
    let rest = CALLS as u64 - logged;
    let suppressed = format!("\"APPLY_POLICY={rest}\"");
    assert_eq!(
        counted("suppressed admin lines"),
        [(me.clone(), rest, suppressed)]
    );
    // Nothing else: 4,021 admin calls made at most `bound` + 3 audit lines.
    assert_eq!(audit.len() as u64, logged + 3, "{audit:#?}");

    // Every carried-out call is in the journal with its caller; no refused one is.
    let journal = read_lines(&d.journal());
    let applied = journal
        .iter()
        .filter(|l| l.contains("\"event_type\":\"policy_applied\""))
        .inspect(|l| assert!(l.contains(&format!("(by {me})")), "{l}"))
        .count();
    assert_eq!(applied, CALLS);
    assert!(!journal.iter().any(|l| l.contains("pipeline_control")));
}

#[test]
fn audit_counts_are_flushed_periodically_and_then_start_again() {
    let config = "[log]\naudit_interval_ms = 100\n";
    let d = Daemon::start_logged(&[], Some(config), &[]);
    let counted = |d: &Daemon| -> Vec<u64> {
        audit_lines(d)
            .iter()
            .filter(|l| l["fields"]["message"] == "mutating calls")
            .map(|l| l["fields"]["calls"].as_u64().unwrap())
            .collect()
    };
    let wait_for = |d: &Daemon, want: &[u64]| {
        let start = Instant::now();
        while counted(d) != want {
            assert!(start.elapsed() < DEADLINE, "{:?}", counted(d));
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    for _ in 0..3 {
        d.call("HEALTH_REPORT", json!({"name": "db", "ok": true}));
    }
    wait_for(&d, &[3]);
    d.call("HEALTH_REPORT", json!({"name": "db", "ok": true}));
    wait_for(&d, &[3, 1]);
}

/// The daemon's resident memory, from `/proc/PID/status`.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Opens `n` connections at once on both listeners, sends one request on each, reads every
/// reply, then closes them all.
fn connection_storm(d: &Daemon, n: usize) {
    let ping = frame(br#"{"method":"PING","params":{},"timestamp":1}"#);
    let mut unix: Vec<_> = (0..n).map(|_| d.connect()).collect();
    for s in &mut unix {
        s.write_all(&ping).unwrap();
    }
    for s in &mut unix {
        assert_eq!(read_frame(s).unwrap()["pong"], true);
    }
    drop(unix);
    let get = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
        d.port
    );
    let tcp: Vec<_> = (0..n)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap())
        .collect();
    for mut s in &tcp {
        s.write_all(get.as_bytes()).unwrap();
    }
    for mut s in &tcp {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let k = s.read(&mut buf).unwrap();
            assert!(k > 0, "connection closed before the reply");
            got.extend_from_slice(&buf[..k]);
        }
        assert!(
            got.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
    }
}

#[test]
fn memory_returns_near_idle_after_connection_storms() {
    const STORM: usize = 1500;
    // Room for the storm's sockets in this process (the daemon raises its own limit).
    let (soft, hard) = {
        let l = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        (l.current.unwrap_or(u64::MAX), l.maximum.unwrap_or(u64::MAX))
    };
    let want = (STORM as u64 + 256).min(hard);
    if soft < want {
        let limit = rustix::process::Rlimit {
            current: Some(want),
            maximum: Some(hard),
        };
        rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).unwrap();
    }
    let d = Daemon::start(&["--max-connections", "4096"]);
    // Warm up both listeners, then take the idle figure.
    connection_storm(&d, 8);
    let idle = rss_bytes(d.pid());
    // Without the buffer pool and the trim after a storm, each round of 1,500 connections per
    // listener left the RSS about 30 MB higher for good.
    let allowance = 8 << 20;
    for round in 0..3 {
        connection_storm(&d, STORM);
        let start = Instant::now();
        loop {
            let now = rss_bytes(d.pid());
            if now <= idle + allowance {
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "round {round}: RSS {} MiB after the storm, {} MiB idle",
                now >> 20,
                idle >> 20
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(d.call("PING", json!({}))["pong"], true);
}

/// A policy at the bound of 256 operations (about 12.5 KB) is above the default 8 KiB
/// request limit, which `APPLY_POLICY` shares with every method: it gets `FRAME_TOO_LARGE`.
/// A daemon whose `limits.request_max_bytes` is raised takes it, and writes back all 256.
#[test]
fn a_policy_of_256_operations_needs_a_raised_request_limit() {
    let mut limits = serde_json::Map::new();
    for i in 0..250 {
        let entry = json!({"capacity_tokens": 100, "window_ms": 60000});
        limits.insert(format!("operation_{i:03}"), entry);
    }
    let doc = json!({ "limits": limits });
    let d = Daemon::start(&[]);
    let refused = d.call("APPLY_POLICY", json!({ "policy": doc }));
    assert_eq!(refused["code"], "FRAME_TOO_LARGE", "{refused}");
    let raised = Daemon::start_with_config(&[], Some("[limits]\nrequest_max_bytes = 16384\n"));
    let applied = raised.call("APPLY_POLICY", json!({ "policy": doc }));
    assert_eq!(applied["version"], 2, "{applied}");
    let written = raised.call("GET_POLICY", json!({}));
    let operations = written["policy"]["limits"].as_object().unwrap();
    assert_eq!(operations.len(), 256);
}
