//! How a stage's process ended, as the host saw it ([`ProcessEnd`]), and what that means to
//! the pipeline: its [`StageResult`] and the words of a failure for the status and the
//! journal. Also the one rule about containment the host must apply before it starts a stage
//! ([`may_start`]).

use core::fmt;

use super::StageResult;

/// How a stage's leader process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessEnd<'a> {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it (not one the host sent for a timeout or a cancel).
    Signalled(i32),
    /// It ran past its timeout and the host killed its process group.
    TimedOut,
    /// The host cancelled it (a stop, a shutdown).
    Cancelled,
    /// It could not be started: the host's reason.
    NotStarted(&'a str),
}

impl ProcessEnd<'_> {
    /// Exit status 0 is a success, a timeout a timeout, anything else a failure.
    pub fn result(&self) -> StageResult {
        match self {
            ProcessEnd::Exited(0) => StageResult::Success,
            ProcessEnd::TimedOut => StageResult::TimedOut,
            _ => StageResult::Failed,
        }
    }

    /// The failure's description ([`Display`](fmt::Display)), or `None` for a success.
    pub fn failure(&self) -> Option<&Self> {
        (*self != ProcessEnd::Exited(0)).then_some(self)
    }
}

/// How a run that did not succeed ended: `exit status 2`, `killed by signal 9`, ….
impl fmt::Display for ProcessEnd<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessEnd::Exited(code) => write!(f, "exit status {code}"),
            ProcessEnd::Signalled(signal) => write!(f, "killed by signal {signal}"),
            ProcessEnd::TimedOut => f.write_str("timed out; the process group was killed"),
            ProcessEnd::Cancelled => f.write_str("cancelled"),
            ProcessEnd::NotStarted(reason) => write!(f, "could not start: {reason}"),
        }
    }
}

/// Why a stage that nothing would contain is refused; names the setting that allows it.
pub const UNCONTAINED_REFUSAL: &str = "refused to run uncontained: no writable pids cgroup, \
    and RLIMIT_NPROC does not bind root, so nothing would bound the stage's processes; \
    give the daemon a writable pids cgroup, or set allow_uncontained = true in [pipeline]";

/// Whether a stage may start: one that something bounds (`contained`: a pids cgroup, or an
/// `RLIMIT_NPROC` that binds) always; one that nothing bounds only with `allow_uncontained`
/// (the host then journals `stage_uncontained`). The refusal is [`UNCONTAINED_REFUSAL`].
pub fn may_start(contained: bool, allow_uncontained: bool) -> Result<(), &'static str> {
    match contained || allow_uncontained {
        true => Ok(()),
        false => Err(UNCONTAINED_REFUSAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn ends_results_and_words() {
        let cases = [
            (ProcessEnd::Exited(0), StageResult::Success, None),
            (
                ProcessEnd::Exited(2),
                StageResult::Failed,
                Some("exit status 2"),
            ),
            (
                ProcessEnd::Signalled(9),
                StageResult::Failed,
                Some("killed by signal 9"),
            ),
            (
                ProcessEnd::TimedOut,
                StageResult::TimedOut,
                Some("timed out; the process group was killed"),
            ),
            (
                ProcessEnd::Cancelled,
                StageResult::Failed,
                Some("cancelled"),
            ),
            (
                ProcessEnd::NotStarted("no such file"),
                StageResult::Failed,
                Some("could not start: no such file"),
            ),
        ];
        for (end, result, failure) in cases {
            assert_eq!(end.result(), result, "{end:?}");
            assert_eq!(end.failure().map(ToString::to_string).as_deref(), failure);
        }
        assert_eq!(may_start(true, false), Ok(()));
        assert_eq!(may_start(false, true), Ok(()));
        assert_eq!(may_start(false, false), Err(UNCONTAINED_REFUSAL));
    }
}
