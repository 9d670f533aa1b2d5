//! The sidecar's Prometheus metrics (prometheus-client), served on `GET /metrics` when a
//! metrics address is configured. Every name carries the `heidi_sidecar_` prefix.

use heidi_core::batcher::FlushReason;
use heidi_core::breaker::State;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets, linear_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// Labels of a flushed batch.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `size`, `linger` or `shutdown`.
    pub reason: &'static str,
}

/// Labels of an upstream call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `apply_batch` or `query`.
    pub method: &'static str,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

/// Labels of a refused submission.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    /// `queue_full`, `breaker_open`, `invalid_argument` or `shutting_down`.
    pub reason: &'static str,
}

/// Every metric of the sidecar.
pub struct SidecarMetrics {
    registry: Registry,
    batch_size: Histogram,
    flushes: Family<ReasonLabels, Counter>,
    retries: Counter,
    resubmissions: Counter,
    breaker_state: Gauge,
    upstream_latency: Family<CallLabels, Histogram>,
    rejected: Family<RejectLabels, Counter>,
    queued: Gauge,
}

impl std::fmt::Debug for SidecarMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SidecarMetrics")
    }
}

impl Default for SidecarMetrics {
    fn default() -> SidecarMetrics {
        SidecarMetrics::new()
    }
}

/// The gauge value of a breaker state: 0 closed, 1 half-open, 2 open, 3 forced open,
/// 4 disabled.
pub fn breaker_state_value(state: State) -> i64 {
    match state {
        State::Closed => 0,
        State::HalfOpen => 1,
        State::Open => 2,
        State::ForcedOpen => 3,
        State::Disabled => 4,
    }
}

impl SidecarMetrics {
    /// A registry with every metric registered.
    pub fn new() -> SidecarMetrics {
        let mut registry = Registry::with_prefix("heidi_sidecar");
        let batch_size = Histogram::new(linear_buckets(1.0, 1.0, 8));
        registry.register(
            "batch_size",
            "Transactions per upstream ApplyBatch call",
            batch_size.clone(),
        );
        let flushes = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "batch_flush_count",
            "Batches sent upstream, by what made them due (size, linger, shutdown)",
            flushes.clone(),
        );
        let retries = Counter::default();
        registry.register(
            "retry_count",
            "Upstream ApplyBatch retries (attempts after the first)",
            retries.clone(),
        );
        let resubmissions = Counter::default();
        registry.register(
            "resubmission_count",
            "Upstream ApplyBatch calls sent again without a refused transaction, or one \
             transaction at a time (not retries)",
            resubmissions.clone(),
        );
        let breaker_state = Gauge::default();
        registry.register(
            "circuit_breaker_state",
            "Upstream breaker: 0 closed, 1 half-open, 2 open, 3 forced open, 4 disabled",
            breaker_state.clone(),
        );
        let upstream_latency = Family::<CallLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(1e-4, 2.0, 16))
        });
        registry.register(
            "upstream_latency_seconds",
            "Duration of upstream calls, by method and outcome",
            upstream_latency.clone(),
        );
        let rejected = Family::<RejectLabels, Counter>::default();
        registry.register(
            "rejected",
            "Submissions refused before reaching a batch, by reason",
            rejected.clone(),
        );
        let queued = Gauge::default();
        registry.register("queued", "Transactions waiting for a batch", queued.clone());
        SidecarMetrics {
            registry,
            batch_size,
            flushes,
            retries,
            resubmissions,
            breaker_state,
            upstream_latency,
            rejected,
            queued,
        }
    }

    /// A batch of `size` went upstream for `reason` ([`FlushReason::Manual`] is a shutdown
    /// flush).
    pub fn batch(&self, size: usize, reason: FlushReason) {
        self.batch_size.observe(size as f64);
        let reason = match reason {
            FlushReason::Size => "size",
            FlushReason::Linger => "linger",
            FlushReason::Manual => "shutdown",
        };
        self.flushes.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// One retry was sent.
    pub fn retry(&self) {
        self.retries.inc();
    }

    /// One call was sent again after a refusal of one of its transactions.
    pub fn resubmission(&self) {
        self.resubmissions.inc();
    }

    /// Re-submissions sent so far.
    pub fn resubmissions(&self) -> u64 {
        self.resubmissions.get()
    }

    /// Retries sent so far.
    pub fn retries(&self) -> u64 {
        self.retries.get()
    }

    /// Batches flushed so far for `reason` (`size`, `linger`, `shutdown`).
    pub fn flushes(&self, reason: &'static str) -> u64 {
        self.flushes.get_or_create(&ReasonLabels { reason }).get()
    }

    /// The breaker is in `state`.
    pub fn breaker(&self, state: State) {
        self.breaker_state.set(breaker_state_value(state));
    }

    /// An upstream call of `method` took `took`.
    pub fn upstream_call(&self, method: &'static str, ok: bool, took: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.upstream_latency
            .get_or_create(&CallLabels { method, outcome })
            .observe(took.as_secs_f64());
    }

    /// A submission was refused for `reason`.
    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&RejectLabels { reason }).inc();
    }

    /// `n` transactions wait for a batch.
    pub fn set_queued(&self, n: usize) {
        self.queued.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        match prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            Ok(()) => out,
            Err(e) => format!("# encoding failed: {e}\n"),
        }
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<SidecarMetrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let metrics = Arc::clone(&metrics);
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_appear_in_the_exposition() {
        let m = SidecarMetrics::new();
        m.batch(8, FlushReason::Size);
        m.batch(3, FlushReason::Linger);
        m.batch(1, FlushReason::Manual);
        m.retry();
        m.breaker(State::Open);
        m.upstream_call("apply_batch", true, Duration::from_millis(2));
        m.rejected("queue_full");
        m.set_queued(5);
        let text = m.encode();
        for needle in [
            "heidi_sidecar_batch_size_count 3",
            "heidi_sidecar_batch_flush_count_total{reason=\"size\"} 1",
            "heidi_sidecar_batch_flush_count_total{reason=\"linger\"} 1",
            "heidi_sidecar_batch_flush_count_total{reason=\"shutdown\"} 1",
            "heidi_sidecar_retry_count_total 1",
            "heidi_sidecar_circuit_breaker_state 2",
            "heidi_sidecar_upstream_latency_seconds_count{method=\"apply_batch\",outcome=\"ok\"} 1",
            "heidi_sidecar_rejected_total{reason=\"queue_full\"} 1",
            "heidi_sidecar_queued 5",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        assert_eq!(m.retries(), 1);
        assert_eq!(m.flushes("size"), 1);
    }
}
