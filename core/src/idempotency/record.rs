//! One key's record, as stored in the table, and the ownership [`Token`].

use super::answer::{Begin, Outcome};
use crate::table::Reclaim;
use crate::time::Instant;

/// Proof that the holder began a key: handed out by `begin` in
/// [`Begin::Started`](super::Begin::Started) and required by `complete`.
///
/// Tokens come from the table's [`IdMinter`](crate::id::IdMinter), keyed by a secret the host
/// draws at each start: unique for the table's life, unpredictable without the key, never
/// zero. So a worker whose in-progress record expired and was begun again by someone else holds
/// a token that no longer matches, and cannot complete the new owner's run; nor can a client
/// derive another key's token from its own.
///
/// A token is a capability, not an identity: whoever holds it may complete the key. The host
/// binds idempotency keys to the authenticated client (e.g. hashes the client's identity into
/// the key) if clients must not complete each other's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Token(u64);

impl Token {
    /// Rebuilds a token from its raw value (as carried over the wire by a host).
    pub const fn from_raw(raw: u64) -> Token {
        Token(raw)
    }

    /// The raw value, for carrying the token over the wire.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// The table's value for one key: vacant, or a [`Saved`] record. Opaque; it appears in
/// signatures only as the element type of the storage (`[Slot<Record>; N]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    state: Option<Saved>,
}

impl Record {
    pub(super) fn in_progress(token: Token, since: Instant, expires_at: Instant) -> Record {
        Saved::InProgress {
            token,
            since,
            expires_at,
        }
        .into()
    }

    pub(super) fn done(
        token: Token,
        outcome: Outcome,
        now: Instant,
        expires_at: Instant,
    ) -> Record {
        Saved::Done {
            token,
            outcome,
            completed_at: now,
            expires_at,
        }
        .into()
    }

    /// The answer `begin` gives a duplicate while the record is live; `None` once it has
    /// expired (or for a vacant record): the key is new.
    pub(super) fn existing(&self, now: Instant) -> Option<Begin> {
        if self.reclaimable_at() <= now {
            return None;
        }
        Some(match self.state? {
            Saved::InProgress {
                since, expires_at, ..
            } => Begin::InProgress { since, expires_at },
            Saved::Done {
                outcome: Outcome::Success(digest),
                completed_at,
                expires_at,
                ..
            } => Begin::Done {
                digest,
                completed_at,
                expires_at,
            },
            Saved::Done {
                outcome: Outcome::Failure,
                completed_at,
                expires_at,
                ..
            } => Begin::Failed {
                completed_at,
                expires_at,
            },
        })
    }

    /// Whether `token` may complete this record at `now`: `Ok` only for a live in-progress
    /// record begun with `token`.
    pub(super) fn check_owner(
        &self,
        now: Instant,
        token: Token,
    ) -> Result<(), super::CompleteError> {
        use super::CompleteError as E;
        match self.state.ok_or(E::Unknown)? {
            Saved::InProgress { token: t, .. } | Saved::Done { token: t, .. } if t != token => {
                Err(E::NotOwner)
            }
            Saved::InProgress { expires_at, .. } if expires_at <= now => Err(E::Expired {
                expired_at: expires_at,
            }),
            Saved::InProgress { .. } => Ok(()),
            Saved::Done { completed_at, .. } => Err(E::AlreadyCompleted { completed_at }),
        }
    }
}

impl From<Saved> for Record {
    fn from(saved: Saved) -> Record {
        Record { state: Some(saved) }
    }
}

/// A record as a host persists it and hands it back after a restart
/// ([`IdempotencyTable::restore`](super::IdempotencyTable::restore)), with its times already
/// converted to this run's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Saved {
    /// Begun and not completed: the owner may still complete it with `token`.
    InProgress {
        /// The owner's token.
        token: Token,
        /// When it was begun.
        since: Instant,
        /// When the owner is presumed crashed.
        expires_at: Instant,
    },
    /// Completed and remembered.
    Done {
        /// The token it was begun with.
        token: Token,
        /// How it ended.
        outcome: Outcome,
        /// When it was completed.
        completed_at: Instant,
        /// When the key is new again.
        expires_at: Instant,
    },
}

impl Saved {
    /// When the record stops mattering.
    pub const fn expires_at(&self) -> Instant {
        match *self {
            Saved::InProgress { expires_at, .. } | Saved::Done { expires_at, .. } => expires_at,
        }
    }
}

impl Reclaim for Record {
    fn reclaimable_at(&self) -> Instant {
        self.state.map_or(Instant::ZERO, |saved| saved.expires_at())
    }
}
