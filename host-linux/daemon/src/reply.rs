//! Small reply builders shared by the listeners.

use heidi_core::proto::{ERROR_REPLY_MAX_BYTES, ErrorCode, ErrorReply};
use heidi_core::service;
use std::io::Write;

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

/// Replaces `out` with `value` (a success reply) serialized as compact JSON.
pub(crate) fn json(value: &serde_json::Value, out: &mut Vec<u8>) -> Said {
    out.clear();
    serde_json::to_writer(&mut *out, value).expect("serializing a Value into a Vec cannot fail");
    Said::Success
}

/// Replaces `out` with the `JOURNAL_APPEND` success reply, `{"hash":…,"line":…,"ok":true}`:
/// the bytes `json` gives that object, written without building it (`hash` is hex).
pub(crate) fn appended(line: u64, hash: &str, out: &mut Vec<u8>) -> Said {
    out.clear();
    out.extend_from_slice(b"{\"hash\":\"");
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(b"\",\"line\":");
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{line}");
    out.extend_from_slice(b",\"ok\":true}");
    Said::Success
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_matches_serde() {
        let mut direct = Vec::new();
        let mut via_value = Vec::new();
        for (line, hash) in [(1, "ab12"), (u64::MAX, ""), (42, &"f".repeat(64)[..])] {
            appended(line, hash, &mut direct);
            json(
                &serde_json::json!({"ok": true, "line": line, "hash": hash}),
                &mut via_value,
            );
            assert_eq!(direct, via_value);
        }
    }

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
        assert_eq!(
            json(&serde_json::json!({"ok": true}), &mut out),
            Said::Success
        );
        assert_eq!(appended(1, "ab", &mut out), Said::Success);
    }
}
