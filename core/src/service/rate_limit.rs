//! `RATE_LIMIT_CHECK` and `RATE_LIMIT_CONSUME`: one bucket per (operation, client key) in a
//! [`KeyedLimiter`] over the host's slots, under the operation's [`LimitPolicy`].

use super::rate_params::{self, RateParams, Scratch};
use super::reply::{Extra, Refusal, encode_refusal, ms_until};
use super::{Outcome, Reply, ReplyBuf};
use crate::Instant;
use crate::json::writer::Writer;
use crate::key::{KeyHash, KeyHasher};
use crate::limit::{
    Acquire, CostOverCapacity, KeyedAcquire, KeyedLimiter, LimitPolicy, Operation, PolicyTable, Tat,
};
use crate::proto::ErrorCode;
use crate::proto::params::{Member, NotAnObject};
use crate::table::Slot;

/// The limiter, its denial counters and its sweep cursor.
#[derive(Clone, Debug)]
pub(crate) struct RateLimits<S> {
    limiter: KeyedLimiter<S>,
    /// `RATE_LIMITED` answers per operation, in [`Operation::ALL`] order.
    denials: [u64; Operation::ALL.len()],
    cursor: usize,
    scratch: Scratch,
}

/// One call, its params read and its operation looked up.
struct Call {
    key: KeyHash,
    op: Operation,
    limit: LimitPolicy,
    cost: u32,
}

impl<S> RateLimits<S>
where
    S: AsRef<[Slot<Tat>]> + AsMut<[Slot<Tat>]>,
{
    pub(crate) fn new(slots: S) -> RateLimits<S> {
        RateLimits {
            limiter: KeyedLimiter::new(slots),
            denials: [0; Operation::ALL.len()],
            cursor: 0,
            scratch: Scratch::new(),
        }
    }

    /// Reads the params, decides and writes the reply.
    pub(crate) fn handle<'a>(
        &mut self,
        now: Instant,
        (hasher, table): (&KeyHasher, &PolicyTable),
        consume: bool,
        members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
        out: &mut ReplyBuf,
    ) -> Reply {
        let call = match rate_params::parse(members, &mut self.scratch) {
            Ok(params) => Call::new(hasher, table, &params),
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
    fn check(
        &self,
        now: Instant,
        call: &Call,
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
        let mut w = Writer::new(out);
        w.bytes(b"{\"allowed\":");
        w.bytes(if outcome == Outcome::Allowed {
            b"true"
        } else {
            b"false"
        });
        limit_and_operation(&mut w, call);
        w.bytes(b",\"remaining\":");
        w.u64(u64::from(available));
        w.bytes(b",\"retry_after_ms\":");
        match retry_after_ms {
            Some(ms) => w.u64(ms),
            None => w.bytes(b"null"),
        }
        Ok(success(w, call, outcome))
    }

    /// Takes `cost` tokens, or says when to retry.
    fn consume(
        &mut self,
        now: Instant,
        call: &Call,
        out: &mut ReplyBuf,
    ) -> Result<Reply, CostOverCapacity> {
        let capacity = call.limit.capacity_tokens();
        let reply = match self
            .limiter
            .acquire(now, call.key, &call.limit, call.cost)?
        {
            KeyedAcquire::Granted { remaining } => {
                let full_at = self.limiter.get(call.key).map_or(now, Tat::full_at);
                let mut w = Writer::new(out);
                w.bytes(b"{\"allowed\":true");
                limit_and_operation(&mut w, call);
                w.bytes(b",\"remaining\":");
                w.u64(u64::from(remaining));
                w.bytes(b",\"reset_after_ms\":");
                w.u64(ms_until(now, full_at).unwrap_or(0));
                success(w, call, Outcome::Allowed)
            }
            KeyedAcquire::Denied { retry_at } => {
                self.denials[call.op as usize] += 1;
                let message = format_args!(
                    "rate limit of operation `{}` reached for this key ({capacity} per {} ms)",
                    call.op.as_str(),
                    call.limit.window().as_millis()
                );
                let refusal = Refusal::new(ErrorCode::RateLimited, &message)
                    .retry_at(now, retry_at)
                    .with(Extra::Remaining(0))
                    .with(Extra::Limit(capacity))
                    .with(Extra::Operation(call.op));
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

    /// `RATE_LIMITED` answers per operation since start.
    pub(crate) fn denials(&self) -> [(Operation, u64); Operation::ALL.len()] {
        Operation::ALL.map(|op| (op, self.denials[op as usize]))
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

impl Call {
    fn new(hasher: &KeyHasher, table: &PolicyTable, params: &RateParams<'_>) -> Call {
        let op = Operation::from_name(params.operation);
        Call {
            key: op.key(hasher, params.key.as_bytes()),
            op,
            limit: *table.get(op),
            cost: params.cost,
        }
    }
}

/// `,"limit":…,"operation":"…"`: the members every success reply has between `allowed` and
/// `remaining` (keys in sorted order, as every other reply of the daemon).
fn limit_and_operation(w: &mut Writer<'_>, call: &Call) {
    w.bytes(b",\"limit\":");
    w.u64(u64::from(call.limit.capacity_tokens()));
    w.bytes(b",\"operation\":\"");
    w.bytes(call.op.as_str().as_bytes());
    w.byte(b'"');
}

/// Ends a success reply with `,"window_ms":…}`.
fn success(mut w: Writer<'_>, call: &Call, outcome: Outcome) -> Reply {
    w.bytes(b",\"window_ms\":");
    w.u64(call.limit.window().as_millis());
    w.byte(b'}');
    Reply {
        // A success reply is at most ~170 bytes, far below the buffer.
        len: w.finish().map_or(0, |n| n),
        outcome,
        error: None,
    }
}

/// The limiter's refusal of a cost it can never grant, naming the param.
fn cost_refused(call: &Call, over: CostOverCapacity, out: &mut ReplyBuf) -> Reply {
    let message = format_args!(
        "params.cost: {} is above the capacity of operation `{}` ({} tokens), so it can never be granted",
        over.cost_tokens,
        call.op.as_str(),
        over.capacity_tokens
    );
    encode_refusal(out, &Refusal::new(ErrorCode::BadRequest, &message))
}
