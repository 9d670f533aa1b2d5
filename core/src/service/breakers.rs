//! `BREAKER_ACQUIRE` and `BREAKER_RECORD`: a [`BreakerRegistry`] of named breakers configured
//! by [`BreakerPolicies`], the permits held for clients ([`PermitTable`] over the host's
//! [`PermitSlot`]s), and the state changes waiting for the host as [`Effect`]s.
//!
//! # The effect rule
//!
//! Every breaker call (an acquire, a record, a timeout, the expiry of a permit) makes at most
//! one state change, and each change becomes an [`Effect::BreakerTransition`]. A call that
//! would reach a breaker runs only when the effect queue has room for one more; otherwise:
//!
//! - `BREAKER_ACQUIRE`, and a `BREAKER_RECORD` of a held permit, are refused with
//!   `OVERLOADED` and `retry_after_ms` ([`EFFECTS_FULL_RETRY_AFTER_MS`]) before anything
//!   changes (the permit stays held);
//! - a due breaker timeout or permit expiry waits: [`Breakers::poll_timeout`] keeps
//!   reporting it until a [`Breakers::handle_timeout`] finds room.
//!
//! Params errors and answers that touch no breaker (an unknown permit, a permit of another
//! breaker) are given as usual. A change made while the queue has no room (none is, by this
//! rule) would wait in the breaker's own ring, never dropped.

use heapless::{String, Vec};

use super::breaker_params::{self, BreakerParams, Reported, Scratch};
use super::effects::{
    BreakerTransition, EFFECTS_FULL_RETRY_AFTER_MS, Effect, EffectQueue, TransitionReason,
};
use super::permits::{PERMIT_TTL_MS, PermitSlot, PermitTable};
use super::reply::{Extra, Refusal, encode_refusal, ms_until};
use super::{Outcome, Reply, ReplyBuf};
use crate::breaker::{
    Breaker, BreakerConfig, BreakerConfigError, BreakerId, BreakerRegistry, Outcome as Call,
    Recorded, RegistryError, Transition,
};
use crate::journal::NAME_MAX_BYTES;
use crate::json::writer::Writer;
use crate::policy::Sections;
use crate::proto::ErrorCode;
use crate::proto::params::{Member, NotAnObject};
use crate::{Duration, Instant};

/// Most breakers (named by clients or the policy); breakers are never removed.
pub const BREAKERS_MAX: usize = 256;
/// Most breakers with a configuration of their own in [`BreakerPolicies`].
pub const BREAKER_POLICIES_MAX: usize = 64;
/// Most expired permits one [`Breakers::handle_timeout`] abandons (the rest at the next).
pub const PERMITS_EXPIRED_PER_CALL: usize = 4_096;

/// The configuration of each breaker: its own entry, else the default.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerPolicies {
    default: BreakerConfig,
    named: Vec<(String<NAME_MAX_BYTES>, BreakerConfig), BREAKER_POLICIES_MAX>,
}

/// [`BreakerPolicies::insert`] found no room, or the name is too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PoliciesFull;

impl BreakerPolicies {
    /// Every breaker with `default`.
    pub const fn new(default: BreakerConfig) -> BreakerPolicies {
        BreakerPolicies {
            default,
            named: Vec::new(),
        }
    }

    /// Gives the breaker `name` a configuration of its own (replacing an earlier one).
    pub fn insert(&mut self, name: &str, config: BreakerConfig) -> Result<(), PoliciesFull> {
        if let Some(entry) = self.named.iter_mut().find(|(n, _)| n.as_str() == name) {
            entry.1 = config;
            return Ok(());
        }
        let name = String::try_from(name).map_err(|()| PoliciesFull)?;
        self.named.push((name, config)).map_err(|_| PoliciesFull)
    }

    /// The breaker section of a validated policy document: `breakers.default` and every
    /// named entry (a document holds at most [`BREAKER_POLICIES_MAX`] entries, `default`
    /// included, with names of at most 64 bytes: each fits).
    pub fn of_sections(sections: &Sections) -> BreakerPolicies {
        let mut out = BreakerPolicies::new(*sections.breaker_default());
        for (name, config) in sections.named_breakers() {
            let fits = out.insert(name, *config);
            debug_assert!(fits.is_ok(), "breakers.{name} fits the table");
        }
        out
    }

    /// The configuration of the breaker `name`.
    pub fn get(&self, name: &str) -> &BreakerConfig {
        let named = self.named.iter().find(|(n, _)| n.as_str() == name);
        named.map_or(&self.default, |(_, c)| c)
    }
}

/// The breaker part of a [`Service`](super::Service): registry, policies, held permits over
/// the host's slots `P`, and the effect queue.
///
/// **The effect rule.** Every breaker call (an acquire, a record, a timeout, a permit's
/// expiry) makes at most one state change, and each becomes an
/// [`Effect::BreakerTransition`]. A call that would reach a breaker runs only when the effect
/// queue has room for one more. Otherwise `BREAKER_ACQUIRE`, and a `BREAKER_RECORD` of a held
/// permit, are refused `OVERLOADED` with `retry_after_ms` ([`EFFECTS_FULL_RETRY_AFTER_MS`])
/// before anything changes (the permit stays held), and a due timeout or expiry waits
/// ([`Breakers::poll_timeout`] keeps reporting it). Params errors, and answers that touch no
/// breaker (an unknown permit, a permit of another breaker), are given as usual.
#[derive(Debug)]
pub struct Breakers<P> {
    registry: BreakerRegistry<BREAKERS_MAX, NAME_MAX_BYTES>,
    policies: BreakerPolicies,
    permits: PermitTable<P>,
    effects: EffectQueue,
}

/// A [`Service`](super::Service) without breakers: it answers the breaker methods
/// [`Served::NotCovered`](super::Served::NotCovered).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBreakers;

/// What a [`Service`](super::Service) holds for breakers: [`Breakers`] or [`NoBreakers`].
pub trait MaybeBreakers {
    /// The host's permit storage.
    type Permits: AsRef<[PermitSlot]> + AsMut<[PermitSlot]>;
    /// The breakers, if any.
    fn get(&self) -> Option<&Breakers<Self::Permits>>;
    /// The breakers, mutably.
    fn get_mut(&mut self) -> Option<&mut Breakers<Self::Permits>>;
}

impl MaybeBreakers for NoBreakers {
    type Permits = [PermitSlot; 0];
    fn get(&self) -> Option<&Breakers<[PermitSlot; 0]>> {
        None
    }
    fn get_mut(&mut self) -> Option<&mut Breakers<[PermitSlot; 0]>> {
        None
    }
}

impl<P: AsRef<[PermitSlot]> + AsMut<[PermitSlot]>> MaybeBreakers for Breakers<P> {
    type Permits = P;
    fn get(&self) -> Option<&Breakers<P>> {
        Some(self)
    }
    fn get_mut(&mut self) -> Option<&mut Breakers<P>> {
        Some(self)
    }
}

impl<P> Breakers<P>
where
    P: AsRef<[PermitSlot]> + AsMut<[PermitSlot]>,
{
    /// No breakers yet, configured by `policies`; at most `permit_slots.len()` permits held
    /// at once, their ids minted with `permit_seed` (16 bytes from the host's RNG, secret,
    /// drawn afresh at each start).
    ///
    /// # Panics
    /// If there are more than [`PERMIT_SLOTS_MAX`](super::PERMIT_SLOTS_MAX) slots.
    pub fn new(policies: BreakerPolicies, permit_slots: P, permit_seed: [u8; 16]) -> Breakers<P> {
        Breakers {
            registry: BreakerRegistry::new(),
            policies,
            permits: PermitTable::new(permit_slots, permit_seed),
            effects: EffectQueue::new(),
        }
    }

    /// Reads the params, decides and writes the reply of `BREAKER_ACQUIRE` (`record ==
    /// false`) or `BREAKER_RECORD`.
    pub(crate) fn handle<'a>(
        &mut self,
        now: Instant,
        record: bool,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut ReplyBuf,
    ) -> Reply {
        let mut scratch = Scratch::new();
        let params = match breaker_params::parse(members, record, &mut scratch) {
            Ok(params) => params,
            Err(e) => return encode_refusal(out, &Refusal::new(ErrorCode::BadRequest, &e)),
        };
        let reply = if record {
            self.record(now, &params, out)
        } else {
            self.acquire(now, params.name, out)
        };
        self.stage_effects();
        reply
    }

    fn acquire(&mut self, now: Instant, name: &str, out: &mut ReplyBuf) -> Reply {
        if !self.effects.has_room() {
            return effects_full(now, out);
        }
        if self.permits.len() >= self.permits.capacity() {
            let oldest = self.permits.oldest_expires_at().unwrap_or(Instant::MAX);
            let message = "too many breaker permits are outstanding; record them first";
            let refusal = Refusal::new(ErrorCode::Overloaded, &message).retry_at(now, oldest);
            return encode_refusal(out, &refusal);
        }
        let id = match self.registry.get_or_insert(name, self.policies.get(name)) {
            Ok(id) => id,
            Err(e @ RegistryError::Full { .. }) => {
                return encode_refusal(out, &Refusal::new(ErrorCode::Overloaded, &e));
            }
            Err(e) => return encode_refusal(out, &Refusal::new(ErrorCode::Internal, &e)),
        };
        let Some(breaker) = self.registry.get_mut(id) else {
            return internal(out, "breaker vanished");
        };
        match breaker.acquire(now) {
            Ok(permit) => {
                let probe = permit.is_probe();
                let state = breaker.state();
                let expires_at = now.saturating_add(Duration::from_millis(PERMIT_TTL_MS));
                match self.permits.insert(id, permit, now, expires_at) {
                    Ok(permit_id) => acquired(out, permit_id, probe, state.as_str()),
                    Err((permit, _)) => {
                        // Checked above: the table had room.
                        breaker.abandon(now, permit);
                        internal(out, "permit table")
                    }
                }
            }
            Err(rejected) => {
                let state = breaker.state();
                let message = format_args!("circuit breaker `{name}` is {}", state.as_str());
                let refusal = Refusal::new(ErrorCode::CircuitOpen, &message)
                    .retry_at(now, rejected.until)
                    .with(Extra::State(state));
                let mut reply = encode_refusal(out, &refusal);
                reply.outcome = Outcome::Denied {
                    retry_at: rejected.until,
                };
                reply
            }
        }
    }

    fn record(&mut self, now: Instant, params: &BreakerParams<'_>, out: &mut ReplyBuf) -> Reply {
        let named = self.registry.find(params.name);
        let Some(owner) = self.permits.breaker_of(params.permit) else {
            let state = named
                .and_then(|id| self.registry.get(id))
                .map(Breaker::state);
            return recorded(out, now, "unknown", state.map(|s| s.as_str()), None);
        };
        if Some(owner) != named {
            let owner = self.registry.name(owner).unwrap_or("?");
            let message = format_args!(
                "params.permit: was issued by breaker `{owner}`, not `{}`",
                params.name
            );
            return encode_refusal(out, &Refusal::new(ErrorCode::BadRequest, &message));
        }
        if !self.effects.has_room() {
            return effects_full(now, out);
        }
        let Some(held) = self.permits.take(params.permit) else {
            return internal(out, "permit vanished");
        };
        let Some(breaker) = self.registry.get_mut(held.breaker) else {
            return internal(out, "breaker vanished");
        };
        let what = if now >= held.expires_at {
            breaker.abandon(now, held.permit);
            "expired"
        } else {
            match params.reported {
                Reported::Ran { failed, took } => {
                    let took =
                        took.unwrap_or_else(|| now.saturating_duration_since(held.issued_at));
                    let call = if failed {
                        Call::Failure(took)
                    } else {
                        Call::Success(took)
                    };
                    recorded_str(breaker.record(now, held.permit, call))
                }
                Reported::Abandoned => {
                    breaker.abandon(now, held.permit);
                    "abandoned"
                }
            }
        };
        let state = breaker.state().as_str();
        let open_until = breaker.open_until();
        recorded(out, now, what, Some(state), open_until)
    }

    /// Moves the state changes the breakers made into the effect queue, while it has room
    /// (the rest wait in the breakers' own rings).
    fn stage_effects(&mut self) {
        while self.effects.has_room() {
            let Some((id, t)) = self.registry.poll_event() else {
                return;
            };
            self.push_transition(id, t);
        }
    }

    /// [`Breakers::stage_effects`] of breaker `id` alone (a timer touches one breaker: no
    /// scan of the registry per expired permit).
    fn stage_effects_of(&mut self, id: BreakerId) {
        while self.effects.has_room() {
            let Some(t) = self.registry.get_mut(id).and_then(Breaker::poll_event) else {
                return;
            };
            self.push_transition(id, t);
        }
    }

    fn push_transition(&mut self, id: BreakerId, t: Transition) {
        let mut name = String::new();
        let _ = name.push_str(self.registry.name(id).unwrap_or(""));
        let effect = Effect::BreakerTransition(BreakerTransition {
            breaker: id,
            name,
            from: t.from,
            to: t.to,
            at: t.at,
            reason: TransitionReason::of(t.from, t.to),
        });
        // Room was checked by the callers.
        let _ = self.effects.push(effect);
    }

    /// The next effect for the host to carry out, oldest first.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        let effect = self.effects.pop();
        self.stage_effects();
        effect
    }

    /// Effects waiting.
    pub fn effects_queued(&self) -> usize {
        self.effects.len()
    }

    /// The earliest breaker timeout (open → half-open, a probe's deadline) or permit expiry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let permits = self.permits.oldest_expires_at();
        match (self.registry.poll_timeout(), permits) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies the breaker timeouts due at `now` and abandons up to
    /// [`PERMITS_EXPIRED_PER_CALL`] expired permits, while the effect queue has room.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.stage_effects();
        for i in 0..self.registry.len() {
            let id = BreakerId(i as u16);
            let due = self.registry.get(id).and_then(Breaker::poll_timeout);
            if due.is_some_and(|t| t <= now) {
                if !self.effects.has_room() {
                    return;
                }
                if let Some(b) = self.registry.get_mut(id) {
                    b.handle_timeout(now);
                }
                self.stage_effects_of(id);
            }
        }
        for _ in 0..PERMITS_EXPIRED_PER_CALL {
            let due = self.permits.oldest_expires_at().is_some_and(|t| t <= now);
            if !due || !self.effects.has_room() {
                return;
            }
            let Some(held) = self
                .permits
                .oldest_id()
                .and_then(|id| self.permits.take(id))
            else {
                return;
            };
            if let Some(b) = self.registry.get_mut(held.breaker) {
                b.abandon(now, held.permit);
            }
            self.stage_effects_of(held.breaker);
        }
    }

    /// The breakers, by id and name.
    pub fn registry(&self) -> &BreakerRegistry<BREAKERS_MAX, NAME_MAX_BYTES> {
        &self.registry
    }

    /// The configurations new breakers get.
    pub fn policies(&self) -> &BreakerPolicies {
        &self.policies
    }

    /// Replaces the configurations new breakers get; existing breakers keep theirs until
    /// [`Breakers::reconfigure`].
    pub fn set_policies(&mut self, policies: BreakerPolicies) {
        self.policies = policies;
    }

    /// Puts `policies` in force at `now`: breakers created from now on get their
    /// configurations, and every existing breaker whose configuration changes is reconfigured
    /// ([`Breaker::reconfigure`]: it keeps its state, makes no transition, and its
    /// outstanding permits turn stale). Every changed configuration is checked first; on an
    /// error nothing changes.
    pub fn apply_policies(
        &mut self,
        now: Instant,
        policies: BreakerPolicies,
    ) -> Result<(), BreakerConfigError> {
        for (_, name, b) in self.registry.iter() {
            let config = policies.get(name);
            if config != b.config() {
                config.validate()?;
            }
        }
        for (name, b) in self.registry.iter_mut() {
            let config = *policies.get(name);
            if config != *b.config() {
                // Checked above: a refusal would leave the breaker as it was.
                let _ = b.reconfigure(now, config);
            }
        }
        self.policies = policies;
        Ok(())
    }

    /// Puts `config` in force for breaker `id` at `now` ([`Breaker::reconfigure`]: the
    /// breaker keeps its state, makes no transition, and its outstanding permits turn stale).
    pub fn reconfigure(
        &mut self,
        now: Instant,
        id: BreakerId,
        config: BreakerConfig,
    ) -> Result<(), BreakerConfigError> {
        match self.registry.get_mut(id) {
            Some(b) => b.reconfigure(now, config).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Permits held for clients.
    pub fn held_permits(&self) -> usize {
        self.permits.len()
    }

    #[cfg(test)]
    pub(crate) fn assert_invariants(&self) {
        self.permits.assert_invariants();
        for (_, _, b) in self.registry.iter() {
            assert_eq!(b.dropped_events(), 0);
        }
    }
}

/// The refusal of a breaker call while the effect queue is full.
fn effects_full(now: Instant, out: &mut ReplyBuf) -> Reply {
    let message = "breaker state changes are waiting to be journaled; try again shortly";
    let at = now.saturating_add(Duration::from_millis(EFFECTS_FULL_RETRY_AFTER_MS));
    encode_refusal(
        out,
        &Refusal::new(ErrorCode::Overloaded, &message).retry_at(now, at),
    )
}

fn internal(out: &mut ReplyBuf, what: &str) -> Reply {
    encode_refusal(out, &Refusal::new(ErrorCode::Internal, &what))
}

/// `{"allowed":true,"permit":"…","probe":…,"state":"…"}`.
fn acquired(out: &mut ReplyBuf, permit_id: u64, probe: bool, state: &str) -> Reply {
    let mut w = Writer::new(out);
    w.bytes(b"{\"allowed\":true,\"permit\":\"");
    w.u64(permit_id);
    w.bytes(b"\",\"probe\":");
    w.bytes(if probe { b"true" } else { b"false" });
    w.bytes(b",\"state\":\"");
    w.bytes(state.as_bytes());
    w.bytes(b"\"}");
    Reply {
        len: w.finish().map_or(0, |n| n),
        outcome: Outcome::Allowed,
        error: None,
    }
}

/// `{"ok":true,"recorded":"…","retry_after_ms":…,"state":…}` (keys sorted; `retry_after_ms`
/// only while the breaker is open, `state` `null` for an unknown breaker).
fn recorded(
    out: &mut ReplyBuf,
    now: Instant,
    what: &str,
    state: Option<&str>,
    open_until: Option<Instant>,
) -> Reply {
    let mut w = Writer::new(out);
    w.bytes(b"{\"ok\":true,\"recorded\":\"");
    w.bytes(what.as_bytes());
    w.byte(b'"');
    if let Some(ms) = open_until.and_then(|until| ms_until(now, until)) {
        w.bytes(b",\"retry_after_ms\":");
        w.u64(ms);
    }
    match state {
        Some(state) => {
            w.bytes(b",\"state\":\"");
            w.bytes(state.as_bytes());
            w.bytes(b"\"}");
        }
        None => w.bytes(b",\"state\":null}"),
    }
    Reply {
        len: w.finish().map_or(0, |n| n),
        outcome: Outcome::Allowed,
        error: None,
    }
}

fn recorded_str(r: Recorded) -> &'static str {
    match r {
        Recorded::Counted => "counted",
        Recorded::Stale => "stale",
        Recorded::Ignored => "ignored",
        Recorded::Foreign => "foreign",
    }
}
