//! Replies. A success reply is any JSON object (the host serializes it); an error reply has
//! exactly the shape `{"error":true,"code":"…","message":"…"}`, encoded here.

use core::fmt;

use super::buffer::BufferTooSmall;
use super::error::ErrorCode;
use crate::json::escape::quoted;
use crate::json::writer::Writer;

/// The message of the `OVERLOADED` error a listener answers on a connection beyond its
/// limit, before it closes it (framed socket and HTTP alike).
pub const TOO_MANY_CONNECTIONS: &str = "too many connections; retry shortly";

/// Messages longer than this are cut (at a character boundary) when encoded.
pub const ERROR_MESSAGE_MAX_BYTES: usize = 256;

/// A buffer of this size always holds an encoded [`ErrorReply`]: the fixed 37 bytes, the
/// longest code, and the message with every byte escaped to 6 (`\u00XX`).
pub const ERROR_REPLY_MAX_BYTES: usize =
    37 + ErrorCode::MAX_LEN_BYTES + 6 * ERROR_MESSAGE_MAX_BYTES;

/// An error reply: a [`ErrorCode`] and a human-readable message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ErrorReply<'a> {
    /// What kind of error; clients match on it.
    pub code: ErrorCode,
    /// What happened, for people; at most [`ERROR_MESSAGE_MAX_BYTES`] are sent.
    pub message: &'a str,
}

impl<'a> ErrorReply<'a> {
    /// An error reply with `code` and `message`.
    pub const fn new(code: ErrorCode, message: &'a str) -> Self {
        ErrorReply { code, message }
    }

    /// Writes the reply's JSON (no length prefix, no newline) into `out` and returns its
    /// length. Never fails when `out` has [`ERROR_REPLY_MAX_BYTES`] bytes.
    ///
    /// ```
    /// use heidi_core::proto::{ErrorCode, ErrorReply, ERROR_REPLY_MAX_BYTES};
    ///
    /// let mut buf = [0u8; ERROR_REPLY_MAX_BYTES];
    /// let n = ErrorReply::new(ErrorCode::UnknownMethod, "no method \"FOO\"").encode(&mut buf).unwrap();
    /// assert_eq!(
    ///     &buf[..n],
    ///     br#"{"error":true,"code":"UNKNOWN_METHOD","message":"no method \"FOO\""}"#
    /// );
    /// ```
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut out = Writer::new(out);
        out.bytes(b"{\"error\":true,\"code\":\"");
        out.bytes(self.code.as_str().as_bytes());
        out.bytes(b"\",\"message\":");
        quoted(&mut out, truncate(self.message, ERROR_MESSAGE_MAX_BYTES));
        out.byte(b'}');
        Ok(out.finish()?)
    }
}

/// Formats `message` (any error's `Display`) into `buf` for an [`ErrorReply`], without
/// allocating; text that does not fit is cut at a character boundary.
pub fn format_message<'b>(message: &dyn fmt::Display, buf: &'b mut [u8]) -> &'b str {
    let mut w = Cut { buf, len: 0 };
    let _ = fmt::write(&mut w, format_args!("{message}"));
    let Cut { buf, len } = w;
    // Only whole characters were copied (see `Cut::write_str`).
    core::str::from_utf8(&buf[..len]).unwrap_or("")
}

/// A `fmt::Write` that keeps what fits, in whole characters, and drops the rest.
struct Cut<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl fmt::Write for Cut<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let piece = truncate(s, self.buf.len() - self.len);
        self.buf[self.len..self.len + piece.len()].copy_from_slice(piece.as_bytes());
        self.len += piece.len();
        Ok(())
    }
}

/// The longest prefix of `s` of at most `max_bytes` that ends on a character boundary.
pub(crate) fn truncate(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode<'b>(code: ErrorCode, message: &str, buf: &'b mut [u8]) -> &'b str {
        let n = ErrorReply::new(code, message).encode(buf).unwrap();
        core::str::from_utf8(&buf[..n]).unwrap()
    }

    #[test]
    fn exact_shape() {
        let mut buf = [0u8; ERROR_REPLY_MAX_BYTES];
        assert_eq!(
            encode(ErrorCode::BadJson, "", &mut buf),
            r#"{"error":true,"code":"BAD_JSON","message":""}"#
        );
        assert_eq!(
            encode(ErrorCode::BadFrame, "a\"\\\n\u{0}é", &mut buf),
            r#"{"error":true,"code":"BAD_FRAME","message":"a\"\\\n\u0000é"}"#
        );
    }

    #[test]
    fn worst_case_fits_the_max_buffer() {
        let message = [0u8; ERROR_MESSAGE_MAX_BYTES + 10];
        let message = core::str::from_utf8(&message).unwrap();
        let mut buf = [0u8; ERROR_REPLY_MAX_BYTES];
        let n = ErrorReply::new(ErrorCode::LeaseUnavailable, message)
            .encode(&mut buf)
            .unwrap();
        assert_eq!(n, ERROR_REPLY_MAX_BYTES);
        assert!(buf[..n].ends_with(b"\\u0000\"}"));
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 3), "abc");
    }

    #[test]
    fn format_message_cuts_whole_characters() {
        let mut buf = [0u8; 6];
        assert_eq!(format_message(&"héllo wörld", &mut buf), "héllo");
        let mut buf = [0u8; 32];
        assert_eq!(format_message(&ErrorCode::Refused, &mut buf), "REFUSED");
    }

    #[test]
    fn small_buffer_is_an_error() {
        let mut buf = [0u8; 40];
        assert_eq!(
            ErrorReply::new(ErrorCode::Internal, "disk full").encode(&mut buf),
            Err(BufferTooSmall)
        );
    }
}
