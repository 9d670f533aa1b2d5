//! The token bucket: a [`LimitPolicy`] and its integer GCRA state, [`Tat`].
//!
//! # The arithmetic
//!
//! A policy of `capacity_tokens` per `window` emits one token every
//! `T = ceil(window / capacity_tokens)` microseconds and holds at most `capacity_tokens`
//! (the burst). Rounding `T` up means the bucket never refills faster than configured: it
//! behaves exactly like an ideal token bucket whose window is `capacity_tokens × T`, which is
//! the configured window, or longer by less than `capacity_tokens` µs (60 per 60 s is exact).
//!
//! The state is one instant, the *theoretical arrival time* (TAT): the instant at which the
//! bucket will be full again. At `now`, the bucket is short of full by `debt = TAT − now`
//! microseconds (zero once `TAT ≤ now`). A call costing `n` tokens is granted when
//! `debt + n·T ≤ capacity_tokens·T`, and moves the TAT to `now + debt + n·T`. When denied, the
//! same call is granted from exactly `retry_at = TAT − (capacity_tokens − n)·T` on. All of it is
//! `u64` microseconds; nothing can overflow except the new TAT within one burst of
//! [`Instant::MAX`], where the call is denied with `retry_at = Instant::MAX` ("never") rather
//! than granted with a clamped TAT, which would hand out free tokens.
//!
//! # Policy changes
//!
//! The policy is an argument of every call, not part of the state, so a new policy applies to
//! existing buckets at once. The TAT keeps its meaning across the change: the bucket is full
//! again at the same instant. With the window unchanged, that keeps the *fraction* of the
//! bucket in use: a key that had used 30 of 60 tokens has 5 of 10 left after the limit drops
//! to 10 per window (not 30, and not a fresh 10).

use crate::time::{Duration, Instant};
use core::fmt;

/// A rate limit: up to `capacity_tokens` at once, refilled at `capacity_tokens` per `window`.
///
/// Build it with [`LimitPolicy::new`], which checks the values; a policy that exists is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "PolicySpec", into = "PolicySpec")
)]
pub struct LimitPolicy {
    capacity_tokens: u32,
    window: Duration,
    /// `T`, µs per token (≥ 1).
    emission_us: u64,
    /// `capacity_tokens × T`, the time an empty bucket takes to fill.
    burst_us: u64,
}

/// Why a [`LimitPolicy`] could not be built. Each variant names the bad field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PolicyError {
    /// `capacity_tokens` is zero; a bucket must hold at least one token.
    ZeroCapacity,
    /// `window` is shorter than one microsecond.
    ZeroWindow,
    /// `window` is so long (within `capacity_tokens` µs of [`Duration::MAX`]) that the rounded
    /// refill time does not fit in a [`Duration`].
    WindowTooLong,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyError::ZeroCapacity => "capacity_tokens must be at least 1",
            PolicyError::ZeroWindow => "window must be at least 1 microsecond",
            PolicyError::WindowTooLong => "window is too long to represent in microseconds",
        })
    }
}

impl core::error::Error for PolicyError {}

impl LimitPolicy {
    /// A policy of `capacity_tokens` per `window`; errors name the invalid field.
    pub const fn new(capacity_tokens: u32, window: Duration) -> Result<LimitPolicy, PolicyError> {
        if capacity_tokens == 0 {
            return Err(PolicyError::ZeroCapacity);
        }
        let window_us = window.as_micros();
        if window_us == 0 {
            return Err(PolicyError::ZeroWindow);
        }
        let emission_us = window_us.div_ceil(capacity_tokens as u64);
        let Some(burst_us) = emission_us.checked_mul(capacity_tokens as u64) else {
            return Err(PolicyError::WindowTooLong);
        };
        Ok(LimitPolicy {
            capacity_tokens,
            window,
            emission_us,
            burst_us,
        })
    }

    /// The most tokens the bucket holds, and the largest cost a call may have.
    pub const fn capacity_tokens(&self) -> u32 {
        self.capacity_tokens
    }

    /// The configured refill window.
    pub const fn window(&self) -> Duration {
        self.window
    }

    /// `T`: the time to refill one token, `window / capacity_tokens` rounded up to whole µs.
    pub const fn emission_interval(&self) -> Duration {
        Duration::from_micros(self.emission_us)
    }

    /// The time an empty bucket takes to fill: `capacity_tokens × T`, the configured window or
    /// longer by less than `capacity_tokens` µs.
    pub const fn refill_time(&self) -> Duration {
        Duration::from_micros(self.burst_us)
    }
}

/// The serialized form of a [`LimitPolicy`]; deserializing goes through [`LimitPolicy::new`].
#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
struct PolicySpec {
    capacity_tokens: u32,
    window: Duration,
}

#[cfg(feature = "serde")]
impl From<LimitPolicy> for PolicySpec {
    fn from(p: LimitPolicy) -> PolicySpec {
        PolicySpec {
            capacity_tokens: p.capacity_tokens,
            window: p.window,
        }
    }
}

#[cfg(feature = "serde")]
impl TryFrom<PolicySpec> for LimitPolicy {
    type Error = PolicyError;
    fn try_from(s: PolicySpec) -> Result<LimitPolicy, PolicyError> {
        LimitPolicy::new(s.capacity_tokens, s.window)
    }
}

/// The answer to a bucket's `acquire` or `check`.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Acquire {
    /// The call may proceed.
    Granted {
        /// Whole tokens left after this grant (how many cost-1 calls would be granted now).
        remaining: u32,
    },
    /// The call must wait.
    Denied {
        /// The earliest instant at which the same call would be granted, if nothing else is
        /// taken meanwhile. [`Instant::MAX`] means never.
        retry_at: Instant,
    },
}

impl Acquire {
    /// Whether the call was granted.
    pub const fn is_granted(&self) -> bool {
        matches!(self, Acquire::Granted { .. })
    }

    /// When to retry a denied call; `None` when granted.
    pub const fn retry_at(&self) -> Option<Instant> {
        match self {
            Acquire::Granted { .. } => None,
            Acquire::Denied { retry_at } => Some(*retry_at),
        }
    }
}

/// A call cost more tokens than the bucket can ever hold, so no amount of waiting grants it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CostOverCapacity {
    /// The cost asked for.
    pub cost_tokens: u32,
    /// The policy's capacity.
    pub capacity_tokens: u32,
}

impl fmt::Display for CostOverCapacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cost of {} tokens exceeds the capacity of {} and can never be granted",
            self.cost_tokens, self.capacity_tokens
        )
    }
}

impl core::error::Error for CostOverCapacity {}

/// The GCRA state of one bucket: the instant at which it is full again.
///
/// The [`Default`] (and [`Tat::FULL`]) is a full bucket. The policy is passed to every call
/// (see the [module docs](self) on policy changes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Tat(Instant);

impl Tat {
    /// A full bucket.
    pub const FULL: Tat = Tat(Instant::ZERO);

    /// The state of a bucket that is full again at `full_at`.
    pub const fn from_full_at(full_at: Instant) -> Tat {
        Tat(full_at)
    }

    /// The instant at which the bucket is full again (at or before `now`: full now).
    pub const fn full_at(self) -> Instant {
        self.0
    }

    /// Takes `cost` tokens if the bucket holds them at `now`. Cost 0 asks whether the bucket
    /// is usable at all and takes nothing.
    ///
    /// # Errors
    /// [`CostOverCapacity`] if `cost` exceeds the policy's capacity.
    #[inline]
    pub fn acquire(
        &mut self,
        now: Instant,
        policy: &LimitPolicy,
        cost: u32,
    ) -> Result<Acquire, CostOverCapacity> {
        let (answer, tat) = self.decide(now, policy, cost)?;
        self.0 = tat;
        Ok(answer)
    }

    /// What [`Tat::acquire`] would answer, without taking anything.
    ///
    /// # Errors
    /// [`CostOverCapacity`] if `cost` exceeds the policy's capacity.
    #[inline]
    pub fn check(
        &self,
        now: Instant,
        policy: &LimitPolicy,
        cost: u32,
    ) -> Result<Acquire, CostOverCapacity> {
        self.decide(now, policy, cost).map(|(answer, _)| answer)
    }

    /// The answer and the state after it.
    #[inline]
    fn decide(
        self,
        now: Instant,
        policy: &LimitPolicy,
        cost: u32,
    ) -> Result<(Acquire, Instant), CostOverCapacity> {
        if cost > policy.capacity_tokens {
            return Err(CostOverCapacity {
                cost_tokens: cost,
                capacity_tokens: policy.capacity_tokens,
            });
        }
        // cost ≤ capacity, so cost_us ≤ burst_us, which fits.
        let cost_us = u64::from(cost) * policy.emission_us;
        let debt_us = self.0.as_micros().saturating_sub(now.as_micros());
        let debt_max_us = policy.burst_us - cost_us;
        if debt_us > debt_max_us {
            // TAT = now + debt > now + debt_max ≥ debt_max: no underflow.
            let retry_at = Instant::from_micros(self.0.as_micros() - debt_max_us);
            return Ok((Acquire::Denied { retry_at }, self.0));
        }
        let new_debt_us = debt_us + cost_us; // ≤ burst_us
        match now.checked_add(Duration::from_micros(new_debt_us)) {
            Some(tat) => {
                // ≤ capacity_tokens, so it fits in u32.
                let remaining = ((policy.burst_us - new_debt_us) / policy.emission_us) as u32;
                Ok((Acquire::Granted { remaining }, tat))
            }
            None => Ok((
                Acquire::Denied {
                    retry_at: Instant::MAX,
                },
                self.0,
            )),
        }
    }
}

/// A single token bucket that owns its policy, for one resource or one client.
///
/// ```
/// use heidi_core::limit::{Acquire, LimitPolicy, TokenBucket};
/// use heidi_core::{Duration, Instant};
///
/// let policy = LimitPolicy::new(10, Duration::from_secs(60)).unwrap();
/// let mut bucket = TokenBucket::new(policy);
/// let now = Instant::from_secs(1);
/// assert_eq!(bucket.acquire(now, 5), Ok(Acquire::Granted { remaining: 5 }));
/// assert_eq!(bucket.acquire(now, 5), Ok(Acquire::Granted { remaining: 0 }));
/// // Five tokens take 5 × 6 s to come back.
/// assert_eq!(
///     bucket.acquire(now, 5),
///     Ok(Acquire::Denied { retry_at: Instant::from_secs(31) })
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TokenBucket {
    policy: LimitPolicy,
    tat: Tat,
}

impl TokenBucket {
    /// A full bucket under `policy`.
    pub const fn new(policy: LimitPolicy) -> TokenBucket {
        TokenBucket {
            policy,
            tat: Tat::FULL,
        }
    }

    /// Takes `cost` tokens if the bucket holds them at `now`; cost 0 takes nothing.
    ///
    /// # Errors
    /// [`CostOverCapacity`] if `cost` exceeds the policy's capacity.
    #[inline]
    pub fn acquire(&mut self, now: Instant, cost: u32) -> Result<Acquire, CostOverCapacity> {
        self.tat.acquire(now, &self.policy, cost)
    }

    /// What [`TokenBucket::acquire`] would answer, without taking anything.
    ///
    /// # Errors
    /// [`CostOverCapacity`] if `cost` exceeds the policy's capacity.
    #[inline]
    pub fn check(&self, now: Instant, cost: u32) -> Result<Acquire, CostOverCapacity> {
        self.tat.check(now, &self.policy, cost)
    }

    /// The current policy.
    pub const fn policy(&self) -> &LimitPolicy {
        &self.policy
    }

    /// Replaces the policy; it applies from the next call, to the tokens already taken too.
    pub fn set_policy(&mut self, policy: LimitPolicy) {
        self.policy = policy;
    }

    /// The instant at which the bucket is full again.
    pub const fn full_at(&self) -> Instant {
        self.tat.full_at()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(capacity: u32, window_secs: u64) -> LimitPolicy {
        LimitPolicy::new(capacity, Duration::from_secs(window_secs)).unwrap()
    }

    fn granted(a: Result<Acquire, CostOverCapacity>) -> bool {
        a.unwrap().is_granted()
    }

    #[test]
    fn seventy_calls_at_one_instant_grant_exactly_sixty() {
        let mut b = TokenBucket::new(policy(60, 60));
        let now = Instant::from_secs(1_000);
        let n = (0..70).filter(|_| granted(b.acquire(now, 1))).count();
        assert_eq!(n, 60);
    }

    #[test]
    fn costs_five_five_five_against_ten() {
        let mut b = TokenBucket::new(policy(10, 60));
        let now = Instant::from_secs(7);
        assert_eq!(b.acquire(now, 5), Ok(Acquire::Granted { remaining: 5 }));
        assert_eq!(b.acquire(now, 5), Ok(Acquire::Granted { remaining: 0 }));
        assert!(!granted(b.acquire(now, 5)));
    }

    #[test]
    fn policy_validation_names_the_field() {
        let w = Duration::from_secs(1);
        assert_eq!(LimitPolicy::new(0, w), Err(PolicyError::ZeroCapacity));
        assert_eq!(
            LimitPolicy::new(1, Duration::ZERO),
            Err(PolicyError::ZeroWindow)
        );
        assert_eq!(
            LimitPolicy::new(2, Duration::MAX),
            Err(PolicyError::WindowTooLong)
        );
        assert!(LimitPolicy::new(1, Duration::MAX).is_ok());
        assert!(LimitPolicy::new(u32::MAX, Duration::from_micros(1)).is_ok());
    }

    #[test]
    fn emission_interval_rounds_up() {
        let p = LimitPolicy::new(7, Duration::from_micros(100)).unwrap();
        assert_eq!(p.emission_interval(), Duration::from_micros(15));
        assert_eq!(p.refill_time(), Duration::from_micros(105));
        assert_eq!(policy(60, 60).emission_interval(), Duration::from_secs(1));
        assert_eq!(policy(60, 60).refill_time(), Duration::from_secs(60));
    }

    #[test]
    fn refills_one_token_per_interval() {
        let mut b = TokenBucket::new(policy(60, 60));
        let t0 = Instant::from_secs(10);
        for _ in 0..60 {
            assert!(granted(b.acquire(t0, 1)));
        }
        assert!(!granted(b.acquire(t0, 1)));
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(b.check(t1, 0), Ok(Acquire::Granted { remaining: 3 }));
        for _ in 0..3 {
            assert!(granted(b.acquire(t1, 1)));
        }
        assert!(!granted(b.acquire(t1, 1)));
        // Fully refilled after the window, and no more than capacity.
        let t2 = t1 + Duration::from_secs(600);
        assert_eq!(b.check(t2, 0), Ok(Acquire::Granted { remaining: 60 }));
        assert_eq!(b.full_at(), t1 + Duration::from_secs(60));
    }

    #[test]
    fn retry_at_is_exact() {
        let p = LimitPolicy::new(7, Duration::from_micros(100)).unwrap();
        for cost in 1..=7 {
            let mut b = TokenBucket::new(p);
            let now = Instant::from_micros(1_000);
            assert!(granted(b.acquire(now, 6)));
            let retry_at = b.acquire(now, cost).unwrap().retry_at();
            let Some(retry_at) = retry_at else {
                assert_eq!(cost, 1);
                continue;
            };
            let early = retry_at - Duration::from_micros(1);
            assert!(!granted(b.check(early, cost)), "cost {cost}");
            assert!(!granted(b.acquire(early, cost)), "cost {cost}");
            assert!(granted(b.acquire(retry_at, cost)), "cost {cost}");
        }
    }

    #[test]
    fn remaining_counts_whole_tokens() {
        let mut b = TokenBucket::new(policy(10, 60));
        let t0 = Instant::from_secs(100);
        assert_eq!(b.acquire(t0, 3), Ok(Acquire::Granted { remaining: 7 }));
        assert_eq!(b.acquire(t0, 7), Ok(Acquire::Granted { remaining: 0 }));
        // 8.999 s later: one token (6 s) plus most of another.
        let t1 = t0 + Duration::from_micros(8_999_999);
        assert_eq!(b.check(t1, 0), Ok(Acquire::Granted { remaining: 1 }));
        assert_eq!(b.acquire(t1, 1), Ok(Acquire::Granted { remaining: 0 }));
    }

    #[test]
    fn cost_over_capacity_is_an_error_and_changes_nothing() {
        let mut b = TokenBucket::new(policy(10, 60));
        let err = CostOverCapacity {
            cost_tokens: 11,
            capacity_tokens: 10,
        };
        assert_eq!(b.acquire(Instant::ZERO, 11), Err(err));
        assert_eq!(b.check(Instant::ZERO, 11), Err(err));
        assert_eq!(b.full_at(), Instant::ZERO);
        assert_eq!(
            b.acquire(Instant::ZERO, 10),
            Ok(Acquire::Granted { remaining: 0 })
        );
    }

    #[test]
    fn cost_zero_peeks() {
        let mut b = TokenBucket::new(policy(10, 60));
        let now = Instant::from_secs(5);
        assert_eq!(b.acquire(now, 0), Ok(Acquire::Granted { remaining: 10 }));
        assert_eq!(b.acquire(now, 10), Ok(Acquire::Granted { remaining: 0 }));
        assert_eq!(b.acquire(now, 0), Ok(Acquire::Granted { remaining: 0 }));
        assert_eq!(b.full_at(), now + Duration::from_secs(60));
    }

    #[test]
    fn never_overflows_near_the_end_of_time() {
        let mut b = TokenBucket::new(policy(60, 60));
        let late = Instant::MAX - Duration::from_secs(30);
        let n = (0..100).filter(|_| granted(b.acquire(late, 1))).count();
        // Only the grants whose TAT fits before Instant::MAX, never more than capacity.
        assert_eq!(n, 30);
        assert_eq!(
            b.acquire(late, 1),
            Ok(Acquire::Denied {
                retry_at: Instant::MAX
            })
        );
        let mut b = TokenBucket::new(policy(60, 60));
        assert_eq!(
            b.acquire(Instant::MAX, 1),
            Ok(Acquire::Denied {
                retry_at: Instant::MAX
            })
        );
        assert_eq!(
            b.acquire(Instant::MAX, 0),
            Ok(Acquire::Granted { remaining: 60 })
        );
        let p = LimitPolicy::new(1, Duration::MAX).unwrap();
        let mut b = TokenBucket::new(p);
        assert!(granted(b.acquire(Instant::ZERO, 1)));
        assert_eq!(b.full_at(), Instant::MAX);
        assert!(!granted(b.acquire(Instant::from_secs(1), 1)));
    }

    #[test]
    fn time_going_backwards_never_grants_more() {
        let mut b = TokenBucket::new(policy(2, 60));
        let t = Instant::from_secs(100);
        assert!(granted(b.acquire(t, 2)));
        assert!(!granted(b.acquire(t - Duration::from_secs(50), 1)));
    }

    #[test]
    fn a_smaller_limit_applies_to_an_existing_bucket_at_once() {
        let mut b = TokenBucket::new(policy(60, 60));
        let now = Instant::from_secs(1_000);
        for _ in 0..30 {
            assert!(granted(b.acquire(now, 1)));
        }
        b.set_policy(policy(10, 60));
        // Half the bucket was used; half of the new one is left: 5, not 30 and not 10.
        assert_eq!(b.check(now, 0), Ok(Acquire::Granted { remaining: 5 }));
        let n = (0..40).filter(|_| granted(b.acquire(now, 1))).count();
        assert_eq!(n, 5);
        // Full again at the same instant as before the change.
        assert_eq!(b.full_at(), now + Duration::from_secs(60));
    }

    #[test]
    fn a_shorter_window_can_leave_a_bucket_in_debt() {
        let mut b = TokenBucket::new(policy(10, 60));
        let now = Instant::from_secs(1_000);
        assert!(granted(b.acquire(now, 10)));
        b.set_policy(policy(10, 6));
        // Full again at now + 60 s; 1 token needs the debt down to 5.4 s.
        let answer = b.acquire(now, 1).unwrap();
        let retry_at = now + Duration::from_micros(60_000_000 - 5_400_000);
        assert_eq!(answer, Acquire::Denied { retry_at });
        assert!(granted(b.acquire(retry_at, 1)));
    }

    #[test]
    fn errors_display() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(
            PolicyError::ZeroCapacity.to_string(),
            "capacity_tokens must be at least 1"
        );
        let e = CostOverCapacity {
            cost_tokens: 11,
            capacity_tokens: 10,
        };
        assert!(e.to_string().contains("can never be granted"));
    }
}
