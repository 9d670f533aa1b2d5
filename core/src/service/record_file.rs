//! `idempotency.jsonl`: the file in which a host keeps the idempotency records the service
//! asks to be durable ([`Durable::Record`](super::Durable::Record)), so they survive a
//! restart. The core decides its bytes, how the lines are read back, which line of a key
//! survives, and when the file is rewritten; the host appends, syncs, reads and renames.
//!
//! One JSON object per line, times in Unix milliseconds (the core's clock restarts with the
//! host; the wall clock does not), converted through a [`WallAnchor`]:
//!
//! ```text
//! {"state":"in_progress","key":"k","token":"7","since_ms":…,"expires_at_ms":…}
//! {"state":"done","key":"k","token":"7","digest":"<64 hex>","response":"…","completed_at_ms":…,"expires_at_ms":…}
//! {"state":"released","key":"k"}
//! ```
//!
//! (`digest` only for a success, `response` only when one was stored.) Reading back
//! ([`read_record_line`]): the **newest** line of a key wins, a `released` line forgets the
//! key ([`LineLife::is_release`]), a record expired at start is dropped
//! ([`LineLife::is_live_at`]), and when more live records remain than the table holds the
//! newest [`FileBounds::keep`] stay. A line that is not a record is skipped and counted; a
//! torn last line (no newline: a crash mid-write) is cut. The file is rewritten with its live
//! records alone at start and whenever [`FileBounds::compact`] says so.
//!
//! ```
//! use heidi_core::Instant;
//! use heidi_core::idempotency::{Saved, Token};
//! use heidi_core::service::{IdemRecord, LineScratch, WallAnchor, read_record_line, write_record_line};
//!
//! let anchor = WallAnchor { now: Instant::from_secs(10), wall_ms: 1_800_000_000_000 };
//! let begun = IdemRecord::Begun {
//!     key: "order-17",
//!     token: Token::from_raw(7),
//!     since: Instant::from_secs(10),
//!     expires_at: Instant::from_secs(310),
//! };
//! let mut line = String::new();
//! write_record_line(&begun, anchor, &mut line).unwrap();
//! assert_eq!(
//!     line,
//!     "{\"state\":\"in_progress\",\"key\":\"order-17\",\"token\":\"7\",\
//!      \"since_ms\":1800000000000,\"expires_at_ms\":1800000300000}\n"
//! );
//! // After a restart whose clock starts again at zero, the record is back on the new clock.
//! let later = WallAnchor { now: Instant::ZERO, wall_ms: 1_800_000_060_000 };
//! let mut scratch = LineScratch::new();
//! let read = read_record_line(line.trim_end(), &mut scratch).unwrap();
//! assert_eq!((read.key, read.life().is_live_at(later.wall_ms)), ("order-17", true));
//! let saved = Saved::InProgress {
//!     token: Token::from_raw(7),
//!     since: Instant::ZERO,
//!     expires_at: Instant::from_secs(240),
//! };
//! assert_eq!(read.saved(later), Some(saved));
//! ```

use core::fmt::{self, Write};

use super::IDEMPOTENCY_RESPONSE_MAX_BYTES;
use super::fields::{self, Found, Schema};
use super::idempotency::{IdemRecord, parse_hex};
use super::rate_params::KEY_MAX_BYTES;
use crate::idempotency::{Outcome, Saved, Token};
use crate::journal::LineHash;
use crate::json::escape::write_quoted;
use crate::proto::params::Members;
use crate::time::{Duration, Instant};

/// The record file's name inside the host's output directory.
pub const IDEMPOTENCY_FILE: &str = "idempotency.jsonl";

/// Longest line read back; a longer one is not a record (the longest key and the largest
/// response, every byte escaped, take well under it).
pub const RECORD_LINE_MAX_BYTES: usize = 64 * 1024;

/// The file is not rewritten for its length while it holds fewer lines than this.
pub const COMPACT_MIN_LINES: usize = 4096;

/// The core's clock and the wall clock, read together: converts between them (saturating; a
/// wall time before the core clock's start is its start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WallAnchor {
    /// The core's clock.
    pub now: Instant,
    /// The wall clock at the same moment, in Unix milliseconds.
    pub wall_ms: u64,
}

impl WallAnchor {
    /// `t` on the wall clock.
    pub fn wall_ms(self, t: Instant) -> u64 {
        match t.checked_duration_since(self.now) {
            Some(ahead) => self.wall_ms.saturating_add(ahead.as_millis()),
            None => self
                .wall_ms
                .saturating_sub(self.now.saturating_duration_since(t).as_millis()),
        }
    }

    /// The wall time `ms` on the core's clock.
    pub fn instant(self, ms: u64) -> Instant {
        if ms >= self.wall_ms {
            self.now
                .saturating_add(Duration::from_millis(ms - self.wall_ms))
        } else {
            self.now
                .saturating_sub(Duration::from_millis(self.wall_ms - ms))
        }
    }
}

/// Writes the line of `record` (a newline at its end), its times on the wall clock through
/// `anchor`.
pub fn write_record_line<W: Write>(
    record: &IdemRecord<'_>,
    anchor: WallAnchor,
    w: &mut W,
) -> fmt::Result {
    let state = match record {
        IdemRecord::Begun { .. } => "in_progress",
        IdemRecord::Done { .. } => "done",
        IdemRecord::Released { .. } => "released",
    };
    write!(w, "{{\"state\":\"{state}\",\"key\":")?;
    write_quoted(w, record.key())?;
    match *record {
        IdemRecord::Begun {
            token,
            since,
            expires_at,
            ..
        } => write!(
            w,
            ",\"token\":\"{}\",\"since_ms\":{},\"expires_at_ms\":{}",
            token.get(),
            anchor.wall_ms(since),
            anchor.wall_ms(expires_at)
        )?,
        IdemRecord::Done {
            token,
            digest,
            response,
            completed_at,
            expires_at,
            ..
        } => {
            write!(w, ",\"token\":\"{}\"", token.get())?;
            if let Some(digest) = digest {
                write!(w, ",\"digest\":\"{}\"", LineHash(digest).hex().as_str())?;
            }
            if let Some(response) = response {
                w.write_str(",\"response\":")?;
                write_quoted(w, response)?;
            }
            write!(
                w,
                ",\"completed_at_ms\":{},\"expires_at_ms\":{}",
                anchor.wall_ms(completed_at),
                anchor.wall_ms(expires_at)
            )?;
        }
        IdemRecord::Released { .. } => {}
    }
    w.write_str("}\n")
}

/// Room to unescape a line's key and response into.
#[derive(Clone, Debug)]
pub struct LineScratch {
    key: [u8; KEY_MAX_BYTES],
    response: [u8; IDEMPOTENCY_RESPONSE_MAX_BYTES],
}

impl LineScratch {
    /// Empty room.
    pub const fn new() -> LineScratch {
        LineScratch {
            key: [0; KEY_MAX_BYTES],
            response: [0; IDEMPOTENCY_RESPONSE_MAX_BYTES],
        }
    }
}

impl Default for LineScratch {
    fn default() -> LineScratch {
        LineScratch::new()
    }
}

/// One line read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLine<'a> {
    /// The client's key, unescaped.
    pub key: &'a str,
    /// What the line says of it.
    pub state: LineState<'a>,
}

/// What a line says of its key; times in Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineState<'a> {
    /// Begun, not completed.
    InProgress {
        /// The owner's token.
        token: Token,
        /// When it was begun.
        since_ms: u64,
        /// When the owner is presumed crashed.
        expires_at_ms: u64,
    },
    /// Completed and remembered.
    Done {
        /// The token it was begun with.
        token: Token,
        /// How it ended (a failure has no digest).
        outcome: Outcome,
        /// The response stored with it, unescaped.
        response: Option<&'a str>,
        /// When it was completed.
        completed_at_ms: u64,
        /// When the key is new again.
        expires_at_ms: u64,
    },
    /// A failure that freed the key.
    Released,
}

/// What the file's upkeep reads of a line: until when its record lives, or that it is a
/// release.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineLife {
    expires_at_ms: Option<u64>,
}

impl LineLife {
    /// The life of the line `write_record_line` writes for `record` through `anchor`.
    pub fn of(record: &IdemRecord<'_>, anchor: WallAnchor) -> LineLife {
        LineLife {
            expires_at_ms: record.expires_at().map(|t| anchor.wall_ms(t)),
        }
    }

    /// Whether the line forgets its key (`released`): older lines of the key no longer count.
    pub fn is_release(self) -> bool {
        self.expires_at_ms.is_none()
    }

    /// When the record expires (Unix ms); `None` for a release.
    pub fn expires_at_ms(self) -> Option<u64> {
        self.expires_at_ms
    }

    /// Whether the line holds a record still live at the wall time `now_ms`.
    pub fn is_live_at(self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|e| e > now_ms)
    }
}

impl RecordLine<'_> {
    /// Until when the line's record lives, or that it is a release.
    pub fn life(&self) -> LineLife {
        let expires_at_ms = match self.state {
            LineState::InProgress { expires_at_ms, .. } | LineState::Done { expires_at_ms, .. } => {
                Some(expires_at_ms)
            }
            LineState::Released => None,
        };
        LineLife { expires_at_ms }
    }

    /// The record on the core's clock through `anchor`, for
    /// [`Idempotency::restore`](super::Idempotency::restore); `None` for a release.
    pub fn saved(&self, anchor: WallAnchor) -> Option<Saved> {
        let at = |ms| anchor.instant(ms);
        match self.state {
            LineState::InProgress {
                token,
                since_ms,
                expires_at_ms,
            } => Some(Saved::InProgress {
                token,
                since: at(since_ms),
                expires_at: at(expires_at_ms),
            }),
            LineState::Done {
                token,
                outcome,
                completed_at_ms,
                expires_at_ms,
                ..
            } => Some(Saved::Done {
                token,
                outcome,
                completed_at: at(completed_at_ms),
                expires_at: at(expires_at_ms),
            }),
            LineState::Released => None,
        }
    }

    /// The response stored with a done record.
    pub fn response(&self) -> Option<&str> {
        match self.state {
            LineState::Done { response, .. } => response,
            _ => None,
        }
    }
}

/// A line that is not a record: not a JSON object of one of the three shapes, a member it
/// does not take, a zero or malformed token, a digest that is not 64 hex digits, a key or a
/// response beyond its bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadLine;

impl fmt::Display for BadLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an idempotency record line")
    }
}

impl core::error::Error for BadLine {}

const STATE: usize = 0;
const KEY: usize = 1;
const TOKEN: usize = 2;
const SINCE: usize = 3;
const EXPIRES: usize = 4;
const DIGEST: usize = 5;
const RESPONSE: usize = 6;
const COMPLETED: usize = 7;

static LINE: Schema<8> = Schema {
    names: [
        "state",
        "key",
        "token",
        "since_ms",
        "expires_at_ms",
        "digest",
        "response",
        "completed_at_ms",
    ],
    expected: "completed_at_ms, digest, expires_at_ms, key, response, since_ms, state, token",
};

/// Reads one line (without its newline); `scratch` holds the key and the response when they
/// were written with escapes.
pub fn read_record_line<'a>(
    line: &'a str,
    scratch: &'a mut LineScratch,
) -> Result<RecordLine<'a>, BadLine> {
    let found = fields::collect(Members::new(line), &LINE).map_err(|_| BadLine)?;
    found.finish().map_err(|_| BadLine)?;
    let mut state_buf = [0u8; 16];
    let state = found.text(STATE, &mut state_buf).map_err(|_| BadLine)?;
    let takes: &[usize] = match state {
        "in_progress" => &[STATE, KEY, TOKEN, SINCE, EXPIRES],
        "done" => &[STATE, KEY, TOKEN, DIGEST, RESPONSE, COMPLETED, EXPIRES],
        "released" => &[STATE, KEY],
        _ => return Err(BadLine),
    };
    if (0..LINE.names.len()).any(|i| found.raw(i).is_some() && !takes.contains(&i)) {
        return Err(BadLine);
    }
    let state = match state {
        "in_progress" => LineState::InProgress {
            token: token(&found)?,
            since_ms: time(&found, SINCE)?,
            expires_at_ms: time(&found, EXPIRES)?,
        },
        "done" => {
            let mut digest_buf = [0u8; 64];
            let outcome = match found.text_opt(DIGEST, &mut digest_buf) {
                Ok(Some(hex)) => Outcome::Success(parse_hex(hex).ok_or(BadLine)?),
                Ok(None) => Outcome::Failure,
                Err(_) => return Err(BadLine),
            };
            let response = match found.text_any(RESPONSE, &mut scratch.response) {
                Ok(Some(len)) => {
                    Some(core::str::from_utf8(&scratch.response[..len]).map_err(|_| BadLine)?)
                }
                Ok(None) => None,
                Err(_) => return Err(BadLine),
            };
            LineState::Done {
                token: token(&found)?,
                outcome,
                response,
                completed_at_ms: time(&found, COMPLETED)?,
                expires_at_ms: time(&found, EXPIRES)?,
            }
        }
        _ => LineState::Released,
    };
    let key = found.text(KEY, &mut scratch.key).map_err(|_| BadLine)?;
    Ok(RecordLine { key, state })
}

fn token<const N: usize>(found: &Found<'_, N>) -> Result<Token, BadLine> {
    match found.id(TOKEN) {
        Ok(0) | Err(_) => Err(BadLine),
        Ok(raw) => Ok(Token::from_raw(raw)),
    }
}

fn time<const N: usize>(found: &Found<'_, N>, i: usize) -> Result<u64, BadLine> {
    match found.integer_in(i, 0..=u64::MAX, "") {
        Ok(Some(ms)) => Ok(ms),
        _ => Err(BadLine),
    }
}

/// How big the file and the host's view of it may grow, for a table of `capacity` records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileBounds {
    capacity: usize,
}

impl FileBounds {
    /// The bounds for a table of `capacity` records (at least 1).
    pub const fn new(capacity: usize) -> FileBounds {
        FileBounds {
            capacity: if capacity == 0 { 1 } else { capacity },
        }
    }

    /// Live records kept when the file is read back: the newest this many.
    pub const fn keep(self) -> usize {
        self.capacity
    }

    /// While reading the file back, the keys held may reach this many before the host drops
    /// the expired ones and the oldest beyond [`keep`](FileBounds::keep) (so its memory is
    /// bounded whatever the file holds).
    pub const fn load_prune_above(self) -> usize {
        self.capacity.saturating_mul(2)
    }

    /// Whether a file of `lines` lines, naming `live` keys with a record, is rewritten with
    /// its live records now: once it holds four times as many lines as live records (and at
    /// least [`COMPACT_MIN_LINES`]), or once it names more than
    /// [`prune_above`](FileBounds::prune_above) keys (expired records are dropped then).
    pub fn compact(self, lines: usize, live: usize, prune_above: usize) -> bool {
        lines >= COMPACT_MIN_LINES.max(live.saturating_mul(4)) || live > prune_above
    }

    /// The key count after a rewrite that left `live` keys above which the next rewrite
    /// comes: twice the table's capacity, or twice what is live if more.
    pub fn prune_above(self, live: usize) -> usize {
        self.capacity.max(live).saturating_mul(2)
    }
}

#[cfg(test)]
mod tests;
