//! The `breaker` scenario's parameters and their checks: the simulator's own caps here,
//! every other rule heidi-core's.

use crate::error::{SimError, check_range};
use crate::scenario::{check_rate, narrow};
use crate::trace::check_timeline;
use crate::upstream::Upstream;
use heidi_core::Duration;
use heidi_core::breaker::{Breaker, BreakerConfig, BreakerConfigError, RateTrip, RateWindow};
use heidi_core::retry::{BudgetConfig, Jitter, PolicyError, RetryBudget, RetryPolicy};

/// Most outage windows.
pub const MAX_OUTAGES: usize = 8;
/// Most attempts per request (the simulator's cap: each attempt is work per request).
pub const MAX_ATTEMPTS: u32 = 10;
/// Longest `base_delay_ms`, `max_delay_ms`, `budget_window_ms` and `reset_timeout_ms`
/// (one hour).
pub const MAX_DELAY_MS: u64 = 3_600_000;
/// Largest `multiplier`.
pub const MAX_MULTIPLIER: u32 = 1_000;
/// Largest `budget_ratio_permille` (1000 retries per request).
pub const MAX_BUDGET_RATIO_PERMILLE: u32 = 1_000_000;
/// Largest `budget_min_per_sec`.
pub const MAX_BUDGET_MIN_PER_SEC: u32 = 1_000_000;

/// A window of time in which the upstream fails at another rate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outage {
    /// Start, ms (inclusive).
    pub start_ms: u64,
    /// End, ms (exclusive).
    pub end_ms: u64,
    /// Failure probability inside the window, permille.
    pub fail_permille: u32,
}

/// The scenario's parameters; see the module docs for the defaults' story.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Simulated time, ms.
    pub duration_ms: u64,
    /// Tick width, ms.
    pub tick_ms: u64,
    /// Mean request arrivals per second (Poisson).
    pub rate_per_sec: u32,
    /// Upstream failure probability outside outages, permille.
    pub fail_permille: u32,
    /// Upstream base latency, ms.
    pub latency_ms: u64,
    /// Upstream latency jitter, ms.
    pub latency_jitter_ms: u64,
    /// Outage windows (at most [`MAX_OUTAGES`], non-overlapping).
    pub outages: Vec<Outage>,
    /// Whether retries draw on a retry budget.
    pub budget: bool,
    /// Retries allowed per 1000 requests in the budget's window.
    pub budget_ratio_permille: u32,
    /// Retries allowed per second regardless of traffic.
    pub budget_min_per_sec: u32,
    /// The budget's window, ms.
    pub budget_window_ms: u64,
    /// Attempts per request, the first included (at most [`MAX_ATTEMPTS`]; core requires 1).
    pub max_attempts: u32,
    /// Delay before the first retry, ms.
    pub base_delay_ms: u64,
    /// Cap on the delay, ms.
    pub max_delay_ms: u64,
    /// Growth of the delay per failed attempt.
    pub multiplier: u32,
    /// Trip after this many consecutive failures (0: rule off).
    pub failure_threshold: u32,
    /// Trip when failures reach this permille of the last `rate_window_calls` calls (0: off).
    pub rate_threshold_permille: u32,
    /// Calls in the failure-rate window (core: 1..=128).
    pub rate_window_calls: u32,
    /// Calls needed in the window before the rate rule applies.
    pub rate_min_calls: u32,
    /// How long the breaker stays open, ms.
    pub reset_timeout_ms: u64,
    /// Probes admitted while half-open (core: 1..=8).
    pub half_open_max_probes: u32,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            duration_ms: 30_000,
            tick_ms: 250,
            rate_per_sec: 200,
            fail_permille: 10,
            latency_ms: 20,
            latency_jitter_ms: 10,
            outages: vec![
                Outage {
                    start_ms: 5_000,
                    end_ms: 15_000,
                    fail_permille: 600,
                },
                Outage {
                    start_ms: 20_000,
                    end_ms: 25_000,
                    fail_permille: 1_000,
                },
            ],
            budget: true,
            budget_ratio_permille: 200,
            budget_min_per_sec: 10,
            budget_window_ms: 10_000,
            max_attempts: 4,
            base_delay_ms: 50,
            max_delay_ms: 1_000,
            multiplier: 2,
            failure_threshold: 20,
            rate_threshold_permille: 800,
            rate_window_calls: 100,
            rate_min_calls: 20,
            reset_timeout_ms: 2_000,
            half_open_max_probes: 1,
        }
    }
}

/// Core's parts, built from valid parameters.
pub(super) struct Setup {
    pub(super) upstream: Upstream,
    pub(super) policy: RetryPolicy,
    pub(super) budget: RetryBudget,
    pub(super) breaker: Breaker,
}

/// Checks the simulator's own caps and the narrowing casts, then builds core's retry
/// policy, budget and breaker, whose validation errors reach the user naming the parameter.
pub(super) fn check(p: &Params) -> Result<Setup, SimError> {
    check_timeline(p.duration_ms, p.tick_ms)?;
    check_rate("rate_per_sec", p.rate_per_sec)?;
    check_outages(p)?;
    check_range(
        "max_attempts",
        p.max_attempts.into(),
        0,
        MAX_ATTEMPTS.into(),
    )?;
    check_range("base_delay_ms", p.base_delay_ms, 0, MAX_DELAY_MS)?;
    check_range("max_delay_ms", p.max_delay_ms, 0, MAX_DELAY_MS)?;
    check_range("multiplier", p.multiplier.into(), 0, MAX_MULTIPLIER.into())?;
    let policy = RetryPolicy {
        max_attempts: p.max_attempts,
        base_delay: Duration::from_millis(p.base_delay_ms),
        max_delay: Duration::from_millis(p.max_delay_ms),
        multiplier: p.multiplier,
        jitter: Jitter::Equal,
    };
    policy.validate().map_err(|e| {
        let field = match e {
            PolicyError::ZeroMaxAttempts => "max_attempts",
            PolicyError::ZeroMultiplier => "multiplier",
            PolicyError::MaxDelayBelowBase => "max_delay_ms",
        };
        SimError::param(field, e)
    })?;
    check_range(
        "budget_ratio_permille",
        p.budget_ratio_permille.into(),
        0,
        MAX_BUDGET_RATIO_PERMILLE.into(),
    )?;
    check_range(
        "budget_min_per_sec",
        p.budget_min_per_sec.into(),
        0,
        MAX_BUDGET_MIN_PER_SEC.into(),
    )?;
    check_range("budget_window_ms", p.budget_window_ms, 0, MAX_DELAY_MS)?;
    let budget = RetryBudget::new(BudgetConfig {
        window: Duration::from_millis(p.budget_window_ms),
        ratio_permille: p.budget_ratio_permille,
        min_retries_per_sec: p.budget_min_per_sec,
    })
    .map_err(|e| SimError::param("budget_window_ms", e))?;
    Ok(Setup {
        upstream: Upstream::new(p.fail_permille, p.latency_ms, p.latency_jitter_ms)?,
        policy,
        budget,
        breaker: breaker(p)?,
    })
}

/// Outages: at most [`MAX_OUTAGES`], in order, not overlapping, inside the run.
fn check_outages(p: &Params) -> Result<(), SimError> {
    check_range(
        "outages (count)",
        p.outages.len() as u64,
        0,
        MAX_OUTAGES as u64,
    )?;
    let mut last_end = 0;
    for (i, o) in p.outages.iter().enumerate() {
        let field = |name: &str| format!("outages[{i}].{name}");
        check_range(&field("start_ms"), o.start_ms, last_end, p.duration_ms)?;
        check_range(&field("end_ms"), o.end_ms, o.start_ms, p.duration_ms)?;
        check_range(&field("fail_permille"), o.fail_permille.into(), 0, 1_000)?;
        last_end = o.end_ms;
    }
    Ok(())
}

fn breaker(p: &Params) -> Result<Breaker, SimError> {
    check_range("reset_timeout_ms", p.reset_timeout_ms, 0, MAX_DELAY_MS)?;
    let rate = match p.rate_threshold_permille {
        0 => None,
        permille => Some(RateTrip {
            threshold_permille: narrow("rate_threshold_permille", permille, u16::MAX.into())?,
            min_calls: p.rate_min_calls,
            window: RateWindow::LastCalls(narrow(
                "rate_window_calls",
                p.rate_window_calls,
                u8::MAX.into(),
            )?),
        }),
    };
    let config = BreakerConfig {
        failure_threshold: p.failure_threshold,
        rate,
        reset_timeout: Duration::from_millis(p.reset_timeout_ms),
        reset_timeout_max: Duration::from_millis(p.reset_timeout_ms),
        half_open_max_probes: narrow("half_open_max_probes", p.half_open_max_probes, 255)?,
        ..BreakerConfig::DEFAULT
    };
    Breaker::new(config).map_err(|e| {
        use BreakerConfigError as E;
        let field = match e {
            E::NoTripRule => "failure_threshold",
            E::ZeroResetTimeout => "reset_timeout_ms",
            E::ProbesOutOfRange => "half_open_max_probes",
            E::RateThresholdOutOfRange => "rate_threshold_permille",
            E::RateMinCallsUnreachable => "rate_min_calls",
            E::RateWindowOutOfRange => "rate_window_calls",
            // Fields the simulator sets itself.
            other => return SimError::internal(format_args!("breaker config: {other}")),
        };
        SimError::param(field, e)
    })
}

crate::json_object!(Outage { start_ms, end_ms, fail_permille } required { start_ms, end_ms, fail_permille });
crate::json_object!(Params {
    duration_ms,
    tick_ms,
    rate_per_sec,
    fail_permille,
    latency_ms,
    latency_jitter_ms,
    outages,
    budget,
    budget_ratio_permille,
    budget_min_per_sec,
    budget_window_ms,
    max_attempts,
    base_delay_ms,
    max_delay_ms,
    multiplier,
    failure_threshold,
    rate_threshold_permille,
    rate_window_calls,
    rate_min_calls,
    reset_timeout_ms,
    half_open_max_probes
});
