//! Segments: rotation by size and age, the chain across boundaries, crash windows of a
//! rotation, retention, the start-up check, `journal verify` over a directory, stale
//! temporary files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use heidi_core::journal::{MAX_LINE_BYTES, Seal, Verifier};

use super::*;
use crate::segments::is_state_temp;
use crate::state::temp_name;
use crate::verify::{VerifyError, VerifyOptions, VerifyReport, verify_journal};
use crate::{Journal, journal_files, list_segments, segment_file, segment_seals_file};

fn tiny() -> (TempDir, JournalConfig) {
    let (tmp, mut config) = setup();
    config.segment_max_bytes = JournalConfig::SEGMENT_MIN_BYTES;
    (tmp, config)
}

fn write(config: &JournalConfig, n: usize) {
    let (journal, _) = Journal::open(config.clone()).unwrap();
    for i in 0..n {
        journal.append_blocking(entry(i)).unwrap();
    }
    journal.close().unwrap();
}

fn verify_at(dir: &Path, key: &Path) -> Result<VerifyReport, VerifyError> {
    let opts = VerifyOptions::resolve(dir.to_path_buf(), None, Some(key.to_path_buf()), None);
    verify_journal(&opts, &mut |_| {})
}

fn verify(config: &JournalConfig) -> Result<VerifyReport, VerifyError> {
    verify_at(&config.dir, &config.key_path)
}

fn records(path: &Path) -> Vec<Seal> {
    std::fs::read(path)
        .unwrap()
        .split_inclusive(|b| *b == b'\n')
        .map(|r| Seal::parse(r).unwrap())
        .collect()
}

fn lines_of(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn events(config: &JournalConfig, event_type: &str) -> Vec<serde_json::Value> {
    journal_files(&config.dir)
        .unwrap()
        .iter()
        .flat_map(|(path, _)| lines_of(path))
        .filter(|l| l["event_type"] == event_type)
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn segment_error(result: Result<VerifyReport, VerifyError>) -> (String, String) {
    match result {
        Err(VerifyError::Segment { segment, why }) => (segment, why),
        other => panic!("expected a segment error, got {other:?}"),
    }
}

#[test]
fn segments_rotate_by_size_and_the_chain_runs_across_them() {
    let (_tmp, config) = tiny();
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!((report.segments, report.segment_start_line), (0, 0));
    for i in 0..40 {
        assert_eq!(
            journal.append_blocking(entry(i)).unwrap().line,
            i as u64 + 1
        );
    }
    journal.close().unwrap();
    let seqs = list_segments(&config.dir).unwrap();
    assert!(seqs.len() >= 5, "{seqs:?}");
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    for &seq in &seqs {
        let len = std::fs::metadata(config.dir.join(segment_file(seq)))
            .unwrap()
            .len();
        assert!(
            (1024..1024 + MAX_LINE_BYTES as u64).contains(&len),
            "{seq}: {len}"
        );
    }
    // A segment's seal file starts with the seal that ends the segment before it.
    for pair in seqs.windows(2) {
        let before = records(&config.dir.join(segment_seals_file(pair[0])));
        let after = records(&config.dir.join(segment_seals_file(pair[1])));
        assert_eq!(before.last(), after.first());
    }
    let last = records(&config.dir.join(segment_seals_file(*seqs.last().unwrap())));
    assert_eq!(last.last(), seal_records(&config).first());
    // Readers concatenate the files in name order: one chain from line 1.
    let mut names: Vec<PathBuf> = std::fs::read_dir(&config.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    names.sort();
    let files: Vec<PathBuf> = journal_files(&config.dir)
        .unwrap()
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(names, files);
    let mut verifier = Verifier::new();
    for name in &names {
        verifier.feed(&std::fs::read(name).unwrap()).unwrap();
    }
    assert_eq!(verifier.finish().unwrap().lines, 40);
    let report = verify(&config).unwrap();
    assert_eq!(report.lines, 40);
    assert_eq!(report.seals.unwrap().unsealed_lines, 0);
    assert!(report.anchored_lines.is_some(), "{report}");
}

#[test]
fn a_restart_checks_only_the_open_segment_and_continues_the_chain() {
    let (_tmp, config) = tiny();
    write(&config, 40);
    // Damage in an old segment is not read at start-up (`journal verify` finds it).
    let old = config.dir.join(segment_file(1));
    let text = std::fs::read_to_string(&old).unwrap();
    std::fs::write(&old, text.replacen("entry 1\"", "entry 9\"", 1)).unwrap();
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!(report.lines, 40);
    assert!(report.segment_start_line > 30, "{report:?}");
    assert_eq!(journal.append_blocking(entry(40)).unwrap().line, 41);
    journal.close().unwrap();
    let (segment, why) = segment_error(verify(&config));
    assert_eq!(segment, segment_file(1), "{why}");
    std::fs::write(&old, text).unwrap();
    assert_eq!(verify(&config).unwrap().lines, 41);
}

#[test]
fn the_open_segment_must_continue_the_last_rotated_one() {
    let (_tmp, config) = tiny();
    write(&config, 40);
    let last = *list_segments(&config.dir).unwrap().last().unwrap();
    for name in [segment_file(last), segment_seals_file(last)] {
        std::fs::remove_file(config.dir.join(name)).unwrap();
    }
    let e = Journal::open(config.clone()).err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
    assert!(e.to_string().contains("does not continue"), "{e}");
}

#[test]
fn a_crash_at_any_step_of_a_rotation_is_finished_at_the_next_start() {
    for step in 1..=4u8 {
        let (_tmp, config) = tiny();
        write(&config, 6);
        let (journal, _) = Journal::open(config.clone()).unwrap();
        journal.crash_rotation(step);
        let mut durable = 0;
        for i in 0..100 {
            match journal.append_blocking(entry(i)) {
                Ok(appended) => durable = appended.line,
                Err(_) => break,
            }
        }
        assert!(
            journal.close().is_err(),
            "step {step}: the crash fails the journal"
        );
        let (journal, report) = Journal::open(config.clone()).unwrap();
        assert!(report.lines >= durable, "step {step}: {report:?}");
        let finished = events(&config, "journal_rotation_finished").len();
        assert_eq!(finished, usize::from(step == 2 || step == 3), "step {step}");
        journal.append_blocking(entry(0)).unwrap();
        journal.close().unwrap();
        let report = verify(&config).unwrap_or_else(|e| panic!("step {step}: {e}"));
        assert!(report.lines > durable, "step {step}");
    }
}

#[test]
fn retention_keeps_n_segments_and_journals_each_deletion() {
    let (_tmp, mut config) = tiny();
    config.retain_segments = Some(2);
    write(&config, 60);
    let seqs = list_segments(&config.dir).unwrap();
    assert_eq!(seqs.len(), 2, "{seqs:?}");
    assert!(seqs[0] > 2, "{seqs:?}");
    let deleted = events(&config, "journal_segments_deleted");
    let through = deleted
        .iter()
        .map(|e| e["counters_delta"]["through_segment"].as_u64().unwrap())
        .max()
        .unwrap();
    assert_eq!(through + 1, seqs[0]);
    let report = verify(&config).unwrap();
    assert!(report.lines > 60, "{report}");
    assert!(report.to_string().contains("3 segment(s)"), "{report}");
    // One more deleted by hand is not retention.
    for name in [segment_file(seqs[0]), segment_seals_file(seqs[0])] {
        std::fs::remove_file(config.dir.join(name)).unwrap();
    }
    let (segment, why) = segment_error(verify(&config));
    assert_eq!(segment, segment_file(seqs[1]));
    assert!(why.contains("journal_segments_deleted"), "{why}");
}

#[test]
fn retention_by_age_keeps_the_newest_rotated_segment() {
    let (_tmp, mut config) = tiny();
    config.retain_age = Some(Duration::ZERO);
    write(&config, 30);
    let seqs = list_segments(&config.dir).unwrap();
    assert_eq!(seqs.len(), 1, "{seqs:?}");
    assert!(!events(&config, "journal_segments_deleted").is_empty());
    verify(&config).unwrap();
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!(report.segments, 1);
    journal.close().unwrap();
}

#[test]
fn an_idle_segment_rotates_by_age() {
    let (_tmp, mut config) = setup();
    config.segment_max_age = Some(Duration::from_millis(20));
    let (journal, _) = Journal::open(config.clone()).unwrap();
    journal.append_blocking(entry(0)).unwrap();
    wait_until("a rotation by age", || {
        !list_segments(&config.dir).unwrap().is_empty()
    });
    journal.append_blocking(entry(1)).unwrap();
    journal.close().unwrap();
    verify(&config).unwrap();
}

#[test]
fn verify_names_a_missing_reordered_or_cut_segment() {
    let (tmp, config) = tiny();
    write(&config, 60);
    verify(&config).unwrap();
    let case = |name: &str, damage: &dyn Fn(&Path)| {
        let dir = tmp.path().join(name);
        copy_dir(&config.dir, &dir);
        damage(&dir);
        segment_error(verify_at(&dir, &config.key_path))
    };
    let (segment, why) = case("missing", &|d| {
        std::fs::remove_file(d.join(segment_file(2))).unwrap();
    });
    assert_eq!(segment, segment_file(2));
    assert!(why.contains("missing"), "{why}");
    let (segment, why) = case("swapped", &|d| {
        for name in [segment_file, segment_seals_file] {
            std::fs::rename(d.join(name(2)), d.join("x")).unwrap();
            std::fs::rename(d.join(name(3)), d.join(name(2))).unwrap();
            std::fs::rename(d.join("x"), d.join(name(3))).unwrap();
        }
    });
    assert_eq!(segment, segment_file(2));
    assert!(why.contains("does not continue"), "{why}");
    let (segment, why) = case("cut", &|d| {
        let path = d.join(segment_file(2));
        let bytes = std::fs::read(&path).unwrap();
        let end = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .unwrap();
        std::fs::write(&path, &bytes[..=end]).unwrap();
    });
    assert_eq!(segment, segment_file(2));
    assert!(why.contains("seals"), "{why}");
}

#[test]
fn stale_temporary_files_are_removed_at_open_and_journaled() {
    let (_tmp, config) = setup();
    std::fs::create_dir_all(&config.dir).unwrap();
    let ours = [
        temp_name("policy.json", 4242, "0123abcd"),
        temp_name("state.json", 1, "deadbeef"),
    ];
    let theirs = [".policy.json.4242.xyz.tmp", "notes.tmp", ".policy.json.tmp"];
    for name in ours.iter().map(String::as_str).chain(theirs) {
        std::fs::write(config.dir.join(name), b"x").unwrap();
    }
    let (journal, report) = Journal::open(config.clone()).unwrap();
    journal.close().unwrap();
    assert_eq!(report.temp_files_removed, 2);
    for name in &ours {
        assert!(!config.dir.join(name).exists(), "{name}");
    }
    for name in theirs {
        assert!(config.dir.join(name).exists(), "{name}");
    }
    let removed = events(&config, "stale_temp_files_removed");
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["counters_delta"]["removed"], 2);
    // Nothing to remove: nothing journaled.
    let (journal, report) = Journal::open(config.clone()).unwrap();
    journal.close().unwrap();
    assert_eq!(report.temp_files_removed, 0);
    assert_eq!(events(&config, "stale_temp_files_removed").len(), 1);
}

#[test]
fn the_temp_name_pattern_matches_what_the_atomic_writer_writes() {
    assert!(is_state_temp(&temp_name(
        "policy.json",
        std::process::id(),
        "00ff00ff"
    )));
    for name in [
        ".a.1.00ff00f.tmp",
        ".a.x.00ff00ff.tmp",
        "..1.00ff00ff.tmp",
        ".a.1.00FF00FF.tmp",
    ] {
        assert!(!is_state_temp(name), "{name}");
    }
}

#[test]
fn segment_settings_are_bounded() {
    let (_tmp, mut config) = setup();
    config.segment_max_bytes = JournalConfig::SEGMENT_MIN_BYTES - 1;
    let e = Journal::open(config.clone()).err().unwrap();
    assert!(e.to_string().contains("segment_max_bytes"), "{e}");
    config.segment_max_bytes = JournalConfig::SEGMENT_MIN_BYTES;
    config.retain_segments = Some(0);
    let e = Journal::open(config).err().unwrap();
    assert!(e.to_string().contains("retain_segments"), "{e}");
}

#[test]
fn verify_without_a_key_checks_the_chain_across_segments_and_says_so() {
    let (_tmp, config) = tiny();
    write(&config, 30);
    let opts = |journal: PathBuf| VerifyOptions {
        journal,
        seals: None,
        seals_explicit: false,
        key: None,
        anchor: None,
    };
    let report = verify_journal(&opts(config.dir.join(JOURNAL_FILE)), &mut |_| {}).unwrap();
    assert_eq!(report.lines, 30);
    assert!(report.seals.is_none());
    assert!(report.to_string().contains("not authenticated"), "{report}");
    // A rotated segment named on the command line means its directory.
    let named = VerifyOptions::resolve(
        config.dir.join(segment_file(2)),
        None,
        Some(config.key_path.clone()),
        None,
    );
    assert_eq!(named.journal, config.dir.join(JOURNAL_FILE));
    assert_eq!(verify_journal(&named, &mut |_| {}).unwrap().lines, 30);
    // The chain alone still catches a swapped pair.
    for name in [segment_file, segment_seals_file] {
        std::fs::rename(config.dir.join(name(2)), config.dir.join("x")).unwrap();
        std::fs::rename(config.dir.join(name(3)), config.dir.join(name(2))).unwrap();
        std::fs::rename(config.dir.join("x"), config.dir.join(name(3))).unwrap();
    }
    let (segment, _) = segment_error(verify_journal(
        &opts(config.dir.join(JOURNAL_FILE)),
        &mut |_| {},
    ));
    assert_eq!(segment, segment_file(2));
}
