//! A reference model of the service's `RATE_LIMIT_CHECK` and `RATE_LIMIT_CONSUME`, written
//! the obvious way and independently of `heidi-core`: a map from (operation, client key) to
//! the instant its bucket is full again, integer microseconds, one token every
//! `ceil(window / capacity)` µs, and the exact reply bytes each decision is written as.
//!
//! Shared by the simulation test (`tests/tests/service_sim.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/service.rs`, through `#[path]`), so both hold the service to one model.
//!
//! The table is modelled exactly when it has one group of 8 slots: a consume of a new key (or
//! of one whose bucket has refilled) finds a slot unless all 8 hold buckets that have not
//! refilled, and is then refused `OVERLOADED` until the first of them refills. With more
//! slots (several groups, chosen by the key's hash) the model assumes the table never fills.

// Each includer uses its own part of the model.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;

/// The operation names with a limit of their own, in the service's table order; any other
/// name counts as `other` (the last index).
pub const OPERATIONS: [&str; 6] = [
    "search",
    "transform",
    "embed",
    "ai_generate",
    "health_check",
    "other",
];

/// The index of the operation a request names.
pub fn operation_index(name: &str) -> usize {
    OPERATIONS[..5]
        .iter()
        .position(|&op| op == name)
        .unwrap_or(5)
}

/// One operation's limit: `capacity` tokens per `window_us`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Tokens, at least 1.
    pub capacity: u32,
    /// Microseconds, at least 1.
    pub window_us: u64,
}

impl Limit {
    /// Microseconds per token, rounded up (the bucket never refills faster than configured).
    fn emission_us(self) -> u64 {
        self.window_us.div_ceil(u64::from(self.capacity))
    }

    fn burst_us(self) -> u64 {
        self.emission_us() * u64::from(self.capacity)
    }
}

/// What the model expects of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Granted (or a check that would be); `full_at_us` is when the bucket is full again after
    /// it.
    Granted { remaining: u32, full_at_us: u64 },
    /// Not now; the same call is granted from `retry_at_us` (`u64::MAX`: never).
    Denied { retry_at_us: u64 },
    /// The cost is above the operation's capacity (`BAD_REQUEST`).
    OverCapacity,
    /// No slot for a new bucket until `retry_at_us` (`OVERLOADED`).
    TableFull { retry_at_us: u64 },
}

/// The model's state.
#[derive(Clone, Debug)]
pub struct Model {
    /// Per operation, in [`OPERATIONS`] order.
    pub limits: [Limit; 6],
    /// When each (operation, key) bucket is full again, µs; absent: full.
    full_at_us: HashMap<(usize, String), u64>,
    /// `Some(8)`: the table is one group of 8 slots and modelled exactly.
    slots: Option<usize>,
    /// `RATE_LIMITED` answers per operation.
    pub denials: [u64; 6],
}

impl Model {
    /// A model of a service with `limits` over `slots` limiter slots.
    pub fn new(limits: [Limit; 6], slots: usize) -> Model {
        Model {
            limits,
            full_at_us: HashMap::new(),
            slots: (slots == 8).then_some(8),
            denials: [0; 6],
        }
    }

    fn full_at(&self, op: usize, key: &str) -> u64 {
        self.full_at_us
            .get(&(op, key.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// The decision of a consume (`take`) or a check of `cost` at `now_us`, without
    /// changing anything.
    fn decide(&self, now_us: u64, op: usize, key: &str, cost: u32) -> (Decision, u64) {
        let limit = self.limits[op];
        let full_at = self.full_at(op, key);
        if cost > limit.capacity {
            return (Decision::OverCapacity, full_at);
        }
        let debt = full_at.saturating_sub(now_us);
        let cost_us = u64::from(cost) * limit.emission_us();
        if debt + cost_us > limit.burst_us() {
            let retry_at_us = full_at - (limit.burst_us() - cost_us);
            return (Decision::Denied { retry_at_us }, full_at);
        }
        match now_us.checked_add(debt + cost_us) {
            Some(after) => {
                let remaining = (limit.burst_us() - debt - cost_us) / limit.emission_us();
                let remaining = u32::try_from(remaining).expect("at most the capacity");
                (
                    Decision::Granted {
                        remaining,
                        full_at_us: after,
                    },
                    after,
                )
            }
            None => (
                Decision::Denied {
                    retry_at_us: u64::MAX,
                },
                full_at,
            ),
        }
    }

    /// The whole tokens `key`'s bucket holds at `now_us`.
    pub fn available(&self, now_us: u64, op: usize, key: &str) -> u32 {
        match self.decide(now_us, op, key, 0).0 {
            Decision::Granted { remaining, .. } => remaining,
            _ => 0,
        }
    }

    /// What a `RATE_LIMIT_CHECK` of `cost` answers; nothing changes.
    pub fn check(&self, now_us: u64, op: usize, key: &str, cost: u32) -> Decision {
        self.decide(now_us, op, key, cost).0
    }

    /// Buckets that have not refilled at `now_us`, but `except`'s.
    fn live(&self, now_us: u64, except: &(usize, String)) -> impl Iterator<Item = u64> + '_ {
        let except = except.clone();
        self.full_at_us
            .iter()
            .filter(move |&(k, &at)| at > now_us && *k != except)
            .map(|(_, &at)| at)
    }

    /// A `RATE_LIMIT_CONSUME` of `cost`: the decision, and the state after it.
    pub fn consume(&mut self, now_us: u64, op: usize, key: &str, cost: u32) -> Decision {
        let (decision, full_at) = self.decide(now_us, op, key, cost);
        let id = (op, key.to_owned());
        let has_live_bucket = self.full_at(op, key) > now_us;
        match decision {
            Decision::Granted { .. } if cost == 0 => {}
            Decision::Granted { .. } => {
                if let Some(slots) = self.slots
                    && !has_live_bucket
                    && self.live(now_us, &id).count() >= slots
                {
                    let retry_at_us = self.live(now_us, &id).min().expect("slots > 0");
                    return Decision::TableFull { retry_at_us };
                }
                self.full_at_us.insert(id, full_at);
            }
            Decision::Denied { .. } => self.denials[op] += 1,
            Decision::OverCapacity | Decision::TableFull { .. } => {}
        }
        decision
    }
}

/// Whole milliseconds from `now_us` until `at_us`, rounded up; `None` for "never".
pub fn ms_until(now_us: u64, at_us: u64) -> Option<u64> {
    (at_us != u64::MAX).then(|| at_us.saturating_sub(now_us).div_ceil(1_000))
}

/// The exact reply body the service writes for `decision` (of a consume when `consume`,
/// else of a check), with `available` the tokens a check reports.
pub fn reply_body(
    consume: bool,
    decision: Decision,
    limit: Limit,
    op: usize,
    cost: u32,
    now_us: u64,
    available: u32,
) -> String {
    let name = OPERATIONS[op];
    let capacity = limit.capacity;
    let window_ms = limit.window_us / 1_000;
    let retry = |at: u64| match ms_until(now_us, at) {
        Some(ms) => format!(",\"retry_after_ms\":{ms}"),
        None => String::new(),
    };
    let error = |code: &str, message: String| {
        let message = serde_json::to_string(&message).expect("a string");
        format!("{{\"error\":true,\"code\":\"{code}\",\"message\":{message}")
    };
    let success = |allowed: bool, remaining: u32, last: (&str, String)| {
        format!(
            "{{\"allowed\":{allowed},\"limit\":{capacity},\"operation\":\"{name}\",\"remaining\":{remaining},\"{}\":{},\"window_ms\":{window_ms}}}",
            last.0, last.1
        )
    };
    match (consume, decision) {
        (_, Decision::OverCapacity) => {
            let message = format!(
                "params.cost: {cost} is above the capacity of operation `{name}` ({capacity} tokens), so it can never be granted"
            );
            format!("{}}}", error("BAD_REQUEST", message))
        }
        (_, Decision::TableFull { retry_at_us }) => {
            let message = "the rate-limit table is full of keys that have not refilled".into();
            format!("{}{}}}", error("OVERLOADED", message), retry(retry_at_us))
        }
        (
            true,
            Decision::Granted {
                remaining,
                full_at_us,
            },
        ) => {
            // A bucket full again only at the end of the clock is still that far away (see
            // `reset_after_ms_at_the_end_of_the_clock` in service_sim.rs).
            let reset = full_at_us.saturating_sub(now_us).div_ceil(1_000);
            success(true, remaining, ("reset_after_ms", reset.to_string()))
        }
        (true, Decision::Denied { retry_at_us }) => {
            let message = format!(
                "rate limit of operation `{name}` reached for this key ({capacity} per {window_ms} ms)"
            );
            format!(
                "{}{},\"remaining\":0,\"limit\":{capacity},\"operation\":\"{name}\"}}",
                error("RATE_LIMITED", message),
                retry(retry_at_us)
            )
        }
        (false, Decision::Granted { .. }) => {
            success(true, available, ("retry_after_ms", "0".into()))
        }
        (false, Decision::Denied { retry_at_us }) => {
            let retry = ms_until(now_us, retry_at_us).map_or("null".into(), |ms| ms.to_string());
            success(false, available, ("retry_after_ms", retry))
        }
    }
}
