//! The Prometheus registry behind `GET /metrics` (prometheus-client): request counts and
//! latency per method, connections, journal fsync latency and group-commit sizes, and, read
//! from the kernel at each scrape, limiter denials and breaker states.

use super::histogram::BatchHistogram;
use crate::kernel::Kernel;
use heidi_core::proto::{Method, MethodClass};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Labels of a served request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Wire method name, or `invalid` for a request that did not parse.
    pub method: &'static str,
    /// `unix` or `http`.
    pub transport: &'static str,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// Wire method name.
    pub method: &'static str,
}

/// Labels of a refused call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabels {
    /// `read`, `mutate` or `admin`.
    pub class: &'static str,
}

/// Labels of a listener.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabels {
    /// `unix` or `http`.
    pub transport: &'static str,
}

/// The transports, in the order of [`Metrics`]' per-request handles.
const TRANSPORTS: [&str; 2] = ["unix", "http"];

/// Every metric the daemon updates directly.
pub struct Metrics {
    registry: Registry,
    /// Counters per (method or `invalid`, transport, outcome), looked up once at start so a
    /// request costs two atomic adds, not hashed label lookups.
    request_counters: Vec<Counter>,
    /// Latency histograms per method (`invalid` last).
    request_latency: Vec<BatchHistogram>,
    connections: Family<TransportLabels, Gauge>,
    rejected: Family<TransportLabels, Counter>,
    fsync: Histogram,
    group_commit: Histogram,
    /// Calls refused by `[authorization]`, per class in [`MethodClass::ALL`] order.
    forbidden: [Counter; 3],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// A registry with every metric registered; `kernel` is read at each scrape.
    pub fn new(kernel: Arc<Mutex<Kernel>>) -> Metrics {
        let mut registry = Registry::with_prefix("heidi");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests served, by method, transport and outcome",
            requests.clone(),
        );
        let latency = Family::<MethodLabels, BatchHistogram>::new_with_constructor(|| {
            BatchHistogram::new(exponential_buckets(1e-6, 4.0, 12))
        });
        registry.register(
            "request_duration_seconds",
            "Time to serve a request, by method",
            latency.clone(),
        );
        let connections = Family::<TransportLabels, Gauge>::default();
        registry.register(
            "connections",
            "Open client connections, by transport",
            connections.clone(),
        );
        let rejected = Family::<TransportLabels, Counter>::default();
        registry.register(
            "connections_rejected",
            "Connections refused because the connection limit was reached",
            rejected.clone(),
        );
        let fsync = Histogram::new(exponential_buckets(1e-5, 2.0, 16));
        registry.register(
            "journal_fsync_duration_seconds",
            "Journal fdatasync latency per group commit",
            fsync.clone(),
        );
        let group_commit = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register(
            "journal_group_commit_entries",
            "Journal lines written per fsync",
            group_commit.clone(),
        );
        let forbidden_family = Family::<ClassLabels, Counter>::default();
        registry.register(
            "requests_forbidden",
            "Calls refused by the authorization lists, by method class",
            forbidden_family.clone(),
        );
        let forbidden = MethodClass::ALL.map(|class| {
            let labels = ClassLabels {
                class: class.as_str(),
            };
            forbidden_family.get_or_create(&labels).clone()
        });
        registry.register_collector(Box::new(KernelCollector { kernel }));
        let names = Method::ALL.iter().map(|m| m.as_str()).chain(["invalid"]);
        let mut request_counters = Vec::new();
        let mut request_latency = Vec::new();
        for method in names {
            for transport in TRANSPORTS {
                for outcome in ["ok", "error"] {
                    let labels = RequestLabels {
                        method,
                        transport,
                        outcome,
                    };
                    request_counters.push(requests.get_or_create(&labels).clone());
                }
            }
            request_latency.push(latency.get_or_create(&MethodLabels { method }).clone());
        }
        Metrics {
            registry,
            request_counters,
            request_latency,
            connections,
            rejected,
            fsync,
            group_commit,
            forbidden,
        }
    }

    /// Counts a call refused by the authorization lists.
    pub fn forbidden(&self, class: MethodClass) {
        self.forbidden[class as usize].inc();
    }

    /// Counts one served request (`None`: one that did not parse) and its latency.
    pub fn request(
        &self,
        method: Option<Method>,
        transport: &'static str,
        ok: bool,
        took: Duration,
    ) {
        let mut tally = Tally::default();
        tally.record(method, ok);
        self.requests(&mut tally, transport, took);
    }

    /// Counts the requests in `tally`, which all took `took`, and empties it.
    pub fn requests(&self, tally: &mut Tally, transport: &'static str, took: Duration) {
        let t = usize::from(transport == TRANSPORTS[1]);
        for &slot in &tally.touched[..tally.len] {
            let slot = usize::from(slot);
            let (m, error) = (slot / 2, slot % 2);
            let n = std::mem::take(&mut tally.counts[slot]);
            self.request_counters[(m * 2 + t) * 2 + error].inc_by(u64::from(n));
            self.request_latency[m].observe_n(took, u64::from(n));
        }
        tally.len = 0;
    }

    /// The open-connections gauge of a transport.
    pub fn connections(&self, transport: &'static str) -> Gauge {
        self.connections
            .get_or_create(&TransportLabels { transport })
            .clone()
    }

    /// Counts a connection refused at the limit.
    pub fn rejected(&self, transport: &'static str) {
        self.rejected
            .get_or_create(&TransportLabels { transport })
            .inc();
    }

    /// A callback for the journal writer: one observation per group commit.
    pub fn fsync_observer(&self) -> Arc<dyn Fn(Duration, usize) + Send + Sync> {
        let (fsync, group) = (self.fsync.clone(), self.group_commit.clone());
        Arc::new(move |took: Duration, entries: usize| {
            fsync.observe(took.as_secs_f64());
            group.observe(entries as f64);
        })
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Slots of a [`Tally`]: (method or `invalid`, outcome).
const TALLY_SLOTS: usize = (Method::ALL.len() + 1) * 2;

/// Requests served but not yet counted in [`Metrics`], by method and outcome: a connection
/// answering pipelined requests counts them once per write, when their latency is known.
#[derive(Debug)]
pub struct Tally {
    /// Requests per slot `method * 2 + error`.
    counts: [u32; TALLY_SLOTS],
    /// The slots with a nonzero count, in `touched[..len]`.
    touched: [u8; TALLY_SLOTS],
    len: usize,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            counts: [0; TALLY_SLOTS],
            touched: [0; TALLY_SLOTS],
            len: 0,
        }
    }
}

impl Tally {
    /// Notes one served request (`None`: one that did not parse) and whether it succeeded.
    pub fn record(&mut self, method: Option<Method>, ok: bool) {
        let m = method.map_or(Method::ALL.len(), |m| m as usize);
        let slot = m * 2 + usize::from(!ok);
        if self.counts[slot] == 0 {
            // Slots number fewer than 256 (checked below).
            self.touched[self.len] = slot as u8;
            self.len += 1;
        }
        self.counts[slot] += 1;
    }

    /// Whether no request is waiting to be counted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

const _: () = assert!(TALLY_SLOTS <= 256, "tally slots are stored as u8");

/// Reads limiter denials and breaker states from the kernel at scrape time.
struct KernelCollector {
    kernel: Arc<Mutex<Kernel>>,
}

impl std::fmt::Debug for KernelCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KernelCollector")
    }
}

/// Breaker states, in the order the `heidi_breaker_state` gauge reports them.
const BREAKER_STATES: [&str; 3] = ["closed", "open", "half_open"];

impl Collector for KernelCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let stats = match self.kernel.lock() {
            Ok(kernel) => kernel.stats(),
            Err(poisoned) => poisoned.into_inner().stats(),
        };
        let mut denials = encoder.encode_descriptor(
            "limiter_denials",
            "Rate-limit requests denied, by operation",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (operation, n) in &stats.limiter_denials {
            ConstCounter::new(*n)
                .encode(denials.encode_family(&[("operation", operation.as_str())])?)?;
        }
        let mut states = encoder.encode_descriptor(
            "breaker_state",
            "1 for the state each circuit breaker is in, 0 for the others",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (name, state) in &stats.breakers {
            for s in BREAKER_STATES
                .iter()
                .chain((!BREAKER_STATES.contains(state)).then_some(state))
            {
                let labels = [("name", name.as_str()), ("state", *s)];
                ConstGauge::new(i64::from(s == state)).encode(states.encode_family(&labels)?)?;
            }
        }
        let mut keys = encoder.encode_descriptor(
            "table_keys",
            "Live keys in each kernel table",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (table, n) in [
            ("limiter", stats.limiter_keys),
            ("leases", stats.lease_keys),
            ("idempotency", stats.idempotency_keys),
            ("health", stats.health_checks),
        ] {
            ConstGauge::new(n as i64).encode(keys.encode_family(&[("table", table)])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{KernelSeeds, Policy};

    fn metrics() -> Metrics {
        let seeds = KernelSeeds {
            key_hasher: [1; 16],
            lease_ids: [2; 16],
            idempotency_tokens: [3; 16],
        };
        let kernel = Kernel::with_capacity(
            seeds,
            Policy::default(),
            crate::kernel::KernelCapacity {
                limiter_slots: 8,
                lease_slots: 8,
                idempotency_slots: 8,
                held_permits: 8,
            },
        );
        Metrics::new(Arc::new(Mutex::new(kernel)))
    }

    #[test]
    fn requests_land_on_their_own_labels() {
        let m = metrics();
        for (i, method) in Method::ALL.iter().enumerate() {
            assert_eq!(
                *method as usize, i,
                "handles are indexed by declaration order"
            );
        }
        m.request(
            Some(Method::RateLimitConsume),
            "http",
            false,
            Duration::from_micros(5),
        );
        m.request(
            Some(Method::RateLimitConsume),
            "http",
            false,
            Duration::from_micros(5),
        );
        m.request(None, "unix", true, Duration::from_micros(5));
        let text = m.encode();
        assert!(
            text.contains(r#"heidi_requests_total{method="RATE_LIMIT_CONSUME",transport="http",outcome="error"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"heidi_requests_total{method="invalid",transport="unix",outcome="ok"} 1"#
            )
        );
        assert!(
            text.contains(r#"heidi_request_duration_seconds_count{method="RATE_LIMIT_CONSUME"} 2"#)
        );
    }

    #[test]
    fn a_tally_is_counted_once_per_write_and_emptied() {
        let m = metrics();
        let mut tally = Tally::default();
        assert!(tally.is_empty());
        // The requests of one write: three checks (one refused), a ping, one that did not parse.
        for (method, ok) in [
            (Some(Method::RateLimitCheck), true),
            (Some(Method::Ping), true),
            (Some(Method::RateLimitCheck), false),
            (None, false),
            (Some(Method::RateLimitCheck), true),
        ] {
            tally.record(method, ok);
        }
        assert!(!tally.is_empty());
        m.requests(&mut tally, "unix", Duration::from_micros(250));
        assert!(tally.is_empty(), "counted requests are not counted again");
        m.requests(&mut tally, "unix", Duration::from_micros(250));
        let text = m.encode();
        for line in [
            r#"heidi_requests_total{method="RATE_LIMIT_CHECK",transport="unix",outcome="ok"} 2"#,
            r#"heidi_requests_total{method="RATE_LIMIT_CHECK",transport="unix",outcome="error"} 1"#,
            r#"heidi_requests_total{method="PING",transport="unix",outcome="ok"} 1"#,
            r#"heidi_requests_total{method="invalid",transport="unix",outcome="error"} 1"#,
            r#"heidi_request_duration_seconds_count{method="RATE_LIMIT_CHECK"} 3"#,
            r#"heidi_request_duration_seconds_sum{method="RATE_LIMIT_CHECK"} 0.00075"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
