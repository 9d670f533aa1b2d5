//! Journal entries for the pipeline: the core's events, and the captured output of a failed
//! stage (`stage_output`).

use heidi_core::journal::Level;
use heidi_core::pipeline::{EventType, Mode, PipelineEvent, Stage, start_message};

use crate::store::JournalEntry;

/// The journal's `event_type` for a failed stage's captured output.
pub const STAGE_OUTPUT_EVENT: &str = "stage_output";

/// The most characters of a failed stage's output tail that go to the journal (the journal
/// caps a message at 500 characters, keeping its start; we keep the end).
pub const OUTPUT_EXCERPT_CHARS: usize = 480;

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
    let excerpt = excerpt(&text, dropped > 0);
    let cut = (text.len() - excerpt.len()) as u64;
    JournalEntry {
        round,
        stage: stage.name().to_owned(),
        level: Level::Error,
        event_type: STAGE_OUTPUT_EVENT.to_owned(),
        message: excerpt.to_owned(),
        counters_delta: vec![(
            "output_dropped_bytes".to_owned(),
            i64::try_from(dropped.saturating_add(cut)).unwrap_or(i64::MAX),
        )],
        usage_delta: Vec::new(),
        artifact_paths: Vec::new(),
        error: failure.map(str::to_owned),
    }
}

/// The last [`OUTPUT_EXCERPT_CHARS`] characters of `text`, starting after a whitespace where
/// the text was cut (by us, or before it by the runner when `cut_before` is set) so the
/// excerpt never begins inside a token: half a secret would not be recognised as one.
fn excerpt(text: &str, cut_before: bool) -> &str {
    let start = text
        .char_indices()
        .rev()
        .nth(OUTPUT_EXCERPT_CHARS - 1)
        .map(|(i, _)| i);
    let (from, cut) = match start {
        Some(i) if i > 0 => (i, true),
        _ => (0, cut_before),
    };
    let rest = &text[from..];
    if !cut {
        return rest;
    }
    match rest.find(char::is_whitespace) {
        Some(ws) => rest[ws..].trim_start(),
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_short_output_and_cuts_long_output_at_whitespace() {
        assert_eq!(excerpt("boom\n", false), "boom\n");
        let long = format!("{} sk-{} tail end", "x".repeat(2000), "a".repeat(40));
        let e = excerpt(&long, false);
        assert!(e.chars().count() <= OUTPUT_EXCERPT_CHARS);
        assert!(e.ends_with("tail end"));
        assert!(e.starts_with("sk-") || !e.contains('x'), "{e}");
        // A runner-truncated tail loses its first partial word.
        assert_eq!(excerpt("k_abc123 rest", true), "rest");
        // One token longer than the excerpt: nothing safe to show.
        assert_eq!(excerpt(&"y".repeat(5000), false), "");
    }

    #[test]
    fn output_entry_counts_what_was_cut() {
        let tail = format!("{}\nlast line", "z".repeat(1000));
        let e = output_entry(Stage::Train, 2, tail.as_bytes(), 7, Some("exit status 1"));
        assert_eq!(e.message, "last line");
        let dropped = 7 + (tail.len() - "last line".len()) as i64;
        assert_eq!(
            e.counters_delta,
            vec![("output_dropped_bytes".into(), dropped)]
        );
        assert_eq!(e.error.as_deref(), Some("exit status 1"));
        assert_eq!((e.stage.as_str(), e.round), ("train", 2));
    }
}
