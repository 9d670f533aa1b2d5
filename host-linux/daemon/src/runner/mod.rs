//! Supervised stage subprocesses and /proc usage sampling.
//!
//! [`run_stage`] runs one pipeline stage and returns a [`StageReport`]; the pipeline driver
//! turns [`StageReport::result`] and [`StageReport::usage`] into the core's `StageOutcome`.
//! [`SystemSampler`] feeds the core's resource governor.
//!
//! # How a stage runs
//!
//! 1. **Held start.** The daemon forbids `unsafe`, so there is no `pre_exec` hook to call
//!    `setrlimit` in the forked child. Instead the stage starts as a tiny shell wrapper
//!    (`bash -c`, or `/bin/sh -c` without bash) that blocks reading one line from a pipe on
//!    its stdin. Its stdout and stderr are the write end of one pipe (merged output).
//! 2. **Process group.** The child calls `setpgid(0, 0)` before `exec` (std's
//!    `process_group(0)`); the parent calls `setpgid(pid, pid)` too. Since std returns from
//!    `spawn` only after the child's `exec`, the parent's call normally fails with EACCES
//!    (ESRCH if the child died), which is tolerated; the parent then checks that the child's
//!    group is its pid.
//! 3. **Limits.** While the wrapper is held, the parent sets `RLIMIT_AS`, `RLIMIT_NOFILE`,
//!    `RLIMIT_CPU` and `RLIMIT_NPROC` on it with `prlimit(pid, …)` (soft = hard, except CPU:
//!    hard = soft + 2 s, so SIGXCPU comes before SIGKILL). rlimits survive `exec` and are
//!    inherited by children, so the stage program and all it forks run under them from their
//!    first instruction. There is no race: the stage program does not exist yet.
//! 4. **Process count.** The kernel ignores `RLIMIT_NPROC` for root (and counts per user, not
//!    per stage), so when a process limit is set the wrapper is also moved into a fresh pids
//!    cgroup (`pids.max` = the limit, counting threads too) before it is released: cgroup v1
//!    under `/sys/fs/cgroup/pids/`, else cgroup v2 with the `pids` controller. If neither is
//!    writable, a warning is logged once and the report says [`Containment::RlimitOnly`] or,
//!    for root, [`Containment::Uncontained`]. An uncontained stage is refused (killed while
//!    held, reported as [`Exit::SpawnFailed`] with [`UNCONTAINED_REFUSAL`]) unless
//!    [`SuperviseOptions::allow_uncontained`] is set ([`Containment::may_start`]).
//! 5. **Record.** With [`StageCommand::record`], the run is recorded in
//!    `OUT_DIR/running-stages/<pid>.json` and synced (pids, the leader's start time, the
//!    cgroup's path, the run's [`STAGE_RUN_VAR`] marker, which the wrapper got in its
//!    environment), between naming the cgroup and creating it (step 4), so that
//!    [`reap_orphans`] can kill what is left of the run after the daemon died; removed after
//!    clean-up. A record that cannot be written refuses the stage. The wrapper itself
//!    runs under `setpriv --pdeathsig KILL` where available, so the leader dies with the
//!    daemon's thread that started it. See the `orphans` module.
//! 6. **Release.** The parent writes `go`. The wrapper closes every fd above 2 that it
//!    inherited (fds the daemon itself inherited without close-on-exec; the daemon's own fds are
//!    all close-on-exec), points stdin at `/dev/null`, and `exec`s the stage, which keeps the
//!    wrapper's pid. Without bash only fds 3 to 9 can be closed this way (warned once). A
//!    program that cannot be found is reported as [`Exit::SpawnFailed`] before anything starts.
//! 7. **Supervision.** The leader is awaited together with the timeout and the cancel
//!    signal; its `/proc/PID/stat` is sampled every 100 ms for CPU time and RSS. On timeout or
//!    cancel: SIGTERM to the group, `grace`, SIGKILL to the group, then a wait bounded by
//!    `final_wait`.
//! 8. **Clean-up.** After the leader is reaped, everything left in its process group and its
//!    cgroup is SIGKILLed, and the resulting zombies are reaped: the daemon makes itself a
//!    child subreaper so orphans come back to it rather than to an init that may never reap
//!    them. The cgroup is then removed. All of this is bounded
//!    by `final_wait`; [`StageReport::cleaned_up`] says whether it finished.
//! 9. **Output.** A task reads the merged output pipe into a [`TailBuffer`] that keeps only the
//!    last `capture_max_bytes` and counts the dropped bytes; memory stays bounded whatever
//!    the stage prints. The tail is raw: the core redacts it before it reaches the journal.
//!
//! Usage ([`StageReport::usage`]): `cpu_pct` is the leader's CPU time (including waited-for
//! children) over the wall time, in percent of one core; `memory_mb_delta` is the change of
//! system memory in use (`MemTotal - MemAvailable`) across the run, in MiB.

mod capture;
mod cgroup;
mod group;
mod orphans;
mod procfs;
mod sampler;
mod spawn;
mod supervise;
mod types;
mod usage;

#[cfg(test)]
mod tests;

pub use capture::TailBuffer;
pub use cgroup::TEST_CGROUP_ROOT_VAR;
pub use orphans::{OrphanReport, RECORD_DIR, STAGE_RUN_VAR, reap_orphans};
pub use sampler::{SystemLoad, SystemSampler};
pub use supervise::run_stage;
pub use types::{
    CgroupVersion, Containment, Exit, RecordSpec, STAGE_ENV_REMOVED, StageCommand, StageLimits,
    StageReport, SuperviseOptions, UNCONTAINED_REFUSAL,
};
pub use usage::USAGE_SAMPLE_INTERVAL;
