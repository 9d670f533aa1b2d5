//! The error of every protocol encoder that writes into a caller's buffer.

use core::fmt;

use crate::json::writer::Overflow;

/// The caller's output buffer is too small for the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall;

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("output buffer too small")
    }
}

impl core::error::Error for BufferTooSmall {}

impl From<Overflow> for BufferTooSmall {
    fn from(_: Overflow) -> Self {
        BufferTooSmall
    }
}
