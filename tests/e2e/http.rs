//! The HTTP listener of a real `heidid` as a browser and the original `heidid`'s clients see
//! it: requests a web page could forge are refused (`Host`, `Origin`, `Content-Type`), the
//! original's own clients keep working (`train_now` answers 200), and `/readyz` follows the
//! health checks the policy names.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The policy `APPLY_POLICY` tried to install in the reported attack.
const ATTACK_BODY: &str = r#"{"method":"APPLY_POLICY","params":{"policy":{"limits":{"ai_generate":{"capacity_tokens":1000000,"window_ms":1000}}}},"timestamp":1}"#;

/// A request with exactly these header lines (plus `Connection: close` and, with a body, its
/// `Content-Length`).
fn request(d: &Daemon, head: &str, headers: &[&str], body: Option<&str>) -> (u16, Value) {
    let mut text = format!("{head}\r\nConnection: close\r\n");
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    if let Some(body) = body {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    text.push_str(body.unwrap_or(""));
    let (code, body) = http_raw(d.port, &text);
    let value = serde_json::from_str(&body).unwrap_or(Value::Null);
    (code, value)
}

fn policy_version(d: &Daemon) -> u64 {
    d.call("GET_POLICY", json!({}))["version"].as_u64().unwrap()
}

#[test]
fn the_reported_attack_is_refused_and_changes_nothing() {
    let d = Daemon::start(&[]);
    let host = format!("Host: 127.0.0.1:{}", d.port);
    // Through a rebound name (DNS rebinding): the Host is the page's.
    let (code, reply) = request(
        &d,
        "POST /api/call HTTP/1.1",
        &[
            "Host: evil.example:80",
            "Origin: http://evil.example",
            "Content-Type: text/plain",
        ],
        Some(ATTACK_BODY),
    );
    assert_eq!(code, 421, "{reply}");
    assert_eq!(reply["code"], "REFUSED", "{reply}");
    // Straight at 127.0.0.1 (CSRF): the Origin is foreign.
    let (code, reply) = request(
        &d,
        "POST /api/call HTTP/1.1",
        &[
            &host,
            "Origin: http://evil.example",
            "Content-Type: text/plain",
        ],
        Some(ATTACK_BODY),
    );
    assert_eq!(code, 403, "{reply}");
    // Without an Origin (an older browser, a form), text/plain is still not JSON.
    let (code, reply) = request(
        &d,
        "POST /api/call HTTP/1.1",
        &[&host, "Content-Type: text/plain"],
        Some(ATTACK_BODY),
    );
    assert_eq!(code, 415, "{reply}");
    assert_eq!(reply["code"], "BAD_REQUEST", "{reply}");
    assert_eq!(policy_version(&d), 1, "no policy was applied");

    // JOURNAL_APPEND and train_now the same way.
    let lines = read_lines(&d.journal()).len();
    let append = r#"{"method":"JOURNAL_APPEND","params":{"event_type":"forged","message":"x"}}"#;
    for headers in [
        &["Host: evil.example:80", "Content-Type: text/plain"][..],
        &[
            &host,
            "Origin: http://evil.example",
            "Content-Type: text/plain",
        ],
        &[&host, "Content-Type: text/plain"],
    ] {
        let (code, reply) = request(&d, "POST /api/call HTTP/1.1", headers, Some(append));
        assert!([421, 403, 415].contains(&code), "{code} {reply}");
        let (code, reply) = request(
            &d,
            "POST /api/v1/action/train_now HTTP/1.1",
            headers,
            Some(""),
        );
        assert!([421, 403, 415].contains(&code), "{code} {reply}");
    }
    assert_eq!(
        read_lines(&d.journal()).len(),
        lines,
        "nothing was journaled"
    );

    // The same call from the daemon's own clients goes through.
    let (code, reply) = request(
        &d,
        "POST /api/call HTTP/1.1",
        &[&host, "Content-Type: application/json; charset=utf-8"],
        Some(ATTACK_BODY),
    );
    assert_eq!((code, &reply["ok"]), (200, &json!(true)), "{reply}");
    assert_eq!(policy_version(&d), 2);
}

#[test]
fn host_is_checked_on_every_route() {
    let d = Daemon::start(&[]);
    let port = d.port;
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        format!("localhost.evil.com:{port}"),
        format!("127.0.0.1.evil.com:{port}"),
        format!("0.0.0.0:{port}"),
        format!("localhost.:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1".to_owned(),
    ] {
        for path in ["/api/v1/status", "/metrics", "/readyz", "/healthz", "/nope"] {
            let (code, reply) = request(
                &d,
                &format!("GET {path} HTTP/1.1"),
                &[&format!("Host: {host}")],
                None,
            );
            assert_eq!(code, 421, "GET {path} with Host {host}: {reply}");
        }
    }
    // No Host at all (HTTP/1.0), and two of them.
    let (code, _) = request(&d, "GET /api/v1/status HTTP/1.0", &[], None);
    assert_eq!(code, 421);
    let (code, _) = request(
        &d,
        "GET /api/v1/status HTTP/1.1",
        &[
            &format!("Host: 127.0.0.1:{port}"),
            &format!("Host: 127.0.0.1:{port}"),
        ],
        None,
    );
    assert_eq!(code, 421);
    // An absolute-form target names the host, whatever Host says.
    let (code, _) = request(
        &d,
        &format!("GET http://evil.example:{port}/api/v1/status HTTP/1.1"),
        &[&format!("Host: 127.0.0.1:{port}")],
        None,
    );
    assert_eq!(code, 421);
    // The loopback names, any case, with the port.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (code, reply) = request(
            &d,
            "GET /api/v1/status HTTP/1.1",
            &[&format!("Host: {host}")],
            None,
        );
        assert_eq!(code, 200, "Host {host}: {reply}");
    }
}

#[test]
fn origin_and_content_type_apply_to_state_changing_requests() {
    let d = Daemon::start(&[]);
    let port = d.port;
    let host = format!("Host: 127.0.0.1:{port}");
    let ping = r#"{"method":"PING","params":{}}"#;
    let post = |headers: &[&str], body: Option<&str>| {
        let mut all = vec![host.as_str()];
        all.extend_from_slice(headers);
        request(&d, "POST /api/call HTTP/1.1", &all, body)
    };
    let json = "Content-Type: application/json";
    // Refused: a foreign or opaque origin, a non-JSON or missing type on a body.
    for origin in [
        "Origin: null",
        "Origin: http://evil.example",
        "Origin: http://127.0.0.1:1",
        "Origin: https://127.0.0.1",
    ] {
        assert_eq!(post(&[origin, json], Some(ping)).0, 403, "{origin}");
    }
    for ct in [
        "Content-Type: text/plain",
        "Content-Type: application/x-www-form-urlencoded",
        "Content-Type: multipart/form-data; boundary=x",
        "Content-Type: application/json; charset=latin1",
    ] {
        assert_eq!(post(&[ct], Some(ping)).0, 415, "{ct}");
    }
    assert_eq!(post(&[], Some(ping)).0, 415, "a body without a type");
    // Allowed: the daemon's own origins; JSON with or without charset.
    for origin in [
        format!("Origin: http://127.0.0.1:{port}"),
        format!("Origin: http://localhost:{port}"),
        format!("Origin: http://[::1]:{port}"),
    ] {
        let (code, reply) = post(&[&origin, json], Some(ping));
        assert_eq!((code, &reply["pong"]), (200, &json!(true)), "{origin}");
    }
    let (code, reply) = post(
        &["Content-Type: application/json; charset=utf-8"],
        Some(ping),
    );
    assert_eq!((code, &reply["pong"]), (200, &json!(true)));
    // A GET with a foreign Origin is served (the browser will not let the page read it).
    let (code, _) = request(
        &d,
        "GET /api/v1/status HTTP/1.1",
        &[&host, "Origin: http://evil.example"],
        None,
    );
    assert_eq!(code, 200);
    // A CORS preflight gets no permission.
    let (status, text) = http_raw(
        port,
        &format!(
            "OPTIONS /api/call HTTP/1.1\r\n{host}\r\nOrigin: http://evil.example\r\n\
             Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_ne!(status / 100, 2, "{text}");
    assert!(!text.to_ascii_lowercase().contains("access-control-allow"));
}

#[test]
fn train_now_keeps_working_for_non_browser_clients_and_not_for_forms() {
    let d = Daemon::start(&[]);
    let host = format!("Host: 127.0.0.1:{}", d.port);
    let train = "POST /api/v1/action/train_now HTTP/1.1";
    // No run collected yet: every request the guard lets through reaches the pipeline, which
    // answers 409 with the reason.
    let passes = [
        (&[host.as_str()][..], None),     // curl -X POST
        (&[host.as_str()][..], Some("")), // Python urllib: Content-Length: 0
        (
            &[host.as_str(), "Content-Type: application/json"][..],
            Some("{}"),
        ),
    ];
    for (headers, body) in passes {
        let (code, reply) = request(&d, train, headers, body);
        assert_eq!(code, 409, "{headers:?} {body:?}: {reply}");
        assert_eq!(reply["code"], "REFUSED", "{reply}");
    }
    let refused = [
        (&[host.as_str(), "Content-Type: text/plain"][..], Some("{}")),
        (&[host.as_str()][..], Some("{}")),
        // An empty HTML form: no body, a form type, a foreign origin (or none, in old browsers).
        (
            &[
                host.as_str(),
                "Content-Type: application/x-www-form-urlencoded",
            ][..],
            Some(""),
        ),
        (
            &[host.as_str(), "Origin: http://evil.example"][..],
            Some(""),
        ),
    ];
    for (headers, body) in refused {
        let (code, reply) = request(&d, train, headers, body);
        assert!(
            [403, 415].contains(&code),
            "{headers:?} {body:?}: {code} {reply}"
        );
    }
}

/// Waits until `GET /api/v1/status` satisfies `done`.
fn wait_status(d: &Daemon, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (code, body) = d.http_get("/api/v1/status");
        assert_eq!(code, 200, "{body}");
        let status: Value = serde_json::from_str(&body).unwrap();
        if done(&status) {
            return status;
        }
        assert!(start.elapsed() < DEADLINE, "never reached {what}: {status}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The contract the original `heidid`'s own test suite checks: `heidid -p PORT` with
/// simulated stages is IDLE in round 1 once its boot run has collected, `train_now` answers
/// 200, the round then advances, and SIGTERM ends the daemon cleanly. Watermarks of 1 %
/// (which hold real stages on any machine: memory use is never below 1 %) show that the
/// machine's load cannot hold simulated stages, so a busy machine cannot fail this. The very first status request after the
/// daemon is ready already sees the boot run at rest: the daemon serves only once it is.
#[test]
fn the_original_daemons_contract_holds_on_a_busy_machine() {
    let mut d = Daemon::start_with_env(
        &[],
        None,
        &[
            ("HEIDI_MOCK_SUBPROCESSES", "1"),
            ("MAX_CPU_PCT", "1"),
            ("MAX_MEM_PCT", "1"),
        ],
    );
    let (code, body) = d.http_get("/api/v1/status");
    assert_eq!(code, 200, "{body}");
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&s["state"], &s["round"], &s["awaiting_train"]),
        (&json!("IDLE"), &json!(1), &json!(true)),
        "the first status request: {s}"
    );

    let (code, body) = d.http_post("/api/v1/action/train_now", "");
    assert_eq!(code, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["status"], "train initiated", "{reply}");
    assert_eq!(reply["accepted"], true, "{reply}");
    wait_status(&d, "round 2", |s| s["round"].as_u64() >= Some(2));

    // A clean exit on SIGTERM (the original's 2 s allowance is not a figure to assert on a
    // busy machine: `stop` fails the test past the harness DEADLINE).
    let status = d.stop();
    assert!(status.success(), "{status}");
}

/// A simulated boot run that does not come to rest within the daemon's bound (5 s) does not
/// keep the daemon from serving: it logs a warning and serves while the stage runs.
#[test]
fn a_simulated_boot_run_that_does_not_settle_is_served_anyway_with_a_warning() {
    let started = Instant::now();
    let d = Daemon::start_logged(
        &[],
        Some("[pipeline]\nmock_stage_ms = 60000"),
        &[("HEIDI_MOCK_SUBPROCESSES", "1")],
    );
    assert!(started.elapsed() < DEADLINE);
    let (code, body) = d.http_get("/api/v1/status");
    assert_eq!(code, 200, "{body}");
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&s["state"], &s["status"]),
        (&json!("COLLECTING"), &json!("running")),
        "{s}"
    );
    let warned = d.log_lines().iter().any(|l| {
        l["level"] == "WARN"
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("still running; serving anyway"))
    });
    assert!(warned, "{:#?}", d.log_lines());
}

fn readyz(d: &Daemon) -> (u16, Value) {
    let (code, body) = d.http_get("/readyz");
    (code, serde_json::from_str(&body).unwrap())
}

fn report(d: &Daemon, name: &str, pass: bool) {
    let reply = d.call("HEALTH_REPORT", json!({"name": name, "pass": pass}));
    assert_eq!(reply["ok"], true, "{reply}");
}

#[test]
fn readyz_is_503_while_a_check_the_policy_names_is_not_healthy() {
    let d = Daemon::start(&[]);
    // Checks the policy does not name do not matter.
    for _ in 0..3 {
        report(&d, "batch", false);
    }
    assert_eq!(readyz(&d), (200, json!({"ready": true})));

    let policy = json!({"policy": {
        "health": {"interval_ms": 100},
        "readiness": {"checks": ["db", "cache"]},
    }});
    let applied = d.call("APPLY_POLICY", policy);
    assert_eq!(applied["ok"], true, "{applied}");
    let got = d.call("GET_POLICY", json!({}));
    assert_eq!(got["policy"]["readiness"]["checks"], json!(["db", "cache"]));
    // Never reported: not ready.
    let (code, v) = readyz(&d);
    assert_eq!(code, 503, "{v}");
    assert_eq!(
        v,
        json!({"ready": false, "reason": "checks", "failing": [
            {"name": "db", "status": "unreported"},
            {"name": "cache", "status": "unreported"},
        ]})
    );
    // Healthy as soon as both report; unhealthy after three failures of one.
    report(&d, "db", true);
    report(&d, "cache", true);
    assert_eq!(readyz(&d).0, 200);
    for _ in 0..3 {
        report(&d, "cache", false);
    }
    let (code, v) = readyz(&d);
    assert_eq!(code, 503, "{v}");
    assert_eq!(
        v["failing"],
        json!([{"name": "cache", "status": "unhealthy"}])
    );
    // Silent for two intervals (200 ms): unknown, so not ready either.
    let start = Instant::now();
    loop {
        report(&d, "cache", true);
        let (code, v) = readyz(&d);
        if code == 503 && v["failing"] == json!([{"name": "db", "status": "unknown"}]) {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "db never turned unknown: {v}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A bad readiness section is refused, naming the field, and nothing changes.
    let bad = d.call(
        "APPLY_POLICY",
        json!({"policy": {"readiness": {"checks": ["db", "db"]}}}),
    );
    assert_eq!(bad["code"], "INVALID_POLICY", "{bad}");
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .starts_with("readiness.checks[1]"),
        "{bad}"
    );
    // Back to no readiness checks: ready whatever the checks say.
    let applied = d.call("APPLY_POLICY", json!({"policy": {}}));
    assert_eq!(applied["ok"], true, "{applied}");
    assert_eq!(readyz(&d), (200, json!({"ready": true})));
}

#[test]
fn a_non_loopback_listener_takes_any_host_and_relies_on_its_token() {
    let token = "0123456789abcdef0123";
    let d = Daemon::start_with_env(
        &["--http-bind", "0.0.0.0", "--allow-non-loopback"],
        None,
        &[("HEIDI_HTTP_TOKEN", token)],
    );
    let bearer = format!("Authorization: Bearer {token}");
    let get = |host: &str, auth: bool| {
        let mut headers = vec![format!("Host: {host}")];
        if auth {
            headers.push(bearer.clone());
        }
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        request(&d, "GET /api/v1/status HTTP/1.1", &headers, None).0
    };
    // Reached by a name the daemon cannot know: the token decides.
    assert_eq!(get("heidi.internal:9999", true), 200);
    assert_eq!(get("heidi.internal:9999", false), 401);
    assert_eq!(get("bad host", true), 421);
    // State-changing requests: the Origin must be the Host's; bodies still JSON.
    let ping = r#"{"method":"PING","params":{}}"#;
    let post = |origin: &str, ct: &str| {
        let headers = ["Host: heidi.internal:8080", bearer.as_str(), origin, ct];
        request(&d, "POST /api/call HTTP/1.1", &headers, Some(ping)).0
    };
    let json = "Content-Type: application/json";
    assert_eq!(post("Origin: http://heidi.internal:8080", json), 200);
    assert_eq!(post("Origin: http://evil.example:8080", json), 403);
    assert_eq!(
        post(
            "Origin: http://heidi.internal:8080",
            "Content-Type: text/plain"
        ),
        415
    );
}

/// `/api/call` checks its body as the socket checks a frame's: empty or not UTF-8 is
/// `BAD_FRAME` (HTTP 400), with the same message.
#[test]
fn api_call_bodies_are_checked_like_frames() {
    use std::io::{Read, Write};
    let d = Daemon::start(&[]);
    let send = |body: &[u8]| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!(
            "POST /api/call HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            d.port,
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        let status: u16 = reply[9..12].parse().unwrap();
        let body = &reply[reply.find("\r\n\r\n").unwrap() + 4..];
        (status, serde_json::from_str::<Value>(body).unwrap())
    };
    let (code, v) = send(b"");
    assert_eq!(
        (code, &v["code"], &v["message"]),
        (400, &json!("BAD_FRAME"), &json!("empty frame"))
    );
    let (code, v) = send(b"{\"method\":\"PING\xff\"}");
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["code"], "BAD_FRAME");
    assert_eq!(v["message"], "frame is not valid UTF-8 (byte 15)");
    let (code, v) = send(br#"{"method":"PING","params":{}}"#);
    assert_eq!((code, &v["pong"]), (200, &json!(true)));
}
