//! The steps of [`Journal::open`](super::Journal::open) around verification: run id, key
//! location, chain resume, recovery events and the re-anchoring seal.

use std::io;
use std::path::{Path, PathBuf};

use heidi_core::journal::{
    self, AnchorFault, ChainWriter, GeneratedRunId, LineHash, RecoveryEvent, RecoveryFacts,
    RunIdChoice, RunIdRefusal,
};

use super::fsutil::{err, random_hex};
use super::recover::Recovered;
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
    let facts = RecoveryFacts {
        unsealed_accepted: found.unsealed_accepted,
        behind_anchor: recovery.behind_anchor,
        journal_cut_bytes: found.torn_bytes,
        seals_cut_bytes: recovery.seal_cut_bytes,
        rotation_finished: match recovery.repair {
            Repair::None => None,
            Repair::SealsRenamed => Some(true),
            Repair::BoundaryWritten => Some(false),
        },
        temp_files_removed: recovery.temp_files_removed,
    };
    // In the core's order, each sealed at once: the acceptances come before the first seal
    // and before the anchor is replaced, so a crash in between refuses the next start again.
    for event in facts.events() {
        let mut entry =
            JournalEntry::info(RecoveryEvent::STAGE, event.event_type(), event.to_string());
        entry.level = event.level();
        let (counters, n) = event.counters();
        entry.counters_delta = counters[..n]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        writer.write_now(&entry)?;
        writer.seal_now()?;
    }
    writer.seal_now()?;
    writer.apply_retention()?;
    writer.anchor_now()?;
    let lines = writer.lines();
    Ok((writer, lines))
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

/// The configured run id, the journal's, or a new one (the core's [`choose_run_id`]); a
/// conflict is refused.
pub(super) fn choose_run_id(
    configured: Option<&str>,
    existing: Option<&str>,
    path: &Path,
) -> io::Result<String> {
    match journal::choose_run_id(configured, existing) {
        Ok(RunIdChoice::Use(id)) => Ok(id.to_owned()),
        Ok(RunIdChoice::Generate) => Ok(GeneratedRunId {
            now: heidi_common::clock::wall_now(),
            random_hex: &random_hex(2)?,
        }
        .to_string()),
        Err(refusal @ RunIdRefusal::Invalid(_)) => {
            Err(err(io::ErrorKind::InvalidInput, refusal.to_string()))
        }
        Err(refusal @ RunIdRefusal::Conflict { existing, .. }) => {
            let msg = format!(
                "{refusal} {}; use another OUT_DIR for a new run, or unset RUN_ID to continue \
                 {existing:?}",
                path.display()
            );
            Err(err(io::ErrorKind::InvalidInput, msg))
        }
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
