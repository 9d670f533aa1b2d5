//! `IDEMPOTENCY_BEGIN` and `IDEMPOTENCY_COMPLETE`: an [`IdempotencyTable`] behind the wire
//! protocol, the responses stored with completed keys (in the host's [`Responses`] store),
//! and what the host must make durable before it sends a reply ([`Durable`]).
//!
//! # What must be durable, and when
//!
//! - A `started` begin: its in-progress record ([`IdemRecord::Begun`]), so that after a crash
//!   the key stays in progress for its owner, and nobody runs the work twice.
//! - A `done` or `failed` begin: every record written before ([`Durable::Barrier`]), since
//!   the completion it reports may still be on its way to disk.
//! - A completion: its record ([`IdemRecord::Done`] when remembered, [`IdemRecord::Released`]
//!   for a failure that is not).
//!
//! Both methods are served by [`Service::handle_large`](super::Service::handle_large) (a
//! stored response of 4,096 bytes can make the reply longer than a [`super::ReplyBuf`]); after
//! each, [`Service::durable`](super::Service::durable) says what to persist.

use super::fields::{self, FieldError, Found, Schema};
use super::reply::{Extra, Refusal, ms_until, refuse};
use super::{Outcome as ReplyOutcome, Reply};
use crate::Instant;
use crate::idempotency::{
    Begin, BeginError, CompleteError, Completed, IdempotencyConfig, IdempotencyConfigError,
    IdempotencyTable, Outcome, Record, Saved, Token,
};
use crate::journal::LineHash;
use crate::json::escape::quoted;
use crate::json::writer::Writer;
use crate::key::{KeyHash, KeyHasher};
use crate::proto::params::{Member, NotAnObject};
use crate::proto::{ErrorCode, Method};
use crate::table::{Slot, TableFull};

use super::rate_params::KEY_MAX_BYTES;

/// Longest response `IDEMPOTENCY_COMPLETE` stores with a key, in bytes of UTF-8.
pub const IDEMPOTENCY_RESPONSE_MAX_BYTES: usize = 4_096;

/// The longest reply of the idempotency methods: a `done` with a response of
/// [`IDEMPOTENCY_RESPONSE_MAX_BYTES`], every byte escaped.
pub const IDEMPOTENCY_REPLY_MAX_BYTES: usize = 256 + 6 * IDEMPOTENCY_RESPONSE_MAX_BYTES;

/// Where the responses of completed keys are kept: the host's memory, bounded by the host
/// (at most one per live record of the table is ever asked for).
pub trait Responses {
    /// The response stored for `key`.
    fn get(&self, key: KeyHash) -> Option<&str>;
    /// Keeps `response` for `key` until `expires_at`, replacing any; responses expired at
    /// `now` may be dropped to make room.
    fn insert(&mut self, now: Instant, key: KeyHash, expires_at: Instant, response: &str);
    /// Forgets the response of `key`.
    fn remove(&mut self, key: KeyHash);
}

/// A store that keeps no responses: `done` answers carry the digest only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoResponses;

impl Responses for NoResponses {
    fn get(&self, _: KeyHash) -> Option<&str> {
        None
    }
    fn insert(&mut self, _: Instant, _: KeyHash, _: Instant, _: &str) {}
    fn remove(&mut self, _: KeyHash) {}
}

/// A record change the host must make durable before the reply (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdemRecord<'a> {
    /// The key was begun: in progress for `token` from `since` until `expires_at`.
    Begun {
        /// The client's key, unescaped.
        key: &'a str,
        /// The owner's token.
        token: Token,
        /// When it was begun.
        since: Instant,
        /// When the owner is presumed crashed.
        expires_at: Instant,
    },
    /// The key was completed and is remembered until `expires_at`.
    Done {
        /// The client's key, unescaped.
        key: &'a str,
        /// The owner's token.
        token: Token,
        /// The digest of a success; `None` for a remembered failure.
        digest: Option<[u8; 32]>,
        /// The response stored with it.
        response: Option<&'a str>,
        /// When it was completed.
        completed_at: Instant,
        /// When the key is new again.
        expires_at: Instant,
    },
    /// A failure that is not remembered: the key is free again.
    Released {
        /// The client's key, unescaped.
        key: &'a str,
    },
}

impl<'a> IdemRecord<'a> {
    /// The client's key.
    pub fn key(&self) -> &'a str {
        match *self {
            IdemRecord::Begun { key, .. }
            | IdemRecord::Done { key, .. }
            | IdemRecord::Released { key } => key,
        }
    }

    /// Until when the record lives; `None` for a release (there is no record).
    pub fn expires_at(&self) -> Option<Instant> {
        match *self {
            IdemRecord::Begun { expires_at, .. } | IdemRecord::Done { expires_at, .. } => {
                Some(expires_at)
            }
            IdemRecord::Released { .. } => None,
        }
    }
}

/// What the host must make durable before it sends the reply of an idempotency method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable<'a> {
    /// Write this record, then send the reply.
    Record(IdemRecord<'a>),
    /// Send the reply once every record written before is durable.
    Barrier,
}

/// The kind of the pending [`Durable`] (its data lives in the scratch buffers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Begun {
        token: Token,
        since: Instant,
        expires_at: Instant,
    },
    Done {
        token: Token,
        digest: Option<[u8; 32]>,
        response: bool,
        completed_at: Instant,
        expires_at: Instant,
    },
    Released,
    Barrier,
}

/// The idempotency records of a [`Service`](super::Service): an [`IdempotencyTable`] over
/// storage of `slots` records made by the host's `make` at the first call (or restore), and
/// the host's [`Responses`] store.
#[derive(Debug)]
pub struct Idempotency<S, R> {
    table: Option<IdempotencyTable<S>>,
    make: fn(usize) -> S,
    slots: usize,
    config: IdempotencyConfig,
    token_key: [u8; 16],
    cursor: usize,
    responses: R,
    pending: Pending,
    key: [u8; KEY_MAX_BYTES],
    key_len: usize,
    response: [u8; IDEMPOTENCY_RESPONSE_MAX_BYTES],
    response_len: usize,
}

impl<S, R> Idempotency<S, R>
where
    S: AsRef<[Slot<Record>]> + AsMut<[Slot<Record>]>,
    R: Responses,
{
    /// A table of `slots` records (a non-zero multiple of 8) under `config` (fixed for the
    /// table's life: records hold their TTLs), its storage made by `make(slots)` at the
    /// first call, tokens keyed by `token_key` (16 bytes drawn afresh at each start), the
    /// responses kept in `responses`.
    pub fn new(
        slots: usize,
        make: fn(usize) -> S,
        config: IdempotencyConfig,
        token_key: [u8; 16],
        responses: R,
    ) -> Result<Self, IdempotencyConfigError> {
        config.validate()?;
        Ok(Idempotency {
            table: None,
            make,
            slots,
            config,
            token_key,
            cursor: 0,
            responses,
            pending: Pending::None,
            key: [0; KEY_MAX_BYTES],
            key_len: 0,
            response: [0; IDEMPOTENCY_RESPONSE_MAX_BYTES],
            response_len: 0,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &IdempotencyConfig {
        &self.config
    }

    /// Records held (0 before the first call).
    pub fn len(&self) -> usize {
        self.table.as_ref().map_or(0, IdempotencyTable::len)
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The responses store.
    pub fn responses(&self) -> &R {
        &self.responses
    }

    /// Puts back a record saved before a restart (`saved`, its times on this run's clock),
    /// with its stored response. `Ok(false)`: the table holds a newer record for the key, or
    /// `saved` has expired; `Err`: no slot.
    pub fn restore(
        &mut self,
        now: Instant,
        hasher: &KeyHasher,
        key: &str,
        saved: Saved,
        response: Option<&str>,
    ) -> Result<bool, TableFull> {
        let hash = hasher.hash(key.as_bytes());
        let restored = self.table().restore(now, hash, saved)?;
        if let (true, Some(response)) = (restored, response) {
            self.responses
                .insert(now, hash, saved.expires_at(), response);
        }
        Ok(restored)
    }

    fn table(&mut self) -> &mut IdempotencyTable<S> {
        let (slots, make, config, key) = (self.slots, self.make, self.config, self.token_key);
        self.table
            .get_or_insert_with(|| match IdempotencyTable::new(config, make(slots), key) {
                Ok(table) => table,
                // `config` was validated by `new`.
                Err(_) => unreachable!("a validated idempotency configuration"),
            })
    }

    fn key_str(&self) -> &str {
        core::str::from_utf8(&self.key[..self.key_len]).unwrap_or("")
    }

    fn response_str(&self) -> &str {
        core::str::from_utf8(&self.response[..self.response_len]).unwrap_or("")
    }
}

/// What a [`Service`](super::Service) holds for idempotency: an [`Idempotency`] or
/// [`NoIdempotency`].
pub trait MaybeIdempotency {
    /// Serves an idempotency method into `out`; `None` when there is no table.
    #[doc(hidden)]
    fn serve<'a>(
        &mut self,
        now: Instant,
        hasher: &KeyHasher,
        method: Method,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut [u8],
    ) -> Option<Reply>;
    /// What the last idempotency call requires to be durable before its reply.
    fn durable(&self) -> Option<Durable<'_>>;
    /// Forgets the last call's requirement (the service served another method).
    #[doc(hidden)]
    fn clear_durable(&mut self);
    /// Records held.
    fn records(&self) -> usize;
    /// Frees up to `max_slots` expired records, continuing where the last call stopped.
    fn sweep(&mut self, now: Instant, max_slots: usize);
    /// The longest reply (0 without a table).
    fn reply_max_bytes(&self) -> usize;
}

/// A service without idempotency records: the methods are not covered.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIdempotency;

impl MaybeIdempotency for NoIdempotency {
    fn serve<'a>(
        &mut self,
        _: Instant,
        _: &KeyHasher,
        _: Method,
        _: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        _: &mut [u8],
    ) -> Option<Reply> {
        None
    }
    fn durable(&self) -> Option<Durable<'_>> {
        None
    }
    fn clear_durable(&mut self) {}
    fn records(&self) -> usize {
        0
    }
    fn sweep(&mut self, _: Instant, _: usize) {}
    fn reply_max_bytes(&self) -> usize {
        0
    }
}

static BEGIN: Schema<1> = Schema {
    names: ["key"],
    expected: "key",
};
static COMPLETE: Schema<5> = Schema {
    names: ["key", "token", "outcome", "digest", "response"],
    expected: "digest, key, outcome, response, token",
};

/// The params of `IDEMPOTENCY_COMPLETE`, the key and response copied into the scratch.
struct CompleteCall {
    token: Token,
    outcome: Outcome,
    response: bool,
}

impl<S, R> MaybeIdempotency for Idempotency<S, R>
where
    S: AsRef<[Slot<Record>]> + AsMut<[Slot<Record>]>,
    R: Responses,
{
    fn serve<'a>(
        &mut self,
        now: Instant,
        hasher: &KeyHasher,
        method: Method,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut [u8],
    ) -> Option<Reply> {
        self.pending = Pending::None;
        let begin = match method {
            Method::IdempotencyBegin => true,
            Method::IdempotencyComplete => false,
            _ => return None,
        };
        if out.len() < IDEMPOTENCY_REPLY_MAX_BYTES {
            let message = "the reply buffer is shorter than IDEMPOTENCY_REPLY_MAX_BYTES";
            return Some(refuse(out, &Refusal::new(ErrorCode::Internal, &message)));
        }
        Some(if begin {
            self.begin(now, hasher, members, out)
        } else {
            self.complete(now, hasher, members, out)
        })
    }

    fn durable(&self) -> Option<Durable<'_>> {
        let key = self.key_str();
        let record = match self.pending {
            Pending::None => return None,
            Pending::Barrier => return Some(Durable::Barrier),
            Pending::Begun {
                token,
                since,
                expires_at,
            } => IdemRecord::Begun {
                key,
                token,
                since,
                expires_at,
            },
            Pending::Done {
                token,
                digest,
                response,
                completed_at,
                expires_at,
            } => IdemRecord::Done {
                key,
                token,
                digest,
                response: response.then(|| self.response_str()),
                completed_at,
                expires_at,
            },
            Pending::Released => IdemRecord::Released { key },
        };
        Some(Durable::Record(record))
    }

    fn clear_durable(&mut self) {
        self.pending = Pending::None;
    }

    fn records(&self) -> usize {
        self.len()
    }

    fn sweep(&mut self, now: Instant, max_slots: usize) {
        if let Some(table) = &mut self.table {
            self.cursor = table.sweep(now, self.cursor, max_slots);
        }
    }

    fn reply_max_bytes(&self) -> usize {
        IDEMPOTENCY_REPLY_MAX_BYTES
    }
}

impl<S, R> Idempotency<S, R>
where
    S: AsRef<[Slot<Record>]> + AsMut<[Slot<Record>]>,
    R: Responses,
{
    fn begin<'a>(
        &mut self,
        now: Instant,
        hasher: &KeyHasher,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut [u8],
    ) -> Reply {
        let read = fields::collect(members, &BEGIN).and_then(|found| {
            let n = copy_key(&found, &mut self.key)?;
            found.finish()?;
            Ok(n)
        });
        match read {
            Ok(n) => self.key_len = n,
            Err(e) => return refuse(out, &Refusal::new(ErrorCode::BadRequest, &e)),
        }
        let key = hasher.hash(&self.key[..self.key_len]);
        let answer = self.table().begin(now, key);
        let age = |at: Instant| now.saturating_duration_since(at).as_millis();
        let mut w = Writer::new(out);
        match answer {
            Ok(Begin::Started { token, expires_at }) => {
                self.responses.remove(key);
                self.pending = Pending::Begun {
                    token,
                    since: now,
                    expires_at,
                };
                w.bytes(b"{\"expires_in_ms\":");
                optional_ms(&mut w, ms_until(now, expires_at));
                w.bytes(b",\"status\":\"started\",\"token\":\"");
                w.u64(token.get());
                w.bytes(b"\"}");
            }
            Ok(Begin::InProgress { since, expires_at }) => {
                let message = "this idempotency key is already being processed by another call";
                let refusal = Refusal::new(ErrorCode::InProgress, &message)
                    .with(Extra::SinceMs(age(since)))
                    .with(Extra::ExpiresInMs(ms_until(now, expires_at)));
                return refuse(out, &refusal);
            }
            Ok(Begin::Done {
                digest,
                completed_at,
                expires_at,
            }) => {
                self.pending = Pending::Barrier;
                w.bytes(b"{\"completed_ago_ms\":");
                w.u64(age(completed_at));
                w.bytes(b",\"digest\":\"");
                hex(&mut w, &digest);
                w.bytes(b"\",\"expires_in_ms\":");
                optional_ms(&mut w, ms_until(now, expires_at));
                stored_response(&mut w, self.responses.get(key));
                w.bytes(b",\"status\":\"done\"}");
            }
            Ok(Begin::Failed {
                completed_at,
                expires_at,
            }) => {
                self.pending = Pending::Barrier;
                w.bytes(b"{\"completed_ago_ms\":");
                w.u64(age(completed_at));
                w.bytes(b",\"expires_in_ms\":");
                optional_ms(&mut w, ms_until(now, expires_at));
                stored_response(&mut w, self.responses.get(key));
                w.bytes(b",\"status\":\"failed\"}");
            }
            Err(e @ BeginError::TableFull { retry_at }) => {
                let refusal = Refusal::new(ErrorCode::Overloaded, &e).retry_at(now, retry_at);
                return refuse(out, &refusal);
            }
            Err(e @ BeginError::ExpiryOverflow) => {
                return refuse(out, &Refusal::new(ErrorCode::Overloaded, &e));
            }
        }
        written(&w)
    }

    fn complete<'a>(
        &mut self,
        now: Instant,
        hasher: &KeyHasher,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut [u8],
    ) -> Reply {
        let read = fields::collect(members, &COMPLETE)
            .and_then(|found| complete_params(&found, &mut self.key, &mut self.response));
        let call = match read {
            Ok((key_len, response_len, call)) => {
                self.key_len = key_len;
                self.response_len = response_len;
                call
            }
            Err(e) => return refuse(out, &Refusal::new(ErrorCode::BadRequest, &e)),
        };
        let key = hasher.hash(&self.key[..self.key_len]);
        let result = self.table().complete(now, key, call.token, call.outcome);
        let mut w = Writer::new(out);
        match result {
            Ok(Completed::Remembered { expires_at }) => {
                if call.response {
                    let response = core::str::from_utf8(&self.response[..self.response_len]);
                    self.responses
                        .insert(now, key, expires_at, response.unwrap_or(""));
                } else {
                    self.responses.remove(key);
                }
                self.pending = Pending::Done {
                    token: call.token,
                    digest: match call.outcome {
                        Outcome::Success(d) => Some(d),
                        Outcome::Failure => None,
                    },
                    response: call.response,
                    completed_at: now,
                    expires_at,
                };
                w.bytes(b"{\"expires_in_ms\":");
                optional_ms(&mut w, ms_until(now, expires_at));
                w.bytes(b",\"ok\":true,\"status\":\"remembered\"}");
            }
            Ok(Completed::Released) => {
                self.pending = Pending::Released;
                w.bytes(b"{\"ok\":true,\"status\":\"released\"}");
            }
            Err(e) => {
                let reason = match e {
                    CompleteError::Unknown => "unknown",
                    CompleteError::NotOwner => "not_owner",
                    CompleteError::Expired { .. } => "expired",
                    CompleteError::AlreadyCompleted { .. } => "already_completed",
                };
                let refusal = Refusal::new(ErrorCode::Refused, &e).with(Extra::Reason(reason));
                return refuse(out, &refusal);
            }
        }
        written(&w)
    }
}

/// `params.key` unescaped into `buf`; its length.
fn copy_key<'m, const N: usize>(
    found: &Found<'m, N>,
    buf: &mut [u8; KEY_MAX_BYTES],
) -> Result<usize, FieldError<'m>> {
    let mut scratch = [0u8; KEY_MAX_BYTES];
    let key = found.text(0, &mut scratch)?;
    buf[..key.len()].copy_from_slice(key.as_bytes());
    Ok(key.len())
}

/// The params of a completion, in the order their errors are reported: `key`, `token`,
/// `outcome` (its type and length), `digest` (its type and length), `response`, then the
/// outcome's value and whether the digest goes with it, then unknown members.
fn complete_params<'m>(
    found: &Found<'m, 5>,
    key: &mut [u8; KEY_MAX_BYTES],
    response: &mut [u8; IDEMPOTENCY_RESPONSE_MAX_BYTES],
) -> Result<(usize, usize, CompleteCall), FieldError<'m>> {
    let key_len = copy_key(found, key)?;
    let token = Token::from_raw(found.id(1)?);
    let mut outcome_buf = [0u8; 16];
    let outcome = found.text(2, &mut outcome_buf)?;
    let mut digest_buf = [0u8; 64];
    let digest = found.text_opt(3, &mut digest_buf)?;
    let response_len = found.text_any(4, response)?;
    let outcome = match (outcome, digest) {
        ("success", Some(d)) => Outcome::Success(
            parse_hex(d).ok_or(FieldError::Invalid("digest", "must be 64 hex digits"))?,
        ),
        ("success", None) => {
            return Err(FieldError::Invalid(
                "digest",
                "is required with outcome \"success\"",
            ));
        }
        ("failure", None) => Outcome::Failure,
        ("failure", Some(_)) => {
            return Err(FieldError::Invalid(
                "digest",
                "only goes with outcome \"success\"",
            ));
        }
        _ => {
            return Err(FieldError::Invalid(
                "outcome",
                "must be \"success\" or \"failure\"",
            ));
        }
    };
    found.finish()?;
    let call = CompleteCall {
        token,
        outcome,
        response: response_len.is_some(),
    };
    Ok((key_len, response_len.unwrap_or(0), call))
}

pub(super) fn parse_hex(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let digit = |b: u8| char::from(b).to_digit(16);
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

fn hex(w: &mut Writer<'_>, digest: &[u8; 32]) {
    w.bytes(LineHash(*digest).hex().as_bytes());
}

fn optional_ms(w: &mut Writer<'_>, ms: Option<u64>) {
    match ms {
        Some(ms) => w.u64(ms),
        None => w.bytes(b"null"),
    }
}

/// `,"response":"…"` when a response is stored.
fn stored_response(w: &mut Writer<'_>, response: Option<&str>) {
    if let Some(response) = response {
        w.bytes(b",\"response\":");
        quoted(w, response);
    }
}

fn written(w: &Writer<'_>) -> Reply {
    Reply {
        len: w.finish().map_or(0, |n| n),
        outcome: ReplyOutcome::Allowed,
        error: None,
    }
}
