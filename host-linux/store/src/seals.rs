//! The seal file `events.seals`: reading it into a [`SealCheck`], appending seal records.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use heidi_core::journal::{SEAL_MAX_BYTES, Seal, SealCheck, SealKey};

use super::anchor::Anchored;
use super::fsutil::{at, err, open_append, open_regular, sync_dir};

/// The seal records of a run, read at open.
pub(super) struct ReadSeals {
    /// The check, fed with every complete record.
    pub(super) check: SealCheck,
    /// The file's length up to the end of its last complete record.
    pub(super) intact_end: u64,
    /// Bytes of a torn last record (no `\n`, crash mid-write), to be cut; 0 if none.
    pub(super) torn_bytes: u64,
    /// The first valid record (a segment's boundary when the segment continues another).
    pub(super) first: Option<Seal>,
}

/// Reads `path` (missing: nothing sealed) record by record into a [`SealCheck`]. A record
/// the check refuses is an `InvalidData` error naming it; a last record without `\n` that
/// fits in [`SEAL_MAX_BYTES`] is a torn write and is reported, not fed. Every valid record is
/// shown to `anchor`.
pub(super) fn read_seals(
    path: &Path,
    key: &SealKey,
    anchor: &mut Anchored,
) -> io::Result<ReadSeals> {
    let mut out = ReadSeals {
        check: SealCheck::new(key),
        intact_end: 0,
        torn_bytes: 0,
        first: None,
    };
    let Some(file) = open_regular(path)? else {
        return Ok(out);
    };
    let mut reader = BufReader::new(file);
    let mut record = Vec::with_capacity(SEAL_MAX_BYTES + 1);
    let limit = u64::try_from(SEAL_MAX_BYTES).unwrap_or(u64::MAX) + 1;
    loop {
        record.clear();
        let n = (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut record)
            .map_err(|e| at(path, e))?;
        if n == 0 {
            return Ok(out);
        }
        let complete = record.last() == Some(&b'\n');
        if !complete && n <= SEAL_MAX_BYTES && reader.fill_buf()?.is_empty() {
            out.torn_bytes = u64::try_from(n).unwrap_or(u64::MAX);
            return Ok(out);
        }
        out.check.add_record(&record).map_err(|fault| {
            let msg = format!("seal file {}: {fault}; refusing to open", path.display());
            err(io::ErrorKind::InvalidData, msg)
        })?;
        if let Some(seal) = out.check.latest() {
            anchor.observe(seal);
            if out.first.is_none() {
                out.first = Some(seal.clone());
            }
        }
        out.intact_end += u64::try_from(n).unwrap_or(u64::MAX);
    }
}

/// The seal file, opened for appending.
pub(super) struct SealFile {
    file: File,
    path: PathBuf,
}

impl SealFile {
    /// Opens (or creates, mode 0600) the seal file `path` in directory `dir`.
    pub(super) fn open(path: PathBuf, dir: &Path) -> io::Result<SealFile> {
        let (file, created) = open_append(&path)?;
        if created {
            sync_dir(dir)?;
        }
        Ok(SealFile { file, path })
    }

    /// Test hook: swaps the file for a read-only handle, so the next append fails.
    #[cfg(test)]
    pub(super) fn break_for_test(&mut self) {
        if let Ok(read_only) = File::open(&self.path) {
            self.file = read_only;
        }
    }

    /// Appends `seal` as one record and syncs it.
    pub(super) fn append(&mut self, seal: &Seal) -> io::Result<()> {
        let mut buf = [0u8; SEAL_MAX_BYTES];
        let n = seal.encode(&mut buf).map_err(io::Error::other)?;
        self.file
            .write_all(&buf[..n])
            .and_then(|()| self.file.sync_data())
            .map_err(|e| at(&self.path, e))
    }
}
