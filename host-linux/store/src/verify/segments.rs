//! `heidi journal verify` over a directory of journal segments: every rotated segment in
//! order, then the open one (docs/JOURNAL.md, "Segments").

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use heidi_core::journal::{
    AnchorCheck, SEAL_MAX_BYTES, SEGMENTS_DELETED, Seal, SealCheck, SealKey, SealReport,
    SegmentChain, SegmentFault, Verified, Verifier,
};

use super::{CHUNK_BYTES, VerifyError, VerifyOptions, VerifyReport, anchor_check, read_key};
use crate::paths::{JOURNAL_FILE, SEALS_FILE};
use crate::{segment_file, segment_seals_file};

/// One segment to check.
struct Part {
    /// Its name, for messages (`events.000003.jsonl` or `events.jsonl`).
    name: String,
    journal: PathBuf,
    seals: PathBuf,
    /// The rotated segment's sequence number; `None` for the open one.
    seq: Option<u64>,
}

/// Where the chain stands after a segment.
struct End {
    verified: Verified,
    /// The last seal record of the segment (the next one's boundary).
    last_seal: Option<Seal>,
}

/// Verifies the rotated segments `seqs` of `dir` and the open segment.
pub(super) fn verify_segments(
    opts: &VerifyOptions,
    dir: &Path,
    seqs: &[u64],
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, VerifyError> {
    let key = match (&opts.key, &opts.anchor) {
        (Some(k), _) => Some(read_key(k)?),
        (None, Some(a)) => {
            let why = format!(
                "{}: checking an anchor needs the seal key (--key)",
                a.display()
            );
            return Err(VerifyError::Key(why));
        }
        (None, None) if opts.seals_explicit => {
            let why = "checking seals needs the seal key (--key)".to_owned();
            return Err(VerifyError::Key(why));
        }
        (None, None) => None,
    };
    let mut anchor = match &key {
        Some(k) => anchor_check(opts, k)?,
        None => None,
    };
    let mut parts: Vec<Part> = seqs
        .iter()
        .map(|&seq| Part {
            name: segment_file(seq),
            journal: dir.join(segment_file(seq)),
            seals: dir.join(segment_seals_file(seq)),
            seq: Some(seq),
        })
        .collect();
    parts.push(Part {
        name: JOURNAL_FILE.to_owned(),
        journal: opts.journal.clone(),
        seals: opts.seals.clone().unwrap_or_else(|| dir.join(SEALS_FILE)),
        seq: None,
    });
    let mut walk = Walk {
        key,
        read: 0,
        chain: SegmentChain::new(seqs.first().copied()),
        records: 0,
    };
    let mut end: Option<End> = None;
    for part in &parts {
        walk.chain
            .enter(part.seq)
            .map_err(|f| chain_fault(part, f))?;
        end = Some(walk.segment(part, end.as_ref(), anchor.as_mut(), progress)?);
    }
    let end = end.ok_or_else(|| segment(JOURNAL_FILE, "no segment".to_owned()))?;
    walk.chain.finish().map_err(|f| chain_fault(&parts[0], f))?;
    let seals = walk.key.as_ref().map(|_| {
        let sealed = end.last_seal.as_ref().map_or(0, Seal::lines);
        SealReport {
            sealed_lines: sealed,
            unsealed_lines: end.verified.lines.saturating_sub(sealed),
            seals: walk.records,
        }
    });
    let anchored_lines = match (&anchor, &opts.anchor) {
        (Some(a), Some(path)) => {
            Some(
                a.finish(end.last_seal.as_ref())
                    .map_err(|fault| VerifyError::Anchor {
                        path: path.clone(),
                        fault,
                    })?,
            )
        }
        _ => None,
    };
    let first_line = match parts.first() {
        Some(p) if p.seq.is_some_and(|s| s > 1) => {
            boundary_of(&parts[0], walk.key.as_ref())?.map_or(1, |b| b.lines() + 1)
        }
        _ => 1,
    };
    let mut note = format!(
        "{} segment(s), lines {first_line} to {}",
        parts.len(),
        end.verified.lines
    );
    if walk.key.is_none() {
        note.push_str("; seals and segment boundaries not authenticated: no seal key");
    }
    Ok(VerifyReport {
        lines: end.verified.lines,
        run_id: end.verified.run_id().to_owned(),
        seals,
        anchored_lines,
        note: Some(note),
    })
}

/// A fault of the segments' chain, named by the segment it is about (`part`, unless the
/// fault names another).
fn chain_fault(part: &Part, fault: SegmentFault) -> VerifyError {
    match fault.segment() {
        Some(seq) => segment(&segment_file(seq), fault.to_string()),
        None => segment(&part.name, fault.to_string()),
    }
}

fn segment(name: &str, why: String) -> VerifyError {
    VerifyError::Segment {
        segment: name.to_owned(),
        why,
    }
}

/// The first record of `part`'s seal file: its boundary when it continues another segment
/// (authenticated when there is a key).
fn boundary_of(part: &Part, key: Option<&SealKey>) -> Result<Option<Seal>, VerifyError> {
    let records = read_records(&part.seals)?;
    let Some(first) = records.first() else {
        return Ok(None);
    };
    let seal = Seal::parse(first)
        .map_err(|_| segment(&part.name, "its first seal record is malformed".to_owned()))?;
    if key.is_some_and(|k| !seal.is_authentic(k)) {
        return Err(segment(
            &part.name,
            "its first seal record has a bad MAC".to_owned(),
        ));
    }
    Ok(Some(seal))
}

/// The complete records of a seal file (missing: none).
fn read_records(path: &Path) -> Result<Vec<Vec<u8>>, VerifyError> {
    let io_err = |error| VerifyError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(e)),
    };
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    loop {
        let mut record = Vec::with_capacity(SEAL_MAX_BYTES + 1);
        if !super::next_seal_record(&mut reader, &mut record).map_err(io_err)? {
            return Ok(out);
        }
        out.push(record);
    }
}

struct Walk {
    key: Option<SealKey>,
    /// Bytes read so far, for the progress callback.
    read: u64,
    /// The rules between segments, and how far retention deleted.
    chain: SegmentChain,
    /// Seal records read.
    records: u64,
}

impl Walk {
    /// Verifies one segment after `prev` (the segment before it, `None` for the first).
    fn segment(
        &mut self,
        part: &Part,
        prev: Option<&End>,
        anchor: Option<&mut AnchorCheck>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<End, VerifyError> {
        let records = read_records(&part.seals)?;
        self.records += records.len() as u64;
        let mut check = self.key.as_ref().map(SealCheck::new);
        let mut anchor = anchor;
        for record in &records {
            if let Some(c) = check.as_mut() {
                c.add_record(record)
                    .map_err(|f| segment(&part.name, format!("seals: {f}")))?;
                if let (Some(a), Some(seal)) = (anchor.as_deref_mut(), c.latest()) {
                    a.observe(seal);
                }
            }
        }
        let boundary = match SegmentChain::has_boundary(part.seq) {
            true => {
                let b = boundary_of(part, self.key.as_ref())?;
                SegmentChain::continues(b.as_ref(), prev.map(|p| &p.verified))
                    .map_err(|f| chain_fault(part, f))?;
                b
            }
            false => None,
        };
        let mut verifier = match &boundary {
            None => check
                .as_ref()
                .map_or_else(Verifier::new, SealCheck::verifier),
            Some(b) => resumed(&check, b, &part.name)?,
        };
        let verified = self.feed(part, &mut verifier, progress)?;
        let last_seal = match &check {
            Some(c) => {
                let report = c
                    .check(&verified)
                    .map_err(|f| segment(&part.name, format!("seals: {f}")))?;
                SegmentChain::ends(part.seq.is_some(), report.unsealed_lines)
                    .map_err(|f| chain_fault(part, f))?;
                c.latest().cloned()
            }
            None => records.last().and_then(|r| Seal::parse(r).ok()),
        };
        Ok(End {
            verified,
            last_seal,
        })
    }

    /// Streams the segment's lines through `verifier`, noting retention deletions.
    fn feed(
        &mut self,
        part: &Part,
        verifier: &mut Verifier,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Verified, VerifyError> {
        let io_err = |error| VerifyError::Io {
            path: part.journal.clone(),
            error,
        };
        let file = match File::open(&part.journal) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound && part.seq.is_none() => None,
            Err(e) => return Err(io_err(e)),
        };
        let fault = |f: heidi_core::journal::Fault| {
            segment(
                &part.name,
                format!("line {}: {}", f.line, f.kind.describe()),
            )
        };
        if let Some(file) = file {
            let mut reader = BufReader::with_capacity(CHUNK_BYTES, file);
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).map_err(io_err)?;
                if n == 0 {
                    break;
                }
                self.read += n as u64;
                verifier.feed(&line).map_err(fault)?;
                // A cheap look for the name before the core reads the line.
                if contains(&line, SEGMENTS_DELETED.as_bytes()) {
                    self.chain.line(&line);
                }
                if self.read % (CHUNK_BYTES as u64) < n as u64 {
                    progress(self.read);
                }
            }
        }
        verifier.finish().map_err(fault)
    }
}

/// A verifier continuing after boundary `b`, keeping the hash of the last sealed line.
fn resumed(check: &Option<SealCheck>, b: &Seal, name: &str) -> Result<Verifier, VerifyError> {
    let made = match check {
        Some(c) => c.verifier_after(b),
        None => Verifier::resume(b.run_id(), b.lines(), b.last_hash()),
    };
    made.map_err(|e| segment(name, format!("its boundary seal: {e}")))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
