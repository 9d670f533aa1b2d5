//! Latency histograms (HDR: 3 significant figures, 1 ns to 60 s) and the summary a run prints.

use hdrhistogram::Histogram;
use std::time::Duration;

/// The largest latency recorded exactly; longer ones are clamped to it.
pub const LATENCY_MAX: Duration = Duration::from_secs(60);

/// Per-request latencies of one run (or one connection), in nanoseconds.
#[derive(Clone, Debug)]
pub struct Latencies {
    hist: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// An empty histogram covering 1 ns ..= [`LATENCY_MAX`] at 3 significant figures.
    pub fn new() -> Latencies {
        let hist = Histogram::new_with_bounds(1, LATENCY_MAX.as_nanos() as u64, 3)
            .expect("fixed bounds are valid");
        Latencies { hist }
    }

    /// Records one latency; zero counts as 1 ns and anything above [`LATENCY_MAX`] as the max.
    pub fn record(&mut self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let ns = ns.clamp(1, LATENCY_MAX.as_nanos() as u64);
        self.hist.record(ns).expect("value clamped into the bounds");
    }

    /// Adds every latency of `other` (same bounds, so this cannot fail).
    pub fn merge(&mut self, other: &Latencies) {
        self.hist
            .add(&other.hist)
            .expect("histograms share their bounds");
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The latency at `quantile` (0.0 ..= 1.0), in ns; 0 when nothing was recorded. The value
    /// is the highest value equivalent to the recorded ones (HDR rounding, < 0.1 % above).
    pub fn quantile_ns(&self, quantile: f64) -> u64 {
        if self.hist.is_empty() {
            return 0;
        }
        self.hist.value_at_quantile(quantile)
    }

    /// The largest recorded latency in ns (0 when empty).
    pub fn max_ns(&self) -> u64 {
        if self.hist.is_empty() {
            0
        } else {
            self.hist.max()
        }
    }
}

/// What a run measured: counts, wall time, throughput and latency percentiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Replies received (errors included).
    pub requests: u64,
    /// Error replies among them.
    pub errors: u64,
    /// Wall time from the first send to the last reply.
    pub elapsed: Duration,
    /// `requests` per second of `elapsed`.
    pub per_sec: u64,
    /// Median latency, ns.
    pub p50_ns: u64,
    /// 99th-percentile latency, ns.
    pub p99_ns: u64,
    /// 99.9th-percentile latency, ns.
    pub p999_ns: u64,
    /// Largest latency, ns.
    pub max_ns: u64,
}

impl Summary {
    /// Summarises `requests` replies (of which `errors` were errors) over `elapsed`.
    pub fn new(latencies: &Latencies, requests: u64, errors: u64, elapsed: Duration) -> Summary {
        Summary {
            requests,
            errors,
            elapsed,
            per_sec: per_sec(requests, elapsed),
            p50_ns: latencies.quantile_ns(0.50),
            p99_ns: latencies.quantile_ns(0.99),
            p999_ns: latencies.quantile_ns(0.999),
            max_ns: latencies.max_ns(),
        }
    }

    /// One JSON object with every field (times in ns, elapsed in ms).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.requests,
            "errors": self.errors,
            "elapsed_ms": self.elapsed.as_millis() as u64,
            "per_sec": self.per_sec,
            "p50_ns": self.p50_ns,
            "p99_ns": self.p99_ns,
            "p999_ns": self.p999_ns,
            "max_ns": self.max_ns,
        })
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} req/s  p50 {}  p99 {}  p99.9 {}  max {}  ({} requests, {} errors, {} ms)",
            self.per_sec,
            Micros(self.p50_ns),
            Micros(self.p99_ns),
            Micros(self.p999_ns),
            Micros(self.max_ns),
            self.requests,
            self.errors,
            self.elapsed.as_millis()
        )
    }
}

/// `count` events over `elapsed`, per second, rounded down (0 for an empty interval).
pub fn per_sec(count: u64, elapsed: Duration) -> u64 {
    let ns = elapsed.as_nanos();
    if ns == 0 {
        return 0;
    }
    u64::try_from(u128::from(count) * 1_000_000_000 / ns).unwrap_or(u64::MAX)
}

/// A duration in ns shown as microseconds with one decimal (`12.3 µs`).
#[derive(Clone, Copy, Debug)]
pub struct Micros(pub u64);

impl std::fmt::Display for Micros {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tenths = (self.0 + 50) / 100;
        write!(f, "{}.{} µs", tenths / 10, tenths % 10)
    }
}

/// `a / b` as text with two decimals (`1.25×`), or `n/a` when `b` is 0.
pub fn ratio(a: u64, b: u64) -> String {
    if b == 0 {
        return "n/a".to_owned();
    }
    let hundredths = (u128::from(a) * 100 + u128::from(b) / 2) / u128::from(b);
    format!("{}.{:02}×", hundredths / 100, hundredths % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(n: u64) -> Duration {
        Duration::from_nanos(n)
    }

    #[test]
    fn percentiles_of_a_uniform_run() {
        let mut l = Latencies::new();
        for i in 1..=1000u64 {
            l.record(ns(i * 1000)); // 1 µs ..= 1000 µs
        }
        assert_eq!(l.count(), 1000);
        // HDR keeps 3 significant figures: within 0.1 % of the exact rank value.
        let near = |got: u64, want: u64| got >= want && got <= want + want / 1000;
        assert!(near(l.quantile_ns(0.5), 500_000), "{}", l.quantile_ns(0.5));
        assert!(
            near(l.quantile_ns(0.99), 990_000),
            "{}",
            l.quantile_ns(0.99)
        );
        assert!(
            near(l.quantile_ns(0.999), 999_000),
            "{}",
            l.quantile_ns(0.999)
        );
        assert!(near(l.max_ns(), 1_000_000));
    }

    #[test]
    fn a_tail_shows_in_p99_but_not_p50() {
        let mut l = Latencies::new();
        for _ in 0..980 {
            l.record(ns(10_000));
        }
        for _ in 0..20 {
            l.record(ns(5_000_000));
        }
        assert!(l.quantile_ns(0.5) < 10_100);
        assert!(l.quantile_ns(0.99) >= 5_000_000);
    }

    #[test]
    fn empty_and_out_of_range_values() {
        let mut l = Latencies::new();
        assert_eq!((l.quantile_ns(0.99), l.max_ns()), (0, 0));
        l.record(Duration::ZERO);
        l.record(Duration::from_secs(3600));
        assert_eq!(l.count(), 2);
        assert_eq!(l.quantile_ns(0.0), 1);
        assert!(l.max_ns() >= LATENCY_MAX.as_nanos() as u64);
    }

    #[test]
    fn merge_adds_counts() {
        let (mut a, mut b) = (Latencies::new(), Latencies::new());
        a.record(ns(1_000));
        b.record(ns(3_000));
        b.record(ns(3_000));
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert!(a.quantile_ns(0.5) >= 3_000);
        assert!(a.quantile_ns(0.0) < 1_002);
    }

    #[test]
    fn throughput_and_formatting() {
        assert_eq!(per_sec(1000, Duration::from_millis(500)), 2000);
        assert_eq!(per_sec(7, Duration::ZERO), 0);
        assert_eq!(per_sec(u64::MAX, ns(1)), u64::MAX);
        assert_eq!(Micros(12_345).to_string(), "12.3 µs");
        assert_eq!(Micros(999_960).to_string(), "1000.0 µs");
        assert_eq!(ratio(150, 100), "1.50×");
        assert_eq!(ratio(2, 3), "0.67×");
        assert_eq!(ratio(1, 0), "n/a");
        let mut l = Latencies::new();
        l.record(ns(2_000));
        let s = Summary::new(&l, 10, 1, Duration::from_millis(5));
        assert_eq!(s.per_sec, 2000);
        assert_eq!(s.to_json()["errors"], 1);
        assert!(s.to_string().starts_with("2000 req/s  p50 2.0 µs"));
    }
}
