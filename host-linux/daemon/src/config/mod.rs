//! `heidid`'s configuration: flags > environment > TOML file > embedded defaults, validated as a
//! whole before anything starts. An error names the field it is about.

mod args;
pub mod authorization;
mod file;
pub mod pipeline;

pub use args::{Args, LogFormat};
pub use file::FileConfig;

use crate::kernel::{KernelCapacity, Policy};
use heidi_common::endpoint::{EndpointEnv, socket_path};
use heidi_core::proto::http_answers::{BindRefusal, check_bind, check_listener_token};
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The validated configuration the daemon runs with; immutable after start (the policy changes
/// only through `APPLY_POLICY`).
#[derive(Debug)]
pub struct Config {
    /// Unix socket path.
    pub socket_path: PathBuf,
    /// Socket permission bits (0o600 or 0o660).
    pub socket_mode: u32,
    /// HTTP listen address; `None` when HTTP is off.
    pub http_addr: Option<SocketAddr>,
    /// Bearer token required on HTTP routes.
    pub http_token: Option<String>,
    /// Connection, request and timeout bounds.
    pub limits: Limits,
    /// Journal settings.
    pub journal: JournalSettings,
    /// The policy in force at start.
    pub policy: Policy,
    /// Sizes of the kernel's tables.
    pub capacity: KernelCapacity,
    /// Log filter.
    pub log_filter: String,
    /// Log format.
    pub log_format: LogFormat,
    /// How often the audit log's per-peer counts are logged (default 60 s).
    pub audit_interval: Duration,
    /// The pipeline runner's settings.
    pub pipeline: pipeline::PipelineConfig,
    /// Threads serving requests (tokio workers).
    pub workers: usize,
    /// Which socket peers may call which class of methods (`[authorization]`).
    pub authorization: authorization::Authorization,
}

/// Most worker threads `runtime.workers` accepts.
pub const WORKERS_MAX: u32 = 1024;

/// The default worker count on a host where heidid may run on `cpus` CPUs: one CPU is left
/// to the clients (they share the host by design), at least one worker. On 2 CPUs shared
/// with a busy client, two workers gave 2-4× the p99 of one (BENCHMARKS.md): a connection
/// woken on a worker that the client then preempts waits for that worker's next time slice.
pub fn default_workers(cpus: usize) -> usize {
    cpus.saturating_sub(1).max(1)
}

/// Bounds on connections and requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most concurrent connections per listener (default 1024).
    pub max_connections: u32,
    /// Most requests being served at once across connections (default 4096).
    pub max_inflight: u32,
    /// Largest request body (default 8 KiB, at most 64 KiB).
    pub request_max_bytes: usize,
    /// Largest reply body (default 64 KiB, at most 1 MiB).
    pub response_max_bytes: usize,
    /// Idle connections are closed after this long (default 60 s).
    pub idle_timeout: Duration,
    /// Shutdown waits this long for connections to finish (default 5 s).
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 1024,
            max_inflight: 4096,
            request_max_bytes: heidi_core::proto::REQUEST_MAX_BYTES,
            response_max_bytes: heidi_core::proto::RESPONSE_MAX_BYTES,
            idle_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// Where and how the journal is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalSettings {
    /// `OUT_DIR`.
    pub out_dir: PathBuf,
    /// `RUN_ID` for a new journal.
    pub run_id: Option<String>,
    /// Seal key file.
    pub seal_key: PathBuf,
    /// Seal after this many new lines (default 1000).
    pub seal_every_lines: u64,
    /// Seal at least this often while lines are appended (default 5 s).
    pub seal_interval: Duration,
    /// Most appends per group commit (default 1024).
    pub group_commit_max_batch: usize,
    /// Appends waiting for the writer (default 4096).
    pub queue_capacity: usize,
    /// Rotate the open segment at this many bytes (default 64 MiB).
    pub segment_max_bytes: u64,
    /// Rotate a non-empty open segment this long after it started (default: no limit).
    pub segment_max_age: Option<Duration>,
    /// Rotated segments kept (default: all).
    pub retain_segments: Option<u64>,
    /// Rotated segments older than this are deleted (default: never).
    pub retain_age: Option<Duration>,
}

/// A configuration error: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The field, e.g. `limits.max_connections` or `--http-bind`.
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

fn err(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Reads `--config` (if any) and resolves the whole configuration.
pub fn load(args: &Args, env: &EndpointEnv) -> Result<Config, ConfigError> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    resolve_with(args, env, &pipeline::vars_from_process(), file)
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let field = format!("--config {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| err(&field, e.to_string()))?;
    toml::from_str(&text).map_err(|e| err(&field, e.to_string().trim_end().to_owned()))
}

/// Combines flags, environment and file into a validated [`Config`] (no pipeline variables
/// set in the environment).
pub fn resolve(args: &Args, env: &EndpointEnv, file: FileConfig) -> Result<Config, ConfigError> {
    resolve_with(args, env, &HashMap::new(), file)
}

/// [`resolve`] with the pipeline's variables (`ROUNDS`, …) from `pipeline_env`.
pub fn resolve_with(
    args: &Args,
    env: &EndpointEnv,
    pipeline_env: &HashMap<String, String>,
    file: FileConfig,
) -> Result<Config, ConfigError> {
    let token = resolve_token(args, &file)?;
    Ok(Config {
        pipeline: pipeline::resolve(&file.pipeline, pipeline_env)?,
        socket_path: resolve_socket(args, env, &file)?,
        socket_mode: parse_mode(file.socket.mode.as_deref())?,
        http_addr: resolve_http_addr(args, &file, token.as_deref())?,
        authorization: authorization::resolve(
            &file.authorization,
            http_enabled(args, &file) && token.is_none(),
        )?,
        http_token: token,
        limits: resolve_limits(args, &file)?,
        journal: resolve_journal(args, &file)?,
        capacity: resolve_capacity(&file)?,
        policy: resolve_policy(file.policy)?,
        log_filter: args
            .log
            .clone()
            .or(file.log.level)
            .unwrap_or_else(|| "info".into()),
        log_format: args.log_format.or(file.log.format).unwrap_or_default(),
        audit_interval: Duration::from_millis(in_range(
            "log.audit_interval_ms",
            file.log.audit_interval_ms,
            60_000,
            100,
            3_600_000,
        )?),
        workers: in_range(
            "runtime.workers",
            args.workers.or(file.runtime.workers),
            default_workers(available_cpus()) as u32,
            1,
            WORKERS_MAX,
        )? as usize,
    })
}

/// The CPUs this process may run on (its affinity mask), 1 when unknown.
fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn resolve_socket(
    args: &Args,
    env: &EndpointEnv,
    file: &FileConfig,
) -> Result<PathBuf, ConfigError> {
    let env_names_one = env
        .endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("unix://"))
        || env.sock.is_some();
    let path = match (&args.socket, env_names_one, &file.socket.path) {
        (Some(flag), _, _) => flag.clone(),
        (None, true, _) => socket_path(None, env),
        (None, false, Some(path)) => path.clone(),
        (None, false, None) => socket_path(None, env),
    };
    if !path.is_absolute() {
        return Err(err(
            "socket.path",
            format!("{} is not an absolute path", path.display()),
        ));
    }
    // sun_path holds 108 bytes including the terminating NUL.
    if path.as_os_str().len() > 107 {
        return Err(err(
            "socket.path",
            "longer than the 107 bytes a Unix socket path may have",
        ));
    }
    Ok(path)
}

fn parse_mode(mode: Option<&str>) -> Result<u32, ConfigError> {
    match mode {
        None | Some("0600") | Some("600") => Ok(0o600),
        Some("0660") | Some("660") => Ok(0o660),
        Some(other) => Err(err(
            "socket.mode",
            format!("{other:?}: use \"0600\" or \"0660\""),
        )),
    }
}

fn http_enabled(args: &Args, file: &FileConfig) -> bool {
    !(args.no_http || file.http.enabled == Some(false))
}

fn resolve_http_addr(
    args: &Args,
    file: &FileConfig,
    token: Option<&str>,
) -> Result<Option<SocketAddr>, ConfigError> {
    if !http_enabled(args, file) {
        return Ok(None);
    }
    let ip = args
        .http_bind
        .or(file.http.bind)
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let port = args.port.or(file.http.port).unwrap_or(8080);
    let allowed = args.allow_non_loopback || file.http.allow_non_loopback == Some(true);
    let has_token = !token.is_none_or(str::is_empty);
    match check_bind(ip.is_loopback(), allowed, has_token) {
        Ok(()) => Ok(Some(SocketAddr::new(ip, port))),
        Err(BindRefusal::NotAllowed) => Err(err(
            "http.bind",
            format!("{ip} is not loopback; pass --allow-non-loopback and a bearer token"),
        )),
        Err(BindRefusal::NoToken) => Err(err(
            "http.token",
            format!("binding {ip} needs a bearer token"),
        )),
    }
}

/// The bearer token: `--http-token-file` > `HEIDI_HTTP_TOKEN` > `http.token`.
fn resolve_token(args: &Args, file: &FileConfig) -> Result<Option<String>, ConfigError> {
    let from_file = match &args.http_token_file {
        Some(path) => Some(
            heidi_common::Token::from_file(path)
                .map_err(|e| err("http.token", e))?
                .expose()
                .to_owned(),
        ),
        None => None,
    };
    let token = from_file
        .or(args.http_token.clone())
        .or(file.http.token.clone());
    if let Some(t) = &token {
        check_listener_token(t.as_bytes())
            .map_err(|e| err("http.token", format!("expected {e}")))?;
    }
    Ok(token)
}

/// `None` for 0 (a setting's "no limit").
fn nonzero(v: u64) -> Option<u64> {
    (v != 0).then_some(v)
}

fn in_range<T: PartialOrd + fmt::Display + Copy>(
    field: &str,
    value: Option<T>,
    default: T,
    lo: T,
    hi: T,
) -> Result<T, ConfigError> {
    let v = value.unwrap_or(default);
    if v < lo || v > hi {
        return Err(err(field, format!("{v} is outside {lo}..={hi}")));
    }
    Ok(v)
}

fn resolve_limits(args: &Args, file: &FileConfig) -> Result<Limits, ConfigError> {
    let l = &file.limits;
    let d = Limits::default();
    let ms = |field, v: Option<u64>, def: Duration, lo, hi| {
        in_range(field, v, def.as_millis() as u64, lo, hi).map(Duration::from_millis)
    };
    Ok(Limits {
        max_connections: in_range(
            "limits.max_connections",
            args.max_connections.or(l.max_connections),
            d.max_connections,
            1,
            65_536,
        )?,
        max_inflight: in_range(
            "limits.max_inflight",
            l.max_inflight,
            d.max_inflight,
            1,
            1 << 20,
        )?,
        request_max_bytes: in_range(
            "limits.request_max_bytes",
            l.request_max_bytes,
            d.request_max_bytes as u32,
            64,
            heidi_core::proto::REQUEST_LIMIT_MAX_BYTES as u32,
        )? as usize,
        response_max_bytes: in_range(
            "limits.response_max_bytes",
            l.response_max_bytes,
            d.response_max_bytes as u32,
            1024,
            heidi_core::proto::RESPONSE_LIMIT_MAX_BYTES as u32,
        )? as usize,
        idle_timeout: ms(
            "limits.idle_timeout_ms",
            args.idle_timeout_ms.or(l.idle_timeout_ms),
            d.idle_timeout,
            10,
            86_400_000,
        )?,
        drain_timeout: ms(
            "limits.drain_timeout_ms",
            l.drain_timeout_ms,
            d.drain_timeout,
            0,
            600_000,
        )?,
    })
}

fn resolve_journal(args: &Args, file: &FileConfig) -> Result<JournalSettings, ConfigError> {
    let j = &file.journal;
    let out_dir = args
        .out_dir
        .clone()
        .or(j.out_dir.clone())
        .unwrap_or_else(heidi_store::paths::default_out_dir);
    let seal_key = args
        .seal_key
        .clone()
        .or(j.seal_key.clone())
        .unwrap_or_else(heidi_store::paths::default_key_path);
    if seal_key.starts_with(&out_dir) {
        return Err(err(
            "journal.seal_key",
            "must live outside OUT_DIR: a key beside the journal lets its writer re-seal it",
        ));
    }
    let run_id = args
        .run_id
        .clone()
        .or(j.run_id.clone())
        .filter(|r| !r.is_empty());
    if let Some(run_id) = &run_id {
        if !heidi_core::journal::is_valid_run_id(run_id.as_bytes()) {
            return Err(err(
                "journal.run_id",
                format!("{run_id:?}: use 1-128 of [A-Za-z0-9_.:-]"),
            ));
        }
    }
    Ok(JournalSettings {
        out_dir,
        run_id,
        seal_key,
        seal_every_lines: in_range(
            "journal.seal_every_lines",
            j.seal_every_lines,
            1000,
            1,
            1 << 40,
        )?,
        seal_interval: Duration::from_millis(in_range(
            "journal.seal_interval_ms",
            j.seal_interval_ms,
            5000,
            10,
            86_400_000,
        )?),
        // The journal's own bounds: a configuration the store would refuse at open is refused
        // here, naming the field.
        group_commit_max_batch: in_range(
            "journal.group_commit_max_batch",
            j.group_commit_max_batch.map(|n| n as usize),
            1024,
            1,
            heidi_store::JournalConfig::MAX_BATCH_LIMIT,
        )?,
        queue_capacity: in_range(
            "journal.queue_capacity",
            j.queue_capacity.map(|n| n as usize),
            4096,
            1,
            heidi_store::JournalConfig::QUEUE_CAPACITY_LIMIT,
        )?,
        segment_max_bytes: in_range(
            "journal.segment_max_bytes",
            j.segment_max_bytes,
            heidi_store::JournalConfig::SEGMENT_MAX_BYTES_DEFAULT,
            heidi_store::JournalConfig::SEGMENT_MIN_BYTES,
            1 << 40,
        )?,
        segment_max_age: nonzero(in_range(
            "journal.segment_max_age_s",
            j.segment_max_age_s,
            0,
            0,
            10 * 365 * 86_400,
        )?)
        .map(Duration::from_secs),
        retain_segments: nonzero(in_range(
            "journal.retain_segments",
            j.retain_segments,
            0,
            0,
            1 << 32,
        )?),
        retain_age: nonzero(in_range(
            "journal.retain_days",
            j.retain_days,
            0,
            0,
            36_500,
        )?)
        .map(|days| Duration::from_secs(days * 86_400)),
    })
}

fn resolve_capacity(file: &FileConfig) -> Result<KernelCapacity, ConfigError> {
    let c = &file.capacity;
    let d = KernelCapacity::DEFAULT;
    Ok(KernelCapacity {
        limiter_slots: in_range(
            "capacity.limiter_slots",
            c.limiter_slots,
            d.limiter_slots,
            8,
            1 << 26,
        )?,
        lease_slots: in_range(
            "capacity.lease_keys",
            c.lease_keys,
            d.lease_slots,
            8,
            1 << 22,
        )?,
        idempotency_slots: in_range(
            "capacity.idempotency_records",
            c.idempotency_records,
            d.idempotency_slots,
            8,
            1 << 24,
        )?,
        held_permits: in_range(
            "capacity.held_permits",
            c.held_permits,
            d.held_permits,
            1,
            1 << 22,
        )?,
    })
}

fn resolve_policy(table: Option<toml::Table>) -> Result<Policy, ConfigError> {
    let Some(table) = table else {
        return Ok(Policy::default());
    };
    let doc = serde_json::to_value(&table).map_err(|e| err("policy", e.to_string()))?;
    Policy::from_json(&doc).map_err(|e| err(&format!("policy.{}", e.field), e.reason))
}

#[cfg(test)]
mod tests;
