//! What a journal's writer accepts of an existing journal when it opens it: a torn last line
//! is cut ([`tolerated_at_open`]); a journal of more than one line without any seal record is
//! refused unless the operator accepts it for this start ([`seals_at_open`]); every other
//! fault of the chain or the seals refuses the open ([`OpenRefusal`]), for an operator to
//! inspect. Reading and cutting the files is the host's.

use core::fmt;

use super::{Fault, FaultKind, SealFault, SealReport};

/// Whether a chain fault found at open is one the writer repairs itself: a torn last line (a
/// crash in the middle of a write), which it cuts and journals.
pub fn tolerated_at_open(fault: &Fault) -> bool {
    fault.kind == FaultKind::Torn
}

/// The seals' verdict on a journal at open (`check`, from
/// [`SealCheck::check`](super::SealCheck::check)): the report, and the lines accepted without
/// a seal when the journal has no seal record at all and the operator said
/// `accept_unsealed` (0 otherwise; the host journals the acceptance).
pub fn seals_at_open(
    check: Result<SealReport, SealFault>,
    accept_unsealed: bool,
) -> Result<(SealReport, u64), OpenRefusal> {
    match check {
        Ok(report) => Ok((report, 0)),
        Err(SealFault::Unsealed { journal_lines }) if accept_unsealed => {
            let report = SealReport {
                sealed_lines: 0,
                unsealed_lines: journal_lines,
                seals: 0,
            };
            Ok((report, journal_lines))
        }
        Err(fault) => Err(OpenRefusal(fault)),
    }
}

/// A journal the writer refuses to open: it does not match its seals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenRefusal(pub SealFault);

impl fmt::Display for OpenRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "does not match its seals: {}", self.0)?;
        if let SealFault::Unsealed { .. } = self.0 {
            f.write_str(
                "; start once with --accept-unsealed-journal to accept it as it is (journaled)",
            )?;
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
    fn only_a_torn_line_is_repaired_and_an_unsealed_journal_needs_the_operator() {
        assert!(tolerated_at_open(&Fault {
            line: 3,
            kind: FaultKind::Torn
        }));
        assert!(!tolerated_at_open(&Fault {
            line: 3,
            kind: FaultKind::InvalidJson
        }));
        let report = SealReport {
            sealed_lines: 4,
            unsealed_lines: 1,
            seals: 2,
        };
        assert_eq!(seals_at_open(Ok(report), false), Ok((report, 0)));
        let unsealed = SealFault::Unsealed { journal_lines: 9 };
        let accepted = seals_at_open(Err(unsealed), true).unwrap();
        assert_eq!((accepted.0.unsealed_lines, accepted.1), (9, 9));
        let refused = seals_at_open(Err(unsealed), false).unwrap_err();
        assert!(
            refused.to_string().contains("--accept-unsealed-journal"),
            "{refused}"
        );
        let bad = SealFault::BadRecord { record: 2 };
        let refused = seals_at_open(Err(bad), true).unwrap_err();
        assert_eq!(refused, OpenRefusal(bad));
        assert!(!refused.to_string().contains("--accept"), "{refused}");
    }
}
