//! Killing and reaping what is left of a stage after its leader ended.
//!
//! Descendants orphaned by the kill are re-parented to the nearest child subreaper, else to
//! pid 1. Some init processes (container and VM inits) never reap, so the daemon marks itself
//! a child subreaper and reaps, with `waitpid`, only zombies that are provably the stage's:
//! members of its process group (the group id cannot be reused while any member, zombie or
//! not, exists) and task ids listed in its cgroup. Children the daemon spawned elsewhere are
//! never reaped here.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{
    Pid, Signal, WaitOptions, getpid, kill_process, kill_process_group, set_child_subreaper,
    test_kill_process_group, waitpgid, waitpid,
};
use tokio::time::Instant;

use super::cgroup::PidsCgroup;
use super::orphans::marked_processes;
use super::procfs::read_proc_stat;

/// Pause between kill-and-reap rounds while leftovers die.
const CLEANUP_POLL: Duration = Duration::from_millis(10);

/// Makes this process the reaper of its orphaned descendants (once per process). Returns
/// whether that worked.
pub(crate) fn become_subreaper() -> bool {
    static DONE: OnceLock<bool> = OnceLock::new();
    *DONE.get_or_init(|| match set_child_subreaper(Some(getpid())) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot become child subreaper: orphaned stage \
                                        processes may stay zombies if init does not reap");
            false
        }
    })
}

/// Sends `sig` to process group `pgid`; a group already gone is fine.
pub(crate) fn signal_group(pgid: i32, sig: Signal) {
    if let Some(p) = Pid::from_raw(pgid) {
        let _ = kill_process_group(p, sig);
    }
}

/// Whether any process (a zombie counts) is still in group `pgid`.
pub(crate) fn group_exists(pgid: i32) -> bool {
    Pid::from_raw(pgid).is_some_and(|p| test_kill_process_group(p) != Err(Errno::SRCH))
}

/// After the leader was reaped: SIGKILLs the rest of group `pgid` and of the cgroup, reaps the
/// zombies that are ours, and removes the cgroup, until all is gone or `deadline` passes.
/// Without a cgroup, processes that left the group (`setsid`) are found by the run's
/// `marker` in their environment ([`marked_processes`]) and killed too. Returns whether all
/// is gone.
pub(crate) async fn clean_up(
    pgid: i32,
    mut cgroup: Option<&mut PidsCgroup>,
    marker: &str,
    deadline: Instant,
) -> bool {
    let mut marked_seen = BTreeSet::new();
    loop {
        signal_group(pgid, Signal::KILL);
        if let Some(cg) = cgroup.as_deref_mut() {
            cg.kill_all();
        }
        let marked = if cgroup.is_none() {
            marked_processes(marker)
        } else {
            BTreeSet::new()
        };
        for &pid in &marked {
            if let Some(p) = Pid::from_raw(pid) {
                let _ = kill_process(p, Signal::KILL);
            }
        }
        marked_seen.extend(marked.iter().copied());
        reap_group(pgid);
        if let Some(cg) = cgroup.as_deref() {
            reap_listed(cg.seen(), pgid);
        }
        reap_listed(&marked_seen, pgid);
        let cgroup_gone = cgroup.as_deref_mut().is_none_or(|cg| cg.remove().is_ok());
        if cgroup_gone && marked.is_empty() && !group_exists(pgid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(CLEANUP_POLL).await;
    }
}

/// Reaps every exited child of ours in group `pgid`.
fn reap_group(pgid: i32) {
    let Some(p) = Pid::from_raw(pgid) else { return };
    while let Ok(Some(_)) = waitpgid(p, WaitOptions::NOHANG) {}
}

/// Reaps zombies of ours that were seen in the cgroup (or with the run's marker) but left
/// group `pgid`. A seen pid is reaped only while it is a zombie whose parent is this process,
/// so it is still the task that was seen unless the stage's own parent reaped it and the pid
/// was reused by a new child of ours that has exited too.
fn reap_listed(seen: &BTreeSet<i32>, pgid: i32) {
    let me = getpid().as_raw_pid();
    for &pid in seen {
        let ours = read_proc_stat(pid)
            .is_ok_and(|st| st.state == b'Z' && st.ppid == me && st.pgrp != pgid);
        if let (true, Some(p)) = (ours, Pid::from_raw(pid)) {
            let _ = waitpid(Some(p), WaitOptions::NOHANG);
        }
    }
}
