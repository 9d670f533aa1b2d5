//! The wire contracts of docs/PROTOCOL.md against a real `heidid`: framed JSON (one connection per call, and 50
//! pipelined on one connection), every line command, every HTTP route.

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::Write;

/// Bytes that arrive in pieces, with pauses, are each read and answered: after a read that
/// empties the socket the daemon waits for the next bytes instead of asking the socket again,
/// and must still see them (a frame split across three writes, then a second request after a
/// pause, then one in the middle of a line's worth of others).
#[test]
fn requests_written_in_pieces_with_pauses_are_answered() {
    let d = Daemon::start(&[]);
    let mut s = d.connect();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let wire = frame(
        json!({"method": "PING", "params": {}})
            .to_string()
            .as_bytes(),
    );
    let pause = || std::thread::sleep(std::time::Duration::from_millis(50));
    for _ in 0..3 {
        for piece in [&wire[..2], &wire[2..9], &wire[9..]] {
            s.write_all(piece).unwrap();
            s.flush().unwrap();
            pause();
        }
        let reply = read_frame(&mut s).expect("the split frame is answered");
        assert_eq!(reply["pong"], true, "{reply}");
        pause();
    }
    // Two whole frames and the start of a third in one write, the rest later.
    let mut batch = wire.repeat(2);
    batch.extend_from_slice(&wire[..5]);
    s.write_all(&batch).unwrap();
    for _ in 0..2 {
        assert_eq!(read_frame(&mut s).expect("reply")["pong"], true);
    }
    pause();
    s.write_all(&wire[5..]).unwrap();
    assert_eq!(read_frame(&mut s).expect("the rest is read")["pong"], true);
}

#[test]
fn framed_json_one_connection_per_call() {
    let d = Daemon::start(&[]);
    let pong = d.call("PING", json!({}));
    assert_eq!(pong["ok"], true);
    assert_eq!(pong["pong"], true);
    let status = d.call("STATUS", json!({}));
    assert_eq!(status["protocol_version"], 1);
    assert_eq!(status["pid"], d.pid());
    for key in [
        "version",
        "uptime_ms",
        "rss_kb",
        "threads",
        "queue_depth",
        "policy_version",
    ] {
        assert!(status.get(key).is_some(), "STATUS lacks {key}: {status}");
    }
    let policy = d.call("GET_POLICY", json!({}));
    assert!(policy.get("error").is_none(), "{policy}");
    let unknown = d.call("NOPE", json!({}));
    assert_eq!(unknown["error"], true);
    assert_eq!(unknown["code"], "UNKNOWN_METHOD");
}

#[test]
fn fifty_pipelined_requests_are_answered_in_order() {
    let d = Daemon::start(&[]);
    let mut s = d.connect();
    let mut wire = Vec::new();
    for i in 0..50 {
        let method = if i % 2 == 0 { "PING" } else { "JOURNAL_TAIL" };
        let params = if i % 2 == 0 {
            json!({})
        } else {
            json!({"lines": 1})
        };
        let body = json!({"method": method, "params": params});
        wire.extend(frame(body.to_string().as_bytes()));
    }
    s.write_all(&wire).unwrap();
    for i in 0..50 {
        let reply = read_frame(&mut s).expect("reply");
        if i % 2 == 0 {
            assert_eq!(reply["pong"], true, "reply {i}: {reply}");
        } else {
            assert!(reply["events"].is_array(), "reply {i}: {reply}");
        }
    }
}

/// Appends pipelined on one connection are queued together (they share group commits), yet
/// every reply comes back in request order, a request after them sees them, and a bad append
/// among them is refused without disturbing its neighbours.
#[test]
fn pipelined_appends_share_commits_and_keep_order() {
    let d = Daemon::start(&[]);
    let mut s = d.connect();
    let mut wire = Vec::new();
    let append = |i: usize| json!({"method": "JOURNAL_APPEND", "params": {"event_type": "pipelined", "message": format!("m{i}")}});
    for i in 0..40 {
        let body = match i {
            20 => json!({"method": "JOURNAL_TAIL", "params": {"lines": 2}}),
            25 => json!({"method": "JOURNAL_APPEND", "params": {"event_type": "bad type!"}}),
            _ => append(i),
        };
        wire.extend(frame(body.to_string().as_bytes()));
    }
    s.write_all(&wire).unwrap();
    let mut last_line = 0;
    for i in 0..40 {
        let reply = read_frame(&mut s).expect("reply");
        match i {
            20 => {
                let events = reply["events"].as_array().expect("tail reply");
                let messages: Vec<&str> = events
                    .iter()
                    .map(|e| e["message"].as_str().unwrap())
                    .collect();
                assert_eq!(
                    messages,
                    ["m18", "m19"],
                    "the tail sees the appends before it"
                );
            }
            25 => assert_eq!(reply["code"], "BAD_REQUEST", "reply {i}: {reply}"),
            _ => {
                assert_eq!(reply["ok"], true, "reply {i}: {reply}");
                let line = reply["line"].as_u64().unwrap();
                assert!(line > last_line, "reply {i}: line {line} after {last_line}");
                last_line = line;
            }
        }
    }
    let lines = read_lines(&d.journal());
    let messages: Vec<String> = lines
        .iter()
        .filter(|l| l.contains("\"event_type\":\"pipelined\""))
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let expected: Vec<String> = (0..40)
        .filter(|i| *i != 20 && *i != 25)
        .map(|i| format!("m{i}"))
        .collect();
    assert_eq!(
        messages, expected,
        "every acknowledged append is on disk, in request order"
    );
    let commits = metric(&d, "heidi_journal_fsync_duration_seconds_count");
    assert!(
        commits < 38.0,
        "38 pipelined appends took {commits} commits: they were not grouped"
    );
}

/// The value of an unlabelled sample in `/metrics`.
fn metric(d: &Daemon, name: &str) -> f64 {
    let (code, text) = d.http_get("/metrics");
    assert_eq!(code, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("/metrics lacks {name}:\n{text}"))
}

#[test]
fn line_commands() {
    let d = Daemon::start(&[]);
    assert_eq!(line_exchange(&d, "ping\n", 1), ["PONG"]);
    let version = line_exchange(&d, "version\n", 1);
    assert!(version[0].starts_with("PROTOCOL 1 DAEMON "), "{version:?}");
    for cmd in ["status\n", "status/json\n", "STATUS\n"] {
        let line = line_exchange(&d, cmd, 1);
        let v: Value = serde_json::from_str(&line[0]).unwrap();
        for key in [
            "protocol_version",
            "version",
            "pid",
            "uptime_ms",
            "rss_kb",
            "threads",
            "queue_depth",
        ] {
            assert!(v.get(key).is_some(), "{cmd:?} lacks {key}: {v}");
        }
        assert_eq!(v["pid"], d.pid());
    }
    assert_eq!(
        line_exchange(&d, "frobnicate\n", 1),
        ["ERR UNKNOWN_COMMAND frobnicate"]
    );
    // Several commands on one connection, answered in order.
    assert_eq!(
        line_exchange(&d, "ping\nping\nnope\n", 3),
        ["PONG", "PONG", "ERR UNKNOWN_COMMAND nope"]
    );
    // A line over the limit is refused and the connection resynchronizes.
    let long = format!("{}\nping\n", "x".repeat(1000));
    assert_eq!(line_exchange(&d, &long, 2), ["ERR LINE_TOO_LONG", "PONG"]);
}

#[test]
fn http_routes() {
    let d = Daemon::start(&[]);
    let (code, body) = d.http_get("/api/v1/status");
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"], "IDLE");
    assert_eq!(v["round"], 1);
    assert_eq!(v["mode"], "collect");
    assert!(v["run_id"].is_string());

    // IDLE with no run collected: train_now does not apply (e2e_http and e2e_pipeline cover the 200).
    let (code, body) = d.http_post("/api/v1/action/train_now", "");
    assert_eq!(code, 409, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "REFUSED");

    let (code, body) = d.http_post(
        "/api/call",
        r#"{"method":"PING","params":{},"timestamp":1700000000.123}"#,
    );
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["pong"], true);
    let (code, body) = d.http_post("/api/call", "{not json");
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["code"],
        "BAD_JSON"
    );

    assert_eq!(
        d.http_get("/health"),
        (200, r#"{"health":"ok"}"#.to_owned())
    );
    assert_eq!(d.http_get("/healthz").0, 200);
    assert_eq!(d.http_get("/readyz").0, 200);
    let (code, metrics) = d.http_get("/metrics");
    assert_eq!(code, 200);
    for name in [
        "heidi_requests_total",
        "heidi_request_duration_seconds",
        "heidi_journal_fsync_duration_seconds",
        "heidi_limiter_denials",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    assert_eq!(d.http_get("/nope").0, 404);
}

#[test]
fn http_token_guards_every_route_but_the_probes() {
    // The token comes from a file (or HEIDI_HTTP_TOKEN), never from an argument.
    let keys = tempfile::tempdir().unwrap();
    let file = keys.path().join("http.token");
    std::fs::write(&file, "0123456789abcdef0123\n").unwrap();
    let mode = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode;
    std::fs::set_permissions(&file, mode(0o600)).unwrap();
    let path = file.to_str().unwrap();
    let d = Daemon::start(&["--http-token-file", path]);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", d.pid())).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("0123456789abcdef"),
        "the token is not in the command line"
    );
    assert_eq!(d.http_get("/health").0, 401);
    let ok = http_with(
        d.port,
        "GET",
        "/health",
        None,
        &["Authorization: Bearer 0123456789abcdef0123"],
    );
    assert_eq!(ok.0, 200);
    let wrong = http_with(
        d.port,
        "GET",
        "/health",
        None,
        &["Authorization: Bearer 0123456789abcdef0124"],
    );
    assert_eq!(wrong.0, 401);
    assert_eq!(
        d.http_post("/api/call", r#"{"method":"PING","params":{}}"#)
            .0,
        401
    );
    assert_eq!(d.http_get("/metrics").0, 401);
    assert_eq!(d.http_get("/readyz").0, 200);
    assert_eq!(d.http_get("/healthz").0, 200);

    // No flag takes the token itself; a token file others may read is refused.
    let (code, _, err) = run_cmd(d.command().args(["--http-token", "0123456789abcdef0123"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--http-token"), "{err}");
    std::fs::set_permissions(&file, mode(0o644)).unwrap();
    let scratch = keys.path();
    let (code, _, err) = run_cmd(
        std::process::Command::new(env!("CARGO_BIN_EXE_heidid"))
            .arg("--socket")
            .arg(scratch.join("k.sock"))
            .arg("--out-dir")
            .arg(scratch.join("out"))
            .arg("--seal-key")
            .arg(scratch.join("seal.key"))
            .args(["--http-token-file", path]),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("http.token") && err.contains("chmod 600"),
        "{err}"
    );
}

#[test]
fn sigterm_drains_seals_and_exits_zero() {
    let mut d = Daemon::start(&[]);
    let appended = d.call(
        "JOURNAL_APPEND",
        json!({"event_type": "client_note", "message": "hello"}),
    );
    assert_eq!(appended["ok"], true, "{appended}");
    let status = d.stop();
    assert!(status.success(), "{status}");
    assert!(!d.socket.exists(), "socket file removed at shutdown");
    let lines = read_lines(&d.journal());
    assert!(lines.last().unwrap().contains("daemon_stopped"));
    let seals = read_lines(&d.seals());
    let last: Value = serde_json::from_str(seals.last().unwrap()).unwrap();
    assert_eq!(
        last["lines"],
        lines.len(),
        "the whole journal is sealed at shutdown"
    );
    let state: Value =
        serde_json::from_slice(&std::fs::read(d.out_dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["status"], "stopped");
}

const AUTH_TOKEN: &str = "authz-token-0123456789";

/// A daemon with `[authorization]` lists (`toml` is the section's body) and a bearer token.
fn authorized(toml: &str) -> Daemon {
    let config = format!("[authorization]\n{toml}\n");
    Daemon::start_with_env(&[], Some(&config), &[("HEIDI_HTTP_TOKEN", AUTH_TOKEN)])
}

/// `heidi_requests_forbidden_total{class}` read with the token.
fn forbidden_count(d: &Daemon, class: &str) -> f64 {
    let bearer = format!("Authorization: Bearer {AUTH_TOKEN}");
    let (code, text) = http_with(d.port, "GET", "/metrics", None, &[&bearer]);
    assert_eq!(code, 200, "{text}");
    let name = format!("heidi_requests_forbidden_total{{class=\"{class}\"}}");
    text.lines()
        .find_map(|l| l.strip_prefix(&name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("/metrics lacks {name}:\n{text}"))
}

fn code_of(reply: &Value) -> &str {
    reply["code"].as_str().unwrap_or("")
}

fn policy() -> Value {
    json!({"policy": {"limits": {"search": {"capacity_tokens": 5, "window_ms": 1000}}}})
}

/// The test process's uid and gid: the daemon's peer on the socket.
fn my_ids() -> (u32, u32) {
    (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    )
}

/// An id that is not `id` (so surely not the caller's when `id` is).
fn other_than(id: u32) -> u32 {
    if id == 12345 { 12346 } else { 12345 }
}

#[test]
fn forbidden_admin_calls_are_counted_not_logged() {
    let config = format!(
        "[authorization]\nadmin_uids = [{}]\n",
        other_than(my_ids().0)
    );
    let token = [("HEIDI_HTTP_TOKEN", AUTH_TOKEN)];
    let mut d = Daemon::start_logged(&[], Some(&config), &token);
    for _ in 0..300 {
        assert_eq!(code_of(&d.call("APPLY_POLICY", policy())), "FORBIDDEN");
        assert_eq!(code_of(&d.call("PIPELINE_RESET", json!({}))), "FORBIDDEN");
    }
    assert!(d.stop().success());
    let audit: Vec<Value> = d
        .log_lines()
        .into_iter()
        .filter(|l| l["target"] == "heidid::audit")
        .collect();
    let me = socket_peer();
    assert_eq!(audit.len(), 1, "{audit:#?}");
    let fields = &audit[0]["fields"];
    assert_eq!(fields["message"], "refused admin calls");
    assert_eq!(fields["peer"], me.as_str());
    assert_eq!(fields["calls"], 600);
    assert_eq!(fields["methods"], "APPLY_POLICY=300 PIPELINE_RESET=300");
}

#[test]
fn authorization_refuses_admin_methods_to_unlisted_uids() {
    // The caller's uid and gid are not listed for admin.
    let (uid, gid) = my_ids();
    let d = authorized(&format!(
        "admin_uids = [{}]\nadmin_gids = [{}]",
        other_than(uid),
        other_than(gid)
    ));
    assert_eq!(d.call("PING", json!({}))["pong"], true);
    let consume = d.call("RATE_LIMIT_CONSUME", json!({"key": "k", "operation": "op"}));
    assert_eq!(consume["allowed"], true, "{consume}");
    let refused = d.call("APPLY_POLICY", policy());
    assert_eq!(code_of(&refused), "FORBIDDEN", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("uid={uid} gid={gid}")) && message.contains("admin"),
        "{message}"
    );
    assert_eq!(
        code_of(&d.call("PIPELINE_TRAIN_NOW", json!({}))),
        "FORBIDDEN"
    );
    assert_eq!(
        d.call("GET_POLICY", json!({}))["version"],
        1,
        "nothing applied"
    );
    assert_eq!(forbidden_count(&d, "admin"), 2.0);
    assert_eq!(forbidden_count(&d, "mutate"), 0.0);

    // HTTP callers are authenticated by the bearer token, which admits them to every class.
    let bearer = format!("Authorization: Bearer {AUTH_TOKEN}");
    let body = json!({"method": "APPLY_POLICY", "params": policy()}).to_string();
    let (code, reply) = http_with(d.port, "POST", "/api/call", Some(&body), &[&bearer]);
    assert_eq!(code, 200, "{reply}");
    assert!(!reply.contains("FORBIDDEN"), "{reply}");
}

#[test]
fn authorization_read_restriction_covers_appends_and_line_commands() {
    let (uid, _) = my_ids();
    let d = authorized(&format!("read_uids = [{}]", other_than(uid)));
    assert_eq!(code_of(&d.call("PING", json!({}))), "FORBIDDEN");
    assert_eq!(
        code_of(&d.call("RATE_LIMIT_CHECK", json!({"key": "k"}))),
        "FORBIDDEN"
    );
    // Appends pipelined on one connection take another path: refused too, nothing written.
    let lines_before = read_lines(&d.journal()).len();
    let mut s = d.connect();
    for _ in 0..3 {
        let event = json!({"event_type": "e", "message": "m"});
        write_request(&mut s, "JOURNAL_APPEND", event);
    }
    for _ in 0..3 {
        assert_eq!(code_of(&read_frame(&mut s).unwrap()), "FORBIDDEN");
    }
    assert_eq!(read_lines(&d.journal()).len(), lines_before);
    assert_eq!(line_exchange(&d, "status\n", 1), ["ERR FORBIDDEN"]);
    assert_eq!(forbidden_count(&d, "read"), 3.0);
    assert_eq!(forbidden_count(&d, "mutate"), 3.0);
}

#[test]
fn authorization_admits_listed_ids_to_their_class_and_below() {
    let (uid, gid) = my_ids();
    let other = other_than(uid);
    // The caller's gid listed for mutate: mutate and read, not admin.
    let d = authorized(&format!("mutate_gids = [{gid}]\nadmin_uids = [{other}]"));
    assert_eq!(d.call("PING", json!({}))["pong"], true);
    let consume = d.call("RATE_LIMIT_CONSUME", json!({"key": "k", "operation": "op"}));
    assert_eq!(consume["allowed"], true, "{consume}");
    assert_eq!(code_of(&d.call("APPLY_POLICY", policy())), "FORBIDDEN");
    drop(d);
    // The caller's uid listed for admin: every class, though read and mutate are restricted
    // to others.
    let d = authorized(&format!(
        "read_uids = [{other}]\nmutate_uids = [{other}]\nadmin_uids = [{uid}]"
    ));
    assert_eq!(d.call("PING", json!({}))["pong"], true);
    assert_eq!(d.call("APPLY_POLICY", policy())["version"], 2);
    assert_eq!(line_exchange(&d, "ping\n", 1), ["PONG"]);
    assert_eq!(forbidden_count(&d, "admin"), 0.0);
}

/// Synthetic secrets of every format the redactor catalogues (none is a real credential),
/// each with the part that must never be written.
const SECRETS: &[(&str, &str)] = &[
    (
        "hf_FakeTokenForTestsOnlyAbcdefghijklm9",
        "FakeTokenForTests",
    ),
    (
        "xoxb-0000000000-0000000000000-FAKEfakeFAKEfake",
        "FAKEfakeFAKEfake",
    ),
    (
        "xoxp-0000000000-0000000000-0000000000000-fakefake00",
        "fakefake00",
    ),
    (
        "https://hooks.slack.com/services/T00000000/B00000000/FAKEfakeFAKEfake00000000",
        "FAKEfakeFAKEfake00000000",
    ),
    ("sk_live_FAKE0123456789abcdefABCD", "FAKE0123456789abcdef"),
    ("rk_live_FAKE0123456789abcdefABCD", "FAKE0123456789abcdef"),
    ("AIzaFAKE_0123456789abcdefghijklmnopqrs", "FAKE_0123456789"),
    (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzeW50aGV0aWMtdGVzdCIsIm4iOjF9.c2lnbmF0dXJlLWZha2UtMDAwMDAwMDA",
        "eyJzdWIiOiJzeW50aGV0aWMtdGVzdCIsIm4iOjF9",
    ),
    (
        "https://ci-user:FakePassWord9@git.example.com/o/r.git",
        "FakePassWord9",
    ),
    (
        "postgres://app:FakePassWord9@db.example:5432/x",
        "FakePassWord9",
    ),
    (
        "npm_FAKE0123456789abcdefghijklmnopqrstuv",
        "FAKE0123456789abcdefghij",
    ),
    (
        "pypi-AgEIcHlwaS5vcmcFAKE0123456789abcdefghijklmnopqrstuvwxyz0123",
        "AgEIcHlwaS5vcmcFAKE",
    ),
    (
        "AccountKey=RkFLRWtleUZBS0VrZXk0123=",
        "RkFLRWtleUZBS0VrZXk0123",
    ),
    (
        "Authorization: Basic Y2ktdXNlcjpub3QtYS1yZWFsLXBhc3Mx",
        "Y2ktdXNlcjpub3QtYS1yZWFsLXBhc3Mx",
    ),
    (
        "key%3Dsk-ant-api03-FAKEabc123def456ghi789jkl012",
        "FAKEabc123def456",
    ),
    ("token:FakeValue0123", "FakeValue0123"),
];

fn is_name(s: &str) -> bool {
    s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

#[test]
fn journal_append_writes_no_secret_bytes() {
    let d = Daemon::start(&[]);
    let mut names = 0;
    for (secret, piece) in SECRETS {
        let appended = d.call(
            "JOURNAL_APPEND",
            json!({
                "event_type": "client_note",
                "message": format!("using {secret} now"),
                "error": format!("failed with {secret}"),
                "artifact_paths": [format!("out/{secret}")],
            }),
        );
        assert_eq!(appended["ok"], true, "{secret}: {appended}");
        if !is_name(secret) {
            continue;
        }
        // As a name (event_type, stage, counter or usage name): refused, not repeated.
        names += 1;
        for params in [
            json!({"event_type": secret, "message": "m"}),
            json!({"event_type": "e", "stage": secret, "message": "m"}),
            json!({"event_type": "e", "message": "m", "counters_delta": {*secret: 1}}),
            json!({"event_type": "e", "message": "m", "usage_delta": {*secret: 1}}),
        ] {
            let refused = d.call("JOURNAL_APPEND", params);
            assert_eq!(code_of(&refused), "BAD_REQUEST", "{secret}: {refused}");
            let text = refused.to_string();
            assert!(text.contains("holds a secret"), "{text}");
            assert!(!text.contains(piece), "{text}");
        }
    }
    assert!(names >= 8, "{names} names tried");
    let text = std::fs::read_to_string(d.journal()).unwrap();
    for (secret, piece) in SECRETS {
        assert!(!text.contains(piece), "{secret}: {text}");
    }
    assert!(
        text.contains("[HUGGINGFACE_TOKEN]") && text.contains("[JWT]"),
        "{text}"
    );
}

/// Custom operations and tiers over the socket: APPLY_POLICY defines `llm_call` with tiers
/// free and pro; each tier is limited at its own capacity, `default_tier` serves a call that
/// names none; a 257th operation, a bad name and an unknown tier are refused by field; the
/// policy round-trips through GET_POLICY and survives a restart (policy.json); the custom
/// operation's denials are a metric labelled by its name.
#[test]
fn custom_operations_and_tiers_end_to_end() {
    let mut d = Daemon::start(&[]);
    let doc = json!({
        "limits": {"llm_call": {"capacity_tokens": 50, "window_ms": 60000}},
        "tiers": {
            "free": {"limits": {"llm_call": {"capacity_tokens": 2}}},
            "pro": {"limits": {"llm_call": {"capacity_tokens": 5}}}
        },
        "default_tier": "free"
    });
    let applied = d.call("APPLY_POLICY", json!({ "policy": doc }));
    assert_eq!(applied["version"], 2, "{applied}");
    let consume = |d: &Daemon, key: &str, tier: Option<&str>| {
        let mut params = json!({"key": key, "operation": "llm_call"});
        if let Some(tier) = tier {
            params["tier"] = tier.into();
        }
        d.call("RATE_LIMIT_CONSUME", params)
    };
    let limited_after = |d: &Daemon, key: &str, tier: Option<&str>, granted: u32| {
        for i in 0..granted {
            let r = consume(d, key, tier);
            assert_eq!(r["allowed"], true, "{key} call {i}: {r}");
            assert_eq!(r["tier"], tier.unwrap_or("free"), "{r}");
        }
        assert_eq!(code_of(&consume(d, key, tier)), "RATE_LIMITED");
    };
    limited_after(&d, "f", Some("free"), 2);
    limited_after(&d, "p", Some("pro"), 5);
    limited_after(&d, "n", None, 2);

    let unknown = consume(&d, "u", Some("gold"));
    assert_eq!(code_of(&unknown), "BAD_REQUEST");
    let message = unknown["message"].as_str().unwrap();
    assert!(
        message.starts_with("params.tier: unknown tier"),
        "{message}"
    );

    let mut limits = serde_json::Map::new();
    for i in 0..251 {
        limits.insert(format!("op{i:03}"), json!({}));
    }
    let refusals = [
        (
            json!({ "limits": limits }),
            "limits.op250: at most 256 operations",
        ),
        (
            json!({"limits": {"llm call": {}}}),
            "limits.llm call: names are",
        ),
        (
            json!({"tiers": {"free": {"limits": {"embedder": {}}}}}),
            "tiers.free.limits.embedder: unknown operation",
        ),
    ];
    for (bad, prefix) in refusals {
        let refused = d.call("APPLY_POLICY", json!({ "policy": bad }));
        assert_eq!(code_of(&refused), "INVALID_POLICY", "{refused}");
        let message = refused["message"].as_str().unwrap();
        assert!(message.starts_with(prefix), "{message}");
    }

    let got = d.call("GET_POLICY", json!({}));
    assert_eq!(got["version"], 2);
    let written = &got["policy"];
    assert_eq!(
        written["tiers"]["pro"]["limits"]["llm_call"]["capacity_tokens"],
        5
    );
    assert_eq!(written["default_tier"], "free");
    assert_eq!(written["limits"]["llm_call"]["window_ms"], 60000);
    let again = d.call("APPLY_POLICY", json!({ "policy": written }));
    assert_eq!(
        again["version"], 3,
        "GET_POLICY's document applies: {again}"
    );

    let denied = metric(&d, r#"heidi_limiter_denials_total{operation="llm_call"}"#);
    assert_eq!(denied, 3.0);

    let before = d.call("GET_POLICY", json!({}));
    assert!(d.stop().success());
    d.spawn();
    assert_eq!(d.call("GET_POLICY", json!({})), before);
    limited_after(&d, "after", Some("pro"), 5);
}

/// The `[policy]` section of the configuration file takes custom operations and tiers too.
#[test]
fn a_config_file_policy_defines_custom_operations_and_tiers() {
    let config = r#"
        [policy]
        default_tier = "free"
        [policy.limits.llm_call]
        capacity_tokens = 9
        [policy.tiers.free.limits.llm_call]
        capacity_tokens = 1
    "#;
    let d = Daemon::start_with_config(&[], Some(config));
    let params = json!({"key": "k", "operation": "llm_call"});
    let first = d.call("RATE_LIMIT_CONSUME", params.clone());
    assert_eq!(
        (first["limit"].as_u64(), first["tier"].as_str()),
        (Some(1), Some("free"))
    );
    assert_eq!(
        code_of(&d.call("RATE_LIMIT_CONSUME", params)),
        "RATE_LIMITED"
    );
    let got = d.call("GET_POLICY", json!({}));
    assert_eq!(got["policy"]["limits"]["llm_call"]["capacity_tokens"], 9);
}

/// `/metrics` counts each request by what its reply said, for every path a reply takes: the
/// core service's methods, the kernel's policy methods, the daemon's own methods, appends
/// served at once and appends deferred behind a pipelined connection's other requests.
#[test]
fn metrics_count_each_reply_by_its_outcome() {
    let d = Daemon::start(&[]);
    let mut s = d.connect();
    let append = json!({"stage": "collect", "event_type": "progress", "message": "m"});
    let requests = [
        ("JOURNAL_APPEND", append.clone()),
        ("JOURNAL_APPEND", json!({"stage": 5})),
        ("JOURNAL_APPEND", append),
        ("JOURNAL_TAIL", json!({"lines": 0})),
        ("JOURNAL_TAIL", json!({"lines": 1})),
        ("PIPELINE_TRAIN_NOW", json!({})),
        ("GET_POLICY", json!({"nope": 1})),
        ("APPLY_POLICY", json!({"policy": {"limits": {"x": 1}}})),
        ("APPLY_POLICY", json!({"policy": {}})),
        (
            "RATE_LIMIT_CONSUME",
            json!({"key": "k", "operation": "transform", "cost": 11}),
        ),
        (
            "RATE_LIMIT_CHECK",
            json!({"key": "k", "operation": "transform", "cost": 10}),
        ),
    ];
    for (method, params) in &requests {
        write_request(&mut s, method, params.clone());
    }
    let replies: Vec<Value> = requests
        .iter()
        .map(|_| read_frame(&mut s).expect("a reply"))
        .collect();
    let codes: Vec<&str> = replies
        .iter()
        .map(|r| r["code"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        codes,
        [
            "-",
            "BAD_REQUEST",
            "-",
            "BAD_REQUEST",
            "-",
            "REFUSED",
            "BAD_REQUEST",
            "INVALID_POLICY",
            "-",
            "BAD_REQUEST",
            "-"
        ],
        "{replies:#?}"
    );
    let expected = [
        ("JOURNAL_APPEND", "ok", 2),
        ("JOURNAL_APPEND", "error", 1),
        ("JOURNAL_TAIL", "ok", 1),
        ("JOURNAL_TAIL", "error", 1),
        ("PIPELINE_TRAIN_NOW", "error", 1),
        ("GET_POLICY", "error", 1),
        ("APPLY_POLICY", "ok", 1),
        ("APPLY_POLICY", "error", 1),
        ("RATE_LIMIT_CONSUME", "error", 1),
        ("RATE_LIMIT_CHECK", "ok", 1),
    ];
    // The daemon counts a connection's requests once their replies are written, which may
    // be just after the client has read them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, metrics) = d.http_get("/metrics");
        let missing: Vec<String> = expected
            .iter()
            .map(|(m, outcome, n)| {
                format!(r#"heidi_requests_total{{method="{m}",transport="unix",outcome="{outcome}"}} {n}"#)
            })
            .filter(|line| !metrics.lines().any(|l| l == line))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing:#?} missing from\n{metrics}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
