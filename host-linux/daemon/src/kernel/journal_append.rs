//! [`parse_journal_append`]: `JOURNAL_APPEND` params, validated by the core's service, into a
//! [`JournalEntry`] the host appends.

use heidi_core::proto::ErrorCode;
use heidi_core::service::{self, JournalAppend};

use heidi_common::JournalEntry;

pub use heidi_core::service::RESERVED_STAGES;

/// Parses `JOURNAL_APPEND` params (see `docs/PROTOCOL.md`; the rules are the core's
/// [`service::parse_journal_append`]). The entry's `round` is 1; the host sets the current
/// round. Errors are `BAD_REQUEST` with a message naming the param.
pub fn parse_journal_append(params: &str) -> Result<JournalEntry, (ErrorCode, String)> {
    let append = service::parse_journal_append(params)
        .map_err(|e| (ErrorCode::BadRequest, e.to_string()))?;
    entry(&append).ok_or_else(|| (ErrorCode::Internal, "a validated string".to_owned()))
}

/// The entry, its free text decoded from the JSON strings the core validated.
fn entry(append: &JournalAppend<'_>) -> Option<JournalEntry> {
    let text = |raw: &str| serde_json::from_str::<String>(raw).ok();
    let delta = |d: &[(service::JournalName, i64)]| {
        d.iter().map(|(name, n)| (name.to_string(), *n)).collect()
    };
    Some(JournalEntry {
        round: 1,
        stage: append.stage.to_string(),
        level: append.level,
        event_type: append.event_type.to_string(),
        message: text(append.message)?,
        counters_delta: delta(&append.counters_delta),
        usage_delta: delta(&append.usage_delta),
        artifact_paths: append
            .artifact_paths
            .iter()
            .map(|raw| text(raw))
            .collect::<Option<_>>()?,
        error: match append.error {
            Some(raw) => Some(text(raw)?),
            None => None,
        },
    })
}
