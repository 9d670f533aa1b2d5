//! Small reply builders shared by the listeners.

use heidi_core::proto::{ERROR_REPLY_MAX_BYTES, ErrorCode, ErrorReply, HostRefusal};
use heidi_core::service;

/// What a reply said, as the code that wrote it knows it: the daemon counts a request's
/// success from this, never from the reply's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Said {
    /// A success reply (for the methods the core's service decides: any reply without an
    /// error code, so a `RATE_LIMIT_CHECK` that denies is a success).
    Success,
    /// An error reply with this code.
    Error(ErrorCode),
}

impl Said {
    /// Whether the request succeeded.
    pub fn is_success(self) -> bool {
        self == Said::Success
    }
}

impl From<&service::Reply> for Said {
    fn from(reply: &service::Reply) -> Said {
        reply.error.map_or(Said::Success, Said::Error)
    }
}

/// Replaces `out` with the error shape `{"error":true,"code":…,"message":…}` (core encoder);
/// returns [`Said::Error`] with `code`.
pub(crate) fn error(code: ErrorCode, message: &str, out: &mut Vec<u8>) -> Said {
    let mut buf = [0u8; ERROR_REPLY_MAX_BYTES];
    let n = ErrorReply::new(code, message)
        .encode(&mut buf)
        .expect("ERROR_REPLY_MAX_BYTES holds every error reply");
    out.clear();
    out.extend_from_slice(&buf[..n]);
    Said::Error(code)
}

/// Replaces `out` with the error reply of a refusal the host writes itself (the core's code
/// and words); returns [`Said::Error`] with its code.
pub(crate) fn refuse(refusal: &HostRefusal<'_>, out: &mut Vec<u8>) -> Said {
    error(refusal.code(), &refusal.to_string(), out)
}

/// Replaces `out` with a success reply the core writes (`write`, one of the core's reply
/// writers, into a [`fmt::Write`](std::fmt::Write) over `out`).
pub(crate) fn written(
    out: &mut Vec<u8>,
    write: impl FnOnce(&mut Bytes<'_>) -> std::fmt::Result,
) -> Said {
    out.clear();
    // Writing into a Vec cannot fail.
    let _ = write(&mut Bytes(out));
    Said::Success
}

/// A [`fmt::Write`](std::fmt::Write) that appends to a byte buffer.
pub(crate) struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For a method the service decided, success is its typed outcome, not the bytes' shape:
    /// a denied `RATE_LIMIT_CHECK` succeeds, a denied `RATE_LIMIT_CONSUME` does not.
    #[test]
    fn a_decided_reply_says_its_outcome() {
        use heidi_core::Instant;
        use heidi_core::service::{Outcome, Reply};
        let denied = |error| Reply {
            len: 0,
            outcome: Outcome::Denied {
                retry_at: Instant::ZERO,
            },
            error,
        };
        assert!(Said::from(&denied(None)).is_success());
        let limited = Said::from(&denied(Some(ErrorCode::RateLimited)));
        assert_eq!(limited, Said::Error(ErrorCode::RateLimited));
        assert!(!limited.is_success());
    }

    #[test]
    fn writers_say_what_they_wrote() {
        let mut out = Vec::new();
        assert_eq!(
            error(ErrorCode::BadJson, "x", &mut out),
            Said::Error(ErrorCode::BadJson)
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (&v["error"], &v["code"]),
            (&true.into(), &"BAD_JSON".into())
        );
        let said = written(&mut out, |w| service::write_appended_reply(1, "ab", w));
        assert_eq!(said, Said::Success);
        assert_eq!(out, br#"{"hash":"ab","line":1,"ok":true}"#);
    }
}
