//! A budget of log lines: a bucket per source and one bucket for all sources together, so
//! that neither one source nor a crowd of them (a new process each) makes a log grow faster
//! than a bounded rate. What a source writes beyond its budget is for the host to count
//! instead.
//!
//! ```
//! use heidi_core::key::KeyHasher;
//! use heidi_core::limit::lines::{ADMIN_LINES_PER_SOURCE, ADMIN_LINES_ALL, LineBudget};
//! use heidi_core::Instant;
//!
//! let hasher = KeyHasher::new([7; 16]);
//! let mut budget = LineBudget::<64>::new(ADMIN_LINES_PER_SOURCE, ADMIN_LINES_ALL);
//! let now = Instant::from_secs(1);
//! let peer = hasher.hash(b"uid=1000");
//! let written = (0..20).filter(|_| budget.allow(now, peer)).count();
//! assert_eq!(written, 10); // 10 at once, then one per 6 s
//! ```

use crate::Instant;
use crate::key::KeyHash;
use crate::time::Duration;

use super::bucket::{LimitPolicy, TokenBucket};
use super::keyed::{ArrayLimiter, KeyedAcquire};

/// The `admin call` lines one peer of the daemon may cause: 10 at once, refilled at 10 per
/// minute.
pub const ADMIN_LINES_PER_SOURCE: LimitPolicy = policy(10, 60);

/// The `admin call` lines all peers together may cause: 60 at once, refilled at 60 per
/// minute.
pub const ADMIN_LINES_ALL: LimitPolicy = policy(60, 60);

const fn policy(capacity: u32, window_secs: u64) -> LimitPolicy {
    match LimitPolicy::new(capacity, Duration::from_secs(window_secs)) {
        Ok(policy) => policy,
        Err(_) => panic!("invalid line policy"),
    }
}

/// The line buckets of up to `N` sources at once (a non-zero multiple of 8), and the shared
/// one.
#[derive(Clone, Debug)]
pub struct LineBudget<const N: usize> {
    per_source: LimitPolicy,
    sources: ArrayLimiter<N>,
    all: TokenBucket,
}

impl<const N: usize> LineBudget<N> {
    /// Full buckets: `per_source` for each source, `all` for every source together.
    #[must_use]
    pub fn new(per_source: LimitPolicy, all: LimitPolicy) -> LineBudget<N> {
        LineBudget {
            per_source,
            sources: ArrayLimiter::new_array(),
            all: TokenBucket::new(all),
        }
    }

    /// Whether `source` may write one more line at `now`: it takes a token from the
    /// source's bucket, then one from the shared bucket, and the line is written only when
    /// both were there (a token taken from the first stays taken). A source that finds no
    /// slot for its bucket (all `N` hold buckets that have not refilled) may not.
    pub fn allow(&mut self, now: Instant, source: KeyHash) -> bool {
        let own = self.sources.acquire(now, source, &self.per_source, 1);
        matches!(own, Ok(KeyedAcquire::Granted { .. }))
            && self.all.acquire(now, 1).is_ok_and(|a| a.is_granted())
    }

    /// Sources holding a bucket.
    #[must_use]
    pub fn sources(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyHasher;

    fn key(i: u32) -> KeyHash {
        KeyHasher::new([3; 16]).hash(&i.to_le_bytes())
    }

    #[test]
    fn a_source_gets_its_burst_then_one_line_per_interval() {
        let mut budget = LineBudget::<8>::new(ADMIN_LINES_PER_SOURCE, ADMIN_LINES_ALL);
        let now = Instant::from_secs(1);
        let burst = ADMIN_LINES_PER_SOURCE.capacity_tokens() as usize;
        assert_eq!(
            (0..100).filter(|_| budget.allow(now, key(1))).count(),
            burst
        );
        assert!(
            budget.allow(now, key(2)),
            "another source has a bucket of its own"
        );
        let later = now + ADMIN_LINES_PER_SOURCE.emission_interval();
        assert!(budget.allow(later, key(1)));
        assert!(!budget.allow(later, key(1)));
    }

    #[test]
    fn all_sources_together_share_one_bucket() {
        let mut budget = LineBudget::<1024>::new(ADMIN_LINES_PER_SOURCE, ADMIN_LINES_ALL);
        let now = Instant::from_secs(1);
        let written = (0..1000).filter(|&i| budget.allow(now, key(i))).count();
        assert_eq!(written, ADMIN_LINES_ALL.capacity_tokens() as usize);
    }

    #[test]
    fn a_source_without_a_slot_may_not_until_buckets_refill() {
        let mut budget = LineBudget::<8>::new(ADMIN_LINES_PER_SOURCE, ADMIN_LINES_ALL);
        let now = Instant::from_secs(1);
        let mut i = 0;
        while budget.sources() < 8 {
            assert!(i < 10_000, "the table never filled");
            let _ = budget.allow(now, key(i));
            i += 1;
        }
        let newcomer = key(u32::MAX);
        assert!(!budget.allow(now, newcomer));
        let later = now + ADMIN_LINES_PER_SOURCE.refill_time();
        assert!(
            budget.allow(later, newcomer),
            "refilled buckets give their slots up"
        );
    }
}
