//! Journal segments on disk: names, listing, the repair of an interrupted rotation, the
//! boundary check at open, and stale temporary files (docs/JOURNAL.md, "Segments").
//!
//! The open segment is `events.jsonl` with its seals in `events.seals`. A rotation renames
//! them to `events.<seq>.jsonl` and `events.<seq>.seals` (`seq` from 1, at least six digits)
//! and starts a new `events.seals` whose first record is the *boundary*: the seal over the
//! last line of the segment just rotated. A rotated segment other than the first one, and the
//! open segment when rotated segments exist, starts after its boundary.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use heidi_core::journal::{SEAL_MAX_BYTES, Seal, SealKey};

use heidi_core::journal::{SegmentName, SegmentSealsName};

use super::fsutil::{at, err, read_regular, sync_dir};
use super::state::write_state_atomic;
use crate::paths::{JOURNAL_FILE, SEALS_FILE};

/// The file name of rotated segment `seq`: `events.000042.jsonl` (the core's
/// [`SegmentName`]).
pub fn segment_file(seq: u64) -> String {
    SegmentName(seq).to_string()
}

/// The seal file name of rotated segment `seq`: `events.000042.seals` (the core's
/// [`SegmentSealsName`]).
pub fn segment_seals_file(seq: u64) -> String {
    SegmentSealsName(seq).to_string()
}

/// The sequence number of a rotated segment's file name (`events.<6+ digits>.jsonl`, with
/// no leading zero beyond the six-digit padding), else `None`.
pub fn parse_segment_file(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("events.")?.strip_suffix(".jsonl")?;
    let seq: u64 = digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| digits.parse().ok())??;
    (seq > 0 && segment_file(seq) == name).then_some(seq)
}

/// The sequence numbers of the rotated segments in `dir` (files `events.<seq>.jsonl`), in
/// order. A missing directory has none.
pub fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(at(dir, e)),
    };
    let mut seqs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| at(dir, e))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_file) {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// The journal's files in reading order: every rotated segment, then `events.jsonl` (which
/// may not exist), each with the number of lines before its first line (from the segment's
/// boundary seal, read without checking its MAC: for readers of a journal verified
/// elsewhere). Concatenated in this order they make one chained journal.
pub fn journal_files(dir: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    let seqs = list_segments(dir)?;
    let mut files = Vec::with_capacity(seqs.len() + 1);
    for (i, &seq) in seqs.iter().enumerate() {
        let before = if i == 0 && seq > 1 {
            first_record(&dir.join(segment_seals_file(seq)))?
                .and_then(|r| Seal::parse(&r).ok())
                .map_or(0, |s| s.lines())
        } else {
            0
        };
        files.push((dir.join(segment_file(seq)), before));
    }
    files.push((dir.join(JOURNAL_FILE), 0));
    Ok(files)
}

/// The first complete record (with its `\n`) of the seal file `path`, if any.
pub(super) fn first_record(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let Some(bytes) = read_prefix(path, SEAL_MAX_BYTES + 1)? else {
        return Ok(None);
    };
    Ok(bytes
        .iter()
        .position(|b| *b == b'\n')
        .map(|nl| bytes[..=nl].to_vec()))
}

fn read_prefix(path: &Path, max: usize) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let Some(file) = super::fsutil::open_regular(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::with_capacity(max);
    file.take(u64::try_from(max).unwrap_or(u64::MAX))
        .read_to_end(&mut bytes)
        .map_err(|e| at(path, e))?;
    Ok(Some(bytes))
}

/// The last complete record of the seal file `path` (at most 16 MiB is read).
fn last_record(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let Some(bytes) = read_regular(path, 16 << 20)? else {
        return Ok(None);
    };
    let body = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(end) => &bytes[..=end],
        None => return Ok(None),
    };
    let start = body[..body.len() - 1]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    Ok(Some(body[start..].to_vec()))
}

/// What [`repair_rotation`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Repair {
    /// Nothing was interrupted.
    None,
    /// A crash came after the journal was renamed: the seal file was renamed too and the
    /// new segment's seal file written.
    SealsRenamed,
    /// A crash came after both renames: the new segment's seal file was written.
    BoundaryWritten,
}

/// Finishes a rotation a crash interrupted. A rotation renames `events.jsonl`, then
/// `events.seals`, then writes the new `events.seals` (its boundary record, atomically), then
/// creates `events.jsonl`; this rolls each intermediate state forward. The boundary it writes
/// is the last record of the rotated segment's seal file, checked against `key`.
pub(super) fn repair_rotation(dir: &Path, key: &SealKey) -> io::Result<Repair> {
    let Some(&last) = list_segments(dir)?.last() else {
        return Ok(Repair::None);
    };
    let journal = dir.join(JOURNAL_FILE);
    let seals = dir.join(SEALS_FILE);
    let rotated_seals = dir.join(segment_seals_file(last));
    if exists(&journal)? {
        return Ok(Repair::None);
    }
    let mut repair = Repair::None;
    if exists(&seals)? && !exists(&rotated_seals)? {
        std::fs::rename(&seals, &rotated_seals).map_err(|e| at(&seals, e))?;
        sync_dir(dir)?;
        repair = Repair::SealsRenamed;
    }
    if !exists(&seals)? {
        let boundary = last_seal(&rotated_seals, key)?.ok_or_else(|| {
            let msg = format!(
                "{} has no seal record: cannot start the segment after it",
                rotated_seals.display()
            );
            err(io::ErrorKind::InvalidData, msg)
        })?;
        write_boundary(dir, &boundary)?;
        if repair == Repair::None {
            repair = Repair::BoundaryWritten;
        }
    }
    Ok(repair)
}

/// Writes `dir/events.seals` holding only `boundary`, atomically.
pub(super) fn write_boundary(dir: &Path, boundary: &Seal) -> io::Result<()> {
    let mut buf = [0u8; SEAL_MAX_BYTES];
    let n = boundary.encode(&mut buf).map_err(io::Error::other)?;
    write_state_atomic(dir, SEALS_FILE, &buf[..n])
}

/// The last record of the seal file `path`, parsed and authenticated.
fn last_seal(path: &Path, key: &SealKey) -> io::Result<Option<Seal>> {
    let Some(record) = last_record(path)? else {
        return Ok(None);
    };
    match Seal::parse(&record) {
        Ok(seal) if seal.is_authentic(key) => Ok(Some(seal)),
        _ => Err(err(
            io::ErrorKind::InvalidData,
            format!(
                "{}: the last seal record is malformed or forged; refusing to open",
                path.display()
            ),
        )),
    }
}

/// When rotated segments exist, the open segment continues the last of them: its seal
/// file's first record (`first`) must equal the rotated segment's last seal record. Returns
/// that boundary (`None`: no rotated segment; the open segment starts at line 1).
pub(super) fn check_boundary(
    dir: &Path,
    key: &SealKey,
    first: Option<&Seal>,
) -> io::Result<Option<Seal>> {
    let Some(&last) = list_segments(dir)?.last() else {
        return Ok(None);
    };
    let rotated_seals = dir.join(segment_seals_file(last));
    let refuse = |why: String| {
        err(
            io::ErrorKind::InvalidData,
            format!(
                "journal {}: {why}; refusing to open (an operator must inspect it)",
                dir.join(JOURNAL_FILE).display()
            ),
        )
    };
    let ends = last_seal(&rotated_seals, key)?.ok_or_else(|| {
        refuse(format!(
            "{} has no seal record, so the open segment's start cannot be checked",
            rotated_seals.display()
        ))
    })?;
    let Some(first) = first else {
        return Err(refuse(format!(
            "{SEALS_FILE} has no boundary record, but it follows segment {}",
            segment_file(last)
        )));
    };
    if *first != ends {
        return Err(refuse(format!(
            "the open segment does not continue segment {}: its boundary seal covers line {} \
             but {} ends with a seal over line {}",
            segment_file(last),
            first.lines(),
            segment_seals_file(last),
            ends.lines()
        )));
    }
    Ok(Some(ends))
}

fn exists(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(at(path, e)),
    }
}

/// Whether `name` is a temporary file of [`write_state_atomic`](super::write_state_atomic):
/// `.<file name>.<pid>.<8 lowercase hex>.tmp`.
pub(super) fn is_state_temp(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let mut parts = inner.rsplitn(3, '.');
    let (Some(hex), Some(pid), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    hex.len() == 8
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && !pid.is_empty()
        && pid.len() <= 10
        && pid.bytes().all(|b| b.is_ascii_digit())
        && !file.is_empty()
}

/// Removes the temporary files of interrupted atomic writes
/// ([`write_state_atomic`](super::write_state_atomic)) from `dir` and answers how many. Only
/// at open: the instance lock keeps every other daemon out of `dir`, and this one writes
/// nothing there yet.
pub(super) fn remove_stale_temps(dir: &Path) -> io::Result<u64> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| at(dir, e))? {
        let entry = entry.map_err(|e| at(dir, e))?;
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_state_temp) || !entry.file_type()?.is_file() {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(at(&entry.path(), e)),
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// When a rotated segment was last written (its file's modification time).
pub(super) fn segment_mtime(dir: &Path, seq: u64) -> io::Result<SystemTime> {
    let path = dir.join(segment_file(seq));
    std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .map_err(|e| at(&path, e))
}

/// Removes rotated segment `seq`: its journal, then its seals (a crash in between leaves a
/// seal file without its journal, which readers ignore).
pub(super) fn remove_segment(dir: &Path, seq: u64) -> io::Result<()> {
    for name in [segment_file(seq), segment_seals_file(seq)] {
        let path = dir.join(&name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(at(&path, e)),
        }
    }
    Ok(())
}
