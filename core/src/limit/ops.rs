//! Named operations and their default limits.
//!
//! | operation      | default       |
//! |----------------|---------------|
//! | `search`       | 30 per 60 s   |
//! | `transform`    | 10 per 60 s   |
//! | `embed`        | 60 per 60 s   |
//! | `ai_generate`  | 20 per 60 s   |
//! | `health_check` | 100 per 60 s  |
//! | anything else  | 30 per 60 s   |
//!
//! A client's bucket for an operation is keyed by the hash of (operation, client key), so one
//! [`KeyedLimiter`] holds every operation's buckets. Unknown operation names all map to
//! [`Operation::Other`] and so share one bucket per client: a client cannot get fresh buckets
//! by inventing operation names. Custom operations and tiers, which a policy document
//! defines, are [`crate::policy::RatePolicy`]'s; its built-in operations are these, with the
//! same bucket keys.

use super::bucket::{CostOverCapacity, LimitPolicy, Tat};
use super::keyed::{KeyedAcquire, KeyedLimiter};
use crate::key::{KeyHash, KeyHasher};
use crate::table::Slot;
use crate::time::{Duration, Instant};

/// A named operation with its own limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Operation {
    /// `search`: 30 per 60 s by default.
    Search,
    /// `transform`: 10 per 60 s by default.
    Transform,
    /// `embed`: 60 per 60 s by default.
    Embed,
    /// `ai_generate`: 20 per 60 s by default.
    AiGenerate,
    /// `health_check`: 100 per 60 s by default.
    HealthCheck,
    /// Any other name: 30 per 60 s by default.
    Other,
}

/// Builds a default policy in const context.
const fn per_minute(capacity_tokens: u32) -> LimitPolicy {
    match LimitPolicy::new(capacity_tokens, Duration::from_secs(60)) {
        Ok(p) => p,
        Err(_) => panic!("default policies are valid"),
    }
}

impl Operation {
    /// Every operation, in table order.
    pub const ALL: [Operation; 6] = [
        Operation::Search,
        Operation::Transform,
        Operation::Embed,
        Operation::AiGenerate,
        Operation::HealthCheck,
        Operation::Other,
    ];

    /// The operation called `name` (exact, lower-case match); unknown names are
    /// [`Operation::Other`].
    pub fn from_name(name: &str) -> Operation {
        match name {
            "search" => Operation::Search,
            "transform" => Operation::Transform,
            "embed" => Operation::Embed,
            "ai_generate" => Operation::AiGenerate,
            "health_check" => Operation::HealthCheck,
            _ => Operation::Other,
        }
    }

    /// The operation's name (`"other"` for [`Operation::Other`]).
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Search => "search",
            Operation::Transform => "transform",
            Operation::Embed => "embed",
            Operation::AiGenerate => "ai_generate",
            Operation::HealthCheck => "health_check",
            Operation::Other => "other",
        }
    }

    /// The default limit of this operation.
    pub const fn default_policy(self) -> LimitPolicy {
        match self {
            Operation::Search => per_minute(30),
            Operation::Transform => per_minute(10),
            Operation::Embed => per_minute(60),
            Operation::AiGenerate => per_minute(20),
            Operation::HealthCheck => per_minute(100),
            Operation::Other => per_minute(30),
        }
    }

    /// The key of `client_key`'s bucket for this operation: the hash of (operation, client
    /// key), tagged with the operation's index.
    pub fn key(self, hasher: &KeyHasher, client_key: &[u8]) -> KeyHash {
        hasher.hash_tagged(self.index() as u8, client_key)
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// One [`LimitPolicy`] per [`Operation`]; [`Default`] gives the default limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PolicyTable {
    policies: [LimitPolicy; 6],
}

impl PolicyTable {
    /// The default limits.
    pub const DEFAULT: PolicyTable = PolicyTable {
        policies: [
            Operation::Search.default_policy(),
            Operation::Transform.default_policy(),
            Operation::Embed.default_policy(),
            Operation::AiGenerate.default_policy(),
            Operation::HealthCheck.default_policy(),
            Operation::Other.default_policy(),
        ],
    };

    /// The policy of `op`.
    pub const fn get(&self, op: Operation) -> &LimitPolicy {
        &self.policies[op.index()]
    }

    /// Replaces the policy of `op`; it applies to existing buckets from their next call.
    pub fn set(&mut self, op: Operation, policy: LimitPolicy) {
        self.policies[op.index()] = policy;
    }
}

impl Default for PolicyTable {
    fn default() -> PolicyTable {
        PolicyTable::DEFAULT
    }
}

impl<S> KeyedLimiter<S>
where
    S: AsRef<[Slot<Tat>]> + AsMut<[Slot<Tat>]>,
{
    /// Takes `cost` tokens from `client_key`'s bucket for `op`, under `policies.get(op)`.
    ///
    /// # Errors
    /// [`CostOverCapacity`] if `cost` exceeds the operation's capacity.
    pub fn acquire_op(
        &mut self,
        now: Instant,
        hasher: &KeyHasher,
        policies: &PolicyTable,
        op: Operation,
        client_key: &[u8],
        cost: u32,
    ) -> Result<KeyedAcquire, CostOverCapacity> {
        self.acquire(now, op.key(hasher, client_key), policies.get(op), cost)
    }
}

#[cfg(test)]
mod tests {
    use super::super::keyed::ArrayLimiter;
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_other() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.as_str()), op);
        }
        assert_eq!(Operation::from_name("Search"), Operation::Other);
        assert_eq!(Operation::from_name("delete_all"), Operation::Other);
        assert_eq!(Operation::from_name(""), Operation::Other);
    }

    #[test]
    fn named_defaults() {
        let t = PolicyTable::default();
        let expected = [
            (Operation::Search, 30),
            (Operation::Transform, 10),
            (Operation::Embed, 60),
            (Operation::AiGenerate, 20),
            (Operation::HealthCheck, 100),
            (Operation::Other, 30),
        ];
        for (op, capacity) in expected {
            let p = t.get(op);
            assert_eq!(p.capacity_tokens(), capacity, "{}", op.as_str());
            assert_eq!(p.window(), Duration::from_secs(60), "{}", op.as_str());
        }
    }

    #[test]
    fn each_default_grants_exactly_its_capacity_at_once() {
        let hasher = KeyHasher::new([1; 16]);
        let policies = PolicyTable::default();
        let mut l = ArrayLimiter::<64>::new_array();
        let now = Instant::from_secs(3);
        for op in Operation::ALL {
            let capacity = policies.get(op).capacity_tokens() as usize;
            let granted = (0..capacity + 10)
                .filter(|_| {
                    l.acquire_op(now, &hasher, &policies, op, b"client", 1)
                        .unwrap()
                        .is_granted()
                })
                .count();
            assert_eq!(granted, capacity, "{}", op.as_str());
        }
        // One bucket per operation for the same client.
        assert_eq!(l.len(), Operation::ALL.len());
    }

    #[test]
    fn unknown_operations_share_one_bucket_per_client() {
        let hasher = KeyHasher::new([1; 16]);
        let a = Operation::from_name("foo").key(&hasher, b"c1");
        let b = Operation::from_name("bar").key(&hasher, b"c1");
        assert_eq!(a, b);
        assert_ne!(a, Operation::Other.key(&hasher, b"c2"));
        assert_ne!(a, Operation::Search.key(&hasher, b"c1"));
    }

    #[test]
    fn set_changes_one_operation_for_existing_clients() {
        let hasher = KeyHasher::new([1; 16]);
        let mut policies = PolicyTable::default();
        let mut l = ArrayLimiter::<16>::new_array();
        let now = Instant::from_secs(3);
        let search = |l: &mut ArrayLimiter<16>, p: &PolicyTable| {
            l.acquire_op(now, &hasher, p, Operation::Search, b"c", 1)
                .unwrap()
        };
        for _ in 0..5 {
            assert!(search(&mut l, &policies).is_granted());
        }
        policies.set(
            Operation::Search,
            LimitPolicy::new(3, Duration::from_secs(60)).unwrap(),
        );
        // 5 of 30 used (a sixth of the bucket): 2.5 of 3 left, so 2 whole tokens.
        assert!(search(&mut l, &policies).is_granted());
        assert!(search(&mut l, &policies).is_granted());
        assert!(!search(&mut l, &policies).is_granted());
        assert_eq!(
            *policies.get(Operation::Embed),
            Operation::Embed.default_policy()
        );
    }
}
