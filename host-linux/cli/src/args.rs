//! The `heidi` command line, as clap types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use heidi_client::{BreakerOutcome, PipelineMode};
use heidi_core::journal::Level;
use heidi_core::service::TAIL_MAX_LINES;

/// heidi: talk to the heidi-kernel daemon, and verify journals offline.
///
/// The daemon is found by --endpoint, else --socket, else HEIDI_KERNEL_ENDPOINT, else
/// HEIDI_KERNEL_SOCK, else $XDG_RUNTIME_DIR/heidi-kernel.sock, else /tmp/heidi-kernel.sock.
/// HEIDI_KERNEL_TIMEOUT_MS, HEIDI_KERNEL_RETRY_ATTEMPTS, HEIDI_KERNEL_RETRY_DELAY_MS and
/// HEIDI_KERNEL_TOKEN apply as in the client library (HEIDI_KERNEL_ENABLED does not: the CLI
/// always calls the daemon).
///
/// Exit codes: 0 ok; 1 the daemon answered with an error; 2 usage or configuration error;
/// 3 daemon unavailable (or timed out); 4 journal verification failed; 141 stdout closed by
/// its reader (as after SIGPIPE).
#[derive(Debug, Parser)]
#[command(name = "heidi", version)]
pub struct Cli<X: Subcommand> {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command<X>,
}

/// Options shared by every subcommand.
#[derive(Debug, Args)]
pub struct Global {
    /// Daemon endpoint: unix:///path, /path, http://127.0.0.1:PORT (loopback only) or null.
    #[arg(long, global = true, conflicts_with = "socket")]
    pub endpoint: Option<String>,
    /// Daemon socket path (same as --endpoint unix://PATH).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Per-attempt timeout in milliseconds (connect, write and read together).
    #[arg(long, global = true, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// File holding the HTTP bearer token (mode 0600 or stricter; wins over
    /// HEIDI_KERNEL_TOKEN). The token itself is never taken as an argument, so `ps` cannot
    /// show it.
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Print the daemon's raw reply JSON (errors too, on stdout).
    #[arg(long, global = true)]
    pub json: bool,
}

/// A subcommand; `X` holds the ones the binary adds (the `heidi` binary adds `upstream`, the
/// reference gRPC upstream, so that this library needs no gRPC).
#[derive(Debug, Subcommand)]
pub enum Command<X: Subcommand> {
    /// Check that the daemon answers (PING).
    Ping,
    /// Show the daemon's status (STATUS).
    Status,
    /// Read or replace the policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Ask a rate limit.
    #[command(subcommand)]
    Limit(LimitCommand),
    /// Use a named circuit breaker.
    #[command(subcommand)]
    Breaker(BreakerCommand),
    /// Use concurrency leases.
    #[command(subcommand)]
    Lease(LeaseCommand),
    /// Verify a journal offline, or show the daemon's latest lines.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Report and read health checks.
    #[command(subcommand)]
    Health(HealthCommand),
    /// Run work at most once per key.
    #[command(subcommand)]
    Idempotency(IdempotencyCommand),
    /// Control the pipeline.
    #[command(subcommand)]
    Pipeline(PipelineCommand),
    /// The binary's own subcommands, listed after these.
    #[command(flatten)]
    Extra(X),
}

/// `heidi policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show the policy in force and its version (GET_POLICY).
    Get,
    /// Validate and apply a whole policy document atomically (APPLY_POLICY).
    Apply {
        /// The policy: a .json file, or a .toml file (converted to JSON).
        file: PathBuf,
    },
}

/// What a rate-limit command names.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// The rate-limit key.
    pub key: String,
    /// The operation: search, transform, embed, ai_generate, health_check, other, or one
    /// the policy defines under `limits` (any other name is limited as `other`).
    #[arg(long, default_value = "other")]
    pub operation: String,
    /// Tokens the call costs.
    #[arg(long, default_value_t = 1)]
    pub cost: u32,
    /// The tier whose limits apply (one the policy defines under `tiers`); without it, the
    /// policy's `default_tier`, else its top-level `limits`.
    #[arg(long)]
    pub tier: Option<String>,
}

/// `heidi limit …`.
#[derive(Debug, Subcommand)]
pub enum LimitCommand {
    /// Would a call be granted? Takes no tokens (RATE_LIMIT_CHECK).
    Check(LimitArgs),
    /// Take tokens, or learn when to retry (RATE_LIMIT_CONSUME).
    Consume(LimitArgs),
}

/// `heidi breaker …`.
#[derive(Debug, Subcommand)]
pub enum BreakerCommand {
    /// Ask a breaker for a permit (BREAKER_ACQUIRE).
    Acquire {
        /// The breaker's name.
        name: String,
    },
    /// Record the outcome of a call made under a permit (BREAKER_RECORD).
    Record {
        /// The breaker's name.
        name: String,
        /// The permit from `breaker acquire`.
        permit: String,
        /// How the call went (`abandoned`: it never ran).
        #[arg(value_enum)]
        outcome: BreakerOutcome,
        /// How long the call took (default: the time since the acquire); calls at least as
        /// slow as the breaker's `slow_call_threshold_ms` count as failures.
        #[arg(long, value_name = "MS")]
        duration_ms: Option<u64>,
    },
}

/// `heidi lease …`.
#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Acquire a lease for a key, for the policy's `leases.ttl_ms` (LEASE_ACQUIRE).
    Acquire {
        /// The key.
        key: String,
    },
    /// Extend a lease (LEASE_REFRESH).
    Refresh {
        /// The key.
        key: String,
        /// The lease id from `lease acquire`.
        id: String,
    },
    /// Release a lease (LEASE_RELEASE).
    Release {
        /// The key.
        key: String,
        /// The lease id from `lease acquire`.
        id: String,
    },
}

/// `heidi journal …`.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Verify a journal file offline (no daemon): every line, the hash chain, and the seals
    /// when a seal key is available. Prints `line N: <reason>` and exits 4 at the first fault.
    /// With a key, a journal of more than one line without any seal record (seal file
    /// deleted or emptied) also exits 4: the daemon seals a journal's first line at once.
    /// So do seals behind the journal's anchor (see --anchor).
    Verify {
        /// The journal (events.jsonl) or its directory (OUT_DIR); a rotated segment names the
        /// whole directory too. When rotated segments
        /// (events.NNNNNN.jsonl) lie beside it, every segment is checked in order, then
        /// events.jsonl; a missing, reordered or cut segment exits 4 naming it.
        file: PathBuf,
        /// The seal file (default: events.seals beside FILE, if present; with segments, the
        /// open segment's seal file).
        #[arg(long, value_name = "FILE")]
        seals: Option<PathBuf>,
        /// The seal key file, read as the daemon reads it: raw bytes, mode 0600 (default:
        /// $XDG_CONFIG_HOME/heidi-kernel/seal.key, if present).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// The journal's anchor file, the latest seal the daemon wrote (default:
        /// journal-<hash of FILE's absolute path>.anchor beside the key, if present). Seals
        /// that do not reach it (the latest seals and the journal's tail removed) exit 4.
        #[arg(long, value_name = "FILE")]
        anchor: Option<PathBuf>,
    },
    /// Show the daemon's last journal lines, one JSON event per line (JOURNAL_TAIL).
    Tail {
        /// How many lines (1 to 256).
        #[arg(short = 'n', long = "lines", default_value_t = 10,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(TAIL_MAX_LINES)))]
        n: u32,
    },
    /// Append a client event to the daemon's journal (JOURNAL_APPEND).
    Append {
        /// The event's name (1 to 64 of A-Z a-z 0-9 _ . : -).
        event_type: String,
        /// Free text.
        message: String,
        /// The stage (a name; `kernel`, `pipeline`, `daemon` and `journal` are the daemon's).
        #[arg(long, default_value = "client")]
        stage: String,
        /// Severity: debug, info, warning or error.
        #[arg(long, default_value = "info", value_parser = parse_level)]
        level: Level,
    },
}

/// `heidi health …`.
#[derive(Debug, Subcommand)]
pub enum HealthCommand {
    /// Report a check's result; the first report registers it (HEALTH_REPORT).
    Report {
        /// The check's name.
        name: String,
        /// The check failed (default: it passed).
        #[arg(long)]
        fail: bool,
    },
    /// Every check's status and the overall one (HEALTH_AGGREGATE).
    Aggregate,
}

/// `heidi idempotency …`.
#[derive(Debug, Subcommand)]
pub enum IdempotencyCommand {
    /// Claim a key: `started` with a token, or `done` with the stored digest (IDEMPOTENCY_BEGIN).
    Begin {
        /// The key.
        key: String,
    },
    /// Complete a claimed key (IDEMPOTENCY_COMPLETE).
    Complete {
        /// The key.
        key: String,
        /// The token from `idempotency begin`.
        token: String,
        /// The work succeeded: the digest of its result (64 hex digits) to remember.
        #[arg(long, value_name = "HEX", required_unless_present = "failed")]
        digest: Option<String>,
        /// The work failed: release the key.
        #[arg(long, conflicts_with = "digest")]
        failed: bool,
    },
}

/// `heidi pipeline …`.
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Start a run (PIPELINE_START).
    Start {
        /// collect: gather data and train on request; full: train every round.
        #[arg(long, value_enum, default_value = "collect")]
        mode: PipelineMode,
    },
    /// Stop the pipeline (PIPELINE_STOP).
    Stop,
    /// Pause the pipeline (PIPELINE_PAUSE).
    Pause,
    /// Resume a paused pipeline (PIPELINE_RESUME).
    Resume,
    /// Leave the ERROR state (PIPELINE_RESET).
    Reset,
    /// Train now, in collect mode between rounds (PIPELINE_TRAIN_NOW).
    TrainNow,
}

/// A journal level by its name (the core's [`Level::from_name`]).
fn parse_level(name: &str) -> Result<Level, String> {
    Level::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Level::ALL.iter().map(|l| l.as_str()).collect();
        format!("expected one of: {}", names.join(", "))
    })
}
