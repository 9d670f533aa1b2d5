//! [`JournalEntry`]: an owned journal event, as it travels from a request (the client, the
//! daemon's kernel) to the journal writer.

use heidi_core::WallTime;
use heidi_core::journal::{Event, Level};

/// An event waiting to be appended. The writer stamps `ts` and chains it; the core encoder
/// validates names and redacts text when it becomes a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    /// Pipeline round (1-based; daemon events use the current round, 1 before any run).
    pub round: u32,
    /// Stage name (a journal *name*), e.g. `"kernel"`, `"client"`.
    pub stage: String,
    /// Severity.
    pub level: Level,
    /// Event name, e.g. `"policy_applied"`, `"journal_truncated"`.
    pub event_type: String,
    /// Free text (redacted by the encoder).
    pub message: String,
    /// Counter changes.
    pub counters_delta: Vec<(String, i64)>,
    /// Resource usage changes.
    pub usage_delta: Vec<(String, i64)>,
    /// Artifact paths (redacted by the encoder).
    pub artifact_paths: Vec<String>,
    /// Error text, if any (redacted by the encoder).
    pub error: Option<String>,
}

impl JournalEntry {
    /// An `info` entry with empty maps.
    pub fn info(stage: &str, event_type: &str, message: impl Into<String>) -> JournalEntry {
        JournalEntry {
            round: 1,
            stage: stage.to_owned(),
            level: Level::Info,
            event_type: event_type.to_owned(),
            message: message.into(),
            counters_delta: Vec::new(),
            usage_delta: Vec::new(),
            artifact_paths: Vec::new(),
            error: None,
        }
    }

    /// Calls `f` with the borrowed core [`Event`] for this entry stamped at `ts`.
    pub fn with_event<R>(&self, ts: WallTime, f: impl FnOnce(&Event<'_>) -> R) -> R {
        let counters: Vec<(&str, i64)> = self
            .counters_delta
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        let usage: Vec<(&str, i64)> = self
            .usage_delta
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        let paths: Vec<&str> = self.artifact_paths.iter().map(String::as_str).collect();
        let event = Event {
            ts,
            round: self.round,
            stage: &self.stage,
            level: self.level,
            event_type: &self.event_type,
            message: &self.message,
            counters_delta: &counters,
            usage_delta: &usage,
            artifact_paths: &paths,
            error: self.error.as_deref(),
        };
        f(&event)
    }
}
