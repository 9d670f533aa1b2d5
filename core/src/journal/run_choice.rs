//! Which run id a journal's writer opens with ([`choose_run_id`]) and the form of a
//! generated one ([`GeneratedRunId`]): an existing journal keeps its own; a configured id
//! must match it (a different one is a new run, which belongs in another directory); with
//! neither, a new id is generated from the wall clock and a few random hex digits.

use core::fmt;

use super::is_valid_run_id;
use crate::WallTime;

/// The run id to open with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunIdChoice<'a> {
    /// This one (configured, or the existing journal's).
    Use(&'a str),
    /// A new one ([`GeneratedRunId`]).
    Generate,
}

/// Why no run id can be chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunIdRefusal<'a> {
    /// The configured id is not a valid run id.
    Invalid(&'a str),
    /// The configured id differs from the existing journal's.
    Conflict {
        /// The configured one.
        configured: &'a str,
        /// The journal's.
        existing: &'a str,
    },
}

impl fmt::Display for RunIdRefusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunIdRefusal::Invalid(id) => write!(
                f,
                "RUN_ID {id:?} is not a valid run id (1-128 bytes of [A-Za-z0-9_.:-])"
            ),
            RunIdRefusal::Conflict {
                configured,
                existing,
            } => write!(
                f,
                "RUN_ID {configured:?} differs from the run id {existing:?} of the existing \
                 journal"
            ),
        }
    }
}

/// The run id for a journal with `existing` (its own, if it has lines) when the operator
/// `configured` one.
pub fn choose_run_id<'a>(
    configured: Option<&'a str>,
    existing: Option<&'a str>,
) -> Result<RunIdChoice<'a>, RunIdRefusal<'a>> {
    if let Some(id) = configured {
        if !is_valid_run_id(id.as_bytes()) {
            return Err(RunIdRefusal::Invalid(id));
        }
    }
    match (configured, existing) {
        (Some(configured), Some(existing)) if configured != existing => {
            Err(RunIdRefusal::Conflict {
                configured,
                existing,
            })
        }
        (Some(id), _) | (None, Some(id)) => Ok(RunIdChoice::Use(id)),
        (None, None) => Ok(RunIdChoice::Generate),
    }
}

/// A generated run id: `run-YYYYMMDD-HHMMSS-<random>` (UTC; `random`: a few hex digits the
/// host draws).
#[derive(Clone, Copy, Debug)]
pub struct GeneratedRunId<'a> {
    /// When.
    pub now: WallTime,
    /// The random hex digits.
    pub random_hex: &'a str,
}

impl fmt::Display for GeneratedRunId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.now.to_utc();
        write!(
            f,
            "run-{:04}{:02}{:02}-{:02}{:02}{:02}-{}",
            t.year, t.month, t.day, t.hour, t.minute, t.second, self.random_hex
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn the_journal_keeps_its_run_and_a_new_one_is_generated() {
        assert_eq!(choose_run_id(None, None), Ok(RunIdChoice::Generate));
        assert_eq!(choose_run_id(None, Some("r1")), Ok(RunIdChoice::Use("r1")));
        assert_eq!(
            choose_run_id(Some("r1"), Some("r1")),
            Ok(RunIdChoice::Use("r1"))
        );
        assert_eq!(choose_run_id(Some("r2"), None), Ok(RunIdChoice::Use("r2")));
        let conflict = choose_run_id(Some("r2"), Some("r1")).unwrap_err();
        assert!(conflict.to_string().contains("differs"), "{conflict}");
        assert_eq!(
            choose_run_id(Some("a b"), None),
            Err(RunIdRefusal::Invalid("a b"))
        );
        let id = GeneratedRunId {
            now: WallTime::from_unix_millis(1_771_573_538_307),
            random_hex: "ab12",
        }
        .to_string();
        assert_eq!(id, "run-20260220-074538-ab12");
        assert!(is_valid_run_id(id.as_bytes()));
    }
}
