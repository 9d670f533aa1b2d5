//! Keyed policy files: an HMAC-SHA256 tag over a policy document, its version and the run,
//! keyed by the seal key under a label of its own, and the rule that decides whether a
//! policy file found at start may be loaded (see `docs/DAEMON.md`, *Policy file*).
//!
//! Tag input: `heidi-policy-file/1\n<run_id>\n<version in decimal>\n<document bytes>`. Seal
//! MACs start with `heidi-journal-seal/1\n`, so no seal is ever a valid policy tag or the
//! other way round, although both use the same key.

use core::fmt;

use hmac::Mac;

use super::chain::is_valid_run_id;
use super::hash::{HexHash, LineHash};
use super::seal::SealKey;
use crate::json::writer::Writer;

/// The label that starts every policy tag's input.
pub const POLICY_TAG_LABEL: &[u8] = b"heidi-policy-file/1\n";

/// An HMAC-SHA256 tag of a policy file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PolicyTag(pub [u8; 32]);

impl PolicyTag {
    /// Tags `document` (the exact bytes whose SHA-256 the journal names) at `version` for
    /// the run `run_id`; `None` when `run_id` is not a valid run id.
    pub fn new(key: &SealKey, run_id: &str, version: u64, document: &[u8]) -> Option<PolicyTag> {
        let mac = tag_input(key, run_id, version, document)?;
        Some(PolicyTag(mac.finalize().into_bytes().into()))
    }

    /// Whether this tag is right for (`run_id`, `version`, `document`) under `key`, compared
    /// in constant time.
    #[must_use]
    pub fn is_authentic(&self, key: &SealKey, run_id: &str, version: u64, document: &[u8]) -> bool {
        tag_input(key, run_id, version, document)
            .is_some_and(|mac| mac.verify_slice(&self.0).is_ok())
    }

    /// Lowercase hex, as written in the file.
    pub fn hex(&self) -> HexHash {
        LineHash(self.0).hex()
    }

    /// Parses 64 lowercase hex digits.
    pub fn from_hex(hex: &[u8]) -> Option<PolicyTag> {
        LineHash::from_hex(hex).map(|h| PolicyTag(h.0))
    }
}

impl fmt::Debug for PolicyTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyTag({})", self.hex().as_str())
    }
}

fn tag_input(
    key: &SealKey,
    run_id: &str,
    version: u64,
    document: &[u8],
) -> Option<super::seal::SealMac> {
    if !is_valid_run_id(run_id.as_bytes()) {
        return None;
    }
    let mut num = [0u8; 20];
    let mut out = Writer::new(&mut num);
    out.u64(version);
    let n = out.finish().unwrap_or(0); // 20 digits hold any u64
    let mut mac = key.mac();
    mac.update(POLICY_TAG_LABEL);
    mac.update(run_id.as_bytes());
    mac.update(b"\n");
    mac.update(&num[..n]);
    mac.update(b"\n");
    mac.update(document);
    Some(mac)
}

/// A policy version and the SHA-256 of its document: what a policy file holds and what the
/// journal's policy events (`policy_applied`, `policy_loaded`) name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyMark {
    /// The policy version.
    pub version: u64,
    /// SHA-256 of the document.
    pub digest: [u8; 32],
}

/// The journal's last policy event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournaledPolicy {
    /// The version and digest it names.
    pub mark: PolicyMark,
    /// Whether a seal covers its line (the chain alone cannot vouch for an unsealed tail).
    pub sealed: bool,
    /// Whether it names the configuration's policy, loaded because no policy file was in
    /// force (then no policy file is expected).
    pub from_configuration: bool,
}

/// The policy file's tag, as checked by the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileTag {
    /// Present and right ([`PolicyTag::is_authentic`]).
    Authentic,
    /// Present and wrong: altered, forged, of another run or made with another key.
    Wrong,
    /// Absent (a file written before policy files were keyed).
    Missing,
}

/// Why a policy file may be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyFileOk {
    /// Keyed, and the very policy the journal names last.
    Journaled,
    /// Unkeyed (written before policy files were keyed), but the very policy that the
    /// journal's last policy event names within its sealed range: load it and key it.
    SealedUnkeyed,
}

/// Why a policy file may not be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyFileFault {
    /// It has no tag, and no sealed journal event names it.
    Unkeyed,
    /// Its tag is wrong.
    BadTag,
    /// The journal names no policy at all.
    NotJournaled,
    /// There is no policy file, but the journal's last policy event names one (applied, or
    /// loaded from a file): deleting the file would roll the daemon back to its configured
    /// policy.
    FileMissing {
        /// The version the journal names last.
        journal_version: u64,
    },
    /// It is not the policy the journal names last.
    NotLastJournaled {
        /// The file's version.
        file_version: u64,
        /// The version the journal names last.
        journal_version: u64,
    },
}

impl fmt::Display for PolicyFileFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyFileFault::Unkeyed => f.write_str(
                "it has no MAC and no sealed journal event names it (written by hand, or \
                 by a daemon older than keyed policy files)",
            ),
            PolicyFileFault::BadTag => f.write_str(
                "its MAC is wrong (altered, forged, or written for another run or with \
                 another seal key)",
            ),
            PolicyFileFault::NotJournaled => f.write_str("the journal names no policy"),
            PolicyFileFault::FileMissing { journal_version } => write!(
                f,
                "it is missing, but the journal's last policy event names version \
                 {journal_version}, applied or loaded from a file (a deleted file would roll \
                 the policy back to the configuration's)"
            ),
            PolicyFileFault::NotLastJournaled {
                file_version,
                journal_version,
            } => write!(
                f,
                "it holds policy version {file_version}, but the journal's last policy \
                 event names version {journal_version} with another digest or version"
            ),
        }
    }
}

impl core::error::Error for PolicyFileFault {}

/// Whether the policy file `file` (with its tag checked as `tag`) may be loaded, given the
/// journal's last policy event. Only the policy the journal names last is loaded: a keyed
/// file that matches it, or an unkeyed one that matches it within the sealed range.
pub fn check_policy_file(
    file: PolicyMark,
    tag: FileTag,
    journal: Option<JournaledPolicy>,
) -> Result<PolicyFileOk, PolicyFileFault> {
    match (tag, journal) {
        (FileTag::Wrong, _) => Err(PolicyFileFault::BadTag),
        (FileTag::Missing, Some(j)) if j.sealed && j.mark == file => {
            Ok(PolicyFileOk::SealedUnkeyed)
        }
        (FileTag::Missing, _) => Err(PolicyFileFault::Unkeyed),
        (FileTag::Authentic, None) => Err(PolicyFileFault::NotJournaled),
        (FileTag::Authentic, Some(j)) if j.mark == file => Ok(PolicyFileOk::Journaled),
        (FileTag::Authentic, Some(j)) => Err(PolicyFileFault::NotLastJournaled {
            file_version: file.version,
            journal_version: j.mark.version,
        }),
    }
}

/// Whether the daemon may start with its configured policy when there is no policy file:
/// when the journal names no policy, or its last policy event is the configuration's own.
pub fn check_missing_policy_file(journal: Option<JournaledPolicy>) -> Result<(), PolicyFileFault> {
    match journal {
        Some(j) if !j.from_configuration => Err(PolicyFileFault::FileMissing {
            journal_version: j.mark.version,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::seal::tests::key;
    use crate::journal::{ChainWriter, Event};

    fn other_key() -> SealKey {
        SealKey::new(b"another host's secret, 32+ bytes").unwrap()
    }

    #[test]
    fn the_tag_covers_key_run_version_and_document() {
        let doc = br#"{"limits":{}}"#;
        let tag = PolicyTag::new(&key(), "run-1", 3, doc).unwrap();
        assert!(tag.is_authentic(&key(), "run-1", 3, doc));
        assert!(!tag.is_authentic(&other_key(), "run-1", 3, doc));
        assert!(!tag.is_authentic(&key(), "run-2", 3, doc));
        assert!(!tag.is_authentic(&key(), "run-1", 4, doc));
        assert!(!tag.is_authentic(&key(), "run-1", 3, br#"{"limits":{ }}"#));
        assert!(!tag.is_authentic(&key(), "bad run", 3, doc));
        assert_eq!(PolicyTag::new(&key(), "bad run", 3, doc), None);
        assert_eq!(PolicyTag::from_hex(tag.hex().as_bytes()), Some(tag));
        assert_eq!(PolicyTag::from_hex(b"00"), None);
    }

    #[test]
    fn a_seal_is_never_a_policy_tag() {
        // A seal over (run, 1 line, hash) and a policy tag over the same values differ: the
        // labels keep the two inputs apart.
        let mut chain = ChainWriter::new("run-1").unwrap();
        let mut line = [0u8; 1024];
        let e = Event::info(crate::WallTime::from_unix_millis(0), 1, "s", "e", "m");
        chain.append(&e, &mut line).unwrap();
        let seal = chain.seal(&key()).unwrap();
        let mut record = [0u8; crate::journal::SEAL_MAX_BYTES];
        let n = seal.encode(&mut record).unwrap();
        let text = core::str::from_utf8(&record[..n]).unwrap();
        let at = text.find("\"mac\":\"").unwrap() + 7;
        let seal_mac = PolicyTag::from_hex(&record[at..at + 64]).unwrap();
        let hash = seal.last_hash().hex();
        assert!(!seal_mac.is_authentic(&key(), "run-1", 1, hash.as_bytes()));
    }

    const A: PolicyMark = PolicyMark {
        version: 3,
        digest: [1; 32],
    };
    const B: PolicyMark = PolicyMark {
        version: 4,
        digest: [2; 32],
    };

    fn last(mark: PolicyMark, sealed: bool) -> Option<JournaledPolicy> {
        Some(JournaledPolicy {
            mark,
            sealed,
            from_configuration: false,
        })
    }

    #[test]
    fn a_missing_file_is_refused_unless_the_configuration_was_in_force() {
        assert_eq!(check_missing_policy_file(None), Ok(()));
        let configured = Some(JournaledPolicy {
            mark: A,
            sealed: true,
            from_configuration: true,
        });
        assert_eq!(check_missing_policy_file(configured), Ok(()));
        assert_eq!(
            check_missing_policy_file(last(B, true)),
            Err(PolicyFileFault::FileMissing { journal_version: 4 })
        );
    }

    #[test]
    fn only_the_last_journaled_policy_loads() {
        use FileTag::*;
        use PolicyFileFault::*;
        assert_eq!(
            check_policy_file(A, Authentic, last(A, false)),
            Ok(PolicyFileOk::Journaled)
        );
        assert_eq!(
            check_policy_file(A, Authentic, last(A, true)),
            Ok(PolicyFileOk::Journaled)
        );
        assert_eq!(check_policy_file(A, Wrong, last(A, true)), Err(BadTag));
        assert_eq!(check_policy_file(A, Authentic, None), Err(NotJournaled));
        // An older file (a rollback), a newer one, or the same version with another document.
        for (file, journal) in [(A, B), (B, A)] {
            assert_eq!(
                check_policy_file(file, Authentic, last(journal, true)),
                Err(NotLastJournaled {
                    file_version: file.version,
                    journal_version: journal.version
                })
            );
        }
        let same_version = PolicyMark {
            digest: [9; 32],
            ..A
        };
        assert!(check_policy_file(same_version, Authentic, last(A, true)).is_err());
        // Unkeyed (the previous format): only when a seal vouches for the journal's event.
        assert_eq!(
            check_policy_file(A, Missing, last(A, true)),
            Ok(PolicyFileOk::SealedUnkeyed)
        );
        assert_eq!(check_policy_file(A, Missing, last(A, false)), Err(Unkeyed));
        assert_eq!(check_policy_file(A, Missing, last(B, true)), Err(Unkeyed));
        assert_eq!(check_policy_file(A, Missing, None), Err(Unkeyed));
    }
}
