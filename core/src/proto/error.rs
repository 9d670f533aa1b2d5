//! The fixed set of error codes carried by error replies (`"code":"…"`).

use core::fmt;

/// An error reply's `code`. Clients match on these strings; they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ErrorCode {
    /// `BAD_FRAME`: an empty frame, a body that is not UTF-8, or a stream cut inside a frame.
    BadFrame,
    /// `FRAME_TOO_LARGE`: the length prefix is above the request limit; the server closes the
    /// connection after this reply.
    FrameTooLarge,
    /// `BAD_JSON`: the frame is not a valid JSON document (or nests deeper than the limit).
    BadJson,
    /// `BAD_REQUEST`: valid JSON, but not a request: not an object, `method` missing or not a
    /// string, `params` not an object, a bad `timestamp`, a duplicate field, or method
    /// parameters that do not fit the method.
    BadRequest,
    /// `UNKNOWN_METHOD`: `method` names no method of this protocol version.
    UnknownMethod,
    /// `INVALID_POLICY`: `APPLY_POLICY` rejected the document; nothing was applied. The message
    /// names the field.
    InvalidPolicy,
    /// `RATE_LIMITED`: a rate limit denied the call; the reply says when to retry.
    RateLimited,
    /// `CIRCUIT_OPEN`: the named circuit breaker is open (or its half-open probes are taken).
    CircuitOpen,
    /// `LEASE_UNAVAILABLE`: no concurrency lease is free for the key.
    LeaseUnavailable,
    /// `LEASE_NOT_FOUND`: the lease id is unknown, expired or already released.
    LeaseNotFound,
    /// `IN_PROGRESS`: an idempotency key is already being processed by another call.
    InProgress,
    /// `REFUSED`: the command is not allowed in the current state (e.g. `train_now` while a
    /// pipeline is running); the message says why.
    Refused,
    /// `FORBIDDEN`: the caller's credentials do not admit it to this method's class (the
    /// daemon's `[authorization]` lists); nothing was done.
    Forbidden,
    /// `UNAVAILABLE`: the feature is not available in this daemon (e.g. no pipeline runner).
    Unavailable,
    /// `OVERLOADED`: too many connections or in-flight requests, or a table is full; retry
    /// later.
    Overloaded,
    /// `TIMEOUT`: the server gave up waiting (an idle connection, a slow stage).
    Timeout,
    /// `INTERNAL`: a server-side failure (e.g. an I/O error writing the journal).
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::BadFrame,
        ErrorCode::FrameTooLarge,
        ErrorCode::BadJson,
        ErrorCode::BadRequest,
        ErrorCode::UnknownMethod,
        ErrorCode::InvalidPolicy,
        ErrorCode::RateLimited,
        ErrorCode::CircuitOpen,
        ErrorCode::LeaseUnavailable,
        ErrorCode::LeaseNotFound,
        ErrorCode::InProgress,
        ErrorCode::Refused,
        ErrorCode::Forbidden,
        ErrorCode::Unavailable,
        ErrorCode::Overloaded,
        ErrorCode::Timeout,
        ErrorCode::Internal,
    ];

    /// The longest [`as_str`](Self::as_str), in bytes.
    pub const MAX_LEN_BYTES: usize = 17;

    /// The wire string, e.g. `"UNKNOWN_METHOD"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "BAD_FRAME",
            ErrorCode::FrameTooLarge => "FRAME_TOO_LARGE",
            ErrorCode::BadJson => "BAD_JSON",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::UnknownMethod => "UNKNOWN_METHOD",
            ErrorCode::InvalidPolicy => "INVALID_POLICY",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::CircuitOpen => "CIRCUIT_OPEN",
            ErrorCode::LeaseUnavailable => "LEASE_UNAVAILABLE",
            ErrorCode::LeaseNotFound => "LEASE_NOT_FOUND",
            ErrorCode::InProgress => "IN_PROGRESS",
            ErrorCode::Refused => "REFUSED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Overloaded => "OVERLOADED",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// The code whose wire string is `s`.
    #[must_use]
    pub fn from_wire(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_round_trip_and_fit_the_bound() {
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert_eq!(ErrorCode::from_wire(s), Some(code));
            assert!(s.len() <= ErrorCode::MAX_LEN_BYTES, "{s}");
            assert!(
                s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{s}"
            );
        }
        assert!(
            ErrorCode::ALL
                .iter()
                .any(|c| c.as_str().len() == ErrorCode::MAX_LEN_BYTES)
        );
        assert_eq!(ErrorCode::from_wire("bad_frame"), None);
    }
}
