//! The naive durability baseline: one journal-sized line written and `fdatasync`ed per event,
//! to the same filesystem as the daemon's journal, so group commit is compared in one run.

use super::latency::{Latencies, Summary};
use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

/// Most bytes in one baseline line (the journal's own line limit is of this order).
pub const LINE_MAX_BYTES: usize = 64 * 1024;

/// Appends `events` lines of `line_bytes` (newline included) to a new file in `dir`, with an
/// `fdatasync` after each, and removes the file. Latency is per write + sync.
pub fn run(dir: &Path, events: u64, line_bytes: usize) -> io::Result<Summary> {
    if events == 0 || !(2..=LINE_MAX_BYTES).contains(&line_bytes) {
        let message = format!("events must be ≥ 1 and line bytes in 2..={LINE_MAX_BYTES}");
        return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
    }
    let path = dir.join(format!("heidi-bench-fsync-{}.jsonl", std::process::id()));
    let result = append_synced(&path, events, line_bytes);
    let removed = std::fs::remove_file(&path);
    let summary = result?;
    removed?;
    Ok(summary)
}

fn append_synced(path: &Path, events: u64, line_bytes: usize) -> io::Result<Summary> {
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(path)?;
    let mut line = vec![b'x'; line_bytes];
    line[line_bytes - 1] = b'\n';
    let mut latencies = Latencies::new();
    let start = Instant::now();
    for _ in 0..events {
        let t0 = Instant::now();
        file.write_all(&line)?;
        file.sync_data()?;
        latencies.record(t0.elapsed());
    }
    Ok(Summary::new(&latencies, events, 0, start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_each_event_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let s = run(dir.path(), 5, 100).unwrap();
        assert_eq!((s.requests, s.errors), (5, 0));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn limits_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(run(dir.path(), 0, 100).is_err());
        assert!(run(dir.path(), 1, 1).is_err());
        assert!(run(dir.path(), 1, LINE_MAX_BYTES + 1).is_err());
        assert!(run(dir.path(), 1, LINE_MAX_BYTES).is_ok());
        assert!(run(&dir.path().join("missing"), 1, 100).is_err());
    }
}
