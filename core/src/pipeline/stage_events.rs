//! The journal events a host writes about the stages it runs, beside the machine's own
//! ([`PipelineEvent`](super::PipelineEvent)): a failed stage's output, a stage that ran
//! uncontained, and what was left of a stage a previous daemon's death interrupted. Their
//! names, levels, messages and counters are decided here, so every host journals the same
//! facts the same way (see `docs/JOURNAL.md`); finding the facts (capturing output, reading
//! cgroups, killing processes) is the host's.

use core::fmt;

use crate::journal::{Excerpt, Level};

/// The `event_type` of a failed stage's captured output ([`StageOutput`]).
pub const STAGE_OUTPUT_EVENT: &str = "stage_output";

/// The `event_type` of what was left of a stage interrupted by the daemon's death, killed at
/// the next start ([`Leftovers`]).
pub const STAGE_ORPHANS_EVENT: &str = "stage_orphans_killed";

/// The `event_type` of a stage that ran with nothing bounding its process count.
pub const STAGE_UNCONTAINED_EVENT: &str = "stage_uncontained";

/// The level of a `stage_uncontained` event.
pub const UNCONTAINED_LEVEL: Level = Level::Warning;

/// The message of a `stage_uncontained` event.
pub const UNCONTAINED_MESSAGE: &str = "ran uncontained: no writable pids cgroup and running \
    as root, so nothing bounded its processes (allow_uncontained = true)";

/// The `stage_output` event of a failed stage: the end of its output, redacted and cut
/// ([`Excerpt`]), as the message (level `error`), and the bytes left out as the counter
/// `output_dropped_bytes`: those the host's capture dropped plus those the excerpt cut.
#[derive(Clone, Debug)]
pub struct StageOutput {
    excerpt: Excerpt,
    dropped: u64,
}

impl StageOutput {
    /// The event for the captured `tail` of a stage's output, of which the capture dropped
    /// `dropped` bytes before it (so `tail` may begin mid-line).
    #[must_use]
    pub fn of(tail: &str, dropped: u64) -> StageOutput {
        StageOutput {
            excerpt: Excerpt::of(tail, dropped > 0),
            dropped,
        }
    }

    /// The level: `error`.
    pub const fn level(&self) -> Level {
        Level::Error
    }

    /// The message: the excerpt.
    pub fn message(&self) -> &str {
        self.excerpt.as_str()
    }

    /// `counters_delta`: `output_dropped_bytes`.
    pub fn counters(&self) -> [(&'static str, i64); 1] {
        let bytes = self.dropped.saturating_add(self.excerpt.cut_bytes());
        [(
            "output_dropped_bytes",
            i64::try_from(bytes).unwrap_or(i64::MAX),
        )]
    }
}

/// What a host found, and killed, of a stage that a previous daemon's death interrupted:
/// the facts of one `stage_orphans_killed` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Leftovers {
    /// The pid of the daemon that ran the stage.
    pub daemon_pid: u32,
    /// Live processes of the stage found.
    pub processes_found: u64,
    /// Of those, how many were sent SIGKILL.
    pub processes_killed: u64,
    /// Whether the stage's cgroup still existed.
    pub cgroup_found: bool,
    /// Whether that cgroup was removed.
    pub cgroup_removed: bool,
    /// Whether nothing of the stage was left at the end (else the host tries again at its
    /// next start).
    pub all_gone: bool,
}

impl Leftovers {
    /// `warning` when everything is gone, `error` when something of the stage survived.
    pub const fn level(&self) -> Level {
        if self.all_gone {
            Level::Warning
        } else {
            Level::Error
        }
    }

    /// `counters_delta`: `processes_found`, `processes_killed`, `cgroup_removed` (0 or 1) and
    /// `cgroup_left` (1 when the cgroup was found and could not be removed).
    pub fn counters(&self) -> [(&'static str, i64); 4] {
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let cgroup_left = self.cgroup_found && !self.cgroup_removed;
        [
            ("processes_found", count(self.processes_found)),
            ("processes_killed", count(self.processes_killed)),
            ("cgroup_removed", i64::from(self.cgroup_removed)),
            ("cgroup_left", i64::from(cgroup_left)),
        ]
    }
}

/// The message.
impl fmt::Display for Leftovers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pid = self.daemon_pid;
        if self.all_gone {
            write!(
                f,
                "killed what was left of the stage interrupted in pid {pid}"
            )
        } else {
            write!(
                f,
                "processes or the cgroup of the stage interrupted in pid {pid} survived the \
                 kill; retried at the next start"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::journal::OUTPUT_LINE_CHARS;
    use std::format;
    use std::string::ToString;

    #[test]
    fn a_failed_stage_output_counts_what_was_cut() {
        let tail = format!("{}\nlast line", "z".repeat(1000));
        let e = StageOutput::of(&tail, 0);
        let long = "z".repeat(OUTPUT_LINE_CHARS - 1) + "…";
        assert_eq!(e.message(), format!("{long}\nlast line"));
        let cut = (1000 - (OUTPUT_LINE_CHARS - 1)) as i64;
        assert_eq!(e.counters(), [("output_dropped_bytes", cut)]);
        assert_eq!(e.level(), Level::Error);
        // The capture dropped bytes before: the partial first line goes, and is counted.
        let e = StageOutput::of(&tail, 7);
        assert_eq!(e.message(), "last line");
        assert_eq!(e.counters(), [("output_dropped_bytes", 7 + 1001)]);
        let e = StageOutput::of("x", u64::MAX);
        assert_eq!(e.counters(), [("output_dropped_bytes", i64::MAX)]);
    }

    #[test]
    fn leftovers_level_counters_and_message() {
        let all = Leftovers {
            daemon_pid: 41,
            processes_found: 3,
            processes_killed: 3,
            cgroup_found: true,
            cgroup_removed: true,
            all_gone: true,
        };
        assert_eq!(all.level(), Level::Warning);
        assert_eq!(
            all.counters(),
            [
                ("processes_found", 3),
                ("processes_killed", 3),
                ("cgroup_removed", 1),
                ("cgroup_left", 0)
            ]
        );
        assert_eq!(
            all.to_string(),
            "killed what was left of the stage interrupted in pid 41"
        );
        let stuck = Leftovers {
            processes_killed: 2,
            cgroup_removed: false,
            all_gone: false,
            ..all
        };
        assert_eq!(stuck.level(), Level::Error);
        assert_eq!(
            stuck.counters()[1..],
            [
                ("processes_killed", 2),
                ("cgroup_removed", 0),
                ("cgroup_left", 1)
            ]
        );
        assert!(stuck.to_string().contains("pid 41 survived the kill"));
        let no_cgroup = Leftovers {
            cgroup_found: false,
            ..stuck
        };
        assert_eq!(no_cgroup.counters()[3], ("cgroup_left", 0));
    }
}
