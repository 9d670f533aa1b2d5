//! Reading `OUT_DIR/idempotency.jsonl` back at start: the newest live line of each key. The
//! rules (which line wins, what is live, how many stay, what is not a record) are the core's
//! (`heidi_core::service::record_file`'s docs); this module reads the file and holds the
//! lines.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use heidi_core::service::{FileBounds, LineScratch, RECORD_LINE_MAX_BYTES};

use super::IdemEntry;
use super::fsutil::{at, open_regular};

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
    by_key: HashMap<String, (u64, IdemEntry)>,
    bounds: FileBounds,
}

impl Newest {
    fn add(&mut self, seq: u64, entry: IdemEntry, now_ms: u64, report: &mut IdemLoadReport) {
        if entry.life().is_release() {
            self.by_key.remove(entry.key());
        } else {
            self.by_key.insert(entry.key().to_owned(), (seq, entry));
        }
        if self.by_key.len() > self.bounds.load_prune_above() {
            self.prune(now_ms, report);
        }
    }

    /// Drops expired records, then the oldest beyond what the bounds keep.
    fn prune(&mut self, now_ms: u64, report: &mut IdemLoadReport) {
        let before = self.by_key.len();
        self.by_key.retain(|_, (_, e)| e.life().is_live_at(now_ms));
        report.expired += before - self.by_key.len();
        let keep = self.bounds.keep();
        if self.by_key.len() > keep {
            let mut seqs: Vec<u64> = self.by_key.values().map(|(s, _)| *s).collect();
            seqs.sort_unstable();
            let cut = seqs[seqs.len() - keep];
            let before = self.by_key.len();
            self.by_key.retain(|_, (s, _)| *s >= cut);
            report.over_capacity += before - self.by_key.len();
        }
    }
}

/// Reads `path` (absent: nothing): the newest line of each key whose record is live at
/// `now_ms`, oldest first, at most `bounds.keep()` of them (the newest). A torn last line is
/// cut; a line that is not a record is skipped and counted. Only reading errors fail.
pub(super) fn load(
    path: &Path,
    now_ms: u64,
    bounds: FileBounds,
) -> io::Result<(Vec<IdemEntry>, IdemLoadReport)> {
    let mut report = IdemLoadReport::default();
    let Some(file) = open_regular(path)? else {
        return Ok((Vec::new(), report));
    };
    let mut reader = BufReader::new(file);
    let mut newest = Newest {
        by_key: HashMap::new(),
        bounds,
    };
    let mut scratch = Box::new(LineScratch::new());
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let limit = RECORD_LINE_MAX_BYTES as u64 + 1;
        let n = (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut buf)
            .map_err(|e| at(path, e))?;
        if n == 0 {
            break;
        }
        number += 1;
        if buf.last() != Some(&b'\n') {
            if buf.len() <= RECORD_LINE_MAX_BYTES {
                report.torn_bytes = buf.len();
                break;
            }
            skip_line(&mut reader).map_err(|e| at(path, e))?;
            corrupt(&mut report, number);
            continue;
        }
        let read = std::str::from_utf8(&buf[..buf.len() - 1])
            .ok()
            .and_then(|line| IdemEntry::read(line, &mut scratch).ok());
        match read {
            Some(entry) => newest.add(number, entry, now_ms, &mut report),
            None => corrupt(&mut report, number),
        }
    }
    newest.prune(now_ms, &mut report);
    let mut lines: Vec<(u64, IdemEntry)> = newest.by_key.into_values().collect();
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
