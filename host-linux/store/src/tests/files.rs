//! The seal key file and atomic state files.

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;

use heidi_core::journal::{LineHash, Seal};

use super::*;
use crate::{Journal, KEY_FILE_MAX_BYTES, write_state_atomic};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn write_key(path: &Path, len: usize, mode: u32) {
    std::fs::write(path, vec![7u8; len]).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn key_is_created_0600_and_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a/b/seal.key");
    let first = load_or_create_key(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 32);
    let again = load_or_create_key(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let seal = Seal::new(&first, "r", 1, LineHash::of(b"x\n")).unwrap();
    assert!(seal.is_authentic(&again));
}

#[test]
fn a_key_others_may_read_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("seal.key");
    write_key(&path, 32, 0o644);
    let e = load_or_create_key(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(e.to_string().contains("0644"), "{e}");
    write_key(&path, 32, 0o640);
    assert!(load_or_create_key(&path).is_err());
}

#[test]
fn key_length_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("seal.key");
    for (len, ok) in [
        (31, false),
        (32, true),
        (KEY_FILE_MAX_BYTES, true),
        (KEY_FILE_MAX_BYTES + 1, false),
    ] {
        write_key(&path, len, 0o600);
        let result = load_or_create_key(&path);
        assert_eq!(result.is_ok(), ok, "{len} bytes: {result:?}");
        if let Err(e) = result {
            assert_eq!(e.kind(), ErrorKind::InvalidData);
        }
    }
}

#[test]
fn a_key_inside_the_journal_dir_is_refused() {
    let (tmp, mut config) = setup();
    config.key_path = config.dir.join("keys/seal.key");
    let e = Journal::open(config.clone()).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains("inside the journal directory"),
        "{e}"
    );
    assert!(!config.key_path.exists());
    drop(tmp);
}

#[test]
fn journal_files_are_private() {
    let (_tmp, config) = setup();
    let (journal, _) = Journal::open(config.clone()).unwrap();
    journal.append_blocking(entry(0)).unwrap();
    journal.close().unwrap();
    assert_eq!(mode(&config.dir), 0o700);
    assert_eq!(mode(&config.dir.join(JOURNAL_FILE)), 0o600);
    assert_eq!(mode(&config.dir.join(SEALS_FILE)), 0o600);
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn state_is_replaced_atomically_without_temp_files() {
    let tmp = tempfile::tempdir().unwrap();
    write_state_atomic(tmp.path(), "state.json", b"{\"a\":1}").unwrap();
    write_state_atomic(tmp.path(), "state.json", b"{\"a\":2}").unwrap();
    assert_eq!(
        std::fs::read(tmp.path().join("state.json")).unwrap(),
        b"{\"a\":2}"
    );
    assert_eq!(dir_names(tmp.path()), vec!["state.json"]);
}

#[test]
fn state_errors_leave_no_temp_file() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["", ".", "..", "a/b"] {
        let e = write_state_atomic(tmp.path(), bad, b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    // The rename fails: the target is a non-empty directory.
    std::fs::create_dir_all(tmp.path().join("state.json/x")).unwrap();
    assert!(write_state_atomic(tmp.path(), "state.json", b"x").is_err());
    assert_eq!(dir_names(tmp.path()), vec!["state.json"]);
}
