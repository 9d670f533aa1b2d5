//! Journal entries for the pipeline: the core's events, and the events the core decides for
//! the stages the daemon runs (`heidi_core::pipeline::{StageOutput, Leftovers}`), as owned
//! entries for the appender.

use heidi_core::journal::Level;
pub use heidi_core::journal::OUTPUT_EXCERPT_CHARS;
use heidi_core::pipeline::{
    PipelineEvent, Stage, StageOutput, UNCONTAINED_LEVEL, UNCONTAINED_MESSAGE,
};
pub use heidi_core::pipeline::{STAGE_ORPHANS_EVENT, STAGE_OUTPUT_EVENT, STAGE_UNCONTAINED_EVENT};

use crate::runner::OrphanReport;
use heidi_common::JournalEntry;

/// The entry's delta map, owned.
fn owned(delta: &[(&str, i64)]) -> Vec<(String, i64)> {
    delta.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// An entry without artifacts or usage.
fn entry(
    round: u32,
    stage: &str,
    level: Level,
    event_type: &str,
    message: String,
    counters: &[(&str, i64)],
) -> JournalEntry {
    JournalEntry {
        round,
        stage: stage.to_owned(),
        level,
        event_type: event_type.to_owned(),
        message,
        counters_delta: owned(counters),
        usage_delta: Vec::new(),
        artifact_paths: Vec::new(),
        error: None,
    }
}

/// The journal entry for a core event.
pub(super) fn entry_for(event: &PipelineEvent) -> JournalEntry {
    let mut usage = [("", 0); 2];
    JournalEntry {
        usage_delta: owned(event.usage_delta(&mut usage)),
        error: event.error.map(|e| e.name().to_owned()),
        ..entry(
            event.round,
            event.stage_name(),
            event.level,
            event.event_type.name(),
            event.message.to_owned(),
            &[],
        )
    }
}

/// The `stage_orphans_killed` entry for what [`reap_orphans`](crate::runner::reap_orphans)
/// found of a stage the daemon's death interrupted (the core's `Leftovers`).
pub(super) fn orphans_entry(report: &OrphanReport) -> JournalEntry {
    let leftovers = report.found;
    entry(
        report.round,
        &report.stage,
        leftovers.level(),
        STAGE_ORPHANS_EVENT,
        leftovers.to_string(),
        &leftovers.counters(),
    )
}

/// The `stage_uncontained` warning for a stage that ran with nothing bounding its process
/// count (allowed by `allow_uncontained = true`).
pub(super) fn uncontained_entry(stage: Stage, round: u32) -> JournalEntry {
    entry(
        round,
        stage.name(),
        UNCONTAINED_LEVEL,
        STAGE_UNCONTAINED_EVENT,
        UNCONTAINED_MESSAGE.to_owned(),
        &[],
    )
}

/// The `stage_output` entry for a failed stage ([`StageOutput`]): the end of its output
/// (`tail`, after the runner `dropped` bytes before it) and the runner's description of the
/// failure as `error`.
pub(super) fn output_entry(
    stage: Stage,
    round: u32,
    tail: &[u8],
    dropped: u64,
    failure: Option<&str>,
) -> JournalEntry {
    let output = StageOutput::of(&String::from_utf8_lossy(tail), dropped);
    JournalEntry {
        error: failure.map(str::to_owned),
        ..entry(
            round,
            stage.name(),
            output.level(),
            STAGE_OUTPUT_EVENT,
            output.message().to_owned(),
            &output.counters(),
        )
    }
}
