//! The events a journal's writer journals about its own recovery at open, in the order it
//! writes them ([`RecoveryFacts::events`]): an unsealed journal the operator accepted
//! (`journal_unsealed_accepted`), seals accepted behind their anchor
//! (`journal_anchor_accepted`), a torn last line cut (`journal_truncated`), a torn seal
//! record cut (`seals_truncated`), an interrupted rotation finished
//! (`journal_rotation_finished`) and stale temporary files removed
//! (`stale_temp_files_removed`). The acceptances come first, so a crash before the first
//! seal leaves the journal refused again rather than forgotten. Their names, levels, messages
//! and counters are decided here (see `docs/JOURNAL.md`); the host finds the facts and writes
//! and seals each line.

use core::fmt;

use super::{AnchorFault, Level};

/// What recovery at open found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryFacts {
    /// Lines of a journal without any seal record the operator accepted (0: none).
    pub unsealed_accepted: u64,
    /// Seals the operator accepted although they do not match the anchor.
    pub behind_anchor: Option<AnchorFault>,
    /// Bytes of a torn last journal line cut.
    pub journal_cut_bytes: u64,
    /// Bytes of a torn last seal record cut.
    pub seals_cut_bytes: u64,
    /// An interrupted rotation finished: `Some(true)` when the rotated segment's seal file
    /// had to be renamed too.
    pub rotation_finished: Option<bool>,
    /// Temporary files of interrupted atomic writes removed.
    pub temp_files_removed: u64,
}

impl RecoveryFacts {
    /// The events to journal, in order.
    pub fn events(&self) -> impl Iterator<Item = RecoveryEvent> {
        let f = *self;
        [
            (f.unsealed_accepted > 0).then_some(RecoveryEvent::UnsealedAccepted {
                lines: f.unsealed_accepted,
            }),
            f.behind_anchor.map(RecoveryEvent::AnchorAccepted),
            (f.journal_cut_bytes > 0).then_some(RecoveryEvent::JournalTruncated {
                bytes: f.journal_cut_bytes,
            }),
            (f.seals_cut_bytes > 0).then_some(RecoveryEvent::SealsTruncated {
                bytes: f.seals_cut_bytes,
            }),
            f.rotation_finished
                .map(|seals_renamed| RecoveryEvent::RotationFinished { seals_renamed }),
            (f.temp_files_removed > 0).then_some(RecoveryEvent::TempFilesRemoved {
                files: f.temp_files_removed,
            }),
        ]
        .into_iter()
        .flatten()
    }
}

/// One recovery event; `Display` writes its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryEvent {
    /// `journal_unsealed_accepted`.
    UnsealedAccepted {
        /// The lines accepted.
        lines: u64,
    },
    /// `journal_anchor_accepted`.
    AnchorAccepted(AnchorFault),
    /// `journal_truncated`.
    JournalTruncated {
        /// Bytes cut.
        bytes: u64,
    },
    /// `seals_truncated`.
    SealsTruncated {
        /// Bytes cut.
        bytes: u64,
    },
    /// `journal_rotation_finished`.
    RotationFinished {
        /// Whether the rotated segment's seal file was renamed too.
        seals_renamed: bool,
    },
    /// `stale_temp_files_removed`.
    TempFilesRemoved {
        /// Files removed.
        files: u64,
    },
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl RecoveryEvent {
    /// The stage: `journal`.
    pub const STAGE: &'static str = super::JOURNAL_STAGE;

    /// The `event_type`.
    pub fn event_type(&self) -> &'static str {
        match self {
            RecoveryEvent::UnsealedAccepted { .. } => "journal_unsealed_accepted",
            RecoveryEvent::AnchorAccepted(_) => "journal_anchor_accepted",
            RecoveryEvent::JournalTruncated { .. } => "journal_truncated",
            RecoveryEvent::SealsTruncated { .. } => "seals_truncated",
            RecoveryEvent::RotationFinished { .. } => "journal_rotation_finished",
            RecoveryEvent::TempFilesRemoved { .. } => "stale_temp_files_removed",
        }
    }

    /// `warning` for what was accepted or cut, `info` for a finished rotation and removed
    /// temporary files.
    pub fn level(&self) -> Level {
        match self {
            RecoveryEvent::RotationFinished { .. } | RecoveryEvent::TempFilesRemoved { .. } => {
                Level::Info
            }
            _ => Level::Warning,
        }
    }

    /// `counters_delta` (at most two; the rest of the array is `("", 0)`, and `len` says how
    /// many count).
    pub fn counters(&self) -> ([(&'static str, i64); 2], usize) {
        let none = ("", 0);
        match *self {
            RecoveryEvent::UnsealedAccepted { lines } => {
                ([("unsealed_lines", count(lines)), none], 1)
            }
            RecoveryEvent::AnchorAccepted(AnchorFault::Behind {
                sealed_lines,
                anchored_lines,
            }) => (
                [
                    ("sealed_lines", count(sealed_lines)),
                    ("anchored_lines", count(anchored_lines)),
                ],
                2,
            ),
            RecoveryEvent::JournalTruncated { bytes } | RecoveryEvent::SealsTruncated { bytes } => {
                ([("cut_bytes", count(bytes)), none], 1)
            }
            RecoveryEvent::TempFilesRemoved { files } => ([("removed", count(files)), none], 1),
            RecoveryEvent::AnchorAccepted(_) | RecoveryEvent::RotationFinished { .. } => {
                ([none, none], 0)
            }
        }
    }
}

/// The message.
impl fmt::Display for RecoveryEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryEvent::UnsealedAccepted { lines } => write!(
                f,
                "accepted {lines} journal lines that had no seal record (seal file deleted or \
                 emptied) on the operator's --accept-unsealed-journal"
            ),
            RecoveryEvent::AnchorAccepted(fault) => write!(
                f,
                "accepted seals that do not match the journal's anchor ({fault}) on the \
                 operator's --accept-unsealed-journal"
            ),
            RecoveryEvent::JournalTruncated { bytes } => {
                write!(
                    f,
                    "cut {bytes} bytes of a torn last journal line left by a crash"
                )
            }
            RecoveryEvent::SealsTruncated { bytes } => {
                write!(
                    f,
                    "cut {bytes} bytes of a torn last seal record left by a crash"
                )
            }
            RecoveryEvent::RotationFinished { seals_renamed } => {
                let what = match seals_renamed {
                    true => "renamed the rotated segment's seal file and started",
                    false => "started",
                };
                write!(
                    f,
                    "a crash interrupted a segment rotation; {what} the new segment"
                )
            }
            RecoveryEvent::TempFilesRemoved { files } => write!(
                f,
                "removed {files} temporary file(s) of atomic writes a crash interrupted"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;
    use std::vec::Vec;

    #[test]
    fn the_events_come_in_order_with_their_words() {
        assert_eq!(RecoveryFacts::default().events().count(), 0);
        let all = RecoveryFacts {
            unsealed_accepted: 5,
            behind_anchor: Some(AnchorFault::Behind {
                sealed_lines: 3,
                anchored_lines: 9,
            }),
            journal_cut_bytes: 7,
            seals_cut_bytes: 2,
            rotation_finished: Some(true),
            temp_files_removed: 1,
        };
        let events: Vec<_> = all.events().collect();
        let names: Vec<_> = events.iter().map(RecoveryEvent::event_type).collect();
        assert_eq!(
            names,
            [
                "journal_unsealed_accepted",
                "journal_anchor_accepted",
                "journal_truncated",
                "seals_truncated",
                "journal_rotation_finished",
                "stale_temp_files_removed"
            ]
        );
        let levels: Vec<_> = events.iter().map(RecoveryEvent::level).collect();
        assert_eq!(levels[..4], [Level::Warning; 4]);
        assert_eq!(levels[4..], [Level::Info; 2]);
        assert_eq!(
            events[1].counters(),
            ([("sealed_lines", 3), ("anchored_lines", 9)], 2)
        );
        assert_eq!(events[2].counters(), ([("cut_bytes", 7), ("", 0)], 1));
        assert_eq!(events[4].counters().1, 0);
        assert_eq!(
            events[2].to_string(),
            "cut 7 bytes of a torn last journal line left by a crash"
        );
        assert!(
            events[4]
                .to_string()
                .contains("renamed the rotated segment's seal file")
        );
        let plain = RecoveryEvent::RotationFinished {
            seals_renamed: false,
        };
        assert_eq!(
            plain.to_string(),
            "a crash interrupted a segment rotation; started the new segment"
        );
        assert_eq!(
            RecoveryEvent::AnchorAccepted(AnchorFault::BadMac)
                .counters()
                .1,
            0
        );
    }
}
