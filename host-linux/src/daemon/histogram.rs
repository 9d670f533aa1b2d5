//! A histogram that takes many equal observations at once: the pipelined requests answered by
//! one write share one latency, so a connection records them with one lock, not one each.
//! It is encoded exactly as prometheus-client's `Histogram` (same buckets, same exposition).

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::sync::{Arc, Mutex};

/// A Prometheus histogram with [`BatchHistogram::observe_n`].
#[derive(Clone, Debug)]
pub(super) struct BatchHistogram {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    sum: f64,
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
                sum: 0.0,
                count: 0,
                buckets,
            })),
        }
    }

    /// Records `n` observations of `value`.
    // The exposition format keeps the sum as a float, as prometheus-client's own histogram.
    #[allow(clippy::float_arithmetic)]
    pub(super) fn observe_n(&self, value: f64, n: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.sum += value * n as f64;
        inner.count += n;
        if let Some((_, bucket)) = inner.buckets.iter_mut().find(|(bound, _)| *bound >= value) {
            *bucket += n;
        }
    }
}

impl TypedMetric for BatchHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for BatchHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        encoder.encode_histogram::<NoLabelSet>(inner.sum, inner.count, &inner.buckets, None)
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
        // Values chosen to be exact in binary so the sums compare equal.
        for (value, n) in [(0.0, 1), (0.5, 3), (0.25, 2), (1e9, 1), (0.0078125, 4)] {
            batch.observe_n(value, n);
            for _ in 0..n {
                single.observe(value);
            }
        }
        let a = text(|r| r.register("lat", "latency", batch.clone()));
        let b = text(|r| r.register("lat", "latency", single.clone()));
        assert_eq!(a, b);
        assert!(a.contains("lat_count 11"), "{a}");
    }
}
