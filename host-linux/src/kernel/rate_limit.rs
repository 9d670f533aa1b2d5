//! `RATE_LIMIT_CHECK` and `RATE_LIMIT_CONSUME`: the core's keyed limiter, one bucket per
//! (operation, client key), under the policy's limit of the operation.

use heidi_core::Instant;
use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::limit::{
    Acquire, KeyedAcquire, KeyedLimiter, LimitPolicy, Operation, PolicyTable, Tat,
};
use heidi_core::proto::ErrorCode;
use heidi_core::table::Slot;
use serde_json::{Value, json};

use super::config::{KEY_MAX_BYTES, OPERATION_MAX_BYTES};
use super::fields::Fields;
use super::reply::{Answer, Fail, ms_until};

/// The limiter and its denial counters.
pub(crate) struct RateLimits {
    limiter: KeyedLimiter<Box<[Slot<Tat>]>>,
    denials: [u64; Operation::ALL.len()],
}

/// One parsed request: the bucket's key, the operation, its limit and the cost.
struct Call {
    key: KeyHash,
    op: Operation,
    limit: LimitPolicy,
    cost: u32,
}

impl Call {
    fn parse(hasher: &KeyHasher, table: &PolicyTable, params: &Value) -> Result<Call, Fail> {
        let mut f = Fields::new(params, "params")?;
        let key = f.str_req("key", KEY_MAX_BYTES)?;
        let op = Operation::from_name(f.str_req("operation", OPERATION_MAX_BYTES)?);
        let cost = f.u32_in("cost", 1, u32::MAX)?.unwrap_or(1);
        f.finish()?;
        let limit = *table.get(op);
        if cost > limit.capacity_tokens() {
            let reason = format!(
                "{cost} is above the capacity of operation `{}` ({} tokens), so it can never be granted",
                op.as_str(),
                limit.capacity_tokens()
            );
            return Err(f_error("cost", reason));
        }
        Ok(Call {
            key: op.key(hasher, key.as_bytes()),
            op,
            limit,
            cost,
        })
    }
}

fn f_error(param: &str, reason: String) -> Fail {
    Fail::new(ErrorCode::BadRequest, format!("params.{param}: {reason}"))
}

impl RateLimits {
    /// A limiter over `slots` slots (a non-zero multiple of 8).
    pub(crate) fn new(slots: usize) -> RateLimits {
        RateLimits {
            limiter: KeyedLimiter::new(vec![Slot::empty(); slots].into_boxed_slice()),
            denials: [0; Operation::ALL.len()],
        }
    }

    /// `RATE_LIMIT_CHECK`: what a consume would answer now, taking nothing.
    pub(crate) fn check(
        &self,
        now: Instant,
        hasher: &KeyHasher,
        table: &PolicyTable,
        params: &Value,
    ) -> Answer {
        let call = Call::parse(hasher, table, params)?;
        let peek = |cost| self.limiter.check(now, call.key, &call.limit, cost);
        let available = match peek(0) {
            Ok(Acquire::Granted { remaining }) => remaining,
            _ => 0,
        };
        let (allowed, retry_after_ms) = match peek(call.cost) {
            Ok(Acquire::Granted { .. }) => (true, Some(0)),
            Ok(Acquire::Denied { retry_at }) => (false, ms_until(now, retry_at)),
            Err(e) => return Err(Fail::new(ErrorCode::BadRequest, e.to_string())),
        };
        Ok(json!({
            "allowed": allowed,
            "remaining": available,
            "retry_after_ms": retry_after_ms,
            "limit": call.limit.capacity_tokens(),
            "window_ms": call.limit.window().as_millis(),
            "operation": call.op.as_str(),
        }))
    }

    /// `RATE_LIMIT_CONSUME`: takes `cost` tokens, or says when to retry.
    pub(crate) fn consume(
        &mut self,
        now: Instant,
        hasher: &KeyHasher,
        table: &PolicyTable,
        params: &Value,
    ) -> Answer {
        let call = Call::parse(hasher, table, params)?;
        let capacity = call.limit.capacity_tokens();
        let answer = self
            .limiter
            .acquire(now, call.key, &call.limit, call.cost)
            .map_err(|e| Fail::new(ErrorCode::BadRequest, e.to_string()))?;
        match answer {
            KeyedAcquire::Granted { remaining } => {
                let full_at = self.limiter.get(call.key).map_or(now, Tat::full_at);
                Ok(json!({
                    "allowed": true,
                    "remaining": remaining,
                    "reset_after_ms": ms_until(now, full_at).unwrap_or(0),
                    "limit": capacity,
                    "window_ms": call.limit.window().as_millis(),
                    "operation": call.op.as_str(),
                }))
            }
            KeyedAcquire::Denied { retry_at } => {
                self.denials[index(call.op)] += 1;
                let message = format!(
                    "rate limit of operation `{}` reached for this key ({capacity} per {} ms)",
                    call.op.as_str(),
                    call.limit.window().as_millis()
                );
                Err(Fail::new(ErrorCode::RateLimited, message)
                    .retry_at(now, retry_at)
                    .with("remaining", 0)
                    .with("limit", capacity)
                    .with("operation", call.op.as_str()))
            }
            KeyedAcquire::TableFull { retry_at } => {
                let message = "the rate-limit table is full of keys that have not refilled";
                Err(Fail::new(ErrorCode::Overloaded, message).retry_at(now, retry_at))
            }
        }
    }

    /// Denials per operation since start.
    pub(crate) fn denials(&self) -> Vec<(&'static str, u64)> {
        Operation::ALL
            .iter()
            .map(|&op| (op.as_str(), self.denials[index(op)]))
            .collect()
    }

    /// Buckets held.
    pub(crate) fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Frees refilled buckets from `cursor` on; returns the next cursor.
    pub(crate) fn sweep(&mut self, now: Instant, cursor: usize, budget: usize) -> usize {
        self.limiter.sweep(now, cursor, budget)
    }
}

fn index(op: Operation) -> usize {
    Operation::ALL.iter().position(|&o| o == op).unwrap_or(0)
}
