//! `LEASE_ACQUIRE`, `LEASE_REFRESH` and `LEASE_RELEASE`: the per-key concurrency leases of
//! [`crate::lease`] behind the wire protocol, in a [`LeaseTable`] whose storage the host
//! makes at the first lease call (a daemon that never hands out leases keeps none resident).

use super::fields::{self, FieldError, Found, Schema};
use super::reply::{Extra, Refusal, encode_refusal, ms_until};
use super::{Outcome, Reply, ReplyBuf};
use crate::Instant;
use crate::json::writer::Writer;
use crate::key::{KeyHash, KeyHasher};
use crate::lease::{
    AcquireError, LeaseConfig, LeaseConfigError, LeaseId, LeaseSet, Leases, RefreshError,
};
use crate::proto::params::{Member, NotAnObject};
use crate::proto::{ErrorCode, Method};
use crate::table::Slot;

use super::rate_params::KEY_MAX_BYTES;

/// The leases of a [`Service`](super::Service): a [`Leases`] table over storage of `slots`
/// keys (`K` leases each) made by the host's `make` at the first lease call.
#[derive(Debug)]
pub struct LeaseTable<S, const K: usize> {
    leases: Option<Leases<S, K>>,
    make: fn(usize) -> S,
    slots: usize,
    config: LeaseConfig,
    id_key: [u8; 16],
    cursor: usize,
}

impl<S, const K: usize> LeaseTable<S, K>
where
    S: AsRef<[Slot<LeaseSet<K>>]> + AsMut<[Slot<LeaseSet<K>>]>,
{
    /// A table of `slots` keys (a non-zero multiple of 8) under `config`, its storage made by
    /// `make(slots)` when the first lease call comes, lease ids keyed by `id_key` (16 bytes
    /// the host draws afresh at each start; see [`Leases::new`]).
    pub fn new(
        slots: usize,
        make: fn(usize) -> S,
        config: LeaseConfig,
        id_key: [u8; 16],
    ) -> Result<Self, LeaseConfigError> {
        config.validate(K)?;
        Ok(LeaseTable {
            leases: None,
            make,
            slots,
            config,
            id_key,
            cursor: 0,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> LeaseConfig {
        self.config
    }

    /// Puts a new limit and TTL in force for every key (see [`Leases::set_config`]).
    pub fn set_config(&mut self, config: LeaseConfig) -> Result<(), LeaseConfigError> {
        config.validate(K)?;
        if let Some(leases) = &mut self.leases {
            leases.set_config(config)?;
        }
        self.config = config;
        Ok(())
    }

    /// Keys holding a slot (0 before the first lease call).
    pub fn keys(&self) -> usize {
        self.leases.as_ref().map_or(0, Leases::keys)
    }

    fn table(&mut self) -> &mut Leases<S, K> {
        let (slots, make, config, id_key) = (self.slots, self.make, self.config, self.id_key);
        self.leases.get_or_insert_with(|| {
            match Leases::new(make(slots), config, id_key) {
                Ok(leases) => leases,
                // `config` was validated against `K` by `new` and `set_config`.
                Err(_) => unreachable!("a validated lease configuration"),
            }
        })
    }
}

/// What a [`Service`](super::Service) holds for leases: a [`LeaseTable`] or [`NoLeases`].
pub trait MaybeLeases {
    /// Serves a lease method; `None` when there are no leases.
    #[doc(hidden)]
    fn serve<'a>(
        &mut self,
        now: Instant,
        hasher: &KeyHasher,
        method: Method,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut ReplyBuf,
    ) -> Option<Reply>;
    /// Keys holding a slot.
    fn keys(&self) -> usize;
    /// Frees up to `max_slots` slots whose leases all expired, continuing where the last call
    /// stopped.
    fn sweep(&mut self, now: Instant, max_slots: usize);
    /// Puts `config` in force ([`LeaseTable::set_config`]); nothing to do without leases.
    fn set_config(&mut self, config: LeaseConfig) -> Result<(), LeaseConfigError>;
}

/// A service without leases: the lease methods are not covered.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLeases;

impl MaybeLeases for NoLeases {
    fn serve<'a>(
        &mut self,
        _: Instant,
        _: &KeyHasher,
        _: Method,
        _: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        _: &mut ReplyBuf,
    ) -> Option<Reply> {
        None
    }
    fn keys(&self) -> usize {
        0
    }
    fn sweep(&mut self, _: Instant, _: usize) {}
    fn set_config(&mut self, _: LeaseConfig) -> Result<(), LeaseConfigError> {
        Ok(())
    }
}

static ACQUIRE: Schema<1> = Schema {
    names: ["key"],
    expected: "key",
};
static WITH_ID: Schema<2> = Schema {
    names: ["key", "lease_id"],
    expected: "key, lease_id",
};

impl<S, const K: usize> MaybeLeases for LeaseTable<S, K>
where
    S: AsRef<[Slot<LeaseSet<K>>]> + AsMut<[Slot<LeaseSet<K>>]>,
{
    fn serve<'a>(
        &mut self,
        now: Instant,
        hasher: &KeyHasher,
        method: Method,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut ReplyBuf,
    ) -> Option<Reply> {
        let schema = match method {
            Method::LeaseAcquire => None,
            Method::LeaseRefresh | Method::LeaseRelease => Some(&WITH_ID),
            _ => return None,
        };
        let mut buf = [0u8; KEY_MAX_BYTES];
        let read = match schema {
            None => fields::collect(members, &ACQUIRE).and_then(|f| key_and_id(&f, None, &mut buf)),
            Some(schema) => {
                fields::collect(members, schema).and_then(|f| key_and_id(&f, Some(1), &mut buf))
            }
        };
        let (key, id) = match read {
            Ok((key, id)) => (hasher.hash(key.as_bytes()), LeaseId::from_raw(id)),
            Err(e) => {
                return Some(encode_refusal(
                    out,
                    &Refusal::new(ErrorCode::BadRequest, &e),
                ));
            }
        };
        Some(match method {
            Method::LeaseAcquire => self.acquire(now, key, out),
            Method::LeaseRefresh => self.refresh(now, key, id, out),
            _ => self.release(now, key, id, out),
        })
    }

    fn keys(&self) -> usize {
        LeaseTable::keys(self)
    }

    fn sweep(&mut self, now: Instant, max_slots: usize) {
        if let Some(leases) = &mut self.leases {
            self.cursor = leases.sweep(now, self.cursor, max_slots);
        }
    }
    fn set_config(&mut self, config: LeaseConfig) -> Result<(), LeaseConfigError> {
        LeaseTable::set_config(self, config)
    }
}

/// `key`, and `lease_id` when the schema has it at `id`; then nothing else.
fn key_and_id<'m, 's, const N: usize>(
    found: &Found<'m, N>,
    id: Option<usize>,
    buf: &'s mut [u8; KEY_MAX_BYTES],
) -> Result<(&'s str, u64), FieldError<'m>>
where
    'm: 's,
{
    let key = found.text(0, buf)?;
    let id = match id {
        Some(i) => found.id(i)?,
        None => 0,
    };
    found.finish()?;
    Ok((key, id))
}

impl<S, const K: usize> LeaseTable<S, K>
where
    S: AsRef<[Slot<LeaseSet<K>>]> + AsMut<[Slot<LeaseSet<K>>]>,
{
    /// `{"active":…,"expires_in_ms":…,"lease_id":"…","limit":…,"ok":true}`.
    fn acquire(&mut self, now: Instant, key: KeyHash, out: &mut ReplyBuf) -> Reply {
        let leases = self.table();
        let limit = leases.config().limit_per_key;
        match leases.acquire(now, key) {
            Ok(lease) => {
                let mut w = Writer::new(out);
                w.bytes(b"{\"active\":");
                w.u64(leases.active(now, key) as u64);
                w.byte(b',');
                expires_and_id(&mut w, now, lease.expires_at, lease.id);
                w.bytes(b",\"limit\":");
                w.u64(u64::from(limit));
                w.bytes(b",\"ok\":true}");
                allowed(&w)
            }
            Err(AcquireError::AtLimit { retry_at }) => {
                let message = AtLimit(limit);
                let refusal = Refusal::new(ErrorCode::LeaseUnavailable, &message)
                    .retry_at(now, retry_at)
                    .with(Extra::Limit(u32::from(limit)));
                encode_refusal(out, &refusal)
            }
            Err(AcquireError::TableFull { retry_at }) => {
                let message = "the lease table is full of keys with live leases";
                let refusal = Refusal::new(ErrorCode::Overloaded, &message).retry_at(now, retry_at);
                encode_refusal(out, &refusal)
            }
            Err(AcquireError::ExpiryOverflow) => overflow(out),
        }
    }

    /// `{"expires_in_ms":…,"lease_id":"…","ok":true}`.
    fn refresh(&mut self, now: Instant, key: KeyHash, id: LeaseId, out: &mut ReplyBuf) -> Reply {
        match self.table().refresh(now, key, id) {
            Ok(expires_at) => {
                let mut w = Writer::new(out);
                w.byte(b'{');
                expires_and_id(&mut w, now, expires_at, id);
                w.bytes(b",\"ok\":true}");
                allowed(&w)
            }
            Err(RefreshError::Unknown) => not_found(out),
            Err(RefreshError::ExpiryOverflow) => overflow(out),
        }
    }

    /// `{"active":…,"ok":true,"released":true}`.
    fn release(&mut self, now: Instant, key: KeyHash, id: LeaseId, out: &mut ReplyBuf) -> Reply {
        let leases = self.table();
        match leases.release(now, key, id) {
            Ok(()) => {
                let mut w = Writer::new(out);
                w.bytes(b"{\"active\":");
                w.u64(leases.active(now, key) as u64);
                w.bytes(b",\"ok\":true,\"released\":true}");
                allowed(&w)
            }
            Err(_) => not_found(out),
        }
    }
}

/// `"expires_in_ms":…,"lease_id":"…"` (`null` for a lease that never expires).
fn expires_and_id(w: &mut Writer<'_>, now: Instant, expires_at: Instant, id: LeaseId) {
    w.bytes(b"\"expires_in_ms\":");
    match ms_until(now, expires_at) {
        Some(ms) => w.u64(ms),
        None => w.bytes(b"null"),
    }
    w.bytes(b",\"lease_id\":\"");
    w.u64(id.get());
    w.byte(b'"');
}

fn allowed(w: &Writer<'_>) -> Reply {
    Reply {
        len: w.finish().map_or(0, |n| n),
        outcome: Outcome::Allowed,
        error: None,
    }
}

/// "this key holds its limit of N live leases".
struct AtLimit(u16);

impl core::fmt::Display for AtLimit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "this key holds its limit of {} live leases", self.0)
    }
}

fn not_found(out: &mut ReplyBuf) -> Reply {
    let message = "no live lease with this id for this key: released, expired or never issued";
    encode_refusal(out, &Refusal::new(ErrorCode::LeaseNotFound, &message))
}

fn overflow(out: &mut ReplyBuf) -> Reply {
    let message = "now + ttl_ms is past the end of the clock";
    encode_refusal(out, &Refusal::new(ErrorCode::LeaseUnavailable, &message))
}
