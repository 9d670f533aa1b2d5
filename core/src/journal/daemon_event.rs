//! The journal events a daemon writes about itself and its callers: it started
//! (`daemon_started`), it stopped (`daemon_stopped`), an operator's pipeline command was
//! carried out (`pipeline_control`), and who asked for a change (`… (by <caller>)`). Their
//! stage, names and messages are decided here (see `docs/DAEMON.md`, "Journal"); the host
//! supplies the facts and appends the lines.

use core::fmt;

use crate::pipeline::Mode;
use crate::proto::Method;

/// The stage of the daemon's own events.
pub const DAEMON_STAGE: &str = "daemon";

/// The `event_type` of [`Started`].
pub const DAEMON_STARTED: &str = "daemon_started";

/// The `event_type` of [`Stopped`].
pub const DAEMON_STOPPED: &str = "daemon_stopped";

/// The `event_type` of [`PipelineControl`].
pub const PIPELINE_CONTROL: &str = "pipeline_control";

/// `daemon_started`'s message: `heidid <version> (pid <pid>) listening on unix://<socket>`
/// and ` and http://<addr>` when HTTP is served.
#[derive(Clone, Copy)]
pub struct Started<'a> {
    /// The daemon's version.
    pub version: &'a str,
    /// Its process id.
    pub pid: u32,
    /// The socket's path.
    pub socket: &'a dyn fmt::Display,
    /// The HTTP listener's address, if any.
    pub http: Option<&'a dyn fmt::Display>,
}

impl fmt::Display for Started<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "heidid {} (pid {}) listening on unix://{}",
            self.version, self.pid, self.socket
        )?;
        match self.http {
            Some(addr) => write!(f, " and http://{addr}"),
            None => Ok(()),
        }
    }
}

/// `daemon_stopped`'s message: `heidid stopped on <signal>`.
#[derive(Clone, Copy, Debug)]
pub struct Stopped<'a> {
    /// The signal's name (`SIGTERM`, `SIGINT`).
    pub signal: &'a str,
}

impl fmt::Display for Stopped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "heidid stopped on {}", self.signal)
    }
}

/// `pipeline_control`'s message: the command as its method names it, `accepted`, and who
/// asked: `PIPELINE_START mode=full accepted (by uid=0 gid=0 pid=42)`.
#[derive(Clone, Copy)]
pub struct PipelineControl<'a> {
    /// The `PIPELINE_*` method carried out.
    pub method: Method,
    /// `PIPELINE_START`'s mode.
    pub mode: Option<Mode>,
    /// Who asked, as the host names callers.
    pub by: &'a dyn fmt::Display,
}

impl fmt::Display for PipelineControl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.method.as_str())?;
        if let Some(mode) = self.mode {
            write!(f, " mode={}", mode.name())?;
        }
        write!(f, " accepted{}", By(self.by))
    }
}

/// ` (by <caller>)`: who asked for a change, after its message (`policy_applied`,
/// `pipeline_control`).
#[derive(Clone, Copy)]
pub struct By<'a>(pub &'a dyn fmt::Display);

impl fmt::Display for By<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, " (by {})", self.0)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn messages() {
        let socket = "/run/h.sock";
        let http = "127.0.0.1:8080";
        let started = Started {
            version: "0.1.0",
            pid: 42,
            socket: &socket,
            http: Some(&http),
        };
        assert_eq!(
            started.to_string(),
            "heidid 0.1.0 (pid 42) listening on unix:///run/h.sock and http://127.0.0.1:8080"
        );
        let quiet = Started {
            http: None,
            ..started
        };
        assert!(quiet.to_string().ends_with("unix:///run/h.sock"));
        assert_eq!(
            Stopped { signal: "SIGTERM" }.to_string(),
            "heidid stopped on SIGTERM"
        );
        let who = "uid=0 gid=0 pid=7";
        let start = PipelineControl {
            method: Method::PipelineStart,
            mode: Some(Mode::Full),
            by: &who,
        };
        assert_eq!(
            start.to_string(),
            "PIPELINE_START mode=full accepted (by uid=0 gid=0 pid=7)"
        );
        let stop = PipelineControl {
            method: Method::PipelineStop,
            mode: None,
            by: &who,
        };
        assert_eq!(
            stop.to_string(),
            "PIPELINE_STOP accepted (by uid=0 gid=0 pid=7)"
        );
        assert_eq!(
            By(&"http 127.0.0.1:9").to_string(),
            " (by http 127.0.0.1:9)"
        );
    }
}
