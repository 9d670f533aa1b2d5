//! Readiness: the checks named by the policy's `readiness.checks` that hold the daemon's
//! `/ready` back, read from the core service's health set.

use heidi_core::Instant;
use heidi_core::health::Readiness;

use super::core_service::DaemonHealth;

/// A check that holds readiness back, and why: `unhealthy`, `unknown` (silent for two
/// intervals) or `unreported` (it never reported since the daemon started).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotReady {
    /// The check's name.
    pub name: String,
    /// `"unhealthy"`, `"unknown"` or `"unreported"`.
    pub status: &'static str,
}

/// Those of `names` that are not ready at `now` in `set` (the core's [`Readiness`]).
pub(crate) fn not_ready(set: &DaemonHealth, now: Instant, names: &[&str]) -> Vec<NotReady> {
    names
        .iter()
        .filter_map(|&name| match set.readiness(now, name) {
            Readiness::Ready => None,
            status => Some(NotReady {
                name: name.to_owned(),
                status: status.as_str(),
            }),
        })
        .collect()
}
