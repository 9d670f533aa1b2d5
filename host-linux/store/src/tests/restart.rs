//! Restart: the chain resumes, a torn tail is cut and journaled, run ids.

use super::damage::refused;
use super::*;
use crate::Journal;

fn write_and_close(config: &JournalConfig, n: usize) -> String {
    let (journal, _) = Journal::open(config.clone()).unwrap();
    for i in 0..n {
        journal.append_blocking(entry(i)).unwrap();
    }
    journal.close().unwrap();
    journal.run_id().to_owned()
}

#[test]
fn restart_resumes_the_chain() {
    let (_tmp, config) = setup();
    let run_id = write_and_close(&config, 3);
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!(report.run_id, run_id);
    assert!(!report.created);
    assert_eq!(
        (report.lines, report.sealed_lines, report.cut_bytes),
        (3, 3, 0)
    );
    assert_eq!(journal.tail(2), journal_lines(&config)[1..].to_vec());
    assert_eq!(journal.append_blocking(entry(3)).unwrap().line, 4);
    journal.close().unwrap();
    let report = verify_dir(&config);
    assert_eq!((report.sealed_lines, report.unsealed_lines), (4, 0));
}

#[test]
fn torn_tail_is_cut_journaled_and_verifies() {
    let (_tmp, config) = setup();
    write_and_close(&config, 3);
    let torn = b"{\"event_version\":\"1.0\",\"ts\":\"2026-";
    append_raw(&config.dir.join(JOURNAL_FILE), torn);
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!(report.cut_bytes, torn.len() as u64);
    assert_eq!((report.lines, report.sealed_lines), (4, 3));
    journal.close().unwrap();
    let lines = journal_lines(&config);
    assert_eq!(lines.len(), 4);
    let cut: serde_json::Value = serde_json::from_str(&lines[3]).unwrap();
    assert_eq!(cut["event_type"], "journal_truncated");
    assert_eq!(cut["stage"], "journal");
    assert_eq!(cut["level"], "warning");
    assert_eq!(cut["counters_delta"]["cut_bytes"], torn.len() as u64);
    assert!(
        cut["message"]
            .as_str()
            .unwrap()
            .contains(&torn.len().to_string())
    );
    assert_eq!(verify_dir(&config).sealed_lines, 4);
}

#[test]
fn a_zero_filled_tail_longer_than_a_line_is_cut_journaled_and_verifies() {
    // A crash in the middle of a large group-commit write can leave the file extended
    // with zeros (XFS, ext4 data=writeback): no `\n` follows, so it is a torn tail.
    let (_tmp, config) = setup();
    write_and_close(&config, 3);
    let before = journal_lines(&config);
    let zeros = vec![0u8; 200_000];
    append_raw(&config.dir.join(JOURNAL_FILE), &zeros);
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!(report.cut_bytes, zeros.len() as u64);
    assert_eq!((report.lines, report.sealed_lines), (4, 3));
    let tail = journal.tail(4);
    assert_eq!(
        tail[..3],
        before[..],
        "the tail kept the intact lines, no zeros"
    );
    journal.close().unwrap();
    let lines = journal_lines(&config);
    assert_eq!(lines[..3], before[..]);
    let cut: serde_json::Value = serde_json::from_str(&lines[3]).unwrap();
    assert_eq!(cut["event_type"], "journal_truncated");
    assert_eq!(cut["counters_delta"]["cut_bytes"], 200_000);
    assert!(!journal_bytes(&config).contains(&0), "no zero byte is left");
    assert_eq!(verify_dir(&config).sealed_lines, 4);
}

#[test]
fn a_zero_filled_tail_spanning_read_chunks_after_many_lines_is_cut() {
    // Enough lines that the zeros start deep in a later read chunk.
    let (_tmp, config) = setup();
    write_and_close(&config, 400);
    let size = journal_bytes(&config).len();
    assert!(
        size > 64 * 1024,
        "{size} bytes: the tail starts after the first chunk"
    );
    append_raw(&config.dir.join(JOURNAL_FILE), &vec![0u8; 70_000]);
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!((report.cut_bytes, report.lines), (70_000, 401));
    journal.close().unwrap();
    assert_eq!(verify_dir(&config).sealed_lines, 401);
}

#[test]
fn a_torn_first_line_is_cut_too() {
    let (_tmp, config) = setup();
    std::fs::create_dir_all(&config.dir).unwrap();
    std::fs::write(config.dir.join(JOURNAL_FILE), b"{\"event_ver").unwrap();
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!((report.cut_bytes, report.lines), (11, 1));
    journal.close().unwrap();
    assert_eq!(verify_dir(&config).sealed_lines, 1);
}

#[test]
fn a_torn_seal_record_is_cut_and_journaled() {
    let (_tmp, config) = setup();
    write_and_close(&config, 2);
    append_raw(
        &config.dir.join(SEALS_FILE),
        b"{\"seal_version\":\"1\",\"ru",
    );
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!(
        (report.lines, report.sealed_lines, report.cut_bytes),
        (3, 2, 0)
    );
    journal.close().unwrap();
    assert!(journal_lines(&config)[2].contains("\"event_type\":\"seals_truncated\""));
    assert_eq!(verify_dir(&config).sealed_lines, 3);
}

#[test]
fn a_deleted_or_emptied_seal_file_is_refused() {
    let (_tmp, config) = setup();
    write_and_close(&config, 3);
    std::fs::remove_file(config.dir.join(SEALS_FILE)).unwrap();
    let msg = refused(&config);
    assert!(
        msg.contains("3 lines but no seal record") && msg.contains("--accept-unsealed-journal"),
        "{msg}"
    );
    std::fs::write(config.dir.join(SEALS_FILE), b"").unwrap();
    let msg = refused(&config);
    assert!(msg.contains("no seal record"), "{msg}");
}

#[test]
fn an_unsealed_journal_accepted_by_the_operator_is_journaled_then_sealed() {
    let (_tmp, mut config) = setup();
    write_and_close(&config, 3);
    std::fs::remove_file(config.dir.join(SEALS_FILE)).unwrap();
    config.accept_unsealed = true;
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!(
        (report.lines, report.sealed_lines, report.unsealed_accepted),
        (5, 0, 3)
    );
    let lines = journal_lines(&config);
    assert!(
        lines[3].contains("\"event_type\":\"journal_unsealed_accepted\"")
            && lines[3].contains("\"unsealed_lines\":3"),
        "{}",
        lines[3]
    );
    // The anchor beside the key still named the seal over line 3: accepted and journaled
    // too.
    assert!(
        lines[4].contains("\"event_type\":\"journal_anchor_accepted\"")
            && lines[4].contains("\"sealed_lines\":0")
            && lines[4].contains("\"anchored_lines\":3"),
        "{}",
        lines[4]
    );
    // The open seals the journal at once, each acceptance included.
    let sealed: Vec<u64> = seal_records(&config).iter().map(|s| s.lines()).collect();
    assert_eq!(sealed, vec![4, 5]);
    journal.close().unwrap();
    // Sealed now: the next open needs no flag.
    config.accept_unsealed = false;
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!((report.unsealed_accepted, report.sealed_lines), (0, 5));
    journal.close().unwrap();
}

#[test]
fn the_first_line_is_sealed_at_once() {
    // A crash right after the first append must not leave an unsealed journal behind.
    let (_tmp, mut config) = setup();
    config.seal_interval = Duration::from_secs(3600);
    let (journal, _) = Journal::open(config.clone()).unwrap();
    journal.append_blocking(entry(0)).unwrap();
    wait_until("the first seal", || {
        seal_records(&config).iter().any(|s| s.lines() == 1)
    });
    journal.append_blocking(entry(1)).unwrap();
    journal.append_blocking(entry(2)).unwrap();
    // No close (as after kill -9): the journal has 3 lines and one seal, over line 1.
    let sealed: Vec<u64> = seal_records(&config).iter().map(|s| s.lines()).collect();
    assert_eq!(sealed, vec![1]);
    drop(journal);
    // Without a seal a 1-line journal (the crash window of the first line) still opens.
    let (_tmp2, config2) = setup();
    let (j, _) = Journal::open(config2.clone()).unwrap();
    j.append_blocking(entry(0)).unwrap();
    j.close().unwrap();
    std::fs::remove_file(config2.dir.join(SEALS_FILE)).unwrap();
    // A crash before the first seal leaves no anchor either (it follows the seal).
    let anchor = crate::anchor_path(&config2.key_path, &config2.dir.join(JOURNAL_FILE));
    std::fs::remove_file(anchor.unwrap()).unwrap();
    let (j, report) = Journal::open(config2.clone()).unwrap();
    assert_eq!((report.lines, report.unsealed_accepted), (1, 0));
    j.close().unwrap();
}

#[test]
fn run_ids_are_taken_generated_or_refused() {
    let (_tmp, mut config) = setup();
    let generated = write_and_close(&config, 1);
    assert!(
        generated.starts_with("run-") && generated.len() == 24,
        "{generated}"
    );
    // No RUN_ID: the journal's. The same RUN_ID: fine.
    assert_eq!(write_and_close(&config, 1), generated);
    config.run_id = Some(generated.clone());
    assert_eq!(write_and_close(&config, 1), generated);
    config.run_id = Some("other-run".into());
    let e = Journal::open(config.clone()).err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains("other-run") && e.to_string().contains(&generated),
        "{e}"
    );
    config.run_id = Some("bad run".into());
    let e = Journal::open(config.clone()).err().unwrap();
    assert!(e.to_string().contains("not a valid run id"), "{e}");
    assert_eq!(journal_lines(&config).len(), 3);
}

#[test]
fn a_configured_run_id_names_a_new_journal() {
    let (_tmp, mut config) = setup();
    config.run_id = Some("test_cpp_run_123".into());
    let (journal, report) = Journal::open(config.clone()).unwrap();
    assert_eq!(report.run_id, "test_cpp_run_123");
    journal.append_blocking(entry(0)).unwrap();
    journal.close().unwrap();
    assert!(journal_lines(&config)[0].contains("\"prev_hash\":\"test_cpp_run_123\""));
}
