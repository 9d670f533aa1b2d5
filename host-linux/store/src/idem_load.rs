//! Reading `OUT_DIR/idempotency.jsonl` back at start: the newest live line of each key.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use super::fsutil::{at, open_regular};
use heidi_common::idem_line::{IdemLine, LINE_MAX_BYTES};

/// What loading the record file found (logged at start).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdemLoadReport {
    /// Records kept (live at start).
    pub kept: usize,
    /// Records already expired, dropped.
    pub expired: usize,
    /// Live records beyond the table's capacity, the oldest, dropped.
    pub over_capacity: usize,
    /// Lines that are not a record (skipped), and the number of the first.
    pub corrupt_lines: usize,
    /// The 1-based number of the first corrupt line.
    pub first_corrupt_line: Option<u64>,
    /// Bytes of a torn last line (no newline: a crash in the middle of a write), cut.
    pub torn_bytes: usize,
}

/// The newest line of each key, with its position in the file.
struct Newest {
    by_key: HashMap<String, (u64, IdemLine)>,
    capacity: usize,
}

impl Newest {
    fn add(&mut self, seq: u64, line: IdemLine, now_ms: u64, report: &mut IdemLoadReport) {
        match line {
            IdemLine::Released { key } => {
                self.by_key.remove(&key);
            }
            line => {
                self.by_key.insert(line.key().to_owned(), (seq, line));
            }
        }
        // Bounded memory whatever the file holds: prune once it doubles the capacity.
        if self.by_key.len() > 2 * self.capacity {
            self.prune(now_ms, report);
        }
    }

    /// Drops expired records, then the oldest beyond `capacity`.
    fn prune(&mut self, now_ms: u64, report: &mut IdemLoadReport) {
        let before = self.by_key.len();
        self.by_key
            .retain(|_, (_, l)| l.expires_at_ms().is_some_and(|e| e > now_ms));
        report.expired += before - self.by_key.len();
        if self.by_key.len() > self.capacity {
            let mut seqs: Vec<u64> = self.by_key.values().map(|(s, _)| *s).collect();
            seqs.sort_unstable();
            let cut = seqs[seqs.len() - self.capacity];
            let before = self.by_key.len();
            self.by_key.retain(|_, (s, _)| *s >= cut);
            report.over_capacity += before - self.by_key.len();
        }
    }
}

/// Reads `path` (absent: nothing): the newest line of each key whose record is live at
/// `now_ms`, oldest first, at most `capacity` of them (the newest). A torn last line is cut;
/// a line that is not a record is skipped and counted. Only reading errors fail.
pub(super) fn load(
    path: &Path,
    now_ms: u64,
    capacity: usize,
) -> io::Result<(Vec<IdemLine>, IdemLoadReport)> {
    let mut report = IdemLoadReport::default();
    let Some(file) = open_regular(path)? else {
        return Ok((Vec::new(), report));
    };
    let mut reader = BufReader::new(file);
    let mut newest = Newest {
        by_key: HashMap::new(),
        capacity: capacity.max(1),
    };
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let limit = LINE_MAX_BYTES as u64 + 1;
        let n = (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut buf)
            .map_err(|e| at(path, e))?;
        if n == 0 {
            break;
        }
        number += 1;
        if buf.last() != Some(&b'\n') {
            if buf.len() <= LINE_MAX_BYTES {
                report.torn_bytes = buf.len();
                break;
            }
            skip_line(&mut reader).map_err(|e| at(path, e))?;
            corrupt(&mut report, number);
            continue;
        }
        match serde_json::from_slice::<IdemLine>(&buf[..buf.len() - 1]) {
            Ok(line) => newest.add(number, line, now_ms, &mut report),
            Err(_) => corrupt(&mut report, number),
        }
    }
    newest.prune(now_ms, &mut report);
    let mut lines: Vec<(u64, IdemLine)> = newest.by_key.into_values().collect();
    lines.sort_unstable_by_key(|(seq, _)| *seq);
    report.kept = lines.len();
    Ok((lines.into_iter().map(|(_, l)| l).collect(), report))
}

fn corrupt(report: &mut IdemLoadReport, number: u64) {
    report.corrupt_lines += 1;
    report.first_corrupt_line.get_or_insert(number);
}

/// Discards the rest of an overlong line, through its newline (or the end of the file).
fn skip_line(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = chunk.len();
                reader.consume(n);
            }
        }
    }
}
