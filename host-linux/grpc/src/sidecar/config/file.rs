//! The TOML configuration file: section `[sidecar]`. Every key is optional; unknown keys are
//! errors.

use super::args::JitterKind;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[sidecar]`.
    #[serde(default)]
    pub sidecar: SidecarSection,
}

/// `[sidecar]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidecarSection {
    /// gRPC listen address.
    pub listen: Option<SocketAddr>,
    /// Permit non-loopback listen and metrics addresses.
    pub allow_remote: Option<bool>,
    /// Upstream URL.
    pub upstream: Option<String>,
    /// Transactions per upstream call (1 ..= 8).
    pub batch_size: Option<u64>,
    /// Batch linger in ms.
    pub batch_timeout_ms: Option<u64>,
    /// Largest encoded batch in bytes.
    pub batch_max_bytes: Option<u64>,
    /// Submission queue capacity.
    pub queue_capacity: Option<u64>,
    /// Batches in flight upstream at once.
    pub max_in_flight: Option<u64>,
    /// Deadline of every upstream call in ms.
    pub upstream_deadline_ms: Option<u64>,
    /// Prometheus listen address (absent: off).
    pub metrics_listen: Option<SocketAddr>,
    /// Seed of the retry jitter.
    pub jitter_seed: Option<u64>,
    /// Log filter.
    pub log: Option<String>,
    /// `[sidecar.retry]`.
    #[serde(default)]
    pub retry: RetrySection,
    /// `[sidecar.budget]`.
    #[serde(default)]
    pub budget: BudgetSection,
    /// `[sidecar.breaker]`.
    #[serde(default)]
    pub breaker: BreakerSection,
    /// `[sidecar.tls]`: the listener.
    #[serde(default)]
    pub tls: ListenTlsSection,
    /// `[sidecar.upstream_tls]`: the upstream client.
    #[serde(default)]
    pub upstream_tls: UpstreamTlsSection,
}

/// `[sidecar.retry]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySection {
    /// Upstream calls per batch, the first included.
    pub max_attempts: Option<u64>,
    /// Delay before the first retry, ms.
    pub base_delay_ms: Option<u64>,
    /// Cap on every delay, ms.
    pub max_delay_ms: Option<u64>,
    /// Growth per retry.
    pub multiplier: Option<u64>,
    /// Jitter kind.
    pub jitter: Option<JitterKind>,
}

/// `[sidecar.budget]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSection {
    /// Sliding window, ms.
    pub window_ms: Option<u64>,
    /// Retries per 1000 requests.
    pub ratio_permille: Option<u64>,
    /// Retries per second allowed regardless of traffic.
    pub min_retries_per_sec: Option<u64>,
}

/// `[sidecar.breaker]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSection {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: Option<u64>,
    /// Open time before a probe, ms.
    pub reset_timeout_ms: Option<u64>,
    /// Successful probes that close it.
    pub success_threshold: Option<u64>,
}

/// `[sidecar.tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenTlsSection {
    /// Certificate chain, PEM.
    pub cert: Option<PathBuf>,
    /// Private key, PEM.
    pub key: Option<PathBuf>,
    /// Client CA, PEM (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// `[sidecar.upstream_tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsSection {
    /// CA of the upstream's certificate, PEM.
    pub ca: Option<PathBuf>,
    /// Client certificate, PEM (mTLS).
    pub cert: Option<PathBuf>,
    /// Client key, PEM.
    pub key: Option<PathBuf>,
    /// Name to verify in the upstream's certificate (default: the URL's host).
    pub domain: Option<String>,
}
