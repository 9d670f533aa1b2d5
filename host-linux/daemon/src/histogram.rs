//! A histogram that takes many equal observations at once: the pipelined requests answered by
//! one write share one latency, so a connection records them with one lock, not one each.
//! It is encoded exactly as prometheus-client's `Histogram` (same buckets, same exposition).

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A Prometheus histogram of durations, in seconds, with [`BatchHistogram::observe_n`].
#[derive(Clone, Debug)]
pub(super) struct BatchHistogram {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    /// Exact, in nanoseconds; converted to seconds only when encoded.
    sum_ns: u128,
    count: u64,
    /// (upper bound, observations in this bucket alone), the last bound `f64::MAX`.
    buckets: Vec<(f64, u64)>,
}

impl BatchHistogram {
    /// A histogram with these upper bounds (ascending), plus `+Inf`.
    pub(super) fn new(bounds: impl IntoIterator<Item = f64>) -> BatchHistogram {
        let buckets = bounds
            .into_iter()
            .chain([f64::MAX])
            .map(|bound| (bound, 0))
            .collect();
        BatchHistogram {
            inner: Arc::new(Mutex::new(Inner {
                sum_ns: 0,
                count: 0,
                buckets,
            })),
        }
    }

    /// Records `n` observations of `took`.
    pub(super) fn observe_n(&self, took: Duration, n: u64) {
        let seconds = took.as_secs_f64();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.sum_ns = inner
            .sum_ns
            .saturating_add(took.as_nanos().saturating_mul(u128::from(n)));
        inner.count += n;
        if let Some((_, bucket)) = inner
            .buckets
            .iter_mut()
            .find(|(bound, _)| *bound >= seconds)
        {
            *bucket += n;
        }
    }
}

/// `ns` nanoseconds as seconds (the exposition format's unit), without float arithmetic.
fn seconds(ns: u128) -> f64 {
    let secs = u64::try_from(ns / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (ns % 1_000_000_000) as u32).as_secs_f64()
}

impl TypedMetric for BatchHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for BatchHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let sum = seconds(inner.sum_ns);
        encoder.encode_histogram::<NoLabelSet>(sum, inner.count, &inner.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
    use prometheus_client::registry::Registry;

    fn text(register: impl FnOnce(&mut Registry)) -> String {
        let mut registry = Registry::default();
        register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn encodes_like_the_library_histogram() {
        let batch = BatchHistogram::new(exponential_buckets(1e-6, 4.0, 12));
        let single = Histogram::new(exponential_buckets(1e-6, 4.0, 12));
        // Values exact in binary, so the library's float sum is exact too and the texts match.
        for (value, n) in [(0.0, 1), (0.5, 3), (0.25, 2), (1e9, 1), (0.0078125, 4)] {
            batch.observe_n(Duration::from_secs_f64(value), n);
            for _ in 0..n {
                single.observe(value);
            }
        }
        let a = text(|r| r.register("lat", "latency", batch.clone()));
        let b = text(|r| r.register("lat", "latency", single.clone()));
        assert_eq!(a, b);
        assert!(a.contains("lat_count 11"), "{a}");
    }

    #[test]
    fn the_sum_is_exact_where_a_float_sum_drifts() {
        let batch = BatchHistogram::new([1e-3]);
        // 0.1 ms is not exact in binary: a float sum of ten million of them drifts.
        for _ in 0..10 {
            batch.observe_n(Duration::from_micros(100), 1_000_000);
        }
        let a = text(|r| r.register("lat", "latency", batch.clone()));
        assert!(a.contains("lat_sum 1000.0"), "{a}");
        assert!(a.contains("lat_bucket{le=\"0.001\"} 10000000"), "{a}");
        assert_eq!(seconds(u128::MAX), u64::MAX as f64, "saturates, no panic");
    }
}
