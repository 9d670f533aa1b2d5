//! Restart: verify the journal against its seals (streaming), find a torn tail, cut it.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use heidi_core::journal::{
    Fault, FaultKind, LineHash, Seal, Verified, Verifier, seals_at_open, tolerated_at_open,
};

use super::fsutil::{at, err, open_regular};
use super::seals::ReadSeals;

/// Bytes read from the journal per chunk.
const CHUNK_BYTES: usize = 64 * 1024;

/// What an existing journal holds once verified.
pub(super) struct Recovered {
    /// The journal's run id; `None` when it has no line.
    pub(super) run_id: Option<String>,
    /// Intact lines.
    pub(super) lines: u64,
    /// Hash of the last intact line.
    pub(super) last_hash: Option<LineHash>,
    /// End of the last intact line (where a torn tail is cut).
    pub(super) intact_end: u64,
    /// Bytes after `intact_end` (a torn last line).
    pub(super) torn_bytes: u64,
    /// Lines covered by the last valid seal.
    pub(super) sealed_lines: u64,
    /// The last lines, oldest first, at most the tail capacity.
    pub(super) tail: VecDeque<String>,
    /// Lines of a journal without any seal record that the caller accepted
    /// (`accept_unsealed`); 0 when the journal matched its seals.
    pub(super) unsealed_accepted: u64,
}

/// Verifies `journal` (missing: empty) against `seals` without changing anything. Only a
/// torn last line is tolerated (a final segment with no `\n` after it, whatever its length);
/// every other fault is an `InvalidData` error naming the line. A journal of more than one
/// line without any seal record ([`SealFault::Unsealed`]) is refused too, unless
/// `accept_unsealed`. With a `boundary` (the open segment continues a rotated one), the
/// chain and the line numbers continue from that seal.
pub(super) fn verify_existing(
    journal: &Path,
    seals: &ReadSeals,
    boundary: Option<&Seal>,
    tail_capacity: usize,
    accept_unsealed: bool,
) -> io::Result<Recovered> {
    let mut verifier = match boundary {
        Some(b) => seals
            .check
            .verifier_after(b)
            .map_err(|e| refuse(journal, &e.to_string()))?,
        None => seals.check.verifier(),
    };
    let mut scan = Scan::new(tail_capacity);
    scan.base = boundary.map_or(0, Seal::lines);
    let outcome = match open_regular(journal)? {
        Some(mut file) => scan
            .run(&mut file, &mut verifier)
            .and_then(|outcome| scan.torn_if_unterminated(&mut file, outcome))
            .map_err(|e| at(journal, e))?,
        None => verifier.finish(),
    };
    let verified = match outcome {
        Ok(verified) => verified,
        Err(fault) if tolerated_at_open(&fault) => verifier.verified(),
        Err(fault) => return Err(refuse(journal, &fault.to_string())),
    };
    let (report, unsealed_accepted) = seals_at_open(seals.check.check(&verified), accept_unsealed)
        .map_err(|refusal| refuse(journal, &refusal.to_string()))?;
    let tail = read_tail(journal, scan.tail_start(), scan.intact_end)?;
    Ok(Recovered {
        run_id: (verified.lines > 0).then(|| verified.run_id().to_owned()),
        lines: verified.lines,
        last_hash: verified.last_hash,
        intact_end: scan.intact_end,
        torn_bytes: scan.total - scan.intact_end,
        sealed_lines: report.sealed_lines,
        tail,
        unsealed_accepted,
    })
}

fn refuse(journal: &Path, why: &str) -> io::Error {
    let msg = format!(
        "journal {}: {why}; refusing to open (an operator must inspect it)",
        journal.display()
    );
    err(io::ErrorKind::InvalidData, msg)
}

/// Cuts `path` to `len` bytes and syncs it.
pub(super) fn cut(path: &Path, len: u64) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| at(path, e))?;
    file.set_len(len)
        .and_then(|()| file.sync_all())
        .map_err(|e| at(path, e))
}

/// Offsets gathered while streaming the journal through a verifier.
struct Scan {
    total: u64,
    intact_end: u64,
    /// Line ends noted (the lines before `intact_end`).
    lines: u64,
    /// Lines before the file's first line (its segment's boundary seal).
    base: u64,
    /// Ends of the last `tail_capacity + 1` lines.
    ends: VecDeque<u64>,
    tail_capacity: usize,
}

impl Scan {
    fn new(tail_capacity: usize) -> Scan {
        Scan {
            total: 0,
            intact_end: 0,
            lines: 0,
            base: 0,
            ends: VecDeque::new(),
            tail_capacity,
        }
    }

    fn run(&mut self, file: &mut File, v: &mut Verifier) -> io::Result<Result<Verified, Fault>> {
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            let n = read_some(file, &mut buf)?;
            if n == 0 {
                return Ok(v.finish());
            }
            let chunk = &buf[..n];
            if let Err(fault) = v.feed(chunk) {
                // The lines of this chunk before the fault verified: note their ends too.
                self.note_lines(chunk, v.verified().lines.saturating_sub(self.base));
                return Ok(Err(fault));
            }
            self.note_lines(chunk, u64::MAX);
        }
    }

    /// A line too long for the verifier with no `\n` anywhere after it is the torn tail of
    /// a large write cut short by a crash (a file system may leave it zero-filled), not
    /// tampering: the verifier reports it too long before it can know that no `\n` follows.
    /// Turns such a fault into [`FaultKind::Torn`] and sets `total` to the end of the file;
    /// leaves any other outcome alone (a too-long line that ends in `\n` stays refused).
    fn torn_if_unterminated(
        &mut self,
        file: &mut File,
        outcome: Result<Verified, Fault>,
    ) -> io::Result<Result<Verified, Fault>> {
        let Err(
            fault @ Fault {
                kind: FaultKind::TooLong,
                ..
            },
        ) = outcome
        else {
            return Ok(outcome);
        };
        file.seek(SeekFrom::Start(self.intact_end))?;
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut end = self.intact_end;
        loop {
            let n = read_some(file, &mut buf)?;
            if n == 0 {
                break;
            }
            if buf[..n].contains(&b'\n') {
                return Ok(Err(fault));
            }
            end += u64::try_from(n).unwrap_or(u64::MAX);
        }
        self.total = end;
        Ok(Err(Fault {
            kind: FaultKind::Torn,
            ..fault
        }))
    }

    /// Notes the line ends in `chunk`, up to `max_lines` lines in all.
    fn note_lines(&mut self, chunk: &[u8], max_lines: u64) {
        let newlines = chunk.iter().enumerate().filter(|(_, b)| **b == b'\n');
        for (i, _) in newlines {
            if self.lines >= max_lines {
                break;
            }
            self.lines += 1;
            let end = self.total + u64::try_from(i).unwrap_or(u64::MAX) + 1;
            self.ends.push_back(end);
            if self.ends.len() > self.tail_capacity + 1 {
                self.ends.pop_front();
            }
            self.intact_end = end;
        }
        self.total += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
    }

    /// Where the last `tail_capacity` intact lines start.
    fn tail_start(&self) -> u64 {
        match self.ends.front() {
            Some(&end) if self.ends.len() == self.tail_capacity + 1 => end,
            _ => 0,
        }
    }
}

/// Reads the next bytes into `buf` (0 at the end of the file), retrying interrupted reads.
fn read_some(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            read => return read,
        }
    }
}

/// The lines between `start` and `end` (whole lines, at most the tail capacity).
fn read_tail(path: &Path, start: u64, end: u64) -> io::Result<VecDeque<String>> {
    if end <= start {
        return Ok(VecDeque::new());
    }
    let mut file = File::open(path).map_err(|e| at(path, e))?;
    file.seek(SeekFrom::Start(start)).map_err(|e| at(path, e))?;
    let mut bytes = Vec::new();
    file.take(end - start)
        .read_to_end(&mut bytes)
        .map_err(|e| at(path, e))?;
    Ok(bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect())
}
