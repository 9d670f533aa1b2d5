//! The streaming verifier: fed a journal in chunks of any size, it checks every line and the
//! chain, and reports the first bad line.

use core::fmt;

use sha2::{Digest, Sha256};

use super::chain::{BadRunId, RUN_ID_MAX_BYTES, RunId, run_id_from};
use super::hash::LineHash;
use super::line::MAX_LINE_BYTES;
use super::scan::scan;

/// What is wrong with a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FaultKind {
    /// Not compact JSON (whitespace between tokens counts as malformed), not UTF-8, or a
    /// string with a raw control character or a bad escape.
    InvalidJson,
    /// A key is missing, extra, misnamed or out of the fixed order.
    WrongKeys,
    /// `event_version` is not `"1.0"`.
    WrongVersion,
    /// `ts` is not `YYYY-MM-DDTHH:MM:SS.mmmZ` with a real date and time.
    BadTs,
    /// A field holds JSON of the wrong type or form: `run_id` not a valid run id, `round` not
    /// a non-negative integer below 2³², a delta not a map of integers, `artifact_paths` not a
    /// list of strings, `error` neither `null` nor a string, a text field not a string.
    BadField,
    /// `run_id` differs from the first line's.
    WrongRunId,
    /// `prev_hash` is neither the run id (line 1) nor the hash of the line before. The line
    /// before was changed, or this one, or lines were deleted, swapped or inserted here.
    BrokenPrevHash,
    /// Longer than [`MAX_LINE_BYTES`] (with its `\n`).
    TooLong,
    /// The last line has no `\n`: a write cut short by a crash. A host may cut it off and
    /// resume; it is not evidence of tampering by itself (seals tell whether lines are missing).
    Torn,
}

impl FaultKind {
    /// A short description.
    pub const fn describe(self) -> &'static str {
        match self {
            FaultKind::InvalidJson => "not valid compact JSON",
            FaultKind::WrongKeys => "keys missing, extra or out of order",
            FaultKind::WrongVersion => "event_version is not \"1.0\"",
            FaultKind::BadTs => "ts is not a UTC timestamp with milliseconds",
            FaultKind::BadField => "a field has the wrong type or form",
            FaultKind::WrongRunId => "run_id differs from the first line's",
            FaultKind::BrokenPrevHash => "prev_hash does not match the line before",
            FaultKind::TooLong => "line too long",
            FaultKind::Torn => "last line has no newline (torn write)",
        }
    }
}

/// The first bad line of a journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Fault {
    /// 1-based line number; lines before it verified.
    pub line: u64,
    /// What is wrong with it.
    pub kind: FaultKind,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "journal line {}: {}", self.line, self.kind.describe())
    }
}

impl core::error::Error for Fault {}

/// What verified: the whole journal after [`Verifier::finish`], or the intact prefix before
/// a fault ([`Verifier::verified`]), which is where a writer resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Lines that verified (1 to `lines`).
    pub lines: u64,
    /// Hash of line `lines`; `None` when no line verified.
    pub last_hash: Option<LineHash>,
    run_id: RunId,
    checkpoint: Option<(u64, LineHash)>,
}

impl Verified {
    /// The run id of the journal (empty when no line verified).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The hash of the watched line ([`Verifier::watch`]), once it verified.
    pub fn checkpoint(&self) -> Option<(u64, LineHash)> {
        self.checkpoint
    }
}

/// A streaming journal verifier with a fixed line buffer of [`MAX_LINE_BYTES`].
///
/// Call [`feed`](Verifier::feed) with the journal's bytes in chunks of any size, then
/// [`finish`](Verifier::finish). The first fault sticks: later input is ignored and every
/// call returns it. Work per call is linear in the chunk.
#[derive(Clone)]
pub struct Verifier {
    buf: [u8; MAX_LINE_BYTES],
    len: usize,
    state: Verified,
    watch: u64,
    fault: Option<Fault>,
}

impl Default for Verifier {
    fn default() -> Verifier {
        Verifier::new()
    }
}

impl Verifier {
    /// A verifier at the start of a journal.
    pub fn new() -> Verifier {
        Verifier {
            buf: [0; MAX_LINE_BYTES],
            len: 0,
            state: Verified {
                lines: 0,
                last_hash: None,
                run_id: RunId::new(),
                checkpoint: None,
            },
            watch: 0,
            fault: None,
        }
    }

    /// A verifier that continues a chain after line `lines` of run `run_id`, whose hash
    /// (with its `\n`) is `last_hash`: for a journal segment that starts after a boundary
    /// seal (docs/JOURNAL.md, "Segments"). The first line fed must carry `last_hash` as its
    /// `prev_hash` and `run_id` as its run id; line numbers (in faults and in [`Verified`])
    /// continue from `lines`. `Err(BadRunId)` for an invalid run id.
    pub fn resume(run_id: &str, lines: u64, last_hash: LineHash) -> Result<Verifier, BadRunId> {
        let mut v = Verifier::new();
        v.state.run_id = run_id_from(run_id)?;
        v.state.lines = lines;
        v.state.last_hash = Some(last_hash);
        Ok(v)
    }

    /// Also keep the hash of line `line` (1-based), for a seal check. Watching the line a
    /// [`resume`](Verifier::resume)d verifier starts after keeps its hash at once.
    pub fn watch(&mut self, line: u64) {
        self.watch = line;
        if let Some(hash) = self.state.last_hash.filter(|_| line == self.state.lines) {
            self.state.checkpoint = Some((line, hash));
        }
    }

    /// Feeds the next bytes of the journal.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Fault> {
        while !bytes.is_empty() {
            if let Some(f) = self.fault {
                return Err(f);
            }
            let Some(nl) = bytes.iter().position(|&b| b == b'\n') else {
                self.buffer(bytes);
                break;
            };
            let (line, rest) = (&bytes[..nl], &bytes[nl + 1..]);
            bytes = rest;
            if self.len == 0 {
                self.complete(line);
            } else {
                self.buffer(line);
                let len = core::mem::take(&mut self.len);
                if self.fault.is_none() {
                    self.fault = check(&mut self.state, self.watch, &self.buf[..len]).err();
                }
            }
        }
        self.fault.map_or(Ok(()), Err)
    }

    /// Ends the journal: a partial last line is [`FaultKind::Torn`].
    pub fn finish(&mut self) -> Result<Verified, Fault> {
        if self.fault.is_none() && self.len > 0 {
            self.fault = Some(self.fault_here(FaultKind::Torn));
        }
        self.fault.map_or_else(|| Ok(self.state.clone()), Err)
    }

    /// The intact prefix so far (everything before the first fault).
    pub fn verified(&self) -> Verified {
        self.state.clone()
    }

    fn fault_here(&self, kind: FaultKind) -> Fault {
        Fault {
            line: self.state.lines + 1,
            kind,
        }
    }

    /// Checks a whole line that is still in the caller's chunk.
    fn complete(&mut self, line: &[u8]) {
        if line.len() >= MAX_LINE_BYTES {
            self.fault = Some(self.fault_here(FaultKind::TooLong));
            return;
        }
        self.fault = check(&mut self.state, self.watch, line).err();
    }

    /// Appends part of a line to the buffer; too long is a fault.
    fn buffer(&mut self, part: &[u8]) {
        let end = self.len + part.len();
        if end >= MAX_LINE_BYTES {
            self.fault = Some(self.fault_here(FaultKind::TooLong));
            return;
        }
        self.buf[self.len..end].copy_from_slice(part);
        self.len = end;
    }
}

/// Checks one complete line (without `\n`) and advances the chain state.
fn check(state: &mut Verified, watch: u64, line: &[u8]) -> Result<(), Fault> {
    let number = state.lines + 1;
    let fault = |kind| Fault { line: number, kind };
    let scanned = scan(line).map_err(fault)?;
    match state.last_hash {
        None => {
            if scanned.prev_hash != scanned.run_id {
                return Err(fault(FaultKind::BrokenPrevHash));
            }
            debug_assert!(scanned.run_id.len() <= RUN_ID_MAX_BYTES);
            state.run_id.clear();
            // The scanner accepted it as a run id: ASCII and at most RUN_ID_MAX_BYTES.
            let text = core::str::from_utf8(scanned.run_id).unwrap_or("");
            state
                .run_id
                .push_str(text)
                .map_err(|()| fault(FaultKind::BadField))?;
        }
        Some(prev) => {
            if scanned.run_id != state.run_id.as_bytes() {
                return Err(fault(FaultKind::WrongRunId));
            }
            if scanned.prev_hash != prev.hex().as_bytes() {
                return Err(fault(FaultKind::BrokenPrevHash));
            }
        }
    }
    let hash = LineHash(
        Sha256::new()
            .chain_update(line)
            .chain_update(b"\n")
            .finalize()
            .into(),
    );
    state.lines = number;
    state.last_hash = Some(hash);
    if number == watch {
        state.checkpoint = Some((number, hash));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::journal::{ChainWriter, Event};
    use crate::time::WallTime;

    pub(crate) type Journal = heapless::Vec<u8, 8192>;

    /// A journal of `n` lines of run `run`.
    pub(crate) fn journal(run: &str, n: u32) -> (Journal, ChainWriter) {
        let mut chain = ChainWriter::new(run).unwrap();
        let mut out = Journal::new();
        let mut buf = [0u8; 1024];
        for i in 0..n {
            let e = Event {
                counters_delta: &[("rows", 3)],
                error: if i % 2 == 1 {
                    Some("bad \"x\"\n")
                } else {
                    None
                },
                ..Event::info(
                    WallTime::from_unix_millis(1_771_573_538_307 + u64::from(i)),
                    i + 1,
                    "generate",
                    "stage_end",
                    "done ✓",
                )
            };
            out.extend_from_slice(chain.append(&e, &mut buf).unwrap())
                .unwrap();
        }
        (out, chain)
    }

    fn verify_chunked(bytes: &[u8], chunk: usize) -> Result<Verified, Fault> {
        let mut v = Verifier::new();
        for part in bytes.chunks(chunk) {
            if v.feed(part).is_err() {
                break;
            }
        }
        v.finish()
    }

    #[test]
    fn a_resumed_verifier_continues_the_chain_of_a_split_journal() {
        let (all, _) = journal("run-7", 5);
        let cut = all
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(2)
            .unwrap()
            .0
            + 1;
        let mut head = Verifier::new();
        head.feed(&all[..cut]).unwrap();
        let head = head.finish().unwrap();
        assert_eq!(head.lines, 3);
        let last = head.last_hash.unwrap();
        let mut tail = Verifier::resume("run-7", 3, last).unwrap();
        tail.watch(3);
        assert_eq!(tail.verified().checkpoint(), Some((3, last)));
        tail.feed(&all[cut..]).unwrap();
        let whole = verify_chunked(&all, 7).unwrap();
        let tail = tail.finish().unwrap();
        assert_eq!((tail.lines, tail.last_hash), (5, whole.last_hash));
        assert_eq!(tail.run_id(), "run-7");
        // Another run id, another hash, or a segment that starts at line 1: line 4 is wrong.
        let wrong = [
            Verifier::resume("run-8", 3, last).unwrap(),
            Verifier::resume("run-7", 3, LineHash([7; 32])).unwrap(),
        ];
        let kinds = wrong.map(|mut v| v.feed(&all[cut..]).unwrap_err());
        assert_eq!(
            kinds[0],
            Fault {
                line: 4,
                kind: FaultKind::WrongRunId
            }
        );
        assert_eq!(
            kinds[1],
            Fault {
                line: 4,
                kind: FaultKind::BrokenPrevHash
            }
        );
        let mut from_start = Verifier::resume("run-7", 3, last).unwrap();
        assert_eq!(
            from_start.feed(&all[..cut]).unwrap_err(),
            Fault {
                line: 4,
                kind: FaultKind::BrokenPrevHash
            }
        );
        assert!(Verifier::resume("bad id", 3, last).is_err());
    }

    #[test]
    fn any_chunking_verifies_the_same() {
        let (j, chain) = journal("run-1", 5);
        for chunk in [1, 2, 3, 7, 64, 300, j.len()] {
            let v = verify_chunked(&j, chunk).unwrap();
            assert_eq!(
                (v.lines, v.last_hash),
                (5, chain.last_hash()),
                "chunk {chunk}"
            );
            assert_eq!(v.run_id(), "run-1");
        }
        let empty = verify_chunked(b"", 1).unwrap();
        assert_eq!((empty.lines, empty.last_hash), (0, None));
    }

    /// The journal with the first occurrence of `from` in line `line` replaced by `to`.
    fn edited(line: usize, from: &str, to: &str) -> Journal {
        let (j, _) = journal("run-1", 4);
        let mut out = Journal::new();
        for (i, l) in j.split_inclusive(|&b| b == b'\n').enumerate() {
            let text = core::str::from_utf8(l).unwrap();
            match text.find(from).filter(|_| i + 1 == line) {
                Some(at) => {
                    out.extend_from_slice(&l[..at]).unwrap();
                    out.extend_from_slice(to.as_bytes()).unwrap();
                    out.extend_from_slice(&l[at + from.len()..]).unwrap();
                }
                None => out.extend_from_slice(l).unwrap(),
            }
        }
        out
    }

    #[test]
    fn each_fault_kind_at_its_line() {
        use FaultKind::*;
        let cases: [(usize, &str, &str, u64, FaultKind); 27] = [
            // Forms the encoder never writes.
            (2, "\"generate\"", r#""\u0050ipe\/line""#, 2, InvalidJson),
            (2, "done", r"\u001B", 2, InvalidJson),
            (2, "done", r"\u001b\/", 2, InvalidJson),
            (2, "done", r"\u00e9", 2, InvalidJson),
            (2, "done", r"\u000a", 2, InvalidJson),
            (2, "\"info\"", "\"banana\"", 2, BadField),
            (2, "\"info\"", "\"INFO\"", 2, BadField),
            (2, "\"generate\"", "\"gen erate\"", 2, BadField),
            (2, "\"rows\":3", "\"rows\":-0", 2, BadField),
            (2, "{", "[", 2, InvalidJson),
            (3, "\"round\":3", "\"round\" : 3", 3, InvalidJson),
            (2, "done", "do\u{1}ne", 2, InvalidJson),
            (2, "done", r"\u001b", 3, BrokenPrevHash),
            (2, "\"stage\"", "\"Stage\"", 2, WrongKeys),
            (2, ",\"error\":\"bad \\\"x\\\"\\n\"", "", 2, WrongKeys),
            (3, "}\n", ",\"x\":1}\n", 3, WrongKeys),
            (1, "\"1.0\"", "\"1.1\"", 1, WrongVersion),
            (1, "\"1.0\"", "1.0", 1, WrongVersion),
            (4, "T07:", "T25:", 4, BadTs),
            (2, "\"round\":2", "\"round\":\"2\"", 2, BadField),
            (2, "\"rows\":3", "\"rows\":3.5", 2, BadField),
            (2, "\"rows\":3", "\"\":3", 2, BadField),
            (2, "\"error\":\"", "\"error\":[\"", 2, InvalidJson),
            (
                3,
                "\"run_id\":\"run-1\"",
                "\"run_id\":\"run-2\"",
                3,
                WrongRunId,
            ),
            (
                1,
                "\"prev_hash\":\"run-1\"",
                "\"prev_hash\":\"run-2\"",
                1,
                BrokenPrevHash,
            ),
            (2, "done", "dome", 3, BrokenPrevHash),
            (
                3,
                "\"prev_hash\":\"",
                "\"prev_hash\":\"0",
                3,
                BrokenPrevHash,
            ),
        ];
        for (at, from, to, line, kind) in cases {
            let j = edited(at, from, to);
            for chunk in [1, 5, j.len()] {
                assert_eq!(
                    verify_chunked(&j, chunk),
                    Err(Fault { line, kind }),
                    "{from:?} -> {to:?} in line {at}, chunk {chunk}"
                );
            }
        }
    }

    #[test]
    fn torn_last_line_is_told_apart_and_resumable() {
        let (j, chain) = journal("run-1", 3);
        let torn = &j[..j.len() - 10];
        let mut v = Verifier::new();
        assert_eq!(v.feed(torn), Ok(()));
        assert_eq!(
            v.finish(),
            Err(Fault {
                line: 3,
                kind: FaultKind::Torn
            })
        );
        // Just the newline missing is torn too.
        assert_eq!(
            verify_chunked(&j[..j.len() - 1], 4).unwrap_err().kind,
            FaultKind::Torn
        );
        // The host cuts the torn line and resumes the chain from the intact prefix.
        let intact = v.verified();
        assert_eq!(intact.lines, 2);
        let mut resumed =
            ChainWriter::resume("run-1", intact.lines, intact.last_hash.unwrap()).unwrap();
        let cut = torn.len() - torn.iter().rev().position(|&b| b == b'\n').unwrap();
        let mut fixed = Journal::from_slice(&j[..cut]).unwrap();
        let (full, _) = journal("run-1", 3);
        let third = &full[cut..];
        let mut buf = [0u8; 1024];
        let e = Event {
            counters_delta: &[("rows", 3)],
            ..Event::info(
                WallTime::from_unix_millis(1_771_573_538_309),
                3,
                "generate",
                "stage_end",
                "done ✓",
            )
        };
        let line = resumed.append(&e, &mut buf).unwrap();
        assert_eq!(line, third);
        fixed.extend_from_slice(line).unwrap();
        assert_eq!(
            verify_chunked(&fixed, 3).unwrap().last_hash,
            chain.last_hash()
        );
    }

    #[test]
    fn too_long_line_is_a_fault_without_a_newline() {
        let mut v = Verifier::new();
        let (j, _) = journal("run-1", 1);
        v.feed(&j).unwrap();
        let junk = [b'x'; 1000];
        let mut result = Ok(());
        for _ in 0..MAX_LINE_BYTES / 1000 + 1 {
            result = v.feed(&junk);
        }
        assert_eq!(
            result,
            Err(Fault {
                line: 2,
                kind: FaultKind::TooLong
            })
        );
        // In one piece, with its newline: the same.
        let mut long = heapless::Vec::<u8, { MAX_LINE_BYTES + 1 }>::new();
        long.resize(MAX_LINE_BYTES, b'x').unwrap();
        long.push(b'\n').unwrap();
        assert_eq!(
            verify_chunked(&long, long.len()).unwrap_err(),
            Fault {
                line: 1,
                kind: FaultKind::TooLong
            }
        );
    }

    #[test]
    fn first_fault_sticks() {
        let j = edited(1, "{", "[");
        let mut v = Verifier::new();
        let first = v.feed(&j).unwrap_err();
        let (good, _) = journal("x", 1);
        assert_eq!(v.feed(&good), Err(first));
        assert_eq!(v.finish(), Err(first));
        assert_eq!(v.verified().lines, 0);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let (j, _) = journal("run-1", 2);
        for _ in 0..2_000 {
            let mut bytes = Journal::from_slice(&j).unwrap();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % bytes.len() as u64) as usize;
                bytes[at] = (seed >> 32) as u8;
            }
            let _ = verify_chunked(&bytes, 1 + (seed % 50) as usize);
        }
    }
}
