//! `heidid -d`: running in the background like a Unix daemon, without `fork`.
//!
//! Forking a process that may already run threads is unsound, and this crate has no `unsafe`,
//! so the parent starts a second `heidid` instead: the same executable and arguments plus the
//! hidden `--daemon-child`, in the same working directory, stdin on `/dev/null`, stdout and
//! stderr piped back to the parent.
//!
//! - The child calls `setsid` first: a session of its own, so no controlling terminal, and
//!   it is outside the shell's process group (the terminal's `SIGHUP`, `SIGINT` and job
//!   control do not reach it). It never opens a terminal, so it cannot acquire one again.
//! - It starts as in the foreground. Once its listeners accept connections (where the
//!   foreground daemon sends systemd `READY=1`), it points stderr at `/dev/null`, writes
//!   [`READY_LINE`] on stdout, and points stdout at `/dev/null`.
//! - The parent relays the child's stderr until then, so start-up errors reach the terminal.
//!   On [`READY_LINE`] it prints the child's pid on stdout and exits 0. If the child exits
//!   first, the parent exits with the child's status (2 for a configuration error).
//!
//! The working directory is kept (relative paths mean what they mean in the foreground) and
//! the umask too. Logs go to `/dev/null` once detached: the journal and `state.json` remain.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::process::{Command, ExitCode, Stdio};

/// The hidden flag the parent adds to the child's arguments.
pub const CHILD_FLAG: &str = "--daemon-child";

/// What the child writes on stdout once it listens.
pub const READY_LINE: &[u8] = b"READY\n";

/// The parent's side: starts the detached daemon and waits until it listens or fails.
pub fn parent() -> ExitCode {
    match start_child(std::env::args_os().skip(1).collect()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("heidid: cannot start the detached daemon: {e}");
            ExitCode::FAILURE
        }
    }
}

fn start_child(args: Vec<OsString>) -> io::Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(args)
        .arg(CHILD_FLAG)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let relay = child.stderr.take().map(|mut from| {
        std::thread::spawn(move || {
            let _ = io::copy(&mut from, &mut io::stderr());
        })
    });
    let mut said = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        // At most the ready line is read: the child writes nothing else there.
        let _ = stdout.take(READY_LINE.len() as u64).read_to_end(&mut said);
    }
    if said == READY_LINE {
        // The daemon runs whether or not anyone reads its pid.
        let _ = writeln!(io::stdout(), "{}", child.id());
        return Ok(ExitCode::SUCCESS);
    }
    // The child closed stdout without the line: it is exiting. Relay its last words.
    if let Some(relay) = relay {
        let _ = relay.join();
    }
    let status = child.wait()?;
    Ok(match status.code() {
        Some(0) | None => ExitCode::FAILURE,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
    })
}

/// The child's first step: a session of its own.
pub fn child_setsid() -> io::Result<()> {
    rustix::process::setsid()?;
    Ok(())
}

/// The child's step once it listens: stderr, then stdout, to `/dev/null`, telling the parent
/// in between.
pub fn child_ready() -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    rustix::stdio::dup2_stderr(&null)?;
    let mut stdout = io::stdout().lock();
    stdout.write_all(READY_LINE)?;
    stdout.flush()?;
    rustix::stdio::dup2_stdout(&null)?;
    Ok(())
}
