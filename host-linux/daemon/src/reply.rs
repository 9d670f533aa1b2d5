//! Small reply builders shared by the listeners.

use heidi_core::proto::{ERROR_REPLY_MAX_BYTES, ErrorCode, ErrorReply};
use heidi_core::service;
use std::io::Write;

/// Replaces `out` with the error shape `{"error":true,"code":…,"message":…}` (core encoder).
pub(crate) fn error(code: ErrorCode, message: &str, out: &mut Vec<u8>) {
    let mut buf = [0u8; ERROR_REPLY_MAX_BYTES];
    let n = ErrorReply::new(code, message)
        .encode(&mut buf)
        .expect("ERROR_REPLY_MAX_BYTES holds every error reply");
    out.clear();
    out.extend_from_slice(&buf[..n]);
}

/// Whether a reply body is the error shape (the core encoder always starts it this way).
pub(crate) fn is_error(body: &[u8]) -> bool {
    body.starts_with(b"{\"error\":true")
}

/// Whether a request succeeded: from the core service's typed outcome when it decided the
/// request (`decided`), else from the reply's shape (methods the service does not cover yet).
pub(crate) fn succeeded(decided: Option<&service::Reply>, body: &[u8]) -> bool {
    match decided {
        Some(reply) => reply.error.is_none(),
        None => !is_error(body),
    }
}

/// Replaces `out` with `value` serialized as compact JSON.
pub(crate) fn json(value: &serde_json::Value, out: &mut Vec<u8>) {
    out.clear();
    serde_json::to_writer(&mut *out, value).expect("serializing a Value into a Vec cannot fail");
}

/// Replaces `out` with the `JOURNAL_APPEND` success reply, `{"hash":…,"line":…,"ok":true}`:
/// the bytes `json` gives that object, written without building it (`hash` is hex).
pub(crate) fn appended(line: u64, hash: &str, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b"{\"hash\":\"");
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(b"\",\"line\":");
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{line}");
    out.extend_from_slice(b",\"ok\":true}");
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
    fn a_decided_reply_is_counted_by_its_outcome() {
        use heidi_core::Instant;
        use heidi_core::service::{Outcome, Reply};
        let denied = |error| Reply {
            len: 0,
            outcome: Outcome::Denied {
                retry_at: Instant::ZERO,
            },
            error,
        };
        // Bytes that would read the other way: the outcome wins.
        assert!(succeeded(Some(&denied(None)), b"{\"error\":true}"));
        let limited = denied(Some(ErrorCode::RateLimited));
        assert!(!succeeded(Some(&limited), b"{\"allowed\":false}"));
        assert!(succeeded(None, b"{\"ok\":true}"));
        assert!(!succeeded(None, b"{\"error\":true}"));
    }

    #[test]
    fn error_shape_is_recognised() {
        let mut out = Vec::new();
        error(ErrorCode::BadJson, "x", &mut out);
        assert!(is_error(&out));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["code"], "BAD_JSON");
        json(&serde_json::json!({"ok": true}), &mut out);
        assert!(!is_error(&out));
    }
}
