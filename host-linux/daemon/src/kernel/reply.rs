//! Reply bodies: a success object, or the error shape `{"error":true,"code":…,"message":…}`
//! (encoded by the core's [`ErrorReply`]) followed by machine-readable extra fields such as
//! `retry_after_ms`.

use heidi_core::Instant;
use heidi_core::proto::{ERROR_REPLY_MAX_BYTES, ErrorCode, ErrorReply};
use serde_json::Value;

use super::fields::FieldError;

/// A refused request: its code, message and extra fields.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fail {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    pub(crate) extra: Vec<(&'static str, Value)>,
}

impl Fail {
    /// A refusal with no extra fields.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Fail {
        Fail {
            code,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    /// Adds an extra field.
    pub(crate) fn with(mut self, key: &'static str, value: impl Into<Value>) -> Fail {
        self.extra.push((key, value.into()));
        self
    }

    /// Adds `retry_after_ms` unless `at` is "never" ([`Instant::MAX`]).
    pub(crate) fn retry_at(self, now: Instant, at: Instant) -> Fail {
        match ms_until(now, at) {
            Some(ms) => self.with("retry_after_ms", ms),
            None => self,
        }
    }
}

impl From<FieldError> for Fail {
    /// A bad parameter: `BAD_REQUEST` with `"<path>: <reason>"`.
    fn from(e: FieldError) -> Fail {
        Fail::new(ErrorCode::BadRequest, format!("{}: {}", e.field, e.reason))
    }
}

/// What a method handler answers.
pub(crate) type Answer = Result<Value, Fail>;

/// Whole milliseconds from `now` until `at`, rounded up so a client that waits them is never
/// early; `None` when `at` is [`Instant::MAX`] ("never by waiting").
pub(crate) fn ms_until(now: Instant, at: Instant) -> Option<u64> {
    (at != Instant::MAX).then(|| at.saturating_duration_since(now).as_millis_ceil())
}

/// Writes `answer` into `out` (cleared first).
pub(crate) fn write(answer: &Answer, out: &mut Vec<u8>) {
    out.clear();
    match answer {
        Ok(value) => {
            // Serializing a `Value` into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, value);
        }
        Err(fail) => write_error(fail, out),
    }
}

fn write_error(fail: &Fail, out: &mut Vec<u8>) {
    let mut buf = [0u8; ERROR_REPLY_MAX_BYTES];
    // A buffer of ERROR_REPLY_MAX_BYTES always holds an error reply.
    let n = ErrorReply::new(fail.code, &fail.message)
        .encode(&mut buf)
        .unwrap_or(0);
    if n == 0 {
        out.extend_from_slice(br#"{"error":true,"code":"INTERNAL","message":"reply"}"#);
        return;
    }
    out.extend_from_slice(&buf[..n - 1]); // without the closing brace
    for (key, value) in &fail.extra {
        out.push(b',');
        let _ = serde_json::to_writer(&mut *out, key);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, value);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use heidi_core::Duration;

    #[test]
    fn error_with_extra_fields_is_valid_json() {
        let now = Instant::from_secs(1);
        let fail = Fail::new(ErrorCode::RateLimited, "slow \"down\"")
            .retry_at(now, now + Duration::from_micros(250_001))
            .with("remaining", 0);
        let mut out = b"junk".to_vec();
        write(&Err(fail), &mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"error":true,"code":"RATE_LIMITED","message":"slow \"down\"","retry_after_ms":251,"remaining":0}"#
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["retry_after_ms"], 251);
    }

    #[test]
    fn never_omits_retry_after() {
        let now = Instant::from_secs(1);
        let fail = Fail::new(ErrorCode::Overloaded, "full").retry_at(now, Instant::MAX);
        assert!(fail.extra.is_empty());
        assert_eq!(ms_until(now, now), Some(0));
        assert_eq!(ms_until(now + Duration::from_secs(1), now), Some(0));
    }
}
