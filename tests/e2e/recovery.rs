//! Crash recovery and journal verification against a real `heidid`: after `kill -9` in the
//! middle of a burst of acknowledged appends, a restart finds every acknowledged event, the
//! chain verifies and the tail is sealed; a torn tail is cut and the cut journaled; and
//! `heidi journal verify` rejects a changed byte and a cut last line.

mod common;

use common::*;
use heidi_core::journal::{SealCheck, SealKey};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The key the daemon sealed with, read by the daemon's own reader.
fn seal_key(path: &Path) -> SealKey {
    heidi_store::load_key(path).unwrap()
}

/// Verifies journal + seals with the core; returns (lines, sealed_lines).
fn verify(d: &Daemon) -> (u64, u64) {
    let mut check = SealCheck::new(&seal_key(&d.key));
    for record in read_lines(&d.seals()) {
        check.add_record(record.as_bytes()).expect("seal record");
    }
    let mut verifier = check.verifier();
    verifier
        .feed(&std::fs::read(d.journal()).unwrap())
        .expect("chain verifies");
    let verified = verifier.finish().expect("no torn tail");
    let report = check.check(&verified).expect("seals match");
    (verified.lines, report.sealed_lines)
}

#[test]
fn kill_9_mid_burst_loses_no_acknowledged_event() {
    let mut d = Daemon::start(&[]);
    let acked: Arc<Mutex<Vec<(u64, String, String)>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let socket = d.socket.clone();
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let (acked, count, socket) = (acked.clone(), count.clone(), socket.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    let message = format!("writer {t} event {i}");
                    let Ok(mut s) = std::os::unix::net::UnixStream::connect(&socket) else {
                        return;
                    };
                    s.set_read_timeout(Some(DEADLINE)).unwrap();
                    write_request(
                        &mut s,
                        "JOURNAL_APPEND",
                        json!({"event_type": "burst", "message": message}),
                    );
                    let Some(reply) = read_frame(&mut s) else {
                        return;
                    };
                    if reply["ok"] != true {
                        return;
                    }
                    let line = reply["line"].as_u64().unwrap();
                    acked.lock().unwrap().push((
                        line,
                        reply["hash"].as_str().unwrap().to_owned(),
                        message,
                    ));
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let start = Instant::now();
    while count.load(Ordering::Relaxed) < 400 {
        assert!(start.elapsed() < DEADLINE, "burst too slow");
        std::thread::yield_now();
    }
    d.kill9();
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 400);

    d.spawn();
    let lines = read_lines(&d.journal());
    for (line, hash, message) in &acked {
        let text = &lines[*line as usize - 1];
        assert!(
            text.contains(message.as_str()),
            "line {line} is not {message:?}: {text}"
        );
        // The next line (there always is one: the restart journals itself) chains to it.
        let next: Value = serde_json::from_str(&lines[*line as usize]).unwrap();
        assert_eq!(next["prev_hash"], hash.as_str(), "hash of line {line}");
    }
    let (_, sealed_after_restart) = verify(&d);
    // The restart's first line is its policy_loaded event.
    let before_restart = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("\"event_type\":\"policy_loaded\""))
        .nth(1)
        .unwrap()
        .0;
    assert!(
        sealed_after_restart >= before_restart as u64,
        "the recovered tail is sealed at restart"
    );

    assert!(d.stop().success());
    let (total, sealed) = verify(&d);
    assert_eq!(total, sealed, "everything sealed at shutdown");
}

#[test]
fn torn_tail_is_cut_and_the_cut_journaled() {
    let mut d = Daemon::start(&[]);
    d.call(
        "JOURNAL_APPEND",
        json!({"event_type": "before_crash", "message": "x"}),
    );
    d.kill9();
    let intact = read_lines(&d.journal()).len();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(d.journal())
        .unwrap();
    std::io::Write::write_all(&mut file, br#"{"event_version":"1.0","ts":"2026-"#).unwrap();
    drop(file);
    d.spawn();
    let lines = read_lines(&d.journal());
    assert!(
        lines[intact].contains("journal_truncated"),
        "{}",
        lines[intact]
    );
    assert!(d.stop().success());
    verify(&d);
}

#[test]
fn heidi_journal_verify_rejects_a_changed_byte_and_a_cut_line() {
    let mut d = Daemon::start(&[]);
    for i in 0..5 {
        d.call(
            "JOURNAL_APPEND",
            json!({"event_type": "note", "message": format!("n{i}")}),
        );
    }
    assert!(d.stop().success());
    // `heidi journal verify FILE` with the daemon's seals and key: (exit code, stdout+stderr).
    let verify = |file: &Path| {
        let out = heidi()
            .args(["journal", "verify"])
            .arg(file)
            .arg("--key")
            .arg(&d.key)
            .arg("--seals")
            .arg(d.seals())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = verify(&d.journal());
    assert_eq!(code, Some(0), "{text}");

    let original = std::fs::read(d.journal()).unwrap();
    let changed = d.dir.path().join("changed.jsonl");
    let mut bytes = original.clone();
    let at = bytes.iter().position(|b| *b == b'n').unwrap() + 200;
    bytes[at] ^= 0x01;
    std::fs::write(&changed, &bytes).unwrap();
    let (code, text) = verify(&changed);
    assert_eq!(code, Some(4), "verification failure: {text}");
    assert!(text.contains("line "), "names the line: {text}");

    let cut = d.dir.path().join("cut.jsonl");
    let keep = original[..original.len() - 1]
        .iter()
        .rposition(|b| *b == b'\n')
        .unwrap()
        + 1;
    std::fs::write(&cut, &original[..keep]).unwrap();
    let (code, text) = verify(&cut);
    assert_eq!(
        code,
        Some(4),
        "a cut last line is detected by the seal: {text}"
    );
}

#[test]
fn an_applied_policy_and_its_version_survive_a_restart() {
    let mut d = Daemon::start(&[]);
    let doc = json!({"limits": {"search": {"capacity_tokens": 7, "window_ms": 1000}}});
    for expected in [2, 3] {
        let applied = d.call("APPLY_POLICY", json!({"policy": doc}));
        assert_eq!(applied["version"], expected, "{applied}");
    }
    let before = d.call("GET_POLICY", json!({}));
    assert!(d.stop().success());
    d.spawn();
    assert_eq!(d.call("GET_POLICY", json!({})), before);
    assert_eq!(d.call("APPLY_POLICY", json!({"policy": doc}))["version"], 4);
    let journal = std::fs::read_to_string(d.journal()).unwrap();
    for v in 2..=4 {
        assert!(
            journal.contains(&format!("policy version {v} applied (sha256 ")),
            "version {v} journaled"
        );
    }
}

/// Cuts `path` to its first `keep` lines.
fn cut_to_lines(path: &Path, keep: usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let kept: String = text.split_inclusive('\n').take(keep).collect();
    std::fs::write(path, kept).unwrap();
}

/// `heidi journal verify JOURNAL --key KEY` (seals: the default, beside the journal):
/// (exit code, stdout + stderr).
fn verify_with_key(d: &Daemon) -> (Option<i32>, String) {
    let out = heidi()
        .args(["journal", "verify"])
        .arg(d.journal())
        .arg("--key")
        .arg(&d.key)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// A journal of 14 lines written through the daemon, which is then stopped.
fn fourteen_lines() -> Daemon {
    let mut d = Daemon::start(&[]);
    // Shutdown adds one line (daemon_stopped).
    let now = read_lines(&d.journal()).len();
    for i in now..13 {
        d.call(
            "JOURNAL_APPEND",
            json!({"event_type": "note", "message": format!("n{i}")}),
        );
    }
    assert!(d.stop().success());
    assert_eq!(read_lines(&d.journal()).len(), 14);
    d
}

#[test]
fn a_cut_journal_with_its_seal_file_deleted_is_refused_until_accepted() {
    let mut d = fourteen_lines();
    cut_to_lines(&d.journal(), 11);
    std::fs::remove_file(d.seals()).unwrap();

    let (code, text) = verify_with_key(&d);
    assert_eq!(code, Some(4), "verify reports the missing seals: {text}");
    assert!(text.contains("11 lines but no seal record"), "{text}");

    let (code, stderr) = d.start_refused(&[]);
    assert_eq!(code, Some(3), "heidid refuses: {stderr}");
    assert!(
        stderr.contains("no seal record") && stderr.contains("--accept-unsealed-journal"),
        "{stderr}"
    );
    // The refusal changed nothing.
    assert_eq!(read_lines(&d.journal()).len(), 11);
    assert!(!d.seals().exists() || std::fs::read(d.seals()).unwrap().is_empty());

    // The operator accepts it once: journaled, sealed, and the next start needs no flag.
    d.spawn_logged(&["--accept-unsealed-journal"]);
    let lines = read_lines(&d.journal());
    let accepted: Value = serde_json::from_str(&lines[11]).unwrap();
    assert_eq!(accepted["event_type"], "journal_unsealed_accepted");
    assert_eq!(accepted["level"], "warning");
    assert_eq!(accepted["counters_delta"]["unsealed_lines"], 11);
    assert!(d.stop().success());
    let (code, text) = verify_with_key(&d);
    assert_eq!(code, Some(0), "{text}");
    d.spawn();
    assert!(d.stop().success());
}

#[test]
fn a_cut_journal_with_its_seal_file_kept_is_refused() {
    let d = fourteen_lines();
    cut_to_lines(&d.journal(), 11);
    let (code, text) = verify_with_key(&d);
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("tail cut"), "{text}");
    let (code, stderr) = d.start_refused(&[]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("tail cut"), "{stderr}");
    // The flag for unsealed journals does not excuse a cut one.
    let (code, stderr) = d.start_refused(&["--accept-unsealed-journal"]);
    assert_eq!(code, Some(3), "{stderr}");
}

/// The journal's anchor file beside the key (`journal-<hash>.anchor`), as the daemon names it.
fn anchor_of(d: &Daemon) -> std::path::PathBuf {
    heidi_store::anchor_path(&d.key, &d.journal()).unwrap()
}

#[test]
fn a_cut_journal_with_its_latest_seals_removed_is_refused_until_accepted() {
    let mut d = fourteen_lines();
    // The anchor beside the key names the final seal, over all 14 lines.
    let anchor = anchor_of(&d);
    assert_eq!(anchor.parent(), d.key.parent());
    let record = std::fs::read_to_string(&anchor).unwrap();
    assert!(record.contains("\"lines\":14,"), "{record}");
    // The reviewer's cut: the journal to 11 lines, the seal file to its first record.
    cut_to_lines(&d.journal(), 11);
    let seals = read_lines(&d.seals());
    assert!(seals.len() >= 2, "{seals:?}");
    std::fs::write(d.seals(), format!("{}\n", seals[0])).unwrap();
    // Without the anchor this launders: the journal matches its one seal (over line 1).
    assert_eq!(verify(&d), (11, 1));

    let (code, text) = verify_with_key(&d);
    assert_eq!(code, Some(4), "verify reports the removed seals: {text}");
    assert!(
        text.contains("seals cover 1 lines but the anchor records a seal over 14")
            && text.contains(&anchor.display().to_string()),
        "{text}"
    );

    let (code, stderr) = d.start_refused(&[]);
    assert_eq!(code, Some(3), "heidid refuses: {stderr}");
    assert!(
        stderr.contains("seals cover 1 lines but the anchor records a seal over 14")
            && stderr.contains(&anchor.display().to_string())
            && stderr.contains("--accept-unsealed-journal"),
        "{stderr}"
    );
    // The refusal changed nothing.
    assert_eq!(read_lines(&d.journal()).len(), 11);
    assert_eq!(read_lines(&d.seals()).len(), 1);
    assert_eq!(std::fs::read_to_string(&anchor).unwrap(), record);

    // The operator accepts it once: journaled, sealed, anchored anew; then no flag is needed.
    d.spawn_logged(&["--accept-unsealed-journal"]);
    let lines = read_lines(&d.journal());
    let accepted: Value = serde_json::from_str(&lines[11]).unwrap();
    assert_eq!(accepted["event_type"], "journal_anchor_accepted");
    assert_eq!(accepted["level"], "warning");
    assert_eq!(accepted["counters_delta"]["sealed_lines"], 1);
    assert_eq!(accepted["counters_delta"]["anchored_lines"], 14);
    assert!(d.stop().success());
    let (code, text) = verify_with_key(&d);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("anchor at"), "{text}");
    d.spawn();
    assert!(d.stop().success());
}

#[test]
fn kill_9_at_a_random_moment_never_makes_the_anchor_refuse_a_restart() {
    // A seal per batch: the anchor is replaced as often as it may be, and lags the seals.
    let config = "[journal]\nseal_every_lines = 1\n";
    let mut d = Daemon::start_with_config(&[], Some(config));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    for round in 0..3u32 {
        let stop_at = 20 + (seed.rotate_left(round * 7) % 200) as usize;
        append_then_kill9(&mut d, "e", stop_at, |_, _, _| {});
        // No flag: a crash is not tampering.
        d.spawn();
        assert!(anchor_of(&d).is_file());
    }
    assert!(d.stop().success());
    let (code, text) = verify_with_key(&d);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("anchor at"), "{text}");
}

/// `policy.json` as JSON.
fn policy_file(d: &Daemon) -> Value {
    serde_json::from_slice(&std::fs::read(d.out_dir.join("policy.json")).unwrap()).unwrap()
}

fn search_capacity(d: &Daemon) -> Value {
    d.call("GET_POLICY", json!({}))["policy"]["limits"]["search"]["capacity_tokens"].clone()
}

#[test]
fn a_forged_policy_file_is_refused_until_accepted() {
    let mut d = Daemon::start(&[]);
    let doc = json!({"limits": {"search": {"capacity_tokens": 7, "window_ms": 1000}}});
    assert_eq!(d.call("APPLY_POLICY", json!({"policy": doc}))["version"], 2);
    assert!(d.stop().success());
    // The reproduced forgery: a capacity of 4e9 under a correct plain sha256.
    let mut file = policy_file(&d);
    assert_eq!(file["mac"].as_str().map(str::len), Some(64), "{file}");
    file["policy"]["limits"]["search"]["capacity_tokens"] = json!(4_000_000_000u64);
    let forged = heidi_daemon::kernel::Policy::from_json(&file["policy"]).unwrap();
    file["sha256"] = json!(forged.digest_hex());
    file.as_object_mut().unwrap().remove("mac");
    std::fs::write(d.out_dir.join("policy.json"), file.to_string()).unwrap();

    let (code, stderr) = d.start_refused(&[]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("policy.json") && stderr.contains("no MAC"),
        "names the file and the reason: {stderr}"
    );
    let journal_before = read_lines(&d.journal()).len();

    // The operator accepts it once: loaded, journaled as a warning, and keyed.
    d.spawn_logged(&["--accept-policy-file"]);
    assert_eq!(search_capacity(&d), 4_000_000_000u64);
    let loaded: Value = serde_json::from_str(&read_lines(&d.journal())[journal_before]).unwrap();
    assert_eq!(
        (&loaded["event_type"], &loaded["level"], &loaded["stage"]),
        (&json!("policy_loaded"), &json!("warning"), &json!("kernel"))
    );
    assert!(
        loaded["message"]
            .as_str()
            .unwrap()
            .contains("accepted by --accept-policy-file"),
        "{loaded}"
    );
    assert!(d.stop().success());
    assert_eq!(policy_file(&d)["mac"].as_str().map(str::len), Some(64));
    // From then on it is the journal's policy: no flag needed.
    d.spawn();
    assert_eq!(search_capacity(&d), 4_000_000_000u64);
    assert!(d.stop().success());
}

#[test]
fn a_policy_journaled_but_not_yet_moved_is_promoted_after_kill_9() {
    let mut d = Daemon::start(&[]);
    let apply = |d: &Daemon, capacity: u64| {
        let doc = json!({"limits": {"search": {"capacity_tokens": capacity, "window_ms": 1000}}});
        d.call("APPLY_POLICY", json!({"policy": doc}))["version"].clone()
    };
    assert_eq!(apply(&d, 7), 2);
    let version_2 = std::fs::read(d.out_dir.join("policy.json")).unwrap();
    assert_eq!(apply(&d, 8), 3);
    d.kill9();
    // The files as a kill -9 leaves them between journaling version 3 and moving its file:
    // policy.next.json holds version 3, policy.json still version 2.
    std::fs::rename(
        d.out_dir.join("policy.json"),
        d.out_dir.join("policy.next.json"),
    )
    .unwrap();
    std::fs::write(d.out_dir.join("policy.json"), version_2).unwrap();
    let lines_before = read_lines(&d.journal()).len();
    d.spawn();
    assert_eq!(search_capacity(&d), 8);
    assert_eq!(d.call("GET_POLICY", json!({}))["version"], 3);
    assert!(!d.out_dir.join("policy.next.json").exists());
    assert_eq!(policy_file(&d)["version"], 3);
    let journal = read_lines(&d.journal());
    assert!(
        journal[lines_before..]
            .iter()
            .any(|l| l.contains("policy_loaded") && l.contains("policy.next.json")),
        "{journal:?}"
    );
    assert!(d.stop().success());
}

/// `IDEMPOTENCY_BEGIN` for `key`.
fn begin(d: &Daemon, key: &str) -> Value {
    d.call("IDEMPOTENCY_BEGIN", json!({"key": key}))
}

#[test]
fn idempotency_records_survive_kill_9_and_expire_by_the_wall_clock() {
    let mut d = Daemon::start(&[]);
    let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let mut tokens = Vec::new();
    for key in ["order:1", "order:2", "order:3"] {
        let started = begin(&d, key);
        assert_eq!(started["status"], "started", "{started}");
        tokens.push(started["token"].as_str().unwrap().to_owned());
    }
    for (key, token) in [("order:1", &tokens[0]), ("order:2", &tokens[1])] {
        let params = json!({"key": key, "token": token, "outcome": "success",
                            "digest": digest, "response": format!("{{\"id\":\"{key}\"}}")});
        let done = d.call("IDEMPOTENCY_COMPLETE", params);
        assert_eq!(done["status"], "remembered", "{done}");
    }
    let before = begin(&d, "order:1");
    assert_eq!(before["status"], "done", "{before}");
    d.kill9();

    // order:2's TTL has passed while the daemon was down (its expiry moved into the past),
    // and the crash left half a line at the end.
    let path = d.out_dir.join("idempotency.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut edited = String::new();
    for line in text.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        if v["key"] == "order:2" && v["state"] == "done" {
            v["expires_at_ms"] = (now_ms - 1).into();
        }
        edited.push_str(&format!("{v}\n"));
    }
    edited.push_str("{\"state\":\"done\",\"key\":\"order:9\",\"tok");
    std::fs::write(&path, edited).unwrap();
    d.spawn();

    let after = begin(&d, "order:1");
    assert_eq!(after["status"], "done", "{after}");
    assert_eq!(after["digest"], digest);
    assert_eq!(after["response"], "{\"id\":\"order:1\"}");
    let left = |v: &Value| v["expires_in_ms"].as_u64().unwrap();
    assert!(left(&after) <= left(&before), "{before} {after}");
    assert!(left(&after) > 86_400_000 - 60_000, "{after}");
    assert_eq!(
        begin(&d, "order:2")["status"],
        "started",
        "past its TTL: new"
    );
    assert_eq!(
        begin(&d, "order:9")["status"],
        "started",
        "the torn line was cut"
    );
    // order:3 was in progress: still owned by the caller that began it, who completes it.
    let busy = begin(&d, "order:3");
    assert_eq!(busy["code"], "IN_PROGRESS", "{busy}");
    let params =
        json!({"key": "order:3", "token": tokens[2], "outcome": "success", "digest": digest});
    let done = d.call("IDEMPOTENCY_COMPLETE", params);
    assert_eq!(done["status"], "remembered", "{done}");
    assert_eq!(begin(&d, "order:3")["digest"], digest);
}

#[test]
fn more_idempotency_records_than_the_table_holds_load_keeping_the_newest() {
    let mut d = Daemon::start_with_config(&[], Some("[capacity]\nidempotency_records = 8\n"));
    assert!(d.stop().success());
    let far = u64::MAX / 2;
    let mut text = String::new();
    for i in 0..100 {
        let line = json!({"state": "done", "key": format!("k{i}"), "token": "7",
                          "digest": "ab".repeat(32), "completed_at_ms": 1, "expires_at_ms": far});
        text.push_str(&format!("{line}\n"));
    }
    std::fs::write(d.out_dir.join("idempotency.jsonl"), text).unwrap();
    let mut cmd = d.command();
    cmd.env("HEIDI_LOG", "info")
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    d.child = Some(child);
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(&d.socket).is_err() {
        assert!(start.elapsed() < DEADLINE, "heidid never listened");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(begin(&d, "k99")["status"], "done", "the newest is kept");
    assert!(d.stop().success());
    let mut log = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut log).unwrap();
    assert!(
        log.contains("more idempotency records than the table holds"),
        "{log}"
    );
    let kept = std::fs::read_to_string(d.out_dir.join("idempotency.jsonl")).unwrap();
    assert!(kept.lines().count() <= 8, "{kept}");
}

/// What an attacker with write access to `OUT_DIR` (or a mistake) may put in place of a file.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// A FIFO nobody writes to: opening or reading it would block start-up forever.
    Fifo,
    /// A symlink to `/dev/zero`: reading it would never end.
    DevZero,
}

fn plant(path: &Path, what: Hostile) {
    let _ = std::fs::remove_file(path);
    match what {
        Hostile::Fifo => rustix::fs::mkfifoat(
            rustix::fs::CWD,
            path,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap(),
        Hostile::DevZero => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
    }
}

#[test]
fn a_fifo_or_dev_zero_in_place_of_policy_json_or_the_idempotency_records_refuses_start_up() {
    let mut d = Daemon::start(&[]);
    let doc = json!({"limits": {"search": {"capacity_tokens": 7, "window_ms": 1000}}});
    assert_eq!(d.call("APPLY_POLICY", json!({"policy": doc}))["version"], 2);
    assert!(d.stop().success());
    for name in ["policy.json", "idempotency.jsonl"] {
        let path = d.out_dir.join(name);
        let kept = std::fs::read(&path).ok();
        for what in [Hostile::Fifo, Hostile::DevZero] {
            plant(&path, what);
            // start_refused gives up (and fails) after DEADLINE: a hang cannot pass.
            let (code, stderr) = d.start_refused(&[]);
            assert_eq!(code, Some(3), "{name} {what:?}: {stderr}");
            assert!(
                stderr.contains(name) && stderr.contains("not a regular file"),
                "{name} {what:?}: names the file and the reason: {stderr}"
            );
        }
        std::fs::remove_file(&path).unwrap();
        if let Some(bytes) = kept {
            std::fs::write(&path, bytes).unwrap();
        }
    }
    // policy.next.json only matters when its change was journaled: one that cannot be read is
    // discarded with a warning, and start-up goes on.
    let next = d.out_dir.join("policy.next.json");
    for what in [Hostile::Fifo, Hostile::DevZero] {
        plant(&next, what);
        d.spawn();
        assert_eq!(search_capacity(&d), 7, "{what:?}");
        assert!(d.stop().success());
        assert!(next.symlink_metadata().is_err(), "{what:?}: discarded");
    }
}

/// Deleting `policy.json` after an `APPLY_POLICY` would roll the daemon back to its
/// configured policy: the start is refused (exit 3) until the operator accepts it once, and
/// the acceptance is journaled.
#[test]
fn a_deleted_policy_file_is_refused_until_accepted() {
    let mut d = Daemon::start(&[]);
    let doc = json!({"limits": {"search": {"capacity_tokens": 7, "window_ms": 1000}}});
    assert_eq!(d.call("APPLY_POLICY", json!({"policy": doc}))["version"], 2);
    assert!(d.stop().success());
    std::fs::remove_file(d.out_dir.join("policy.json")).unwrap();

    let (code, stderr) = d.start_refused(&[]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("policy.json")
            && stderr.contains("missing")
            && stderr.contains("version 2"),
        "names the file and the reason: {stderr}"
    );
    d.spawn_logged(&["--accept-policy-file"]);
    assert_ne!(search_capacity(&d), json!(7), "the configured policy");
    let got = d.call("GET_POLICY", json!({}));
    assert_eq!(got["version"], 1, "{got}");
    let last = read_lines(&d.journal())
        .into_iter()
        .rev()
        .map(|l| serde_json::from_str::<Value>(&l).unwrap())
        .find(|l| l["event_type"] == "policy_loaded")
        .unwrap();
    assert_eq!(last["level"], "warning", "{last}");
    assert!(d.stop().success());
    // Accepted once: the configuration's policy is in force, no flag needed again.
    d.spawn();
    assert!(d.stop().success());
}
