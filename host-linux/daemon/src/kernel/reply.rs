//! Reply bodies of the methods the kernel still answers itself (`APPLY_POLICY`,
//! `GET_POLICY`): a success object, or the error shape `{"error":true,"code":…,"message":…}`
//! encoded by the core's [`ErrorReply`].

use heidi_core::proto::{ERROR_REPLY_MAX_BYTES, ErrorCode, ErrorReply};
use serde_json::Value;

use super::fields::FieldError;

/// A refused request: its code and message.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fail {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl Fail {
    /// A refusal.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Fail {
        Fail {
            code,
            message: message.into(),
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

/// Writes `answer` into `out` (cleared first).
pub(crate) fn write(answer: &Answer, out: &mut Vec<u8>) {
    out.clear();
    match answer {
        Ok(value) => {
            // Serializing a `Value` into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, value);
        }
        Err(fail) => {
            let mut buf = [0u8; ERROR_REPLY_MAX_BYTES];
            // A buffer of ERROR_REPLY_MAX_BYTES always holds an error reply.
            match ErrorReply::new(fail.code, &fail.message).encode(&mut buf) {
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => {
                    out.extend_from_slice(br#"{"error":true,"code":"INTERNAL","message":"reply"}"#)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_the_core_error_shape() {
        let fail = Fail::new(ErrorCode::InvalidPolicy, "limits.x: slow \"down\"");
        let mut out = b"junk".to_vec();
        write(&Err(fail), &mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"error":true,"code":"INVALID_POLICY","message":"limits.x: slow \"down\""}"#
        );
    }
}
