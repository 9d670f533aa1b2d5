//! The rules between the segments of a rotated journal, as a verifier walks them oldest
//! first ([`SegmentChain`]): sequence numbers follow one another; each rotated segment's
//! boundary seal covers exactly the lines the segment before it ended with; a rotated segment
//! ends with a seal; and early segments may be missing only when a `journal_segments_deleted`
//! event of the walk covers them (retention deleted them). See `docs/JOURNAL.md`, "Segments".
//! Reading the files is the host's.

use core::fmt;

use super::{Seal, SegmentName, SegmentsDeleted, Verified};

/// Why a segmented journal does not hold together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SegmentFault {
    /// Segment `expected` is missing: the next one present is `found`.
    Missing {
        /// The segment that should come next.
        expected: u64,
        /// The one that does.
        found: u64,
    },
    /// A segment that continues another has no boundary seal.
    NoBoundary,
    /// A segment's boundary seal does not cover where the segment before it ends.
    Discontinuous {
        /// The lines its boundary seal covers.
        boundary_lines: u64,
        /// The lines the segment before it ends at.
        previous_lines: u64,
    },
    /// A rotated segment has lines after its last seal.
    UnsealedEnd {
        /// Lines after the last seal.
        lines: u64,
    },
    /// Segments 1 to `first - 1` are missing and no deletion event covers them.
    DeletedOutsideRetention {
        /// The first segment present.
        first: u64,
        /// The highest segment a deletion event names.
        deleted_through: u64,
    },
}

impl SegmentFault {
    /// The segment a fault of the whole walk names (the missing one, the first present),
    /// when it is not the segment being read.
    pub fn segment(&self) -> Option<u64> {
        match *self {
            SegmentFault::Missing { expected, .. } => Some(expected),
            SegmentFault::DeletedOutsideRetention { first, .. } => Some(first),
            _ => None,
        }
    }
}

impl fmt::Display for SegmentFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SegmentFault::Missing { expected, found } => write!(
                f,
                "missing: the segments jump from {} to {}",
                SegmentName(expected.saturating_sub(1)),
                SegmentName(found)
            ),
            SegmentFault::NoBoundary => {
                f.write_str("it has no boundary seal (its seal file is missing or empty)")
            }
            SegmentFault::Discontinuous {
                boundary_lines,
                previous_lines,
            } => write!(
                f,
                "it does not continue the segment before it: its boundary seal covers line \
                 {boundary_lines} but that segment ends at line {previous_lines}"
            ),
            SegmentFault::UnsealedEnd { lines } => write!(
                f,
                "{lines} line(s) after its last seal: a rotated segment ends with a seal"
            ),
            SegmentFault::DeletedOutsideRetention {
                first,
                deleted_through,
            } => write!(
                f,
                "segments {} to {} are missing and no journal_segments_deleted event covers \
                 them (deleted through {deleted_through}): removed outside retention",
                SegmentName(1),
                SegmentName(first.saturating_sub(1))
            ),
        }
    }
}

/// A walk over a journal's segments, oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentChain {
    first: u64,
    expected: u64,
    deleted_through: u64,
}

impl SegmentChain {
    /// A walk whose oldest rotated segment present is `first` (`None`: none is rotated).
    pub fn new(first: Option<u64>) -> SegmentChain {
        let first = first.unwrap_or(1);
        SegmentChain {
            first,
            expected: first,
            deleted_through: 0,
        }
    }

    /// The walk reaches rotated segment `seq` (`None`: the open segment, which comes last).
    pub fn enter(&mut self, seq: Option<u64>) -> Result<(), SegmentFault> {
        let Some(seq) = seq else {
            return Ok(());
        };
        if seq != self.expected {
            return Err(SegmentFault::Missing {
                expected: self.expected,
                found: seq,
            });
        }
        self.expected = seq.saturating_add(1);
        Ok(())
    }

    /// Whether segment `seq` of a rotated journal continues another (`None`: the open
    /// segment): every one but segment 1, which starts the journal.
    pub fn has_boundary(seq: Option<u64>) -> bool {
        seq != Some(1)
    }

    /// A segment that continues another: its `boundary` seal (if it has one) must cover
    /// exactly the lines `previous` (the segment before it, when the walk read one) ended with.
    pub fn continues(
        boundary: Option<&Seal>,
        previous: Option<&Verified>,
    ) -> Result<(), SegmentFault> {
        let boundary = boundary.ok_or(SegmentFault::NoBoundary)?;
        match previous {
            Some(p) if (boundary.lines(), Some(boundary.last_hash())) != (p.lines, p.last_hash) => {
                Err(SegmentFault::Discontinuous {
                    boundary_lines: boundary.lines(),
                    previous_lines: p.lines,
                })
            }
            _ => Ok(()),
        }
    }

    /// A segment was read to its end with `unsealed_lines` after its last seal; a rotated
    /// one must end sealed.
    pub fn ends(rotated: bool, unsealed_lines: u64) -> Result<(), SegmentFault> {
        if rotated && unsealed_lines > 0 {
            return Err(SegmentFault::UnsealedEnd {
                lines: unsealed_lines,
            });
        }
        Ok(())
    }

    /// A verified line of the walk: a `journal_segments_deleted` event records how far
    /// retention deleted.
    pub fn line(&mut self, line: &[u8]) {
        if let Some(through) = SegmentsDeleted::through_segment_of(line) {
            self.deleted_through = self.deleted_through.max(through);
        }
    }

    /// At the end of the walk: segments missing before the first must have been deleted by
    /// retention (a deletion event covers them).
    pub fn finish(&self) -> Result<(), SegmentFault> {
        if self.first > 1 && self.deleted_through.saturating_add(1) < self.first {
            return Err(SegmentFault::DeletedOutsideRetention {
                first: self.first,
                deleted_through: self.deleted_through,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn sequences_and_gaps() {
        let mut walk = SegmentChain::new(Some(3));
        assert_eq!(walk.enter(Some(3)), Ok(()));
        let missing = walk.enter(Some(5)).unwrap_err();
        assert_eq!(
            missing,
            SegmentFault::Missing {
                expected: 4,
                found: 5
            }
        );
        assert_eq!(missing.segment(), Some(4));
        assert_eq!(
            missing.to_string(),
            "missing: the segments jump from events.000003.jsonl to events.000005.jsonl"
        );
        assert_eq!(walk.enter(Some(4)), Ok(()));
        assert_eq!(walk.enter(None), Ok(()));
        let outside = walk.finish().unwrap_err();
        assert_eq!(outside.segment(), Some(3));
        assert!(
            outside
                .to_string()
                .contains("events.000001.jsonl to events.000002.jsonl")
        );
        assert_eq!(SegmentChain::new(None).finish(), Ok(()));
        assert_eq!(SegmentChain::new(Some(1)).finish(), Ok(()));
        assert!(!SegmentChain::has_boundary(Some(1)));
        assert!(SegmentChain::has_boundary(Some(2)) && SegmentChain::has_boundary(None));
        // A deletion event covering segments 1 and 2 accepts the gap.
        let mut chain = crate::journal::ChainWriter::new("run-1").unwrap();
        let deleted = SegmentsDeleted {
            count: 2,
            first: 1,
            through: 2,
            through_line: 10,
        };
        let counters = deleted.counters();
        let event = crate::journal::Event {
            ts: crate::WallTime::from_unix_millis(0),
            round: 1,
            stage: "journal",
            level: crate::journal::Level::Info,
            event_type: crate::journal::SEGMENTS_DELETED,
            message: "m",
            counters_delta: &counters,
            usage_delta: &[],
            artifact_paths: &[],
            error: None,
        };
        let mut buf = [0u8; crate::journal::MAX_LINE_BYTES];
        let mut walk = SegmentChain::new(Some(3));
        walk.line(chain.append(&event, &mut buf).unwrap());
        assert_eq!(walk.finish(), Ok(()));
        assert_eq!(SegmentChain::ends(false, 9), Ok(()));
        assert_eq!(
            SegmentChain::ends(true, 2),
            Err(SegmentFault::UnsealedEnd { lines: 2 })
        );
        assert_eq!(
            SegmentChain::continues(None, None),
            Err(SegmentFault::NoBoundary)
        );
    }
}
