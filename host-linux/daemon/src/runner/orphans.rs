//! What a stage leaves behind when the daemon dies: the durable record of a running stage,
//! and the clean-up at the next start.
//!
//! Before a stage's program starts (while its wrapper is held), the runner writes
//! `OUT_DIR/running-stages/<leader pid>.json` and makes it durable (file and directory
//! `fsync`): the daemon's pid, the boot id (`/proc/sys/kernel/random/boot_id`), the stage and
//! round, the leader's pid and start time (`/proc/PID/stat` field 22), the process group, the
//! pids cgroup's directory, and the run's marker: the value of [`STAGE_RUN_VAR`], which the
//! stage and everything it starts inherit in their environment. The record is removed once
//! the stage's clean-up finished.
//!
//! At the next start, before the pipeline is recovered from the journal, [`reap_orphans`]
//! reads every record. A record from an earlier boot is dropped (nothing of it can run). For
//! one of this boot, a process is the stage's when it is
//!
//! - a member of the recorded cgroup,
//! - the leader (same pid *and* same start time: a reused pid is not ours),
//! - a process whose initial environment (`/proc/PID/environ`) holds the run's marker, or
//! - a member of the recorded process group while that group holds one of the above (a
//!   group id is not reused while any member exists, so such a group is still the stage's).
//!
//! Those are SIGKILLed (after `cgroup.kill` on cgroup v2), again and again until none is
//! left, then the cgroup is removed. Zombies are dead: they are not counted, and since the
//! dead daemon's orphans were re-parented to init, reaping them is init's job.
//!
//! # Limits
//!
//! A process that both left the cgroup (or had none: no writable pids cgroup) and started
//! with an environment without the marker (`env -i`, or an `exec` with a new environment)
//! and left the process group (`setsid`) cannot be told apart from any other process and is
//! not found. `/proc/PID/environ` of another user's process is unreadable to a non-root
//! daemon, which can only signal its own processes anyway.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use heidi_core::pipeline::Leftovers;
use rustix::process::{Pid, Signal, getpid, kill_process};
use serde::{Deserialize, Serialize};

use super::procfs::{ProcStat, read_proc_stat};
use super::types::RecordSpec;

/// The variable every stage process inherits, whose value names the run (see the module
/// docs).
pub const STAGE_RUN_VAR: &str = "HEIDI_STAGE_RUN";

/// The folder of `OUT_DIR` holding the records of running stages.
pub const RECORD_DIR: &str = "running-stages";

/// Pause between kill rounds at start-up.
const POLL: Duration = Duration::from_millis(10);

/// The durable record of a running stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) daemon_pid: u32,
    pub(crate) boot_id: String,
    pub(crate) stage: String,
    pub(crate) round: u32,
    pub(crate) leader_pid: i32,
    pub(crate) leader_start_ticks: u64,
    pub(crate) pgid: i32,
    pub(crate) cgroup: Option<PathBuf>,
    pub(crate) marker: String,
}

/// A fresh marker for one stage run: unique across this daemon's runs and its restarts.
pub(crate) fn new_marker() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The kernel's id of this boot.
fn boot_id() -> io::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_owned())
}

/// A written record; [`RecordFile::remove`] deletes it.
#[derive(Debug)]
pub(crate) struct RecordFile {
    path: PathBuf,
}

impl RecordFile {
    /// Deletes the record (the stage is cleaned up). A failure is logged: the next start
    /// would find the record, find nothing of the stage, and drop it.
    pub(crate) fn remove(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "stage record not removed");
        }
    }
}

/// Writes and makes durable the record of the held stage `leader` (also its process group).
/// Blocking (two `fsync`s).
pub(crate) fn write_record(
    spec: &RecordSpec,
    leader: i32,
    cgroup: Option<&Path>,
    marker: &str,
) -> io::Result<RecordFile> {
    let start = read_proc_stat(leader)?.start_ticks;
    let record = Record {
        daemon_pid: std::process::id(),
        boot_id: boot_id()?,
        stage: spec.stage.clone(),
        round: spec.round,
        leader_pid: leader,
        leader_start_ticks: start,
        pgid: leader,
        cgroup: cgroup.map(Path::to_path_buf),
        marker: marker.to_owned(),
    };
    let dir = spec.dir.join(RECORD_DIR);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{leader}.json"));
    let tmp = dir.join(format!("{leader}.json.tmp"));
    let text = serde_json::to_vec(&record).map_err(io::Error::other)?;
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&text)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(RecordFile { path })
}

/// What [`reap_orphans`] found of one stage interrupted in this boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrphanReport {
    /// The stage's name, from its record.
    pub stage: String,
    /// The stage's round.
    pub round: u32,
    /// What was found and killed (live processes each counted once; when something
    /// survived, the stage's record is kept for the next start).
    pub found: Leftovers,
}

/// Kills what is left of every stage recorded in `out_dir` (see the module docs), each
/// within `limit`; returns what was found for records of this boot. Blocking.
pub fn reap_orphans(out_dir: &Path, limit: Duration) -> Vec<OrphanReport> {
    let dir = out_dir.join(RECORD_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let boot = boot_id().ok();
    let mut reports = Vec::new();
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    paths.sort();
    for path in paths {
        if path.extension().is_none_or(|x| x != "json") {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let parsed = read_record(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()));
        let record = match parsed {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable stage record dropped");
                let _ = std::fs::remove_file(&path);
                continue;
            }
        };
        if boot.as_deref() != Some(record.boot_id.as_str()) {
            tracing::info!(path = %path.display(), "stage record of an earlier boot dropped");
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let report = reap_one(&record, Instant::now() + limit);
        if report.found.all_gone {
            let _ = std::fs::remove_file(&path);
        }
        reports.push(report);
    }
    reports
}

/// The most bytes of a record read (one is a few hundred).
const RECORD_MAX_BYTES: u64 = 64 * 1024;

/// Reads a record file: a regular file (checked on the opened handle; the open does not
/// block on a FIFO) of at most [`RECORD_MAX_BYTES`].
fn read_record(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.take(RECORD_MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > RECORD_MAX_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("longer than {RECORD_MAX_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// Kills the processes of `record` until none is left and its cgroup is removed, or until
/// `deadline`.
fn reap_one(record: &Record, deadline: Instant) -> OrphanReport {
    let me = getpid().as_raw_pid();
    let cgroup_found = record.cgroup.as_ref().is_some_and(|d| d.is_dir());
    let mut found = BTreeSet::new();
    let mut killed = BTreeSet::new();
    let (all_gone, cgroup_removed) = loop {
        if let Some(dir) = record.cgroup.as_ref().filter(|_| cgroup_found) {
            // cgroup v2 (Linux 5.14+) kills the whole subtree at once; v1 has no such file
            // (never created here).
            if let Ok(mut kill) = std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.kill"))
            {
                let _ = kill.write_all(b"1");
            }
        }
        let live = stage_processes(record, &scan(record, me));
        for &pid in &live {
            found.insert(pid);
            let sent = Pid::from_raw(pid).is_some_and(|p| kill_process(p, Signal::KILL).is_ok());
            if sent {
                killed.insert(pid);
            }
        }
        let cgroup_gone = match record.cgroup.as_ref() {
            None => true,
            Some(dir) => match std::fs::remove_dir(dir) {
                Ok(()) => true,
                Err(e) => e.kind() == io::ErrorKind::NotFound,
            },
        };
        if live.is_empty() && cgroup_gone {
            break (true, cgroup_found);
        }
        if Instant::now() >= deadline {
            break (false, cgroup_found && cgroup_gone);
        }
        std::thread::sleep(POLL);
    };
    OrphanReport {
        stage: record.stage.clone(),
        round: record.round,
        found: Leftovers {
            daemon_pid: record.daemon_pid,
            processes_found: found.len() as u64,
            processes_killed: killed.len() as u64,
            cgroup_found,
            cgroup_removed,
            all_gone,
        },
    }
}

/// Live (not zombie) processes, other than this one, whose initial environment holds the
/// run's `marker` as [`STAGE_RUN_VAR`].
pub(crate) fn marked_processes(marker: &str) -> BTreeSet<i32> {
    let needle = format!("{STAGE_RUN_VAR}={marker}");
    let me = getpid().as_raw_pid();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && has_var(pid, needle.as_bytes()))
        .filter(|&pid| read_proc_stat(pid).is_ok_and(|st| st.state != b'Z'))
        .collect()
}

/// Whether `/proc/<pid>/environ` holds the entry `needle` (`NAME=value`).
fn has_var(pid: i32, needle: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .any(|var| var == needle)
}

/// One process as the scan sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) pid: i32,
    pub(crate) stat: ProcStat,
    pub(crate) has_marker: bool,
    pub(crate) in_cgroup: bool,
}

/// Every process but this one, with what marks it as the stage's.
fn scan(record: &Record, me: i32) -> Vec<Seen> {
    let members: BTreeSet<i32> = record
        .cgroup
        .as_ref()
        .and_then(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default();
    let needle = format!("{STAGE_RUN_VAR}={}", record.marker);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let stat = read_proc_stat(pid).ok()?;
            Some(Seen {
                pid,
                stat,
                has_marker: has_var(pid, needle.as_bytes()),
                in_cgroup: members.contains(&pid),
            })
        })
        .collect()
}

/// The live (not zombie) processes of `seen` that are the stage's (the rules of the module
/// docs). Pure.
pub(crate) fn stage_processes(record: &Record, seen: &[Seen]) -> BTreeSet<i32> {
    let marked = |s: &Seen| {
        s.in_cgroup
            || s.has_marker
            || (s.pid == record.leader_pid && s.stat.start_ticks == record.leader_start_ticks)
    };
    let group_ours = seen.iter().any(|s| s.stat.pgrp == record.pgid && marked(s));
    seen.iter()
        .filter(|s| s.stat.state != b'Z')
        .filter(|s| marked(s) || (group_ours && s.stat.pgrp == record.pgid))
        .map(|s| s.pid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            daemon_pid: 10,
            boot_id: "b".into(),
            stage: "train".into(),
            round: 2,
            leader_pid: 100,
            leader_start_ticks: 5000,
            pgid: 100,
            cgroup: None,
            marker: "m".into(),
        }
    }

    fn seen(pid: i32, pgrp: i32, start: u64, state: u8, marker: bool, cg: bool) -> Seen {
        Seen {
            pid,
            stat: ProcStat {
                state,
                ppid: 1,
                pgrp,
                cpu_ticks: 0,
                rss_pages: 0,
                start_ticks: start,
            },
            has_marker: marker,
            in_cgroup: cg,
        }
    }

    fn ours(seen: &[Seen]) -> Vec<i32> {
        stage_processes(&record(), seen).into_iter().collect()
    }

    #[test]
    fn the_leader_counts_only_with_its_start_time() {
        assert_eq!(ours(&[seen(100, 100, 5000, b'S', false, false)]), [100]);
        // Same pid, another start time: a reused pid, not ours; nor is its group.
        assert!(ours(&[seen(100, 100, 7000, b'S', false, false)]).is_empty());
        assert!(
            ours(&[
                seen(100, 100, 7000, b'S', false, false),
                seen(101, 100, 7001, b'S', false, false),
            ])
            .is_empty()
        );
    }

    #[test]
    fn marker_cgroup_and_a_vouched_group_count() {
        let all = [
            // A setsid escaper with the marker, in its own group.
            seen(200, 200, 6000, b'S', true, false),
            // A cgroup member that left the group and cleared its environment.
            seen(300, 300, 6000, b'S', false, true),
            // A group member without marker (env -i): ours because 400 vouches for the group.
            seen(401, 100, 6000, b'S', false, false),
            seen(400, 100, 6000, b'S', true, false),
            // Unrelated.
            seen(500, 500, 6000, b'S', false, false),
            // A zombie with the marker is dead already.
            seen(600, 100, 6000, b'Z', true, false),
        ];
        assert_eq!(ours(&all), [200, 300, 400, 401]);
        // Without anything that vouches for group 100, its unmarked member is not ours.
        assert!(ours(&[seen(401, 100, 6000, b'S', false, false)]).is_empty());
    }

    #[test]
    fn a_cgroup_that_cannot_be_removed_by_the_deadline_keeps_the_record() {
        let dir = tempfile::tempdir().unwrap();
        // Stands in for a cgroup that stays busy: a directory rmdir refuses (not empty).
        let busy = dir.path().join("busy-cgroup");
        std::fs::create_dir(&busy).unwrap();
        std::fs::write(busy.join("cgroup.procs"), "").unwrap();
        let records = dir.path().join(RECORD_DIR);
        std::fs::create_dir(&records).unwrap();
        let mut r = record();
        r.boot_id = boot_id().unwrap();
        (r.leader_pid, r.pgid) = (2_000_000_000, 2_000_000_000);
        r.cgroup = Some(busy.clone());
        std::fs::write(records.join("1.json"), serde_json::to_vec(&r).unwrap()).unwrap();
        let started = Instant::now();
        let reports = reap_orphans(dir.path(), Duration::from_millis(100));
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(reports.len(), 1, "{reports:?}");
        let report = &reports[0];
        let f = report.found;
        assert!(!f.all_gone && f.cgroup_found && !f.cgroup_removed);
        assert_eq!(f.processes_found, 0);
        assert!(records.join("1.json").exists(), "kept for the next start");
        // Once the cgroup can go, the next start removes it and drops the record.
        std::fs::remove_file(busy.join("cgroup.procs")).unwrap();
        let reports = reap_orphans(dir.path(), Duration::from_millis(100));
        assert!(
            reports[0].found.all_gone && reports[0].found.cgroup_removed,
            "{reports:?}"
        );
        assert!(!busy.exists() && !records.join("1.json").exists());
    }

    #[test]
    fn records_round_trip_and_missing_dirs_are_nothing() {
        let r = record();
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
        let dir = tempfile::tempdir().unwrap();
        assert!(reap_orphans(dir.path(), Duration::from_millis(50)).is_empty());
    }

    #[test]
    fn records_of_another_boot_unreadable_fifos_or_too_long_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let records = dir.path().join(RECORD_DIR);
        std::fs::create_dir(&records).unwrap();
        let other_boot = serde_json::to_vec(&record()).unwrap();
        std::fs::write(records.join("100.json"), other_boot).unwrap();
        std::fs::write(records.join("7.json"), b"{not json").unwrap();
        std::fs::write(records.join("8.json.tmp"), b"half").unwrap();
        let fifo = records.join("9.json");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // Of this boot and for no process (no pid is that high): read, it would be reported.
        let mut this_boot = record();
        this_boot.boot_id = boot_id().unwrap();
        (this_boot.leader_pid, this_boot.pgid) = (2_000_000_000, 2_000_000_000);
        let mut long = serde_json::to_vec(&this_boot).unwrap();
        long.resize(RECORD_MAX_BYTES as usize + 1, b' ');
        std::fs::write(records.join("10.json"), long).unwrap();
        assert!(reap_orphans(dir.path(), Duration::from_millis(50)).is_empty());
        assert_eq!(std::fs::read_dir(&records).unwrap().count(), 0);
    }
}
