//! The journal's policy events: how their message names a policy, and which event is in
//! force after reading a journal (`docs/DAEMON.md`, *Policy file*).
//!
//! A policy event is a line of stage [`POLICY_STAGE`] (which clients cannot journal) whose
//! message is `policy version <version> <what> (sha256 <digest>)`. The event in force is the
//! last [`POLICY_APPLIED`] or [`POLICY_LOADED`]; only when retention deleted every one of
//! them, the last [`POLICY_RETAINED`] mark, which retention journals in their place (a mark is
//! never newer than an applied or loaded event still in the journal: it names what the
//! deleted, older lines held).

use core::fmt;

use super::hash::LineHash;
use super::policy_seal::{JournaledPolicy, PolicyMark};

/// The stage of every policy event.
pub const POLICY_STAGE: &str = "kernel";
/// A policy put in force by `APPLY_POLICY`.
pub const POLICY_APPLIED: &str = "policy_applied";
/// The policy a start loaded.
pub const POLICY_LOADED: &str = "policy_loaded";
/// What retention journals in place of the policy events it deletes.
pub const POLICY_RETAINED: &str = "policy_retained";
/// The `<what>` of an event that names the configuration's policy (no policy file expected).
pub const FROM_CONFIGURATION: &str = "loaded from the configuration";

/// A policy event's message: `policy version <version> <what> (sha256 <digest>)`. The
/// journal line has no other field for a digest, so the message carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyMessage<'a> {
    /// The version and digest it names.
    pub mark: PolicyMark,
    /// What happened (`applied`, [`FROM_CONFIGURATION`], `loaded from policy.json`, …).
    pub what: &'a str,
}

impl fmt::Display for PolicyMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digest = LineHash(self.mark.digest).hex();
        write!(
            f,
            "policy version {} {} (sha256 {})",
            self.mark.version,
            self.what,
            digest.as_str()
        )
    }
}

impl PolicyMessage<'_> {
    /// The version and digest a message names; `None` for any other text. Text after the
    /// digest (`(by …)`, `; retained by …`) is ignored.
    #[must_use]
    pub fn parse(message: &str) -> Option<PolicyMark> {
        let rest = message.strip_prefix("policy version ")?;
        let (digits, _) = rest.split_once(' ')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let version = digits.parse::<u64>().ok()?;
        let at = rest.find("(sha256 ")? + "(sha256 ".len();
        let hex = rest.get(at..at + 64)?;
        if rest.as_bytes().get(at + 64) != Some(&b')') {
            return None;
        }
        let digest = LineHash::from_hex(hex.as_bytes())?.0;
        Some(PolicyMark { version, digest })
    }

    /// Whether a message names the configuration's policy.
    #[must_use]
    pub fn names_configuration(message: &str) -> bool {
        message
            .strip_prefix("policy version ")
            .and_then(|rest| rest.split_once(' '))
            .is_some_and(|(_, rest)| rest.starts_with(FROM_CONFIGURATION))
    }
}

/// The policy events of a journal read in order, and the one in force (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyEvents {
    event: Option<JournaledPolicy>,
    retained: Option<JournaledPolicy>,
}

impl PolicyEvents {
    /// Notes line `number` (1-based across the journal's segments) with its `stage`,
    /// `event_type` and `message`; a seal found at open covers the first `sealed_lines`.
    /// Lines that are not policy events are ignored.
    pub fn observe(
        &mut self,
        number: u64,
        stage: &str,
        event_type: &str,
        message: &str,
        sealed_lines: u64,
    ) {
        if stage != POLICY_STAGE {
            return;
        }
        let slot = match event_type {
            POLICY_APPLIED | POLICY_LOADED => &mut self.event,
            POLICY_RETAINED => &mut self.retained,
            _ => return,
        };
        if let Some(mark) = PolicyMessage::parse(message) {
            *slot = Some(JournaledPolicy {
                mark,
                sealed: number <= sealed_lines,
                from_configuration: PolicyMessage::names_configuration(message),
            });
        }
    }

    /// The policy event in force.
    #[must_use]
    pub fn in_force(&self) -> Option<JournaledPolicy> {
        self.event.or(self.retained)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::format;
    use std::string::ToString;

    use super::*;

    const MARK: PolicyMark = PolicyMark {
        version: 7,
        digest: [0xab; 32],
    };

    #[test]
    fn messages_name_version_and_digest() {
        let applied = PolicyMessage {
            mark: MARK,
            what: "applied",
        }
        .to_string();
        assert_eq!(
            applied,
            format!("policy version 7 applied (sha256 {})", "ab".repeat(32))
        );
        assert_eq!(PolicyMessage::parse(&applied), Some(MARK));
        assert_eq!(
            PolicyMessage::parse(&format!("{applied} (by uid 0)")),
            Some(MARK)
        );
        assert!(!PolicyMessage::names_configuration(&applied));
        let configured = PolicyMessage {
            mark: MARK,
            what: FROM_CONFIGURATION,
        }
        .to_string();
        assert!(PolicyMessage::names_configuration(&configured));
        let digest = "ab".repeat(32);
        for bad in [
            "",
            "policy version",
            "policy version x applied (sha256 00)",
            "policy version +7 applied",
            &format!("policy version 7 applied (sha256 {})", &digest[..63]),
            &format!("policy version 7 applied (sha256 {digest}"),
            &format!("policy version 7 applied (sha256 {}zz)", &digest[..62]),
            &format!("policy version 99999999999999999999 applied (sha256 {digest})"),
        ] {
            assert_eq!(PolicyMessage::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_last_applied_or_loaded_event_is_in_force_else_the_retained_mark() {
        let message = |version, what| {
            PolicyMessage {
                mark: PolicyMark { version, ..MARK },
                what,
            }
            .to_string()
        };
        let mut events = PolicyEvents::default();
        assert_eq!(events.in_force(), None);
        events.observe(1, "kernel", POLICY_RETAINED, &message(1, "in force"), 10);
        assert_eq!(events.in_force().map(|p| p.mark.version), Some(1));
        events.observe(
            2,
            "kernel",
            POLICY_LOADED,
            &message(2, FROM_CONFIGURATION),
            10,
        );
        events.observe(3, "client", POLICY_APPLIED, &message(9, "applied"), 10);
        events.observe(
            4,
            "kernel",
            "breaker_transition",
            &message(8, "applied"),
            10,
        );
        let p = events.in_force().unwrap();
        assert_eq!(
            (p.mark.version, p.sealed, p.from_configuration),
            (2, true, true)
        );
        events.observe(11, "kernel", POLICY_APPLIED, &message(3, "applied"), 10);
        events.observe(12, "kernel", POLICY_RETAINED, &message(1, "in force"), 10);
        let p = events.in_force().unwrap();
        assert_eq!(
            (p.mark.version, p.sealed, p.from_configuration),
            (3, false, false)
        );
        events.observe(13, "kernel", POLICY_APPLIED, "policy version garbled", 20);
        assert_eq!(events.in_force().map(|p| p.mark.version), Some(3));
    }
}
