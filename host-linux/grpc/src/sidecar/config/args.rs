//! `heidi-sidecar`'s command-line flags (clap). Flags win over the environment, which wins
//! over the configuration file, which wins over the defaults.

use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

const AFTER_HELP: &str = "\
PRECEDENCE:
  flags > environment > configuration file (--config) > defaults. A bad value stops start-up
  (exit 2) with a message naming the flag, variable or file key it came from.

ENVIRONMENT (the seed's names):
  LISTEN_ADDR                 as --listen (default 127.0.0.1:50051)
  WARM_ORCHESTRATOR_ENDPOINT  as --upstream (default http://localhost:50052)
  BATCH_SIZE                  as --batch-size (default 8; 1 ..= 8, above 8 is refused)
  BATCH_TIMEOUT_MS            as --batch-timeout-ms (default 100; 0 ..= 60000)
  BATCH_MAX_BYTES             as --batch-max-bytes (default 4128768; 1 ..= 4194304)
  HEIDI_LOG                   as --log (default info)

CONFIGURATION FILE (--config; section [sidecar]; every key optional, unknown keys are errors):
  [sidecar]           listen, allow_remote, upstream, batch_size, batch_timeout_ms,
                      batch_max_bytes,
                      queue_capacity (1024), max_in_flight (8), upstream_deadline_ms (2000),
                      metrics_listen (off), jitter_seed (random), log
  [sidecar.retry]     max_attempts (4), base_delay_ms (100), max_delay_ms (1000),
                      multiplier (2), jitter (equal | full | none)
  [sidecar.budget]    window_ms (10000), ratio_permille (200), min_retries_per_sec (10)
  [sidecar.breaker]   failure_threshold (5), reset_timeout_ms (60000), success_threshold (1)
  [sidecar.tls]       cert, key, client_ca       (the listener; client_ca turns on mTLS)
  [sidecar.upstream_tls] ca, cert, key, domain   (the upstream client; cert+key for mTLS)

RETRIES:
  max_attempts counts every upstream call of a batch, the first included: 4 means one call
  and up to 3 retries, after 100, 200 and 400 ms (nominal; equal jitter draws each delay in
  [d/2, d]). Retries resend the same batch with the same idempotency keys; the retry budget
  and an open breaker stop them early.

STATUS CODES:
  INVALID_ARGUMENT    empty or over-long idempotency_key; a transaction above
                      batch_max_bytes; a request that does not decode
  RESOURCE_EXHAUSTED  the submission queue is full (answered at once), or the upstream's
                      key table is full (heidi-reason: key_capacity; not retried)
  UNAVAILABLE         the upstream breaker is open (metadata retry-after-ms), the upstream
                      is down, or the sidecar is shutting down
  DEADLINE_EXCEEDED   the upstream did not answer within upstream_deadline_ms
  INTERNAL            the upstream's reply did not hold one receipt per transaction

SIGNALS AND EXIT STATUS:
  SIGINT/SIGTERM stop accepting, flush the pending batch, answer every caller and exit 0.
  Exit 2: bad configuration; exit 1: any other start-up or runtime failure.

docs/SIDECAR.md has the details.";

/// heidi-sidecar: a local gRPC proxy that batches transactions toward an upstream ("warm
/// orchestrator"), with idempotent retries, a retry budget and a circuit breaker.
#[derive(Parser, Debug, Default, Clone)]
#[command(name = "heidi-sidecar", version, after_long_help = AFTER_HELP)]
pub struct Args {
    /// TOML configuration file (its `[sidecar]` section; see below).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// gRPC listen address [env: LISTEN_ADDR] [default: 127.0.0.1:50051]. A non-loopback
    /// address also needs --allow-remote.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Permit a non-loopback --listen or --metrics-listen address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Upstream URL, http:// or https:// [env: WARM_ORCHESTRATOR_ENDPOINT]
    /// [default: http://localhost:50052].
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Transactions per upstream call, 1 ..= 8 [env: BATCH_SIZE] [default: 8].
    #[arg(long, value_name = "N")]
    pub batch_size: Option<u64>,
    /// Longest a transaction waits for its batch to fill, in ms [env: BATCH_TIMEOUT_MS]
    /// [default: 100].
    #[arg(long, value_name = "MS")]
    pub batch_timeout_ms: Option<u64>,
    /// Largest encoded batch sent upstream, in bytes: a batch goes before the next transaction
    /// would take it past this; one transaction above it is refused (INVALID_ARGUMENT). At
    /// most the upstream message limit, 4194304 [env: BATCH_MAX_BYTES] [default: 4128768].
    #[arg(long, value_name = "BYTES")]
    pub batch_max_bytes: Option<u64>,
    /// Transactions waiting for a batch before callers get RESOURCE_EXHAUSTED [default: 1024].
    #[arg(long, value_name = "N")]
    pub queue_capacity: Option<u64>,
    /// Batches in flight upstream at once (retry waits included) [default: 8].
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<u64>,
    /// Deadline of every upstream call, in ms [default: 2000].
    #[arg(long, value_name = "MS")]
    pub upstream_deadline_ms: Option<u64>,
    /// Upstream calls per batch, the first included (4 = 3 retries) [default: 4].
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u64>,
    /// Delay before the first retry, in ms; doubles per retry [default: 100].
    #[arg(long, value_name = "MS")]
    pub retry_base_delay_ms: Option<u64>,
    /// Retries allowed per 1000 upstream requests in the budget window [default: 200].
    #[arg(long, value_name = "PERMILLE")]
    pub budget_ratio_permille: Option<u64>,
    /// Consecutive upstream failures that open the breaker [default: 5].
    #[arg(long, value_name = "N")]
    pub breaker_failure_threshold: Option<u64>,
    /// How long the breaker stays open before a probe, in ms [default: 60000].
    #[arg(long, value_name = "MS")]
    pub breaker_reset_timeout_ms: Option<u64>,
    /// Serve Prometheus metrics on http://ADDR/metrics (loopback unless --allow-remote)
    /// [default: off].
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Listener certificate chain (PEM); with --tls-key turns TLS on.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Listener private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to: turns mTLS on.
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// CA (PEM) the upstream's certificate must chain to (needs an https:// upstream).
    #[arg(long, value_name = "FILE")]
    pub upstream_tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) presented to the upstream (mTLS).
    #[arg(long, value_name = "FILE")]
    pub upstream_tls_cert: Option<PathBuf>,
    /// Client private key (PEM) for --upstream-tls-cert.
    #[arg(long, value_name = "FILE")]
    pub upstream_tls_key: Option<PathBuf>,
    /// Seed of the retry jitter (reproducible runs) [default: random at start].
    #[arg(long, value_name = "U64")]
    pub jitter_seed: Option<u64>,
    /// Log filter, e.g. `info` or `heidi_grpc=debug` [env: HEIDI_LOG] [default: info].
    #[arg(long)]
    pub log: Option<String>,
}

/// How retry delays are spread (the core's [`heidi_core::retry::Jitter`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JitterKind {
    /// Uniform in [d/2, d].
    #[default]
    Equal,
    /// Uniform in [0, d].
    Full,
    /// Exactly d.
    None,
}
