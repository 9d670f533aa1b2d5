//! One supervised stage run: start held, contain, release, wait for exit, timeout or cancel,
//! terminate, clean up, report.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, Once, PoisonError};

use rustix::process::{Signal, geteuid};
use tokio::process::Child;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};

use super::capture::{TailBuffer, drain_into};
use super::cgroup::{CgroupPlan, PidsCgroup};
use super::group::{become_subreaper, clean_up, signal_group};
use super::orphans::{new_marker, write_record};
use super::spawn::{Held, apply_limits, spawn_held};
use super::types::{Containment, Exit, StageCommand, StageLimits, StageReport, SuperviseOptions};
use super::usage::{USAGE_SAMPLE_INTERVAL, UsageTracker};

/// Runs one stage under `opts` and reports how it ended. Never panics on a bad command: a
/// program that cannot be started is [`Exit::SpawnFailed`]. `cancel` turning `true` terminates
/// the stage at once (SIGTERM to the group, `grace`, SIGKILL) and reports [`Exit::Cancelled`];
/// a dropped sender means no cancel.
pub async fn run_stage(
    cmd: &StageCommand,
    opts: &SuperviseOptions,
    mut cancel: watch::Receiver<bool>,
) -> StageReport {
    let started = Instant::now();
    let mut usage = UsageTracker::start();
    become_subreaper();
    let marker = new_marker();
    let held = match spawn_held(cmd, &marker) {
        Ok(held) => held,
        Err(reason) => return StageReport::spawn_failed(reason, started.elapsed()),
    };
    let pid = held.pid;
    if let Err(e) = apply_limits(pid, &opts.limits) {
        abort_held(held, opts).await;
        return StageReport::spawn_failed(format!("rlimit: {e}"), started.elapsed());
    }
    // The cgroup is named first and recorded before it is created: a daemon killed at any
    // point leaves nothing the next start does not know of.
    let plan = opts.limits.processes.map(|_| PidsCgroup::plan());
    let record = match &cmd.record {
        Some(spec) => {
            let planned = plan.as_ref().and_then(|p| p.as_ref().ok());
            let (spec, dir) = (spec.clone(), planned.map(|p| p.dir().to_path_buf()));
            let marker = marker.clone();
            let written = tokio::task::spawn_blocking(move || {
                write_record(&spec, pid, dir.as_deref(), &marker)
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            match written {
                Ok(file) => Some(file),
                Err(e) => {
                    abort_held(held, opts).await;
                    let reason = format!("cannot record the running stage: {e}");
                    return StageReport::spawn_failed(reason, started.elapsed());
                }
            }
        }
        None => None,
    };
    let (mut cgroup, containment) = contain(pid, &opts.limits, plan, opts.allow_uncontained);
    if let Err(refusal) = containment.may_start(opts.allow_uncontained) {
        abort_held(held, opts).await;
        if let Some(record) = record {
            record.remove();
        }
        let mut report = StageReport::spawn_failed(refusal.to_owned(), started.elapsed());
        report.containment = containment;
        return report;
    }
    let (mut child, output) = held.release().await;
    let tail = Arc::new(Mutex::new(TailBuffer::new(opts.capture_max_bytes)));
    let mut reader = tokio::spawn(drain_into(output, Arc::clone(&tail)));

    let (exit, reaped) = supervise(&mut child, pid, opts, &mut cancel, &mut usage).await;
    let elapsed = started.elapsed();
    let cleaned_up = if reaped {
        clean_up(
            pid,
            cgroup.as_mut(),
            &marker,
            Instant::now() + opts.final_wait,
        )
        .await
    } else {
        signal_group(pid, Signal::KILL);
        false
    };
    if !cleaned_up {
        tracing::warn!(
            pgid = pid,
            "stage processes still present after the final wait"
        );
    } else if let Some(record) = record {
        // Kept while something of the stage may live: the next start kills it.
        record.remove();
    }
    if timeout(opts.final_wait, &mut reader).await.is_err() {
        reader.abort();
    }
    let (output_tail, output_dropped_bytes) =
        tail.lock().unwrap_or_else(PoisonError::into_inner).take();
    StageReport {
        exit,
        output_tail,
        output_dropped_bytes,
        usage: usage.finish(elapsed),
        elapsed,
        pgid: Some(pid),
        peak_rss_kb: usage.peak_rss_kb(),
        containment,
        cleaned_up,
    }
}

/// Waits for the leader to exit, the timeout, or a cancel, sampling usage meanwhile. Returns
/// the exit and whether the leader was reaped.
async fn supervise(
    child: &mut Child,
    pid: i32,
    opts: &SuperviseOptions,
    cancel: &mut watch::Receiver<bool>,
    usage: &mut UsageTracker,
) -> (Exit, bool) {
    let deadline = Instant::now() + opts.timeout;
    let mut tick = tokio::time::interval(USAGE_SAMPLE_INTERVAL);
    let mut cancel_open = true;
    let reason = loop {
        if *cancel.borrow_and_update() {
            break Exit::Cancelled;
        }
        tokio::select! {
            status = child.wait() => return (exit_of(status), true),
            () = sleep_until(deadline) => break Exit::TimedOut,
            changed = cancel.changed(), if cancel_open => cancel_open = changed.is_ok(),
            _ = tick.tick() => usage.sample_leader(pid),
        }
    };
    (reason, terminate(child, pid, opts).await)
}

/// SIGTERM to the group, `grace`, SIGKILL to the group, then a wait bounded by `final_wait`.
/// Returns whether the leader was reaped.
async fn terminate(child: &mut Child, pid: i32, opts: &SuperviseOptions) -> bool {
    signal_group(pid, Signal::TERM);
    if timeout(opts.grace, child.wait()).await.is_ok() {
        return true;
    }
    signal_group(pid, Signal::KILL);
    timeout(opts.final_wait, child.wait()).await.is_ok()
}

/// Kills a held wrapper that never ran the stage.
async fn abort_held(held: Held, opts: &SuperviseOptions) {
    signal_group(held.pid, Signal::KILL);
    let mut child = held.child;
    let _ = timeout(opts.final_wait, child.wait()).await;
}

fn exit_of(status: std::io::Result<ExitStatus>) -> Exit {
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(sig)) => Exit::Signal(sig),
            (None, None) => Exit::SpawnFailed(format!("unknown wait status {s}")),
        },
        Err(e) => Exit::SpawnFailed(format!("wait: {e}")),
    }
}

/// Puts the held wrapper into the planned pids cgroup (`plan` is `Some` when a process limit
/// is set); says what bounds the task count. Warns once when no cgroup is writable
/// (`allow_uncontained` only goes into the warning).
fn contain(
    pid: i32,
    limits: &StageLimits,
    plan: Option<std::io::Result<CgroupPlan>>,
    allow_uncontained: bool,
) -> (Option<PidsCgroup>, Containment) {
    let (Some(max), Some(plan)) = (limits.processes, plan) else {
        return (None, Containment::NotRequested);
    };
    let attempt = plan
        .and_then(|plan| PidsCgroup::create_at(plan, max))
        .and_then(|cg| cg.add(pid).map(|()| cg));
    match attempt {
        Ok(cg) => {
            let version = cg.version();
            (Some(cg), Containment::Cgroup(version))
        }
        Err(e) => {
            let root = geteuid().is_root();
            static WARNED: Once = Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    error = %e,
                    root,
                    allow_uncontained = allow_uncontained,
                    "no writable pids cgroup: a stage's process count is bounded by \
                     RLIMIT_NPROC only, which root ignores (as root, stages are refused \
                     unless allow_uncontained = true)"
                );
            });
            let c = if root {
                Containment::Uncontained
            } else {
                Containment::RlimitOnly
            };
            (None, c)
        }
    }
}
