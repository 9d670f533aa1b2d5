//! Starting a sidecar ([`start`], [`start_with`] for a fake upstream), stopping it
//! gracefully ([`RunningSidecar::shutdown`]), and the binary's `main`.

use super::config::{self, Args, Env, SidecarConfig};
use super::engine::{self, EngineClient, EngineSettings, EngineTask};
use super::metrics::{self, SidecarMetrics};
use super::service::SidecarService;
use super::upstream::{GrpcUpstream, UpstreamApi};
use crate::proto::sidecar_server::SidecarServer;
use crate::tls;
use std::fmt;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

/// The largest request the sidecar decodes (twice the upstream message limit): a transaction
/// above `BATCH_MAX_BYTES` but below this gets INVALID_ARGUMENT saying why; a larger request
/// is refused by gRPC itself with OUT_OF_RANGE.
pub const MAX_REQUEST_BYTES: usize = 2 * config::UPSTREAM_MESSAGE_LIMIT_BYTES;

/// How long a stopping sidecar lets its connections close after every caller has its answer.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Why a sidecar could not start (or stopped with an error).
#[derive(Debug)]
pub enum StartError {
    /// Bad configuration (exit 2).
    Config(config::ConfigError),
    /// A TLS file could not be used (exit 2).
    Tls(tls::TlsError),
    /// A socket could not be bound, or the server failed (exit 1).
    Io(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "{e}"),
            StartError::Tls(e) => write!(f, "TLS: {e}"),
            StartError::Io(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for StartError {}

/// A sidecar serving on [`RunningSidecar::addr`].
#[derive(Debug)]
pub struct RunningSidecar {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    engine: EngineClient,
    task: EngineTask,
    stop_server: oneshot::Sender<()>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    stop_metrics: Option<(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
}

impl RunningSidecar {
    /// The gRPC address (the bound port when the configuration asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics address, when metrics are served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The engine (its snapshot, queue and metrics).
    pub fn engine(&self) -> &EngineClient {
        &self.engine
    }

    /// Graceful stop: new submissions get UNAVAILABLE, the pending batch is flushed, every
    /// caller gets its answer, then the listeners close. Connections get [`SHUTDOWN_GRACE`] to
    /// close after the HTTP/2 GOAWAY; the server then stops without waiting for the rest (a
    /// client that never answers, or a connection that never spoke HTTP/2, cannot hold the
    /// sidecar up).
    pub async fn shutdown(self) -> Result<(), StartError> {
        self.task.shutdown().await;
        let _ = self.stop_server.send(());
        let mut server = self.server;
        let served = match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
            Ok(served) => served,
            Err(_elapsed) => {
                tracing::info!("connections still open after the shutdown grace: closing");
                server.abort();
                Ok(Ok(()))
            }
        };
        if let Some((stop, join)) = self.stop_metrics {
            let _ = stop.send(());
            let _ = join.await;
        }
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StartError::Io(format!("gRPC server: {e}"))),
            Err(e) => Err(StartError::Io(format!("gRPC server task: {e}"))),
        }
    }
}

/// The engine's settings from the configuration; the jitter seed comes from the OS unless
/// configured.
fn settings(config: &SidecarConfig) -> Result<EngineSettings, StartError> {
    let jitter_seed = match config.jitter_seed {
        Some(seed) => seed,
        None => {
            let key =
                heidi_common::clock::random_key().map_err(|e| StartError::Io(e.to_string()))?;
            let mut seed = [0u8; 8];
            seed.copy_from_slice(&key[..8]);
            u64::from_le_bytes(seed)
        }
    };
    Ok(EngineSettings {
        batch_size: config.batch_size,
        linger: config.batch_linger,
        batch_max_bytes: config.batch_max_bytes,
        queue_capacity: config.queue_capacity,
        max_in_flight: config.max_in_flight,
        deadline: config.upstream_deadline,
        retry: config.retry,
        budget: config.budget,
        breaker: config.breaker,
        jitter_seed,
    })
}

/// Starts a sidecar against the gRPC upstream of `config`.
pub async fn start(config: &SidecarConfig) -> Result<RunningSidecar, StartError> {
    let client_tls = match &config.upstream_tls {
        Some(files) => Some(tls::client_config(files).map_err(StartError::Tls)?),
        None => None,
    };
    let upstream = GrpcUpstream::new(&config.upstream, client_tls, config.upstream_deadline)
        .map_err(|e| {
            StartError::Config(config::ConfigError {
                field: "upstream".into(),
                reason: e.to_string(),
            })
        })?;
    start_with(config, Arc::new(upstream)).await
}

/// Starts a sidecar against any [`UpstreamApi`] (tests use fakes).
pub async fn start_with<U: UpstreamApi>(
    config: &SidecarConfig,
    upstream: Arc<U>,
) -> Result<RunningSidecar, StartError> {
    let server_tls = match &config.tls {
        Some(files) => Some(tls::server_config(files).map_err(StartError::Tls)?),
        None => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Io(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Io(e.to_string()))?;
    let metrics = Arc::new(SidecarMetrics::new());
    let stop_metrics = match config.metrics_listen {
        Some(at) => Some(spawn_metrics(at, Arc::clone(&metrics)).await?),
        None => None,
    };
    let metrics_addr = stop_metrics.as_ref().map(|m| m.0);
    let (engine, task) = engine::spawn(settings(config)?, upstream, metrics)
        .map_err(|e| StartError::Io(format!("engine: {e}")))?;
    let mut builder = Server::builder();
    if let Some(tls) = server_tls {
        builder = builder
            .tls_config(tls)
            .map_err(|e| StartError::Io(format!("listener TLS: {e}")))?;
    }
    let service = SidecarServer::new(SidecarService::new(engine.clone()))
        .max_decoding_message_size(MAX_REQUEST_BYTES);
    let router = builder.add_service(service);
    let (stop_server, stopped) = oneshot::channel::<()>();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = stopped.await;
    }));
    tracing::info!(%addr, upstream = %config.upstream, batch_size = config.batch_size, "sidecar listening");
    Ok(RunningSidecar {
        addr,
        metrics_addr,
        engine,
        task,
        stop_server,
        server,
        stop_metrics: stop_metrics.map(|m| m.1),
    })
}

type MetricsTask = (oneshot::Sender<()>, JoinHandle<std::io::Result<()>>);

async fn spawn_metrics(
    at: SocketAddr,
    metrics: Arc<SidecarMetrics>,
) -> Result<(SocketAddr, MetricsTask), StartError> {
    let listener = TcpListener::bind(at)
        .await
        .map_err(|e| StartError::Io(format!("cannot serve metrics on {at}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Io(e.to_string()))?;
    let (stop, stopped) = oneshot::channel::<()>();
    let join = tokio::spawn(metrics::serve(listener, metrics, async {
        let _ = stopped.await;
    }));
    tracing::info!(%addr, "sidecar metrics on /metrics");
    Ok((addr, (stop, join)))
}

/// `heidi-sidecar`'s main: exit 0 after a graceful stop on SIGINT/SIGTERM, 2 on bad
/// configuration, 1 on any other failure.
pub fn main(args: Args) -> ExitCode {
    let env = Env::from_process();
    let config = match config::load(&args, &env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("heidi-sidecar: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config.log_filter);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("heidi-sidecar: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve_until_signal(&config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ (StartError::Config(_) | StartError::Tls(_))) => {
            eprintln!("heidi-sidecar: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("heidi-sidecar: {e}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn serve_until_signal(config: &SidecarConfig) -> Result<(), StartError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| StartError::Io(e.to_string()))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| StartError::Io(e.to_string()))?;
    let running = start(config).await?;
    // Readiness for scripts: the bound address on stdout.
    println!("listening {}", running.addr());
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = int.recv() => tracing::info!("SIGINT: draining"),
    }
    running.shutdown().await
}
