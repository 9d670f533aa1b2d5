//! [`CallResult`]: what one call came to, after retries (the seed's `KernelBridgeResult`).

use std::fmt;

/// The outcome class of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallStatus {
    /// The daemon answered with a success reply.
    Ok,
    /// The daemon answered with an error reply, or its reply was unusable (too large, not a
    /// JSON object), or the request could not be sent (too large).
    Error,
    /// The last attempt ran out of time (connecting, writing, reading, or waiting for an
    /// in-flight slot).
    Timeout,
    /// The daemon could not be reached (no socket, connection refused, connection broken).
    Unavailable,
}

impl CallStatus {
    /// The seed's spelling: `ok`, `error`, `timeout`, `unavailable`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CallStatus::Ok => "ok",
            CallStatus::Error => "error",
            CallStatus::Timeout => "timeout",
            CallStatus::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Client-side `error_code`s (the daemon's own codes are `heidi_core::proto::ErrorCode`).
pub mod codes {
    /// The request is larger than `REQUEST_MAX_BYTES`; nothing was sent.
    pub const REQUEST_TOO_LARGE: &str = "CLIENT_REQUEST_TOO_LARGE";
    /// The reply announced more than `RESPONSE_MAX_BYTES`; it was not read.
    pub const REPLY_TOO_LARGE: &str = "CLIENT_REPLY_TOO_LARGE";
    /// The reply was not a framed JSON object.
    pub const BAD_REPLY: &str = "CLIENT_BAD_REPLY";
}

/// What a call came to.
#[derive(Clone, Debug, PartialEq)]
pub struct CallResult {
    /// The outcome class.
    pub status: CallStatus,
    /// `status == Ok`.
    pub success: bool,
    /// Why it failed (the daemon's `message`, or the transport error), `None` on success.
    pub reason: Option<String>,
    /// Time from the first attempt to the end of the last, in whole milliseconds.
    pub latency_ms: u64,
    /// The same, in microseconds.
    pub latency_us: u64,
    /// Bytes of the reply body (0 when there was none).
    pub payload_size: usize,
    /// The reply object: the payload of a success reply, or the whole error reply (so fields
    /// like `retry_after_ms` stay readable). `None` when no reply arrived.
    pub payload: Option<serde_json::Value>,
    /// The error reply's `code`, or one of [`codes`]; `None` on success and for timeouts and
    /// unavailability.
    pub error_code: Option<String>,
    /// Retries made after the first attempt.
    pub retry_count: u32,
}

impl CallResult {
    /// A field of the payload, if there is a payload object with that field.
    pub fn field(&self, name: &str) -> Option<&serde_json::Value> {
        self.payload.as_ref()?.get(name)
    }

    /// A 64-bit id field of the payload (`permit`, `lease_id`, `token`) as the decimal string
    /// the protocol sends (an integer is accepted too); `None` when absent or not an id.
    pub fn id(&self, name: &str) -> Option<String> {
        super::methods::id_of(self.payload.as_ref()?, name)
    }

    /// The payload's `retry_after_ms` as an integer, when present.
    pub fn retry_after_ms(&self) -> Option<u64> {
        self.field("retry_after_ms")?.as_u64()
    }
}
