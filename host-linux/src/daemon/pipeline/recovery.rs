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
/// events or does not exist). Read after `Journal::open` verified the file and cut a torn
/// line. The error names the line.
pub fn replay_journal(path: &Path, config: &PipelineConfig) -> Result<Status, String> {
    let mut replay = Replay::new(config);
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(replay.status()),
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
    Ok(replay.status())
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
