//! The per-connection frame decoder, sized for the configured request limit: the core decoder
//! keeps its buffer inline, so a small limit gets a small buffer.

use heidi_core::proto::{FrameDecoder, FrameStep, REQUEST_MAX_BYTES};

use heidi_core::proto::REQUEST_LIMIT_MAX_BYTES;

/// A boxed core [`FrameDecoder`] whose capacity fits the limit.
pub(crate) enum Decoder {
    /// Limits up to the protocol default (8 KiB).
    Small(Box<FrameDecoder<REQUEST_MAX_BYTES>>),
    /// Limits up to [`REQUEST_LIMIT_MAX_BYTES`].
    Large(Box<FrameDecoder<REQUEST_LIMIT_MAX_BYTES>>),
}

impl Decoder {
    /// A decoder that accepts bodies of at most `limit_bytes` (validated by the configuration
    /// to lie in `64..=REQUEST_LIMIT_MAX_BYTES`).
    pub(crate) fn new(limit_bytes: usize) -> Decoder {
        if limit_bytes <= REQUEST_MAX_BYTES {
            let d = FrameDecoder::with_limit(limit_bytes).expect("limit checked by the config");
            Decoder::Small(Box::new(d))
        } else {
            let d = FrameDecoder::with_limit(limit_bytes).expect("limit checked by the config");
            Decoder::Large(Box::new(d))
        }
    }

    /// Whether the decoder stands between frames (no partial frame, no fatal error), so
    /// another connection may use it.
    pub(crate) fn between_frames(&self) -> bool {
        match self {
            Decoder::Small(d) => d.finish().is_ok(),
            Decoder::Large(d) => d.finish().is_ok(),
        }
    }

    /// See [`FrameDecoder::feed`].
    pub(crate) fn feed<'a>(&'a mut self, input: &'a [u8]) -> FrameStep<'a> {
        match self {
            Decoder::Small(d) => d.feed(input),
            Decoder::Large(d) => d.feed(input),
        }
    }
}
