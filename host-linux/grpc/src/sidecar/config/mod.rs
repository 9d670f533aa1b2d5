//! `heidi-sidecar`'s configuration: flags > environment > TOML file (`[sidecar]`) > defaults,
//! validated as a whole before anything starts. An error names the flag, variable or file key
//! the bad value came from.

mod args;
mod file;
mod layer;
#[cfg(test)]
mod tests;

pub use args::{Args, JitterKind};
pub use file::FileConfig;

use crate::tls::{ClientTlsFiles, IdentityFiles, ServerTlsFiles};
use heidi_core::batcher::MAX_BATCH_ITEMS;
use heidi_core::breaker::BreakerConfig;
use heidi_core::retry::{BudgetConfig, Jitter, RetryPolicy};
use layer::Layers;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

/// The default gRPC listen address (loopback; the original bound 0.0.0.0).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// The default upstream.
pub const DEFAULT_UPSTREAM: &str = "http://localhost:50052";
/// The largest message the upstream client sends or receives (gRPC's usual 4 MiB receive
/// limit, which the reference upstream keeps); `BATCH_MAX_BYTES` may not exceed it.
pub const UPSTREAM_MESSAGE_LIMIT_BYTES: usize = 4 * 1024 * 1024;
/// The default `BATCH_MAX_BYTES`: the message limit less 64 KiB, room for the envelope.
pub const DEFAULT_BATCH_MAX_BYTES: usize = UPSTREAM_MESSAGE_LIMIT_BYTES - 64 * 1024;
const _: () = assert!(DEFAULT_BATCH_MAX_BYTES < UPSTREAM_MESSAGE_LIMIT_BYTES);

/// The validated configuration a sidecar runs with.
#[derive(Clone, Debug)]
pub struct SidecarConfig {
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// Upstream URL (`http://` or `https://`).
    pub upstream: String,
    /// Transactions per upstream call, 1 ..= 8.
    pub batch_size: usize,
    /// Longest a transaction waits for its batch to fill.
    pub batch_linger: heidi_core::Duration,
    /// Largest encoded batch sent upstream, in bytes (`BATCH_MAX_BYTES`), at most
    /// [`UPSTREAM_MESSAGE_LIMIT_BYTES`].
    pub batch_max_bytes: usize,
    /// Transactions waiting to enter a batch before callers get RESOURCE_EXHAUSTED.
    pub queue_capacity: usize,
    /// Batches upstream at once, counting those waiting to be retried.
    pub max_in_flight: usize,
    /// Deadline of every upstream call.
    pub upstream_deadline: std::time::Duration,
    /// Retry schedule; `max_attempts` counts the first call.
    pub retry: RetryPolicy,
    /// Retry budget.
    pub budget: BudgetConfig,
    /// The upstream's breaker.
    pub breaker: BreakerConfig,
    /// Prometheus `/metrics` address; `None`: off.
    pub metrics_listen: Option<SocketAddr>,
    /// Listener TLS; `None`: plaintext.
    pub tls: Option<ServerTlsFiles>,
    /// Upstream client TLS; `None`: plaintext (an `http://` upstream).
    pub upstream_tls: Option<ClientTlsFiles>,
    /// Seed of the retry jitter; `None`: drawn from the OS at start.
    pub jitter_seed: Option<u64>,
    /// Log filter.
    pub log_filter: String,
}

/// A configuration error: where the value came from and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The flag, variable or file key, e.g. `BATCH_SIZE` or `sidecar.retry.max_attempts`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration error in {}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn err(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// The seed's environment variables (read once; tests build one by hand).
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// `LISTEN_ADDR`.
    pub listen_addr: Option<String>,
    /// `WARM_ORCHESTRATOR_ENDPOINT`.
    pub warm_orchestrator_endpoint: Option<String>,
    /// `BATCH_SIZE`.
    pub batch_size: Option<String>,
    /// `BATCH_TIMEOUT_MS`.
    pub batch_timeout_ms: Option<String>,
    /// `BATCH_MAX_BYTES`.
    pub batch_max_bytes: Option<String>,
    /// `HEIDI_LOG`.
    pub log: Option<String>,
}

impl Env {
    /// The variables of this process (unset and non-UTF-8 values count as absent; an empty
    /// value is a value, and is refused where it does not parse).
    pub fn from_process() -> Env {
        let var = |name: &str| std::env::var(name).ok();
        Env {
            listen_addr: var("LISTEN_ADDR"),
            warm_orchestrator_endpoint: var("WARM_ORCHESTRATOR_ENDPOINT"),
            batch_size: var("BATCH_SIZE"),
            batch_timeout_ms: var("BATCH_TIMEOUT_MS"),
            batch_max_bytes: var("BATCH_MAX_BYTES"),
            log: var("HEIDI_LOG"),
        }
    }
}

impl SidecarConfig {
    /// The defaults (no flag, no variable, no file).
    pub fn defaults() -> SidecarConfig {
        match resolve(&Args::default(), &Env::default(), FileConfig::default()) {
            Ok(config) => config,
            Err(e) => unreachable!("the defaults are valid: {e}"),
        }
    }
}

/// Reads `--config` (if any) and resolves the whole configuration against `env`.
pub fn load(args: &Args, env: &Env) -> Result<SidecarConfig, ConfigError> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    resolve(args, env, file)
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let field = format!("--config {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| err(&field, e.to_string()))?;
    toml::from_str(&text).map_err(|e| err(&field, e.to_string().trim_end().to_owned()))
}

/// Combines flags, environment and file into a validated [`SidecarConfig`].
pub fn resolve(args: &Args, env: &Env, file: FileConfig) -> Result<SidecarConfig, ConfigError> {
    let f = &file.sidecar;
    let l = Layers { args, env, file: f };
    let allow_remote = args.allow_remote || f.allow_remote.unwrap_or(false);
    let listen = l.listen()?;
    check_loopback(&listen, allow_remote)?;
    let metrics_listen = match (args.metrics_listen, f.metrics_listen) {
        (Some(a), _) => Some(("--metrics-listen", a)),
        (None, Some(a)) => Some(("sidecar.metrics_listen", a)),
        (None, None) => None,
    };
    if let Some(m) = metrics_listen {
        check_loopback(&layer::Sourced::new(m.0, m.1), allow_remote)?;
    }
    let upstream = l.upstream()?;
    let upstream_tls = upstream_tls(args, f, &upstream)?;
    let deadline_ms = l.num(
        (args.upstream_deadline_ms, "--upstream-deadline-ms"),
        None,
        (f.upstream_deadline_ms, "sidecar.upstream_deadline_ms"),
        2_000,
        1..=600_000,
    )?;
    Ok(SidecarConfig {
        listen: listen.value,
        upstream: upstream.value,
        batch_size: l.batch_size(MAX_BATCH_ITEMS as u64)? as usize,
        batch_linger: heidi_core::Duration::from_millis(l.batch_timeout_ms()?),
        batch_max_bytes: l.batch_max_bytes(
            DEFAULT_BATCH_MAX_BYTES as u64,
            UPSTREAM_MESSAGE_LIMIT_BYTES as u64,
        )? as usize,
        queue_capacity: l.num(
            (args.queue_capacity, "--queue-capacity"),
            None,
            (f.queue_capacity, "sidecar.queue_capacity"),
            1_024,
            1..=1_048_576,
        )? as usize,
        max_in_flight: l.num(
            (args.max_in_flight, "--max-in-flight"),
            None,
            (f.max_in_flight, "sidecar.max_in_flight"),
            8,
            1..=256,
        )? as usize,
        upstream_deadline: std::time::Duration::from_millis(deadline_ms),
        retry: l.retry()?,
        budget: l.budget()?,
        breaker: l.breaker(deadline_ms)?,
        metrics_listen: metrics_listen.map(|m| m.1),
        tls: listen_tls(args, f)?,
        upstream_tls,
        jitter_seed: args.jitter_seed.or(f.jitter_seed),
        log_filter: args
            .log
            .clone()
            .or_else(|| env.log.clone())
            .or_else(|| f.log.clone())
            .unwrap_or_else(|| "info".into()),
    })
}

fn check_loopback(
    addr: &layer::Sourced<SocketAddr>,
    allow_remote: bool,
) -> Result<(), ConfigError> {
    if addr.value.ip().is_loopback() || allow_remote {
        return Ok(());
    }
    Err(err(
        &addr.source,
        format!(
            "{} is not a loopback address; pass --allow-remote (or sidecar.allow_remote = true) to listen on it",
            addr.value
        ),
    ))
}

/// Converts the retry jitter kind to the core's.
pub(crate) fn jitter(kind: JitterKind) -> Jitter {
    match kind {
        JitterKind::Equal => Jitter::Equal,
        JitterKind::Full => Jitter::Full,
        JitterKind::None => Jitter::None,
    }
}

fn listen_tls(
    args: &Args,
    f: &file::SidecarSection,
) -> Result<Option<ServerTlsFiles>, ConfigError> {
    let cert = args.tls_cert.clone().or_else(|| f.tls.cert.clone());
    let key = args.tls_key.clone().or_else(|| f.tls.key.clone());
    let client_ca = args
        .tls_client_ca
        .clone()
        .or_else(|| f.tls.client_ca.clone());
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(ServerTlsFiles {
            identity: IdentityFiles { cert, key },
            client_ca,
        })),
        (None, None) if client_ca.is_none() => Ok(None),
        (None, None) => Err(err(
            "--tls-client-ca / sidecar.tls.client_ca",
            "mTLS needs a server certificate and key as well (--tls-cert, --tls-key)",
        )),
        (Some(_), None) => Err(err(
            "--tls-key / sidecar.tls.key",
            "required with a TLS certificate",
        )),
        (None, Some(_)) => Err(err(
            "--tls-cert / sidecar.tls.cert",
            "required with a TLS key",
        )),
    }
}

fn upstream_tls(
    args: &Args,
    f: &file::SidecarSection,
    upstream: &layer::Sourced<String>,
) -> Result<Option<ClientTlsFiles>, ConfigError> {
    let t = &f.upstream_tls;
    let ca = args.upstream_tls_ca.clone().or_else(|| t.ca.clone());
    let cert = args.upstream_tls_cert.clone().or_else(|| t.cert.clone());
    let key = args.upstream_tls_key.clone().or_else(|| t.key.clone());
    let https = upstream.value.starts_with("https://");
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => Some(IdentityFiles { cert, key }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(err(
                "--upstream-tls-key / sidecar.upstream_tls.key",
                "required with an upstream client certificate",
            ));
        }
        (None, Some(_)) => {
            return Err(err(
                "--upstream-tls-cert / sidecar.upstream_tls.cert",
                "required with an upstream client key",
            ));
        }
    };
    let any = ca.is_some() || identity.is_some() || t.domain.is_some();
    match (https, ca) {
        (true, Some(ca)) => Ok(Some(ClientTlsFiles {
            ca,
            identity,
            domain: t.domain.clone(),
        })),
        (true, None) => Err(err(
            "--upstream-tls-ca / sidecar.upstream_tls.ca",
            format!("required for the https upstream {}", upstream.value),
        )),
        (false, _) if any => Err(err(
            &upstream.source,
            "upstream TLS settings need an https:// upstream",
        )),
        (false, _) => Ok(None),
    }
}
