//! Line commands and their replies (the original daemon's text protocol; docs/PROTOCOL.md).
//!
//! | line (trimmed of ASCII whitespace) | reply |
//! |---|---|
//! | `ping` | `PONG` |
//! | `version` | `PROTOCOL 1 DAEMON <version>` |
//! | `status`, `status/json`, `STATUS` | one JSON object: `protocol_version`, `version`, `pid`, `uptime_ms`, `rss_kb`, `threads`, `queue_depth` |
//! | empty | nothing (blank lines are ignored) |
//! | anything else | `ERR UNKNOWN_COMMAND <command>` |
//! | a line over the limit | `ERR LINE_TOO_LONG` |
//!
//! Commands are case-sensitive, exactly as the original daemon's. Every reply line ends with
//! `\n`. The echoed command is cut to [`UNKNOWN_ECHO_MAX_BYTES`] (then `...` follows) and
//! every byte outside printable ASCII becomes `?`, so a reply is always one safe line.
//!
//! ```
//! use heidi_core::proto::command::{Command, DaemonStatus, LineReply, LINE_REPLY_MAX_BYTES};
//!
//! let status = || DaemonStatus { version: "0.1.0", pid: 42, ..DaemonStatus::default() };
//! let mut buf = [0u8; LINE_REPLY_MAX_BYTES];
//! let reply = LineReply::answer(Command::parse(b"version"), "0.1.0", status).unwrap();
//! let n = reply.encode(&mut buf).unwrap();
//! assert_eq!(&buf[..n], b"PROTOCOL 1 DAEMON 0.1.0\n");
//! ```

use super::MethodClass;
use super::buffer::BufferTooSmall;
use super::reply::truncate;
use crate::json::escape::quoted;
use crate::json::writer::Writer;

/// The line protocol's version, reported by `version` and `status`.
pub const PROTOCOL_VERSION: u32 = 1;

/// At most this many bytes of an unknown command are echoed back.
pub const UNKNOWN_ECHO_MAX_BYTES: usize = 32;

/// At most this many bytes of the daemon's version string are sent.
pub const VERSION_MAX_BYTES: usize = 64;

/// A buffer of this size always holds any [`LineReply`]: the status line's 91 fixed bytes,
/// 80 bytes of numbers, and a version with every byte escaped to 6.
pub const LINE_REPLY_MAX_BYTES: usize = 91 + 80 + 6 * VERSION_MAX_BYTES;

/// A parsed command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Command<'a> {
    /// `ping`.
    Ping,
    /// `version`.
    Version,
    /// `status`, `status/json` or `STATUS`.
    Status,
    /// A blank line; it gets no reply.
    Empty,
    /// Anything else: the trimmed line.
    Unknown(&'a [u8]),
}

impl<'a> Command<'a> {
    /// Parses one line (without its `\n`; see [`line`](super::line)).
    #[must_use]
    pub fn parse(line: &'a [u8]) -> Command<'a> {
        match line.trim_ascii() {
            b"" => Command::Empty,
            b"ping" => Command::Ping,
            b"version" => Command::Version,
            b"status" | b"status/json" | b"STATUS" => Command::Status,
            other => Command::Unknown(other),
        }
    }
}

/// The fields of the `status` line, supplied by the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DaemonStatus<'a> {
    /// The protocol version; [`PROTOCOL_VERSION`] by default.
    pub protocol_version: u32,
    /// The daemon's version (e.g. `CARGO_PKG_VERSION`); at most [`VERSION_MAX_BYTES`] sent.
    pub version: &'a str,
    /// The daemon's process id.
    pub pid: u32,
    /// Milliseconds since the daemon started.
    pub uptime_ms: u64,
    /// Resident set size in KiB.
    pub rss_kb: u64,
    /// Number of threads.
    pub threads: u32,
    /// Requests waiting to be served.
    pub queue_depth: u32,
}

impl Default for DaemonStatus<'_> {
    fn default() -> Self {
        DaemonStatus {
            protocol_version: PROTOCOL_VERSION,
            version: "",
            pid: 0,
            uptime_ms: 0,
            rss_kb: 0,
            threads: 0,
            queue_depth: 0,
        }
    }
}

/// A reply line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LineReply<'a> {
    /// `PONG`.
    Pong,
    /// `PROTOCOL 1 DAEMON <version>`.
    Version {
        /// The daemon's version.
        daemon_version: &'a str,
    },
    /// The status JSON line.
    Status(DaemonStatus<'a>),
    /// `ERR UNKNOWN_COMMAND <command>` (the command is made safe when encoded).
    UnknownCommand(&'a [u8]),
    /// `ERR LINE_TOO_LONG`.
    LineTooLong,
    /// `ERR FORBIDDEN`: the peer may not call [`LineReply::CLASS`] methods; the host closes
    /// the connection after it.
    Forbidden,
    /// `ERR OVERLOADED`: the host has too many connections; it closes this one after it.
    Overloaded,
}

impl<'a> LineReply<'a> {
    /// The class of method every line command is: they read the daemon's status, so a peer
    /// must be admitted to read-only methods to use them.
    pub const CLASS: MethodClass = MethodClass::Read;

    /// The reply to `command`; `None` for a blank line. `status` is called only for `status`.
    #[must_use]
    pub fn answer(
        command: Command<'a>,
        daemon_version: &'a str,
        status: impl FnOnce() -> DaemonStatus<'a>,
    ) -> Option<LineReply<'a>> {
        Some(match command {
            Command::Ping => LineReply::Pong,
            Command::Version => LineReply::Version { daemon_version },
            Command::Status => LineReply::Status(status()),
            Command::Unknown(cmd) => LineReply::UnknownCommand(cmd),
            Command::Empty => return None,
        })
    }

    /// Writes the reply line, `\n` included, into `out`; returns its length. Never fails when
    /// `out` has [`LINE_REPLY_MAX_BYTES`] bytes.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut out = Writer::new(out);
        match *self {
            LineReply::Pong => out.bytes(b"PONG"),
            LineReply::Version { daemon_version } => {
                out.bytes(b"PROTOCOL ");
                out.u64(PROTOCOL_VERSION.into());
                out.bytes(b" DAEMON ");
                safe_text(daemon_version.as_bytes(), VERSION_MAX_BYTES, &mut out);
            }
            LineReply::Status(ref s) => status_json(s, &mut out),
            LineReply::UnknownCommand(cmd) => {
                out.bytes(b"ERR UNKNOWN_COMMAND ");
                safe_text(cmd, UNKNOWN_ECHO_MAX_BYTES, &mut out);
            }
            LineReply::LineTooLong => out.bytes(b"ERR LINE_TOO_LONG"),
            LineReply::Forbidden => out.bytes(b"ERR FORBIDDEN"),
            LineReply::Overloaded => out.bytes(b"ERR OVERLOADED"),
        }
        out.byte(b'\n');
        Ok(out.finish()?)
    }
}

/// Writes at most `max_bytes` of `text`, each byte outside `0x20..=0x7E` as `?`, then `...`
/// when it was cut.
fn safe_text(text: &[u8], max_bytes: usize, out: &mut Writer<'_>) {
    for &b in text.iter().take(max_bytes) {
        out.byte(if matches!(b, 0x20..=0x7E) { b } else { b'?' });
    }
    if text.len() > max_bytes {
        out.bytes(b"...");
    }
}

fn status_json(s: &DaemonStatus<'_>, out: &mut Writer<'_>) {
    out.bytes(b"{\"protocol_version\":");
    out.u64(s.protocol_version.into());
    out.bytes(b",\"version\":");
    quoted(out, truncate(s.version, VERSION_MAX_BYTES));
    out.bytes(b",\"pid\":");
    out.u64(s.pid.into());
    out.bytes(b",\"uptime_ms\":");
    out.u64(s.uptime_ms);
    out.bytes(b",\"rss_kb\":");
    out.u64(s.rss_kb);
    out.bytes(b",\"threads\":");
    out.u64(s.threads.into());
    out.bytes(b",\"queue_depth\":");
    out.u64(s.queue_depth.into());
    out.byte(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(line: &[u8], buf: &mut [u8]) -> usize {
        let status = DaemonStatus {
            version: "1.2.3",
            pid: 7,
            uptime_ms: 1500,
            rss_kb: 2048,
            threads: 3,
            queue_depth: 1,
            ..DaemonStatus::default()
        };
        match LineReply::answer(Command::parse(line), "1.2.3", || status) {
            Some(r) => r.encode(buf).unwrap(),
            None => 0,
        }
    }

    fn text(line: &[u8]) -> heapless::String<LINE_REPLY_MAX_BYTES> {
        let mut buf = [0u8; LINE_REPLY_MAX_BYTES];
        let n = reply(line, &mut buf);
        heapless::String::try_from(core::str::from_utf8(&buf[..n]).unwrap()).unwrap()
    }

    #[test]
    fn known_commands() {
        assert_eq!(text(b"ping"), "PONG\n");
        assert_eq!(text(b"  ping\t"), "PONG\n");
        assert_eq!(text(b"version"), "PROTOCOL 1 DAEMON 1.2.3\n");
        let json = "{\"protocol_version\":1,\"version\":\"1.2.3\",\"pid\":7,\"uptime_ms\":1500,\
                    \"rss_kb\":2048,\"threads\":3,\"queue_depth\":1}\n";
        for cmd in [&b"status"[..], b"status/json", b"STATUS"] {
            assert_eq!(text(cmd), json);
        }
    }

    #[test]
    fn blank_lines_get_no_reply() {
        assert_eq!(Command::parse(b" \t "), Command::Empty);
        assert_eq!(text(b""), "");
    }

    #[test]
    fn unknown_commands_are_echoed_bounded_and_safe() {
        assert_eq!(text(b"PING"), "ERR UNKNOWN_COMMAND PING\n");
        assert_eq!(text(b"st\x1b[2Jat\xff"), "ERR UNKNOWN_COMMAND st?[2Jat?\n");
        assert_eq!(
            text(&[b'x'; 32]),
            "ERR UNKNOWN_COMMAND xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"
        );
        assert_eq!(
            text(&[b'y'; 33]),
            "ERR UNKNOWN_COMMAND yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy...\n"
        );
    }

    #[test]
    fn error_lines() {
        let mut buf = [0u8; 32];
        for (reply, line) in [
            (LineReply::LineTooLong, &b"ERR LINE_TOO_LONG\n"[..]),
            (LineReply::Forbidden, b"ERR FORBIDDEN\n"),
            (LineReply::Overloaded, b"ERR OVERLOADED\n"),
        ] {
            let n = reply.encode(&mut buf).unwrap();
            assert_eq!(&buf[..n], line);
        }
    }

    #[test]
    fn worst_case_status_fits_and_version_is_escaped() {
        let version = [0x01u8; VERSION_MAX_BYTES + 5];
        let version = core::str::from_utf8(&version).unwrap();
        let s = DaemonStatus {
            protocol_version: u32::MAX,
            version,
            pid: u32::MAX,
            uptime_ms: u64::MAX,
            rss_kb: u64::MAX,
            threads: u32::MAX,
            queue_depth: u32::MAX,
        };
        let mut buf = [0u8; LINE_REPLY_MAX_BYTES];
        let n = LineReply::Status(s).encode(&mut buf).unwrap();
        assert_eq!(n, LINE_REPLY_MAX_BYTES);
        let mut small = [0u8; 16];
        assert_eq!(LineReply::Status(s).encode(&mut small), Err(BufferTooSmall));
        let n = LineReply::Version {
            daemon_version: "1\n2",
        }
        .encode(&mut buf)
        .unwrap();
        assert_eq!(&buf[..n], b"PROTOCOL 1 DAEMON 1?2\n");
    }
}
