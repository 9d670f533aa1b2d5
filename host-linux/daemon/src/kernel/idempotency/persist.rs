//! What the host persists for the idempotency table, and reading it back: the record
//! changes ([`IdemChange`]) with their wall-clock conversion, and [`saved_of`] for a restart.

use heidi_core::idempotency::{Outcome, Saved, Token};
use heidi_core::{Duration, Instant};

use super::{hex, parse_hex};
use heidi_common::IdemLine;

/// What must be durable before an idempotency reply is sent (see
/// [`Handled::Idempotency`](crate::kernel::Handled::Idempotency)).
#[derive(Debug)]
pub enum IdemPersist {
    /// Write this record (`OUT_DIR/idempotency.jsonl`), then send the reply.
    Record(IdemChange),
    /// The reply says `done` or `failed`: send it once every record written before is
    /// durable (the completion it reports may still be on its way to disk).
    Barrier,
}

/// A change of one key's record, in the core's time; [`IdemChange::line`] converts it.
#[derive(Debug)]
pub struct IdemChange {
    pub(super) key: String,
    pub(super) change: Change,
}

#[derive(Debug)]
pub(super) enum Change {
    Begun {
        token: Token,
        since: Instant,
        expires_at: Instant,
    },
    Done {
        token: Token,
        digest: Option<[u8; 32]>,
        response: Option<String>,
        completed_at: Instant,
        expires_at: Instant,
    },
    Released,
}

impl IdemChange {
    /// The record file's line, its times converted to Unix milliseconds through the pair
    /// (`now`, `now_wall_ms`) read together.
    pub fn line(&self, now: Instant, now_wall_ms: u64) -> IdemLine {
        let wall = |t: Instant| to_wall_ms(now, now_wall_ms, t);
        let key = self.key.clone();
        match &self.change {
            Change::Begun {
                token,
                since,
                expires_at,
            } => IdemLine::InProgress {
                key,
                token: token.get().to_string(),
                since_ms: wall(*since),
                expires_at_ms: wall(*expires_at),
            },
            Change::Done {
                token,
                digest,
                response,
                completed_at,
                expires_at,
            } => IdemLine::Done {
                key,
                token: token.get().to_string(),
                digest: digest.as_ref().map(hex),
                response: response.clone(),
                completed_at_ms: wall(*completed_at),
                expires_at_ms: wall(*expires_at),
            },
            Change::Released => IdemLine::Released { key },
        }
    }
}

/// `t` on the wall clock, given that `now` is `now_wall_ms` (saturating).
fn to_wall_ms(now: Instant, now_wall_ms: u64, t: Instant) -> u64 {
    match t.checked_duration_since(now) {
        Some(ahead) => now_wall_ms.saturating_add(ahead.as_millis()),
        None => now_wall_ms.saturating_sub(now.saturating_duration_since(t).as_millis()),
    }
}

/// A wall-clock time `t_ms` on the core's clock, given that `now` is `now_wall_ms`
/// (saturating; a time before the clock's start is its start).
fn from_wall_ms(now: Instant, now_wall_ms: u64, t_ms: u64) -> Instant {
    if t_ms >= now_wall_ms {
        now.saturating_add(Duration::from_millis(t_ms - now_wall_ms))
    } else {
        now.saturating_sub(Duration::from_millis(now_wall_ms - t_ms))
    }
}

/// What restoring the saved records did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdemRestored {
    /// Records put back.
    pub restored: usize,
    /// Records that found no slot (the oldest of a file larger than the table), dropped.
    pub no_room: usize,
    /// Records that are not valid (a bad token or digest), dropped.
    pub invalid: usize,
}

/// A saved line as a core record on this run's clock, with its response; `None` for a
/// release or a line whose token or digest does not parse.
pub(super) fn saved_of(
    now: Instant,
    now_wall_ms: u64,
    line: &IdemLine,
) -> Option<(Saved, Option<String>)> {
    let at = |ms: u64| from_wall_ms(now, now_wall_ms, ms);
    let token = |t: &str| {
        t.parse::<u64>()
            .ok()
            .filter(|t| *t != 0)
            .map(Token::from_raw)
    };
    match line {
        IdemLine::InProgress {
            token: t,
            since_ms,
            expires_at_ms,
            ..
        } => Some((
            Saved::InProgress {
                token: token(t)?,
                since: at(*since_ms),
                expires_at: at(*expires_at_ms),
            },
            None,
        )),
        IdemLine::Done {
            token: t,
            digest,
            response,
            completed_at_ms,
            expires_at_ms,
            ..
        } => {
            let outcome = match digest {
                Some(d) => Outcome::Success(parse_hex(d)?),
                None => Outcome::Failure,
            };
            let saved = Saved::Done {
                token: token(t)?,
                outcome,
                completed_at: at(*completed_at_ms),
                expires_at: at(*expires_at_ms),
            };
            Some((saved, response.clone()))
        }
        IdemLine::Released { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_times_convert_both_ways_around_now() {
        let now = Instant::from_secs(10);
        let wall = 1_800_000_000_000;
        for t in [Instant::from_secs(3), now, Instant::from_secs(86_410)] {
            let ms = to_wall_ms(now, wall, t);
            assert_eq!(from_wall_ms(now, wall, ms), t);
        }
        assert_eq!(
            to_wall_ms(now, u64::MAX - 5, Instant::MAX),
            u64::MAX,
            "saturates"
        );
        // Before the clock's start: its start.
        assert_eq!(from_wall_ms(now, wall, wall - 60_000), Instant::ZERO);
    }

    #[test]
    fn lines_with_a_bad_token_or_digest_are_not_records() {
        let now = Instant::from_secs(1);
        let line = |token: &str, digest: &str| IdemLine::Done {
            key: "k".into(),
            token: token.into(),
            digest: Some(digest.into()),
            response: None,
            completed_at_ms: 1,
            expires_at_ms: 2,
        };
        let good = "ab".repeat(32);
        assert!(saved_of(now, 1, &line("7", &good)).is_some());
        for (token, digest) in [("0", good.as_str()), ("x", &good), ("7", "abc")] {
            assert!(
                saved_of(now, 1, &line(token, digest)).is_none(),
                "{token} {digest}"
            );
        }
    }
}
