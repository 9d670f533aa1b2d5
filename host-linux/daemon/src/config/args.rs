//! `heidid`'s command-line flags (clap). Flags win over the environment, which wins over the
//! configuration file, which wins over the embedded defaults.

use clap::{ArgAction, Parser, ValueEnum};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
ENVIRONMENT:
  HEIDI_CONFIG            the TOML configuration file (as --config)
  HEIDI_KERNEL_ENDPOINT   unix:///path: the socket path (after --socket)
  HEIDI_KERNEL_SOCK       the socket path (after HEIDI_KERNEL_ENDPOINT)
  XDG_RUNTIME_DIR         default socket $XDG_RUNTIME_DIR/heidi-kernel.sock, else /tmp/heidi-kernel.sock
  OUT_DIR                 journal and state directory (events.jsonl, events.seals, state.json)
  RUN_ID                  run id of a new journal (an existing journal keeps its own)
  HEIDI_SEAL_KEY          seal key file (created 0600 with 32 random bytes on first start)
  HEIDI_HTTP_TOKEN        bearer token required on every HTTP route but /healthz and /readyz
                          (or --http-token-file; the token is never a flag's value)
  HEIDI_LOG               log filter (tracing-subscriber syntax), default info
  HEIDI_REPO_ROOT         where the pipeline's stage scripts live (scripts/01_…py … 05_…py)
  HEIDI_MOCK_SUBPROCESSES 1: simulated stages; ROUNDS (3), PIPELINE_MODE (collect | full),
  RUN_UNIT_TESTS, MAX_CPU_PCT (85; 0 off), MAX_MEM_PCT (90; 0 off), MAX_WALL_TIME_MINUTES (60): the pipeline

FILES:
  OUT_DIR/events.jsonl    the hash-chained journal; appends are acknowledged after fsync
  OUT_DIR/events.seals    HMAC seals of the journal (key from --seal-key, outside OUT_DIR)
  OUT_DIR/events.<seq>.jsonl, .seals
                          rotated journal segments (journal.segment_max_bytes); read
                          them in name order, then events.jsonl, for one chained journal
  <key dir>/journal-<hash>.anchor
                          the journal's latest seal, beside the seal key: seals cut back
                          behind it stop the start (exit 3)
  OUT_DIR/state.json      daemon and pipeline status, replaced atomically
  OUT_DIR/policy.json     the policy applied at run time, MAC'd with the seal key and
                          loaded at start only if it is the policy the journal names last

CONFIGURATION FILE (--config; every key optional, unknown keys are errors):
  [socket]   path, mode (\"0600\" | \"0660\")
  [http]     enabled, bind, port, token, allow_non_loopback
  [limits]   max_connections (1024), max_inflight (4096), request_max_bytes (8192),
             response_max_bytes (65536), idle_timeout_ms (60000), drain_timeout_ms (5000)
  [journal]  out_dir, run_id, seal_key, seal_every_lines (1000), seal_interval_ms (5000),
             group_commit_max_batch (1024), queue_capacity (4096),
             segment_max_bytes (67108864: rotate events.jsonl to events.<seq>.jsonl),
             segment_max_age_s (0: no age limit), retain_segments (0: keep all),
             retain_days (0: keep all)
  [capacity] limiter_slots (147456), lease_keys (4096), idempotency_records (16384),
             held_permits (16384)
  [log]      level, format (text | json), audit_interval_ms (60000: per-peer counts of
             mutating calls and refused or unlogged admin calls are logged this often)
  [runtime]  workers (CPUs heidid may run on minus one, at least 1)
  [authorization] read_uids, read_gids, mutate_uids, mutate_gids, admin_uids, admin_gids:
             who may call which class of methods over the socket (empty: anyone who can
             open it; docs/DAEMON.md \"Authorization\")
  [pipeline] repo_root, mock, rounds, mode, run_unit_tests, max_cpu_pct, max_mem_pct,
             max_wall_time_minutes (the variables above win), mock_stage_ms (10),
             start_gap_ms (100; 0 with mock), allow_uncontained (false: as root without a
             writable pids cgroup a stage is refused; true runs it, warned in the journal);
             [pipeline.stages.<generate|validate|unit_test|train|eval>]: command = [..],
             timeout_s (300), address_space_mb (8192), open_files (1024), cpu_seconds (1200),
             processes (256), capture_bytes (65536)
  [policy]   the policy document of APPLY_POLICY (docs/PROTOCOL.md); a policy applied at run
             time is kept in OUT_DIR/policy.json and wins over this section after a restart

HTTP ROUTES:
  GET /api/v1/status, POST /api/v1/action/train_now, POST /api/call, GET /health,
  GET /healthz, GET /readyz, GET /metrics
  Browser defences: Host must be a loopback address (127.0.0.0/8 or [::1]) or localhost,
  with the port (else 421);
  on POST, a foreign Origin gets 403 and a body not sent as application/json gets 415.

THE ORIGINAL HEIDID'S FLAGS:
  heidid -p PORT -h HOST -d: -h is the HTTP host (--http-bind, --host), not help; help is
  --help. -d detaches and returns once the daemon listens, printing its pid.

SIGNALS AND EXIT STATUS:
  SIGTERM/SIGINT drain connections, seal the journal and exit 0. Exit 2: bad configuration
  (the message names the field); exit 3: a file in OUT_DIR failed verification (journal,
  seals, seals behind the journal's anchor, or policy.json; the message names the file and
  the reason; see
  --accept-unsealed-journal and --accept-policy-file); exit 1: any other start-up or runtime
  failure.

With no arguments heidid starts with embedded defaults: socket as above (0600), HTTP on
127.0.0.1:8080, OUT_DIR $XDG_STATE_HOME/heidi-kernel, seal key
$XDG_CONFIG_HOME/heidi-kernel/seal.key. docs/DAEMON.md has the details.";

/// heidid: the heidi-kernel daemon (rate limits, circuit breakers, leases, idempotency, health,
/// and a tamper-evident journal) over a Unix socket and loopback HTTP.
///
/// `-h` is the HTTP host, as in the original heidid; help is `--help`.
#[derive(Parser, Debug, Default)]
#[command(
    name = "heidid",
    version,
    after_long_help = AFTER_HELP,
    disable_help_flag = true
)]
pub struct Args {
    /// Detach: run in the background in a session of its own, stdio on /dev/null, in the
    /// same working directory. Returns once the daemon listens (exit 0, its pid on stdout)
    /// or has failed to start (its exit status and messages).
    #[arg(short = 'd', long)]
    pub daemon: bool,
    /// Set by `--daemon` on the detached process it starts.
    #[arg(long, hide = true)]
    pub daemon_child: bool,
    /// TOML configuration file (sections: socket, http, limits, journal, capacity, policy, log, runtime, pipeline).
    #[arg(long, value_name = "FILE", env = "HEIDI_CONFIG")]
    pub config: Option<PathBuf>,
    /// HTTP port [default: 8080] (on 127.0.0.1 unless --http-bind says otherwise).
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// Unix socket path (see ENVIRONMENT for the precedence when unset).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Do not serve HTTP.
    #[arg(long)]
    pub no_http: bool,
    /// Address HTTP binds to: an IP address or `localhost` [default: 127.0.0.1]. Anything
    /// but loopback also needs --allow-non-loopback and a bearer token. `-h`/`--host` are the
    /// original heidid's names for it.
    #[arg(
        short = 'h',
        long,
        visible_alias = "host",
        value_name = "HOST",
        value_parser = parse_host
    )]
    pub http_bind: Option<IpAddr>,
    /// Permit a non-loopback --http-bind (a bearer token is then required).
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// Read the bearer token required on every HTTP route but the probes /healthz and
    /// /readyz from FILE (mode 0600 or stricter; one trailing line break is ignored). Wins
    /// over HEIDI_HTTP_TOKEN and http.token. The token itself is never an argument, where
    /// `ps` would show it.
    #[arg(long, value_name = "FILE")]
    pub http_token_file: Option<PathBuf>,
    /// `HEIDI_HTTP_TOKEN`: the bearer token from the environment (no flag takes the token).
    #[arg(skip = std::env::var("HEIDI_HTTP_TOKEN").ok())]
    pub http_token: Option<String>,
    /// Journal and state directory.
    #[arg(long, env = "OUT_DIR", value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Run id for a new journal.
    #[arg(long, env = "RUN_ID")]
    pub run_id: Option<String>,
    /// Seal key file (kept outside OUT_DIR).
    #[arg(long, env = "HEIDI_SEAL_KEY", value_name = "FILE")]
    pub seal_key: Option<PathBuf>,
    /// Most concurrent connections per listener [default: 1024].
    #[arg(long)]
    pub max_connections: Option<u32>,
    /// Close connections idle this long, in ms [default: 60000].
    #[arg(long)]
    pub idle_timeout_ms: Option<u64>,
    /// Threads serving requests [default: the CPUs heidid may run on minus one, at least 1:
    /// the clients share the host, and a request queued on a preempted thread waits for it].
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,
    /// Log filter, e.g. `info` or `heidi_daemon=debug` [default: info].
    #[arg(long, env = "HEIDI_LOG")]
    pub log: Option<String>,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Print help (`-h` is --host, as in the original heidid).
    #[arg(long, action = ArgAction::HelpLong)]
    pub help: Option<bool>,
    /// Start once with a journal of more than one line that has no seal record (its
    /// events.seals deleted or emptied), or whose seals are behind its anchor (the latest
    /// seal, kept beside the seal key: seals and journal cut back), or with a bad anchor,
    /// instead of refusing it; the acceptance is journaled.
    /// A flag only (no environment or file setting): it acknowledges what this start found.
    #[arg(long)]
    pub accept_unsealed_journal: bool,
    /// Start once with an OUT_DIR/policy.json that has no MAC, a wrong MAC or digest, or is
    /// not the policy the journal names last, instead of refusing it (the acceptance is
    /// journaled and the file keyed); or, when policy.json is missing although the journal
    /// names an applied policy, with the configured policy. A flag only, like
    /// --accept-unsealed-journal.
    #[arg(long)]
    pub accept_policy_file: bool,
}

/// `--http-bind`: an IP address, or `localhost` (127.0.0.1). Other names are refused: the
/// daemon binds one address, and a name could resolve to anything.
fn parse_host(value: &str) -> Result<IpAddr, String> {
    if value.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    value
        .parse()
        .map_err(|_| format!("{value:?} is not an IP address or localhost"))
}

/// How logs are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}
