//! The failure-rate windows of a closed breaker: the last K calls, or the calls of the last
//! T (a fixed ring of time buckets).

use super::config::{RateTrip, RateWindow, TIME_BUCKETS};
use crate::time::Instant;

/// The last `size` call results as a 128-bit ring (bit set = failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) struct CountWindow {
    bits: u128,
    size: u8,
    head: u8,
    len: u8,
    failures: u8,
}

impl CountWindow {
    const fn new(size: u8) -> CountWindow {
        CountWindow {
            bits: 0,
            size,
            head: 0,
            len: 0,
            failures: 0,
        }
    }

    fn push(&mut self, failed: bool) -> (u64, u64) {
        let bit = 1u128 << self.head;
        if self.len == self.size {
            self.failures -= (self.bits & bit != 0) as u8;
        } else {
            self.len += 1;
        }
        if failed {
            self.bits |= bit;
            self.failures += 1;
        } else {
            self.bits &= !bit;
        }
        self.head += 1;
        if self.head == self.size {
            self.head = 0;
        }
        self.debug_check();
        (self.len as u64, self.failures as u64)
    }

    /// The invariants, in debug builds: O(1).
    fn debug_check(&self) {
        debug_assert!(
            self.head < self.size && self.len <= self.size,
            "head and len"
        );
        let set = self.bits.count_ones();
        debug_assert!(self.failures as u32 == set, "failures == failure bits");
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Bucket {
    calls: u32,
    failures: u32,
}

/// Calls and failures of the last [`TIME_BUCKETS`] buckets of `bucket_us` each, with running
/// totals: a call in the current bucket is O(1); moving to a later bucket clears at most
/// [`TIME_BUCKETS`] buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) struct TimeWindow {
    bucket_us: u64,
    latest: u64,
    calls: u64,
    failures: u64,
    buckets: [Bucket; TIME_BUCKETS],
}

impl TimeWindow {
    const fn new(bucket_us: u64) -> TimeWindow {
        let empty = Bucket {
            calls: 0,
            failures: 0,
        };
        TimeWindow {
            bucket_us,
            latest: 0,
            calls: 0,
            failures: 0,
            buckets: [empty; TIME_BUCKETS],
        }
    }

    fn push(&mut self, now: Instant, failed: bool) -> (u64, u64) {
        // A clock that steps back is treated as standing still.
        let index = now.as_micros() / self.bucket_us;
        if index > self.latest {
            self.advance(index);
        }
        let b = &mut self.buckets[(self.latest % TIME_BUCKETS as u64) as usize];
        if b.calls < u32::MAX {
            b.calls += 1;
            self.calls += 1;
            if failed {
                b.failures += 1;
                self.failures += 1;
            }
        }
        self.debug_check();
        (self.calls, self.failures)
    }

    /// The invariants, in debug builds: the totals are the sums of the buckets, and no bucket
    /// has more failures than calls. O([`TIME_BUCKETS`]).
    fn debug_check(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let (mut calls, mut failures) = (0, 0);
        for b in &self.buckets {
            debug_assert!(b.failures <= b.calls, "bucket failures ≤ calls");
            calls += b.calls as u64;
            failures += b.failures as u64;
        }
        debug_assert!((calls, failures) == (self.calls, self.failures), "totals");
    }

    /// Empties the buckets that leave the window when time reaches bucket `index`.
    fn advance(&mut self, index: u64) {
        if index - self.latest >= TIME_BUCKETS as u64 {
            *self = TimeWindow::new(self.bucket_us);
        } else {
            for i in self.latest + 1..=index {
                let b = &mut self.buckets[(i % TIME_BUCKETS as u64) as usize];
                self.calls -= b.calls as u64;
                self.failures -= b.failures as u64;
                *b = Bucket::default();
            }
        }
        self.latest = index;
    }
}

/// The window of a breaker's rate rule, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) enum RateState {
    Off,
    Count(CountWindow),
    Time(TimeWindow),
}

impl RateState {
    /// An empty window for `rate` (which has been validated).
    pub(crate) const fn new(rate: Option<RateTrip>) -> RateState {
        match rate {
            None => RateState::Off,
            Some(RateTrip {
                window: RateWindow::LastCalls(n),
                ..
            }) => RateState::Count(CountWindow::new(n)),
            Some(RateTrip {
                window: RateWindow::Time(w),
                ..
            }) => RateState::Time(TimeWindow::new(w.as_micros() / TIME_BUCKETS as u64)),
        }
    }

    /// Checks the window's invariants in debug builds.
    pub(crate) fn debug_check(&self) {
        match self {
            RateState::Off => {}
            RateState::Count(w) => w.debug_check(),
            RateState::Time(w) => w.debug_check(),
        }
    }

    /// Adds one call; returns whether the rate rule trips.
    pub(crate) fn push(&mut self, rate: &Option<RateTrip>, now: Instant, failed: bool) -> bool {
        let (calls, failures) = match self {
            RateState::Off => return false,
            RateState::Count(w) => w.push(failed),
            RateState::Time(w) => w.push(now, failed),
        };
        match rate {
            Some(r) => {
                calls >= r.min_calls as u64
                    && failures * 1_000 >= r.threshold_permille as u64 * calls
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    fn rate(threshold_permille: u16, min_calls: u32, window: RateWindow) -> Option<RateTrip> {
        Some(RateTrip {
            threshold_permille,
            min_calls,
            window,
        })
    }

    #[test]
    fn count_window_forgets_the_oldest_call() {
        let mut w = CountWindow::new(3);
        assert_eq!(w.push(true), (1, 1));
        assert_eq!(w.push(false), (2, 1));
        assert_eq!(w.push(true), (3, 2));
        assert_eq!(w.push(false), (3, 1), "the first failure left");
        assert_eq!(w.push(false), (3, 1));
        assert_eq!(w.push(false), (3, 0));
    }

    #[test]
    fn count_window_of_128_uses_every_bit() {
        let mut w = CountWindow::new(128);
        for _ in 0..128 {
            w.push(true);
        }
        assert_eq!(w.push(true), (128, 128));
        for _ in 0..127 {
            w.push(false);
        }
        assert_eq!(w.push(false), (128, 0));
    }

    #[test]
    fn time_window_drops_whole_buckets() {
        let mut w = TimeWindow::new(1_000_000);
        assert_eq!(w.push(Instant::from_millis(500), true), (1, 1));
        assert_eq!(w.push(Instant::from_millis(9_999), false), (2, 1));
        assert_eq!(w.push(Instant::from_millis(10_000), false), (2, 0));
        // A clock that steps back lands in the latest bucket.
        assert_eq!(w.push(Instant::from_millis(0), true), (3, 1));
        assert_eq!(w.push(Instant::from_millis(10_999), false), (4, 1));
        assert_eq!(w.push(Instant::from_millis(19_000), false), (4, 1));
        assert_eq!(w.push(Instant::from_millis(20_000), false), (2, 0));
        // A jump past the whole window starts afresh.
        assert_eq!(w.push(Instant::from_millis(99_000), true), (1, 1));
    }

    #[test]
    fn rate_trips_at_threshold_after_min_calls() {
        let r = rate(500, 4, RateWindow::LastCalls(10));
        let mut s = RateState::new(r);
        let now = Instant::ZERO;
        assert!(!s.push(&r, now, true));
        assert!(!s.push(&r, now, true));
        assert!(!s.push(&r, now, true), "3 calls < min_calls");
        assert!(s.push(&r, now, false), "3 of 4 failed");
        let r = rate(500, 2, RateWindow::Time(Duration::from_secs(10)));
        let mut s = RateState::new(r);
        assert!(!s.push(&r, now, false));
        assert!(s.push(&r, now, true), "1 of 2 is 50 %");
        let mut off = RateState::new(None);
        assert!(!off.push(&None, now, true));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "totals")]
    fn time_window_checks_its_totals_in_debug_builds() {
        let mut w = TimeWindow::new(1_000);
        w.push(Instant::ZERO, true);
        w.calls += 1;
        w.push(Instant::ZERO, false);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "failures")]
    fn count_window_checks_its_failures_in_debug_builds() {
        let mut w = CountWindow::new(4);
        w.push(true);
        w.failures += 1;
        w.push(false);
    }
}
