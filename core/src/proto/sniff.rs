//! First-byte sniffing: does a connection speak line commands or framed JSON?
//!
//! # The rule
//!
//! The first byte of a connection decides, once, for the whole connection:
//!
//! - `0x20..=0x7E` (printable ASCII, space included) → [`Mode::Line`];
//! - any other byte → [`Mode::Framed`].
//!
//! # Why it is unambiguous
//!
//! A frame starts with its 4-byte big-endian length, so its first byte is `len >> 24`. Under
//! the default limits (8 KiB requests, 64 KiB replies), and under any limit below 16 MiB, every
//! acceptable frame starts with `0x00`. A first byte of `0x01..=0x1F` means a length of
//! 16 MiB..512 MiB: still framed mode, and the frame decoder rejects it as `FRAME_TOO_LARGE` as
//! soon as the prefix is complete. A first byte of `0x80..=0xFF` (2 GiB or more) likewise.
//! Only a limit of 512 MiB or more could admit a frame whose first byte is printable; the frame
//! decoder refuses such limits ([`FRAME_LIMIT_MAX_BYTES`](super::frame::FRAME_LIMIT_MAX_BYTES)).
//!
//! # Edge cases
//!
//! - A line client that first sends `\r`, `\n` or `\t` (control characters, not printable) is
//!   sniffed as framed; its "prefix" announces at least 150 MiB and is answered with a
//!   `FRAME_TOO_LARGE` error frame. Line clients must start with their command.
//! - `0x7F` (DEL) and bytes of UTF-8 sequences (`0x80..`) are framed mode, for the same reason.
//! - A line starting with a space is line mode (the command is then trimmed).
//! - The sniffed byte is not consumed: the host feeds it, with everything after it, to the
//!   chosen decoder.

/// The protocol a connection speaks, chosen by its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Mode {
    /// Newline-terminated text commands (`ping`, `version`, `status`).
    Line,
    /// 4-byte length-prefixed JSON frames.
    Framed,
}

/// The mode of a connection whose first byte is `first_byte` (see the module docs).
#[must_use]
pub const fn sniff(first_byte: u8) -> Mode {
    match first_byte {
        0x20..=0x7E => Mode::Line,
        _ => Mode::Framed,
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{FRAME_LIMIT_MAX_BYTES, REQUEST_MAX_BYTES, RESPONSE_MAX_BYTES};
    use super::*;

    #[test]
    fn printable_ascii_is_line_mode() {
        for b in [b' ', b'p', b'v', b's', b'S', b'~', b'{'] {
            assert_eq!(sniff(b), Mode::Line, "{b:#x}");
        }
    }

    #[test]
    fn everything_else_is_framed() {
        for b in [0x00, 0x01, b'\t', b'\n', b'\r', 0x1F, 0x7F, 0x80, 0xFF] {
            assert_eq!(sniff(b), Mode::Framed, "{b:#x}");
        }
    }

    #[test]
    fn every_acceptable_prefix_sniffs_as_framed() {
        for len in [
            1,
            REQUEST_MAX_BYTES,
            RESPONSE_MAX_BYTES,
            0xFF_FFFF,
            FRAME_LIMIT_MAX_BYTES,
        ] {
            assert_eq!(sniff((len as u32).to_be_bytes()[0]), Mode::Framed, "{len}");
        }
        assert_eq!(
            sniff(((FRAME_LIMIT_MAX_BYTES + 1) as u32).to_be_bytes()[0]),
            Mode::Line
        );
    }
}
