//! The reference upstream: a real gRPC server implementing `Upstream` (`ApplyBatch`, `Query`)
//! with injectable faults, for the sidecar's tests and benchmarks and `heidi upstream`.
//!
//! # Behaviour of `ApplyBatch`, in order
//!
//! 1. Wait [`UpstreamConfig::latency`].
//! 2. Validate with the core's rules ([`heidi_core::txn_check`]): 1 to 8 transactions, every
//!    idempotency key 1 to 128 bytes; else `INVALID_ARGUMENT`.
//! 3. Fail with `UNAVAILABLE` when set down ([`ReferenceUpstream::set_down`]), inside an outage
//!    window, or by the seeded failure rate.
//! 4. Wait for a service lane and its [`UpstreamConfig::cost`] (one cost per call, whatever
//!    the batch size: what batching amortises).
//! 5. Apply atomically: a key seen before is answered with its first receipt and
//!    `duplicate = true` and never applied again; a new key is applied and recorded. When the
//!    dedupe table has no slot for a new key, `RESOURCE_EXHAUSTED` with the metadata
//!    `heidi-reason: key_capacity` and `heidi-refused-index: N` (the position of the first
//!    new key that did not fit), and nothing is applied (the upstream refuses rather than
//!    forgets; the sidecar treats the reason as a refusal of transaction N, not as overload,
//!    and sends the others again without it).
//!
//! A call that fails at any step applies nothing, so a retry of it is safe. `Query` gets the
//! latency but no injected failure, so tests can read the counters during an outage.
//!
//! # Counters from outside
//!
//! `Query` with text [`QUERY_STATS`] (`stats`) answers `success = true` and the [`Stats`] as a
//! JSON object in `result`; with `applied KEY` ([`QUERY_APPLIED`]) it answers
//! `{"key": KEY, "applies": N, "receipt_id": "r-…" | null}`. Any other text: `success = false`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use heidi_grpc::upstream::{ReferenceUpstream, UpstreamConfig};
//! use std::time::Duration;
//! let config = UpstreamConfig { failure_rate_ppm: 200_000, cost: Duration::from_millis(2), ..Default::default() };
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let running = ReferenceUpstream::new(config)?.spawn(listener, None)?;
//! println!("upstream at {}", running.endpoint());
//! // … run the sidecar against it …
//! assert_eq!(running.upstream().stats().keys_applied_more_than_once, 0);
//! running.stop().await?;
//! # Ok(()) }
//! ```

pub mod cli;
mod config;
mod faults;
mod service;
mod stats;
mod store;
#[cfg(test)]
mod tests;

pub use config::{
    ConfigError, MAX_CAPACITY, MAX_CONCURRENCY, MAX_DELAY, MAX_OUTAGES, Outage, PPM,
    UpstreamConfig, parse_rate,
};
pub use service::{QUERY_APPLIED, QUERY_STATS, UpstreamService};
pub use stats::Stats;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};

use crate::proto::upstream_server::UpstreamServer;
use faults::{Faults, Lanes};
use heidi_common::clock::Clock;
use service::Shared;
use store::Store;

/// How long [`ReferenceUpstream::serve`] lets calls in flight finish after its shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A handle on one reference upstream: its service, counters and switches. Cheap to clone;
/// every clone sees the same state. Outage windows count from [`ReferenceUpstream::new`].
#[derive(Clone, Debug)]
pub struct ReferenceUpstream {
    shared: Arc<Shared>,
}

impl ReferenceUpstream {
    /// A fresh upstream (empty dedupe table, zero counters); the configuration is validated.
    pub fn new(config: UpstreamConfig) -> Result<ReferenceUpstream, ConfigError> {
        config.validate()?;
        let shared = Shared {
            clock: Clock::start(),
            started: std::time::Instant::now(),
            faults: Faults::new(&config),
            lanes: Lanes::new(&config),
            counters: Default::default(),
            store: Mutex::new(Store::new(config.capacity, config.seed)),
            config,
        };
        Ok(ReferenceUpstream {
            shared: Arc::new(shared),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &UpstreamConfig {
        &self.shared.config
    }

    /// Time since [`new`](Self::new): the clock of the outage windows.
    pub fn uptime(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// How many times the transaction with idempotency key `key` was applied (0: never).
    pub fn applies(&self, key: &str) -> u32 {
        self.shared.store().applies(key)
    }

    /// The receipt id `key` was applied under, if it was.
    pub fn receipt_of(&self, key: &str) -> Option<String> {
        self.shared.store().receipt_of(key)
    }

    /// Keys applied more than once, with their counts, sorted (empty unless exactly-once is
    /// broken).
    pub fn keys_applied_more_than_once(&self) -> Vec<(String, u32)> {
        self.shared.store().over_applied()
    }

    /// Sets the down switch: while it is set every `ApplyBatch` fails with `UNAVAILABLE` and is
    /// counted as an outage failure.
    pub fn set_down(&self, down: bool) {
        self.shared.faults.set_down(down);
    }

    /// The tonic service, to mount on a server of the caller's.
    pub fn service(&self) -> UpstreamServer<UpstreamService> {
        UpstreamServer::new(UpstreamService {
            shared: Arc::clone(&self.shared),
        })
    }

    /// Serves on `listener` (with TLS when `tls` is given) until `shutdown` completes; then
    /// stops accepting and gives calls in flight up to [`SHUTDOWN_GRACE`] before closing every
    /// connection (a client that never acknowledges the HTTP/2 GOAWAY cannot hold it open).
    pub async fn serve(
        &self,
        listener: TcpListener,
        tls: Option<ServerTlsConfig>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        let mut server = Server::builder();
        if let Some(tls) = tls {
            server = server.tls_config(tls).map_err(ServeError::Tls)?;
        }
        // Without TCP_NODELAY a reply can wait ~40 ms for a delayed ACK (Nagle).
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let (drain, draining) = oneshot::channel::<()>();
        let server = server
            .add_service(self.service())
            .serve_with_incoming_shutdown(incoming, async {
                let _ = draining.await;
            });
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => return result.map_err(ServeError::Transport),
            () = shutdown => {}
        }
        let _ = drain.send(());
        match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
            Ok(result) => result.map_err(ServeError::Transport),
            Err(_elapsed) => Ok(()),
        }
    }

    /// Serves on `listener` in a background task until [`Running::stop`] or drop. Must be
    /// called inside a tokio runtime.
    pub fn spawn(
        &self,
        listener: TcpListener,
        tls: Option<ServerTlsConfig>,
    ) -> Result<Running, ServeError> {
        let addr = listener.local_addr().map_err(ServeError::Io)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let upstream = self.clone();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            upstream.serve(listener, tls, shutdown).await
        });
        Ok(Running {
            addr,
            upstream: self.clone(),
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A reference upstream serving in a background task; dropping it stops the server.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    upstream: ReferenceUpstream,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Running {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (plain text; use `https://` with a TLS client).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The handle: counters and switches.
    pub fn upstream(&self) -> &ReferenceUpstream {
        &self.upstream
    }

    /// Stops accepting, lets calls in flight finish, and returns the server's outcome.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| ServeError::Io(std::io::Error::other(e)))?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Why serving failed.
#[derive(Debug)]
pub enum ServeError {
    /// The TLS configuration was refused.
    Tls(tonic::transport::Error),
    /// The server failed while serving.
    Transport(tonic::transport::Error),
    /// The listener failed (or the server task panicked).
    Io(std::io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Tls(e) => write!(f, "TLS configuration: {e}"),
            ServeError::Transport(e) => write!(f, "gRPC server: {e}"),
            ServeError::Io(e) => write!(f, "listener: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}
