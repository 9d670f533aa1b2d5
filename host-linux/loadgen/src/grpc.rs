//! gRPC load: N concurrent callers, each submitting unique transactions one at a time for a
//! fixed duration, either to a sidecar (`SubmitTransaction`) or directly to an upstream
//! (`ApplyBatch` with one transaction per call). One HTTP/2 channel carries every caller.
//!
//! A call counts as an error when it fails, or when its receipt says it was not committed.

use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::latency::{Latencies, Summary};
use heidi_grpc::proto::sidecar_client::SidecarClient;
use heidi_grpc::proto::upstream_client::UpstreamClient;
use heidi_grpc::proto::{Receipt, Transaction, TransactionBatch, Triple};
use heidi_grpc::tls::{ClientTlsFiles, IdentityFiles, TlsError, client_config};

/// Which service the callers call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GrpcTarget {
    /// A sidecar: `Sidecar.SubmitTransaction`.
    Sidecar,
    /// An upstream directly: `Upstream.ApplyBatch` with one transaction per call.
    Upstream,
}

/// One gRPC load run.
#[derive(Clone, Debug)]
pub struct GrpcLoadConfig {
    /// `http://HOST:PORT`, or `https://…` with [`tls`](Self::tls).
    pub endpoint: String,
    /// Which service to call.
    pub target: GrpcTarget,
    /// Concurrent callers, each with one call in flight (at least 1).
    pub callers: usize,
    /// How long callers start new calls; calls in flight then finish.
    pub duration: Duration,
    /// TLS for `https://` endpoints.
    pub tls: Option<ClientTlsConfig>,
    /// Idempotency keys are `PREFIX-CALLER-SEQ`: give each run against the same upstream its
    /// own prefix, or its keys are answered as duplicates.
    pub key_prefix: String,
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct GrpcReport {
    /// Calls (errors included) per second, and latency percentiles.
    pub summary: Summary,
    /// The first error seen, if any.
    pub first_error: Option<String>,
}

/// Per-call timeout: no call waits longer than this.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects (failing fast if the endpoint is unreachable) and runs the load.
pub async fn run(config: &GrpcLoadConfig) -> Result<GrpcReport, tonic::transport::Error> {
    let mut endpoint = Endpoint::from_shared(config.endpoint.clone())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(CALL_TIMEOUT);
    if let Some(tls) = &config.tls {
        endpoint = endpoint.tls_config(tls.clone())?;
    }
    let channel = endpoint.connect().await?;
    let deadline = Instant::now() + config.duration;
    let start = Instant::now();
    let callers: Vec<_> = (0..config.callers.max(1))
        .map(|i| {
            let caller = Caller {
                channel: channel.clone(),
                target: config.target,
                prefix: format!("{}-{i}", config.key_prefix),
            };
            tokio::spawn(caller.run(deadline))
        })
        .collect();
    let mut total = Tally::default();
    for caller in callers {
        match caller.await {
            Ok(t) => total.merge(t),
            Err(e) => total.error(format!("caller task failed: {e}")),
        }
    }
    let elapsed = start.elapsed();
    Ok(GrpcReport {
        summary: Summary::new(&total.latencies, total.calls, total.errors, elapsed),
        first_error: total.first_error,
    })
}

#[derive(Default)]
struct Tally {
    latencies: Latencies,
    calls: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.merge(&other.latencies);
        self.calls += other.calls;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

struct Caller {
    channel: Channel,
    target: GrpcTarget,
    prefix: String,
}

impl Caller {
    async fn run(self, deadline: Instant) -> Tally {
        let mut sidecar = SidecarClient::new(self.channel.clone());
        let mut upstream = UpstreamClient::new(self.channel.clone());
        let mut tally = Tally::default();
        let mut seq = 0u64;
        while Instant::now() < deadline {
            let tx = transaction(format!("{}-{seq}", self.prefix));
            seq += 1;
            let t0 = Instant::now();
            let outcome = match self.target {
                GrpcTarget::Sidecar => sidecar
                    .submit_transaction(tx)
                    .await
                    .map(|r| r.into_inner().receipt),
                GrpcTarget::Upstream => upstream
                    .apply_batch(TransactionBatch {
                        transactions: vec![tx],
                    })
                    .await
                    .map(|r| r.into_inner().receipts.into_iter().next()),
            };
            tally.latencies.record(t0.elapsed());
            tally.calls += 1;
            if let Err(e) = check(outcome) {
                tally.error(e);
            }
        }
        tally
    }
}

fn check(outcome: Result<Option<Receipt>, tonic::Status>) -> Result<(), String> {
    match outcome {
        Err(status) => Err(format!("{:?}: {}", status.code(), status.message())),
        Ok(None) => Err("reply without a receipt".to_owned()),
        Ok(Some(r)) if !r.committed => Err(format!("not committed: {}", r.error)),
        Ok(Some(_)) => Ok(()),
    }
}

fn transaction(key: String) -> Transaction {
    Transaction {
        additions: vec![Triple {
            subject: format!("urn:heidi-bench:{key}"),
            predicate: "urn:heidi-bench:seen".to_owned(),
            object: "1".to_owned(),
            graph: String::new(),
        }],
        idempotency_key: key,
        actor: "heidi-bench".to_owned(),
        timestamp_ms: heidi_common::clock::wall_now().as_unix_millis(),
        ..Default::default()
    }
}

/// `heidi-bench grpc` flags.
#[derive(Args, Debug)]
pub struct GrpcArgs {
    /// The endpoint: http://HOST:PORT, or https://… with --ca.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub endpoint: String,
    /// Which service: `sidecar` (SubmitTransaction) or `upstream` (ApplyBatch, 1 tx per call).
    #[arg(long, value_enum, default_value_t = GrpcTarget::Sidecar)]
    pub target: GrpcTarget,
    /// Concurrent callers, one call in flight each.
    #[arg(long, short = 'c', default_value_t = 64)]
    pub callers: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    pub duration_s: u64,
    /// Idempotency key prefix (default: random per run, so runs never collide).
    #[arg(long)]
    pub key_prefix: Option<String>,
    /// CA certificate (PEM) for an https:// endpoint.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS (with --key).
    #[arg(long, value_name = "FILE", requires = "key", requires = "ca")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS (with --cert).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the endpoint's host).
    #[arg(long, requires = "ca")]
    pub domain: Option<String>,
    /// Client runtime threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

impl GrpcArgs {
    /// The run these flags describe (reads the TLS files).
    pub fn config(&self) -> Result<GrpcLoadConfig, TlsError> {
        let tls = match &self.ca {
            None => None,
            Some(ca) => Some(client_config(&ClientTlsFiles {
                ca: ca.clone(),
                identity: self
                    .cert
                    .clone()
                    .zip(self.key.clone())
                    .map(|(cert, key)| IdentityFiles { cert, key }),
                domain: self.domain.clone(),
            })?),
        };
        let key_prefix = self.key_prefix.clone().unwrap_or_else(|| {
            let nonce = heidi_common::clock::random_key().map_or(0, |k| {
                u64::from_le_bytes([k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]])
            });
            format!("bench-{nonce:016x}")
        });
        Ok(GrpcLoadConfig {
            endpoint: self.endpoint.clone(),
            target: self.target,
            callers: self.callers,
            duration: Duration::from_secs(self.duration_s),
            tls,
            key_prefix,
        })
    }
}
