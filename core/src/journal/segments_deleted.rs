//! The journal's retention leaves a trace: before it deletes rotated segments it journals a
//! `journal_segments_deleted` event ([`SegmentsDeleted`]), and a verifier that finds early
//! segments missing accepts the gap only when such an event covers it
//! ([`SegmentsDeleted::through_segment_of`]). Both sides of that record, and the names of the
//! segment files ([`SegmentName`]), are decided here (see `docs/JOURNAL.md`, "Segments").

use core::fmt;

use super::scan::{counter, scan};

/// The stage of the journal's own events.
pub const JOURNAL_STAGE: &str = "journal";

/// The `event_type` of [`SegmentsDeleted`].
pub const SEGMENTS_DELETED: &str = "journal_segments_deleted";

/// The file name of rotated segment `seq`: `events.000042.jsonl` (at least six digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentName(pub u64);

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "events.{:06}.jsonl", self.0)
    }
}

/// The seal file name of rotated segment `seq`: `events.000042.seals`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentSealsName(pub u64);

impl fmt::Display for SegmentSealsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "events.{:06}.seals", self.0)
    }
}

/// Retention deletes rotated segments `first` to `through` (`count` of them); the last line
/// they held is `through_line`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SegmentsDeleted {
    /// Segments deleted.
    pub count: u64,
    /// The first deleted segment's sequence number.
    pub first: u64,
    /// The last deleted segment's sequence number.
    pub through: u64,
    /// The last line the deleted segments held.
    pub through_line: u64,
}

impl SegmentsDeleted {
    /// `counters_delta`: `segments`, `first_segment`, `through_segment`, `through_line`.
    pub fn counters(&self) -> [(&'static str, i64); 4] {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        [
            ("segments", n(self.count)),
            ("first_segment", n(self.first)),
            ("through_segment", n(self.through)),
            ("through_line", n(self.through_line)),
        ]
    }

    /// The `through_segment` of a journal line (its newline optional) that is a
    /// `journal_segments_deleted` event; `None` for any other line, or one that is not a
    /// well-formed journal line.
    pub fn through_segment_of(line: &[u8]) -> Option<u64> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let scanned = scan(line).ok()?;
        if scanned.event_type != SEGMENTS_DELETED.as_bytes() {
            return None;
        }
        counter(scanned.counters, b"through_segment")
    }
}

/// The message.
impl fmt::Display for SegmentsDeleted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "retention deletes {} journal segment(s): {} to {} (the lines up to {} are no \
             longer kept)",
            self.count,
            SegmentName(self.first),
            SegmentName(self.through),
            self.through_line
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WallTime;
    use crate::journal::{ChainWriter, Event, Level, MAX_LINE_BYTES};
    extern crate std;
    use std::string::ToString;

    fn line<'b>(event_type: &str, counters: &[(&str, i64)], buf: &'b mut [u8]) -> &'b [u8] {
        let mut chain = ChainWriter::new("run-1").unwrap();
        let event = Event {
            ts: WallTime::from_unix_millis(1_771_573_538_307),
            round: 1,
            stage: JOURNAL_STAGE,
            level: Level::Info,
            event_type,
            message: "m",
            counters_delta: counters,
            usage_delta: &[],
            artifact_paths: &[],
            error: None,
        };
        chain.append(&event, buf).unwrap()
    }

    #[test]
    fn the_event_reads_back_its_own_counter() {
        let deleted = SegmentsDeleted {
            count: 2,
            first: 3,
            through: 4,
            through_line: 9_000,
        };
        assert_eq!(
            deleted.to_string(),
            "retention deletes 2 journal segment(s): events.000003.jsonl to events.000004.jsonl \
             (the lines up to 9000 are no longer kept)"
        );
        let mut buf = [0u8; MAX_LINE_BYTES];
        let written = line(SEGMENTS_DELETED, &deleted.counters(), &mut buf);
        assert_eq!(SegmentsDeleted::through_segment_of(written), Some(4));
        let mut buf = [0u8; MAX_LINE_BYTES];
        let other = line("tick", &deleted.counters(), &mut buf);
        assert_eq!(SegmentsDeleted::through_segment_of(other), None);
        let mut buf = [0u8; MAX_LINE_BYTES];
        let absent = line(SEGMENTS_DELETED, &[("segments", 1), ("x", -3)], &mut buf);
        assert_eq!(SegmentsDeleted::through_segment_of(absent), None);
        let mut buf = [0u8; MAX_LINE_BYTES];
        let negative = line(SEGMENTS_DELETED, &[("through_segment", -3)], &mut buf);
        assert_eq!(SegmentsDeleted::through_segment_of(negative), None);
        assert_eq!(SegmentsDeleted::through_segment_of(b"{not json"), None);
        assert_eq!(SegmentName(1_234_567).to_string(), "events.1234567.jsonl");
        assert_eq!(SegmentSealsName(42).to_string(), "events.000042.seals");
    }
}
