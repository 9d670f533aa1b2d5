//! A per-run pids cgroup: caps the number of tasks (processes and threads) a stage can create,
//! even for root (the kernel ignores `RLIMIT_NPROC` for uid 0), and lists every descendant,
//! including those that left the stage's process group.
//!
//! cgroup v1 (`/sys/fs/cgroup/pids/`) is tried first, then cgroup v2 (`/sys/fs/cgroup` with
//! `pids` in `cgroup.controllers`). The run's cgroup is created below the daemon's own cgroup
//! of that hierarchy, as `heidi-stage-<daemon pid>-<n>`.
//!
//! For tests only, `HEIDI_TEST_CGROUP_ROOT` names a directory that stands in for
//! `/sys/fs/cgroup` (an empty or unwritable one makes every stage go without a cgroup); only a
//! debug build reads it.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::process::{Pid, Signal, kill_process};

const V1_ROOT: &str = "/sys/fs/cgroup/pids";
const V2_ROOT: &str = "/sys/fs/cgroup";

/// Test-only: a directory standing in for `/sys/fs/cgroup` (see the module docs).
pub const TEST_CGROUP_ROOT_VAR: &str = "HEIDI_TEST_CGROUP_ROOT";

/// The v1 pids root and the v2 root: the real ones, or below [`TEST_CGROUP_ROOT_VAR`] in a
/// debug build. A release build ignores the variable: whoever sets the daemon's environment
/// must not be able to make an uncontained stage look contained.
fn roots() -> (PathBuf, PathBuf) {
    let test_root = if cfg!(debug_assertions) {
        std::env::var_os(TEST_CGROUP_ROOT_VAR)
    } else {
        None
    };
    match test_root {
        Some(root) => (Path::new(&root).join("pids"), PathBuf::from(root)),
        None => (PathBuf::from(V1_ROOT), PathBuf::from(V2_ROOT)),
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Which cgroup hierarchy holds the run's cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// The v1 `pids` hierarchy.
    V1,
    /// The unified v2 hierarchy.
    V2,
}

/// Where a run's cgroup is to be created ([`PidsCgroup::plan`]).
#[derive(Debug)]
pub(crate) struct CgroupPlan {
    dir: PathBuf,
    version: CgroupVersion,
}

impl CgroupPlan {
    /// The cgroup's directory to be.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A pids cgroup for one stage run; killed and removed on drop if not removed before.
#[derive(Debug)]
pub(crate) struct PidsCgroup {
    dir: PathBuf,
    version: CgroupVersion,
    removed: bool,
    /// Every task id seen in the cgroup, for reaping those that left the process group.
    seen: BTreeSet<i32>,
}

impl PidsCgroup {
    /// Creates the run's cgroup with `pids.max = max_tasks` ([`PidsCgroup::plan`], then
    /// [`PidsCgroup::create_at`]).
    #[cfg(test)]
    pub(crate) fn create(max_tasks: u64) -> io::Result<Self> {
        Self::create_at(Self::plan()?, max_tasks)
    }

    /// Finds the hierarchy and a free name for the run's cgroup, without creating it, so that
    /// its path can be recorded before it exists.
    pub(crate) fn plan() -> io::Result<CgroupPlan> {
        let own = std::fs::read_to_string("/proc/self/cgroup")?;
        let v1 = v1_parent(&own).ok_or_else(|| unavailable("cgroup v1 pids"));
        let (parent, version) = match v1 {
            Ok(p) => (p, CgroupVersion::V1),
            Err(e1) => match v2_parent(&own) {
                Ok(p) => (p, CgroupVersion::V2),
                Err(e2) => return Err(unavailable(&format!("{e1}; {e2}"))),
            },
        };
        Ok(CgroupPlan {
            dir: free_name(&parent)?,
            version,
        })
    }

    /// Creates the planned cgroup with `pids.max = max_tasks`.
    pub(crate) fn create_at(plan: CgroupPlan, max_tasks: u64) -> io::Result<Self> {
        std::fs::create_dir(&plan.dir)?;
        let cg = Self {
            dir: plan.dir,
            version: plan.version,
            removed: false,
            seen: BTreeSet::new(),
        };
        std::fs::write(cg.dir.join("pids.max"), max_tasks.to_string())?;
        Ok(cg)
    }

    /// Which hierarchy the cgroup lives in.
    pub(crate) fn version(&self) -> CgroupVersion {
        self.version
    }

    /// Moves process `pid` into the cgroup.
    pub(crate) fn add(&self, pid: i32) -> io::Result<()> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
    }

    /// Sends SIGKILL to every process in the cgroup; returns how many were listed.
    pub(crate) fn kill_all(&mut self) -> usize {
        let members = self.members();
        if self.version == CgroupVersion::V2 {
            let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        }
        for &pid in &members {
            if let Some(pid) = Pid::from_raw(pid) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
        members.len()
    }

    /// Task ids ever seen in the cgroup.
    pub(crate) fn seen(&self) -> &BTreeSet<i32> {
        &self.seen
    }

    /// Removes the cgroup; fails (EBUSY) while it still holds tasks.
    pub(crate) fn remove(&mut self) -> io::Result<()> {
        if !self.removed {
            std::fs::remove_dir(&self.dir)?;
            self.removed = true;
        }
        Ok(())
    }

    fn members(&mut self) -> Vec<i32> {
        let text = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        self.seen.extend(pids.iter().copied());
        pids
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        if !self.removed {
            self.kill_all();
            if let Err(e) = self.remove() {
                tracing::warn!(dir = %self.dir.display(), error = %e, "stage cgroup not removed");
            }
        }
    }
}

/// How many names [`free_name`] tries.
const NAME_ATTEMPTS: u32 = 64;

/// `parent/heidi-stage-<daemon pid>-<n>` with the next `n` whose directory does not exist.
/// A name can be taken by the cgroup of an earlier daemon that had the same pid and was
/// killed before it removed it (a restart kills what such a cgroup holds and removes it, but
/// only for its own `OUT_DIR`): such names are skipped. No other process can take a free
/// name before the caller creates it: names hold this daemon's pid, and `n` is never handed
/// out twice.
fn free_name(parent: &Path) -> io::Result<PathBuf> {
    if !parent.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a directory", parent.display()),
        ));
    }
    for _ in 0..NAME_ATTEMPTS {
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("heidi-stage-{}-{n}", std::process::id()));
        match std::fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(dir),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{NAME_ATTEMPTS} cgroup names taken"),
    ))
}

/// The daemon's own cgroup in the v1 pids hierarchy, if that hierarchy is mounted.
fn v1_parent(own: &str) -> Option<PathBuf> {
    let rel = own_path(own, |controllers| {
        controllers.split(',').any(|c| c == "pids")
    })?;
    let (root, _) = roots();
    root.join("cgroup.procs")
        .exists()
        .then(|| join_rel(&root, rel))
}

/// The daemon's own cgroup in the v2 hierarchy, with the pids controller delegated to its
/// children (enabled here if needed).
fn v2_parent(own: &str) -> io::Result<PathBuf> {
    let (_, root) = roots();
    let controllers = std::fs::read_to_string(root.join("cgroup.controllers"))?;
    if !controllers.split_ascii_whitespace().any(|c| c == "pids") {
        return Err(unavailable("cgroup v2 without pids"));
    }
    let rel = own_path(own, str::is_empty).ok_or_else(|| unavailable("cgroup v2 path"))?;
    let parent = join_rel(&root, rel);
    let control = parent.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&control)?;
    if !enabled.split_ascii_whitespace().any(|c| c == "pids") {
        std::fs::write(&control, "+pids")?;
    }
    Ok(parent)
}

/// The path of the line of `/proc/self/cgroup` whose controller list matches.
fn own_path(text: &str, matches: impl Fn(&str) -> bool) -> Option<&str> {
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        matches(controllers).then_some(path)
    })
}

fn join_rel(root: &Path, rel: &str) -> PathBuf {
    root.join(rel.trim_start_matches('/'))
}

fn unavailable(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("{what} unavailable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "9:name=systemd:/\n8:pids:/a/b\n4:memory,cpu:/m\n0::/user.slice/x\n";

    #[test]
    fn names_left_by_an_earlier_daemon_with_the_same_pid_are_skipped() {
        let parent = tempfile::tempdir().unwrap();
        let next = NEXT_ID.load(Ordering::Relaxed);
        let taken: Vec<PathBuf> = (next..next + 8)
            .map(|n| {
                let dir = parent
                    .path()
                    .join(format!("heidi-stage-{}-{n}", std::process::id()));
                std::fs::create_dir(&dir).unwrap();
                dir
            })
            .collect();
        let free = free_name(parent.path()).unwrap();
        assert!(
            !free.exists() && !taken.contains(&free),
            "{}",
            free.display()
        );
        assert!(free.starts_with(parent.path()));
        // Every name it may try taken: it gives up.
        let next = NEXT_ID.load(Ordering::Relaxed);
        for n in next..next + u64::from(NAME_ATTEMPTS) + 100 {
            let name = format!("heidi-stage-{}-{n}", std::process::id());
            std::fs::create_dir(parent.path().join(name)).unwrap();
        }
        assert_eq!(
            free_name(parent.path()).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        let missing = parent.path().join("missing");
        assert_eq!(
            free_name(&missing).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn own_path_per_hierarchy() {
        let pids = own_path(SAMPLE, |c| c.split(',').any(|c| c == "pids"));
        assert_eq!(pids, Some("/a/b"));
        assert_eq!(own_path(SAMPLE, str::is_empty), Some("/user.slice/x"));
        assert_eq!(own_path("0::/\n", |c| c == "pids"), None);
        assert_eq!(join_rel(Path::new("/r"), "/a/b"), PathBuf::from("/r/a/b"));
        assert_eq!(join_rel(Path::new("/r"), "/"), PathBuf::from("/r/"));
    }
}
