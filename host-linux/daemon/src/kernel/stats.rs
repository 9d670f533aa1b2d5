//! [`KernelStats`]: the kernel's counters and gauges, for Prometheus.

/// A snapshot of the kernel's counters and gauges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelStats {
    /// `RATE_LIMITED` answers per operation of the policy in force: the built-in ones
    /// (`search`, …, `other`), then the custom ones in name order (at most 256 in all; names
    /// of `A-Z a-z 0-9 _ . : -` only). A custom operation counts from when it was defined.
    pub limiter_denials: Vec<(String, u64)>,
    /// Every breaker's name and state (`closed`, `open`, `half_open`, `forced_open`,
    /// `disabled`).
    pub breakers: Vec<(String, &'static str)>,
    /// Limiter buckets held (refilled ones not yet swept included).
    pub limiter_keys: usize,
    /// Keys holding lease slots.
    pub lease_keys: usize,
    /// Idempotency records held.
    pub idempotency_keys: usize,
    /// Registered health checks.
    pub health_checks: usize,
    /// Breaker permits handed out and not yet recorded.
    pub breaker_permits: usize,
}
