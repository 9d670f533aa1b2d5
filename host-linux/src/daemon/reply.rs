//! Small reply builders shared by the listeners.

use heidi_core::proto::{ERROR_REPLY_MAX_BYTES, ErrorCode, ErrorReply};

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

/// Replaces `out` with `value` serialized as compact JSON.
pub(crate) fn json(value: &serde_json::Value, out: &mut Vec<u8>) {
    out.clear();
    serde_json::to_writer(&mut *out, value).expect("serializing a Value into a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

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
