//! Rebuilding the pipeline from the journal after a restart (core [`Replay`] +
//! [`Pipeline::recover`]).

use std::io::{self, BufRead, BufReader};
use std::path::Path;

use heidi_core::Instant;
use heidi_core::pipeline::{Pipeline, PipelineConfig, Replay, ReplayLine, Status};
use serde::Deserialize;

/// The fields of a journal line that replay reads.
#[derive(Deserialize)]
struct Line<'a> {
    event_type: &'a str,
    stage: &'a str,
    round: u32,
    #[serde(borrow)]
    message: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    error: Option<std::borrow::Cow<'a, str>>,
}

/// The pipeline status the journal at `path` leaves (IDLE, round 1 when it has no pipeline
/// events or does not exist). Read after `Journal::open` verified the open segment and cut a
/// torn line. Rotated segments beside `path` (`events.<seq>.jsonl`, docs/JOURNAL.md,
/// "Segments") are read first, in order, without hashing; only lines whose `event_type`
/// may be a pipeline event are parsed. The error names the file and line.
pub fn replay_journal(path: &Path, config: &PipelineConfig) -> Result<Status, String> {
    let mut replay = Replay::new(config);
    let dir = path.parent().unwrap_or(Path::new("."));
    let rotated = heidi_store::list_segments(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for seq in rotated {
        replay_file(&dir.join(heidi_store::segment_file(seq)), &mut replay)?;
    }
    replay_file(path, &mut replay)?;
    Ok(replay.status())
}

/// Feeds the pipeline events of one journal file to `replay`.
fn replay_file(path: &Path, replay: &mut Replay) -> Result<(), String> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut reader = BufReader::new(file);
    let mut buf = String::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_line(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        number += 1;
        // A key is written raw and `"` inside strings is escaped, so this finds the key.
        if !(buf.contains("\"event_type\":\"pipeline_") || buf.contains("\"event_type\":\"stage_"))
        {
            continue;
        }
        let at = |why: &dyn std::fmt::Display| format!("{} line {number}: {why}", path.display());
        let line: Line<'_> = serde_json::from_str(buf.trim_end()).map_err(|e| at(&e))?;
        let line = ReplayLine {
            event_type: line.event_type,
            stage: line.stage,
            round: line.round,
            message: &line.message,
            error: line.error.as_deref(),
        };
        replay.feed(&line).map_err(|e| at(&e))?;
    }
    Ok(())
}

/// A pipeline continuing from the journal at `path`: a stage that was running (or about to)
/// becomes ERROR with reason `interrupted`, whose event and status are queued as outputs.
pub(super) fn recover_from_journal(
    path: &Path,
    config: PipelineConfig,
    now: Instant,
) -> Result<Pipeline, String> {
    let status = replay_journal(path, &config)?;
    Pipeline::recover(config, &status, now)
        .map_err(|e| format!("cannot recover the pipeline from {}: {e}", path.display()))
}
