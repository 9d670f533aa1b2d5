//! Tests of the durable journal, the key file and `state.json`.

mod anchor;
mod append;
mod batching;
mod damage;
mod files;
mod restart;
mod segments;

use std::path::Path;
use std::time::{Duration, Instant};

use heidi_core::journal::{Seal, SealCheck, SealReport};
use tempfile::TempDir;

use super::{JournalConfig, load_or_create_key};
use crate::paths::{JOURNAL_FILE, SEALS_FILE};
use heidi_common::JournalEntry;

/// A fresh `OUT_DIR` (`<tmp>/out`) and key path (`<tmp>/keys/seal.key`).
fn setup() -> (TempDir, JournalConfig) {
    let tmp = tempfile::tempdir().unwrap();
    let config = JournalConfig::new(tmp.path().join("out"), tmp.path().join("keys/seal.key"));
    (tmp, config)
}

fn entry(i: usize) -> JournalEntry {
    JournalEntry::info("test", "tick", format!("entry {i}"))
}

fn journal_bytes(config: &JournalConfig) -> Vec<u8> {
    std::fs::read(config.dir.join(JOURNAL_FILE)).unwrap()
}

fn journal_lines(config: &JournalConfig) -> Vec<String> {
    String::from_utf8(journal_bytes(config))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn seal_records(config: &JournalConfig) -> Vec<Seal> {
    match std::fs::read(config.dir.join(SEALS_FILE)) {
        Ok(bytes) => bytes
            .split_inclusive(|b| *b == b'\n')
            .map(|r| Seal::parse(r).unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Verifies the journal against its seals with the core alone, as an auditor would.
fn verify_dir(config: &JournalConfig) -> SealReport {
    let key = load_or_create_key(&config.key_path).unwrap();
    let mut check = SealCheck::new(&key);
    if let Ok(bytes) = std::fs::read(config.dir.join(SEALS_FILE)) {
        for record in bytes.split_inclusive(|b| *b == b'\n') {
            check.add_record(record).unwrap();
        }
    }
    let mut verifier = check.verifier();
    verifier.feed(&journal_bytes(config)).unwrap();
    check.check(&verifier.finish().unwrap()).unwrap()
}

/// Waits until `cond` holds, failing after 10 s.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

fn append_raw(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}
