//! The steps of [`Journal::open`](super::Journal::open) around verification: run id, key
//! location, chain resume, recovery events and the re-anchoring seal.

use std::io;
use std::path::{Path, PathBuf};

use heidi_core::journal::{AnchorFault, ChainWriter, Level, LineHash, is_valid_run_id};

use super::fsutil::{err, random_hex};
use super::recover::Recovered;
use super::run_id;
use super::segments::Repair;
use super::writer::Writer;
use heidi_common::JournalEntry;

/// What the open found and repaired besides the journal's own tail.
pub(super) struct Recovery {
    /// Bytes of a torn last seal record that were cut.
    pub(super) seal_cut_bytes: u64,
    /// Seals behind the anchor, accepted by the operator.
    pub(super) behind_anchor: Option<AnchorFault>,
    /// Stale temporary files removed from `OUT_DIR`.
    pub(super) temp_files_removed: u64,
    /// A rotation a crash interrupted, finished.
    pub(super) repair: Repair,
}

/// Journals recovery (a torn tail, a torn seal record, an accepted unsealed journal, seals
/// accepted behind their anchor, an interrupted rotation finished, stale temporary files
/// removed), seals an unsealed tail, applies segment retention and replaces the anchor. Each
/// line is sealed as soon as it is written, so a crash here never leaves more than one line
/// without a seal.
pub(super) fn start_writer(
    mut writer: Writer,
    found: &Recovered,
    recovery: &Recovery,
) -> io::Result<(Writer, u64)> {
    let (seal_cut_bytes, behind_anchor) = (recovery.seal_cut_bytes, recovery.behind_anchor);
    // The acceptance is written before the first seal: a crash in between leaves the
    // journal unsealed, so the next start refuses it again instead of forgetting it.
    if found.unsealed_accepted > 0 {
        writer.write_now(&unsealed_entry(found.unsealed_accepted))?;
        writer.seal_now()?;
    }
    // Written before the anchor is replaced: a crash in between leaves the old anchor, so
    // the next start refuses again instead of forgetting it.
    if let Some(fault) = behind_anchor {
        writer.write_now(&anchor_entry(fault))?;
        writer.seal_now()?;
    }
    if found.torn_bytes > 0 {
        writer.write_now(&cut_entry(
            "journal_truncated",
            "torn last journal line",
            found.torn_bytes,
        ))?;
        writer.seal_now()?;
    }
    if seal_cut_bytes > 0 {
        writer.write_now(&cut_entry(
            "seals_truncated",
            "torn last seal record",
            seal_cut_bytes,
        ))?;
        writer.seal_now()?;
    }
    if recovery.repair != Repair::None {
        let what = match recovery.repair {
            Repair::SealsRenamed => "renamed the rotated segment's seal file and started",
            Repair::BoundaryWritten | Repair::None => "started",
        };
        let entry = JournalEntry::info(
            "journal",
            "journal_rotation_finished",
            format!("a crash interrupted a segment rotation; {what} the new segment"),
        );
        writer.write_now(&entry)?;
        writer.seal_now()?;
    }
    if recovery.temp_files_removed > 0 {
        let n = recovery.temp_files_removed;
        let mut entry = JournalEntry::info(
            "journal",
            "stale_temp_files_removed",
            format!("removed {n} temporary file(s) of atomic writes a crash interrupted"),
        );
        entry.counters_delta = vec![("removed".to_owned(), i64::try_from(n).unwrap_or(i64::MAX))];
        writer.write_now(&entry)?;
    }
    writer.seal_now()?;
    writer.apply_retention()?;
    writer.anchor_now()?;
    let lines = writer.lines();
    Ok((writer, lines))
}

fn unsealed_entry(lines: u64) -> JournalEntry {
    let mut entry = JournalEntry::info(
        "journal",
        "journal_unsealed_accepted",
        format!(
            "accepted {lines} journal lines that had no seal record (seal file deleted or \
             emptied) on the operator's --accept-unsealed-journal"
        ),
    );
    entry.level = Level::Warning;
    entry.counters_delta = vec![(
        "unsealed_lines".to_owned(),
        i64::try_from(lines).unwrap_or(i64::MAX),
    )];
    entry
}

fn anchor_entry(fault: AnchorFault) -> JournalEntry {
    let mut entry = JournalEntry::info(
        "journal",
        "journal_anchor_accepted",
        format!(
            "accepted seals that do not match the journal's anchor ({fault}) on the \
             operator's --accept-unsealed-journal"
        ),
    );
    entry.level = Level::Warning;
    if let AnchorFault::Behind {
        sealed_lines,
        anchored_lines,
    } = fault
    {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        entry.counters_delta = vec![
            ("sealed_lines".to_owned(), n(sealed_lines)),
            ("anchored_lines".to_owned(), n(anchored_lines)),
        ];
    }
    entry
}

fn cut_entry(event_type: &str, what: &str, bytes: u64) -> JournalEntry {
    let mut entry = JournalEntry::info(
        "journal",
        event_type,
        format!("cut {bytes} bytes of a {what} left by a crash"),
    );
    entry.level = Level::Warning;
    entry.counters_delta = vec![(
        "cut_bytes".to_owned(),
        i64::try_from(bytes).unwrap_or(i64::MAX),
    )];
    entry
}

pub(super) fn resume(run_id: &str, found: &Recovered) -> io::Result<ChainWriter> {
    let last = found.last_hash.unwrap_or(LineHash([0; 32]));
    ChainWriter::resume(run_id, found.lines, last).map_err(|e| {
        err(
            io::ErrorKind::InvalidInput,
            format!("run id {run_id:?}: {e}"),
        )
    })
}

/// The configured run id, the journal's, or a new one; a conflict is refused.
pub(super) fn choose_run_id(
    configured: Option<&str>,
    existing: Option<&str>,
    path: &Path,
) -> io::Result<String> {
    if let Some(id) = configured {
        if !is_valid_run_id(id.as_bytes()) {
            let msg =
                format!("RUN_ID {id:?} is not a valid run id (1-128 bytes of [A-Za-z0-9_.:-])");
            return Err(err(io::ErrorKind::InvalidInput, msg));
        }
    }
    match (configured, existing) {
        (Some(id), Some(old)) if id != old => {
            let msg = format!(
                "RUN_ID {id:?} differs from the run id {old:?} of the existing journal {}; \
                 use another OUT_DIR for a new run, or unset RUN_ID to continue {old:?}",
                path.display()
            );
            Err(err(io::ErrorKind::InvalidInput, msg))
        }
        (Some(id), _) | (None, Some(id)) => Ok(id.to_owned()),
        (None, None) => Ok(run_id::generate(
            heidi_common::clock::wall_now(),
            &random_hex(2)?,
        )),
    }
}

/// A key the journal's writer could rewrite would let it re-seal a rewritten journal.
pub(super) fn refuse_key_inside(dir: &Path, key_path: &Path) -> io::Result<()> {
    let dir = dir.canonicalize()?;
    let key = resolve(key_path)?;
    if key.starts_with(&dir) {
        let msg = format!(
            "seal key {} lies inside the journal directory {}; keep it outside",
            key.display(),
            dir.display()
        );
        return Err(err(io::ErrorKind::InvalidInput, msg));
    }
    Ok(())
}

/// `path` with its longest existing ancestor canonicalized (the rest may not exist yet).
fn resolve(path: &Path) -> io::Result<PathBuf> {
    let path = std::path::absolute(path)?;
    for base in path.ancestors() {
        if let Ok(real) = base.canonicalize() {
            let rest = path.strip_prefix(base).unwrap_or(Path::new(""));
            return Ok(real.join(rest));
        }
    }
    Ok(path)
}
