//! What the load generator sends (one constant per method, so a renamed parameter is a
//! one-line fix) and how it reads the replies (the core's frame decoder).

use heidi_core::proto::{
    FrameDecoder, FrameError, REQUEST_MAX_BYTES, RESPONSE_MAX_BYTES, encode_frame,
};

/// `RATE_LIMIT_CHECK` of one fixed key (a check takes no tokens, so every reply is the same).
pub const RATE_LIMIT_CHECK_BODY: &str =
    r#"{"method":"RATE_LIMIT_CHECK","params":{"key":"k1","operation":"api_call","cost":1}}"#;
/// `PING`: served without touching the kernel or the journal.
pub const PING_BODY: &str = r#"{"method":"PING","params":{}}"#;
/// `JOURNAL_APPEND` of a small event; acknowledged only after the group commit's fsync.
pub const JOURNAL_APPEND_BODY: &str =
    r#"{"method":"JOURNAL_APPEND","params":{"event_type":"bench","message":"x"}}"#;

/// Which request a run sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchMethod {
    /// [`RATE_LIMIT_CHECK_BODY`].
    Check,
    /// [`PING_BODY`].
    Ping,
    /// [`JOURNAL_APPEND_BODY`].
    Append,
}

impl BenchMethod {
    /// The request body (JSON) of this method.
    pub fn body(self) -> &'static str {
        match self {
            BenchMethod::Check => RATE_LIMIT_CHECK_BODY,
            BenchMethod::Ping => PING_BODY,
            BenchMethod::Append => JOURNAL_APPEND_BODY,
        }
    }
}

/// `body` as one frame (4-byte big-endian length + body), or why it cannot be sent.
pub fn request_frame(body: &str) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; body.len() + 4];
    let n = encode_frame(body.as_bytes(), REQUEST_MAX_BYTES, &mut out)
        .map_err(|e| format!("request body cannot be framed: {e:?}"))?;
    out.truncate(n);
    Ok(out)
}

/// Whether a reply body is the error shape `{"error":true,…}` (the core encoder's prefix).
pub fn is_error_reply(body: &str) -> bool {
    body.starts_with(r#"{"error":true"#)
}

/// Splits a reply stream into frames and classifies each as ok or error.
pub struct ReplyReader {
    decoder: Box<FrameDecoder<RESPONSE_MAX_BYTES>>,
    first_error: Option<String>,
}

impl Default for ReplyReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyReader {
    /// A reader accepting replies up to the protocol's `RESPONSE_MAX_BYTES`.
    pub fn new() -> ReplyReader {
        ReplyReader {
            decoder: Box::new(FrameDecoder::new()),
            first_error: None,
        }
    }

    /// Feeds bytes as read; calls `on_reply(is_error)` once per complete reply, in order.
    /// A malformed frame (empty, too large, not UTF-8) is an error: the stream is not ours.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        mut on_reply: impl FnMut(bool),
    ) -> Result<(), FrameError> {
        while !input.is_empty() {
            let step = self.decoder.feed(input);
            input = &input[step.consumed..];
            match step.frame {
                None => {}
                Some(Ok(body)) => {
                    let error = is_error_reply(body);
                    if error && self.first_error.is_none() {
                        self.first_error = Some(body.to_owned());
                    }
                    on_reply(error);
                }
                Some(Err(e)) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether the stream stopped in the middle of a frame.
    pub fn mid_frame(&self) -> bool {
        self.decoder.finish().is_err()
    }

    /// The body of the first error reply, if any.
    pub fn take_first_error(&mut self) -> Option<String> {
        self.first_error.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_a_big_endian_length() {
        let frame = request_frame(PING_BODY).unwrap();
        assert_eq!(&frame[..4], &(PING_BODY.len() as u32).to_be_bytes());
        assert_eq!(&frame[4..], PING_BODY.as_bytes());
        assert!(request_frame("").is_err());
        assert!(request_frame(&"x".repeat(REQUEST_MAX_BYTES + 1)).is_err());
    }

    #[test]
    fn bodies_are_json_objects_naming_their_method() {
        for (m, name) in [
            (BenchMethod::Check, "RATE_LIMIT_CHECK"),
            (BenchMethod::Ping, "PING"),
            (BenchMethod::Append, "JOURNAL_APPEND"),
        ] {
            let v: serde_json::Value = serde_json::from_str(m.body()).unwrap();
            assert_eq!(v["method"], name);
            assert!(v["params"].is_object());
        }
    }

    #[test]
    fn replies_split_anywhere_are_counted_in_order() {
        let mut wire = request_frame(r#"{"ok":true}"#).unwrap();
        wire.extend(request_frame(r#"{"error":true,"code":"BAD_JSON","message":"m"}"#).unwrap());
        wire.extend(request_frame(r#"{"ok":true,"allowed":false}"#).unwrap());
        for split in 0..wire.len() {
            let mut reader = ReplyReader::new();
            let mut seen = Vec::new();
            reader.feed(&wire[..split], |e| seen.push(e)).unwrap();
            reader.feed(&wire[split..], |e| seen.push(e)).unwrap();
            assert_eq!(seen, [false, true, false], "split at {split}");
            assert!(!reader.mid_frame());
            assert!(reader.take_first_error().unwrap().contains("BAD_JSON"));
        }
    }

    #[test]
    fn a_bad_frame_is_an_error_not_a_reply() {
        let mut reader = ReplyReader::new();
        assert!(reader.feed(&[0, 0, 0, 0], |_| panic!("no reply")).is_err());
        let mut reader = ReplyReader::new();
        let too_large = (RESPONSE_MAX_BYTES as u32 + 1).to_be_bytes();
        assert!(reader.feed(&too_large, |_| panic!("no reply")).is_err());
        let mut reader = ReplyReader::new();
        reader
            .feed(&[0, 0, 0, 9, b'{'], |_| panic!("no reply"))
            .unwrap();
        assert!(reader.mid_frame());
    }
}
