//! `RATE_LIMIT_CHECK` and `RATE_LIMIT_CONSUME`: one bucket per (operation, client key) in a
//! [`KeyedLimiter`] over the host's slots, under the [`LimitPolicy`] the [`RatePolicy`] gives
//! the operation in the request's tier (`params.tier`, else the default tier, else the top
//! level). The tier chooses the limit, not the bucket (see [`crate::policy`]).

use core::fmt;

use super::fragments::{Entry, Fragments};
use super::rate_params::{self, RateParams, Scratch};
use super::reply::{Extra, Refusal, encode_refusal, ms_until};
use super::{Outcome, Reply, ReplyBuf};
use crate::Instant;
use crate::json::writer::Writer;
use crate::key::{KeyHash, KeyHasher};
use crate::limit::{
    Acquire, CostOverCapacity, KeyedAcquire, KeyedLimiter, LimitPolicy, Operation, Tat,
};
use crate::policy::{BUILTIN_OPERATIONS, OpId, RatePolicy, TierId};
use crate::proto::ErrorCode;
use crate::proto::params::{Member, NotAnObject};
use crate::table::Slot;

/// The limiter, its denial counters and its sweep cursor.
#[derive(Clone, Debug)]
pub(crate) struct RateLimits<S, const C: usize> {
    limiter: KeyedLimiter<S>,
    /// `RATE_LIMITED` answers per built-in operation, in [`Operation::ALL`] order.
    denials: [u64; BUILTIN_OPERATIONS],
    /// `RATE_LIMITED` answers per custom operation, in the policy's order.
    custom_denials: [u64; C],
    cursor: usize,
    scratch: Scratch,
    /// The success replies' parts per (operation, tier) of the policy in force.
    fragments: Fragments,
}

/// One call, its params read and its operation looked up.
pub(crate) struct Call<'p> {
    key: KeyHash,
    pub(crate) op: OpId,
    /// The operation's name as the reply shows it (`other` for an unknown one).
    pub(crate) op_name: &'p str,
    /// The tier that chose the limit; `None`: the top level.
    pub(crate) tier_id: Option<TierId>,
    /// Its name.
    pub(crate) tier: Option<&'p str>,
    pub(crate) limit: LimitPolicy,
    cost: u32,
}

impl<S, const C: usize> RateLimits<S, C>
where
    S: AsRef<[Slot<Tat>]> + AsMut<[Slot<Tat>]>,
{
    pub(crate) fn new(slots: S) -> RateLimits<S, C> {
        RateLimits {
            limiter: KeyedLimiter::new(slots),
            denials: [0; BUILTIN_OPERATIONS],
            custom_denials: [0; C],
            cursor: 0,
            scratch: Scratch::new(),
            fragments: Fragments::new(),
        }
    }

    /// Reads the params, decides and writes the reply.
    pub(crate) fn handle<'a, const T: usize>(
        &mut self,
        now: Instant,
        (hasher, policy): (&KeyHasher, &RatePolicy<C, T>),
        consume: bool,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut ReplyBuf,
    ) -> Reply {
        let call = match rate_params::parse(members, &mut self.scratch) {
            Ok(params) => match Call::new(hasher, policy, &params) {
                Some(call) => call,
                None => {
                    let message = UnknownTier(policy);
                    return encode_refusal(out, &Refusal::new(ErrorCode::BadRequest, &message));
                }
            },
            Err(e) => return encode_refusal(out, &Refusal::new(ErrorCode::BadRequest, &e)),
        };
        let answer = if consume {
            self.consume(now, &call, out)
        } else {
            self.check(now, &call, out)
        };
        answer.unwrap_or_else(|over| cost_refused(&call, over, out))
    }

    /// What a consume would answer now, taking nothing and no slot.
    // Inlined (as `consume` and `Call::new` are): a `Reply` or `Call` returned through memory
    // is copied in wider loads than it was written in, which stalls each request.
    #[inline(always)]
    fn check(
        &mut self,
        now: Instant,
        call: &Call<'_>,
        out: &mut ReplyBuf,
    ) -> Result<Reply, CostOverCapacity> {
        // One table lookup for both questions.
        let tat = self.limiter.bucket(call.key);
        let available = match tat.check(now, &call.limit, 0) {
            Ok(Acquire::Granted { remaining }) => remaining,
            _ => 0,
        };
        let (outcome, retry_after_ms) = match tat.check(now, &call.limit, call.cost)? {
            Acquire::Granted { .. } => (Outcome::Allowed, Some(0)),
            Acquire::Denied { retry_at } => (Outcome::Denied { retry_at }, ms_until(now, retry_at)),
        };
        let parts = self.fragments.get(call);
        let mut w = Writer::new(out);
        // Two pieces of known length: each is copied without a call.
        if outcome == Outcome::Allowed {
            w.bytes(b"{\"allowed\":true");
        } else {
            w.bytes(b"{\"allowed\":false");
        }
        parts.head(&mut w);
        w.u64(u64::from(available));
        w.bytes(b",\"retry_after_ms\":");
        match retry_after_ms {
            Some(ms) => w.u64(ms),
            None => w.bytes(b"null"),
        }
        Ok(success(w, parts, outcome))
    }

    /// Takes `cost` tokens, or says when to retry.
    #[inline(always)]
    fn consume(
        &mut self,
        now: Instant,
        call: &Call<'_>,
        out: &mut ReplyBuf,
    ) -> Result<Reply, CostOverCapacity> {
        let capacity = call.limit.capacity_tokens();
        let reply = match self
            .limiter
            .acquire(now, call.key, &call.limit, call.cost)?
        {
            KeyedAcquire::Granted { remaining } => {
                let full_at = self.limiter.get(call.key).map_or(now, Tat::full_at);
                let parts = self.fragments.get(call);
                let mut w = Writer::new(out);
                w.bytes(b"{\"allowed\":true");
                parts.head(&mut w);
                w.u64(u64::from(remaining));
                // The time until the bucket is full again, which is never "never" (a TAT that
                // lands on `Instant::MAX` is still that far away).
                w.bytes(b",\"reset_after_ms\":");
                w.u64(full_at.saturating_duration_since(now).as_millis_ceil());
                success(w, parts, Outcome::Allowed)
            }
            KeyedAcquire::Denied { retry_at } => {
                self.count_denial(call.op);
                let message = Limited(call);
                let mut refusal = Refusal::new(ErrorCode::RateLimited, &message)
                    .retry_at(now, retry_at)
                    .with(Extra::Remaining(0))
                    .with(Extra::Limit(capacity))
                    .with(Extra::Operation(call.op_name));
                if let Some(tier) = call.tier {
                    refusal = refusal.with(Extra::Tier(tier));
                }
                let mut reply = encode_refusal(out, &refusal);
                reply.outcome = Outcome::Denied { retry_at };
                reply
            }
            KeyedAcquire::TableFull { retry_at } => {
                let message = "the rate-limit table is full of keys that have not refilled";
                let refusal = Refusal::new(ErrorCode::Overloaded, &message).retry_at(now, retry_at);
                encode_refusal(out, &refusal)
            }
        };
        Ok(reply)
    }

    fn count_denial(&mut self, op: OpId) {
        let count = match op.builtin() {
            Some(b) => &mut self.denials[b as usize],
            None => &mut self.custom_denials[op.index() - BUILTIN_OPERATIONS],
        };
        *count += 1;
    }

    /// `RATE_LIMITED` answers per built-in operation since start.
    pub(crate) fn denials(&self) -> [(Operation, u64); BUILTIN_OPERATIONS] {
        Operation::ALL.map(|op| (op, self.denials[op as usize]))
    }

    /// `RATE_LIMITED` answers of `op` since start (for a custom one: since it was defined).
    pub(crate) fn denials_of(&self, op: OpId) -> u64 {
        match op.builtin() {
            Some(b) => self.denials[b as usize],
            None => self.custom_denials[op.index() - BUILTIN_OPERATIONS],
        }
    }

    /// Follows a change of policy from `old` to `new`: carries the custom operations' counts
    /// by name (a custom operation `new` no longer defines loses its count; a new one starts
    /// at 0) and forgets the reply parts written under `old`.
    pub(crate) fn follow_policy<const T: usize, const U: usize>(
        &mut self,
        old: &RatePolicy<C, T>,
        new: &RatePolicy<C, U>,
    ) {
        let mut counts = [0u64; C];
        for (op, name) in new.operations().skip(BUILTIN_OPERATIONS) {
            if let Some(was) = old.custom_operation(name) {
                counts[op.index() - BUILTIN_OPERATIONS] = self.denials_of(was);
            }
        }
        self.custom_denials = counts;
        self.fragments.clear();
    }

    /// Buckets held (refilled ones not yet swept included).
    pub(crate) fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Frees up to `max_slots` refilled buckets, continuing where the last sweep stopped.
    pub(crate) fn sweep(&mut self, now: Instant, max_slots: usize) {
        self.cursor = self.limiter.sweep(now, self.cursor, max_slots);
    }
}

impl<'p> Call<'p> {
    /// The call's operation, tier and bucket; `None` when `params.tier` names no tier.
    #[inline(always)]
    fn new<const C: usize, const T: usize>(
        hasher: &KeyHasher,
        policy: &'p RatePolicy<C, T>,
        params: &RateParams<'_>,
    ) -> Option<Call<'p>> {
        let op = policy.operation(params.operation);
        let tier: Option<TierId> = match params.tier {
            None => policy.default_tier(),
            Some(name) => Some(policy.tier(name)?),
        };
        Some(Call {
            key: policy.bucket_key(hasher, op, params.key.as_bytes()),
            op,
            op_name: policy.operation_name(op),
            tier_id: tier,
            tier: tier.map(|t| policy.tier_name(t)),
            limit: *policy.limit(op, tier),
            cost: params.cost,
        })
    }
}

/// The message of `RATE_LIMITED`.
struct Limited<'c, 'p>(&'c Call<'p>);

impl fmt::Display for Limited<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call = self.0;
        write!(f, "rate limit of operation `{}` ", call.op_name)?;
        if let Some(tier) = call.tier {
            write!(f, "in tier `{tier}` ")?;
        }
        write!(
            f,
            "reached for this key ({} per {} ms)",
            call.limit.capacity_tokens(),
            call.limit.window().as_millis()
        )
    }
}

/// The message of an unknown `params.tier`: the tiers there are.
struct UnknownTier<'p, const C: usize, const T: usize>(&'p RatePolicy<C, T>);

impl<const C: usize, const T: usize> fmt::Display for UnknownTier<'_, C, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut tiers = self.0.tiers();
        let Some((_, first)) = tiers.next() else {
            return f.write_str("params.tier: unknown tier (the policy defines no tiers)");
        };
        write!(f, "params.tier: unknown tier (expected one of: {first}")?;
        for (_, name) in tiers {
            write!(f, ", {name}")?;
        }
        f.write_str(")")
    }
}

/// Ends a success reply with its tail (`,"tier":"…"` when a tier chose the limit, and
/// `,"window_ms":…}`).
fn success(mut w: Writer<'_>, parts: &Entry, outcome: Outcome) -> Reply {
    parts.tail(&mut w);
    Reply {
        // A success reply is at most ~300 bytes, far below the buffer.
        len: w.finish().map_or(0, |n| n),
        outcome,
        error: None,
    }
}

/// The limiter's refusal of a cost it can never grant, naming the param.
fn cost_refused(call: &Call<'_>, over: CostOverCapacity, out: &mut ReplyBuf) -> Reply {
    let message = format_args!(
        "params.cost: {} is above the capacity of operation `{}` ({} tokens), so it can never be granted",
        over.cost_tokens, call.op_name, over.capacity_tokens
    );
    encode_refusal(out, &Refusal::new(ErrorCode::BadRequest, &message))
}
