//! [`KernelStats`]: the kernel's counters and gauges, for Prometheus.

/// A snapshot of the kernel's counters and gauges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelStats {
    /// `RATE_LIMITED` answers since start, per operation (`search`, …, `other`).
    pub limiter_denials: Vec<(&'static str, u64)>,
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
