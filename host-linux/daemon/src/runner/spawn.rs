//! Starting a stage: the held wrapper, its process group, its rlimits, and the release.
//!
//! The stage is started through a shell wrapper that waits for one line on its stdin before it
//! `exec`s the stage program (see the [module docs](super) for why). While it waits, the
//! parent sets the process group, the rlimits (`prlimit` on the wrapper's pid) and the cgroup;
//! then it writes `go` and the wrapper closes every inherited fd above 2, points stdin at
//! `/dev/null` and `exec`s the stage.

use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use rustix::io::Errno;
use rustix::pipe::{PipeFlags, pipe_with};
use rustix::process::{Pid, Resource, Rlimit, getpgid, prlimit, setpgid};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe::Receiver;
use tokio::process::{Child, ChildStdin, Command};

use super::orphans::STAGE_RUN_VAR;
use super::{STAGE_ENV_REMOVED, StageCommand, StageLimits};

/// The wrapper for bash: closes every fd above 2 (bash can name any fd number).
const BASH_WRAPPER: &str = r#"read -r go || exit 125
[ "$go" = go ] || exit 125
for f in /proc/$$/fd/*; do n=${f##*/}; if [ "$n" -gt 2 ] && [ -e "$f" ]; then exec {n}<&-; fi; done
exec "$@" </dev/null"#;

/// The wrapper for a POSIX sh without bash: can only close fds 3 to 9.
const SH_WRAPPER: &str = r#"read -r go || exit 125
[ "$go" = go ] || exit 125
exec 3<&- 4<&- 5<&- 6<&- 7<&- 8<&- 9<&-
exec "$@" </dev/null"#;

/// Extra CPU seconds between the soft limit (SIGXCPU) and the hard limit (SIGKILL).
const CPU_HARD_SLACK_S: u64 = 2;

/// A stage started and held before its program runs.
pub(crate) struct Held {
    pub(crate) child: Child,
    pub(crate) pid: i32,
    pub(crate) output: Receiver,
    go: ChildStdin,
}

impl Held {
    /// Lets the wrapper `exec` the stage program. A wrapper that died already is not an error
    /// here: waiting on it reports how it ended.
    pub(crate) async fn release(mut self) -> (Child, Receiver) {
        let _ = self.go.write_all(b"go\n").await;
        drop(self.go);
        (self.child, self.output)
    }
}

/// Starts the held wrapper for `cmd` in its own process group, its stdout and stderr on one
/// pipe. Fails with a message if the program cannot be found or the wrapper cannot start.
///
/// The wrapper runs under `setpriv --pdeathsig KILL` when util-linux's `setpriv` can do that
/// ([`pdeathsig_wrapper`]): the kernel then SIGKILLs the stage's leader as soon as the
/// daemon thread that started it dies, `kill -9` of the daemon included. `marker` is set as
/// [`STAGE_RUN_VAR`] in the stage's environment.
pub(crate) fn spawn_held(cmd: &StageCommand, marker: &str) -> Result<Held, String> {
    let program = resolve_program(cmd)?;
    let (shell, flags, script) = wrapper();
    let (read, write) = pipe_with(PipeFlags::CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let write2 = write.try_clone().map_err(|e| format!("pipe: {e}"))?;
    let mut command = match pdeathsig_wrapper() {
        Some(setpriv) => {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "KILL", "--"]).arg(shell);
            c
        }
        None => Command::new(shell),
    };
    command
        .args(flags)
        .arg(script)
        .arg("heidi-stage")
        .arg(&program)
        .args(&cmd.args)
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::from(write))
        .stderr(Stdio::from(write2))
        .process_group(0)
        .kill_on_drop(true);
    for name in STAGE_ENV_REMOVED {
        command.env_remove(name);
    }
    command.env(STAGE_RUN_VAR, marker);
    if let Some(dir) = &cmd.cwd {
        command.current_dir(dir);
    }
    let spawned = command.spawn();
    // The Command holds the pipe's write ends until dropped; EOF needs them closed here.
    drop(command);
    let mut child = spawned.map_err(|e| format!("{}: {e}", cmd.program.display()))?;
    let pid = child.id().and_then(|id| i32::try_from(id).ok());
    let (Some(pid), Some(go)) = (pid, child.stdin.take()) else {
        return Err("stage wrapper exited at once".into());
    };
    let output = Receiver::from_owned_fd(read).map_err(|e| format!("pipe: {e}"))?;
    join_own_group(pid).map_err(|e| format!("setpgid: {e}"))?;
    Ok(Held {
        child,
        pid,
        output,
        go,
    })
}

/// The parent's half of the process-group setup. The child already did `setpgid(0, 0)`
/// (`process_group(0)`); after the child's `exec` the parent's call fails with EACCES, and with
/// ESRCH if the child is gone, so those are fine as long as the group is right.
fn join_own_group(pid: i32) -> io::Result<()> {
    let p = Pid::from_raw(pid).ok_or(Errno::SRCH)?;
    match setpgid(Some(p), Some(p)) {
        Ok(()) | Err(Errno::ACCESS) | Err(Errno::SRCH) => {}
        Err(e) => return Err(e.into()),
    }
    match getpgid(Some(p)) {
        Ok(g) if g == p => Ok(()),
        Ok(g) => Err(io::Error::other(format!(
            "child {pid} is in group {}",
            g.as_raw_pid()
        ))),
        Err(Errno::SRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Sets the limits on the held wrapper (inherited by the stage through `exec` and by its
/// children). A limit of `None` is left as inherited.
pub(crate) fn apply_limits(pid: i32, limits: &StageLimits) -> io::Result<()> {
    let p = Pid::from_raw(pid).ok_or(Errno::SRCH)?;
    let set = |resource, soft: Option<u64>, slack: u64| -> io::Result<()> {
        if let Some(soft) = soft {
            let new = Rlimit {
                current: Some(soft),
                maximum: Some(soft.saturating_add(slack)),
            };
            prlimit(Some(p), resource, new)?;
        }
        Ok(())
    };
    set(Resource::As, limits.address_space_bytes, 0)?;
    set(Resource::Nofile, limits.open_files, 0)?;
    set(Resource::Cpu, limits.cpu_seconds, CPU_HARD_SLACK_S)?;
    set(Resource::Nproc, limits.processes, 0)?;
    Ok(())
}

/// The wrapper shell, its flags and its script: bash if installed, else `/bin/sh`. Bash runs
/// with `-p` so that neither `BASH_ENV` nor functions exported in the environment run inside
/// the wrapper (they stay in the environment the stage gets).
fn wrapper() -> (&'static Path, &'static [&'static str], &'static str) {
    type Choice = (PathBuf, &'static [&'static str], &'static str);
    static CHOICE: OnceLock<Choice> = OnceLock::new();
    let (path, flags, script) = CHOICE.get_or_init(|| {
        match ["/bin/bash", "/usr/bin/bash"]
            .iter()
            .find(|p| is_executable(Path::new(p)))
        {
            Some(bash) => (PathBuf::from(bash), &["-p", "-c"], BASH_WRAPPER),
            None => {
                tracing::warn!("bash not found: stages may inherit open fds above 9");
                (PathBuf::from("/bin/sh"), &["-c"], SH_WRAPPER)
            }
        }
    });
    (path, flags, script)
}

/// util-linux's `setpriv`, if it is installed and takes `--pdeathsig` (2.33 and later): checked
/// once by running `setpriv --pdeathsig KILL -- <shell> -c 'exit 0'`. Without it, a stage's
/// leader outlives a `kill -9` of the daemon until the next start kills it (warned once).
///
/// The kernel sends the signal when the *thread* that forked the stage exits. Stages are
/// spawned from the daemon's async tasks, which run on the runtime's worker threads; those
/// live as long as the daemon, so the signal comes when the daemon dies.
fn pdeathsig_wrapper() -> Option<&'static Path> {
    static SETPRIV: OnceLock<Option<PathBuf>> = OnceLock::new();
    SETPRIV
        .get_or_init(|| {
            let (shell, _, _) = wrapper();
            let found = ["/usr/bin/setpriv", "/bin/setpriv"]
                .iter()
                .map(Path::new)
                .find(|p| is_executable(p))
                .filter(|p| {
                    std::process::Command::new(p)
                        .args(["--pdeathsig", "KILL", "--"])
                        .arg(shell)
                        .args(["-c", "exit 0"])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                });
            if found.is_none() {
                tracing::warn!(
                    "setpriv --pdeathsig unavailable: a stage's leader outlives a kill -9 \
                     of the daemon until the next start kills it"
                );
            }
            found.map(Path::to_path_buf)
        })
        .as_deref()
}

/// Finds the program as `exec` would (a name with a `/` relative to the stage's working
/// directory, a bare name on the stage's `PATH`) and checks that it is an executable file.
/// Returns an absolute path, which the wrapper `exec`s (and which becomes the stage's
/// `argv[0]`): it cannot be mistaken for an option of `exec` and needs no second `PATH` search.
fn resolve_program(cmd: &StageCommand) -> Result<PathBuf, String> {
    let program = cmd.program.as_path();
    let missing = || format!("{}: no such executable", program.display());
    if program.as_os_str().is_empty() {
        return Err("empty program name".into());
    }
    if program.as_os_str().as_encoded_bytes().contains(&b'/') {
        let full = in_stage_dir(cmd, program);
        return is_executable(&full).then_some(full).ok_or_else(missing);
    }
    let path_var = cmd
        .env
        .iter()
        .rev()
        .find(|(k, _)| k.as_os_str() == OsStr::new("PATH"))
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|dir| in_stage_dir(cmd, &dir.join(program)))
        .find(|p| is_executable(p))
        .ok_or_else(missing)
}

/// `path` made absolute as the stage sees it: relative to the stage's working directory,
/// which is relative to the daemon's (left as is if that cannot be read, in which case the
/// executable check fails).
fn in_stage_dir(cmd: &StageCommand, path: &Path) -> PathBuf {
    let joined = match &cmd.cwd {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    };
    std::path::absolute(&joined).unwrap_or(joined)
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
