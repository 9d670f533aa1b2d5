//! Start-up and shutdown: configuration → journal (verified, torn tail cut) → listeners →
//! readiness (`sd_notify READY=1`) → serve → on SIGTERM/SIGINT drain, seal, exit 0.

use super::audit::AuditCounts;
use super::config::{self, Args, Config, LogFormat};
use super::inflight::Inflight;
use super::metrics::Metrics;
use super::policy_file::PolicyFiles;
use super::policy_start::StartPolicy;
use super::state::{Shared, VERSION};
use super::{http, socket_file, unix};
use crate::kernel::{Kernel, KernelSeeds};
use heidi_common::JournalEntry;
use heidi_common::clock::{Clock, random_key};
use heidi_common::endpoint::EndpointEnv;
use heidi_core::journal::{DAEMON_STAGE, DAEMON_STARTED, DAEMON_STOPPED, Started, Stopped};
use heidi_store::{Journal, JournalConfig, OpenReport, load_key};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, watch};

/// Exit status for a configuration error (the message names the field).
const EXIT_CONFIG: u8 = 2;
/// Exit status when a file in `OUT_DIR` failed verification (journal, seals, policy.json):
/// an operator must look; the message names the file and the reason.
const EXIT_REFUSED: u8 = 3;

/// What the operator accepted for this start only (command-line flags, never a setting).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Accept {
    /// `--accept-unsealed-journal`.
    pub(crate) unsealed_journal: bool,
    /// `--accept-policy-file`.
    pub(crate) policy_file: bool,
}

/// Why [`run`] stopped with an error.
#[derive(Debug)]
pub(crate) enum Stop {
    /// A file in `OUT_DIR` failed verification ([`EXIT_REFUSED`]).
    Refused(String),
    /// Anything else (exit 1).
    Failed(String),
}

impl From<String> for Stop {
    fn from(why: String) -> Stop {
        Stop::Failed(why)
    }
}

/// `heidid`'s `main`: parse, configure, run until a signal, and report how it ended. With
/// `--daemon`, starts the detached daemon and returns once it listens (module
/// [`detach`](super::detach)).
pub fn main(args: Args) -> ExitCode {
    let detached = args.daemon_child;
    if args.daemon && !detached {
        return super::detach::parent();
    }
    if detached {
        if let Err(e) = super::detach::child_setsid() {
            eprintln!("heidid: cannot start a session of its own: {e}");
            return ExitCode::FAILURE;
        }
    }
    let config = match on_own_stack(|| config::load(&args, &EndpointEnv::from_process())) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("heidid: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(e) = init_logging(&config) {
        eprintln!("heidid: configuration error in log.level: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    if let Err(e) = super::fd_limit::ensure(config.limits.max_connections) {
        eprintln!("heidid: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("heidid: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let accept = Accept {
        unsealed_journal: args.accept_unsealed_journal,
        policy_file: args.accept_policy_file,
    };
    // Boxed: the future holds the start-up's state, which would otherwise sit on the main
    // thread's stack (and keep its pages resident) for the daemon's life.
    match runtime.block_on(Box::pin(run(config, detached, accept))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop::Refused(e)) => {
            tracing::error!(error = %e, "heidid refused to start");
            eprintln!("heidid: {e}");
            ExitCode::from(EXIT_REFUSED)
        }
        Err(Stop::Failed(e)) => {
            tracing::error!(error = %e, "heidid stopped");
            eprintln!("heidid: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) -> Result<(), String> {
    let filter =
        tracing_subscriber::EnvFilter::try_new(&config.log_filter).map_err(|e| e.to_string())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    }
    .map_err(|e| e.to_string())
}

fn seeds() -> std::io::Result<KernelSeeds> {
    Ok(KernelSeeds {
        key_hasher: random_key()?,
        lease_ids: random_key()?,
        idempotency_tokens: random_key()?,
    })
}

async fn open_journal(
    config: &Config,
    metrics: &Metrics,
    accept: Accept,
) -> Result<(Journal, OpenReport), Stop> {
    let j = &config.journal;
    let mut jc = JournalConfig::new(j.out_dir.clone(), j.seal_key.clone());
    jc.run_id = j.run_id.clone();
    jc.accept_unsealed = accept.unsealed_journal;
    jc.seal_every_lines = j.seal_every_lines;
    jc.seal_interval = j.seal_interval;
    jc.max_batch = j.group_commit_max_batch;
    jc.queue_capacity = j.queue_capacity;
    jc.segment_max_bytes = j.segment_max_bytes;
    jc.segment_max_age = j.segment_max_age;
    jc.retain_segments = j.retain_segments;
    jc.retain_age = j.retain_age;
    jc.on_fsync = Some(metrics.fsync_observer());
    jc.carry = Some(std::sync::Arc::new(super::policy_start::retained_policy));
    let (journal, report) = tokio::task::spawn_blocking(move || Journal::open(jc))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| {
            let why = format!("cannot open the journal in {}: {e}", j.out_dir.display());
            match e.kind() {
                std::io::ErrorKind::InvalidData => Stop::Refused(why),
                _ => Stop::Failed(why),
            }
        })?;
    if report.unsealed_accepted > 0 {
        tracing::warn!(
            lines = report.unsealed_accepted,
            "--accept-unsealed-journal: accepted a journal without seals (journaled)"
        );
    }
    if let Some(why) = &report.anchor_accepted {
        tracing::warn!(
            anchor = %report.anchor.display(),
            why = %why,
            "--accept-unsealed-journal: accepted seals behind the journal's anchor (journaled)"
        );
    }
    tracing::info!(
        run_id = %report.run_id,
        lines = report.lines,
        sealed_lines = report.sealed_lines,
        cut_bytes = report.cut_bytes,
        created = report.created,
        segments = report.segments,
        temp_files_removed = report.temp_files_removed,
        path = %journal.path().display(),
        anchor = %report.anchor.display(),
        "journal open"
    );
    super::out_dir::warn_if_shared(&j.out_dir);
    Ok((journal, report))
}

/// The policy to start with ([`policy_start`](super::policy_start)), its files written;
/// refused when `policy.json` does not match the journal (unless `--accept-policy-file`).
async fn start_policy(
    config: &Config,
    journal: &Journal,
    report: &OpenReport,
    configured: crate::kernel::Policy,
    accept: Accept,
) -> Result<(PolicyFiles, StartPolicy), Stop> {
    let key_path = config.journal.seal_key.clone();
    let journal_path = journal.path().to_path_buf();
    let sealed_lines = report.sealed_lines;
    let files = PolicyFiles::new(
        config.journal.out_dir.clone(),
        load_key(&key_path).map_err(|e| format!("seal key: {e}"))?,
        journal.run_id().to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let last = super::policy_start::last_journaled(&journal_path, sealed_lines)?;
        let start = super::policy_start::decide(&files, last, configured, accept.policy_file)
            .map_err(Stop::Refused)?;
        start.write_files(&files)?;
        Ok((files, start))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Runs `f` on a short-lived thread with a large stack and returns its result. The policy
/// tables (a few hundred KiB each) pass through the stack on their way to the heap; that
/// thread's stack is given back when it ends, where the main thread's would stay resident
/// for the daemon's life.
fn on_own_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("heidid-build".into())
            .stack_size(BUILD_STACK_BYTES)
            .spawn_scoped(scope, f)
            .expect("cannot start a thread")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The stack of [`on_own_stack`]'s thread.
const BUILD_STACK_BYTES: usize = 16 << 20;

/// Runs the daemon until a signal; `detached`: tell the `--daemon` parent once listening.
async fn run(mut config: Config, detached: bool, accept: Accept) -> Result<(), Stop> {
    // Handlers first: a SIGTERM during start-up or right after READY=1 is remembered and
    // drains once serving has begun; it never kills the daemon mid-write.
    let signals = Signals::install()?;
    let seeds = seeds().map_err(|e| format!("cannot draw random seeds: {e}"))?;
    let audit_seed = random_key().map_err(|e| format!("cannot draw random seeds: {e}"))?;
    // Built with the configured policy; rebuilt below if the journal names another. The
    // policy's copies are made on the build thread too (a copy passes through the stack).
    let capacity = config.capacity;
    let (kernel, configured, for_start) = on_own_stack(|| {
        let configured = std::mem::take(&mut config.policy);
        let kernel = Kernel::with_capacity(seeds, configured.clone(), capacity);
        let for_start = configured.clone();
        (Arc::new(Mutex::new(kernel)), configured, for_start)
    });
    let metrics = Metrics::new(kernel.clone());
    let _lock = super::instance_lock::acquire(&config.journal.out_dir)
        .map_err(|e| format!("cannot lock {}: {e}", config.journal.out_dir.display()))?;
    let (journal, report) = open_journal(&config, &metrics, accept).await?;
    let (policy_files, start) = start_policy(&config, &journal, &report, for_start, accept).await?;
    if start.policy != configured || start.version != 1 {
        let (policy, version, capacity) = (start.policy.clone(), start.version, config.capacity);
        on_own_stack(|| {
            let mut rebuilt = Kernel::with_capacity(seeds, policy, capacity);
            rebuilt.restore_version(version);
            *kernel.lock().unwrap_or_else(|p| p.into_inner()) = rebuilt;
        });
    }
    tracing::info!(version = start.version, "{}", start.entry.message);
    journal
        .append(start.entry)
        .await
        .map_err(|e| format!("cannot append to the journal: {e}"))?;
    let clock = Clock::start();

    let std_listener = socket_file::bind(
        &config.socket_path,
        config.socket_mode,
        config.limits.max_connections,
    )
    .map_err(|e| e.to_string())?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| e.to_string())?;
    let unix_listener =
        tokio::net::UnixListener::from_std(std_listener).map_err(|e| e.to_string())?;
    let tcp_listener = match config.http_addr {
        Some(addr) => Some(
            tcp_listener(addr, config.limits.max_connections)
                .map_err(|e| format!("cannot bind HTTP on {addr}: {e}"))?,
        ),
        None => None,
    };
    let http_bound = tcp_listener.as_ref().and_then(|l| l.local_addr().ok());

    let idempotency = super::idempotency_file::open_and_restore(
        &config.journal.out_dir,
        config.capacity.idempotency_slots,
        config.limits.max_inflight as usize,
        &kernel,
        clock,
    )
    .await?;
    let pipeline = super::stages::start(&config, &journal, clock).await?;
    let max_connections = config.limits.max_connections as usize;
    let max_inflight = config.limits.max_inflight;
    let buffers = super::buffers::ConnBuffers::new(config.limits.request_max_bytes);
    let shared = Arc::new(Shared {
        config,
        clock,
        started: std::time::Instant::now(),
        kernel,
        journal,
        metrics,
        inflight: Inflight::new(max_inflight),
        connections: Default::default(),
        ready: AtomicBool::new(false),
        policy_lock: tokio::sync::Mutex::new(()),
        policy_files,
        event_tasks: Mutex::new(tokio::task::JoinSet::new()),
        pipeline,
        audit: AuditCounts::new(audit_seed),
        idempotency,
        buffers,
    });
    let socket = shared.config.socket_path.display();
    let listening = Started {
        version: VERSION,
        pid: std::process::id(),
        socket: &socket,
        http: http_bound.as_ref().map(|a| a as &dyn std::fmt::Display),
    }
    .to_string();
    journal_event(
        &shared,
        JournalEntry::info(DAEMON_STAGE, DAEMON_STARTED, listening.clone()),
    )
    .await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let unix_conns = Arc::new(Semaphore::new(max_connections));
    let http_conns = Arc::new(Semaphore::new(max_connections));
    let mut accept_loops = vec![tokio::spawn(unix::serve(
        shared.clone(),
        unix_listener,
        unix_conns.clone(),
        stop_rx.clone(),
    ))];
    if let Some(tcp) = tcp_listener {
        accept_loops.push(tokio::spawn(http::serve(
            shared.clone(),
            tcp,
            http_conns.clone(),
            stop_rx.clone(),
        )));
    }
    let ticker = tokio::spawn(tick_kernel(shared.clone(), stop_rx.clone()));
    let auditor = tokio::spawn(flush_audit(shared.clone(), stop_rx.clone()));
    let trimmer = tokio::spawn(super::memory::trim_after_storms(
        shared.clone(),
        stop_rx.clone(),
    ));

    shared.ready.store(true, Ordering::Release);
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    tracing::info!(workers = shared.config.workers, "{listening}; ready");
    if detached {
        // Nobody may be left to tell (the parent was killed): serve on regardless.
        if let Err(e) = super::detach::child_ready() {
            tracing::warn!("cannot tell the --daemon parent that heidid is ready: {e}");
        }
    }

    let signal_name = signals.wait().await;
    tracing::info!(signal = signal_name, "shutting down: draining connections");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    shared.ready.store(false, Ordering::Release);
    let _ = stop_tx.send(true);
    for accept_loop in accept_loops {
        let _ = accept_loop.await;
    }
    socket_file::remove(&shared.config.socket_path);
    drain(&shared, &[unix_conns, http_conns], max_connections).await;
    let _ = ticker.await;
    let _ = auditor.await;
    let _ = trimmer.await;
    shared.audit.flush();
    shared.pipeline.shutdown().await;
    shared.finish_kernel_events().await;

    let message = Stopped {
        signal: signal_name,
    }
    .to_string();
    journal_event(
        &shared,
        JournalEntry::info(DAEMON_STAGE, DAEMON_STOPPED, message),
    )
    .await?;
    let mut stopped = super::stages::daemon_fields();
    stopped.insert("status".into(), "stopped".into());
    stopped.insert("journal_lines".into(), shared.journal.lines().into());
    if let Err(e) = shared.pipeline.write_final_state(stopped).await {
        tracing::error!("cannot write state.json: {e}");
    }
    let journal = shared.journal.clone();
    tokio::task::spawn_blocking(move || journal.close())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot seal the journal: {e}"))?;
    tracing::info!("journal sealed; bye");
    Ok(())
}

/// A listening TCP socket whose backlog has room for a burst of `connections` (with the
/// default of 128, a burst beyond it loses SYNs and waits a second or more to retry).
fn tcp_listener(
    addr: std::net::SocketAddr,
    connections: u32,
) -> std::io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(socket_file::listen_backlog(connections))?;
    socket.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(socket.into())
}

/// Waits until every connection has returned its permit, or the drain timeout passes.
async fn drain(shared: &Shared, pools: &[Arc<Semaphore>], max_connections: usize) {
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let wait = async {
        for pool in pools {
            let _ = pool.acquire_many(all).await;
        }
    };
    if tokio::time::timeout(shared.config.limits.drain_timeout, wait)
        .await
        .is_err()
    {
        let open = shared.connections.open();
        tracing::warn!(open, "drain timeout: closing with connections still open");
    }
}

async fn journal_event(shared: &Shared, entry: JournalEntry) -> Result<(), String> {
    shared
        .journal
        .append(entry)
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot append to the journal: {e}"))
}

/// Runs the kernel's housekeeping at its deadlines (at least once a second).
async fn tick_kernel(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let next = {
            let kernel = shared.kernel.lock().unwrap_or_else(|p| p.into_inner());
            kernel.poll_timeout()
        };
        let now = shared.clock.now();
        let second = now.saturating_add(heidi_core::Duration::from_secs(1));
        let at = next.map_or(second, |t| t.min(second));
        tokio::select! {
            _ = tokio::time::sleep_until(shared.clock.to_std(at).into()) => {}
            _ = stop.changed() => return,
        }
        let mut kernel = shared.kernel.lock().unwrap_or_else(|p| p.into_inner());
        kernel.tick(shared.clock.now());
        shared.journal_kernel_events(&mut kernel);
    }
}

/// Logs the audit counts every `log.audit_interval_ms` (and once more at shutdown, by the
/// caller, after the connections have drained).
async fn flush_audit(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(shared.config.audit_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => shared.audit.flush(),
            _ = stop.changed() => return,
        }
    }
}

/// SIGTERM and SIGINT, caught from the moment they are installed.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, String> {
        let term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
        Ok(Signals { term, int })
    }

    async fn wait(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
