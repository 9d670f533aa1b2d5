//! Length-prefixed frames: a 4-byte big-endian unsigned length, then that many bytes of UTF-8.
//!
//! [`FrameDecoder`] is incremental: [`feed`](FrameDecoder::feed) accepts any split of the
//! stream (one byte at a time, or several frames in one chunk), consumes at most one frame per
//! call and returns it as soon as its last byte arrives. A length above the limit is reported
//! as soon as the four prefix bytes are known, before any body byte is read, so the host can
//! answer `FRAME_TOO_LARGE` and close without buffering anything.
//!
//! ```
//! use heidi_core::proto::frame::{encode_frame, FrameDecoder, REQUEST_MAX_BYTES};
//!
//! let mut wire = [0u8; 64];
//! let n = encode_frame(br#"{"method":"PING","params":{}}"#, REQUEST_MAX_BYTES, &mut wire).unwrap();
//! let mut decoder = FrameDecoder::<REQUEST_MAX_BYTES>::new();
//! let mut frames = 0;
//! for byte in wire[..n].chunks(1) {
//!     let step = decoder.feed(byte);
//!     assert_eq!(step.consumed, 1);
//!     if let Some(frame) = step.frame {
//!         assert_eq!(frame.unwrap(), r#"{"method":"PING","params":{}}"#);
//!         frames += 1;
//!     }
//! }
//! assert_eq!(frames, 1);
//! assert!(decoder.finish().is_ok()); // the stream ended on a frame boundary
//! ```

use core::fmt;

use super::error::ErrorCode;

/// Size of the length prefix in bytes.
pub const PREFIX_BYTES: usize = 4;

/// Default limit on a request frame's body: 8 KiB (docs/PROTOCOL.md).
pub const REQUEST_MAX_BYTES: usize = 8 * 1024;

/// Default limit on a reply frame's body: 64 KiB (docs/PROTOCOL.md).
pub const RESPONSE_MAX_BYTES: usize = 64 * 1024;

/// The largest request limit a host may be configured with: 64 KiB. A client sends requests
/// up to it (a host with a lower limit answers `FRAME_TOO_LARGE`).
pub const REQUEST_LIMIT_MAX_BYTES: usize = 64 * 1024;

/// The largest reply limit a host may be configured with: 1 MiB. A client reads replies up
/// to it, so it can talk to any host's configuration.
pub const RESPONSE_LIMIT_MAX_BYTES: usize = 1 << 20;

/// The largest frame limit a decoder accepts: `0x1FFF_FFFF` (512 MiB − 1).
///
/// Any larger limit would admit a length prefix whose first byte is printable ASCII
/// (`0x20..`), which [`sniff`](super::sniff::sniff) classifies as a line-mode connection.
pub const FRAME_LIMIT_MAX_BYTES: usize = 0x1FFF_FFFF;

/// A frame decoder for requests with the default 8 KiB limit.
pub type RequestDecoder = FrameDecoder<REQUEST_MAX_BYTES>;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FrameError {
    /// The length prefix announces more than the limit. Reported before any body byte is read;
    /// fatal: the decoder stays failed (the host replies `FRAME_TOO_LARGE` and closes).
    TooLarge {
        /// The announced body length.
        len_bytes: u32,
        /// The decoder's limit.
        limit_bytes: u32,
    },
    /// The length prefix is zero: a frame must hold a JSON object, which is never empty. The
    /// four prefix bytes are consumed and the decoder is ready for the next frame.
    Empty,
    /// The body is not valid UTF-8. The whole frame is consumed and the decoder is ready for
    /// the next frame.
    InvalidUtf8 {
        /// Offset of the first invalid byte within the body.
        at_byte: u32,
    },
    /// The stream ended inside a frame (reported by [`FrameDecoder::finish`]).
    Truncated {
        /// Bytes of the frame (prefix included) that arrived before the end.
        received_bytes: u32,
    },
}

impl FrameError {
    /// True when the stream cannot continue after this error (only [`FrameError::TooLarge`]
    /// and [`FrameError::Truncated`]); the others consumed exactly the bad frame.
    #[must_use]
    pub const fn is_fatal(&self) -> bool {
        matches!(
            self,
            FrameError::TooLarge { .. } | FrameError::Truncated { .. }
        )
    }
}

impl FrameError {
    /// The error reply code: `FRAME_TOO_LARGE` for [`FrameError::TooLarge`], else `BAD_FRAME`.
    #[must_use]
    pub const fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            _ => ErrorCode::BadFrame,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge {
                len_bytes,
                limit_bytes,
            } => write!(
                f,
                "frame of {len_bytes} bytes exceeds the limit of {limit_bytes} bytes"
            ),
            FrameError::Empty => f.write_str("empty frame"),
            FrameError::InvalidUtf8 { at_byte } => {
                write!(f, "frame is not valid UTF-8 (byte {at_byte})")
            }
            FrameError::Truncated { received_bytes } => {
                write!(
                    f,
                    "stream ended inside a frame after {received_bytes} bytes"
                )
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// A frame limit that the decoder cannot honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameLimitError {
    /// `max_frame_bytes` is zero; no frame could ever be accepted.
    Zero,
    /// `max_frame_bytes` is above the decoder's buffer capacity `N`.
    AboveCapacity {
        /// The decoder's buffer capacity.
        capacity_bytes: usize,
    },
}

impl fmt::Display for FrameLimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameLimitError::Zero => f.write_str("max_frame_bytes must be at least 1"),
            FrameLimitError::AboveCapacity { capacity_bytes } => write!(
                f,
                "max_frame_bytes must not exceed the buffer capacity of {capacity_bytes} bytes"
            ),
        }
    }
}

impl core::error::Error for FrameLimitError {}

/// What one [`FrameDecoder::feed`] call did.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "advance the input by `consumed` and handle `frame`"]
pub struct FrameStep<'a> {
    /// How many input bytes were consumed; feed the rest again.
    pub consumed: usize,
    /// A complete frame (or why the frame is bad), when one ended within the consumed bytes.
    pub frame: Option<Result<&'a str, FrameError>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the prefix; `filled` of its 4 bytes are in `prefix`.
    Prefix { filled: u8 },
    /// Reading a body of `len` bytes; `filled` are in the buffer.
    Body { len: usize, filled: usize },
    /// A fatal error happened; everything fed from now on is discarded.
    Failed(FrameError),
}

/// An incremental decoder of length-prefixed frames into a fixed buffer of `N` bytes.
///
/// Work per [`feed`](Self::feed) call is bounded by `PREFIX_BYTES + N` byte copies plus one
/// UTF-8 check of at most `N` bytes.
#[derive(Debug, Clone)]
pub struct FrameDecoder<const N: usize> {
    buf: [u8; N],
    prefix: [u8; PREFIX_BYTES],
    max_frame_bytes: usize,
    state: State,
}

impl<const N: usize> Default for FrameDecoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameDecoder<N> {
    const CAPACITY_OK: () = assert!(
        N > 0 && N <= FRAME_LIMIT_MAX_BYTES,
        "frame buffer capacity must be in 1..=FRAME_LIMIT_MAX_BYTES"
    );

    /// A decoder whose limit is its capacity `N`.
    pub const fn new() -> Self {
        let () = Self::CAPACITY_OK;
        FrameDecoder {
            buf: [0; N],
            prefix: [0; PREFIX_BYTES],
            max_frame_bytes: N,
            state: State::Prefix { filled: 0 },
        }
    }

    /// A decoder that accepts bodies of at most `max_frame_bytes` (`1..=N`).
    pub const fn with_limit(max_frame_bytes: usize) -> Result<Self, FrameLimitError> {
        if max_frame_bytes == 0 {
            return Err(FrameLimitError::Zero);
        }
        if max_frame_bytes > N {
            return Err(FrameLimitError::AboveCapacity { capacity_bytes: N });
        }
        let mut decoder = Self::new();
        decoder.max_frame_bytes = max_frame_bytes;
        Ok(decoder)
    }

    /// The largest body this decoder accepts.
    pub const fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Forgets any partial frame and a fatal error; the next byte starts a length prefix.
    pub fn reset(&mut self) {
        self.state = State::Prefix { filled: 0 };
    }

    /// At the end of the stream: `Ok` when it ended on a frame boundary, otherwise
    /// [`FrameError::Truncated`] (or the fatal error that stopped the decoder).
    pub fn finish(&self) -> Result<(), FrameError> {
        let received = match self.state {
            State::Prefix { filled: 0 } => return Ok(()),
            State::Prefix { filled } => filled as usize,
            State::Body { filled, .. } => PREFIX_BYTES + filled,
            State::Failed(e) => return Err(e),
        };
        Err(FrameError::Truncated {
            received_bytes: received as u32,
        })
    }

    /// Consumes bytes from `input` up to the end of at most one frame.
    ///
    /// Call it again with `&input[step.consumed..]` until the input is used up. After a fatal
    /// error every call consumes all its input and reports the error again. A frame that lies
    /// whole in `input` is handed out from `input` without a copy; one split across calls is
    /// assembled in the decoder's buffer.
    pub fn feed<'a>(&'a mut self, input: &'a [u8]) -> FrameStep<'a> {
        match self.state {
            State::Failed(e) => FrameStep {
                consumed: input.len(),
                frame: Some(Err(e)),
            },
            State::Prefix { filled } => self.feed_prefix(input, filled as usize),
            State::Body { len, filled } => self.feed_body(input, len, filled, 0),
        }
    }

    fn feed_prefix<'a>(&'a mut self, input: &'a [u8], filled: usize) -> FrameStep<'a> {
        let take = input.len().min(PREFIX_BYTES - filled);
        self.prefix[filled..filled + take].copy_from_slice(&input[..take]);
        let filled = filled + take;
        if filled < PREFIX_BYTES {
            self.state = State::Prefix {
                filled: filled as u8,
            };
            return FrameStep {
                consumed: take,
                frame: None,
            };
        }
        let len = u32::from_be_bytes(self.prefix);
        if len == 0 {
            self.state = State::Prefix { filled: 0 };
            return FrameStep {
                consumed: take,
                frame: Some(Err(FrameError::Empty)),
            };
        }
        if len as usize > self.max_frame_bytes {
            let e = FrameError::TooLarge {
                len_bytes: len,
                limit_bytes: self.max_frame_bytes as u32,
            };
            self.state = State::Failed(e);
            return FrameStep {
                consumed: take,
                frame: Some(Err(e)),
            };
        }
        self.feed_body(&input[take..], len as usize, 0, take)
    }

    fn feed_body<'a>(
        &'a mut self,
        input: &'a [u8],
        len: usize,
        filled: usize,
        already: usize,
    ) -> FrameStep<'a> {
        if filled == 0 && input.len() >= len {
            // The whole body is in the input: hand it out where it lies, uncopied.
            self.state = State::Prefix { filled: 0 };
            return FrameStep {
                consumed: already + len,
                frame: Some(utf8(&input[..len])),
            };
        }
        let take = input.len().min(len - filled);
        self.buf[filled..filled + take].copy_from_slice(&input[..take]);
        let filled = filled + take;
        let consumed = already + take;
        if filled < len {
            self.state = State::Body { len, filled };
            return FrameStep {
                consumed,
                frame: None,
            };
        }
        self.state = State::Prefix { filled: 0 };
        FrameStep {
            consumed,
            frame: Some(utf8(&self.buf[..len])),
        }
    }
}

/// A request body that arrived whole by other means than a frame (an HTTP request's body),
/// checked as a frame's body is: [`FrameError::Empty`] when empty,
/// [`FrameError::InvalidUtf8`] where its UTF-8 breaks.
pub fn body_text(body: &[u8]) -> Result<&str, FrameError> {
    if body.is_empty() {
        return Err(FrameError::Empty);
    }
    utf8(body)
}

/// A complete body as text, or where its UTF-8 breaks.
fn utf8(body: &[u8]) -> Result<&str, FrameError> {
    core::str::from_utf8(body).map_err(|e| FrameError::InvalidUtf8 {
        at_byte: e.valid_up_to() as u32,
    })
}

/// A reply (or request) body larger than the frame limit, or an output buffer too small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    /// The body is longer than the limit (or empty: a frame is never empty).
    BadLength {
        /// The body's length.
        len_bytes: usize,
        /// The limit it was checked against.
        limit_bytes: usize,
    },
    /// The output buffer cannot hold the prefix and the body.
    BufferTooSmall {
        /// Bytes the frame needs.
        needed_bytes: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BadLength {
                len_bytes,
                limit_bytes,
            } => write!(
                f,
                "frame body of {len_bytes} bytes is not in 1..={limit_bytes}"
            ),
            EncodeError::BufferTooSmall { needed_bytes } => {
                write!(
                    f,
                    "output buffer too small: the frame needs {needed_bytes} bytes"
                )
            }
        }
    }
}

impl core::error::Error for EncodeError {}

/// The 4-byte prefix for a body of `len_bytes`, checked against `limit_bytes` (`1..=limit`).
///
/// For hosts that write the prefix and the body separately (vectored I/O, no copy).
pub const fn frame_prefix(len_bytes: usize, limit_bytes: usize) -> Result<[u8; 4], EncodeError> {
    if len_bytes == 0 || len_bytes > limit_bytes || len_bytes > u32::MAX as usize {
        return Err(EncodeError::BadLength {
            len_bytes,
            limit_bytes,
        });
    }
    Ok((len_bytes as u32).to_be_bytes())
}

/// Writes prefix and `body` into `out`; returns the frame's length (`4 + body.len()`).
pub fn encode_frame(body: &[u8], limit_bytes: usize, out: &mut [u8]) -> Result<usize, EncodeError> {
    let prefix = frame_prefix(body.len(), limit_bytes)?;
    let needed_bytes = PREFIX_BYTES + body.len();
    let Some(out) = out.get_mut(..needed_bytes) else {
        return Err(EncodeError::BufferTooSmall { needed_bytes });
    };
    out[..PREFIX_BYTES].copy_from_slice(&prefix);
    out[PREFIX_BYTES..].copy_from_slice(body);
    Ok(needed_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of `chunk` bytes; collects frames (as owned copies) and errors.
    fn decode_all<const N: usize>(
        d: &mut FrameDecoder<N>,
        input: &[u8],
        chunk: usize,
        out: &mut [u8],
    ) -> (usize, Option<FrameError>, usize) {
        let (mut frames, mut written) = (0, 0);
        for mut piece in input.chunks(chunk) {
            while !piece.is_empty() {
                let step = d.feed(piece);
                piece = &piece[step.consumed..];
                match step.frame {
                    Some(Ok(f)) => {
                        out[written..written + f.len()].copy_from_slice(f.as_bytes());
                        written += f.len();
                        frames += 1;
                    }
                    Some(Err(e)) => return (frames, Some(e), written),
                    None => assert!(piece.is_empty(), "stalled with input left"),
                }
            }
        }
        (frames, None, written)
    }

    fn frame(body: &[u8], out: &mut [u8]) -> usize {
        encode_frame(body, usize::MAX, out).unwrap()
    }

    #[test]
    fn a_whole_body_is_checked_as_a_frame_body() {
        assert_eq!(body_text(b"{}"), Ok("{}"));
        assert_eq!(body_text(b""), Err(FrameError::Empty));
        assert_eq!(
            body_text(b"{\xff}"),
            Err(FrameError::InvalidUtf8 { at_byte: 1 })
        );
        assert_eq!(body_text(b"").unwrap_err().code(), ErrorCode::BadFrame);
    }

    #[test]
    fn several_frames_in_one_chunk_and_byte_by_byte() {
        let mut wire = [0u8; 64];
        let mut n = frame(b"{}", &mut wire);
        n += frame(b"{\"a\":1}", &mut wire[n..]);
        n += frame(b"[]", &mut wire[n..]);
        for chunk in [1, 2, 3, 5, 64] {
            let mut d = FrameDecoder::<16>::new();
            let mut out = [0u8; 64];
            let (frames, err, w) = decode_all(&mut d, &wire[..n], chunk, &mut out);
            assert_eq!((frames, err), (3, None), "chunk {chunk}");
            assert_eq!(&out[..w], b"{}{\"a\":1}[]");
            assert_eq!(d.finish(), Ok(()));
        }
    }

    #[test]
    fn a_whole_frame_is_borrowed_and_a_split_one_assembled() {
        let wire = [0, 0, 0, 2, b'{', b'}', 0, 0, 0, 2, b'[', b']'];
        let mut d = FrameDecoder::<8>::new();
        let step = d.feed(&wire);
        assert_eq!(step.consumed, 6);
        let body = step.frame.unwrap().unwrap();
        assert_eq!(body, "{}");
        assert!(core::ptr::eq(body.as_ptr(), &wire[4]), "not copied");
        // The second frame arrives in two pieces: its bytes are copied into the decoder.
        let step = d.feed(&wire[6..11]);
        assert_eq!((step.consumed, step.frame), (5, None));
        let step = d.feed(&wire[11..]);
        let body = step.frame.unwrap().unwrap();
        assert_eq!(body, "[]");
        assert!(!core::ptr::eq(body.as_ptr(), &wire[10]));
    }

    #[test]
    fn frame_exactly_at_the_limit_passes() {
        let body = [b'x'; 8];
        let mut wire = [0u8; 12];
        frame(&body, &mut wire);
        let mut d = FrameDecoder::<16>::with_limit(8).unwrap();
        let step = d.feed(&wire);
        assert_eq!(step.consumed, 12);
        assert_eq!(step.frame, Some(Ok("xxxxxxxx")));
    }

    #[test]
    fn one_byte_over_the_limit_fails_before_the_body() {
        let mut d = FrameDecoder::<16>::with_limit(8).unwrap();
        // Only the prefix and one body byte are offered; the error comes after the prefix.
        let step = d.feed(&[0, 0, 0, 9, b'x']);
        assert_eq!(step.consumed, 4, "no body byte is read");
        let e = FrameError::TooLarge {
            len_bytes: 9,
            limit_bytes: 8,
        };
        assert_eq!(step.frame, Some(Err(e)));
        assert!(e.is_fatal());
        assert_eq!(e.code(), ErrorCode::FrameTooLarge);
        assert_eq!(FrameError::Empty.code(), ErrorCode::BadFrame);
        // Failed for good: everything is discarded and the error repeats.
        let step = d.feed(b"xyz");
        assert_eq!((step.consumed, step.frame), (3, Some(Err(e))));
        assert_eq!(d.finish(), Err(e));
        d.reset();
        assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn over_long_prefix_split_byte_by_byte_is_reported_on_the_fourth_byte() {
        let mut d = RequestDecoder::new();
        for b in [0x7f, 0xff, 0xff] {
            assert_eq!(
                d.feed(&[b]),
                FrameStep {
                    consumed: 1,
                    frame: None
                }
            );
        }
        let step = d.feed(&[0xff]);
        assert!(matches!(
            step.frame,
            Some(Err(FrameError::TooLarge {
                len_bytes: 0x7fff_ffff,
                ..
            }))
        ));
    }

    #[test]
    fn empty_frame_is_an_error_and_the_stream_continues() {
        let mut d = FrameDecoder::<8>::new();
        let step = d.feed(&[0, 0, 0, 0, 0, 0, 0, 2, b'{', b'}']);
        assert_eq!(step.consumed, 4);
        assert_eq!(step.frame, Some(Err(FrameError::Empty)));
        assert!(!FrameError::Empty.is_fatal());
        let step = d.feed(&[0, 0, 0, 2, b'{', b'}']);
        assert_eq!(step.frame, Some(Ok("{}")));
    }

    #[test]
    fn invalid_utf8_is_an_error_and_the_stream_continues() {
        let mut d = FrameDecoder::<8>::new();
        let step = d.feed(&[0, 0, 0, 3, b'a', 0xff, b'b', 0, 0, 0, 1, b'1']);
        assert_eq!(step.consumed, 7);
        assert_eq!(
            step.frame,
            Some(Err(FrameError::InvalidUtf8 { at_byte: 1 }))
        );
        let step = d.feed(&[0, 0, 0, 1, b'1']);
        assert_eq!(step.frame, Some(Ok("1")));
        // The same fault in a body assembled from two pieces (the copying path).
        let step = d.feed(&[0, 0, 0, 3, b'a']);
        assert_eq!((step.consumed, step.frame), (5, None));
        let step = d.feed(&[0xff, b'b']);
        assert_eq!(
            step.frame,
            Some(Err(FrameError::InvalidUtf8 { at_byte: 1 }))
        );
        let step = d.feed(&[0, 0, 0, 1, b'2']);
        assert_eq!(step.frame, Some(Ok("2")));
    }

    #[test]
    fn finish_reports_a_truncated_frame() {
        let mut d = FrameDecoder::<8>::new();
        let _ = d.feed(&[0, 0]);
        assert_eq!(d.finish(), Err(FrameError::Truncated { received_bytes: 2 }));
        let _ = d.feed(&[0, 3, b'a']);
        assert_eq!(d.finish(), Err(FrameError::Truncated { received_bytes: 5 }));
        assert!(d.finish().unwrap_err().is_fatal());
    }

    #[test]
    fn empty_input_consumes_nothing() {
        let mut d = FrameDecoder::<8>::new();
        assert_eq!(
            d.feed(&[]),
            FrameStep {
                consumed: 0,
                frame: None
            }
        );
    }

    #[test]
    fn limits_are_validated() {
        assert_eq!(
            FrameDecoder::<8>::with_limit(0).unwrap_err(),
            FrameLimitError::Zero
        );
        assert_eq!(
            FrameDecoder::<8>::with_limit(9).unwrap_err(),
            FrameLimitError::AboveCapacity { capacity_bytes: 8 }
        );
        assert_eq!(RequestDecoder::new().max_frame_bytes(), 8192);
    }

    #[test]
    fn encoder_checks_the_limit_and_the_buffer() {
        let mut out = [0u8; 8];
        assert_eq!(encode_frame(b"abcd", 4, &mut out), Ok(8));
        assert_eq!(out, [0, 0, 0, 4, b'a', b'b', b'c', b'd']);
        assert_eq!(
            encode_frame(b"abcde", 4, &mut out),
            Err(EncodeError::BadLength {
                len_bytes: 5,
                limit_bytes: 4
            })
        );
        assert_eq!(
            encode_frame(b"", 4, &mut out),
            Err(EncodeError::BadLength {
                len_bytes: 0,
                limit_bytes: 4
            })
        );
        assert_eq!(
            encode_frame(b"abcde", 8, &mut out),
            Err(EncodeError::BufferTooSmall { needed_bytes: 9 })
        );
        assert_eq!(
            frame_prefix(RESPONSE_MAX_BYTES, RESPONSE_MAX_BYTES),
            Ok([0, 1, 0, 0])
        );
    }
}
