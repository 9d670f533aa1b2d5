//! Which policy a daemon starts with, from the policy files it finds and the journal's policy
//! event in force (`docs/DAEMON.md`, *Policy file*). The host reads the files and carries
//! the plan out; the rules are here.
//!
//! `APPLY_POLICY` writes `policy.next.json`, journals, then replaces `policy.json`, so a
//! crash leaves either `policy.json` matching the journal (the change never journaled:
//! `policy.next.json` is discarded) or `policy.next.json` matching it (journaled but not yet
//! moved: it is promoted). Neither needs the operator. Anything else is refused unless the
//! operator accepts it for one start.

use super::policy_seal::{
    FileTag, JournaledPolicy, PolicyFileFault, PolicyFileOk, PolicyMark, check_missing_policy_file,
    check_policy_file,
};

/// A policy file as found at start: the version and digest it holds, and its tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundPolicyFile {
    /// The version and digest of the policy in it.
    pub mark: PolicyMark,
    /// Its tag, checked by the host.
    pub tag: FileTag,
}

/// How `policy.json` is loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MainLoad {
    /// Keyed, and the policy the journal names: load it as it is.
    Journaled,
    /// Unkeyed, but the policy the sealed journal names: load it and write it again keyed.
    SealedUnkeyed,
    /// Refused for this reason, loaded because the operator accepted it: a warning, and the
    /// file is written again keyed.
    Accepted(PolicyFileFault),
}

/// What a start does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartPlan {
    /// `policy.next.json` is the policy the journal names (journaled before a crash, not yet
    /// moved): load it and make it `policy.json`.
    PromoteNext,
    /// Load `policy.json`.
    LoadMain(MainLoad),
    /// No `policy.json`: start with the configuration's policy at version 1 (`accepted`: the
    /// journal named a file, and the operator accepted starting without it).
    Configured {
        /// The refusal the operator overrode, if any.
        accepted: Option<PolicyFileFault>,
    },
    /// Refuse to start: `policy.json` may not be loaded.
    RefuseMain(PolicyFileFault),
    /// Refuse to start: `policy.json` is missing, but the journal names a policy file.
    RefuseMissing(PolicyFileFault),
}

/// The plan for a start that found `next` (`policy.next.json`) and `main` (`policy.json`),
/// with the journal's policy event in force `journal`; `accept` is the operator's
/// `--accept-policy-file`, which lets a refused `policy.json` (or its absence) through once.
/// A `next` that is not the journal's policy is discarded (its change never took effect).
#[must_use]
pub fn plan_policy_start(
    next: Option<FoundPolicyFile>,
    main: Option<FoundPolicyFile>,
    journal: Option<JournaledPolicy>,
    accept: bool,
) -> StartPlan {
    if let Some(next) = next {
        if check_policy_file(next.mark, next.tag, journal) == Ok(PolicyFileOk::Journaled) {
            return StartPlan::PromoteNext;
        }
    }
    let Some(main) = main else {
        return match check_missing_policy_file(journal) {
            Ok(()) => StartPlan::Configured { accepted: None },
            Err(fault) if accept => StartPlan::Configured {
                accepted: Some(fault),
            },
            Err(fault) => StartPlan::RefuseMissing(fault),
        };
    };
    match check_policy_file(main.mark, main.tag, journal) {
        Ok(PolicyFileOk::Journaled) => StartPlan::LoadMain(MainLoad::Journaled),
        Ok(PolicyFileOk::SealedUnkeyed) => StartPlan::LoadMain(MainLoad::SealedUnkeyed),
        Err(fault) if accept => StartPlan::LoadMain(MainLoad::Accepted(fault)),
        Err(fault) => StartPlan::RefuseMain(fault),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn mark(version: u64) -> PolicyMark {
        PolicyMark {
            version,
            digest: [version as u8; 32],
        }
    }

    const fn file(version: u64, tag: FileTag) -> Option<FoundPolicyFile> {
        Some(FoundPolicyFile {
            mark: mark(version),
            tag,
        })
    }

    const fn journaled(
        version: u64,
        sealed: bool,
        from_configuration: bool,
    ) -> Option<JournaledPolicy> {
        Some(JournaledPolicy {
            mark: mark(version),
            sealed,
            from_configuration,
        })
    }

    use FileTag::{Authentic, Missing, Wrong};

    #[test]
    fn a_journaled_next_file_is_promoted_else_discarded() {
        let j = journaled(3, true, false);
        assert_eq!(
            plan_policy_start(file(3, Authentic), file(2, Authentic), j, false),
            StartPlan::PromoteNext
        );
        // Not the journal's: discarded; policy.json (the journal's) loads.
        assert_eq!(
            plan_policy_start(file(4, Authentic), file(3, Authentic), j, false),
            StartPlan::LoadMain(MainLoad::Journaled)
        );
        // A forged next file is never promoted, even with --accept-policy-file.
        assert_eq!(
            plan_policy_start(file(3, Wrong), file(3, Authentic), j, true),
            StartPlan::LoadMain(MainLoad::Journaled)
        );
    }

    #[test]
    fn policy_json_loads_only_as_the_journal_names_it_unless_accepted() {
        let j = journaled(3, true, false);
        assert_eq!(
            plan_policy_start(None, file(3, Missing), j, false),
            StartPlan::LoadMain(MainLoad::SealedUnkeyed)
        );
        let unsealed = journaled(3, false, false);
        assert_eq!(
            plan_policy_start(None, file(3, Missing), unsealed, false),
            StartPlan::RefuseMain(PolicyFileFault::Unkeyed)
        );
        assert_eq!(
            plan_policy_start(None, file(3, Wrong), j, false),
            StartPlan::RefuseMain(PolicyFileFault::BadTag)
        );
        assert_eq!(
            plan_policy_start(None, file(3, Wrong), j, true),
            StartPlan::LoadMain(MainLoad::Accepted(PolicyFileFault::BadTag))
        );
        assert_eq!(
            plan_policy_start(None, file(3, Authentic), None, false),
            StartPlan::RefuseMain(PolicyFileFault::NotJournaled)
        );
    }

    #[test]
    fn no_policy_json_is_the_configuration_unless_the_journal_names_a_file() {
        assert_eq!(
            plan_policy_start(None, None, None, false),
            StartPlan::Configured { accepted: None }
        );
        assert_eq!(
            plan_policy_start(None, None, journaled(1, true, true), false),
            StartPlan::Configured { accepted: None }
        );
        let fault = PolicyFileFault::FileMissing { journal_version: 4 };
        assert_eq!(
            plan_policy_start(None, None, journaled(4, true, false), false),
            StartPlan::RefuseMissing(fault)
        );
        assert_eq!(
            plan_policy_start(None, None, journaled(4, true, false), true),
            StartPlan::Configured {
                accepted: Some(fault)
            }
        );
    }
}
