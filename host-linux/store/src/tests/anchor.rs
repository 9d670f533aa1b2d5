//! The anchor beside the seal key: written after seals, checked at open.

use heidi_core::journal::Anchor;

use super::damage::refused;
use super::*;
use crate::{Journal, anchor_path, read_anchor};

fn anchor_file(config: &JournalConfig) -> std::path::PathBuf {
    anchor_path(&config.key_path, &config.dir.join(JOURNAL_FILE)).unwrap()
}

/// The anchor record, parsed and authenticated; `None` if there is no anchor file.
fn anchor(config: &JournalConfig) -> Option<Anchor> {
    let record = read_anchor(&anchor_file(config)).unwrap()?;
    let a = Anchor::parse(&record).unwrap();
    assert!(a.is_authentic(&load_or_create_key(&config.key_path).unwrap()));
    Some(a)
}

fn write_lines(config: &JournalConfig, n: usize) {
    let (journal, _) = Journal::open(config.clone()).unwrap();
    for i in 0..n {
        journal.append_blocking(entry(i)).unwrap();
    }
    journal.close().unwrap();
}

/// Keeps the first `keep` lines of `name` in `OUT_DIR`.
fn keep_lines(config: &JournalConfig, name: &str, keep: usize) {
    let path = config.dir.join(name);
    let bytes = std::fs::read(&path).unwrap();
    let kept: Vec<u8> = bytes
        .split_inclusive(|b| *b == b'\n')
        .take(keep)
        .flatten()
        .copied()
        .collect();
    std::fs::write(&path, kept).unwrap();
}

#[test]
fn the_anchor_lies_beside_the_key_and_names_the_last_seal() {
    let (_tmp, config) = setup();
    let (journal, report) = Journal::open(config.clone()).unwrap();
    let path = anchor_file(&config);
    assert_eq!(report.anchor, path);
    assert_eq!(path.parent(), config.key_path.parent());
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("journal-") && name.ends_with(".anchor") && name.len() == 47,
        "{name}"
    );
    // A new journal has no seal yet, so no anchor.
    assert_eq!(anchor(&config), None);
    for i in 0..3 {
        journal.append_blocking(entry(i)).unwrap();
    }
    journal.close().unwrap();
    let last = seal_records(&config).pop().unwrap();
    let a = anchor(&config).unwrap();
    assert_eq!(
        (a.run_id(), a.lines(), a.last_hash()),
        (last.run_id(), 3, last.last_hash())
    );
}

#[test]
fn the_anchor_follows_the_seals_while_the_journal_runs() {
    let (_tmp, mut config) = setup();
    config.seal_every_lines = 1;
    let (journal, _) = Journal::open(config.clone()).unwrap();
    for i in 0..5 {
        journal.append_blocking(entry(i)).unwrap();
    }
    // No close: the anchor catches up within ANCHOR_INTERVAL on its own.
    wait_until("the anchor over line 5", || {
        anchor(&config).is_some_and(|a| a.lines() == 5)
    });
    journal.close().unwrap();
}

#[test]
fn seals_cut_back_behind_the_anchor_are_refused_until_accepted() {
    let (_tmp, mut config) = setup();
    config.seal_every_lines = 1;
    write_lines(&config, 6);
    assert_eq!(anchor(&config).unwrap().lines(), 6);
    keep_lines(&config, SEALS_FILE, 1);
    keep_lines(&config, JOURNAL_FILE, 4);
    // The journal matches its one seal: only the anchor tells.
    assert_eq!(verify_dir(&config).sealed_lines, 1);
    let before = std::fs::read(anchor_file(&config)).unwrap();
    let msg = refused(&config);
    assert!(
        msg.contains("behind its anchor")
            && msg.contains(&anchor_file(&config).display().to_string())
            && msg.contains("seals cover 1 lines but the anchor records a seal over 6")
            && msg.contains("--accept-unsealed-journal"),
        "{msg}"
    );
    assert_eq!(std::fs::read(anchor_file(&config)).unwrap(), before);

    config.accept_unsealed = true;
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert!(
        report
            .anchor_accepted
            .as_deref()
            .is_some_and(|why| why.contains("seals cover 1 lines")),
        "{report:?}"
    );
    let lines = journal_lines(&config);
    assert!(
        lines[4].contains("\"event_type\":\"journal_anchor_accepted\"")
            && lines[4].contains("\"anchored_lines\":6"),
        "{}",
        lines[4]
    );
    // Anchored anew at the open, after its seal.
    assert_eq!(anchor(&config).unwrap().lines(), 5);
    journal.close().unwrap();
    config.accept_unsealed = false;
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!(report.anchor_accepted, None);
    journal.close().unwrap();
}

#[test]
fn a_removed_journal_and_seals_are_behind_the_anchor() {
    let (_tmp, config) = setup();
    write_lines(&config, 3);
    std::fs::remove_file(config.dir.join(JOURNAL_FILE)).unwrap();
    std::fs::remove_file(config.dir.join(SEALS_FILE)).unwrap();
    let msg = refused(&config);
    assert!(msg.contains("seals cover 0 lines"), "{msg}");
}

#[test]
fn seals_of_the_same_length_but_another_history_diverge() {
    let (_tmp, config) = setup();
    write_lines(&config, 3);
    let anchored = std::fs::read(anchor_file(&config)).unwrap();
    let run_id = anchor(&config).unwrap().run_id().to_owned();
    // Another journal of the same run and length, sealed with the same key, in its place.
    for name in [JOURNAL_FILE, SEALS_FILE] {
        std::fs::remove_file(config.dir.join(name)).unwrap();
    }
    std::fs::remove_file(anchor_file(&config)).unwrap();
    let mut same_run = config.clone();
    same_run.run_id = Some(run_id);
    let (journal, _) = Journal::open(same_run).unwrap();
    for i in 0..3 {
        journal.append_blocking(entry(100 + i)).unwrap();
    }
    journal.close().unwrap();
    std::fs::write(anchor_file(&config), &anchored).unwrap();
    let msg = refused(&config);
    assert!(
        msg.contains("no seal record over line 3 matches the anchor"),
        "{msg}"
    );
}

#[test]
fn a_forged_or_malformed_anchor_is_refused() {
    let (_tmp, config) = setup();
    write_lines(&config, 3);
    let path = anchor_file(&config);
    let good = std::fs::read_to_string(&path).unwrap();
    // Made without the key: claims fewer lines, with a MAC that cannot match.
    std::fs::write(&path, good.replace("\"lines\":3,", "\"lines\":2,")).unwrap();
    assert!(refused(&config).contains("wrong MAC"));
    std::fs::write(&path, "not an anchor").unwrap();
    assert!(refused(&config).contains("malformed"));
    std::fs::write(&path, "x".repeat(10_000)).unwrap();
    assert!(refused(&config).contains("malformed"));
}

#[test]
fn temp_files_of_an_interrupted_anchor_update_are_removed_at_open() {
    let (_tmp, config) = setup();
    write_lines(&config, 2);
    let path = anchor_file(&config);
    let name = path.file_name().unwrap().to_str().unwrap();
    let dir = path.parent().unwrap();
    let stale = dir.join(format!(".{name}.4242.abcd.tmp"));
    let other = dir.join(".someone-else.tmp");
    std::fs::write(&stale, b"half").unwrap();
    std::fs::write(&other, b"keep").unwrap();
    let (journal, _) = Journal::open(config.clone()).unwrap();
    assert!(!stale.exists());
    assert!(other.exists());
    journal.close().unwrap();
}

#[test]
fn a_missing_anchor_is_created_at_open() {
    let (_tmp, config) = setup();
    write_lines(&config, 3);
    std::fs::remove_file(anchor_file(&config)).unwrap();
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!(report.anchor_accepted, None);
    assert_eq!(anchor(&config).unwrap().lines(), 3);
    journal.close().unwrap();
}

#[test]
fn a_seal_that_failed_is_never_anchored() {
    // The anchor follows a durable seal only: a seal whose write failed (as one cut short by
    // a crash) must leave the anchor behind, or the next start would refuse a journal nobody
    // touched.
    let (_tmp, config) = setup();
    let (journal, _) = Journal::open(config.clone()).unwrap();
    journal.break_seals();
    journal.append_blocking(entry(0)).unwrap();
    assert!(journal.close().is_err(), "the first seal failed");
    assert_eq!(seal_records(&config).len(), 0);
    assert_eq!(anchor(&config), None);
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!((report.lines, report.anchor_accepted), (1, None));
    journal.close().unwrap();
    assert_eq!(anchor(&config).unwrap().lines(), 1);
}
