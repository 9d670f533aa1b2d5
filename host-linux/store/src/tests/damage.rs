//! Damage that must stop the open, with the line and the reason in the error.

use std::io::ErrorKind;

use super::*;
use crate::Journal;

fn closed_journal(lines: usize) -> (TempDir, JournalConfig) {
    let (tmp, config) = setup();
    let (journal, _) = Journal::open(config.clone()).unwrap();
    for i in 0..lines {
        journal.append_blocking(entry(i)).unwrap();
    }
    journal.close().unwrap();
    (tmp, config)
}

/// Opens, expecting a refusal that leaves the files untouched; returns the message.
pub(super) fn refused(config: &JournalConfig) -> String {
    let journal = std::fs::read(config.dir.join(JOURNAL_FILE)).ok();
    let seals = std::fs::read(config.dir.join(SEALS_FILE)).ok();
    let e = Journal::open(config.clone()).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
    assert_eq!(std::fs::read(config.dir.join(JOURNAL_FILE)).ok(), journal);
    assert_eq!(std::fs::read(config.dir.join(SEALS_FILE)).ok(), seals);
    e.to_string()
}

fn edit_journal(config: &JournalConfig, edit: impl FnOnce(&mut Vec<u8>)) {
    let path = config.dir.join(JOURNAL_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    edit(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

/// Byte offset of the start of 1-based `line`.
fn line_start(bytes: &[u8], line: usize) -> usize {
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(line - 2)
        .map_or(0, |(i, _)| i + 1)
}

#[test]
fn a_changed_message_byte_is_refused_at_the_next_line() {
    let (_tmp, config) = closed_journal(5);
    edit_journal(&config, |bytes| {
        let start = line_start(bytes, 2);
        let at = start
            + bytes[start..]
                .windows(7)
                .position(|w| w == b"entry 1")
                .unwrap();
        bytes[at] = b'E';
    });
    let msg = refused(&config);
    assert!(msg.contains("line 3") && msg.contains("prev_hash"), "{msg}");
}

#[test]
fn broken_json_is_refused_at_its_line() {
    let (_tmp, config) = closed_journal(5);
    edit_journal(&config, |bytes| {
        let start = line_start(bytes, 4);
        bytes[start] = b'x';
    });
    let msg = refused(&config);
    assert!(msg.contains("line 4"), "{msg}");
}

#[test]
fn an_altered_seal_mac_is_refused() {
    let (_tmp, config) = closed_journal(3);
    let path = config.dir.join(SEALS_FILE);
    let mut seals = std::fs::read(&path).unwrap();
    let mac = seals.windows(7).position(|w| w == b"\"mac\":\"").unwrap() + 7;
    seals[mac] = if seals[mac] == b'0' { b'1' } else { b'0' };
    std::fs::write(&path, seals).unwrap();
    let msg = refused(&config);
    assert!(
        msg.contains("seal record 1") && msg.contains("MAC"),
        "{msg}"
    );
}

#[test]
fn another_key_is_refused() {
    let (tmp, mut config) = closed_journal(3);
    config.key_path = tmp.path().join("keys/other.key");
    let msg = refused(&config);
    assert!(msg.contains("wrong MAC"), "{msg}");
}

#[test]
fn a_cut_sealed_tail_is_refused() {
    let (_tmp, config) = closed_journal(3);
    edit_journal(&config, |bytes| {
        let start = line_start(bytes, 3);
        bytes.truncate(start);
    });
    let msg = refused(&config);
    assert!(msg.contains("tail cut"), "{msg}");
}

#[test]
fn a_deleted_journal_with_seals_is_refused() {
    let (_tmp, config) = closed_journal(2);
    std::fs::remove_file(config.dir.join(JOURNAL_FILE)).unwrap();
    let msg = refused(&config);
    assert!(msg.contains("tail cut"), "{msg}");
}

#[test]
fn garbage_after_the_last_line_is_not_a_torn_line() {
    let (_tmp, config) = closed_journal(2);
    append_raw(&config.dir.join(JOURNAL_FILE), b"not json\n");
    let msg = refused(&config);
    assert!(msg.contains("line 3"), "{msg}");
}

#[test]
fn a_too_long_line_followed_by_a_newline_is_refused() {
    let (_tmp, config) = closed_journal(2);
    let mut junk = vec![b'x'; 20_000];
    junk.extend_from_slice(b"\n{\"another\":\"line\"}\n");
    append_raw(&config.dir.join(JOURNAL_FILE), &junk);
    let msg = refused(&config);
    assert!(msg.contains("line 3: line too long"), "{msg}");
}

#[test]
fn a_too_long_unterminated_line_after_a_newline_is_refused() {
    // The newline comes first, then a long segment: the first segment is refused as it is.
    let (_tmp, config) = closed_journal(2);
    let mut junk = vec![0u8; 100];
    junk.push(b'\n');
    junk.extend_from_slice(&[0u8; 20_000]);
    append_raw(&config.dir.join(JOURNAL_FILE), &junk);
    let msg = refused(&config);
    assert!(msg.contains("line 3"), "{msg}");
}
