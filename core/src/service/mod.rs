//! The request machine: a parsed request in, the reply bytes and a typed outcome out.
//!
//! Every host (the daemon's Unix socket and HTTP listeners, the simulator, the fuzzers) serves
//! a method the same way: it hands [`Service::handle`] the time, a request parsed by
//! [`Request::parse`] and a reply buffer, and gets back a [`Served`]. The service reads the
//! params with one rule set, decides, and writes the complete JSON reply body. The host never
//! looks into the bytes to learn what happened: the [`Reply`] says it.
//!
//! # The contract
//!
//! - **Input:** `now` (the host's monotonic clock, see [`crate::time`]), a [`Request`] (or a
//!   method and its params text) and a [`ReplyBuf`] of [`REPLY_MAX_BYTES`].
//! - **Output:** [`Served::Reply`]: the reply is `out[..reply.len]`, always one JSON object
//!   (a success object with sorted keys, or the error shape of [`ErrorReply`] followed by
//!   extra members), and never longer than [`REPLY_MAX_BYTES`]. [`Reply::outcome`] is the
//!   typed decision ([`Outcome`]); [`Reply::error`] is the code when the body is an error.
//!   [`Served::NotCovered`]: a method this service does not handle yet; `out` is untouched
//!   and the host serves it its own way. [`Served::LargeReply`]: a method whose reply can be
//!   longer than a [`ReplyBuf`] (`HEALTH_AGGREGATE` lists every check; an idempotency reply
//!   may carry a stored response); the host serves it with [`Service::handle_large`] into a
//!   buffer of [`Service::large_reply_max_bytes`].
//! - **Durability:** after an idempotency method, [`Service::durable`] says what the host
//!   must make durable before it sends the reply (a record to write, or a barrier behind the
//!   records written before).
//! - **Effects:** what the host must carry out comes out typed, through
//!   [`Service::poll_effect`] until `None`: a breaker's state change is an
//!   [`Effect::BreakerTransition`] (name, from, to, when, [`TransitionReason`]) that the host
//!   appends to its journal in its own form. Drain after every [`Service::handle`] and
//!   [`Service::handle_timeout`], before sending the reply if the host's journal must have the
//!   change first.
//! - **Policy:** [`Service::new`] serves the six built-in operations under a
//!   [`PolicyTable`]; [`Service::with_policy`] takes a [`RatePolicy`] with custom operations
//!   and tiers (`params.tier`, the default tier). [`Service::swap_policy`] puts a new one in
//!   force between requests; buckets and denial counts follow the operations' names.
//!   [`Service::with_breakers`] adds the breakers, [`Service::with_leases`] the leases (a
//!   [`LeaseTable`] whose storage the host makes at the first lease call) and
//!   [`Service::with_health`] the health checks, [`Service::with_idempotency`] the
//!   idempotency records (storage made at the first call, responses in the host's
//!   [`Responses`] store).
//! - **Nothing is dropped silently:** every request gets a reply. A full limiter table is
//!   `OVERLOADED` with `retry_after_ms`, never an eviction of a live bucket; a full permit
//!   table is `OVERLOADED` until the oldest permit expires. Effects wait in a queue of
//!   [`EFFECTS_MAX`]; a breaker call that could add one when it is full is refused
//!   (`OVERLOADED`, `retry_after_ms` [`EFFECTS_FULL_RETRY_AFTER_MS`]) before it changes
//!   anything, and a due timer waits for room (see `breakers.rs`).
//! - **Timers:** [`Service::poll_timeout`] is the next instant the host must call
//!   [`Service::handle_timeout`]: an open breaker half-opens on time, a probe that never
//!   reports fails at its deadline, a permit not recorded within [`PERMIT_TTL_MS`] is
//!   abandoned, and while the limiter, the leases or the idempotency records hold entries
//!   one bounded sweep step runs every [`LIMITER_SWEEP_INTERVAL_MS`]. ([`Service::sweep`]
//!   stays for hosts that sweep on their own; slots are reused on demand either way.)
//! - **Bounded work and memory:** no allocation; the limiter's slots and the permit slots are
//!   the host's storage, handed in once; the breaker registry ([`BREAKERS_MAX`]) and the
//!   effect queue are fixed; params are read in one pass, escaped strings unescaped into
//!   stack buffers of their maximum length; the parts of a success reply that follow from the
//!   operation and tier (`limit`, `operation`, `tier`, `window_ms`) are kept for the last 16
//!   pairs served (3.5 KiB, `fragments.rs`) and copied; each timeout call does bounded work.
//! - **Randomness is an argument:** permit ids come from a keyed [`IdMinter`] whose seed the
//!   host draws ([`Breakers::new`]); the service has no RNG.
//!
//! # What it covers so far
//!
//! | method | file |
//! |---|---|
//! | `RATE_LIMIT_CHECK`, `RATE_LIMIT_CONSUME` | `rate_limit.rs` (decision), `rate_params.rs` (params) |
//! | `BREAKER_ACQUIRE`, `BREAKER_RECORD` (with [`Breakers`]) | `breakers.rs` (registry, rule, replies), `breaker_params.rs`, `permits.rs`, `effects.rs` |
//! | `LEASE_ACQUIRE`, `LEASE_REFRESH`, `LEASE_RELEASE` (with a [`LeaseTable`]) | `leases.rs`, `fields.rs` (params) |
//! | `HEALTH_REPORT`, `HEALTH_AGGREGATE` (with a [`Health`](crate::health::Health) set) | `health.rs`, `fields.rs` (params) |
//! | `IDEMPOTENCY_BEGIN`, `IDEMPOTENCY_COMPLETE` (with an [`Idempotency`]) | `idempotency.rs`, `fields.rs` (params) |
//!
//! Their params, replies and errors are specified in `docs/PROTOCOL.md`.
//!
//! # The host loop
//!
//! ```
//! use heidi_core::breaker::{BreakerConfig, State};
//! use heidi_core::key::KeyHasher;
//! use heidi_core::limit::{Operation, PolicyTable};
//! use heidi_core::proto::{ErrorCode, Request};
//! use heidi_core::service::{
//!     BreakerPolicies, Breakers, Effect, Outcome, PermitSlot, REPLY_MAX_BYTES, Served, Service,
//! };
//! use heidi_core::table::Slot;
//! use heidi_core::Instant;
//!
//! // Once at start-up: seeds from the host's RNG, the limits and breaker configurations from
//! // the policy, and the storage (arrays here; the daemon hands in boxed slices).
//! let limiter_slots = [Slot::empty(); 64];
//! let breakers = Breakers::new(
//!     BreakerPolicies::new(BreakerConfig::DEFAULT),
//!     [PermitSlot::EMPTY; 16],
//!     [5; 16], // the permit-id seed
//! );
//! let hasher = KeyHasher::new([7; 16]);
//! let mut service = Service::new(hasher, PolicyTable::DEFAULT, limiter_slots).with_breakers(breakers);
//! let mut out = [0u8; REPLY_MAX_BYTES];
//! let mut journal = Vec::new();
//!
//! // Per request: parse the frame, serve it, carry out the effects, send `out[..len]`,
//! // count the outcome.
//! let frame = r#"{"method":"RATE_LIMIT_CONSUME","params":{"key":"u1","operation":"transform","cost":6}}"#;
//! let mut granted = 0;
//! for second in [1, 2, 3] {
//!     let now = Instant::from_secs(second);
//!     let request = Request::parse(frame).expect("a valid frame");
//!     let Served::Reply(reply) = service.handle(now, &request, &mut out) else {
//!         unreachable!("the service covers RATE_LIMIT_CONSUME");
//!     };
//!     while let Some(effect) = service.poll_effect() {
//!         journal.push(effect);
//!     }
//!     let body = core::str::from_utf8(&out[..reply.len]).unwrap();
//!     match reply.outcome {
//!         Outcome::Allowed => granted += 1,
//!         // 6 of 10 per minute were taken at 1 s, one back every 6 s: 6 fit again at 13 s.
//!         Outcome::Denied { retry_at } => {
//!             assert_eq!(retry_at, Instant::from_secs(13));
//!             assert_eq!(reply.error, Some(ErrorCode::RateLimited));
//!             assert!(body.contains(r#""retry_after_ms":"#));
//!         }
//!         Outcome::Refused { code, .. } => panic!("refused: {code:?} {body}"),
//!     }
//! }
//! assert_eq!(granted, 1);
//! assert_eq!(service.denials()[Operation::Transform as usize], (Operation::Transform, 2));
//!
//! // Five failed calls trip the breaker `llm`; its state change is an effect to journal.
//! for _ in 0..5 {
//!     let acquire = Request::parse(r#"{"method":"BREAKER_ACQUIRE","params":{"name":"llm"}}"#).unwrap();
//!     let Served::Reply(reply) = service.handle(Instant::from_secs(4), &acquire, &mut out) else { unreachable!() };
//!     let body = core::str::from_utf8(&out[..reply.len]).unwrap();
//!     let permit = body.split('"').nth(5).unwrap(); // {"allowed":true,"permit":"…",…}
//!     let frame = format!(r#"{{"method":"BREAKER_RECORD","params":{{"name":"llm","permit":"{permit}","outcome":"failure"}}}}"#);
//!     let _ = service.handle(Instant::from_secs(4), &Request::parse(&frame).unwrap(), &mut out);
//!     journal.extend(core::iter::from_fn(|| service.poll_effect()));
//! }
//! let Effect::BreakerTransition(t) = &journal[0] else { unreachable!() };
//! assert_eq!((t.name.as_str(), t.from, t.to), ("llm", State::Closed, State::Open));
//!
//! // Between requests: sleep until the next deadline (or a request), then run the timers.
//! // Here: the limiter's sweep is due; the breaker half-opens at 64 s, without a call.
//! let mut now = Instant::from_secs(4);
//! while let Some(deadline) = service.poll_timeout() {
//!     if deadline > Instant::from_secs(64) {
//!         break;
//!     }
//!     now = now.max(deadline); // a deadline already passed runs now
//!     service.handle_timeout(now);
//!     journal.extend(core::iter::from_fn(|| service.poll_effect()));
//! }
//! let Effect::BreakerTransition(t) = journal.last().unwrap() else { unreachable!() };
//! assert_eq!((t.from, t.to, t.at), (State::Open, State::HalfOpen, Instant::from_secs(64)));
//! ```
//!
//! [`ErrorReply`]: crate::proto::ErrorReply

mod breaker_params;
#[cfg(test)]
mod breaker_tests;
mod breakers;
mod effects;
mod fields;
mod fragments;
mod health;
mod host_calls;
mod idempotency;
#[cfg(test)]
mod idempotency_tests;
mod journal_append;
#[cfg(test)]
mod lease_health_tests;
mod leases;
mod permits;
mod policy_calls;
mod policy_state;
mod rate_limit;
mod rate_params;
mod record_file;
mod reply;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tier_tests;
mod timeout;

pub use breaker_params::DURATION_MAX_MS;
pub use breakers::{
    BREAKER_POLICIES_MAX, BREAKERS_MAX, BreakerPolicies, Breakers, MaybeBreakers, NoBreakers,
    PERMITS_EXPIRED_PER_CALL, PoliciesFull,
};
pub use effects::{
    BreakerTransition, EFFECTS_FULL_RETRY_AFTER_MS, EFFECTS_MAX, Effect, TransitionReason,
};
pub use health::{HEALTH_CHECKS_MAX, MaybeHealth, NoHealth, aggregate_reply_max_bytes};
pub use host_calls::{
    HostParamsError, StatusReply, TAIL_DEFAULT_LINES, TAIL_MAX_LINES, read_journal_tail,
    read_pipeline_call, write_accepted_reply, write_appended_reply, write_pong_reply,
    write_status_reply, write_tail_reply,
};
pub use idempotency::{
    Durable, IDEMPOTENCY_REPLY_MAX_BYTES, IDEMPOTENCY_RESPONSE_MAX_BYTES, IdemRecord, Idempotency,
    MaybeIdempotency, NoIdempotency, NoResponses, Responses,
};
pub use journal_append::{
    AppendError, JournalAppend, JournalName, RESERVED_STAGES, parse_journal_append,
};
pub use leases::{LeaseTable, MaybeLeases, NoLeases};
pub use permits::{PERMIT_SLOTS_MAX, PERMIT_TTL_MS, PermitSlot};
pub use policy_calls::{
    PolicyParamsError, check_compatible, read_apply_policy, read_get_policy, write_applied_reply,
    write_policy_reply,
};
pub use policy_state::{PolicyVersion, StalePolicy};
pub use rate_params::{KEY_MAX_BYTES, OPERATION_MAX_BYTES, TIER_MAX_BYTES};
pub use record_file::{
    BadLine, COMPACT_MIN_LINES, FileBounds, IDEMPOTENCY_FILE, LineLife, LineScratch, LineState,
    RECORD_LINE_MAX_BYTES, RecordLine, WallAnchor, read_record_line, write_record_line,
};
pub use timeout::{LIMITER_SWEEP_INTERVAL_MS, LIMITER_SWEEP_SLOTS};

use crate::Instant;
#[cfg(doc)]
use crate::id::IdMinter;
use crate::key::KeyHasher;
use crate::limit::{Operation, PolicyTable, Tat};
use crate::policy::{BUILTIN_OPERATIONS, RatePolicy};
use crate::proto::params::{Member, Members, NotAnObject};
use crate::proto::{ERROR_REPLY_MAX_BYTES, ErrorCode, Method, Request};
use crate::table::Slot;
use rate_limit::RateLimits;

/// The longest reply the service writes: the longest error reply and its extra members
/// (`retry_after_ms`, `remaining`, `limit`, and an operation and a tier name of up to 64
/// bytes each: at most 190 bytes).
pub const REPLY_MAX_BYTES: usize = ERROR_REPLY_MAX_BYTES + 256;

/// The buffer a reply is written into.
pub type ReplyBuf = [u8; REPLY_MAX_BYTES];

/// Whether [`Service::handle`] covers `method` when the service has the component that
/// serves it (else it answers [`Served::NotCovered`]).
#[must_use]
pub const fn covers(method: Method) -> bool {
    matches!(method.server(), crate::proto::method::Server::Service)
}

/// What the service decided about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// Granted (`RATE_LIMIT_CONSUME`) or would be granted now (`RATE_LIMIT_CHECK`).
    Allowed,
    /// Not now. `RATE_LIMIT_CHECK` answers `"allowed":false` (a success reply);
    /// `RATE_LIMIT_CONSUME` answers `RATE_LIMITED`.
    Denied {
        /// When the same call would be granted ([`Instant::MAX`]: never by waiting).
        retry_at: Instant,
    },
    /// Refused with an error reply: bad params (`BAD_REQUEST`), a full table (`OVERLOADED`).
    Refused {
        /// The reply's code.
        code: ErrorCode,
        /// When to come back, for a refusal that passes with time.
        retry_at: Option<Instant>,
    },
}

/// A reply written into the host's [`ReplyBuf`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Reply {
    /// The reply body is `out[..len]`.
    pub len: usize,
    /// The decision.
    pub outcome: Outcome,
    /// The code when the body is an error reply (`{"error":true,…}`), else `None`.
    pub error: Option<ErrorCode>,
}

/// The answer to [`Service::handle`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Served {
    /// The reply is in the buffer.
    Reply(Reply),
    /// The service does not cover this method (or lacks the component that serves it); the
    /// buffer is untouched.
    NotCovered,
    /// This method's reply may be longer than a [`ReplyBuf`] (`HEALTH_AGGREGATE`, the
    /// idempotency methods); the buffer is untouched: serve it with [`Service::handle_large`].
    LargeReply,
}

/// The request machine over the host's limiter slots `S` (an array or a boxed slice of
/// [`Slot<Tat>`], a non-zero multiple of 8), under a [`RatePolicy`] with room for `CUSTOM`
/// custom operations and `TIERS` tiers (none by default: the six built-in operations), with
/// breakers `B` ([`Breakers`] over the host's permit slots, or none: [`NoBreakers`]). See
/// the [module docs](self).
#[derive(Debug)]
pub struct Service<
    S,
    const CUSTOM: usize = 0,
    const TIERS: usize = 0,
    B = NoBreakers,
    L = NoLeases,
    H = NoHealth,
    I = NoIdempotency,
> {
    hasher: KeyHasher,
    policy: RatePolicy<CUSTOM, TIERS>,
    rate: RateLimits<S, CUSTOM>,
    breakers: B,
    leases: L,
    health: H,
    idempotency: I,
    sweep: timeout::Sweep,
}

impl<S> Service<S>
where
    S: AsRef<[Slot<Tat>]> + AsMut<[Slot<Tat>]>,
{
    /// A service hashing client keys with `hasher` (seeded by the host, secret), limiting the
    /// six built-in operations by `limits`, holding buckets in `limiter_slots` (cleared).
    /// [`Service::with_policy`] takes custom operations and tiers.
    ///
    /// # Panics
    /// If the slot count is zero or not a multiple of 8 (a programmer error).
    pub fn new(hasher: KeyHasher, limits: PolicyTable, limiter_slots: S) -> Service<S> {
        Service::with_policy(hasher, RatePolicy::from_table(limits), limiter_slots)
    }
}

impl<S, const CUSTOM: usize, const TIERS: usize> Service<S, CUSTOM, TIERS>
where
    S: AsRef<[Slot<Tat>]> + AsMut<[Slot<Tat>]>,
{
    /// A service under `policy` (custom operations, tiers; see [`crate::policy`]), otherwise
    /// as [`Service::new`].
    ///
    /// # Panics
    /// If the slot count is zero or not a multiple of 8 (a programmer error).
    pub fn with_policy(
        hasher: KeyHasher,
        policy: RatePolicy<CUSTOM, TIERS>,
        limiter_slots: S,
    ) -> Service<S, CUSTOM, TIERS> {
        Service {
            hasher,
            policy,
            rate: RateLimits::new(limiter_slots),
            breakers: NoBreakers,
            leases: NoLeases,
            health: NoHealth,
            idempotency: NoIdempotency,
            sweep: timeout::Sweep::new(),
        }
    }
}

impl<S, const CUSTOM: usize, const TIERS: usize, B, L, H, I> Service<S, CUSTOM, TIERS, B, L, H, I> {
    /// This service, also serving `BREAKER_ACQUIRE` and `BREAKER_RECORD` with `breakers`
    /// ([`Breakers::new`]).
    pub fn with_breakers<B2: MaybeBreakers>(
        self,
        breakers: B2,
    ) -> Service<S, CUSTOM, TIERS, B2, L, H, I> {
        Service {
            hasher: self.hasher,
            policy: self.policy,
            rate: self.rate,
            breakers,
            leases: self.leases,
            health: self.health,
            idempotency: self.idempotency,
            sweep: self.sweep,
        }
    }

    /// This service, also serving `LEASE_ACQUIRE`, `LEASE_REFRESH` and `LEASE_RELEASE` with
    /// `leases` ([`LeaseTable::new`]).
    pub fn with_leases<L2: MaybeLeases>(
        self,
        leases: L2,
    ) -> Service<S, CUSTOM, TIERS, B, L2, H, I> {
        Service {
            hasher: self.hasher,
            policy: self.policy,
            rate: self.rate,
            breakers: self.breakers,
            leases,
            health: self.health,
            idempotency: self.idempotency,
            sweep: self.sweep,
        }
    }

    /// This service, also serving `HEALTH_REPORT` and `HEALTH_AGGREGATE` with `health` (a
    /// [`Health`](crate::health::Health) set).
    pub fn with_health<H2: MaybeHealth>(
        self,
        health: H2,
    ) -> Service<S, CUSTOM, TIERS, B, L, H2, I> {
        Service {
            hasher: self.hasher,
            policy: self.policy,
            rate: self.rate,
            breakers: self.breakers,
            leases: self.leases,
            health,
            idempotency: self.idempotency,
            sweep: self.sweep,
        }
    }

    /// This service, also serving `IDEMPOTENCY_BEGIN` and `IDEMPOTENCY_COMPLETE` with
    /// `idempotency` ([`Idempotency::new`]).
    pub fn with_idempotency<I2: MaybeIdempotency>(
        self,
        idempotency: I2,
    ) -> Service<S, CUSTOM, TIERS, B, L, H, I2> {
        Service {
            hasher: self.hasher,
            policy: self.policy,
            rate: self.rate,
            breakers: self.breakers,
            leases: self.leases,
            health: self.health,
            idempotency,
            sweep: self.sweep,
        }
    }

    /// The idempotency records (an [`Idempotency`], or [`NoIdempotency`]).
    pub fn idempotency(&self) -> &I {
        &self.idempotency
    }

    /// The idempotency records, mutably (a restart: [`Idempotency::restore`]).
    pub fn idempotency_mut(&mut self) -> &mut I {
        &mut self.idempotency
    }

    /// The leases (a [`LeaseTable`], or [`NoLeases`]).
    pub fn leases(&self) -> &L {
        &self.leases
    }

    /// The leases, mutably (policy changes: [`LeaseTable::set_config`]).
    pub fn leases_mut(&mut self) -> &mut L {
        &mut self.leases
    }

    /// The health set (a [`Health`](crate::health::Health), or [`NoHealth`]).
    pub fn health(&self) -> &H {
        &self.health
    }

    /// The health set, mutably (policy changes:
    /// [`Health::reconfigured`](crate::health::Health::reconfigured)).
    pub fn health_mut(&mut self) -> &mut H {
        &mut self.health
    }
}

impl<S, const CUSTOM: usize, const TIERS: usize, B, L, H, I> Service<S, CUSTOM, TIERS, B, L, H, I>
where
    S: AsRef<[Slot<Tat>]> + AsMut<[Slot<Tat>]>,
    B: MaybeBreakers,
    L: MaybeLeases,
    H: MaybeHealth,
    I: MaybeIdempotency,
{
    /// Serves `request` at `now`, writing the reply into `out`.
    pub fn handle(&mut self, now: Instant, request: &Request<'_>, out: &mut ReplyBuf) -> Served {
        // The hot methods read the members the parse recorded through a reader of their own
        // (see `RecordedMembers`); every other case takes the general one.
        let consume = match request.method {
            Method::RateLimitCheck => false,
            Method::RateLimitConsume => true,
            _ => return self.handle_members(now, request.method, request.members(), out),
        };
        match request.recorded_members() {
            Some(members) => {
                let ctx = (&self.hasher, &self.policy);
                Served::Reply(self.rate.handle(now, ctx, consume, members, out))
            }
            None => self.handle_members(now, request.method, request.members(), out),
        }
    }

    /// [`Service::handle`] for a method and its params text that did not come from
    /// [`Request::parse`]; text that is not a JSON object is refused (`BAD_REQUEST`).
    pub fn handle_params(
        &mut self,
        now: Instant,
        method: Method,
        params: &str,
        out: &mut ReplyBuf,
    ) -> Served {
        self.handle_members(now, method, Members::new(params), out)
    }

    fn handle_members<'a>(
        &mut self,
        now: Instant,
        method: Method,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut ReplyBuf,
    ) -> Served {
        if let Method::BreakerAcquire | Method::BreakerRecord = method {
            let record = method == Method::BreakerRecord;
            return match self.breakers.get_mut() {
                Some(b) => Served::Reply(b.handle(now, record, members, out)),
                None => Served::NotCovered,
            };
        }
        let ctx = (&self.hasher, &self.policy);
        let consume = match method {
            Method::RateLimitCheck => false,
            Method::RateLimitConsume => true,
            Method::LeaseAcquire | Method::LeaseRefresh | Method::LeaseRelease => {
                let served = self.leases.serve(now, &self.hasher, method, members, out);
                return served.map_or(Served::NotCovered, Served::Reply);
            }
            Method::HealthReport => {
                let served = self.health.report(now, members, out);
                return served.map_or(Served::NotCovered, Served::Reply);
            }
            Method::HealthAggregate if self.health.aggregate_max_bytes() > 0 => {
                return Served::LargeReply;
            }
            Method::IdempotencyBegin | Method::IdempotencyComplete
                if self.idempotency.reply_max_bytes() > 0 =>
            {
                return Served::LargeReply;
            }
            _ => return Served::NotCovered,
        };
        Served::Reply(self.rate.handle(now, ctx, consume, members, out))
    }

    /// Serves a request whose reply may be longer than a [`ReplyBuf`] (when
    /// [`Service::handle`] answered [`Served::LargeReply`]), into `out` of at least
    /// [`Service::large_reply_max_bytes`] bytes; a shorter `out` gets an `INTERNAL` error.
    /// Any other method is served as by [`Service::handle`].
    pub fn handle_large(&mut self, now: Instant, request: &Request<'_>, out: &mut [u8]) -> Served {
        if let Some(served) = self.serve_large(now, request.method, request.members(), out) {
            return served;
        }
        let mut small = [0u8; REPLY_MAX_BYTES];
        let served = self.handle(now, request, &mut small);
        copy_reply(served, &small, out)
    }

    /// [`Service::handle_large`] for a method and its params text.
    pub fn handle_large_params(
        &mut self,
        now: Instant,
        method: Method,
        params: &str,
        out: &mut [u8],
    ) -> Served {
        if let Some(served) = self.serve_large(now, method, Members::new(params), out) {
            return served;
        }
        let mut small = [0u8; REPLY_MAX_BYTES];
        let served = self.handle_params(now, method, params, &mut small);
        copy_reply(served, &small, out)
    }

    /// The methods that are served into the large buffer only; `None` for the others (then
    /// the last idempotency call's [`Durable`] is forgotten).
    fn serve_large<'a>(
        &mut self,
        now: Instant,
        method: Method,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut [u8],
    ) -> Option<Served> {
        let served = match method {
            Method::HealthAggregate => self.health.aggregate(now, members, out),
            Method::IdempotencyBegin | Method::IdempotencyComplete => {
                let hasher = &self.hasher;
                self.idempotency.serve(now, hasher, method, members, out)
            }
            _ => {
                self.idempotency.clear_durable();
                return None;
            }
        };
        Some(served.map_or(Served::NotCovered, Served::Reply))
    }

    /// What the reply of the last idempotency method served by [`Service::handle_large`]
    /// waits for: a record to write, or the records written before it (see [`Durable`]);
    /// `None` when nothing (an error reply), or when another method was served since.
    pub fn durable(&self) -> Option<Durable<'_>> {
        self.idempotency.durable()
    }

    /// The buffer [`Service::handle_large`] needs: the longest reply of any method.
    pub fn large_reply_max_bytes(&self) -> usize {
        let idempotency = self.idempotency.reply_max_bytes();
        let longest = self.health.aggregate_max_bytes().max(idempotency);
        longest.max(REPLY_MAX_BYTES)
    }

    /// The top-level limits of the six built-in operations in force.
    pub fn limits(&self) -> &PolicyTable {
        self.policy.builtin_limits()
    }

    /// Puts in force a policy of the six built-in operations with `limits`, and no custom
    /// operations or tiers; existing buckets keep their state (see [`crate::limit`]).
    pub fn set_limits(&mut self, limits: PolicyTable) {
        self.set_policy(RatePolicy::from_table(limits));
    }

    /// The rate-limit policy in force.
    pub fn policy(&self) -> &RatePolicy<CUSTOM, TIERS> {
        &self.policy
    }

    /// Puts `policy` in force. Existing buckets keep their state under the new limits (a
    /// custom operation's buckets follow its name); denial counts follow the operations'
    /// names. A large policy is better swapped in with [`Service::swap_policy`].
    pub fn set_policy(&mut self, mut policy: RatePolicy<CUSTOM, TIERS>) {
        self.swap_policy(&mut policy);
    }

    /// [`Service::set_policy`] without moving the tables through the stack: `policy` (say,
    /// the host's boxed spare, filled by [`RatePolicy::parse_into`]) is put in force and
    /// receives the policy that was.
    pub fn swap_policy(&mut self, policy: &mut RatePolicy<CUSTOM, TIERS>) {
        self.rate.follow_policy(&self.policy, policy);
        core::mem::swap(&mut self.policy, policy);
    }

    /// Frees up to `max_slots` limiter slots whose buckets have refilled by `now`, continuing
    /// where the previous call stopped.
    pub fn sweep(&mut self, now: Instant, max_slots: usize) {
        self.rate.sweep(now, max_slots);
    }

    /// Limiter buckets held (refilled ones not yet swept included).
    pub fn limiter_keys(&self) -> usize {
        self.rate.len()
    }

    /// `RATE_LIMITED` answers since start, per built-in operation, in [`Operation::ALL`]
    /// order.
    pub fn denials(&self) -> [(Operation, u64); BUILTIN_OPERATIONS] {
        self.rate.denials()
    }

    /// `RATE_LIMITED` answers per operation of the policy in force, built-in ones first, by
    /// name. A custom operation counts from when it was defined (a policy that drops it
    /// drops its count).
    pub fn operation_denials(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.policy
            .operations()
            .map(|(op, name)| (name, self.rate.denials_of(op)))
    }
}

/// A reply written into `small`, copied to `out` (too short: [`Served::NotCovered`]).
fn copy_reply(served: Served, small: &ReplyBuf, out: &mut [u8]) -> Served {
    if let Served::Reply(reply) = served {
        let Some(dst) = out.get_mut(..reply.len) else {
            return Served::NotCovered;
        };
        dst.copy_from_slice(&small[..reply.len]);
    }
    served
}
