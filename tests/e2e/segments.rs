//! Journal segments against a real `heidid`: with a tiny segment size and retention, `kill -9`
//! at random moments (rotations included) never stops a restart, every acknowledged event
//! that retention kept is where its reply said, deletions are journaled, and
//! `heidi journal verify OUT_DIR` passes, and fails naming a segment removed by hand.

mod common;

use common::*;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Rotate every ~2 KiB (a few lines), seal every 4 lines, keep 3 rotated segments.
const CONFIG: &str =
    "[journal]\nsegment_max_bytes = 2048\nseal_every_lines = 4\nretain_segments = 3\n";

/// `heidi journal verify DIR --key KEY`: (exit code, stdout + stderr).
fn verify_dir(d: &Daemon) -> (Option<i32>, String) {
    let out = heidi()
        .args(["journal", "verify"])
        .arg(&d.out_dir)
        .arg("--key")
        .arg(&d.key)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// Every kept line with its global line number.
fn kept_lines(d: &Daemon) -> Vec<(u64, String)> {
    let files = heidi_linux::store::journal_files(&d.out_dir).unwrap();
    let mut number = files.first().map_or(0, |f| f.1);
    let mut out = Vec::new();
    for (path, _) in files {
        for line in read_lines(&path) {
            number += 1;
            out.push((number, line));
        }
    }
    out
}

/// Appends from a thread until the daemon goes away; pushes (line, hash, message) of every
/// acknowledged event.
fn writer(
    socket: std::path::PathBuf,
    acked: Arc<Mutex<Vec<(u64, String, String)>>>,
    count: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for i in 0.. {
            let message = format!("event {i} of {}", acked.lock().unwrap().len());
            let Ok(mut s) = std::os::unix::net::UnixStream::connect(&socket) else {
                return;
            };
            s.set_read_timeout(Some(DEADLINE)).unwrap();
            write_request(
                &mut s,
                "JOURNAL_APPEND",
                json!({"event_type": "burst", "message": message}),
            );
            match read_frame(&mut s) {
                Some(reply) if reply["ok"] == true => {
                    let line = reply["line"].as_u64().unwrap();
                    let hash = reply["hash"].as_str().unwrap().to_owned();
                    acked.lock().unwrap().push((line, hash, message));
                    count.fetch_add(1, Ordering::Relaxed);
                }
                _ => return,
            }
        }
    })
}

#[test]
fn kill_9_at_random_moments_with_tiny_segments_restarts_and_verifies() {
    let mut d = Daemon::start_with_config(&[], Some(CONFIG));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let acked: Arc<Mutex<Vec<(u64, String, String)>>> = Arc::default();
    for round in 0..4u32 {
        let stop_at = 10 + (seed.rotate_left(round * 7) % 120) as usize;
        let count = Arc::new(AtomicUsize::new(0));
        let handle = writer(d.socket.clone(), acked.clone(), count.clone());
        let start = Instant::now();
        while count.load(Ordering::Relaxed) < stop_at {
            assert!(start.elapsed() < DEADLINE, "appends too slow");
            std::thread::yield_now();
        }
        d.kill9();
        handle.join().unwrap();
        // A crash is not tampering: the restart needs no flag, whatever the moment.
        d.spawn();
    }
    assert!(d.stop().success());
    let kept = kept_lines(&d);
    let first_kept = kept.first().unwrap().0;
    for (line, hash, message) in acked.lock().unwrap().iter() {
        if *line < first_kept {
            continue; // deleted by retention (journaled)
        }
        let i = (*line - first_kept) as usize;
        assert!(
            kept[i].1.contains(message.as_str()),
            "line {line}: {}",
            kept[i].1
        );
        let next: Value = serde_json::from_str(&kept[i + 1].1).unwrap();
        assert_eq!(next["prev_hash"], hash.as_str(), "hash of line {line}");
    }
    let segments = heidi_linux::store::list_segments(&d.out_dir).unwrap();
    assert!(!segments.is_empty() && segments.len() <= 3, "{segments:?}");
    assert!(
        segments[0] > 1,
        "retention deleted old segments: {segments:?}"
    );
    assert!(
        kept.iter()
            .any(|(_, l)| l.contains("\"event_type\":\"journal_segments_deleted\"")),
        "deletions are journaled"
    );
    let (code, text) = verify_dir(&d);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("segment(s)") && text.contains("anchor at"),
        "{text}"
    );

    // A segment removed by hand (not retention) fails, naming it.
    let oldest = heidi_linux::store::segment_file(segments[0]);
    std::fs::remove_file(d.out_dir.join(&oldest)).unwrap();
    let (code, text) = verify_dir(&d);
    assert_eq!(code, Some(4), "{text}");
    let next = heidi_linux::store::segment_file(segments[1]);
    assert!(text.contains(&next), "{text}");
}
