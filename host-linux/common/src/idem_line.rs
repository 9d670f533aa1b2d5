//! One line of `OUT_DIR/idempotency.jsonl`: an idempotency record with wall-clock times.

use serde::{Deserialize, Serialize};

/// The record file's name inside `OUT_DIR`.
pub const IDEMPOTENCY_FILE: &str = "idempotency.jsonl";

/// Longest line read back; a longer one is corrupt (a record with the longest key and a
/// response of the largest size, escaped, is well below it).
pub const LINE_MAX_BYTES: usize = 64 * 1024;

/// One record as persisted: the newest line of a key wins. Times are Unix milliseconds (the
/// core's clock restarts with the daemon; the wall clock does not).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum IdemLine {
    /// Begun, not completed.
    InProgress {
        /// The idempotency key, as the client sent it.
        key: String,
        /// The owner's token (decimal, as on the wire).
        token: String,
        /// When it was begun.
        since_ms: u64,
        /// When the owner is presumed crashed.
        expires_at_ms: u64,
    },
    /// Completed and remembered.
    Done {
        /// The idempotency key.
        key: String,
        /// The token it was begun with.
        token: String,
        /// The digest of a success (64 hex digits); `None` for a remembered failure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
        /// The stored response, if the owner gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response: Option<String>,
        /// When it was completed.
        completed_at_ms: u64,
        /// When the key is new again.
        expires_at_ms: u64,
    },
    /// A failure that frees the key: no record.
    Released {
        /// The idempotency key.
        key: String,
    },
}

impl IdemLine {
    /// The key this line is about.
    pub fn key(&self) -> &str {
        match self {
            IdemLine::InProgress { key, .. }
            | IdemLine::Done { key, .. }
            | IdemLine::Released { key } => key,
        }
    }

    /// When the record expires (Unix ms); `None` for a release (nothing to keep).
    pub fn expires_at_ms(&self) -> Option<u64> {
        match self {
            IdemLine::InProgress { expires_at_ms, .. } | IdemLine::Done { expires_at_ms, .. } => {
                Some(*expires_at_ms)
            }
            IdemLine::Released { .. } => None,
        }
    }

    /// The line as written: compact JSON and a newline.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).expect("a record always serializes");
        bytes.push(b'\n');
        bytes
    }
}
