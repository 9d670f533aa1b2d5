//! `heidi-bench`: load generator for `heidid` over its Unix socket, the raw echo peer, the
//! fsync-per-event baseline (`scripts/bench-daemon.sh` runs them side by side with Redis), and
//! gRPC load on a sidecar or an upstream (`heidi-bench grpc`).

use clap::{Args, Parser, Subcommand};
use heidi_loadgen::{self as loadgen, BenchMethod, LoadConfig, Stop, Summary};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Benchmarks heidid: rate-limit checks, pings and journal appends over the Unix socket.
#[derive(Parser, Debug)]
#[command(name = "heidi-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sends requests to a daemon socket and prints throughput and latency percentiles.
    /// Each connection makes one unmeasured round trip before the clock starts.
    Load(LoadArgs),
    /// Starts an echo server on a temporary socket in this process and loads it like `load`
    /// (the raw Unix-socket round trip of the same message).
    Rawrtt(LoadArgs),
    /// Serves the raw echo peer on SOCKET until killed (to pin it apart from the client).
    EchoServer {
        /// Socket path to create (must not exist).
        #[arg(long)]
        socket: PathBuf,
    },
    /// Appends journal-sized lines with one fdatasync each, in DIR; prints events/s.
    FsyncBaseline {
        /// Directory on the filesystem to test (the daemon's OUT_DIR).
        #[arg(long)]
        dir: PathBuf,
        /// Events to append.
        #[arg(long, default_value_t = 2000)]
        events: u64,
        /// Bytes per line, newline included.
        #[arg(long, default_value_t = 320)]
        line_bytes: usize,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Submits unique transactions over gRPC from concurrent callers, to a sidecar or
    /// directly to an upstream, for a duration; prints transactions/s and latency percentiles.
    Grpc(loadgen::grpc::GrpcArgs),
}

#[derive(Args, Debug)]
struct LoadArgs {
    /// The daemon's Unix socket (ignored by `rawrtt`).
    #[arg(long, default_value = "/tmp/heidi-kernel.sock")]
    socket: PathBuf,
    /// Concurrent connections.
    #[arg(long, short = 'c', default_value_t = 50)]
    connections: usize,
    /// Requests in flight per connection.
    #[arg(long, short = 'P', default_value_t = 1)]
    pipeline: usize,
    /// Total requests (default 200000 unless --duration-s is given).
    #[arg(long, short = 'n', conflicts_with = "duration_s")]
    requests: Option<u64>,
    /// Run for this many seconds instead of a request count.
    #[arg(long)]
    duration_s: Option<u64>,
    /// Which request to send.
    #[arg(long, value_enum, default_value_t = BenchMethod::Check)]
    method: BenchMethod,
    /// Open loop: total requests per second (latency counted from the scheduled send time).
    #[arg(long)]
    rate: Option<u64>,
    /// Client runtime threads (1 = tokio current_thread).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

impl LoadArgs {
    fn config(&self) -> LoadConfig {
        let stop = match (self.requests, self.duration_s) {
            (Some(n), _) => Stop::Requests(n),
            (None, Some(s)) => Stop::After(Duration::from_secs(s)),
            (None, None) => Stop::Requests(200_000),
        };
        LoadConfig {
            socket: self.socket.clone(),
            connections: self.connections,
            pipeline: self.pipeline,
            stop,
            rate_per_s: self.rate,
            body: self.method.body().to_owned(),
        }
    }
}

fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

/// Prints one run; `from_send` (open loop) is nested in the JSON object or a second line.
fn print(
    label: &str,
    summary: &Summary,
    from_send: Option<&Summary>,
    first_error: Option<&str>,
    json: bool,
) {
    if json {
        let mut v = summary.to_json();
        v["label"] = label.into();
        v["first_error"] = first_error.into();
        v["from_send"] = from_send.map(Summary::to_json).into();
        println!("{v}");
    } else {
        println!("{label}: {summary}");
        if let Some(s) = from_send {
            println!("{label}, from the actual send: {s}");
        }
        if let Some(e) = first_error {
            println!("  first error reply: {e}");
        }
    }
}

fn load(args: &LoadArgs, socket: Option<PathBuf>) -> Result<(), String> {
    let mut config = args.config();
    if let Some(socket) = socket {
        config.socket = socket;
    }
    let rt = runtime(args.threads).map_err(|e| format!("cannot start the runtime: {e}"))?;
    let report = rt
        .block_on(loadgen::run(&config))
        .map_err(|e| format!("{}: {e}", config.socket.display()))?;
    let mode = args
        .rate
        .map_or("closed".to_owned(), |r| format!("open@{r}/s"));
    let label = format!(
        "{:?} c={} P={} {mode}",
        args.method, args.connections, args.pipeline
    );
    let from_send = report.from_send.as_ref();
    print(
        &label,
        &report.summary,
        from_send,
        report.first_error.as_deref(),
        args.json,
    );
    Ok(())
}

fn rawrtt(args: &LoadArgs) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("heidi-bench-echo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let socket = dir.join("echo.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket)
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    std::thread::spawn(move || loadgen::echo::serve_blocking(listener));
    let result = load(args, Some(socket.clone()));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn grpc(args: &loadgen::grpc::GrpcArgs) -> Result<(), String> {
    let config = args.config().map_err(|e| e.to_string())?;
    let rt = runtime(args.threads).map_err(|e| format!("cannot start the runtime: {e}"))?;
    let report = rt
        .block_on(loadgen::grpc::run(&config))
        .map_err(|e| format!("{}: {e}", config.endpoint))?;
    let label = format!("grpc {:?} callers={}", args.target, args.callers);
    print(
        &label,
        &report.summary,
        None,
        report.first_error.as_deref(),
        args.json,
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Load(args) => load(args, None),
        Command::Rawrtt(args) => rawrtt(args),
        Command::Grpc(args) => grpc(args),
        Command::EchoServer { socket } => std::os::unix::net::UnixListener::bind(socket)
            .and_then(loadgen::echo::serve_blocking)
            .map_err(|e| format!("{}: {e}", socket.display())),
        Command::FsyncBaseline {
            dir,
            events,
            line_bytes,
            json,
        } => loadgen::fsync::run(dir, *events, *line_bytes)
            .map(|s| {
                print(
                    &format!("fsync-per-event {line_bytes} B"),
                    &s,
                    None,
                    None,
                    *json,
                )
            })
            .map_err(|e| format!("{}: {e}", dir.display())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("heidi-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
