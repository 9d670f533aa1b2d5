//! The TOML configuration file. Every key is optional; unknown keys are errors.

use super::args::LogFormat;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[socket]`.
    #[serde(default)]
    pub socket: SocketSection,
    /// `[http]`.
    #[serde(default)]
    pub http: HttpSection,
    /// `[limits]`.
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[journal]`.
    #[serde(default)]
    pub journal: JournalSection,
    /// `[log]`.
    #[serde(default)]
    pub log: LogSection,
    /// `[capacity]`: sizes of the kernel's tables.
    #[serde(default)]
    pub capacity: CapacitySection,
    /// `[policy]`: the policy document, as `APPLY_POLICY` takes it (docs/PROTOCOL.md).
    pub policy: Option<toml::Table>,
    /// `[runtime]`: the daemon's threads.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// `[pipeline]`: the pipeline runner (the environment's seed names win).
    #[serde(default)]
    pub pipeline: PipelineSection,
    /// `[authorization]`: uid/gid allow-lists per method class.
    #[serde(default)]
    pub authorization: super::authorization::AuthorizationSection,
}

/// `[pipeline]`; each key is the lower-case name of a seed variable.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// `HEIDI_REPO_ROOT`: where the stage scripts live.
    pub repo_root: Option<PathBuf>,
    /// `HEIDI_MOCK_SUBPROCESSES`: simulate the stages.
    pub mock: Option<bool>,
    /// `ROUNDS`.
    pub rounds: Option<u32>,
    /// `PIPELINE_MODE`: `collect` or `full`, the mode of the run started at boot.
    pub mode: Option<String>,
    /// `RUN_UNIT_TESTS`.
    pub run_unit_tests: Option<bool>,
    /// `MAX_CPU_PCT`.
    pub max_cpu_pct: Option<u8>,
    /// `MAX_MEM_PCT`.
    pub max_mem_pct: Option<u8>,
    /// `MAX_WALL_TIME_MINUTES`.
    pub max_wall_time_minutes: Option<u64>,
    /// How long each simulated stage takes with `mock`, in ms (default 10).
    pub mock_stage_ms: Option<u64>,
    /// The governor's least time between two stage starts, in ms (default 100, 0 with `mock`;
    /// 0 turns it off).
    pub start_gap_ms: Option<u64>,
    /// Run stages that nothing can contain (root without a writable pids cgroup), with a
    /// warning in the journal; default false: such a stage is refused and the run errors.
    pub allow_uncontained: Option<bool>,
    /// `[pipeline.stages.<stage>]`, by stage name (`generate`, `validate`, `unit_test`,
    /// `train`, `eval`).
    #[serde(default)]
    pub stages: std::collections::BTreeMap<String, StageSection>,
}

/// `[pipeline.stages.<stage>]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSection {
    /// The command: program and arguments (default `python3 <repo_root>/scripts/0N_….py`).
    pub command: Option<Vec<String>>,
    /// Timeout in seconds (default 300).
    pub timeout_s: Option<u64>,
    /// `RLIMIT_AS` in MiB (default 8192).
    pub address_space_mb: Option<u64>,
    /// `RLIMIT_NOFILE` (default 1024).
    pub open_files: Option<u64>,
    /// `RLIMIT_CPU` in seconds (default 1200).
    pub cpu_seconds: Option<u64>,
    /// Processes and threads: `RLIMIT_NPROC` and the run's pids cgroup (default 256).
    pub processes: Option<u64>,
    /// Bytes of the merged output kept, the last ones (default 65536).
    pub capture_bytes: Option<usize>,
}

/// `[socket]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketSection {
    /// Socket path.
    pub path: Option<PathBuf>,
    /// Permission bits as an octal string: `"0600"` (default) or `"0660"` for group access.
    pub mode: Option<String>,
}

/// `[http]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Serve HTTP at all (default true).
    pub enabled: Option<bool>,
    /// Bind address (default 127.0.0.1).
    pub bind: Option<IpAddr>,
    /// Port (default 8080).
    pub port: Option<u16>,
    /// Bearer token.
    pub token: Option<String>,
    /// Permit a non-loopback bind (a token is then required).
    pub allow_non_loopback: Option<bool>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Most concurrent connections per listener.
    pub max_connections: Option<u32>,
    /// Most requests being served at once across all connections.
    pub max_inflight: Option<u32>,
    /// Largest request body, in bytes.
    pub request_max_bytes: Option<u32>,
    /// Largest reply body, in bytes.
    pub response_max_bytes: Option<u32>,
    /// Idle connections are closed after this long.
    pub idle_timeout_ms: Option<u64>,
    /// How long shutdown waits for connections to finish.
    pub drain_timeout_ms: Option<u64>,
}

/// `[journal]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSection {
    /// `OUT_DIR`.
    pub out_dir: Option<PathBuf>,
    /// `RUN_ID` for a new journal.
    pub run_id: Option<String>,
    /// Seal key file.
    pub seal_key: Option<PathBuf>,
    /// Seal after this many new lines.
    pub seal_every_lines: Option<u64>,
    /// Seal at least this often while lines are appended.
    pub seal_interval_ms: Option<u64>,
    /// Most appends per group commit (one write and one fsync).
    pub group_commit_max_batch: Option<u32>,
    /// Appends waiting for the writer before callers get `OVERLOADED`.
    pub queue_capacity: Option<u32>,
    /// Rotate the open journal segment at this many bytes.
    pub segment_max_bytes: Option<u64>,
    /// Rotate a non-empty open segment this many seconds after it started (0: never).
    pub segment_max_age_s: Option<u64>,
    /// Rotated segments kept (0: all).
    pub retain_segments: Option<u64>,
    /// Rotated segments older than this many days are deleted (0: never).
    pub retain_days: Option<u64>,
}

/// `[runtime]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// Threads serving requests (default: the CPUs heidid may run on minus one, at least 1).
    pub workers: Option<u32>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// Filter (tracing-subscriber syntax).
    pub level: Option<String>,
    /// `text` or `json`.
    pub format: Option<LogFormat>,
    /// How often the audit log's per-peer counts (mutating calls, refused admin calls,
    /// suppressed admin lines) are logged, in ms.
    pub audit_interval_ms: Option<u64>,
}

/// `[capacity]`: the kernel's fixed tables, allocated once at start.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySection {
    /// Limiter buckets (one per operation and client key); keep live keys under ~70 %.
    pub limiter_slots: Option<usize>,
    /// Keys that can hold leases at once.
    pub lease_keys: Option<usize>,
    /// Idempotency records.
    pub idempotency_records: Option<usize>,
    /// Breaker permits handed out and not yet recorded.
    pub held_permits: Option<usize>,
}
