//! The rate-limit part of the policy document: operations (the six built-in ones and custom
//! ones), tiers with their own limits, and the default tier, in fixed-capacity tables sized by
//! the host.
//!
//! # The document
//!
//! ```json
//! {
//!   "limits": {
//!     "search":   {"capacity_tokens": 30,  "window_ms": 60000},
//!     "llm_call": {"capacity_tokens": 100, "window_ms": 60000}
//!   },
//!   "tiers": {
//!     "free": {"limits": {"llm_call": {"capacity_tokens": 10}}},
//!     "pro":  {"limits": {"llm_call": {"capacity_tokens": 100}, "search": {"capacity_tokens": 300}}}
//!   },
//!   "default_tier": "free"
//! }
//! ```
//!
//! - `limits.<op>`: a built-in operation (`search`, `transform`, `embed`, `ai_generate`,
//!   `health_check`, `other`) or a custom one, which this entry defines. Missing fields take
//!   the built-in default: the operation's own for a built-in one, the "anything else" default
//!   (30 per 60 s, [`Operation::Other`]) for a custom one. A document without custom names
//!   means what it always meant.
//! - `tiers.<tier>.limits.<op>`: the tier's own limit of an operation that is built in or
//!   defined under `limits`; its missing fields, and the operations it does not name, take the
//!   document's `limits.<op>`.
//! - `default_tier`: the tier of a request that names none; without it such a request is
//!   served by `limits`.
//! - The other sections of the daemon's document (`retry`, `breakers`, `leases`, `health`,
//!   `idempotency`, `readiness`) are skipped here (the host reads them); any other top-level
//!   field is refused.
//!
//! Bounds: names are 1–64 bytes of `A-Z a-z 0-9 _ . : -`; at most [`OPERATIONS_MAX`]
//! operations, the six built-in ones included, and [`TIERS_MAX`] tiers, or fewer when the
//! host sizes the table smaller (`CUSTOM` custom operations, `TIERS` tiers); `capacity_tokens`
//! 1 ..= 2³²−1, `window_ms` 1 ..= [`WINDOW_MAX_MS`]. Errors name the field
//! ([`InvalidPolicy`]): `limits.<op>`, `tiers.pro.limits.llm_call.capacity_tokens`,
//! `default_tier`.
//!
//! # Why the core's own scanner
//!
//! The document is read with the core's strict scanner ([`Members`](crate::proto::params::Members)),
//! the one that reads requests, rather than serde-json-core: the scanner gives every member's
//! name and raw value in document order, so a duplicate field, an unknown field and a bad
//! value are each refused with the path of the field (`tiers.pro.limits.x.window_ms`);
//! serde-json-core's errors carry no path, its maps silently keep one of two duplicate keys,
//! and its fixed-capacity maps would store every name twice. It also keeps one JSON grammar
//! in the core.
//!
//! # Tiers and buckets
//!
//! A tier chooses the limit, not the bucket: a client key has one bucket per operation
//! whatever tier it is served under. The bucket's state is "full again at instant t"
//! ([`crate::limit::bucket`]), so a key moved to another tier (or served under two) keeps the
//! time it has used of its window, exactly as after a policy change; it cannot buy a fresh
//! bucket by naming another tier, and the table holds one slot per key and operation, not one
//! per tier.
//!
//! A custom operation's bucket is keyed by its *name* (not its place in the table), so
//! applying a new document that adds or removes other operations keeps every client's
//! buckets. A name the policy does not define counts as `other`, as before.
//!
//! # Storage
//!
//! `RatePolicy<CUSTOM, TIERS>` holds everything inline: per custom operation its name (65
//! bytes) and one 32-byte limit per tier plus the top level; per tier its name. The defaults
//! (`RatePolicy<0, 0>`, the six built-in operations and no tiers) take 200 bytes; the daemon's
//! `RatePolicy<250, 16>` about 160 KB (box it). A hot lookup is a `match` for a built-in
//! name (as before), a binary search of the sorted custom names otherwise, and a binary
//! search of at most 16 sorted tier names.
//!
//! ```
//! use heidi_core::policy::RatePolicy;
//!
//! let doc = r#"{"limits":{"llm_call":{"capacity_tokens":100}},
//!               "tiers":{"free":{"limits":{"llm_call":{"capacity_tokens":10}}}},
//!               "default_tier":"free"}"#;
//! let policy = RatePolicy::<8, 2>::parse(doc).unwrap();
//! let op = policy.operation("llm_call");
//! assert_eq!(policy.operation_name(op), "llm_call");
//! assert_eq!(policy.limit(op, policy.default_tier()).capacity_tokens(), 10);
//! assert_eq!(policy.limit(op, None).capacity_tokens(), 100);
//!
//! let err = RatePolicy::<8, 2>::parse(r#"{"tiers":{"pro":{"limits":{"x":{}}}}}"#).unwrap_err();
//! assert_eq!(err.path(), "tiers.pro.limits.x");
//! ```

// An error holds its field path inline (no allocation in the core), about 200 bytes; it is
// made once per refused document, never on a request's path.
#![allow(clippy::result_large_err)]

mod error;
mod name;
mod parse;
mod sections;
#[cfg(test)]
mod sections_tests;
mod tables;
#[cfg(test)]
mod tests;
mod write;

pub use error::{InvalidPolicy, PATH_MAX_BYTES, Reason};
pub use name::Name;
pub use sections::{
    BREAKER_ENTRIES_MAX, HEALTH_FAILURE_THRESHOLD_MAX, LEASE_LIMIT_MAX, READINESS_CHECKS_MAX,
    RETRY_ATTEMPTS_MAX, RETRY_POLICIES_MAX, Sections,
};
pub use write::write_document;

use tables::{OpLimits, Tier};

use crate::key::{KeyHash, KeyHasher};
use crate::limit::{LimitPolicy, Operation, PolicyTable};

/// Most operations a policy defines, the six built-in ones included.
pub const OPERATIONS_MAX: usize = 256;
/// Most custom operations: [`OPERATIONS_MAX`] less the built-in ones.
pub const CUSTOM_OPERATIONS_MAX: usize = OPERATIONS_MAX - BUILTIN_OPERATIONS;
/// Most tiers a policy defines.
pub const TIERS_MAX: usize = 16;
/// The built-in operations ([`Operation::ALL`]).
pub const BUILTIN_OPERATIONS: usize = Operation::ALL.len();
/// Longest `window_ms`: 30 days, the bound of every duration in the policy document.
pub const WINDOW_MAX_MS: u64 = 30 * 24 * 3_600 * 1_000;

/// An operation of a [`RatePolicy`]: a built-in one (`0..6`, [`Operation::ALL`] order) or a
/// custom one (its place among the sorted custom names, from 6). Valid for the policy that
/// handed it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OpId(u16);

impl OpId {
    /// [`Operation::Other`], the operation of every name the policy does not define.
    pub const OTHER: OpId = OpId(Operation::Other as u16);

    /// The built-in operation, or `None` for a custom one.
    #[must_use]
    pub const fn builtin(self) -> Option<Operation> {
        if (self.0 as usize) < BUILTIN_OPERATIONS {
            Some(Operation::ALL[self.0 as usize])
        } else {
            None
        }
    }

    /// The place in the policy's table: built-in ones first, then the custom ones in name
    /// order.
    #[must_use]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl From<Operation> for OpId {
    fn from(op: Operation) -> OpId {
        OpId(op as u16)
    }
}

/// A tier of a [`RatePolicy`] (its place among the sorted tier names). Valid for the policy
/// that handed it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TierId(u8);

impl TierId {
    /// The place among the policy's tiers, in name order.
    #[must_use]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// The rate-limit policy: operations, their limits, tiers. `CUSTOM` is the room for custom
/// operations (at most [`CUSTOM_OPERATIONS_MAX`]), `TIERS` for tiers (at most [`TIERS_MAX`]);
/// both checked at compile time. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RatePolicy<const CUSTOM: usize = 0, const TIERS: usize = 0> {
    /// The custom operations' names, sorted; the first `custom_len` are in use.
    custom_names: [Name; CUSTOM],
    custom_len: u16,
    /// The top level: `limits`.
    base: OpLimits<CUSTOM>,
    /// The tiers, sorted by name; the first `tiers_len` are in use.
    tiers: [Tier<CUSTOM>; TIERS],
    tiers_len: u8,
    default_tier: Option<TierId>,
}

impl<const C: usize, const T: usize> Default for RatePolicy<C, T> {
    fn default() -> RatePolicy<C, T> {
        RatePolicy::from_table(PolicyTable::DEFAULT)
    }
}

impl<const C: usize, const T: usize> RatePolicy<C, T> {
    const SIZES_FIT: () = assert!(
        C <= CUSTOM_OPERATIONS_MAX && T <= TIERS_MAX,
        "at most 250 custom operations and 16 tiers"
    );

    /// The built-in defaults: the six built-in operations, no custom ones, no tiers.
    #[must_use]
    pub const fn new() -> RatePolicy<C, T> {
        RatePolicy::from_table(PolicyTable::DEFAULT)
    }

    /// The six built-in operations with the limits of `table`; no custom operations, no tiers.
    #[must_use]
    pub const fn from_table(table: PolicyTable) -> RatePolicy<C, T> {
        let () = Self::SIZES_FIT;
        RatePolicy {
            custom_names: [Name::EMPTY; C],
            custom_len: 0,
            base: OpLimits::new(table),
            tiers: [Tier::EMPTY; T],
            tiers_len: 0,
            default_tier: None,
        }
    }

    /// Reads and validates a whole document (see the [module docs](self)).
    ///
    /// # Errors
    /// The first bad field, by its path.
    pub fn parse(doc: &str) -> Result<RatePolicy<C, T>, InvalidPolicy> {
        let mut policy = RatePolicy::new();
        policy.parse_into(doc)?;
        Ok(policy)
    }

    /// [`RatePolicy::parse`] into `self`, for a large table the host keeps in place (parse
    /// into a spare, then swap it in). On an error `self` holds the built-in defaults.
    ///
    /// # Errors
    /// The first bad field, by its path.
    pub fn parse_into(&mut self, doc: &str) -> Result<(), InvalidPolicy> {
        *self = RatePolicy::new();
        let read = parse::document(self, doc);
        if read.is_err() {
            *self = RatePolicy::new();
        }
        read
    }

    /// The operation called `name`: a built-in one, a custom one, or [`OpId::OTHER`] for a
    /// name the policy does not define. A built-in name costs one `match`, a custom one a
    /// binary search of the sorted custom names.
    #[inline]
    #[must_use]
    pub fn operation(&self, name: &str) -> OpId {
        let op = Operation::from_name(name);
        if op != Operation::Other || self.custom_len == 0 {
            return OpId::from(op);
        }
        self.custom_operation(name).unwrap_or(OpId::OTHER)
    }

    /// The custom operation called `name`, if the policy defines it.
    #[must_use]
    pub fn custom_operation(&self, name: &str) -> Option<OpId> {
        let names = &self.custom_names[..usize::from(self.custom_len)];
        let at = names
            .binary_search_by(|n| n.as_bytes().cmp(name.as_bytes()))
            .ok()?;
        // Below 256 by the table's bound.
        Some(OpId((BUILTIN_OPERATIONS + at) as u16))
    }

    /// The name of `op` (`"other"` for [`OpId::OTHER`]).
    #[must_use]
    pub fn operation_name(&self, op: OpId) -> &str {
        match op.builtin() {
            Some(b) => b.as_str(),
            None => self.custom_names[op.index() - BUILTIN_OPERATIONS].as_str(),
        }
    }

    /// How many operations the policy defines, the built-in ones included.
    #[must_use]
    pub fn operations_len(&self) -> usize {
        BUILTIN_OPERATIONS + usize::from(self.custom_len)
    }

    /// Every operation with its name: the built-in ones in [`Operation::ALL`] order, then the
    /// custom ones in name order.
    pub fn operations(&self) -> impl Iterator<Item = (OpId, &str)> + '_ {
        (0..self.operations_len()).map(|i| {
            // Below 256 by the table's bound.
            let op = OpId(i as u16);
            (op, self.operation_name(op))
        })
    }

    /// The tier called `name`, if any (a binary search of at most 16 names).
    #[must_use]
    pub fn tier(&self, name: &str) -> Option<TierId> {
        let tiers = &self.tiers[..usize::from(self.tiers_len)];
        let at = tiers
            .binary_search_by(|t| t.name.as_bytes().cmp(name.as_bytes()))
            .ok()?;
        // Below 16 by the table's bound.
        Some(TierId(at as u8))
    }

    /// The name of `tier`.
    #[must_use]
    pub fn tier_name(&self, tier: TierId) -> &str {
        self.tiers[tier.index()].name.as_str()
    }

    /// Every tier with its name, in name order.
    pub fn tiers(&self) -> impl Iterator<Item = (TierId, &str)> + '_ {
        self.tiers[..usize::from(self.tiers_len)]
            .iter()
            .enumerate()
            // Below 16 by the table's bound.
            .map(|(i, t)| (TierId(i as u8), t.name.as_str()))
    }

    /// The tier of a request that names none (`default_tier`); `None`: the top level.
    #[must_use]
    pub const fn default_tier(&self) -> Option<TierId> {
        self.default_tier
    }

    /// The limit of `op` under `tier` (`None`: the top level, `limits`).
    #[inline]
    #[must_use]
    pub fn limit(&self, op: OpId, tier: Option<TierId>) -> &LimitPolicy {
        match tier {
            None => self.base.get(op),
            Some(t) => self.tiers[t.index()].limits.get(op),
        }
    }

    /// The operations `tier` gives a limit of its own (the document's
    /// `tiers.<tier>.limits`), with that limit; the others follow the top level.
    pub fn tier_limits(&self, tier: TierId) -> impl Iterator<Item = (OpId, &LimitPolicy)> + '_ {
        let t = &self.tiers[tier.index()];
        self.operations()
            .filter(move |&(op, _)| t.own.get(op))
            .map(move |(op, _)| (op, t.limits.get(op)))
    }

    /// The top-level limits of the six built-in operations.
    #[must_use]
    pub const fn builtin_limits(&self) -> &PolicyTable {
        &self.base.builtin
    }

    /// The key of `client_key`'s bucket for `op`. A built-in operation's is the hash of its
    /// index and the key, as [`Operation::key`]; a custom one's is the hash of the byte
    /// `0xFF`, its name and the key, each with its length, so it depends on the name, not
    /// on the operation's place in the table, and can never equal a built-in one's (that
    /// stream would need a `0xFF` byte in a UTF-8 client key).
    #[inline]
    #[must_use]
    pub fn bucket_key(&self, hasher: &KeyHasher, op: OpId, client_key: &[u8]) -> KeyHash {
        match op.builtin() {
            Some(b) => b.key(hasher, client_key),
            None => {
                let name = self.custom_names[op.index() - BUILTIN_OPERATIONS].as_bytes();
                hasher.hash_parts(&[&[0xFF], name, client_key])
            }
        }
    }
}
