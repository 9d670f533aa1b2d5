//! What a [`Kernel`](super::Kernel) is built from: secret seeds, table capacities, and the
//! fixed bounds of the protocol (documented in `docs/PROTOCOL.md`).

/// Secret seeds, 16 random bytes each, drawn by the host at every start (never persisted).
#[derive(Clone, Copy)]
pub struct KernelSeeds {
    /// Keys the SipHash of client keys (limiter, leases, idempotency), so clients cannot aim
    /// keys at one table slot.
    pub key_hasher: [u8; 16],
    /// Keys the lease-id minter (and, derived from it, the breaker-permit minter).
    pub lease_ids: [u8; 16],
    /// Keys the idempotency-token minter.
    pub idempotency_tokens: [u8; 16],
}

impl std::fmt::Debug for KernelSeeds {
    /// Hides the seeds: logging the kernel's inputs must not leak them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KernelSeeds { .. }")
    }
}

/// Capacities of the kernel's tables. Slot counts are rounded up to a multiple of 8 (at
/// least 8). Keep expected live keys under about 70 % of the slots (docs/CORE.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelCapacity {
    /// Limiter buckets, one per (operation, client key).
    pub limiter_slots: usize,
    /// Keys holding leases.
    pub lease_slots: usize,
    /// Idempotency records.
    pub idempotency_slots: usize,
    /// Breaker permits handed out and not yet recorded.
    pub held_permits: usize,
}

impl KernelCapacity {
    /// Production sizes that keep an idle daemon under 10 MB resident: 147,456 limiter slots
    /// (100k live keys at 68 %, 2.3 MiB), 4,096 lease keys (16 leases each, 1.1 MiB), 16,384
    /// idempotency records and 16,384 outstanding breaker permits. The daemon's
    /// `[capacity]` section raises them for larger deployments.
    pub const DEFAULT: KernelCapacity = KernelCapacity {
        limiter_slots: 147_456,
        lease_slots: 4_096,
        idempotency_slots: 16_384,
        held_permits: 16_384,
    };
}

impl Default for KernelCapacity {
    fn default() -> KernelCapacity {
        KernelCapacity::DEFAULT
    }
}

/// Longest response `IDEMPOTENCY_COMPLETE` stores with a key (bytes of UTF-8; the core
/// service's bound).
pub use heidi_core::service::IDEMPOTENCY_RESPONSE_MAX_BYTES;
/// Longest client key (`params.key`), in bytes; the core service's bound, shared by leases
/// and idempotency keys.
pub use heidi_core::service::KEY_MAX_BYTES;
/// Longest operation name (`params.operation`), in bytes (the core service's bound).
pub use heidi_core::service::OPERATION_MAX_BYTES;
/// Lease slots per key: the largest `leases.limit_per_key`.
pub const LEASE_SLOTS_PER_KEY: usize = heidi_core::policy::LEASE_LIMIT_MAX as usize;
/// Largest `health.failure_threshold` (a policy change replays failures up to it).
pub use heidi_core::policy::HEALTH_FAILURE_THRESHOLD_MAX;
/// Most checks `readiness.checks` may name.
pub use heidi_core::policy::READINESS_CHECKS_MAX;
/// Largest `max_attempts` of a retry policy, and largest `multiplier`.
pub use heidi_core::policy::RETRY_ATTEMPTS_MAX;
/// Most named retry policies in a policy document (built-in ones included).
pub use heidi_core::policy::RETRY_POLICIES_MAX;
/// Most entries of `breakers` in a policy document (`default` included; the core holds them).
pub use heidi_core::service::BREAKER_POLICIES_MAX;
/// Most circuit breakers (named by clients or the policy); breakers are never removed (the
/// core service's bound).
pub use heidi_core::service::BREAKERS_MAX;
/// Longest duration any policy field accepts: 30 days, in ms (the core's bound of
/// `duration_ms`).
pub use heidi_core::service::DURATION_MAX_MS;
/// Most health checks; checks are never removed (the core service's bound).
pub use heidi_core::service::HEALTH_CHECKS_MAX;
/// A breaker permit not recorded within this long is abandoned (it counts for nothing; the
/// core service's bound).
pub use heidi_core::service::PERMIT_TTL_MS;

/// `n` rounded up to a non-zero multiple of the table group (8).
pub(crate) fn slots(n: usize) -> usize {
    n.max(1).div_ceil(heidi_core::table::GROUP) * heidi_core::table::GROUP
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_counts_round_up_to_groups() {
        assert_eq!(slots(0), 8);
        assert_eq!(slots(8), 8);
        assert_eq!(slots(9), 16);
        assert_eq!(slots(KernelCapacity::DEFAULT.limiter_slots), 147_456);
    }

    #[test]
    fn seeds_are_not_printed() {
        let s = KernelSeeds {
            key_hasher: [7; 16],
            lease_ids: [7; 16],
            idempotency_tokens: [7; 16],
        };
        assert_eq!(format!("{s:?}"), "KernelSeeds { .. }");
    }
}
