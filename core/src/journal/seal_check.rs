//! Checking a journal against its seals: detects a cut tail and a rewritten journal.

use core::fmt;

use super::chain::BadRunId;
use super::seal::{Seal, SealKey};
use super::verify::{Verified, Verifier};

/// Why a journal does not match its seals. Seal records are numbered from 1 in their file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SealFault {
    /// Seal record `record` is malformed.
    BadRecord {
        /// 1-based record number.
        record: u64,
    },
    /// Seal record `record` has a wrong MAC: forged, altered, or made with another key.
    BadMac {
        /// 1-based record number.
        record: u64,
    },
    /// Seal record `record` names another run than the records before it.
    OtherRun {
        /// 1-based record number.
        record: u64,
    },
    /// Seal record `record` covers fewer lines than an earlier one.
    OutOfOrder {
        /// 1-based record number.
        record: u64,
    },
    /// The journal names another run than its seals.
    WrongRun,
    /// The journal has `journal_lines` intact lines but a seal covers `sealed_lines`: its
    /// tail was cut (or torn within the sealed range).
    CutTail {
        /// Intact lines in the journal.
        journal_lines: u64,
        /// Lines the last seal covers.
        sealed_lines: u64,
    },
    /// Line `line` (the last sealed line) hashes differently from the seal: lines 1 to `line`
    /// were rewritten, even if the chain itself is consistent.
    Rewritten {
        /// The last sealed line.
        line: u64,
    },
    /// The journal has `journal_lines` lines (more than [`UNSEALED_LINES_MAX`]) but there is
    /// no seal record at all: the seal file was deleted or emptied. A writer seals the first
    /// line of a journal on its own, at once, so only a crash between that line and its seal
    /// leaves a journal without seals, and it then has one line.
    Unsealed {
        /// Intact lines in the journal.
        journal_lines: u64,
    },
    /// The verifier did not keep the hash of the last sealed line: it was not made by
    /// [`SealCheck::verifier`] after the last [`SealCheck::add_record`]. A caller error; make
    /// the verifier again and feed it the journal.
    NotWatched,
}

impl fmt::Display for SealFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealFault::BadRecord { record } => write!(f, "seal record {record} is malformed"),
            SealFault::BadMac { record } => write!(f, "seal record {record} has a wrong MAC"),
            SealFault::OtherRun { record } => write!(f, "seal record {record} is for another run"),
            SealFault::OutOfOrder { record } => {
                write!(
                    f,
                    "seal record {record} covers fewer lines than an earlier one"
                )
            }
            SealFault::WrongRun => f.write_str("the journal is for another run than its seals"),
            SealFault::CutTail {
                journal_lines,
                sealed_lines,
            } => write!(
                f,
                "journal has {journal_lines} lines but a seal covers {sealed_lines}: tail cut"
            ),
            SealFault::Rewritten { line } => {
                write!(f, "journal rewritten: line {line} does not match its seal")
            }
            SealFault::Unsealed { journal_lines } => write!(
                f,
                "journal has {journal_lines} lines but no seal record: \
                 the seal file was deleted or emptied"
            ),
            SealFault::NotWatched => {
                f.write_str("the verifier did not watch the last sealed line (made too early)")
            }
        }
    }
}

impl core::error::Error for SealFault {}

/// Most lines a journal may have without any seal record: what a crash between a journal's
/// first line and its first seal leaves (a writer seals its first line on its own, at once).
/// Cutting a journal to its first line and deleting the seals hides no more than deleting the
/// whole run, which no check inside the journal's directory can see.
pub const UNSEALED_LINES_MAX: u64 = 1;

/// A journal that matches its seals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[must_use]
pub struct SealReport {
    /// Lines 1 to `sealed_lines` are covered by the last valid seal (0: no seal).
    pub sealed_lines: u64,
    /// Verified lines after the last seal; the chain vouches for them, no seal does yet.
    pub unsealed_lines: u64,
    /// Seal records read.
    pub seals: u64,
}

/// Checks a journal against its seal records.
///
/// Order of calls: [`add_record`](SealCheck::add_record) for every line of the seals file,
/// then [`verifier`](SealCheck::verifier) (a [`Verifier`] that keeps the hash of the last
/// sealed line), feed it the journal, and pass what it [`finish`](Verifier::finish)es with to
/// [`check`](SealCheck::check). Only the last seal needs comparing: the chain links every
/// earlier line to it. Another order is answered with [`SealFault::NotWatched`], never a
/// panic.
#[derive(Clone)]
pub struct SealCheck {
    key: SealKey,
    latest: Option<Seal>,
    records: u64,
    fault: Option<SealFault>,
}

impl SealCheck {
    /// A check keyed by the host's seal key.
    pub fn new(key: &SealKey) -> SealCheck {
        SealCheck {
            key: key.clone(),
            latest: None,
            records: 0,
            fault: None,
        }
    }

    /// Reads the next seal record (one line, `\n` optional). The first fault sticks.
    pub fn add_record(&mut self, record: &[u8]) -> Result<(), SealFault> {
        if let Some(f) = self.fault {
            return Err(f);
        }
        self.records += 1;
        let result = self.accept(record);
        self.fault = result.err();
        result
    }

    fn accept(&mut self, record: &[u8]) -> Result<(), SealFault> {
        let n = self.records;
        let seal = Seal::parse(record).map_err(|_| SealFault::BadRecord { record: n })?;
        if !seal.is_authentic(&self.key) {
            return Err(SealFault::BadMac { record: n });
        }
        if let Some(prev) = &self.latest {
            if prev.run_id() != seal.run_id() {
                return Err(SealFault::OtherRun { record: n });
            }
            if seal.lines() < prev.lines() {
                return Err(SealFault::OutOfOrder { record: n });
            }
        }
        self.latest = Some(seal);
        Ok(())
    }

    /// The last valid seal read.
    pub fn latest(&self) -> Option<&Seal> {
        self.latest.as_ref()
    }

    /// A verifier that keeps the hash of the last sealed line.
    pub fn verifier(&self) -> Verifier {
        let mut v = Verifier::new();
        if let Some(seal) = &self.latest {
            v.watch(seal.lines());
        }
        v
    }

    /// A verifier for a journal segment that starts after `boundary` (the seal over the last
    /// line of the segment before, the first record of this segment's seal file; see
    /// docs/JOURNAL.md, "Segments"): it continues the chain from the boundary's line and hash
    /// and keeps the hash of the last sealed line.
    pub fn verifier_after(&self, boundary: &Seal) -> Result<Verifier, BadRunId> {
        let mut v = Verifier::resume(boundary.run_id(), boundary.lines(), boundary.last_hash())?;
        if let Some(seal) = &self.latest {
            v.watch(seal.lines());
        }
        Ok(v)
    }

    /// Compares the verified journal (or its intact prefix) with the last seal.
    /// [`SealFault::Unsealed`] if there is no seal record and the journal has more than
    /// [`UNSEALED_LINES_MAX`] lines (a caller that knowingly reads a journal never sealed may
    /// treat that as sealed up to line 0). [`SealFault::NotWatched`] if `verified` reached the sealed line but did not keep its
    /// hash (a verifier not made by [`verifier`](SealCheck::verifier) after the last record).
    pub fn check(&self, verified: &Verified) -> Result<SealReport, SealFault> {
        if let Some(f) = self.fault {
            return Err(f);
        }
        let Some(seal) = &self.latest else {
            if verified.lines > UNSEALED_LINES_MAX {
                return Err(SealFault::Unsealed {
                    journal_lines: verified.lines,
                });
            }
            return Ok(SealReport {
                sealed_lines: 0,
                unsealed_lines: verified.lines,
                seals: self.records,
            });
        };
        if verified.lines < seal.lines() {
            return Err(SealFault::CutTail {
                journal_lines: verified.lines,
                sealed_lines: seal.lines(),
            });
        }
        if verified.run_id() != seal.run_id() {
            return Err(SealFault::WrongRun);
        }
        let (line, hash) = verified
            .checkpoint()
            .filter(|(line, _)| *line == seal.lines())
            .ok_or(SealFault::NotWatched)?;
        if hash != seal.last_hash() {
            return Err(SealFault::Rewritten { line });
        }
        Ok(SealReport {
            sealed_lines: seal.lines(),
            unsealed_lines: verified.lines - seal.lines(),
            seals: self.records,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::SEAL_MAX_BYTES;
    use crate::journal::verify::tests::journal;

    use crate::journal::seal::tests::key;

    fn other_key() -> SealKey {
        SealKey::new(b"another host's secret, 32+ bytes").unwrap()
    }

    fn record(seal: &Seal) -> heapless::Vec<u8, SEAL_MAX_BYTES> {
        let mut buf = [0u8; SEAL_MAX_BYTES];
        let n = seal.encode(&mut buf).unwrap();
        heapless::Vec::from_slice(&buf[..n]).unwrap()
    }

    fn run(check: &SealCheck, bytes: &[u8]) -> Result<SealReport, SealFault> {
        let mut v = check.verifier();
        v.feed(bytes).unwrap();
        check.check(&v.finish().unwrap())
    }

    #[test]
    fn a_segment_verifies_from_its_boundary_seal() {
        let (all, mut chain) = journal("run-7", 2);
        let boundary = chain.seal(&key()).unwrap();
        let mut buf = [0u8; 1024];
        let e = crate::journal::Event::info(
            crate::time::WallTime::from_unix_millis(1_771_573_538_307),
            1,
            "generate",
            "stage_end",
            "x",
        );
        let line3 = chain.append(&e, &mut buf).unwrap().to_vec();
        let line3: heapless::Vec<u8, 1024> = heapless::Vec::from_slice(&line3).unwrap();
        let after = chain.seal(&key()).unwrap();
        let mut check = SealCheck::new(&key());
        check.add_record(&record(&boundary)).unwrap();
        // A fresh segment: only its boundary, no line yet.
        let v = check.verifier_after(&boundary).unwrap();
        let report = check.check(&v.verified()).unwrap();
        assert_eq!((report.sealed_lines, report.unsealed_lines), (2, 0));
        check.add_record(&record(&after)).unwrap();
        let mut v = check.verifier_after(&boundary).unwrap();
        v.feed(&line3).unwrap();
        let report = check.check(&v.finish().unwrap()).unwrap();
        assert_eq!((report.sealed_lines, report.unsealed_lines), (3, 0));
        // The segment cut to nothing no longer reaches its last seal.
        let v = check.verifier_after(&boundary).unwrap();
        assert_eq!(
            check.check(&v.verified()),
            Err(SealFault::CutTail {
                journal_lines: 2,
                sealed_lines: 3
            })
        );
        // The segment that starts at line 1 does not continue the boundary.
        let mut v = check.verifier_after(&boundary).unwrap();
        assert!(v.feed(&all).is_err());
    }

    #[test]
    fn sealed_range_and_unsealed_tail() {
        let (j4, chain4) = journal("run-1", 4);
        let (j6, chain6) = journal("run-1", 6);
        let mut check = SealCheck::new(&key());
        check
            .add_record(&record(&chain4.seal(&key()).unwrap()))
            .unwrap();
        let report = run(&check, &j6).unwrap();
        assert_eq!(
            (report.sealed_lines, report.unsealed_lines, report.seals),
            (4, 2, 1)
        );
        assert_eq!(run(&check, &j4).unwrap().unsealed_lines, 0);
        check
            .add_record(&record(&chain6.seal(&key()).unwrap()))
            .unwrap();
        assert_eq!(run(&check, &j6).unwrap().sealed_lines, 6);
    }

    #[test]
    fn a_journal_without_seals_is_refused_past_its_first_line() {
        let (j1, _) = journal("run-1", 1);
        let (j2, _) = journal("run-1", 2);
        let (j6, _) = journal("run-1", 6);
        let check = SealCheck::new(&key());
        assert_eq!(
            run(&check, b""),
            Ok(SealReport {
                sealed_lines: 0,
                unsealed_lines: 0,
                seals: 0
            })
        );
        // A crash between the first line and its seal.
        assert_eq!(
            run(&check, &j1),
            Ok(SealReport {
                sealed_lines: 0,
                unsealed_lines: 1,
                seals: 0
            })
        );
        assert_eq!(
            run(&check, &j2),
            Err(SealFault::Unsealed { journal_lines: 2 })
        );
        assert_eq!(
            run(&check, &j6),
            Err(SealFault::Unsealed { journal_lines: 6 })
        );
    }

    #[test]
    fn cut_tail_and_rewrite_are_detected() {
        let (_, chain4) = journal("run-1", 4);
        let (j3, _) = journal("run-1", 3);
        let mut check = SealCheck::new(&key());
        check
            .add_record(&record(&chain4.seal(&key()).unwrap()))
            .unwrap();
        assert_eq!(
            run(&check, &j3),
            Err(SealFault::CutTail {
                journal_lines: 3,
                sealed_lines: 4
            })
        );
        // A consistent chain rewritten from scratch fails at the sealed line.
        let mut fake = crate::journal::ChainWriter::new("run-1").unwrap();
        let mut buf = [0u8; 1024];
        let mut forged = heapless::Vec::<u8, 8192>::new();
        for i in 0..4 {
            let e = crate::journal::Event::info(
                crate::WallTime::from_unix_millis(i),
                1,
                "s",
                "e",
                "forged",
            );
            forged
                .extend_from_slice(fake.append(&e, &mut buf).unwrap())
                .unwrap();
        }
        assert_eq!(run(&check, &forged), Err(SealFault::Rewritten { line: 4 }));
        let (other_run, _) = journal("run-2", 4);
        assert_eq!(run(&check, &other_run), Err(SealFault::WrongRun));
    }

    #[test]
    fn bad_records() {
        let (_, chain) = journal("run-1", 4);
        let (_, chain2) = journal("run-1", 2);
        let (_, other) = journal("run-2", 4);
        let good = record(&chain.seal(&key()).unwrap());
        let mut c = SealCheck::new(&key());
        assert_eq!(c.add_record(b"{}"), Err(SealFault::BadRecord { record: 1 }));
        assert_eq!(
            c.add_record(&good),
            Err(SealFault::BadRecord { record: 1 }),
            "sticky"
        );
        let mut c = SealCheck::new(&other_key());
        assert_eq!(c.add_record(&good), Err(SealFault::BadMac { record: 1 }));
        let mut c = SealCheck::new(&key());
        c.add_record(&good).unwrap();
        assert_eq!(
            c.clone().add_record(&record(&chain2.seal(&key()).unwrap())),
            Err(SealFault::OutOfOrder { record: 2 })
        );
        assert_eq!(
            c.add_record(&record(&other.seal(&key()).unwrap())),
            Err(SealFault::OtherRun { record: 2 })
        );
        assert!(
            c.check(&crate::journal::Verifier::new().verified())
                .is_err()
        );
    }

    #[test]
    fn verifier_made_too_early_is_an_error_not_a_panic() {
        let (j4, chain4) = journal("run-1", 4);
        let (_, chain2) = journal("run-1", 2);
        let mut check = SealCheck::new(&key());
        let early = check.verifier();
        check
            .add_record(&record(&chain2.seal(&key()).unwrap()))
            .unwrap();
        let between = check.verifier();
        check
            .add_record(&record(&chain4.seal(&key()).unwrap()))
            .unwrap();
        for mut v in [early, between] {
            v.feed(&j4).unwrap();
            assert_eq!(
                check.check(&v.finish().unwrap()),
                Err(SealFault::NotWatched)
            );
        }
        assert!(run(&check, &j4).is_ok());
    }
}
