//! The journal's anchor file: the latest seal the daemon wrote, kept beside the seal key,
//! outside `OUT_DIR` (format: `heidi_core::journal::Anchor`; docs/JOURNAL.md "The anchor").
//!
//! One file per journal, named `journal-<32 hex>.anchor` in the key file's directory: the hex
//! is the first 16 bytes of SHA-256 over the journal's absolute path (its directory
//! canonicalized, then `events.jsonl`). It is replaced atomically with
//! [`write_state_atomic`](super::write_state_atomic), always after the seal it names is
//! durable, so it is never ahead of the seal file on disk.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use heidi_core::journal::{ANCHOR_MAX_BYTES, Anchor, AnchorCheck, AnchorFault, Seal, SealKey};
use sha2::{Digest, Sha256};

use super::fsutil::{at, err};
use super::state::write_state_atomic;

/// The anchor file of the journal `journal` for the key file `key_path`: in the key's
/// directory, named after the journal's absolute path. The journal's directory must exist.
pub fn anchor_path(key_path: &Path, journal: &Path) -> io::Result<PathBuf> {
    let dir = journal
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = dir.canonicalize().map_err(|e| at(dir, e))?;
    let full = match journal.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    };
    let digest = Sha256::digest(full.as_os_str().as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Ok(key_dir(key_path).join(format!("journal-{hex}.anchor")))
}

fn key_dir(key_path: &Path) -> &Path {
    key_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The anchor record at `path`; `None` when there is no such file. At most
/// [`ANCHOR_MAX_BYTES`] + 1 bytes are read (a longer file fails to parse).
pub fn read_anchor(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(at(path, e)),
    };
    let mut bytes = Vec::with_capacity(ANCHOR_MAX_BYTES + 1);
    let limit = u64::try_from(ANCHOR_MAX_BYTES).unwrap_or(u64::MAX) + 1;
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| at(path, e))?;
    Ok(Some(bytes))
}

/// Replaces the anchor at `path` with one naming `seal`.
pub(super) fn write_anchor(path: &Path, key: &SealKey, seal: &Seal) -> io::Result<()> {
    let mut buf = [0u8; ANCHOR_MAX_BYTES];
    let n = Anchor::of_seal(key, seal)
        .encode(&mut buf)
        .map_err(io::Error::other)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| err(io::ErrorKind::InvalidInput, "bad anchor file name".into()))?;
    write_state_atomic(key_dir(path), name, &buf[..n])
}

/// Removes `.<anchor name>.*.tmp` beside `anchor` (what [`write_state_atomic`] leaves when a
/// crash interrupts it). Best effort: a file that cannot be listed or removed stays.
fn remove_stale_temps(anchor: &Path) {
    let Some(name) = anchor.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(key_dir(anchor)) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let stale = file
            .to_str()
            .is_some_and(|f| f.starts_with(&prefix) && f.ends_with(".tmp"));
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The anchor of a journal being opened: the check to show the seal records to, or the
/// fault found in the anchor file itself.
pub(super) struct Anchored {
    /// The anchor file.
    pub(super) path: PathBuf,
    /// `Ok(None)`: no anchor file (a new journal, or the first start with anchors).
    pub(super) check: Result<Option<AnchorCheck>, AnchorFault>,
}

impl Anchored {
    /// Reads and authenticates the anchor at `path`, after removing the temporary files a
    /// crash in the middle of replacing it left beside it.
    pub(super) fn load(path: PathBuf, key: &SealKey) -> io::Result<Anchored> {
        remove_stale_temps(&path);
        let check = match read_anchor(&path)? {
            None => Ok(None),
            Some(record) => AnchorCheck::new(key, &record).map(Some),
        };
        Ok(Anchored { path, check })
    }

    /// Shows the check a valid seal record.
    pub(super) fn observe(&mut self, seal: &Seal) {
        if let Ok(Some(check)) = &mut self.check {
            check.observe(seal);
        }
    }

    /// Compares the seals read (their last valid one: `latest`) with the anchor. A fault is
    /// an `InvalidData` error naming the journal, the anchor and the counts, unless
    /// `accept`: then it is returned, for the caller to journal.
    pub(super) fn finish(
        &self,
        latest: Option<&Seal>,
        journal: &Path,
        accept: bool,
    ) -> io::Result<Option<AnchorFault>> {
        let fault = match &self.check {
            Ok(None) => return Ok(None),
            Ok(Some(check)) => match check.finish(latest) {
                Ok(_) => return Ok(None),
                Err(fault) => fault,
            },
            Err(fault) => *fault,
        };
        if accept {
            return Ok(Some(fault));
        }
        let msg = format!(
            "journal {}: behind its anchor {}: {fault}; start once with \
             --accept-unsealed-journal to accept it as it is (journaled); refusing to open \
             (an operator must inspect it)",
            journal.display(),
            self.path.display()
        );
        Err(err(io::ErrorKind::InvalidData, msg))
    }
}
