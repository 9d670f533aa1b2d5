//! The hash chain: the writer side that stamps every line with its `prev_hash`.

use core::fmt;

use super::event::Event;
use super::hash::LineHash;
use super::line::{EncodeError, encode_line};
use super::seal::{Seal, SealKey};

/// Longest run id, in bytes.
pub const RUN_ID_MAX_BYTES: usize = 128;

/// Whether `run_id` is a valid run id: 1 to [`RUN_ID_MAX_BYTES`] bytes of ASCII letters,
/// digits, `_`, `-`, `.` and `:`. (So it needs no escaping, is safe in file names and in the
/// seal's MAC input, and its JSON form is its own bytes.)
pub fn is_valid_run_id(run_id: &[u8]) -> bool {
    !run_id.is_empty()
        && run_id.len() <= RUN_ID_MAX_BYTES
        && run_id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// A run id that is not valid (see [`is_valid_run_id`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BadRunId;

impl fmt::Display for BadRunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "run id must be 1 to {RUN_ID_MAX_BYTES} bytes of [A-Za-z0-9_.:-]"
        )
    }
}

impl core::error::Error for BadRunId {}

/// A valid run id, stored inline.
pub(crate) type RunId = heapless::String<RUN_ID_MAX_BYTES>;

/// Copies a valid run id.
pub(crate) fn run_id_from(run_id: &str) -> Result<RunId, BadRunId> {
    if !is_valid_run_id(run_id.as_bytes()) {
        return Err(BadRunId);
    }
    RunId::try_from(run_id).map_err(|()| BadRunId)
}

/// The writer side of one run's chain: turns events into lines whose `prev_hash` links them.
///
/// The first line's `prev_hash` is the run id; every later one is the lowercase hex SHA-256
/// of the previous line's bytes including its `\n`. The state is the run id, the line count
/// and the last line's hash, so a restarted writer [`resume`](ChainWriter::resume)s from the
/// last intact line that a [`Verifier`](super::Verifier) reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainWriter {
    run_id: RunId,
    lines: u64,
    last_hash: Option<LineHash>,
}

impl ChainWriter {
    /// A new, empty chain for `run_id`.
    pub fn new(run_id: &str) -> Result<ChainWriter, BadRunId> {
        Ok(ChainWriter {
            run_id: run_id_from(run_id)?,
            lines: 0,
            last_hash: None,
        })
    }

    /// Continues a chain whose last intact line is line `line_count` (1-based) with hash
    /// `last_line_hash`. `line_count == 0` is a new chain and ignores the hash.
    pub fn resume(
        run_id: &str,
        line_count: u64,
        last_line_hash: LineHash,
    ) -> Result<ChainWriter, BadRunId> {
        let mut chain = ChainWriter::new(run_id)?;
        if line_count > 0 {
            chain.lines = line_count;
            chain.last_hash = Some(last_line_hash);
        }
        Ok(chain)
    }

    /// Encodes `event` as the next line into `buf` and returns it (with its `\n`). The chain
    /// advances only on success; on error the same event may be retried with a larger buffer.
    pub fn append<'b>(
        &mut self,
        event: &Event<'_>,
        buf: &'b mut [u8],
    ) -> Result<&'b [u8], EncodeError> {
        let hex = self.last_hash.map(|h| h.hex());
        let prev = hex.as_ref().map_or(self.run_id.as_str(), |h| h.as_str());
        let n = encode_line(event, &self.run_id, prev, buf)?;
        let line = &buf[..n];
        self.last_hash = Some(LineHash::of(line));
        self.lines += 1;
        Ok(line)
    }

    /// A seal over the chain so far, keyed by the host's seal `key`; `None` before the
    /// first line.
    #[must_use]
    pub fn seal(&self, key: &SealKey) -> Option<Seal> {
        let last_hash = self.last_hash?;
        Some(Seal::from_parts(
            key,
            self.run_id.clone(),
            self.lines,
            last_hash,
        ))
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Lines written so far (including those before a resume).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Hash of the last line, `None` while the chain is empty.
    pub fn last_hash(&self) -> Option<LineHash> {
        self.last_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::MAX_LINE_BYTES;

    const SEED_RUN: &str = "test_cpp_run_123";

    #[test]
    fn first_prev_hash_is_run_id_then_hash_with_newline() {
        let mut chain = ChainWriter::new(SEED_RUN).unwrap();
        let mut buf = [0u8; MAX_LINE_BYTES];
        let first = chain.append(&Event::seed(), &mut buf).unwrap();
        assert!(first.ends_with(b"\"prev_hash\":\"test_cpp_run_123\"}\n"));
        // The seed's second line carries this hash: SHA-256 of the first line *with* its `\n`.
        let seed_second = "597846557e991975f30a5a3fb10af0cc11da934b2879f8c9b4d04443f4f5149a";
        assert_eq!(chain.last_hash().unwrap().hex().as_str(), seed_second);
        let stage = Event {
            stage: "generate",
            event_type: "stage_start",
            message: "Starting teacher generation",
            ..Event::seed()
        };
        let second = chain.append(&stage, &mut buf).unwrap();
        let want = "{\"event_version\":\"1.0\",\"ts\":\"2026-02-20T07:45:38.307Z\",\"run_id\":\"test_cpp_run_123\",\"round\":1,\"stage\":\"generate\",\"level\":\"info\",\"event_type\":\"stage_start\",\"message\":\"Starting teacher generation\",\"counters_delta\":{},\"usage_delta\":{},\"artifact_paths\":[],\"error\":null,\"prev_hash\":\"597846557e991975f30a5a3fb10af0cc11da934b2879f8c9b4d04443f4f5149a\"}\n";
        assert_eq!(core::str::from_utf8(second).unwrap(), want);
        assert_eq!(chain.lines(), 2);
    }

    #[test]
    fn resume_continues_the_same_chain() {
        let mut a = ChainWriter::new("r-1").unwrap();
        let mut buf = [0u8; 1024];
        a.append(&Event::seed(), &mut buf).unwrap();
        let mut b = ChainWriter::resume("r-1", a.lines(), a.last_hash().unwrap()).unwrap();
        assert_eq!(a, b);
        let la: heapless::Vec<u8, 1024> =
            heapless::Vec::from_slice(a.append(&Event::seed(), &mut buf).unwrap()).unwrap();
        assert_eq!(b.append(&Event::seed(), &mut buf).unwrap(), &la[..]);
        assert_eq!(
            ChainWriter::resume("r-1", 0, LineHash([7; 32])).unwrap(),
            ChainWriter::new("r-1").unwrap()
        );
    }

    #[test]
    fn failed_append_does_not_advance() {
        let mut chain = ChainWriter::new("r").unwrap();
        let mut small = [0u8; 10];
        assert!(chain.append(&Event::seed(), &mut small).is_err());
        assert_eq!((chain.lines(), chain.last_hash()), (0, None));
        assert!(chain.seal(&crate::journal::seal::tests::key()).is_none());
    }

    #[test]
    fn run_id_rules() {
        assert!(ChainWriter::new("test_cpp_run_123").is_ok());
        assert!(ChainWriter::new("2026-02-20T07:45:38.307Z").is_ok());
        for bad in ["", "a b", "a\"b", "a\\b", "ä", "a\n"] {
            assert_eq!(ChainWriter::new(bad), Err(BadRunId), "{bad:?}");
        }
        let long = [b'a'; RUN_ID_MAX_BYTES + 1];
        assert!(!is_valid_run_id(&long));
        assert!(is_valid_run_id(&long[..RUN_ID_MAX_BYTES]));
    }
}
