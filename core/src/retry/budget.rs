//! [`RetryBudget`]: a cap on retries relative to recent traffic, which stops retry storms.
//!
//! After Finagle's `RetryBudget` and linkerd's retry budgets: over a sliding window, retries
//! may make up at most `ratio_permille / 1000` of the requests plus a small floor
//! (`min_retries_per_sec × window`) so that a quiet client can still retry. When every call
//! fails, each new request can therefore buy at most `ratio` retries, and the load the retries
//! add is bounded, instead of multiplying by `max_attempts` (the original client's bug: "retries multiplied by
//! retrying in two layers").
//!
//! The window is a fixed ring of `N` counters (default 10), each covering `window / N`; the
//! budget counts the current counter and the `N − 1` before it, so the effective window is
//! `N × ⌊window / N⌋` and slides by one counter width at a time.

use crate::time::{Duration, Instant};
use core::fmt;

/// The parameters of a [`RetryBudget`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BudgetConfig {
    /// How far back requests and retries are counted (default 10 s).
    pub window: Duration,
    /// Retries allowed per 1000 requests in the window (default 200, i.e. 20 %).
    pub ratio_permille: u32,
    /// Retries allowed per second of window regardless of traffic (default 10, so 100 per
    /// 10 s window).
    pub min_retries_per_sec: u32,
}

impl BudgetConfig {
    /// Finagle's and linkerd's defaults: 10 s window, 20 % of requests, 10 retries per second.
    pub const DEFAULT: BudgetConfig = BudgetConfig {
        window: Duration::from_secs(10),
        ratio_permille: 200,
        min_retries_per_sec: 10,
    };
}

impl Default for BudgetConfig {
    /// [`BudgetConfig::DEFAULT`].
    fn default() -> BudgetConfig {
        BudgetConfig::DEFAULT
    }
}

/// A [`BudgetConfig`] field is out of range; [`BudgetConfigError::field`] names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BudgetConfigError {
    /// `window` is shorter than one microsecond per counter.
    WindowTooShort,
}

impl BudgetConfigError {
    /// The name of the offending field.
    pub const fn field(self) -> &'static str {
        match self {
            BudgetConfigError::WindowTooShort => "window",
        }
    }
}

impl fmt::Display for BudgetConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetConfigError::WindowTooShort => write!(
                f,
                "retry budget: `{}` must be at least 1 µs per counter",
                self.field()
            ),
        }
    }
}

impl core::error::Error for BudgetConfigError {}

/// The budget refuses a retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BudgetExhausted {
    /// When a retry would be allowed if no other request or retry happened meanwhile
    /// ([`Instant::MAX`] if never: the floor is zero and no requests remain).
    pub retry_at: Instant,
}

impl fmt::Display for BudgetExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "retry budget exhausted until {}", self.retry_at)
    }
}

impl core::error::Error for BudgetExhausted {}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Counter {
    index: u64,
    requests: u32,
    retries: u32,
}

/// A sliding-window retry budget over a ring of `N` counters (see the module docs).
///
/// Call [`RetryBudget::record_request`] for every original request (never for a retry) and
/// [`RetryBudget::try_retry`] before every retry. Every call is O(N).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RetryBudget<const N: usize = 10> {
    config: BudgetConfig,
    counter_us: u64,
    floor_milli: u64,
    latest: u64,
    counters: [Counter; N],
}

impl<const N: usize> RetryBudget<N> {
    /// An empty budget.
    pub const fn new(config: BudgetConfig) -> Result<RetryBudget<N>, BudgetConfigError> {
        const { assert!(N > 0, "a retry budget needs at least one counter") };
        let counter_us = config.window.as_micros() / N as u64;
        if counter_us == 0 {
            return Err(BudgetConfigError::WindowTooShort);
        }
        let effective_us = counter_us as u128 * N as u128;
        let floor = config.min_retries_per_sec as u128 * effective_us / 1_000;
        let floor_milli = if floor > u64::MAX as u128 {
            u64::MAX
        } else {
            floor as u64
        };
        Ok(RetryBudget {
            config,
            counter_us,
            floor_milli,
            latest: 0,
            counters: [Counter {
                index: 0,
                requests: 0,
                retries: 0,
            }; N],
        })
    }

    /// The configuration.
    pub const fn config(&self) -> &BudgetConfig {
        &self.config
    }

    /// Counts one original request at `now`.
    pub fn record_request(&mut self, now: Instant) {
        let c = self.counter_mut(now);
        c.requests = c.requests.saturating_add(1);
        self.debug_check();
    }

    /// Takes one retry from the budget at `now`, or says when one would be allowed.
    pub fn try_retry(&mut self, now: Instant) -> Result<(), BudgetExhausted> {
        let index = self.index(now);
        let (requests, retries) = self.totals(index);
        if !self.allows(requests, retries) {
            let retry_at = self.retry_at(index, requests, retries);
            return Err(BudgetExhausted { retry_at });
        }
        let c = self.counter_mut(now);
        c.retries = c.retries.saturating_add(1);
        self.debug_check();
        Ok(())
    }

    /// The invariants, checked after every change in debug builds: no counter is ahead of
    /// `latest`, and every counter in use sits at its index's place in the ring. O(N).
    fn debug_check(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        for (place, c) in self.counters.iter().enumerate() {
            debug_assert!(c.index <= self.latest, "counter index ≤ latest");
            let unused = c.requests == 0 && c.retries == 0;
            debug_assert!(
                unused || c.index % N as u64 == place as u64,
                "counter place"
            );
        }
    }

    /// How many retries the budget would allow at `now` (no state change).
    pub fn available(&self, now: Instant) -> u64 {
        let (requests, retries) = self.totals(self.index(now));
        let allowance = self.allowance_milli(requests) / 1_000;
        allowance.saturating_sub(retries as u128) as u64
    }

    /// The (requests, retries) the budget counts at `now`.
    pub fn window_totals(&self, now: Instant) -> (u64, u64) {
        self.totals(self.index(now))
    }

    /// The counter index of `now`, never behind the latest one seen (a clock that steps back
    /// is treated as standing still).
    fn index(&self, now: Instant) -> u64 {
        (now.as_micros() / self.counter_us).max(self.latest)
    }

    fn counter_mut(&mut self, now: Instant) -> &mut Counter {
        let index = self.index(now);
        self.latest = index;
        let c = &mut self.counters[(index % N as u64) as usize];
        if c.index != index {
            *c = Counter {
                index,
                requests: 0,
                retries: 0,
            };
        }
        c
    }

    fn in_window(index: u64, c: &Counter) -> bool {
        c.index <= index && c.index.saturating_add(N as u64) > index
    }

    fn totals(&self, index: u64) -> (u64, u64) {
        self.counters
            .iter()
            .filter(|c| Self::in_window(index, c))
            .fold((0, 0), |(q, r), c| {
                (q + c.requests as u64, r + c.retries as u64)
            })
    }

    fn allowance_milli(&self, requests: u64) -> u128 {
        self.config.ratio_permille as u128 * requests as u128 + self.floor_milli as u128
    }

    fn allows(&self, requests: u64, retries: u64) -> bool {
        (retries as u128 + 1) * 1_000 <= self.allowance_milli(requests)
    }

    /// The first counter boundary at which expiring counters leave room for a retry.
    fn retry_at(&self, index: u64, mut requests: u64, mut retries: u64) -> Instant {
        for step in 1..=N as u64 {
            // The counter leaving the window at the boundary `index + step`.
            let boundary = index.saturating_add(step);
            if let Some(leaving) = boundary.checked_sub(N as u64) {
                let c = &self.counters[(leaving % N as u64) as usize];
                if c.index == leaving {
                    requests -= c.requests as u64;
                    retries -= c.retries as u64;
                }
            }
            if self.allows(requests, retries) {
                let at = boundary.saturating_mul(self.counter_us);
                return Instant::from_micros(at);
            }
        }
        Instant::MAX
    }
}

impl Default for RetryBudget<10> {
    /// A budget with [`BudgetConfig::DEFAULT`].
    fn default() -> RetryBudget<10> {
        match RetryBudget::new(BudgetConfig::DEFAULT) {
            Ok(b) => b,
            Err(_) => unreachable!(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn budget(ratio_permille: u32, min_retries_per_sec: u32) -> RetryBudget<10> {
        let window = Duration::from_secs(10);
        let config = BudgetConfig {
            window,
            ratio_permille,
            min_retries_per_sec,
        };
        RetryBudget::new(config).unwrap()
    }

    fn drain(b: &mut RetryBudget<10>, now: Instant) -> (u64, BudgetExhausted) {
        let mut granted = 0;
        loop {
            match b.try_retry(now) {
                Ok(()) => granted += 1,
                Err(e) => return (granted, e),
            }
        }
    }

    #[test]
    fn defaults_are_finagles() {
        let b = RetryBudget::<10>::default();
        assert_eq!(*b.config(), BudgetConfig::DEFAULT);
        assert_eq!(BudgetConfig::default().window, Duration::from_secs(10));
        assert_eq!(b.available(at(0)), 100);
    }

    #[test]
    fn the_floor_alone_allows_min_retries_per_sec_times_window() {
        let mut b = RetryBudget::<10>::default();
        let (granted, e) = drain(&mut b, at(2_500));
        assert_eq!(granted, 100);
        // The retries sit in the counter of second 2, which leaves the window at 12 s.
        assert_eq!(e.retry_at, at(12_000));
        assert_eq!(b.available(at(11_999)), 0);
        assert!(b.try_retry(at(11_999)).is_err());
        assert_eq!(b.try_retry(at(12_000)), Ok(()));
    }

    #[test]
    fn requests_buy_retries_at_the_ratio() {
        let mut b = budget(200, 0);
        for _ in 0..1_000 {
            b.record_request(at(100));
        }
        assert_eq!(b.window_totals(at(100)), (1_000, 0));
        let (granted, e) = drain(&mut b, at(500));
        assert_eq!(granted, 200);
        // Requests and retries leave together at 10 s; then there is no floor: never.
        assert_eq!(e.retry_at, Instant::MAX);
        assert_eq!(b.window_totals(at(500)), (1_000, 200));
    }

    #[test]
    fn retry_at_finds_the_first_boundary_with_room() {
        let mut b = budget(1_000, 1);
        assert_eq!(drain(&mut b, at(0)).0, 10, "the floor: 1/s over 10 s");
        for _ in 0..5 {
            b.record_request(at(5_000));
        }
        assert_eq!(drain(&mut b, at(5_000)).0, 5);
        // Full: 5 requests, 15 retries. Nothing leaves until second 0 does, at 10 s, taking
        // 10 retries with it: then 5 requests, 5 retries, allowance 15.
        let (granted, e) = drain(&mut b, at(6_000));
        assert_eq!((granted, e.retry_at), (0, at(10_000)));
        assert_eq!(drain(&mut b, at(10_000)).0, 10);
        // Now second 5 (5 requests, 5 retries) and second 10 (10 retries) are in the window:
        // second 5 leaves at 15 s, leaving 0 requests, 10 retries, allowance 10: full. Second
        // 10 leaves at 20 s.
        let (granted, e) = drain(&mut b, at(12_000));
        assert_eq!((granted, e.retry_at), (0, at(20_000)));
    }

    #[test]
    fn retry_at_is_the_expiry_of_the_retries_that_fill_the_floor() {
        let mut b = budget(0, 1);
        assert_eq!(drain(&mut b, at(1_000)).0, 10);
        let (granted, e) = drain(&mut b, at(6_000));
        assert_eq!(granted, 0);
        assert_eq!(e.retry_at, at(11_000));
        assert_eq!(drain(&mut b, at(11_000)).0, 10);
    }

    #[test]
    fn zero_ratio_and_floor_never_retries() {
        let mut b = budget(0, 0);
        b.record_request(at(0));
        assert_eq!(
            b.try_retry(at(0)),
            Err(BudgetExhausted {
                retry_at: Instant::MAX
            })
        );
        assert_eq!(b.available(at(0)), 0);
    }

    #[test]
    fn a_storm_of_failures_is_capped() {
        // 100 requests per second, every one failing and asking for a retry, for a minute.
        let mut b = RetryBudget::<10>::default();
        let mut granted = [0u64; 60];
        for ms in (0..60_000).step_by(10) {
            let now = at(ms);
            b.record_request(now);
            if b.try_retry(now).is_ok() {
                granted[(ms / 1_000) as usize] += 1;
            }
        }
        for start in 0..=50 {
            let in_window: u64 = granted[start..start + 10].iter().sum();
            // 1000 requests per window: ≤ 20 % of them plus 10/s × 10 s.
            assert!(in_window <= 200 + 100, "window at {start}s: {in_window}");
        }
        assert!(granted.iter().sum::<u64>() <= 6 * 300);
    }

    #[test]
    fn a_clock_that_steps_back_stands_still() {
        let mut b = budget(0, 1);
        assert_eq!(drain(&mut b, at(50_000)).0, 10);
        assert!(b.try_retry(at(1_000)).is_err());
        b.record_request(at(1_000));
        assert_eq!(b.window_totals(at(50_000)), (1, 10));
    }

    #[test]
    fn counters_saturate() {
        let mut b = budget(1_000, 0);
        b.counters[0].requests = u32::MAX;
        b.record_request(at(0));
        assert_eq!(b.window_totals(at(0)), (u32::MAX as u64, 0));
        let huge = BudgetConfig {
            window: Duration::MAX,
            ratio_permille: 0,
            min_retries_per_sec: u32::MAX,
        };
        let b = RetryBudget::<10>::new(huge).unwrap();
        assert_eq!(b.floor_milli, u64::MAX);
    }

    #[test]
    fn a_window_shorter_than_its_counters_is_refused() {
        let config = BudgetConfig {
            window: Duration::from_micros(9),
            ..BudgetConfig::DEFAULT
        };
        let e = RetryBudget::<10>::new(config).unwrap_err();
        assert_eq!(
            (e, e.field()),
            (BudgetConfigError::WindowTooShort, "window")
        );
        let config = BudgetConfig {
            window: Duration::from_micros(10),
            ..BudgetConfig::DEFAULT
        };
        assert!(RetryBudget::<10>::new(config).is_ok());
        use core::fmt::Write;
        let mut s: heapless::String<96> = heapless::String::new();
        write!(s, "{e}").unwrap();
        assert_eq!(
            s.as_str(),
            "retry budget: `window` must be at least 1 µs per counter"
        );
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "latest")]
    fn a_counter_ahead_of_latest_fails_the_debug_check() {
        let mut b = budget(1_000, 1);
        b.record_request(at(5_000));
        b.counters[7].index = 7;
        b.record_request(at(5_000));
    }
}
