//! [`Latencies`]: a fixed-size log-linear histogram of latency samples and its nearest-rank
//! percentiles, so that memory does not grow with the number of calls.
//!
//! Values below 128 µs have a bucket each; above, every power of two `[2^e, 2^(e+1))` is split
//! into 64 buckets of equal width, so a bucket is at most 1/64 (1.6 %) of its values wide. A
//! percentile is the upper end of the bucket holding the nearest-rank sample, capped at the
//! largest sample: never below the exact nearest-rank value and at most 1.6 % above it (exact
//! below 128 µs). Samples from 2⁴⁰ µs (12.7 days, longer than any run) share the last bucket.

use heidi_core::Duration;

/// Values below this have a bucket each.
const LINEAR: u64 = 128;
/// Buckets per power of two above [`LINEAR`].
const PER_OCTAVE: u64 = 64;
/// Samples at or above `2^TOP_BITS` µs go to the last bucket.
const TOP_BITS: u32 = 40;
/// Number of buckets: the linear ones, then `PER_OCTAVE` for each octave 7..TOP_BITS.
pub const BUCKETS: usize = (LINEAR + (TOP_BITS as u64 - 7) * PER_OCTAVE) as usize;

/// Latency samples (µs) in [`BUCKETS`] counters.
#[derive(Clone, Debug)]
pub struct Latencies {
    counts: Box<[u64; BUCKETS]>,
    n: u64,
    max: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            counts: Box::new([0; BUCKETS]),
            n: 0,
            max: 0,
        }
    }
}

/// The bucket of `v` µs.
fn bucket(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - u64::from(v.leading_zeros());
    if e >= u64::from(TOP_BITS) {
        return BUCKETS - 1;
    }
    let sub = (v >> (e - 6)) - PER_OCTAVE;
    (LINEAR + (e - 7) * PER_OCTAVE + sub) as usize
}

/// The largest value bucket `i` holds.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let (octave, sub) = ((i - LINEAR) / PER_OCTAVE, (i - LINEAR) % PER_OCTAVE);
    let e = octave + 7;
    let width = 1u64 << (e - 6);
    (1u64 << e) + (sub + 1) * width - 1
}

impl Latencies {
    /// Adds one sample.
    pub fn add(&mut self, d: Duration) {
        let v = d.as_micros();
        // `bucket` is below BUCKETS; `get_mut` spares the module a bounds-check panic.
        if let Some(c) = self.counts.get_mut(bucket(v)) {
            *c += 1;
        }
        self.n += 1;
        self.max = self.max.max(v);
    }

    /// Samples so far.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The `q`-th percentile (nearest rank: the smallest sample with at least q % of the
    /// samples at or below it, rounded up to its bucket's end as the module docs say), `None`
    /// without samples.
    pub fn percentile(&self, q: u64) -> Option<u64> {
        if self.n == 0 {
            return None;
        }
        let rank = (u128::from(q.min(100)) * u128::from(self.n))
            .div_ceil(100)
            .max(1);
        let mut seen = 0u128;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u128::from(c);
            if seen >= rank {
                return Some(upper(i).min(self.max));
            }
        }
        Some(self.max)
    }

    /// `(p50, p99)`, then forgets the samples (for the next tick).
    pub fn take_p50_p99(&mut self) -> (Option<u64>, Option<u64>) {
        let p = (self.percentile(50), self.percentile(99));
        if self.n > 0 {
            self.counts.fill(0);
            self.n = 0;
            self.max = 0;
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_narrow() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(127), 127);
        assert_eq!(bucket(128), 128);
        for i in 0..BUCKETS - 1 {
            assert_eq!(bucket(upper(i)), i, "bucket {i}");
            assert_eq!(bucket(upper(i) + 1), i + 1, "after bucket {i}");
        }
        for v in [128u64, 1_000, 29_999, 1 << 30, (1 << 40) - 1] {
            let i = bucket(v);
            assert!(
                upper(i) >= v && (upper(i) - v) * 64 <= v,
                "{v} -> {}",
                upper(i)
            );
        }
        assert_eq!(bucket(1 << 40), BUCKETS - 1);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_use_the_nearest_rank_within_a_bucket() {
        let mut l = Latencies::default();
        assert_eq!(l.percentile(50), None);
        for v in (1..=100).rev() {
            l.add(Duration::from_micros(v));
        }
        // Exact below 128 µs.
        assert_eq!(l.percentile(50), Some(50));
        assert_eq!(l.percentile(99), Some(99));
        assert_eq!(l.percentile(100), Some(100));
        assert_eq!(l.percentile(0), Some(1));
        assert_eq!(l.take_p50_p99(), (Some(50), Some(99)));
        assert!(l.is_empty());
        l.add(Duration::from_micros(7));
        assert_eq!(l.take_p50_p99(), (Some(7), Some(7)));
        // Above: at most 1/64 high, never above the largest sample.
        for v in 20_000..=30_000 {
            l.add(Duration::from_micros(v));
        }
        let p50 = l.percentile(50).unwrap();
        assert!((25_000..=25_000 + 25_000 / 64).contains(&p50), "{p50}");
        assert_eq!(l.percentile(100), Some(30_000));
        assert_eq!(l.len(), 10_001);
    }

    #[test]
    fn memory_does_not_grow_with_samples() {
        let mut l = Latencies::default();
        for v in 0..1_000_000u64 {
            l.add(Duration::from_micros(v * 7_919 % 100_000_000));
        }
        assert_eq!(l.len(), 1_000_000);
        assert_eq!(core::mem::size_of_val(&*l.counts), BUCKETS * 8);
        assert!(l.percentile(99).unwrap() <= 100_000_000);
    }
}
