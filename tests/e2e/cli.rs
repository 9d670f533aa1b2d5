//! The `heidi` CLI against a real `heidid`: every daemon subcommand's exit code and output,
//! policy files (TOML and JSON, and an invalid one), finding the daemon through the
//! environment with no flags, the pipeline's `UNAVAILABLE`, and a daemon that is down.

mod common;

use common::*;
use serde_json::{Value, json};

/// Runs `heidi --socket <d> args…`; returns (exit code, stdout, stderr).
fn heidi_at(d: &Daemon, args: &[&str]) -> (i32, String, String) {
    run_cmd(d.heidi().args(args))
}

/// Runs `heidi --json --socket <d> args…` expecting exit 0; returns the reply.
fn heidi_json(d: &Daemon, args: &[&str]) -> Value {
    let (code, out, err) = run_cmd(d.heidi().arg("--json").args(args));
    assert_eq!(code, 0, "heidi {args:?}: {out} {err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    let (code, out, err) = heidi_at(d, args);
    assert_eq!(code, 0, "heidi {args:?}: stdout {out} stderr {err}");
    out
}

#[test]
fn ping_status_and_policy_files() {
    let d = Daemon::start(&[]);
    assert!(ok(&d, &["ping"]).contains("\"pong\": true"));
    let status = heidi_json(&d, &["status"]);
    assert_eq!(
        (status["protocol_version"].clone(), status["pid"].clone()),
        (json!(1), json!(d.pid()))
    );
    assert!(ok(&d, &["status"]).contains("\"policy_version\": 1"));
    let policy = heidi_json(&d, &["policy", "get"]);
    assert_eq!(policy["policy"]["limits"]["search"]["capacity_tokens"], 30);

    let toml = d.dir.path().join("policy.toml");
    std::fs::write(
        &toml,
        "[limits.search]\ncapacity_tokens = 2\nwindow_ms = 60000\n\n[breakers.cli]\nfailure_threshold = 1\n",
    )
    .unwrap();
    assert!(ok(&d, &["policy", "apply", toml.to_str().unwrap()]).contains("\"version\": 2"));
    let policy = heidi_json(&d, &["policy", "get"]);
    assert_eq!(policy["version"], 2);
    assert_eq!(policy["policy"]["limits"]["search"]["capacity_tokens"], 2);
    assert_eq!(policy["policy"]["breakers"]["cli"]["failure_threshold"], 1);

    let json_file = d.dir.path().join("policy.json");
    std::fs::write(
        &json_file,
        r#"{"leases": {"limit_per_key": 1, "ttl_ms": 5000}}"#,
    )
    .unwrap();
    assert_eq!(
        heidi_json(&d, &["policy", "apply", json_file.to_str().unwrap()])["version"],
        3
    );
    let policy = heidi_json(&d, &["policy", "get"]);
    assert_eq!(
        policy["policy"]["leases"],
        json!({"limit_per_key": 1, "ttl_ms": 5000})
    );
    // A document means the same policy whatever was in force: search is back to 30.
    assert_eq!(policy["policy"]["limits"]["search"]["capacity_tokens"], 30);

    let bad = d.dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"limits": {"search": {"capacity_tokens": 0}}}"#).unwrap();
    let (code, out, err) = heidi_at(&d, &["policy", "apply", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{out} {err}");
    assert!(
        err.contains("INVALID_POLICY") && err.contains("limits.search.capacity_tokens"),
        "{err}"
    );
    assert_eq!(heidi_json(&d, &["policy", "get"])["version"], 3);
    let (code, _, err) = heidi_at(&d, &["policy", "apply", "/nonexistent/p.toml"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn limit_breaker_and_lease_subcommands() {
    let d = Daemon::start(&[]);
    let tiny = d.dir.path().join("tiny.toml");
    std::fs::write(
        &tiny,
        "[limits.search]\ncapacity_tokens = 2\n[limits.llm_call]\ncapacity_tokens = 9\n\
         [tiers.pro.limits.llm_call]\ncapacity_tokens = 4\n[breakers.cli]\nfailure_threshold = 1\n",
    )
    .unwrap();
    ok(&d, &["policy", "apply", tiny.to_str().unwrap()]);

    let check = heidi_json(&d, &["limit", "check", "u1", "--operation", "search"]);
    assert_eq!(
        (check["allowed"].clone(), check["remaining"].clone()),
        (json!(true), json!(2))
    );
    for left in [1, 0] {
        let r = heidi_json(&d, &["limit", "consume", "u1", "--operation", "search"]);
        assert_eq!(r["remaining"], left);
    }
    let (code, out, err) = heidi_at(&d, &["limit", "consume", "u1", "--operation", "search"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("RATE_LIMITED"), "{err}");
    let denied: Value = {
        let (code, out, _) = heidi_at(
            &d,
            &["--json", "limit", "consume", "u1", "--operation", "search"],
        );
        assert_eq!(code, 1);
        serde_json::from_str(out.trim()).unwrap()
    };
    assert!(denied["retry_after_ms"].as_u64().unwrap() > 0, "{denied}");
    let other = heidi_json(&d, &["limit", "consume", "u1", "--cost", "3"]);
    assert_eq!(
        (other["operation"].clone(), other["remaining"].clone()),
        (json!("other"), json!(27))
    );
    let llm = ["limit", "consume", "u2", "--operation", "llm_call"];
    let pro = heidi_json(&d, &[&llm[..], &["--tier", "pro"]].concat());
    assert_eq!(
        (pro["limit"].clone(), pro["tier"].clone()),
        (json!(4), json!("pro"))
    );
    let top = heidi_json(&d, &llm);
    assert_eq!((top["limit"].clone(), top.get("tier")), (json!(9), None));
    let (code, _, err) = heidi_at(&d, &[&llm[..], &["--tier", "gold"]].concat());
    assert_eq!(code, 1);
    assert!(err.contains("params.tier: unknown tier"), "{err}");

    let acquired = heidi_json(&d, &["breaker", "acquire", "cli"]);
    let permit = acquired["permit"]
        .as_str()
        .expect("permit is a decimal string")
        .to_owned();
    let out = ok(
        &d,
        &[
            "breaker",
            "record",
            "cli",
            &permit,
            "success",
            "--duration-ms",
            "3",
        ],
    );
    assert!(out.contains("\"recorded\": \"counted\""), "{out}");
    let permit = heidi_json(&d, &["breaker", "acquire", "cli"])["permit"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = heidi_json(&d, &["breaker", "record", "cli", &permit, "failure"]);
    assert_eq!(
        (r["recorded"].clone(), r["state"].clone()),
        (json!("counted"), json!("open"))
    );
    let (code, _, err) = heidi_at(&d, &["breaker", "acquire", "cli"]);
    assert_eq!(code, 1);
    assert!(err.contains("CIRCUIT_OPEN"), "{err}");

    let lease = heidi_json(&d, &["lease", "acquire", "k1"]);
    let id = lease["lease_id"]
        .as_str()
        .expect("lease_id is a decimal string")
        .to_owned();
    assert_eq!(
        (lease["active"].clone(), lease["limit"].clone()),
        (json!(1), json!(5))
    );
    let refreshed = heidi_json(&d, &["lease", "refresh", "k1", &id]);
    assert_eq!(refreshed["lease_id"], id.as_str());
    assert!(ok(&d, &["lease", "release", "k1", &id]).contains("\"released\": true"));
    let (code, _, err) = heidi_at(&d, &["lease", "release", "k1", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("LEASE_NOT_FOUND"), "{err}");
}

#[test]
fn journal_health_and_idempotency_subcommands() {
    let d = Daemon::start(&[]);
    let appended = heidi_json(
        &d,
        &[
            "journal",
            "append",
            "cli_note",
            "hello from the cli",
            "--level",
            "warning",
        ],
    );
    assert!(appended["hash"].as_str().unwrap().len() == 64, "{appended}");
    let policy = d.dir.path().join("p.json");
    std::fs::write(&policy, "{}").unwrap();
    ok(&d, &["policy", "apply", policy.to_str().unwrap()]);
    let out = ok(&d, &["journal", "tail", "-n", "2"]);
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{out}");
    assert_eq!(
        (
            events[0]["event_type"].clone(),
            events[0]["level"].clone(),
            events[0]["stage"].clone()
        ),
        (json!("cli_note"), json!("warning"), json!("client"))
    );
    assert_eq!(
        (events[1]["event_type"].clone(), events[1]["stage"].clone()),
        (json!("policy_applied"), json!("kernel"))
    );
    let (code, _, _) = heidi_at(&d, &["journal", "tail", "-n", "0"]);
    assert_eq!(code, 2);

    assert_eq!(
        heidi_json(&d, &["health", "report", "db", "--fail"])["consecutive_failures"],
        1
    );
    let agg = heidi_json(&d, &["health", "aggregate"]);
    assert_eq!(agg["checks"], json!([{"name": "db", "status": "healthy"}]));

    let begun = heidi_json(&d, &["idempotency", "begin", "job:1"]);
    let token = begun["token"].as_str().unwrap().to_owned();
    let digest = "ab".repeat(32);
    let done = heidi_json(
        &d,
        &[
            "idempotency",
            "complete",
            "job:1",
            &token,
            "--digest",
            &digest,
        ],
    );
    assert_eq!(done["status"], "remembered");
    assert_eq!(
        heidi_json(&d, &["idempotency", "begin", "job:1"])["digest"],
        digest.as_str()
    );
    let token = heidi_json(&d, &["idempotency", "begin", "job:2"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        heidi_json(
            &d,
            &["idempotency", "complete", "job:2", &token, "--failed"]
        )["status"],
        "released"
    );
}

#[test]
fn pipeline_subcommands_drive_the_pipeline() {
    // Mock stages that each take 10 ms; the boot run (collect) ends awaiting train_now.
    let d = Daemon::start_with_env(&[], None, &[("HEIDI_MOCK_SUBPROCESSES", "1")]);
    let idle_awaiting_train = || {
        let status = heidi_json(&d, &["status"]);
        status["pipeline"]["state"] == "IDLE" && status["pipeline"]["awaiting_train"] == true
    };
    let start = std::time::Instant::now();
    while !idle_awaiting_train() {
        assert!(
            start.elapsed() < DEADLINE,
            "the boot run never finished collecting"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, out, err) = heidi_at(&d, &["pipeline", "pause"]);
    assert_eq!(code, 1, "pause does not apply in IDLE: {out} {err}");
    assert!(err.contains("REFUSED"), "{err}");
    for args in [&["pipeline", "train-now"][..], &["pipeline", "stop"]] {
        let (code, out, err) = heidi_at(&d, args);
        assert_eq!(code, 0, "{args:?}: {out} {err}");
    }
    let (code, out, err) = heidi_at(&d, &["pipeline", "start", "--mode", "full"]);
    assert_eq!(code, 0, "{out} {err}");
    let (code, _, err) = heidi_at(&d, &["pipeline", "start"]);
    assert_eq!(code, 1, "a second start is refused");
    assert!(err.contains("REFUSED"), "{err}");
    let (code, out, err) = heidi_at(&d, &["pipeline", "reset"]);
    assert_eq!(code, 1, "reset applies only in ERROR: {out} {err}");
}

#[test]
fn status_with_no_flags_finds_the_daemon_through_the_environment() {
    let d = Daemon::start_in_runtime_dir(&[]);
    let runtime = d.runtime_dir().unwrap().to_owned();
    assert!(runtime.join("heidi-kernel.sock").exists());
    let (code, out, err) = run_cmd(
        heidi_bare()
            .env("XDG_RUNTIME_DIR", &runtime)
            .args(["--json", "status"]),
    );
    assert_eq!(code, 0, "{out} {err}");
    let status: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(status["pid"], d.pid());
    // HEIDI_KERNEL_SOCK wins over XDG_RUNTIME_DIR.
    let (code, out, err) = run_cmd(
        heidi_bare()
            .env("XDG_RUNTIME_DIR", "/nonexistent")
            .env("HEIDI_KERNEL_SOCK", &d.socket)
            .arg("status"),
    );
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains(&format!("\"pid\": {}", d.pid())), "{out}");
}

#[test]
fn daemon_down_exits_3() {
    let mut d = Daemon::start(&[]);
    ok(&d, &["ping"]);
    d.stop();
    for args in [
        &["status"][..],
        &["ping"],
        &["limit", "check", "k"],
        &["journal", "tail"],
    ] {
        let (code, out, err) = run_cmd(
            d.heidi()
                .env("HEIDI_KERNEL_RETRY_ATTEMPTS", "1")
                .env("HEIDI_KERNEL_RETRY_DELAY_MS", "10")
                .args(args),
        );
        assert_eq!(code, 3, "{args:?}: {out} {err}");
        assert!(
            err.contains("unavailable") && err.contains(d.socket.to_str().unwrap()),
            "{err}"
        );
    }
}

#[test]
fn token_from_a_file_or_the_environment_never_from_argv() {
    const TOKEN: &str = "cli-token-0123456789abcdef";
    let d = Daemon::start_with_env(&[], None, &[("HEIDI_HTTP_TOKEN", TOKEN)]);
    let endpoint = format!("http://127.0.0.1:{}", d.port);
    let file = d.dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let mode = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode;
    std::fs::set_permissions(&file, mode(0o600)).unwrap();
    let file = file.to_str().unwrap();
    let heidi_http = || {
        let mut cmd = heidi_bare();
        cmd.args(["--endpoint", &endpoint]);
        cmd
    };

    let (code, out, err) = run_cmd(heidi_http().args(["--token-file", file, "ping"]));
    assert_eq!(code, 0, "{out} {err}");
    let (code, out, err) = run_cmd(heidi_http().env("HEIDI_KERNEL_TOKEN", TOKEN).arg("ping"));
    assert_eq!(code, 0, "{out} {err}");

    let (code, out, err) = run_cmd(heidi_http().arg("ping"));
    assert_eq!(code, 1, "{out} {err}");
    assert!(
        err.contains("REFUSED") && err.contains("HEIDI_KERNEL_TOKEN"),
        "{err}"
    );
    let (code, out, err) = run_cmd(
        heidi_http()
            .env("HEIDI_KERNEL_TOKEN", "cli-token-wrong-0123456789")
            .args(["--json", "ping"]),
    );
    assert_eq!(code, 1, "{out} {err}");
    assert!(out.contains("refused the token sent"), "{out}");
    assert!(
        !out.contains("cli-token") && !err.contains("cli-token"),
        "{out} {err}"
    );

    // The token itself is no argument; a bad token file is a usage error that hides it.
    let (code, _, err) = run_cmd(heidi_http().args(["--token", TOKEN, "ping"]));
    assert_eq!(code, 2, "{err}");
    std::fs::set_permissions(file, mode(0o644)).unwrap();
    let (code, _, err) = run_cmd(heidi_http().args(["--token-file", file, "ping"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--token-file") && !err.contains("cli-token"),
        "{err}"
    );
}

/// A reader that goes away (`heidi journal tail | head -1`) ends `heidi` quietly with 141, as
/// a shell reports a process killed by `SIGPIPE`: no panic, nothing on stderr.
#[test]
fn a_closed_stdout_ends_heidi_quietly() {
    let d = Daemon::start(&[]);
    let mut cmd = d.heidi();
    cmd.args(["journal", "tail", "-n", "50"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take()); // the reader is gone before anything is written
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
