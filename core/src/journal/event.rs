//! The fields of one journal event, as the caller supplies them (borrowed, no allocation).

use crate::time::WallTime;

/// Most entries in `counters_delta` or in `usage_delta`.
pub const DELTA_MAX_ENTRIES: usize = 16;

/// Most entries in `artifact_paths`.
pub const ARTIFACT_PATHS_MAX: usize = 16;

/// Longest artifact path, in bytes (before redaction).
pub const ARTIFACT_PATH_MAX_BYTES: usize = 256;

/// Longest name (`stage`, `event_type`, a delta map's entry name), in bytes.
pub const NAME_MAX_BYTES: usize = 64;

/// Whether `name` is a valid `stage`, `event_type` or delta-map entry name: 1 to
/// [`NAME_MAX_BYTES`] bytes of ASCII letters, digits, `_`, `.`, `:` and `-`. Names are
/// identifiers, not free text: they need no escaping and can hold no secret worth redacting.
pub fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX_BYTES
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Severity of an event, written as `"debug"`, `"info"`, `"warning"` or `"error"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Level {
    /// `"debug"`.
    Debug,
    /// `"info"`.
    Info,
    /// `"warning"`.
    Warning,
    /// `"error"`.
    Error,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 4] = [Level::Debug, Level::Info, Level::Warning, Level::Error];

    /// The level named `name` ([`Level::as_str`]), if any.
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == name)
    }

    /// The name written in the `level` field.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One event, before it becomes a line. The run id and `prev_hash` come from the chain
/// ([`ChainWriter`](super::ChainWriter)); `message`, `error` and every artifact path are
/// redacted when encoded; `stage`, `event_type` and delta names must be valid names
/// ([`is_valid_name`]).
///
/// Bounds: at most [`DELTA_MAX_ENTRIES`] entries per delta map and [`ARTIFACT_PATHS_MAX`]
/// paths of at most [`ARTIFACT_PATH_MAX_BYTES`] each; the whole line at most
/// [`MAX_LINE_BYTES`](super::MAX_LINE_BYTES).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Event<'a> {
    /// When it happened (wall clock), written as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub ts: WallTime,
    /// Pipeline round, 1-based.
    pub round: u32,
    /// Stage name, e.g. `"pipeline"`, `"generate"` (a valid name, see [`is_valid_name`]).
    pub stage: &'a str,
    /// Severity.
    pub level: Level,
    /// Event name, e.g. `"pipeline_start"`, `"stage_end"` (a valid name).
    pub event_type: &'a str,
    /// Free text; redacted and capped at 500 characters before encoding.
    pub message: &'a str,
    /// Counter changes, written in the given order as a JSON object of integers; each name a
    /// valid name.
    pub counters_delta: &'a [(&'a str, i64)],
    /// Resource usage changes (e.g. `memory_mb_delta`, `cpu_pct`), as for `counters_delta`.
    pub usage_delta: &'a [(&'a str, i64)],
    /// Paths of files the event produced; redacted like `message` (a URL with credentials
    /// in it loses them).
    pub artifact_paths: &'a [&'a str],
    /// The error text, if any (`null` otherwise); redacted like `message`.
    pub error: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// An `info` event with empty maps, no artifacts and no error.
    pub const fn info(
        ts: WallTime,
        round: u32,
        stage: &'a str,
        event_type: &'a str,
        message: &'a str,
    ) -> Event<'a> {
        Event {
            ts,
            round,
            stage,
            level: Level::Info,
            event_type,
            message,
            counters_delta: &[],
            usage_delta: &[],
            artifact_paths: &[],
            error: None,
        }
    }

    /// The original daemon's first example event (`docs/JOURNAL.md`, "Journal line"), shared by the encoder's and the chain's tests.
    #[cfg(test)]
    pub(crate) fn seed() -> Event<'static> {
        Event::info(
            WallTime::from_unix_millis(1_771_573_538_307),
            1,
            "pipeline",
            "pipeline_start",
            "Starting training pipeline (C++)",
        )
    }
}
