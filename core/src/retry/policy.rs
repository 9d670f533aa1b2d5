//! [`RetryPolicy`]: how many attempts a call gets, how long to wait between them, and when to
//! give up instead.

use super::budget::RetryBudget;
use crate::time::{Duration, Instant};
use core::fmt;

/// How a delay is spread to keep clients that failed together from retrying together.
///
/// The host passes a uniformly random `u64` to every decision; the core never draws one.
/// A random value is mapped to the range by a multiply-shift (`random × span / 2⁶⁴`), so
/// `random = 0` gives the bottom of the range and `random = u64::MAX` the top, and no value
/// ever gives more than the unjittered delay (which is itself at most `max_delay`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Jitter {
    /// The exact exponential delay `d`.
    None,
    /// "Equal jitter": uniform in `[d/2, d]`. The named policies use it: it spreads a cohort
    /// of failed clients over half the delay while keeping at least half of the backoff, so
    /// each client still backs off from an overloaded server (full jitter may retry at once).
    Equal,
    /// "Full jitter": uniform in `[0, d]`; the widest spread, at the price of some immediate
    /// retries.
    Full,
}

/// A retry schedule: attempts, exponential delays, cap and jitter.
///
/// The delay before attempt `n + 1`, after `n` failed attempts, is
/// `min(base_delay × multiplierⁿ⁻¹, max_delay)`, computed in integer microseconds without
/// overflow, then jittered downwards (see [`Jitter`]). The fields are public for
/// configuration and deserialisation; run [`RetryPolicy::validate`] on a policy built by hand.
/// An invalid policy never panics: it just decides oddly (zero attempts always give up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RetryPolicy {
    /// Attempts in total, counting the first try: 3 means at most 2 retries. At least 1.
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub base_delay: Duration,
    /// Cap on every delay, jittered or not. At least `base_delay`.
    pub max_delay: Duration,
    /// Growth factor of the delay per failed attempt (an integer, at least 1; 1 is constant).
    pub multiplier: u32,
    /// How the delay is spread.
    pub jitter: Jitter,
}

/// The answer of [`RetryPolicy::next`]: when to try again, or why not to.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RetryDecision {
    /// Make the next attempt at this instant.
    RetryAt(Instant),
    /// Do not retry; report the last failure.
    GiveUp(GiveUpReason),
}

/// Why a retry is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum GiveUpReason {
    /// `attempts` attempts were made, which is the policy's `max_attempts`.
    AttemptsExhausted {
        /// Attempts made, the first try included.
        attempts: u32,
    },
    /// The circuit breaker will still be open at the retry time; it stays open until `until`
    /// ([`Instant::MAX`] when forced open).
    BreakerOpen {
        /// When the breaker half-opens.
        until: Instant,
    },
    /// The retry budget is spent; it would allow a retry at `retry_at` if nothing else
    /// happened ([`Instant::MAX`]: never without new requests).
    BudgetExhausted {
        /// When the budget would next allow a retry.
        retry_at: Instant,
    },
}

impl fmt::Display for GiveUpReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveUpReason::AttemptsExhausted { attempts } => {
                write!(f, "gave up after {attempts} attempts")
            }
            GiveUpReason::BreakerOpen { until } => write!(f, "circuit breaker open until {until}"),
            GiveUpReason::BudgetExhausted { retry_at } => {
                write!(f, "retry budget exhausted until {retry_at}")
            }
        }
    }
}

impl core::error::Error for GiveUpReason {}

/// A [`RetryPolicy`] field is out of range; [`PolicyError::field`] names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PolicyError {
    /// `max_attempts` is zero: there would not even be a first try.
    ZeroMaxAttempts,
    /// `multiplier` is zero: delays would collapse to nothing after the first retry.
    ZeroMultiplier,
    /// `max_delay` is shorter than `base_delay`.
    MaxDelayBelowBase,
}

impl PolicyError {
    /// The name of the offending field.
    pub const fn field(self) -> &'static str {
        match self {
            PolicyError::ZeroMaxAttempts => "max_attempts",
            PolicyError::ZeroMultiplier => "multiplier",
            PolicyError::MaxDelayBelowBase => "max_delay",
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self {
            PolicyError::ZeroMaxAttempts => "must be at least 1 (it counts the first try)",
            PolicyError::ZeroMultiplier => "must be at least 1",
            PolicyError::MaxDelayBelowBase => "must not be shorter than base_delay",
        };
        write!(f, "retry policy: `{}` {why}", self.field())
    }
}

impl core::error::Error for PolicyError {}

/// `min(base × multiplier^exponent, max)` without overflow (shared with the breaker's
/// reset-timeout backoff).
pub(crate) const fn capped_backoff(
    base: Duration,
    multiplier: u32,
    exponent: u32,
    max: Duration,
) -> Duration {
    let Some(factor) = (multiplier as u64).checked_pow(exponent) else {
        return max;
    };
    match base.checked_mul(factor) {
        Some(d) => d.min_const(max),
        None => max,
    }
}

/// `random` mapped onto `[0, span]`: `0 → 0`, `u64::MAX → span`.
const fn scale(random: u64, span: u64) -> u64 {
    ((random as u128 * (span as u128 + 1)) >> 64) as u64
}

impl RetryPolicy {
    /// "default": 3 attempts, 0.5 s base, 5 s cap, ×2, equal jitter.
    pub const DEFAULT: RetryPolicy = RetryPolicy::named_const(3, 500, 5_000, 2);
    /// "expensive": 5 attempts, 1 s base, 10 s cap, ×2, equal jitter.
    pub const EXPENSIVE: RetryPolicy = RetryPolicy::named_const(5, 1_000, 10_000, 2);
    /// "quick": 2 attempts, 0.1 s base, 1 s cap, ×2, equal jitter.
    pub const QUICK: RetryPolicy = RetryPolicy::named_const(2, 100, 1_000, 2);
    /// "conservative": 3 attempts, 2 s base, 30 s cap, ×3, equal jitter.
    pub const CONSERVATIVE: RetryPolicy = RetryPolicy::named_const(3, 2_000, 30_000, 3);
    /// The kernel-bridge client: 2 retries (3 attempts), 100 ms base, ×2, equal jitter, capped
    /// at 1 s. The bridge talks to a local daemon, so a longer wait only hides an outage; the
    /// cap matters only if a host raises `max_attempts` (delays are then 100, 200, 400, 800 ms,
    /// 1 s …).
    pub const KERNEL_BRIDGE: RetryPolicy = RetryPolicy::named_const(3, 100, 1_000, 2);

    /// Every named policy with its name, as [`RetryPolicy::named`] looks them up.
    pub const NAMED: [(&'static str, RetryPolicy); 5] = [
        ("default", RetryPolicy::DEFAULT),
        ("expensive", RetryPolicy::EXPENSIVE),
        ("quick", RetryPolicy::QUICK),
        ("conservative", RetryPolicy::CONSERVATIVE),
        ("kernel_bridge", RetryPolicy::KERNEL_BRIDGE),
    ];

    const fn named_const(attempts: u32, base_ms: u64, max_ms: u64, mult: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: attempts,
            base_delay: Duration::from_millis(base_ms),
            max_delay: Duration::from_millis(max_ms),
            multiplier: mult,
            jitter: Jitter::Equal,
        }
    }

    /// The named policy `name` ("default", "expensive", "quick", "conservative",
    /// "kernel_bridge"), compared exactly; `None` for any other name.
    pub fn named(name: &str) -> Option<RetryPolicy> {
        RetryPolicy::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, policy)| policy)
    }

    /// The policy of a kernel-bridge client configured with the seed's `RETRY_ATTEMPTS`
    /// (`retries`, counted *after* the first try: `max_attempts = retries + 1`) and
    /// `RETRY_DELAY_MS` (`base_delay`); the rest is [`RetryPolicy::KERNEL_BRIDGE`]'s (×2, equal
    /// jitter, 1 s cap), the cap raised to the base when the base is longer.
    pub const fn kernel_bridge(
        retries: u32,
        base_delay: Duration,
    ) -> Result<RetryPolicy, PolicyError> {
        let bridge = RetryPolicy::KERNEL_BRIDGE;
        let cap = if base_delay.as_micros() > bridge.max_delay.as_micros() {
            base_delay
        } else {
            bridge.max_delay
        };
        RetryPolicy::new(
            retries.saturating_add(1),
            base_delay,
            cap,
            bridge.multiplier,
            bridge.jitter,
        )
    }

    /// A validated policy.
    pub const fn new(
        max_attempts: u32,
        base_delay: Duration,
        max_delay: Duration,
        multiplier: u32,
        jitter: Jitter,
    ) -> Result<RetryPolicy, PolicyError> {
        let policy = RetryPolicy {
            max_attempts,
            base_delay,
            max_delay,
            multiplier,
            jitter,
        };
        match policy.validate() {
            Ok(()) => Ok(policy),
            Err(e) => Err(e),
        }
    }

    /// Checks every field; the error names the first one out of range.
    pub const fn validate(&self) -> Result<(), PolicyError> {
        if self.max_attempts == 0 {
            Err(PolicyError::ZeroMaxAttempts)
        } else if self.multiplier == 0 {
            Err(PolicyError::ZeroMultiplier)
        } else if self.max_delay.as_micros() < self.base_delay.as_micros() {
            Err(PolicyError::MaxDelayBelowBase)
        } else {
            Ok(())
        }
    }

    /// This policy with another jitter (e.g. [`Jitter::None`] for a fixed schedule).
    pub const fn with_jitter(self, jitter: Jitter) -> RetryPolicy {
        RetryPolicy { jitter, ..self }
    }

    /// The unjittered delay after `failed_attempts` failures:
    /// `min(base × multiplier^(failed_attempts − 1), max_delay)`; zero before any failure.
    pub const fn backoff(&self, failed_attempts: u32) -> Duration {
        if failed_attempts == 0 {
            return Duration::ZERO;
        }
        let exponent = failed_attempts - 1;
        capped_backoff(self.base_delay, self.multiplier, exponent, self.max_delay)
    }

    /// The jittered delay after `failed_attempts` failures, using the host's `random`.
    /// Never more than [`RetryPolicy::backoff`], hence never more than `max_delay`.
    pub const fn delay(&self, failed_attempts: u32, random: u64) -> Duration {
        let d = self.backoff(failed_attempts).as_micros();
        let micros = match self.jitter {
            Jitter::None => d,
            Jitter::Equal => d / 2 + scale(random, d - d / 2),
            Jitter::Full => scale(random, d),
        };
        Duration::from_micros(micros)
    }

    /// Decides what follows `attempts_made` failed attempts (the first try included) at `now`.
    ///
    /// - `attempts_made ≥ max_attempts` → [`GiveUpReason::AttemptsExhausted`].
    /// - Otherwise the retry time is `now + delay(attempts_made, random)`. If the host's
    ///   breaker is open and will still be open at that time (`breaker_open_until` later than
    ///   the retry time), the answer is [`GiveUpReason::BreakerOpen`]: an open breaker is never
    ///   retried into, and the policy gives up rather than waiting for the breaker, because
    ///   waiting would hold the caller for up to the breaker's reset timeout (far beyond any
    ///   policy's `max_delay`) and would gather every waiting caller at the one instant when
    ///   the half-open breaker admits a single probe. A breaker that half-opens by the retry
    ///   time does not stop the retry.
    /// - `attempts_made = 0` (nothing has failed yet) answers `RetryAt(now)`.
    pub const fn next(
        &self,
        now: Instant,
        attempts_made: u32,
        random: u64,
        breaker_open_until: Option<Instant>,
    ) -> RetryDecision {
        if attempts_made >= self.max_attempts {
            let attempts = attempts_made;
            return RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted { attempts });
        }
        let at = now.saturating_add(self.delay(attempts_made, random));
        match breaker_open_until {
            Some(until) if until.as_micros() > at.as_micros() => {
                RetryDecision::GiveUp(GiveUpReason::BreakerOpen { until })
            }
            _ => RetryDecision::RetryAt(at),
        }
    }

    /// [`RetryPolicy::next`], then, if it says retry, a withdrawal from `budget` at `now`
    /// ([`GiveUpReason::BudgetExhausted`] when the budget refuses). The budget is charged only
    /// for retries that the policy and the breaker allow, and never for the first try.
    pub fn next_with_budget<const N: usize>(
        &self,
        now: Instant,
        attempts_made: u32,
        random: u64,
        breaker_open_until: Option<Instant>,
        budget: &mut RetryBudget<N>,
    ) -> RetryDecision {
        let decision = self.next(now, attempts_made, random, breaker_open_until);
        match decision {
            RetryDecision::RetryAt(_) if attempts_made > 0 => match budget.try_retry(now) {
                Ok(()) => decision,
                Err(e) => {
                    let retry_at = e.retry_at;
                    RetryDecision::GiveUp(GiveUpReason::BudgetExhausted { retry_at })
                }
            },
            _ => decision,
        }
    }
}

impl Default for RetryPolicy {
    /// [`RetryPolicy::DEFAULT`].
    fn default() -> RetryPolicy {
        RetryPolicy::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::budget::BudgetConfig;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn fixed(p: RetryPolicy) -> RetryPolicy {
        p.with_jitter(Jitter::None)
    }

    #[test]
    fn the_bridge_counts_retries_after_the_first_try() {
        let p = RetryPolicy::kernel_bridge(2, MS(100)).unwrap();
        assert_eq!(p, RetryPolicy::KERNEL_BRIDGE);
        let p = RetryPolicy::kernel_bridge(0, MS(5_000)).unwrap();
        assert_eq!(
            (p.max_attempts, p.base_delay, p.max_delay),
            (1, MS(5_000), MS(5_000))
        );
        assert_eq!(
            RetryPolicy::kernel_bridge(u32::MAX, MS(1))
                .unwrap()
                .max_attempts,
            u32::MAX
        );
    }

    /// The delays a policy schedules before its retries (no jitter), from [`RetryPolicy::next`].
    fn schedule(p: RetryPolicy) -> heapless::Vec<Duration, 8> {
        let mut out = heapless::Vec::new();
        let now = Instant::from_secs(1);
        for n in 1.. {
            match fixed(p).next(now, n, 0, None) {
                RetryDecision::RetryAt(at) => out.push(at.saturating_duration_since(now)).unwrap(),
                RetryDecision::GiveUp(r) => {
                    assert_eq!(r, GiveUpReason::AttemptsExhausted { attempts: n });
                    assert_eq!(n, p.max_attempts);
                    return out;
                }
            }
        }
        unreachable!()
    }

    fn backoffs(p: RetryPolicy, n: u32) -> heapless::Vec<Duration, 8> {
        (1..=n).map(|k| p.backoff(k)).collect()
    }

    #[test]
    fn named_policy_schedules_are_exact() {
        assert_eq!(schedule(RetryPolicy::DEFAULT), [MS(500), MS(1_000)]);
        let expensive = [MS(1_000), MS(2_000), MS(4_000), MS(8_000)];
        assert_eq!(schedule(RetryPolicy::EXPENSIVE), expensive);
        assert_eq!(schedule(RetryPolicy::QUICK), [MS(100)]);
        assert_eq!(schedule(RetryPolicy::CONSERVATIVE), [MS(2_000), MS(6_000)]);
        assert_eq!(schedule(RetryPolicy::KERNEL_BRIDGE), [MS(100), MS(200)]);
    }

    #[test]
    fn named_policy_delays_grow_then_cap() {
        let d = [500, 1_000, 2_000, 4_000, 5_000, 5_000].map(MS);
        assert_eq!(backoffs(RetryPolicy::DEFAULT, 6), d);
        let e = [1_000, 2_000, 4_000, 8_000, 10_000, 10_000].map(MS);
        assert_eq!(backoffs(RetryPolicy::EXPENSIVE, 6), e);
        let q = [100, 200, 400, 800, 1_000, 1_000].map(MS);
        assert_eq!(backoffs(RetryPolicy::QUICK, 6), q);
        let c = [2_000, 6_000, 18_000, 30_000, 30_000].map(MS);
        assert_eq!(backoffs(RetryPolicy::CONSERVATIVE, 5), c);
        let k = [100, 200, 400, 800, 1_000, 1_000].map(MS);
        assert_eq!(backoffs(RetryPolicy::KERNEL_BRIDGE, 6), k);
        assert_eq!(RetryPolicy::DEFAULT.backoff(0), Duration::ZERO);
    }

    #[test]
    fn equal_jitter_spans_half_to_full_delay() {
        for (_, p) in RetryPolicy::NAMED {
            assert_eq!(p.jitter, Jitter::Equal);
            for n in 1..=8 {
                let d = p.backoff(n);
                let half = Duration::from_micros(d.as_micros() / 2);
                assert_eq!(p.delay(n, 0), half, "{p:?} n={n} min");
                assert_eq!(p.delay(n, u64::MAX), d, "{p:?} n={n} max");
                let mid = p.delay(n, u64::MAX / 2);
                assert!(half < mid && mid < d && d <= p.max_delay);
            }
        }
    }

    #[test]
    fn full_and_no_jitter_bounds() {
        let full = RetryPolicy::CONSERVATIVE.with_jitter(Jitter::Full);
        assert_eq!(full.delay(2, 0), Duration::ZERO);
        assert_eq!(full.delay(2, u64::MAX), MS(6_000));
        let none = fixed(RetryPolicy::CONSERVATIVE);
        assert_eq!(none.delay(2, 0), MS(6_000));
        assert_eq!(none.delay(2, u64::MAX), MS(6_000));
    }

    #[test]
    fn huge_attempt_numbers_do_not_overflow() {
        for p in [RetryPolicy::DEFAULT, RetryPolicy::CONSERVATIVE] {
            assert_eq!(p.backoff(64), p.max_delay);
            assert_eq!(p.backoff(u32::MAX), p.max_delay);
            assert_eq!(p.delay(u32::MAX, u64::MAX), p.max_delay);
        }
        let extreme = RetryPolicy {
            max_attempts: u32::MAX,
            base_delay: Duration::MAX,
            max_delay: Duration::MAX,
            multiplier: u32::MAX,
            jitter: Jitter::Equal,
        };
        assert_eq!(extreme.delay(u32::MAX - 1, u64::MAX), Duration::MAX);
        assert_eq!(extreme.delay(u32::MAX - 1, 0).as_micros(), u64::MAX / 2);
        let far = Instant::MAX.saturating_sub(MS(1));
        assert_eq!(
            extreme.next(far, 7, u64::MAX, None),
            RetryDecision::RetryAt(Instant::MAX)
        );
        let full = extreme.with_jitter(Jitter::Full);
        assert_eq!(full.delay(3, u64::MAX), Duration::MAX);
    }

    #[test]
    fn max_attempts_counts_the_first_try() {
        let p = fixed(RetryPolicy::DEFAULT);
        let now = Instant::from_secs(10);
        assert_eq!(p.next(now, 0, 0, None), RetryDecision::RetryAt(now));
        assert_eq!(
            p.next(now, 1, 0, None),
            RetryDecision::RetryAt(now + MS(500))
        );
        assert_eq!(
            p.next(now, 2, 0, None),
            RetryDecision::RetryAt(now + MS(1_000))
        );
        let exhausted = GiveUpReason::AttemptsExhausted { attempts: 3 };
        assert_eq!(p.next(now, 3, 0, None), RetryDecision::GiveUp(exhausted));
        let more = GiveUpReason::AttemptsExhausted { attempts: 9 };
        assert_eq!(p.next(now, 9, 0, None), RetryDecision::GiveUp(more));
    }

    #[test]
    fn an_open_breaker_is_never_retried_into() {
        let p = fixed(RetryPolicy::DEFAULT);
        let now = Instant::from_secs(10);
        let retry = now + MS(500);
        let later = retry + Duration::from_micros(1);
        let open = GiveUpReason::BreakerOpen { until: later };
        assert_eq!(p.next(now, 1, 0, Some(later)), RetryDecision::GiveUp(open));
        let forced = GiveUpReason::BreakerOpen {
            until: Instant::MAX,
        };
        assert_eq!(
            p.next(now, 1, 0, Some(Instant::MAX)),
            RetryDecision::GiveUp(forced)
        );
        // Half-open by the retry time, or already closed: retry.
        assert_eq!(
            p.next(now, 1, 0, Some(retry)),
            RetryDecision::RetryAt(retry)
        );
        assert_eq!(p.next(now, 1, 0, Some(now)), RetryDecision::RetryAt(retry));
        // Attempts are checked first.
        let exhausted = GiveUpReason::AttemptsExhausted { attempts: 3 };
        assert_eq!(
            p.next(now, 3, 0, Some(later)),
            RetryDecision::GiveUp(exhausted)
        );
    }

    #[test]
    fn the_budget_is_charged_only_for_retries_that_happen() {
        let config = BudgetConfig {
            window: Duration::from_secs(10),
            ratio_permille: 0,
            min_retries_per_sec: 0,
        };
        let mut budget = RetryBudget::<10>::new(config).unwrap();
        let p = fixed(RetryPolicy::DEFAULT);
        let now = Instant::from_secs(3);
        let spent = GiveUpReason::BudgetExhausted {
            retry_at: Instant::MAX,
        };
        assert_eq!(
            p.next_with_budget(now, 1, 0, None, &mut budget),
            RetryDecision::GiveUp(spent)
        );
        // The first try is not a retry.
        let first = p.next_with_budget(now, 0, 0, None, &mut budget);
        assert_eq!(first, RetryDecision::RetryAt(now));

        let mut budget = RetryBudget::<10>::default();
        budget.record_request(now);
        let before = budget.available(now);
        let open = Some(Instant::MAX);
        let d = p.next_with_budget(now, 1, 0, open, &mut budget);
        assert!(matches!(
            d,
            RetryDecision::GiveUp(GiveUpReason::BreakerOpen { .. })
        ));
        let d = p.next_with_budget(now, 5, 0, None, &mut budget);
        assert!(matches!(
            d,
            RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted { .. })
        ));
        assert_eq!(budget.available(now), before);
        let d = p.next_with_budget(now, 1, 0, None, &mut budget);
        assert_eq!(d, RetryDecision::RetryAt(now + MS(500)));
        assert_eq!(budget.available(now), before - 1);
    }

    #[test]
    fn validation_names_the_field() {
        let d = Duration::from_secs(1);
        let ok = RetryPolicy::new(1, d, d, 1, Jitter::None);
        assert!(ok.is_ok());
        let e = RetryPolicy::new(0, d, d, 2, Jitter::None).unwrap_err();
        assert_eq!(
            (e, e.field()),
            (PolicyError::ZeroMaxAttempts, "max_attempts")
        );
        let e = RetryPolicy::new(3, d, d, 0, Jitter::None).unwrap_err();
        assert_eq!((e, e.field()), (PolicyError::ZeroMultiplier, "multiplier"));
        let e = RetryPolicy::new(3, d, MS(999), 2, Jitter::None).unwrap_err();
        assert_eq!(
            (e, e.field()),
            (PolicyError::MaxDelayBelowBase, "max_delay")
        );
        for (_, p) in RetryPolicy::NAMED {
            assert_eq!(p.validate(), Ok(()));
        }
        assert_eq!(RetryPolicy::default(), RetryPolicy::DEFAULT);
    }

    #[test]
    fn named_lookup_is_exact() {
        assert_eq!(RetryPolicy::named("quick"), Some(RetryPolicy::QUICK));
        assert_eq!(RetryPolicy::named("default"), Some(RetryPolicy::DEFAULT));
        assert_eq!(
            RetryPolicy::named("expensive"),
            Some(RetryPolicy::EXPENSIVE)
        );
        let c = RetryPolicy::named("conservative");
        assert_eq!(c, Some(RetryPolicy::CONSERVATIVE));
        let k = RetryPolicy::named("kernel_bridge");
        assert_eq!(k, Some(RetryPolicy::KERNEL_BRIDGE));
        assert_eq!(RetryPolicy::named("Quick"), None);
        assert_eq!(RetryPolicy::named("quick "), None);
    }

    #[test]
    fn messages_name_what_happened() {
        use core::fmt::Write;
        let mut s: heapless::String<160> = heapless::String::new();
        let r = GiveUpReason::AttemptsExhausted { attempts: 3 };
        write!(s, "{r}|{}", PolicyError::ZeroMultiplier).unwrap();
        assert_eq!(
            s.as_str(),
            "gave up after 3 attempts|retry policy: `multiplier` must be at least 1"
        );
        s.clear();
        let until = Instant::from_millis(5);
        write!(s, "{}", GiveUpReason::BreakerOpen { until }).unwrap();
        assert_eq!(s.as_str(), "circuit breaker open until T+5ms");
    }
}
