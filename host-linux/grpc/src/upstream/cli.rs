//! `heidi upstream`: the reference gRPC upstream until SIGINT or SIGTERM. The `heidi` binary
//! adds [`UpstreamCommand`] to the CLI's subcommands, so the CLI library itself has no gRPC.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{ReferenceUpstream, Stats, UpstreamConfig};
use crate::tls::{IdentityFiles, ServerTlsFiles, server_config};

/// The `heidi upstream` subcommand.
#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Serve the reference gRPC upstream (`Upstream`: ApplyBatch, Query) with injectable
    /// faults, until SIGINT or SIGTERM; then print its counters as JSON.
    ///
    /// ApplyBatch: wait --latency-ms; refuse invalid batches (INVALID_ARGUMENT); fail with
    /// UNAVAILABLE inside an --outage window or at --failure-rate; hold a service lane for
    /// --cost-ms; apply atomically, answering a repeated idempotency key with its first receipt
    /// (duplicate = true); RESOURCE_EXHAUSTED when --capacity keys are recorded. A failed call
    /// applies nothing. `Query` with text `stats` returns the counters as JSON, and
    /// `applied KEY` how many times KEY was applied.
    Upstream(UpstreamArgs),
}

/// `heidi upstream` flags.
#[derive(Debug, Args)]
pub struct UpstreamArgs {
    /// Address to listen on; a non-loopback address also needs --allow-remote.
    #[arg(long, default_value = "127.0.0.1:50052", value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,
    /// Permit a non-loopback --listen address (exposes the upstream to the network).
    #[arg(long)]
    pub allow_remote: bool,
    /// Probability that an ApplyBatch call fails with UNAVAILABLE: 0 to 1 (0.2) or a
    /// percentage (20%).
    #[arg(long, default_value = "0", value_name = "RATE",
          value_parser = super::parse_rate)]
    pub failure_rate: u32,
    /// Seed of the failure draws (same seed and call order, same failures).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Delay added to every call, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
    /// Service time of one ApplyBatch call whatever its size, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub cost_ms: u64,
    /// Service lanes: ApplyBatch calls in service at once (each for --cost-ms).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub concurrency: usize,
    /// An outage window, milliseconds from the start, during which every ApplyBatch fails
    /// (repeatable), e.g. --outage 5000..8000.
    #[arg(long = "outage", value_name = "START_MS..END_MS")]
    pub outages: Vec<super::Outage>,
    /// Idempotency keys remembered; when full, new keys get RESOURCE_EXHAUSTED (never
    /// forgotten).
    #[arg(long, default_value_t = 65_536, value_name = "KEYS")]
    pub capacity: usize,
    /// Serve TLS with this certificate chain (PEM; needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: require client certificates signed by this CA (PEM; needs --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

/// Why `heidi upstream` stopped with an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeError {
    /// A bad flag, TLS file or listen address (a non-loopback one without `--allow-remote`),
    /// or the runtime or signals could not start: `heidi` exits 2.
    Usage(String),
    /// The server failed while serving: `heidi` exits 1.
    Serving(String),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Usage(e) | ServeError::Serving(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ServeError {}
/// The configuration the flags describe.
pub fn config(args: &UpstreamArgs) -> UpstreamConfig {
    UpstreamConfig {
        failure_rate_ppm: args.failure_rate,
        seed: args.seed,
        latency: Duration::from_millis(args.latency_ms),
        cost: Duration::from_millis(args.cost_ms),
        concurrency: args.concurrency,
        outages: args.outages.clone(),
        capacity: args.capacity,
    }
}

/// The TLS files the flags name, if any.
pub fn tls_files(args: &UpstreamArgs) -> Option<ServerTlsFiles> {
    let (cert, key) = args.tls_cert.clone().zip(args.tls_key.clone())?;
    Some(ServerTlsFiles {
        identity: IdentityFiles { cert, key },
        client_ca: args.tls_client_ca.clone(),
    })
}

/// A non-loopback `--listen` address needs `--allow-remote`, as the sidecar's does.
pub fn check_listen(args: &UpstreamArgs) -> Result<(), String> {
    if args.listen.ip().is_loopback() || args.allow_remote {
        return Ok(());
    }
    Err(format!(
        "--listen {} is not a loopback address; pass --allow-remote to listen on it",
        args.listen
    ))
}

/// Serves until SIGINT/SIGTERM, then returns the counters (`heidi` prints them as JSON on
/// stdout).
pub fn serve(args: &UpstreamArgs) -> Result<Stats, ServeError> {
    let usage = ServeError::Usage;
    check_listen(args).map_err(usage)?;
    let upstream = ReferenceUpstream::new(config(args)).map_err(|e| usage(e.to_string()))?;
    let tls = match tls_files(args) {
        Some(files) => Some(server_config(&files).map_err(|e| usage(e.to_string()))?),
        None => None,
    };
    let rt = tokio::runtime::Runtime::new().map_err(|e| usage(format!("runtime: {e}")))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| usage(format!("cannot listen on {}: {e}", args.listen)))?;
        let shutdown = shutdown_signal().map_err(|e| usage(format!("signals: {e}")))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!("heidi upstream: listening on {scheme}://{}", args.listen);
        upstream
            .serve(listener, tls, shutdown)
            .await
            .map_err(|e| ServeError::Serving(e.to_string()))
    })?;
    Ok(upstream.stats())
}

/// Completes at the first SIGINT or SIGTERM.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: UpstreamArgs,
    }

    fn parse(flags: &[&str]) -> UpstreamArgs {
        Wrap::try_parse_from(std::iter::once("upstream").chain(flags.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn a_remote_listen_address_needs_allow_remote() {
        assert!(check_listen(&parse(&[])).is_ok());
        assert!(check_listen(&parse(&["--listen", "[::1]:1"])).is_ok());
        let e = check_listen(&parse(&["--listen", "0.0.0.0:1"])).unwrap_err();
        assert!(
            e.contains("0.0.0.0:1") && e.contains("--allow-remote"),
            "{e}"
        );
        assert!(check_listen(&parse(&["--listen", "0.0.0.0:1", "--allow-remote"])).is_ok());
    }
}
