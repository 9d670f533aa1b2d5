//! Journal entries for the pipeline: the core's events, and the captured output of a failed
//! stage (`stage_output`).

pub use heidi_core::journal::OUTPUT_EXCERPT_CHARS;
use heidi_core::journal::{Excerpt, Level};
use heidi_core::pipeline::{EventType, Mode, PipelineEvent, Stage, start_message};

use crate::runner::OrphanReport;
use heidi_common::JournalEntry;

/// The journal's `event_type` for a failed stage's captured output.
pub const STAGE_OUTPUT_EVENT: &str = "stage_output";

/// The journal's `event_type` for what was left of a stage interrupted by the daemon's death,
/// killed at the next start (docs/DAEMON.md, "When the daemon dies").
pub const STAGE_ORPHANS_EVENT: &str = "stage_orphans_killed";

/// The journal's `event_type` for a stage that ran uncontained (`allow_uncontained`).
pub const STAGE_UNCONTAINED_EVENT: &str = "stage_uncontained";

/// The journal entry for a core event. `pipeline_start` names the run's `mode`
/// ([`start_message`]), so a restart can rebuild it from the journal.
pub(super) fn entry_for(event: &PipelineEvent, mode: Mode) -> JournalEntry {
    let message = match event.event_type {
        EventType::PipelineStart => start_message(mode),
        _ => event.message,
    };
    let usage_delta = event
        .usage
        .map(|u| {
            vec![
                ("memory_mb_delta".to_owned(), u.memory_mb_delta),
                ("cpu_pct".to_owned(), i64::from(u.cpu_pct)),
            ]
        })
        .unwrap_or_default();
    JournalEntry {
        round: event.round,
        stage: event.stage_name().to_owned(),
        level: event.level,
        event_type: event.event_type.name().to_owned(),
        message: message.to_owned(),
        counters_delta: Vec::new(),
        usage_delta,
        artifact_paths: Vec::new(),
        error: event.error.map(|e| e.name().to_owned()),
    }
}

/// The `stage_orphans_killed` entry for what [`reap_orphans`](crate::runner::reap_orphans)
/// found of a stage the daemon's death interrupted: counters `processes_found`,
/// `processes_killed`, `cgroup_removed` (0 or 1) and `cgroup_left` (1 when the cgroup could
/// not be removed); level `error` when something of the stage survived the attempt.
pub(super) fn orphans_entry(report: &OrphanReport) -> JournalEntry {
    let flag = |b: bool| i64::from(b);
    let cgroup_left = report.cgroup_found && !report.cgroup_removed;
    let message = if report.all_gone {
        format!(
            "killed what was left of the stage interrupted in pid {}",
            report.daemon_pid
        )
    } else {
        format!(
            "processes or the cgroup of the stage interrupted in pid {} survived the kill; \
             retried at the next start",
            report.daemon_pid
        )
    };
    JournalEntry {
        round: report.round,
        stage: report.stage.clone(),
        level: if report.all_gone {
            Level::Warning
        } else {
            Level::Error
        },
        event_type: STAGE_ORPHANS_EVENT.to_owned(),
        message,
        counters_delta: vec![
            (
                "processes_found".to_owned(),
                i64::try_from(report.processes_found).unwrap_or(i64::MAX),
            ),
            (
                "processes_killed".to_owned(),
                i64::try_from(report.processes_killed).unwrap_or(i64::MAX),
            ),
            ("cgroup_removed".to_owned(), flag(report.cgroup_removed)),
            ("cgroup_left".to_owned(), flag(cgroup_left)),
        ],
        usage_delta: Vec::new(),
        artifact_paths: Vec::new(),
        error: None,
    }
}

/// The `stage_uncontained` warning for a stage that ran with nothing bounding its process
/// count (allowed by `allow_uncontained = true`).
pub(super) fn uncontained_entry(stage: Stage, round: u32) -> JournalEntry {
    JournalEntry {
        round,
        stage: stage.name().to_owned(),
        level: Level::Warning,
        event_type: STAGE_UNCONTAINED_EVENT.to_owned(),
        message: "ran uncontained: no writable pids cgroup and running as root, so nothing \
                  bounded its processes (allow_uncontained = true)"
            .to_owned(),
        counters_delta: Vec::new(),
        usage_delta: Vec::new(),
        artifact_paths: Vec::new(),
        error: None,
    }
}

/// The `stage_output` entry for a failed stage: the end of its output as the message (the
/// journal's encoder redacts it before hashing), `output_dropped_bytes` (bytes the runner
/// dropped plus bytes cut here) in `counters_delta`, and the runner's description as `error`.
pub(super) fn output_entry(
    stage: Stage,
    round: u32,
    tail: &[u8],
    dropped: u64,
    failure: Option<&str>,
) -> JournalEntry {
    let text = String::from_utf8_lossy(tail);
    let (message, cut) = excerpt(&text, dropped > 0);
    JournalEntry {
        round,
        stage: stage.name().to_owned(),
        level: Level::Error,
        event_type: STAGE_OUTPUT_EVENT.to_owned(),
        message,
        counters_delta: vec![(
            "output_dropped_bytes".to_owned(),
            i64::try_from(dropped.saturating_add(cut)).unwrap_or(i64::MAX),
        )],
        usage_delta: Vec::new(),
        artifact_paths: Vec::new(),
        error: failure.map(str::to_owned),
    }
}

/// The core's excerpt of `text` ([`Excerpt`]) and the bytes of `text` it left out.
fn excerpt(text: &str, cut_before: bool) -> (String, u64) {
    let e = Excerpt::of(text, cut_before);
    (e.as_str().to_owned(), e.cut_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use heidi_core::journal::OUTPUT_LINE_CHARS;

    #[test]
    fn output_entry_counts_what_was_cut() {
        let tail = format!("{}\nlast line", "z".repeat(1000));
        let e = output_entry(Stage::Train, 2, tail.as_bytes(), 0, Some("exit status 1"));
        let long = "z".repeat(OUTPUT_LINE_CHARS - 1) + "…";
        assert_eq!(e.message, format!("{long}\nlast line"));
        let dropped = (1000 - (OUTPUT_LINE_CHARS - 1)) as i64;
        assert_eq!(
            e.counters_delta,
            vec![("output_dropped_bytes".into(), dropped)]
        );
        // The runner cut before: the partial first line goes, and is counted.
        let e = output_entry(Stage::Train, 2, tail.as_bytes(), 7, Some("exit status 1"));
        assert_eq!(e.message, "last line");
        assert_eq!(
            e.counters_delta,
            vec![("output_dropped_bytes".into(), 7 + 1001)]
        );
        assert_eq!(e.error.as_deref(), Some("exit status 1"));
        assert_eq!((e.stage.as_str(), e.round), ("train", 2));
    }
}
