//! The offline check of a journal (and its seals), `heidi journal verify`, with the core's
//! streaming [`Verifier`], without a daemon. A journal directory with rotated segments is
//! walked segment by segment (docs/JOURNAL.md, "Segments").

mod segments;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use heidi_core::journal::{
    AnchorCheck, AnchorFault, Fault, SEAL_MAX_BYTES, SealCheck, SealFault, SealKey, SealReport,
    Verifier,
};

use crate::paths::{JOURNAL_FILE, SEALS_FILE, default_key_path};
use crate::{anchor_path, list_segments, load_key, parse_segment_file, read_anchor};

/// Bytes read from the journal per [`Verifier::feed`] call.
const CHUNK_BYTES: usize = 256 * 1024;

/// What to verify, with the defaults already applied ([`VerifyOptions::resolve`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The journal (`events.jsonl`).
    pub journal: PathBuf,
    /// The seal file, if any.
    pub seals: Option<PathBuf>,
    /// Whether the seal file was named on the command line (then a missing key is an error;
    /// a default seal file without a key only skips the seal check).
    pub seals_explicit: bool,
    /// The seal key file, if any.
    pub key: Option<PathBuf>,
    /// The journal's anchor file (the latest seal the daemon wrote, kept beside the key), if
    /// any; it needs the key.
    pub anchor: Option<PathBuf>,
}

impl VerifyOptions {
    /// Applies the defaults: a directory, or a rotated segment in it, names its
    /// `events.jsonl` (and the segments beside it); seals = `events.seals` beside the journal when it exists; key =
    /// [`default_key_path`] when it exists; anchor = the journal's anchor file in the key's
    /// directory ([`anchor_path`]) when there is a key and that file exists.
    pub fn resolve(
        journal: PathBuf,
        seals: Option<PathBuf>,
        key: Option<PathBuf>,
        anchor: Option<PathBuf>,
    ) -> VerifyOptions {
        let seals_explicit = seals.is_some();
        let rotated = journal
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_segment_file)
            .is_some();
        let journal = if journal.is_dir() {
            journal.join(JOURNAL_FILE)
        } else if rotated {
            // A rotated segment is checked with the segments around it.
            journal.with_file_name(JOURNAL_FILE)
        } else {
            journal
        };
        let beside = journal.with_file_name(SEALS_FILE);
        let seals = seals.or_else(|| beside.is_file().then_some(beside));
        let key = key.or_else(|| Some(default_key_path()).filter(|p| p.is_file()));
        let anchor = anchor.or_else(|| {
            let key = key.as_ref()?;
            anchor_path(key, &journal).ok().filter(|p| p.is_file())
        });
        VerifyOptions {
            journal,
            seals,
            seals_explicit,
            key,
            anchor,
        }
    }
}

/// A journal that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Lines that verified.
    pub lines: u64,
    /// The run id of the journal.
    pub run_id: String,
    /// The seal check, when seals and a key were available.
    pub seals: Option<SealReport>,
    /// Lines of the anchored seal, when an anchor was checked.
    pub anchored_lines: Option<u64>,
    /// Why seals were not checked, when they were not.
    pub note: Option<String>,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ok: {} lines, run {:?}", self.lines, self.run_id)?;
        if let Some(s) = &self.seals {
            write!(
                f,
                ", {} sealed lines ({} after the last seal, {} seal records)",
                s.sealed_lines, s.unsealed_lines, s.seals
            )?;
        }
        if let Some(n) = self.anchored_lines {
            write!(f, ", anchor at {n} lines matched")?;
        }
        if let Some(note) = &self.note {
            write!(f, "; {note}")?;
        }
        Ok(())
    }
}

/// Why verification did not succeed.
#[derive(Debug)]
pub enum VerifyError {
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// The key is unusable, or seals were named without a key.
    Key(String),
    /// The first bad journal line.
    Fault(Fault),
    /// The journal does not match its seals.
    Seal(SealFault),
    /// A segment of a segmented journal is missing, out of order, cut, or does not match its
    /// seals (the message names the segment file).
    Segment {
        /// The segment's file name (`events.000003.jsonl`, `events.jsonl`).
        segment: String,
        /// Why.
        why: String,
    },
    /// The seals do not reach the journal's anchor, or the anchor is bad.
    Anchor {
        /// The anchor file.
        path: PathBuf,
        /// Why.
        fault: AnchorFault,
    },
}

impl VerifyError {
    /// True for a verification failure (exit 4), false for a usage problem (exit 2).
    pub fn is_verification_failure(&self) -> bool {
        matches!(
            self,
            VerifyError::Fault(_)
                | VerifyError::Seal(_)
                | VerifyError::Segment { .. }
                | VerifyError::Anchor { .. }
        )
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            VerifyError::Key(why) => f.write_str(why),
            VerifyError::Fault(fault) => {
                write!(f, "line {}: {}", fault.line, fault.kind.describe())
            }
            VerifyError::Seal(fault) => write!(f, "seals: {fault}"),
            VerifyError::Segment { segment, why } => write!(f, "segment {segment}: {why}"),
            VerifyError::Anchor { path, fault } => {
                write!(f, "seals behind the anchor {}: {fault}", path.display())
            }
        }
    }
}

impl std::error::Error for VerifyError {}

/// Verifies `opts.journal` (and its seals when a key is available), streaming the file in
/// chunks; `progress` is told the bytes read so far after each chunk.
pub fn verify_journal(
    opts: &VerifyOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, VerifyError> {
    let dir = match opts.journal.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => Path::new("."),
    };
    let is_open_segment = opts.journal.file_name() == Some(JOURNAL_FILE.as_ref());
    if is_open_segment {
        let seqs = list_segments(dir).map_err(|error| VerifyError::Io {
            path: dir.to_path_buf(),
            error,
        })?;
        if !seqs.is_empty() {
            return segments::verify_segments(opts, dir, &seqs, progress);
        }
    }
    let (mut check, anchor, note) = seal_check(opts)?;
    let mut verifier = match &check {
        Some(c) => c.verifier(),
        None => Verifier::new(),
    };
    let io_err = |error| VerifyError::Io {
        path: opts.journal.clone(),
        error,
    };
    let mut file = File::open(&opts.journal).map_err(io_err)?;
    let mut chunk = vec![0u8; CHUNK_BYTES];
    let mut read = 0u64;
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        read += n as u64;
        verifier.feed(&chunk[..n]).map_err(VerifyError::Fault)?;
        progress(read);
    }
    let verified = verifier.finish().map_err(VerifyError::Fault)?;
    let seals = match check.as_mut() {
        Some(c) => Some(c.check(&verified).map_err(VerifyError::Seal)?),
        None => None,
    };
    let anchored_lines = match (&anchor, &check, &opts.anchor) {
        (Some(a), Some(c), Some(path)) => {
            Some(a.finish(c.latest()).map_err(|fault| VerifyError::Anchor {
                path: path.clone(),
                fault,
            })?)
        }
        _ => None,
    };
    Ok(VerifyReport {
        lines: verified.lines,
        run_id: verified.run_id().to_owned(),
        seals,
        anchored_lines,
        note,
    })
}

/// The seal check and anchor check to run, or a note saying why there is none.
type Checks = (Option<SealCheck>, Option<AnchorCheck>, Option<String>);

/// The seal check (fed with the seal records) and anchor check to run, or a note saying why
/// there is none.
fn seal_check(opts: &VerifyOptions) -> Result<Checks, VerifyError> {
    if let (Some(a), None) = (&opts.anchor, &opts.key) {
        let why = format!(
            "{}: checking an anchor needs the seal key (--key)",
            a.display()
        );
        return Err(VerifyError::Key(why));
    }
    let (seals, key) = match (&opts.seals, &opts.key) {
        (Some(s), Some(k)) => (s, k),
        (Some(s), None) if opts.seals_explicit => {
            let why = format!("{}: checking seals needs the seal key (--key)", s.display());
            return Err(VerifyError::Key(why));
        }
        (Some(_), None) => {
            return Ok((None, None, Some("seals not checked: no seal key".into())));
        }
        // With a key, a journal without seals is checked against none: more than its first
        // line unsealed means the seal file was deleted (SealFault::Unsealed), and an anchor
        // that the seals do not reach means they were cut (AnchorFault::Behind).
        (None, Some(k)) => {
            let key = read_key(k)?;
            let anchor = anchor_check(opts, &key)?;
            return Ok((Some(SealCheck::new(&key)), anchor, None));
        }
        (None, None) => {
            return Ok((None, None, Some("no seal file: nothing is sealed".into())));
        }
    };
    let key = read_key(key)?;
    let mut anchor = anchor_check(opts, &key)?;
    let mut check = SealCheck::new(&key);
    let io_err = |error| VerifyError::Io {
        path: seals.clone(),
        error,
    };
    let mut reader = BufReader::new(File::open(seals).map_err(io_err)?);
    let mut record = Vec::with_capacity(SEAL_MAX_BYTES + 1);
    while next_seal_record(&mut reader, &mut record).map_err(io_err)? {
        if record == b"\n" {
            continue;
        }
        check.add_record(&record).map_err(VerifyError::Seal)?;
        if let (Some(a), Some(seal)) = (anchor.as_mut(), check.latest()) {
            a.observe(seal);
        }
    }
    Ok((Some(check), anchor, None))
}

/// Reads the next seal record into `record` (replacing its content): a line with its `\n`,
/// or the first `SEAL_MAX_BYTES + 1` bytes of a longer one, which no record check accepts.
/// `false` at the end of the file.
fn next_seal_record(reader: &mut impl BufRead, record: &mut Vec<u8>) -> io::Result<bool> {
    record.clear();
    let limit = (SEAL_MAX_BYTES + 1) as u64;
    Ok(reader.by_ref().take(limit).read_until(b'\n', record)? > 0)
}

/// The anchor check of `opts.anchor` (authenticated with `key`), if one is named.
fn anchor_check(opts: &VerifyOptions, key: &SealKey) -> Result<Option<AnchorCheck>, VerifyError> {
    let Some(path) = &opts.anchor else {
        return Ok(None);
    };
    let io_err = |error| VerifyError::Io {
        path: path.clone(),
        error,
    };
    let record = read_anchor(path)
        .map_err(io_err)?
        .ok_or_else(|| io_err(io::Error::from(io::ErrorKind::NotFound)))?;
    AnchorCheck::new(key, &record)
        .map(Some)
        .map_err(|fault| VerifyError::Anchor {
            path: path.clone(),
            fault,
        })
}

/// The daemon's own reader: raw bytes, 32..=4096 of them, mode 0600.
fn read_key(path: &Path) -> Result<SealKey, VerifyError> {
    load_key(path).map_err(|error| match error.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
            VerifyError::Key(error.to_string())
        }
        _ => VerifyError::Io {
            path: path.to_path_buf(),
            error,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use heidi_core::WallTime;
    use heidi_core::journal::{
        ChainWriter, Event, FaultKind, MAX_LINE_BYTES, SEAL_MAX_BYTES, SealKey,
    };
    use std::io::Write;
    use std::path::Path;

    const SECRET: &[u8] = b"a test seal key of at least thirty-two bytes";

    /// Writes a valid journal of `lines` lines, sealed after `sealed` lines (0: no seal file),
    /// and a raw key file; returns the directory and the options.
    fn journal(lines: u64, sealed: u64) -> (tempfile::TempDir, VerifyOptions) {
        let dir = tempfile::tempdir().unwrap();
        let key = SealKey::new(SECRET).unwrap();
        let mut chain = ChainWriter::new("run-1").unwrap();
        let (mut text, mut seals) = (Vec::new(), Vec::new());
        let mut buf = vec![0u8; MAX_LINE_BYTES];
        for n in 0..lines {
            let e = Event::info(WallTime::from_unix_millis(n), 1, "pipeline", "tick", "hi");
            text.extend_from_slice(chain.append(&e, &mut buf).unwrap());
            if n + 1 == sealed {
                let mut out = [0u8; SEAL_MAX_BYTES];
                let len = chain.seal(&key).unwrap().encode(&mut out).unwrap();
                seals.extend_from_slice(&out[..len]);
            }
        }
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, &text).unwrap();
        if sealed > 0 {
            std::fs::write(dir.path().join(SEALS_FILE), &seals).unwrap();
        }
        let key_path = dir.path().join("seal.key");
        write_key(&key_path, SECRET);
        let opts = VerifyOptions::resolve(path, None, Some(key_path), None);
        (dir, opts)
    }

    fn run(opts: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
        verify_journal(opts, &mut |_| {})
    }

    #[test]
    fn a_valid_sealed_journal_verifies() {
        let (_dir, opts) = journal(5, 3);
        assert!(opts.seals.is_some());
        let mut seen = 0;
        let report = verify_journal(&opts, &mut |n| seen = n).unwrap();
        assert_eq!((report.lines, report.run_id.as_str()), (5, "run-1"));
        let seals = report.seals.unwrap();
        assert_eq!(
            (seals.sealed_lines, seals.unsealed_lines, seals.seals),
            (3, 2, 1)
        );
        assert_eq!(seen, std::fs::metadata(&opts.journal).unwrap().len());
        assert!(report.note.is_none());
    }

    #[test]
    fn a_journal_without_its_seal_file_fails_when_a_key_is_given() {
        let (_dir, opts) = journal(11, 11);
        std::fs::remove_file(opts.seals.as_ref().unwrap()).unwrap();
        let opts = VerifyOptions::resolve(opts.journal.clone(), None, opts.key.clone(), None);
        assert_eq!(opts.seals, None);
        let e = run(&opts).unwrap_err();
        assert!(
            matches!(
                e,
                VerifyError::Seal(SealFault::Unsealed { journal_lines: 11 })
            ),
            "{e}"
        );
        assert!(e.is_verification_failure());
        assert!(e.to_string().contains("no seal record"), "{e}");
        // An emptied seal file is the same.
        let seals = opts.journal.with_file_name(SEALS_FILE);
        std::fs::write(&seals, b"").unwrap();
        let opts = VerifyOptions::resolve(opts.journal.clone(), None, opts.key.clone(), None);
        assert!(matches!(
            run(&opts),
            Err(VerifyError::Seal(SealFault::Unsealed { .. }))
        ));
        // Without any key there is nothing to check the seals with: chain only, with a note.
        let chain_only = VerifyOptions {
            key: None,
            seals: None,
            ..opts
        };
        assert!(
            run(&chain_only)
                .unwrap()
                .note
                .unwrap()
                .contains("nothing is sealed")
        );
    }

    #[test]
    fn a_changed_byte_is_a_fault_at_its_line() {
        let (_dir, opts) = journal(4, 0);
        let mut text = std::fs::read(&opts.journal).unwrap();
        let second = text.iter().position(|&b| b == b'\n').unwrap() + 1;
        let at = second + text[second..].windows(2).position(|w| w == b"hi").unwrap();
        text[at] = b'H';
        std::fs::write(&opts.journal, &text).unwrap();
        let e = run(&opts).unwrap_err();
        // Line 2 still parses; line 3's prev_hash no longer matches it.
        assert!(matches!(
            e,
            VerifyError::Fault(Fault {
                line: 3,
                kind: FaultKind::BrokenPrevHash
            })
        ));
        assert!(e.is_verification_failure());
        assert_eq!(
            e.to_string(),
            "line 3: prev_hash does not match the line before"
        );
    }

    #[test]
    fn a_cut_last_line_is_torn() {
        let (_dir, opts) = journal(3, 0);
        let text = std::fs::read(&opts.journal).unwrap();
        std::fs::write(&opts.journal, &text[..text.len() - 10]).unwrap();
        let e = run(&opts).unwrap_err();
        assert!(
            matches!(
                e,
                VerifyError::Fault(Fault {
                    line: 3,
                    kind: FaultKind::Torn
                })
            ),
            "{e}"
        );
    }

    #[test]
    fn seals_catch_a_cut_tail_and_need_a_key() {
        let (_dir, opts) = journal(4, 4);
        let text = std::fs::read(&opts.journal).unwrap();
        let cut = text[..text.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        std::fs::write(&opts.journal, &text[..cut]).unwrap();
        let e = run(&opts).unwrap_err();
        assert!(
            matches!(e, VerifyError::Seal(SealFault::CutTail { .. })),
            "{e}"
        );

        // Default seals without a key: chain only, with a note.
        let chain_only = VerifyOptions {
            key: None,
            ..opts.clone()
        };
        let report = run(&chain_only).unwrap();
        assert_eq!(report.lines, 3);
        assert!(report.note.unwrap().contains("no seal key"));
        // Named seals without a key: a usage error.
        let named = VerifyOptions {
            seals_explicit: true,
            ..chain_only
        };
        let e = run(&named).unwrap_err();
        assert!(matches!(e, VerifyError::Key(_)) && !e.is_verification_failure());
    }

    /// A key file as the daemon keeps one: raw bytes, mode 0600.
    fn write_key(path: &Path, secret: &[u8]) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, secret).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn the_key_is_read_as_the_daemon_reads_it() {
        // 64 hex digits are 64 raw key bytes to the daemon, so they are here too.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_key(&path, "00ff".repeat(16).as_bytes());
        let from_cli = load_key(&path).unwrap();
        let from_daemon = crate::load_or_create_key(&path).unwrap();
        let seal = |k: &SealKey| {
            let mut chain = ChainWriter::new("run-1").unwrap();
            let mut line = [0u8; 1024];
            let ev = Event::info(WallTime::from_unix_millis(0), 1, "s", "e", "m");
            chain.append(&ev, &mut line).unwrap();
            chain.seal(k).unwrap()
        };
        assert_eq!(seal(&from_cli), seal(&from_daemon));
        // Group- or world-readable keys are refused, as the daemon refuses them.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let (_d, mut opts) = journal(2, 2);
        assert!(run(&opts).is_ok());
        opts.key = Some(path);
        let e = run(&opts).unwrap_err();
        assert!(
            matches!(e, VerifyError::Io { .. }) && e.to_string().contains("chmod 600"),
            "{e}"
        );
    }

    #[test]
    fn weak_keys_are_refused() {
        let (_d, opts) = journal(2, 2);
        std::fs::File::create(opts.key.as_ref().unwrap())
            .unwrap()
            .write_all(b"short")
            .unwrap();
        let e = run(&opts).unwrap_err();
        assert!(matches!(e, VerifyError::Key(_)), "{e}");
    }

    /// Writes the anchor naming the last seal of `opts`' seal file to `path`.
    fn write_anchor(opts: &VerifyOptions, path: &Path) {
        use heidi_core::journal::{ANCHOR_MAX_BYTES, Anchor, Seal};
        let seals = std::fs::read(opts.seals.as_ref().unwrap()).unwrap();
        let last = seals.split_inclusive(|b| *b == b'\n').next_back().unwrap();
        let seal = Seal::parse(last).unwrap();
        let mut buf = [0u8; ANCHOR_MAX_BYTES];
        let n = Anchor::of_seal(&SealKey::new(SECRET).unwrap(), &seal)
            .encode(&mut buf)
            .unwrap();
        std::fs::write(path, &buf[..n]).unwrap();
    }

    #[test]
    fn the_anchor_beside_the_key_is_checked() {
        let (_dir, opts) = journal(6, 6);
        let beside = anchor_path(opts.key.as_ref().unwrap(), &opts.journal).unwrap();
        write_anchor(&opts, &beside);
        let opts = VerifyOptions::resolve(opts.journal.clone(), None, opts.key.clone(), None);
        assert_eq!(opts.anchor.as_deref(), Some(beside.as_path()));
        let report = run(&opts).unwrap();
        assert_eq!(report.anchored_lines, Some(6));
        assert!(report.to_string().contains("anchor at 6 lines matched"));
    }

    #[test]
    fn seals_behind_a_named_anchor_fail() {
        let (dir, six) = journal(6, 6);
        let path = dir.path().join("named.anchor");
        write_anchor(&six, &path);
        // The same run cut to 4 lines, sealed up to line 3 only.
        let (_d2, cut) = journal(4, 3);
        let cut = VerifyOptions {
            anchor: Some(path.clone()),
            ..cut
        };
        let e = run(&cut).unwrap_err();
        assert!(
            matches!(
                e,
                VerifyError::Anchor {
                    fault: AnchorFault::Behind {
                        sealed_lines: 3,
                        anchored_lines: 6
                    },
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.is_verification_failure());
        assert!(e.to_string().contains("named.anchor"), "{e}");
        // A forged anchor fails too; a missing one is an I/O error; one without a key is a
        // usage error.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"lines\":6,", "\"lines\":3,")).unwrap();
        assert!(matches!(
            run(&cut),
            Err(VerifyError::Anchor {
                fault: AnchorFault::BadMac,
                ..
            })
        ));
        let missing = VerifyOptions {
            anchor: Some(dir.path().join("none")),
            ..cut.clone()
        };
        assert!(matches!(run(&missing), Err(VerifyError::Io { .. })));
        let keyless = VerifyOptions { key: None, ..cut };
        assert!(matches!(run(&keyless), Err(VerifyError::Key(_))));
    }

    #[test]
    fn a_missing_journal_is_an_io_error() {
        let opts = VerifyOptions::resolve("/nonexistent/events.jsonl".into(), None, None, None);
        let e = run(&opts).unwrap_err();
        assert!(matches!(e, VerifyError::Io { .. }) && !e.is_verification_failure());
    }
}
