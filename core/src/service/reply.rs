//! Error replies of the service: the core's [`ErrorReply`] followed by machine-readable extra
//! members (`retry_after_ms`, `remaining`, `limit`, `operation`, `tier`), in the order added.

use core::fmt;

use super::{Outcome, Reply, ReplyBuf};
use crate::Instant;
use crate::breaker::State;
use crate::json::writer::Writer;
use crate::proto::{ERROR_MESSAGE_MAX_BYTES, ErrorCode, ErrorReply, format_message};

/// Most extra members one refusal carries.
const EXTRAS_MAX: usize = 5;

/// An extra member of an error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extra<'m> {
    /// `"retry_after_ms":n`.
    RetryAfterMs(u64),
    /// `"remaining":n`.
    Remaining(u32),
    /// `"limit":n`.
    Limit(u32),
    /// `"operation":"name"` (a name: nothing to escape).
    Operation(&'m str),
    /// `"tier":"name"` (a name: nothing to escape).
    Tier(&'m str),
    /// `"state":"closed"`: a breaker's state.
    State(State),
    /// `"since_ms":n`.
    SinceMs(u64),
    /// `"expires_in_ms":n`, or `null` for "never".
    ExpiresInMs(Option<u64>),
    /// `"reason":"text"` (a fixed word: nothing to escape).
    Reason(&'m str),
}

/// A refused request: its code, its message and its extra members.
pub(crate) struct Refusal<'m> {
    code: ErrorCode,
    message: &'m dyn fmt::Display,
    retry_at: Option<Instant>,
    extras: [Option<Extra<'m>>; EXTRAS_MAX],
}

impl<'m> Refusal<'m> {
    pub(crate) fn new(code: ErrorCode, message: &'m dyn fmt::Display) -> Refusal<'m> {
        Refusal {
            code,
            message,
            retry_at: None,
            extras: [None; EXTRAS_MAX],
        }
    }

    /// Adds an extra member (at most [`EXTRAS_MAX`]; a programmer's count).
    pub(crate) fn with(mut self, extra: Extra<'m>) -> Refusal<'m> {
        if let Some(free) = self.extras.iter_mut().find(|e| e.is_none()) {
            *free = Some(extra);
        }
        self
    }

    /// Adds `retry_after_ms` unless `at` is "never" ([`Instant::MAX`]); the outcome carries
    /// `at` either way.
    pub(crate) fn retry_at(mut self, now: Instant, at: Instant) -> Refusal<'m> {
        self.retry_at = Some(at);
        match ms_until(now, at) {
            Some(ms) => self.with(Extra::RetryAfterMs(ms)),
            None => self,
        }
    }
}

/// Whole milliseconds from `now` until `at`, rounded up so a client that waits them is never
/// early; `None` when `at` is [`Instant::MAX`] ("never by waiting").
pub(crate) fn ms_until(now: Instant, at: Instant) -> Option<u64> {
    (at != Instant::MAX).then(|| at.saturating_duration_since(now).as_millis_ceil())
}

/// Writes `refusal` into `out`; the outcome is [`Outcome::Refused`].
pub(crate) fn encode_refusal(out: &mut ReplyBuf, refusal: &Refusal<'_>) -> Reply {
    let mut text = [0u8; ERROR_MESSAGE_MAX_BYTES];
    let message = format_message(refusal.message, &mut text);
    // The buffer holds ERROR_REPLY_MAX_BYTES and then room for every extra member.
    let n = ErrorReply::new(refusal.code, message)
        .encode(out)
        .map_or(0, |n| n);
    let mut w = Writer::new(&mut out[n.saturating_sub(1)..]);
    for extra in refusal.extras.iter().flatten() {
        match *extra {
            Extra::RetryAfterMs(ms) => member(&mut w, b"retry_after_ms", ms),
            Extra::Remaining(n) => member(&mut w, b"remaining", u64::from(n)),
            Extra::Limit(n) => member(&mut w, b"limit", u64::from(n)),
            Extra::Operation(name) => text_member(&mut w, b"operation", name),
            Extra::Tier(name) => text_member(&mut w, b"tier", name),
            Extra::State(state) => text_member(&mut w, b"state", state.as_str()),
            Extra::SinceMs(ms) => member(&mut w, b"since_ms", ms),
            Extra::ExpiresInMs(Some(ms)) => member(&mut w, b"expires_in_ms", ms),
            Extra::ExpiresInMs(None) => w.bytes(b",\"expires_in_ms\":null"),
            Extra::Reason(word) => text_member(&mut w, b"reason", word),
        }
    }
    w.byte(b'}');
    let extra_len = w.finish().map_or(0, |n| n);
    Reply {
        len: n.saturating_sub(1) + extra_len,
        outcome: Outcome::Refused {
            code: refusal.code,
            retry_at: refusal.retry_at,
        },
        error: Some(refusal.code),
    }
}

/// [`encode_refusal`] into a buffer of any length of at least a [`ReplyBuf`] (the replies
/// of methods served into a large buffer); a shorter one gets the reply cut.
pub(crate) fn refuse(out: &mut [u8], refusal: &Refusal<'_>) -> Reply {
    let mut small = [0u8; super::REPLY_MAX_BYTES];
    let reply = encode_refusal(&mut small, refusal);
    let n = reply.len.min(out.len());
    out[..n].copy_from_slice(&small[..n]);
    Reply { len: n, ..reply }
}

/// `,"name":"text"` for a text that needs no escaping (an operation or tier name).
fn text_member(w: &mut Writer<'_>, name: &[u8], text: &str) {
    w.bytes(b",\"");
    w.bytes(name);
    w.bytes(b"\":\"");
    w.bytes(text.as_bytes());
    w.byte(b'"');
}

fn member(w: &mut Writer<'_>, name: &[u8], n: u64) {
    w.byte(b',');
    w.byte(b'"');
    w.bytes(name);
    w.bytes(b"\":");
    w.u64(n);
}
