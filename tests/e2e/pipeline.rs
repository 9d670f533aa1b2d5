//! End to end: the pipeline runner inside `heidid`, with small real stage scripts (the
//! acceptance list of the pipeline runner): supervision limits, output capture and redaction, collect and full
//! runs, the governor, reset, control over HTTP, and recovery after `kill -9`.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const STAGES: [&str; 5] = ["generate", "validate", "unit_test", "train", "eval"];

/// A `[pipeline]` configuration running `bash <dir>/<stage>.sh` for each stage, with
/// `scripts` giving the body of some stages (the others succeed at once) and `extra` added
/// to the `[pipeline]` table and the stage tables (`stage_extra`).
fn pipeline_config(
    dir: &Path,
    scripts: &[(&str, &str)],
    extra: &str,
    stage_extra: &[(&str, &str)],
) -> String {
    // The watermarks are off: the machine's load never holds these stages, so a busy
    // machine cannot fail these tests (the governor's own test sets MAX_MEM_PCT, which wins).
    // A machine without a writable pids cgroup refuses every stage as root unless
    // `allow_uncontained` is set: these tests run there too (where a cgroup is writable it
    // changes nothing). The tests of that refusal set it themselves.
    let allow = if extra.contains("allow_uncontained") {
        ""
    } else {
        "allow_uncontained = true\n"
    };
    let mut toml = format!(
        "[pipeline]\nrepo_root = {:?}\nmax_cpu_pct = 0\nmax_mem_pct = 0\n{allow}{extra}\n",
        dir.display().to_string()
    );
    for stage in STAGES {
        let body = scripts
            .iter()
            .find(|(s, _)| *s == stage)
            .map_or("exit 0", |(_, b)| b);
        let path = dir.join(format!("{stage}.sh"));
        std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
        let more = stage_extra
            .iter()
            .filter(|(s, _)| *s == stage)
            .map(|(_, e)| format!("{e}\n"))
            .collect::<String>();
        toml.push_str(&format!(
            "[pipeline.stages.{stage}]\ncommand = [\"bash\", {:?}]\n{more}",
            path.display().to_string()
        ));
    }
    toml
}

/// A daemon whose stages are the given scripts.
fn daemon(scripts: &[(&str, &str)], extra: &str, stage_extra: &[(&str, &str)]) -> Daemon {
    daemon_env(scripts, extra, stage_extra, &[])
}

fn daemon_env(
    scripts: &[(&str, &str)],
    extra: &str,
    stage_extra: &[(&str, &str)],
    env: &[(&str, &str)],
) -> Daemon {
    let dir = tempfile::tempdir().unwrap().keep();
    let config = pipeline_config(&dir, scripts, extra, stage_extra);
    Daemon::start_with_env(&[], Some(&config), env)
}

fn status(d: &Daemon) -> Value {
    let (code, body) = d.http_get("/api/v1/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Reads `read` until it satisfies `done` (polling, within 30 s); returns it.
fn wait_for(what: &str, read: impl Fn() -> Value, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let v = read();
        if done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never reached {what}: {v}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Waits until the pipeline status satisfies `done`.
fn wait_status(d: &Daemon, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_for(&format!("pipeline {what}"), || status(d), done)
}

/// Waits until `state.json` satisfies `done` (it is written just after the status is
/// published); returns it.
fn wait_state_file(d: &Daemon, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let read = || {
        let text = std::fs::read_to_string(d.out_dir.join("state.json")).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    wait_for(&format!("state.json {what}"), read, done)
}

fn events(d: &Daemon) -> Vec<Value> {
    read_lines(&d.journal())
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn event_types(d: &Daemon) -> Vec<String> {
    events(d)
        .iter()
        .filter(|e| e["stage"] != "daemon")
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect()
}

fn verify(d: &Daemon) {
    let (code, out, err) = run_cmd(
        heidi()
            .args(["journal", "verify", "--key"])
            .arg(&d.key)
            .arg(d.journal()),
    );
    assert_eq!(code, 0, "journal verify failed: {out}{err}");
}

fn stage_output(d: &Daemon) -> Value {
    events(d)
        .into_iter()
        .find(|e| e["event_type"] == "stage_output")
        .expect("a stage_output event")
}

#[test]
fn collect_run_idles_then_train_now_runs_train_and_eval_into_round_2() {
    let d = daemon(&[], "", &[]);
    let s = wait_status(&d, "IDLE awaiting train_now", |s| {
        s["state"] == "IDLE" && s["awaiting_train"] == true
    });
    assert_eq!(s["round"], 1);
    assert_eq!(s["mode"], "collect");
    let (code, body) = d.http_post("/api/v1/action/train_now", "");
    assert_eq!(code, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["status"], "train initiated", "{reply}");
    assert!(reply["pipeline"]["state"].is_string(), "{reply}");
    wait_status(&d, "round 2", |s| {
        s["round"] == 2 && s["state"] == "IDLE" && s["awaiting_train"] == true
    });
    let stages: Vec<String> = events(&d)
        .iter()
        .filter(|e| e["event_type"] == "stage_start")
        .map(|e| e["stage"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        stages,
        [
            "generate", "validate", "train", "eval", "generate", "validate"
        ],
        "collect, train_now (finalize + eval), then round 2 collects"
    );
    for e in events(&d).iter().filter(|e| e["event_type"] == "stage_end") {
        assert!(e["usage_delta"]["memory_mb_delta"].is_i64(), "{e}");
        assert!(e["usage_delta"]["cpu_pct"].is_u64(), "{e}");
    }
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(d.out_dir.join("state.json")).unwrap())
            .unwrap();
    assert_eq!(state["round"], 2, "{state}");
    // The command is journaled with its caller, the HTTP peer.
    let control: Vec<String> = events(&d)
        .iter()
        .filter(|e| e["event_type"] == "pipeline_control")
        .map(|e| e["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(control.len(), 1, "{control:?}");
    let by_http = "PIPELINE_TRAIN_NOW accepted (by http 127.0.0.1:";
    assert!(control[0].starts_with(by_http), "{control:?}");
    verify(&d);
}

#[test]
fn train_now_that_does_not_apply_is_409_with_the_reason() {
    let d = daemon(&[("generate", "sleep 30")], "", &[]);
    wait_status(&d, "COLLECTING", |s| s["state"] == "COLLECTING");
    let (code, body) = d.http_post("/api/v1/action/train_now", "");
    assert_eq!(code, 409, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["code"], "REFUSED", "{reply}");
    // A refused command changed nothing and is not journaled.
    assert!(
        !events(&d)
            .iter()
            .any(|e| e["event_type"] == "pipeline_control")
    );
    assert!(!reply["message"].as_str().unwrap().is_empty());
    let framed = d.call("PIPELINE_TRAIN_NOW", json!({}));
    assert_eq!(framed["code"], "REFUSED", "{framed}");
    let stopped = d.call("PIPELINE_STOP", json!({}));
    assert_eq!(stopped["ok"], true, "{stopped}");
    wait_status(&d, "IDLE after stop", |s| s["state"] == "IDLE");
}

#[test]
fn full_mode_three_rounds_completes_and_the_journal_verifies() {
    let d = daemon(&[], "mode = \"full\"\nrounds = 3", &[]);
    let s = wait_status(&d, "complete", |s| s["state"] == "IDLE" && s["round"] == 3);
    assert_eq!(s["status"], "completed", "{s}");
    wait_state_file(&d, "completed", |f| f["status"] == "completed");
    let types = event_types(&d);
    assert_eq!(
        types.last().map(String::as_str),
        Some("pipeline_complete"),
        "{types:?}"
    );
    let evals = types.iter().filter(|t| *t == "stage_end").count();
    assert_eq!(
        evals,
        3 * 4,
        "generate, validate, train, eval for each of 3 rounds"
    );
    verify(&d);
}

#[test]
fn a_stage_ignoring_sigterm_is_killed_at_timeout_plus_grace_with_its_group() {
    let d = daemon(
        &[(
            "generate",
            "echo $$ > \"$OUT_DIR/pgid\"; trap '' TERM; (trap '' TERM; sleep 60) & while :; do sleep 0.05; done",
        )],
        "",
        &[("generate", "timeout_s = 1")],
    );
    let s = wait_status(&d, "ERROR", |s| s["state"] == "ERROR");
    assert!(
        s["last_error"].as_str().unwrap().contains("timeout")
            || s["last_error"].as_str().unwrap().contains("timed out"),
        "{s}"
    );
    let all = events(&d);
    let ts = |t: &str| {
        let e = all
            .iter()
            .find(|e| e["event_type"] == t && e["stage"] == "generate")
            .unwrap_or_else(|| panic!("no {t}"));
        chrono_ms(e["ts"].as_str().unwrap())
    };
    let took = ts("stage_end") - ts("stage_start");
    assert!(
        (2_000..=4_000).contains(&took),
        "timeout 1 s + grace 2 s, ±1 s: took {took} ms"
    );
    let pgid: i32 = std::fs::read_to_string(d.out_dir.join("pgid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gone =
        rustix::process::test_kill_process_group(rustix::process::Pid::from_raw(pgid).unwrap());
    assert!(gone.is_err(), "process group {pgid} still has members");
}

/// Milliseconds since the epoch of a journal `ts` (`2026-02-20T07:45:38.307Z`).
fn chrono_ms(ts: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| ts[r].parse::<i64>().unwrap();
    let days = n(8..10);
    ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000 + n(20..23)
}

#[test]
fn a_fork_bomb_is_contained_by_the_process_limit() {
    let d = daemon(
        &[(
            "generate",
            "python3 -c '
import os, sys, time
n = 0
try:
    while n < 2000:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError as e:
    print(\"forked\", n, \"then\", e.strerror, flush=True)
    sys.exit(3)
print(\"forked\", n, \"unbounded\", flush=True)
'",
        )],
        "",
        &[("generate", "processes = 32")],
    );
    wait_status(&d, "ERROR", |s| s["state"] == "ERROR");
    let message = stage_output(&d)["message"].as_str().unwrap().to_owned();
    let forked: u32 = message
        .split_whitespace()
        .skip_while(|w| *w != "forked")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no fork count in {message:?}"));
    assert!(
        forked < 32,
        "forked {forked} children under a limit of 32: {message}"
    );
    assert!(!message.contains("unbounded"), "{message}");
}

#[test]
fn a_stage_over_its_address_space_limit_fails_and_the_run_errors() {
    let d = daemon(
        &[("validate", "python3 -c 'bytearray(1 << 31)'")],
        "",
        &[("validate", "address_space_mb = 256")],
    );
    let s = wait_status(&d, "ERROR", |s| s["state"] == "ERROR");
    assert!(
        s["last_error"].as_str().unwrap().contains("validate"),
        "{s}"
    );
    let out = stage_output(&d);
    assert!(
        out["message"].as_str().unwrap().contains("MemoryError"),
        "{out}"
    );
    assert!(event_types(&d).contains(&"pipeline_error".to_owned()));
}

#[test]
fn a_stage_printing_100_mb_keeps_the_daemon_bounded_and_journals_a_redacted_tail() {
    let d = daemon(
        &[(
            "generate",
            "head -c 100000000 /dev/zero | tr '\\0' 'x'; echo; echo 'last words sk-proj-AbCdEf0123456789AbCdEf0123456789'; exit 1",
        )],
        "",
        &[],
    );
    wait_status(&d, "ERROR", |s| s["state"] == "ERROR");
    let hwm_kb: u64 = std::fs::read_to_string(format!("/proc/{}/status", d.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert!(hwm_kb < 64 * 1024, "the daemon's peak RSS was {hwm_kb} kB");
    let out = stage_output(&d);
    let message = out["message"].as_str().unwrap();
    assert!(message.contains("[OPENAI_KEY]"), "{out}");
    assert!(!message.contains("AbCdEf0123456789"), "{out}");
    let dropped = out["counters_delta"]["output_dropped_bytes"]
        .as_i64()
        .unwrap();
    assert!(dropped > 99_000_000, "{out}");
}

#[test]
fn secrets_printed_by_a_failing_stage_are_redacted_in_the_journal() {
    let openai = "sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp";
    let github = "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
    let d = daemon(
        &[(
            "generate",
            &format!("echo \"using key {openai}\"; echo \"token {github}\" >&2; exit 1"),
        )],
        "",
        &[],
    );
    wait_status(&d, "ERROR", |s| s["state"] == "ERROR");
    let text = std::fs::read_to_string(d.journal()).unwrap();
    assert!(!text.contains(openai) && !text.contains(github), "{text}");
    assert!(!text.contains("sk-proj-Zz9") && !text.contains("ghp_AbC"));
    assert!(text.contains("[OPENAI_KEY]"), "{text}");
    assert!(text.contains("[GITHUB_TOKEN]"), "{text}");
    verify(&d);
}

#[test]
fn no_cpu_headroom_and_no_waiting_budget_throttles_then_errors() {
    let d = daemon_env(
        &[],
        "",
        &[],
        // Memory use is at least 1 % on any running machine: the stage is held.
        &[("MAX_MEM_PCT", "1"), ("MAX_WALL_TIME_MINUTES", "0")],
    );
    let s = wait_status(&d, "ERROR", |s| s["state"] == "ERROR");
    let types = event_types(&d);
    let at = |t: &str| types.iter().position(|x| x == t);
    let (throttled, error) = (at("pipeline_throttled"), at("pipeline_error"));
    assert!(
        throttled.is_some() && error.is_some() && throttled < error,
        "{types:?}"
    );
    assert_eq!(s["state"], "ERROR");
}

#[test]
fn error_then_reset_then_start_runs_again() {
    let d = daemon(
        &[(
            "generate",
            "if [ ! -e \"$OUT_DIR/failed-once\" ]; then touch \"$OUT_DIR/failed-once\"; exit 1; fi",
        )],
        "",
        &[],
    );
    let s = wait_status(&d, "ERROR", |s| s["state"] == "ERROR");
    assert_eq!(s["status"], "error", "{s}");
    let file = wait_state_file(&d, "ERROR", |f| f["state"] == "ERROR");
    assert_eq!(
        file["status"], "error",
        "a dashboard reading status sees the error"
    );
    assert_eq!(file["pid"], d.pid(), "{file}");
    let refused = d.call("PIPELINE_START", json!({}));
    assert_eq!(
        refused["code"], "REFUSED",
        "start is refused in ERROR: {refused}"
    );
    let reset = d.call("PIPELINE_RESET", json!({}));
    assert_eq!(reset["ok"], true, "{reset}");
    let started = d.call("PIPELINE_START", json!({"mode": "collect"}));
    assert_eq!(started["ok"], true, "{started}");
    assert_eq!(started["status"]["status"], "running", "{started}");
    wait_status(&d, "IDLE awaiting train_now", |s| {
        s["state"] == "IDLE" && s["awaiting_train"] == true
    });
    wait_state_file(&d, "awaiting_train", |f| f["status"] == "awaiting_train");
    verify(&d);
}

#[test]
fn kill_9_during_a_stage_is_recorded_as_interrupted_after_restart() {
    let mut d = daemon(
        &[("validate", "touch \"$OUT_DIR/validate-running\"; sleep 30")],
        "",
        &[],
    );
    let started = Instant::now();
    while !d.out_dir.join("validate-running").exists() {
        assert!(started.elapsed() < DEADLINE, "the validate stage never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    d.kill9();
    d.spawn();
    let s = wait_status(&d, "ERROR", |s| s["state"] == "ERROR");
    assert!(
        s["last_error"].as_str().unwrap().contains("interrupted"),
        "{s}"
    );
    let errors: Vec<Value> = events(&d)
        .into_iter()
        .filter(|e| e["event_type"] == "pipeline_error")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let starts = events(&d)
        .iter()
        .filter(|e| e["event_type"] == "stage_start" && e["stage"] == "validate")
        .count();
    assert_eq!(
        starts,
        1,
        "nothing was re-run: {:?}",
        read_lines(&d.journal())
    );
    verify(&d);
}

#[test]
fn stages_do_not_get_the_bearer_tokens() {
    let http_token = "stage-must-not-see-0123456789";
    let client_token = "client-token-not-for-stages-0123";
    let script = r#"env > "$OUT_DIR/env.tmp" && mv "$OUT_DIR/env.tmp" "$OUT_DIR/stage-env.txt""#;
    let d = daemon_env(
        &[("generate", script)],
        "",
        &[],
        &[
            ("HEIDI_HTTP_TOKEN", http_token),
            ("HEIDI_KERNEL_TOKEN", client_token),
            ("HEIDI_STAGE_ENV_MARKER", "passed-on"),
        ],
    );
    let file = d.out_dir.join("stage-env.txt");
    let start = Instant::now();
    while !file.exists() {
        assert!(start.elapsed() < DEADLINE, "the generate stage never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let env = std::fs::read_to_string(&file).unwrap();
    assert!(
        env.contains("HEIDI_STAGE_ENV_MARKER=passed-on"),
        "the rest of the environment is passed on: {env}"
    );
    for secret in [
        "HEIDI_HTTP_TOKEN",
        "HEIDI_KERNEL_TOKEN",
        http_token,
        client_token,
    ] {
        assert!(!env.contains(secret), "{secret} reached the stage: {env}");
    }
}

/// Live (not zombie) processes whose initial environment holds `var=value`, but `except`.
fn processes_with_env(var: &str, value: &str, except: &[u32]) -> Vec<(u32, String)> {
    let needle = format!("{var}={value}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| !except.contains(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .unwrap_or_default()
                .split(|&b| b == 0)
                .any(|v| v == needle.as_bytes())
        })
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let state = stat[stat.rfind(')')? + 1..].split_whitespace().next()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (state != "Z").then_some((pid, cmdline))
        })
        .collect()
}

/// Whether process `pid` is gone or a zombie.
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat[stat.rfind(')').unwrap() + 1..]
            .trim_start()
            .starts_with('Z'),
    }
}

/// Waits (bounded by [`DEADLINE`]) until `done` holds.
fn poll(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A stage that forks a child, a `setsid` escaper and a `setsid` shell with a child of its
/// own, then waits; `kill -9` of the daemon while it runs; a restart. `env` is added to the
/// daemon's environment.
fn kill_9_leaves_nothing_of_the_stage(env: &[(&str, &str)]) {
    let mark = format!("e2e-orphans-{}-{:?}", std::process::id(), Instant::now());
    let mut env = env.to_vec();
    env.push(("HEIDI_E2E_ORPHAN_MARK", &mark));
    let script = "echo $$ > \"$OUT_DIR/leader.pid\"
sleep 6006 &
setsid sleep 6007 &
(setsid bash -c 'sleep 6008 & wait' &)
touch \"$OUT_DIR/validate-running\"
wait";
    let mut d = daemon_env(&[("validate", script)], "", &[], &env);
    let old_pid = d.pid();
    // The leader (bash), its child, the two escapers and the escaped shell's child (the
    // transient subshell and `setsid` before its `exec` must be gone: they are not counted).
    poll("the stage's five processes run", || {
        let running = processes_with_env("HEIDI_E2E_ORPHAN_MARK", &mark, &[old_pid]);
        let has = |cmd: &str| running.iter().any(|(_, c)| c.starts_with(cmd));
        running.len() == 5
            && [
                "sleep 6006",
                "sleep 6007",
                "bash -c sleep 6008",
                "sleep 6008",
            ]
            .iter()
            .all(|c| has(c))
    });
    let leader: u32 = std::fs::read_to_string(d.out_dir.join("leader.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let records: Vec<Value> = std::fs::read_dir(d.out_dir.join("running-stages"))
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["leader_pid"], leader, "{records:?}");
    let cgroup = records[0]["cgroup"].as_str().map(std::path::PathBuf::from);
    if let Some(dir) = &cgroup {
        assert!(dir.is_dir(), "{}", dir.display());
    }

    d.kill9();
    // The parent-death signal kills the leader at once, before any restart.
    poll("the stage's leader dies with the daemon", || dead(leader));
    let orphans = processes_with_env("HEIDI_E2E_ORPHAN_MARK", &mark, &[]);
    assert!(
        orphans.len() >= 4,
        "the stage's other processes outlive the daemon until the restart: {orphans:?}"
    );

    d.spawn();
    let s = wait_status(&d, "ERROR", |s| s["state"] == "ERROR");
    assert!(
        s["last_error"].as_str().unwrap().contains("interrupted"),
        "{s}"
    );
    let left = processes_with_env("HEIDI_E2E_ORPHAN_MARK", &mark, &[d.pid()]);
    assert!(
        left.is_empty(),
        "stage processes alive after the restart: {left:?}"
    );
    if let Some(dir) = &cgroup {
        assert!(!dir.exists(), "{} remains", dir.display());
        let prefix = format!("heidi-stage-{old_pid}-");
        let parent = std::fs::read_dir(dir.parent().unwrap()).unwrap();
        let stale: Vec<String> = parent
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&prefix))
            .collect();
        assert!(stale.is_empty(), "{stale:?}");
    }
    let all = events(&d);
    let kinds: Vec<&str> = all
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    let killed = kinds.iter().position(|k| *k == "stage_orphans_killed");
    let error = kinds.iter().position(|k| *k == "pipeline_error");
    assert!(killed.is_some() && killed < error, "{kinds:?}");
    let e = &all[killed.unwrap()];
    assert_eq!(
        (&e["stage"], &e["round"], &e["level"]),
        (&json!("validate"), &json!(1), &json!("warning")),
        "{e}"
    );
    let found = e["counters_delta"]["processes_found"].as_i64().unwrap();
    assert!(found >= 4, "{e}");
    assert_eq!(e["counters_delta"]["processes_killed"], found, "{e}");
    assert_eq!(
        e["counters_delta"]["cgroup_removed"],
        i64::from(cgroup.is_some()),
        "{e}"
    );
    assert_eq!(e["counters_delta"]["cgroup_left"], 0, "{e}");
    assert_eq!(
        std::fs::read_dir(d.out_dir.join("running-stages"))
            .unwrap()
            .count(),
        0,
        "the record is removed"
    );
    verify(&d);
}

#[test]
fn kill_9_during_a_stage_that_forks_and_escapes_leaves_nothing_after_restart() {
    kill_9_leaves_nothing_of_the_stage(&[]);
}

#[test]
fn kill_9_without_a_pids_cgroup_still_finds_the_setsid_escapers() {
    let no_cgroups = tempfile::tempdir().unwrap();
    let root = no_cgroups.path().to_str().unwrap();
    kill_9_leaves_nothing_of_the_stage(&[("HEIDI_TEST_CGROUP_ROOT", root)]);
}

#[test]
fn a_stage_that_cannot_be_contained_is_refused_unless_allowed() {
    let no_cgroups = tempfile::tempdir().unwrap();
    let env = [(
        "HEIDI_TEST_CGROUP_ROOT",
        no_cgroups.path().to_str().unwrap(),
    )];
    let script = [("generate", "touch \"$OUT_DIR/generate-ran\"")];
    let d = daemon_env(&script, "allow_uncontained = false", &[], &env);
    if !rustix::process::geteuid().is_root() {
        // Not root: RLIMIT_NPROC binds, and the stage runs.
        wait_status(&d, "IDLE", |s| {
            s["state"] == "IDLE" && s["awaiting_train"] == true
        });
        assert!(d.out_dir.join("generate-ran").exists());
        return;
    }
    let s = wait_status(&d, "ERROR", |s| s["state"] == "ERROR");
    assert!(
        !d.out_dir.join("generate-ran").exists(),
        "the stage never ran"
    );
    let why = stage_output(&d)["error"].as_str().unwrap().to_owned();
    assert!(why.contains("no writable pids cgroup"), "{why}");
    assert!(why.contains("allow_uncontained = true"), "{why}");
    assert!(
        s.to_string().contains("allow_uncontained = true"),
        "the status says why: {s}"
    );
    let kinds = event_types(&d);
    assert!(kinds.contains(&"pipeline_error".to_owned()), "{kinds:?}");
    assert!(
        !kinds.contains(&"stage_uncontained".to_owned()),
        "{kinds:?}"
    );
    let records = std::fs::read_dir(d.out_dir.join("running-stages")).map_or(0, |d| d.count());
    assert_eq!(records, 0, "the refused stage's record is removed");
    verify(&d);

    // Allowed: it runs, and the journal says it ran uncontained.
    let d = daemon_env(&script, "", &[], &env);
    wait_status(&d, "IDLE", |s| {
        s["state"] == "IDLE" && s["awaiting_train"] == true
    });
    assert!(d.out_dir.join("generate-ran").exists());
    let warnings: Vec<Value> = events(&d)
        .into_iter()
        .filter(|e| e["event_type"] == "stage_uncontained")
        .collect();
    assert_eq!(warnings.len(), 2, "generate and validate: {warnings:?}");
    assert_eq!(warnings[0]["level"], "warning");
    assert_eq!(warnings[0]["stage"], "generate");
    verify(&d);
}

/// A clean stop (SIGTERM) while a stage with a `setsid` escaper runs; `env` is added to the
/// daemon's environment.
fn a_clean_stop_leaves_nothing(env: &[(&str, &str)]) {
    let mark = format!("e2e-stop-{}-{:?}", std::process::id(), Instant::now());
    // The leader takes a moment to end after SIGTERM: shutdown must wait for it.
    let script = "trap 'sleep 0.5; exit 0' TERM\nsleep 6010 &\nsetsid sleep 6011 &\nwait";
    let mut env = env.to_vec();
    env.push(("HEIDI_E2E_ORPHAN_MARK", &mark));
    let mut d = daemon_env(&[("validate", script)], "", &[], &env);
    let pid = d.pid();
    poll("the stage's processes run", || {
        let running = processes_with_env("HEIDI_E2E_ORPHAN_MARK", &mark, &[pid]);
        let has = |cmd: &str| running.iter().any(|(_, c)| c.starts_with(cmd));
        has("sleep 6010") && has("sleep 6011")
    });
    assert!(d.stop().success());
    let left = processes_with_env("HEIDI_E2E_ORPHAN_MARK", &mark, &[]);
    assert!(left.is_empty(), "{left:?}");
    let records = std::fs::read_dir(d.out_dir.join("running-stages"))
        .unwrap()
        .count();
    assert_eq!(records, 0, "the record is removed after the clean-up");
}

#[test]
fn a_clean_stop_during_a_stage_leaves_no_process_and_no_record() {
    a_clean_stop_leaves_nothing(&[]);
}

#[test]
fn a_clean_stop_without_a_pids_cgroup_kills_the_setsid_escaper_too() {
    let no_cgroups = tempfile::tempdir().unwrap();
    let root = no_cgroups.path().to_str().unwrap();
    a_clean_stop_leaves_nothing(&[("HEIDI_TEST_CGROUP_ROOT", root)]);
}

#[test]
fn a_private_key_printed_by_a_failing_stage_never_reaches_the_journal() {
    // `cat key.pem; exit 1` with a key longer than the excerpt: its header falls outside
    // the tail, its body lines would not.
    let body: Vec<String> = (0..24)
        .map(|i| format!("FAKEkeyBODY{i:02}{}", "AbCd0123".repeat(6)))
        .collect();
    let key = format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
        body.join("\n")
    );
    let d = daemon(
        &[(
            "generate",
            &format!("cat <<'PEM'\n{key}\nPEM\necho after the key; exit 1"),
        )],
        "",
        &[],
    );
    wait_status(&d, "ERROR", |s| s["state"] == "ERROR");
    let text = std::fs::read_to_string(d.journal()).unwrap();
    assert!(!text.contains("FAKEkeyBODY"), "{text}");
    assert!(!text.contains("AbCd0123"), "{text}");
    let message = stage_output(&d)["message"].as_str().unwrap().to_owned();
    assert!(message.contains("[PRIVATE_KEY]"), "{message}");
    assert!(message.ends_with("after the key\n"), "{message}");
    verify(&d);
}

#[test]
fn a_long_last_line_is_cut_and_the_lines_before_it_stay() {
    let d = daemon(
        &[(
            "generate",
            "echo first; head -c 1000 /dev/zero | tr '\\0' q; exit 1",
        )],
        "",
        &[],
    );
    wait_status(&d, "ERROR", |s| s["state"] == "ERROR");
    let message = stage_output(&d)["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("first\nqqqq"), "{message:?}");
    assert!(message.ends_with("q…"), "{message:?}");
    assert!(message.chars().count() < 500, "{message:?}");
}
