//! What a stage run takes and what it reports.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use heidi_core::pipeline::{ProcessEnd, StageResult, UsageDelta};

pub use super::cgroup::CgroupVersion;

/// Variables of the daemon's environment a stage never sees: the bearer tokens (the daemon's
/// `HEIDI_HTTP_TOKEN`, the clients' `HEIDI_KERNEL_TOKEN`). A stage runs whatever script is
/// configured; it gets no credential to call the daemon (or anything else) with. Removed
/// after [`StageCommand::env`] is applied, so a configuration cannot pass them on either.
pub const STAGE_ENV_REMOVED: [&str; 2] = ["HEIDI_HTTP_TOKEN", "HEIDI_KERNEL_TOKEN"];

/// The program a stage runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageCommand {
    /// The executable: a path (relative ones resolve against `cwd`), or a bare name looked up
    /// on the stage's `PATH` (the `PATH` in `env` if set there). The stage's `argv[0]` is the
    /// absolute path found.
    pub program: PathBuf,
    /// Its arguments (without the program name).
    pub args: Vec<OsString>,
    /// Variables set on top of the daemon's environment (without [`STAGE_ENV_REMOVED`]).
    pub env: Vec<(OsString, OsString)>,
    /// The working directory; the daemon's if `None`.
    pub cwd: Option<PathBuf>,
    /// Where the run is recorded while it runs, so that a daemon restarted after `kill -9`
    /// can kill what is left of it ([`reap_orphans`](super::reap_orphans)); `None`: not
    /// recorded.
    pub record: Option<RecordSpec>,
}

/// Where a running stage is recorded, and the names the record carries for the journal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordSpec {
    /// The output directory: the record is `<dir>/running-stages/<leader pid>.json`.
    pub dir: PathBuf,
    /// The stage's name.
    pub stage: String,
    /// The stage's round.
    pub round: u32,
}

/// Resource limits of one stage (soft and hard rlimits, plus the pids cgroup); `None` leaves
/// a limit as inherited from the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageLimits {
    /// `RLIMIT_AS`, in bytes. Default 8 GiB: room for a Python ML stage's virtual mappings,
    /// well below what would take a training host down.
    pub address_space_bytes: Option<u64>,
    /// `RLIMIT_NOFILE`. Default 1024.
    pub open_files: Option<u64>,
    /// `RLIMIT_CPU`, in CPU seconds of each process (SIGXCPU at the limit, SIGKILL two seconds
    /// later). Default 1200: four busy cores for the whole default timeout.
    pub cpu_seconds: Option<u64>,
    /// Tasks of the stage: `RLIMIT_NPROC` (per user, ignored by the kernel for root) and the
    /// run's pids cgroup `pids.max` (counts processes and threads). Default 256.
    pub processes: Option<u64>,
}

impl Default for StageLimits {
    fn default() -> Self {
        Self {
            address_space_bytes: Some(8 << 30),
            open_files: Some(1024),
            cpu_seconds: Some(1200),
            processes: Some(256),
        }
    }
}

/// How a stage run is supervised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuperviseOptions {
    /// Wall time before the stage is terminated. Default 300 s.
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL to the group. Default 2 s.
    pub grace: Duration,
    /// Bound on each wait after SIGKILL: for the leader, then for the rest of the group and
    /// the output pipe. Default 5 s.
    pub final_wait: Duration,
    /// Bytes of merged stdout/stderr kept (the last ones). Default 64 KiB.
    pub capture_max_bytes: usize,
    /// Resource limits.
    pub limits: StageLimits,
    /// Run a stage whose task count nothing bounds ([`Containment::Uncontained`]: root
    /// without a writable pids cgroup). Default `false`: such a stage is refused
    /// ([`Containment::may_start`]).
    pub allow_uncontained: bool,
}

impl Default for SuperviseOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            grace: Duration::from_secs(2),
            final_wait: Duration::from_secs(5),
            capture_max_bytes: 64 * 1024,
            limits: StageLimits::default(),
            allow_uncontained: false,
        }
    }
}

/// How the stage's leader process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal ended it (not one sent for a timeout or a cancel).
    Signal(i32),
    /// It ran past the timeout and was terminated.
    TimedOut,
    /// The caller cancelled it and it was terminated.
    Cancelled,
    /// It could not be started: the reason.
    SpawnFailed(String),
}

impl Exit {
    /// The end as the core reads it.
    pub fn end(&self) -> ProcessEnd<'_> {
        match self {
            Exit::Code(code) => ProcessEnd::Exited(*code),
            Exit::Signal(signal) => ProcessEnd::Signalled(*signal),
            Exit::TimedOut => ProcessEnd::TimedOut,
            Exit::Cancelled => ProcessEnd::Cancelled,
            Exit::SpawnFailed(reason) => ProcessEnd::NotStarted(reason),
        }
    }
}

/// How the number of tasks of a stage was bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Containment {
    /// No process limit was asked for.
    NotRequested,
    /// A per-run pids cgroup (and `RLIMIT_NPROC`).
    Cgroup(CgroupVersion),
    /// Only `RLIMIT_NPROC`: no writable pids cgroup, running as a non-root user.
    RlimitOnly,
    /// Nothing effective: no writable pids cgroup, and root ignores `RLIMIT_NPROC`.
    Uncontained,
}

pub use heidi_core::pipeline::UNCONTAINED_REFUSAL;

impl Containment {
    /// Whether a stage may start with this containment: all but [`Containment::Uncontained`]
    /// may; that one only with `allow_uncontained`. [`Containment::RlimitOnly`] may: a
    /// non-root user's `RLIMIT_NPROC` is enforced (it counts all of the user's processes, so
    /// it binds the stage at least as tightly as asked). The error is
    /// [`UNCONTAINED_REFUSAL`].
    pub fn may_start(self, allow_uncontained: bool) -> Result<(), &'static str> {
        let contained = self != Containment::Uncontained;
        heidi_core::pipeline::may_start(contained, allow_uncontained)
    }
}

/// The outcome of one stage run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageReport {
    /// How the leader ended.
    pub exit: Exit,
    /// The last `capture_max_bytes` of merged stdout/stderr.
    pub output_tail: Vec<u8>,
    /// Bytes of output dropped before the tail.
    pub output_dropped_bytes: u64,
    /// Resource use, for the stage event's `usage_delta`.
    pub usage: UsageDelta,
    /// Wall time from start until the leader was reaped (or given up on).
    pub elapsed: Duration,
    /// The leader's pid, which is also the stage's process group id; `None` if not started.
    pub pgid: Option<i32>,
    /// The leader's peak resident set size seen by sampling, in KiB.
    pub peak_rss_kb: u64,
    /// How the task count was bounded.
    pub containment: Containment,
    /// Whether every process of the stage was gone (killed and reaped) before the report.
    pub cleaned_up: bool,
}

impl StageReport {
    /// The core's view ([`ProcessEnd::result`]): exit status 0 is success, a timeout is a
    /// timeout, all else failed.
    pub fn result(&self) -> StageResult {
        self.exit.end().result()
    }

    pub(crate) fn spawn_failed(reason: String, elapsed: Duration) -> Self {
        Self {
            exit: Exit::SpawnFailed(reason),
            output_tail: Vec::new(),
            output_dropped_bytes: 0,
            usage: UsageDelta::default(),
            elapsed,
            pgid: None,
            peak_rss_kb: 0,
            containment: Containment::NotRequested,
            cleaned_up: true,
        }
    }
}
