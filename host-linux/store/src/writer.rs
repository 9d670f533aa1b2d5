//! The writer thread: owns the journal file, the chain and the seal key; group commit.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use heidi_core::journal::{
    ChainWriter, EncodeError, JOURNAL_STAGE, MAX_LINE_BYTES, Retention, Rotation, SEGMENTS_DELETED,
    Seal, SealKey, SealRule, SegmentsDeleted,
};
use tokio::sync::oneshot;

use super::anchor::write_anchor;
use super::config::{AppendError, Appended, FsyncHook};
use super::fsutil::{at, open_append, sync_dir};
use super::seals::SealFile;
use super::segments::{
    first_record, list_segments, remove_segment, segment_file, segment_mtime, segment_seals_file,
    write_boundary,
};
use crate::paths::{JOURNAL_FILE, SEALS_FILE};
use heidi_common::JournalEntry;

/// Least time between two anchor updates while seals are written (the anchor is also
/// replaced at open and at close). After a `kill -9` the anchor may lag the seal file by the
/// seals of this last interval at most.
pub(super) const ANCHOR_INTERVAL: Duration = Duration::from_secs(1);

/// Where an append's answer goes.
pub(super) type Ack = oneshot::Sender<Result<Appended, AppendError>>;

/// What the submit queue carries.
pub(super) enum Msg {
    /// Append an entry and answer once it is durable.
    Append(JournalEntry, Ack),
    /// Test hook: tell `entered`, then block until `release` answers or hangs up.
    #[cfg(test)]
    Stall {
        entered: std::sync::mpsc::SyncSender<()>,
        release: Receiver<()>,
    },
    /// Test hook: swap the journal file for a read-only handle, so the next write fails.
    #[cfg(test)]
    BreakFile,
    /// Test hook: swap the seal file for a read-only handle, so the next seal fails.
    #[cfg(test)]
    BreakSeals,
    /// Test hook: the next rotation stops (as if the process died) before step `n`: 1
    /// before renaming the journal, 2 before renaming its seals, 3 before writing the new
    /// seal file, 4 before creating the new journal file.
    #[cfg(test)]
    CrashRotation(u8),
}

/// State the writer publishes to the handles.
pub(super) struct Shared {
    /// Durable lines.
    pub(super) lines: AtomicU64,
    /// The last durable lines, oldest first.
    pub(super) tail: Mutex<VecDeque<String>>,
    /// Most lines kept in `tail`.
    pub(super) tail_capacity: usize,
}

impl Shared {
    fn publish(&self, lines: u64, new: impl Iterator<Item = String>) {
        let mut tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        tail.extend(new);
        while tail.len() > self.tail_capacity {
            tail.pop_front();
        }
        self.lines.store(lines, Ordering::Release);
    }
}

/// Batching and sealing settings of the writer.
pub(super) struct Policy {
    /// When to seal (the core's rule).
    pub(super) seal: SealRule,
    pub(super) max_batch: usize,
    pub(super) on_fsync: Option<FsyncHook>,
}

/// Rotation and retention of segments (docs/JOURNAL.md, "Segments").
pub(super) struct Segments {
    /// `OUT_DIR`.
    pub(super) dir: PathBuf,
    /// When the open segment is rotated (the core's rule).
    pub(super) rotation: Rotation,
    /// Which rotated segments are deleted (the core's rule).
    pub(super) retention: Retention,
    /// What retention journals in place of the segments it deletes.
    pub(super) carry: Option<super::CarryHook>,
    /// Bytes in the open segment.
    pub(super) bytes: u64,
    /// When the open segment was started (or found, at open).
    pub(super) started: Instant,
    /// The sequence number the next rotation gives the open segment.
    pub(super) next_seq: u64,
    /// No rotation before this (set when one had to be put off).
    pub(super) not_before: Option<Instant>,
}

/// The files the writer appends to.
pub(super) struct Output {
    /// The journal, opened `O_APPEND`.
    pub(super) file: File,
    /// Its path, for error messages.
    pub(super) path: PathBuf,
    /// The seal file.
    pub(super) seals: SealFile,
    /// The anchor file, beside the seal key.
    pub(super) anchor: PathBuf,
}

/// The journal writer; runs on its own thread after [`Writer::run`].
pub(super) struct Writer {
    out: Output,
    chain: ChainWriter,
    key: SealKey,
    policy: Policy,
    shared: std::sync::Arc<Shared>,
    line: Vec<u8>,
    batch: Vec<u8>,
    batch_lines: Vec<String>,
    pending: Vec<(Ack, Appended)>,
    sealed_lines: u64,
    unsealed_since: Option<Instant>,
    failed: Option<String>,
    /// The last seal written (or, before that, the last one read at open).
    last_seal: Option<Seal>,
    /// Lines of the seal the anchor file names (as far as this writer knows).
    anchored_lines: u64,
    /// When the anchor was last replaced (or its replacement last failed).
    anchored_at: Option<Instant>,
    /// Segment rotation and retention.
    seg: Segments,
    /// Test hook: where the next rotation stops ([`Msg::CrashRotation`]).
    #[cfg(test)]
    crash_rotation_at: Option<u8>,
}

impl Writer {
    /// A writer appending to `out`, continuing `chain`, whose last seal is `last_seal`.
    pub(super) fn new(
        out: Output,
        chain: ChainWriter,
        key: SealKey,
        policy: Policy,
        shared: std::sync::Arc<Shared>,
        last_seal: Option<Seal>,
        seg: Segments,
    ) -> Writer {
        let sealed_lines = last_seal.as_ref().map_or(0, Seal::lines);
        let unsealed = chain.lines() > sealed_lines;
        Writer {
            out,
            chain,
            key,
            policy,
            shared,
            line: vec![0; MAX_LINE_BYTES],
            batch: Vec::new(),
            batch_lines: Vec::new(),
            pending: Vec::new(),
            sealed_lines,
            unsealed_since: unsealed.then(Instant::now),
            failed: None,
            last_seal,
            anchored_lines: 0,
            anchored_at: None,
            seg,
            #[cfg(test)]
            crash_rotation_at: None,
        }
    }

    /// Lines in the chain.
    pub(super) fn lines(&self) -> u64 {
        self.chain.lines()
    }

    /// Encodes, writes and syncs one entry now (used at open, before the thread starts).
    pub(super) fn write_now(&mut self, entry: &JournalEntry) -> io::Result<()> {
        self.encode(entry).map_err(io::Error::other)?;
        self.flush()
    }

    /// Seals if lines are unsealed; an error marks the journal failed.
    pub(super) fn seal_now(&mut self) -> io::Result<()> {
        if self.chain.lines() <= self.sealed_lines {
            return Ok(());
        }
        let Some(seal) = self.chain.seal(&self.key) else {
            return Ok(());
        };
        match self.out.seals.append(&seal) {
            Ok(()) => {
                self.sealed_lines = seal.lines();
                self.unsealed_since = None;
                self.last_seal = Some(seal);
                self.anchor_if_due();
                Ok(())
            }
            Err(e) => {
                self.failed = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// The thread's loop: group commits until every handle is gone, then a final seal.
    pub(super) fn run(mut self, rx: Receiver<Msg>) -> io::Result<()> {
        while let Some(first) = self.next(&rx) {
            let deferred = self.gather(first, &rx);
            self.commit();
            self.seal_if_due();
            self.rotate_if_due();
            self.anchor_if_due();
            if let Some(msg) = deferred {
                self.control(msg);
            }
        }
        if let Some(why) = &self.failed {
            return Err(io::Error::other(format!("journal failed earlier: {why}")));
        }
        self.seal_now()?;
        self.anchor_now()
    }

    /// Replaces the anchor with the last seal, now (at open and at close). The seal is
    /// already durable, so the anchor is never ahead of the seal file.
    pub(super) fn anchor_now(&mut self) -> io::Result<()> {
        let Some(seal) = &self.last_seal else {
            return Ok(());
        };
        self.anchored_at = Some(Instant::now());
        write_anchor(&self.out.anchor, &self.key, seal)?;
        self.anchored_lines = seal.lines();
        Ok(())
    }

    /// When the anchor should next be replaced: it lags the last seal, and the last update
    /// is [`ANCHOR_INTERVAL`] old (at once if there was none).
    fn anchor_due(&self) -> Option<Instant> {
        let lags = self
            .last_seal
            .as_ref()
            .is_some_and(|seal| seal.lines() > self.anchored_lines);
        if !lags || self.failed.is_some() {
            return None;
        }
        Some(
            self.anchored_at
                .and_then(|at| at.checked_add(ANCHOR_INTERVAL))
                .unwrap_or_else(Instant::now),
        )
    }

    /// Replaces the anchor if it is due. A failure is logged and retried after
    /// [`ANCHOR_INTERVAL`]; it does not stop the journal (the seals are written).
    fn anchor_if_due(&mut self) {
        if self.anchor_due().is_some_and(|due| due <= Instant::now()) {
            if let Err(e) = self.anchor_now() {
                tracing::warn!(error = %e, "cannot update the journal anchor; retrying");
            }
        }
    }

    /// Blocks for the next message; seals when unsealed lines have waited long enough.
    /// Also replaces the anchor when it is due.
    fn next(&mut self, rx: &Receiver<Msg>) -> Option<Msg> {
        loop {
            let seal_due = match (self.unsealed_since, &self.failed) {
                (Some(since), None) => since.checked_add(std_duration(self.policy.seal.interval)),
                _ => None,
            };
            let due = [seal_due, self.anchor_due(), self.rotation_due()]
                .into_iter()
                .flatten()
                .min();
            let Some(due) = due else {
                return rx.recv().ok();
            };
            match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(msg) => return Some(msg),
                Err(RecvTimeoutError::Timeout) => {
                    self.seal_if_due();
                    self.rotate_if_due();
                    self.anchor_if_due();
                }
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Takes `first` and up to `max_batch - 1` more queued appends without blocking; a
    /// control message ends the batch and is returned. A journal's first line is a batch of
    /// its own, sealed at once ([`seal_if_due`](Writer::seal_if_due)): a crash never leaves
    /// more than that line without a seal (see `UNSEALED_LINES_MAX` in the core).
    fn gather(&mut self, first: Msg, rx: &Receiver<Msg>) -> Option<Msg> {
        let max_batch = if self.chain.lines() == 0 {
            1
        } else {
            self.policy.max_batch
        };
        let mut msg = first;
        let mut taken = 0;
        loop {
            match msg {
                Msg::Append(entry, ack) => self.take(&entry, ack),
                #[cfg(test)]
                other => return Some(other),
            }
            taken += 1;
            if taken >= max_batch {
                return None;
            }
            msg = match rx.try_recv() {
                Ok(next) => next,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return None,
            };
        }
    }

    fn control(&mut self, msg: Msg) {
        match msg {
            Msg::Append(entry, ack) => {
                self.take(&entry, ack);
                self.commit();
            }
            #[cfg(test)]
            Msg::Stall { entered, release } => {
                let _ = entered.send(());
                let _ = release.recv();
            }
            #[cfg(test)]
            Msg::BreakFile => {
                if let Ok(read_only) = File::open(&self.out.path) {
                    self.out.file = read_only;
                }
            }
            #[cfg(test)]
            Msg::BreakSeals => self.out.seals.break_for_test(),
            #[cfg(test)]
            Msg::CrashRotation(step) => self.crash_rotation_at = Some(step),
        }
    }

    /// Encodes one entry into the batch, or answers it at once.
    fn take(&mut self, entry: &JournalEntry, ack: Ack) {
        if let Some(why) = &self.failed {
            let _ = ack.send(Err(AppendError::Io(why.clone())));
            return;
        }
        match self.encode(entry) {
            Ok(appended) => self.pending.push((ack, appended)),
            Err(e) => {
                let _ = ack.send(Err(AppendError::Invalid(e.to_string())));
            }
        }
    }

    /// Stamps and chains `entry` into the batch buffer; the chain advances only on success.
    fn encode(&mut self, entry: &JournalEntry) -> Result<Appended, EncodeError> {
        let (chain, line) = (&mut self.chain, &mut self.line);
        let bytes = entry.with_event(heidi_common::clock::wall_now(), |event| {
            chain.append(event, line).map(|l| l.len())
        })?;
        let line = &self.line[..bytes];
        self.batch.extend_from_slice(line);
        // The core encoder writes UTF-8; the lossy path is only a guard (and slower).
        let text = std::str::from_utf8(&line[..bytes - 1]).map_or_else(
            |_| String::from_utf8_lossy(&line[..bytes - 1]).into_owned(),
            str::to_owned,
        );
        self.batch_lines.push(text);
        let hash = self.chain.last_hash().map(|h| h.hex().as_str().to_owned());
        Ok(Appended {
            line: self.chain.lines(),
            hash: hash.unwrap_or_default(),
        })
    }

    /// Writes and syncs the batch, then answers every pending append.
    fn commit(&mut self) {
        let result = self.flush();
        for (ack, appended) in self.pending.drain(..) {
            let answer = match &result {
                Ok(()) => Ok(appended),
                Err(e) => Err(AppendError::Io(e.to_string())),
            };
            let _ = ack.send(answer);
        }
    }

    /// One `write_all` and one `fdatasync` for the whole batch; an error fails the journal.
    fn flush(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let out = &mut self.out;
        let written = out
            .file
            .write_all(&self.batch)
            .and_then(|()| out.file.sync_data())
            .map_err(|e| at(&out.path, e));
        let entries = self.batch_lines.len();
        let bytes = u64::try_from(self.batch.len()).unwrap_or(u64::MAX);
        self.batch.clear();
        if let Err(e) = written {
            self.batch_lines.clear();
            self.failed = Some(e.to_string());
            return Err(e);
        }
        self.seg.bytes = self.seg.bytes.saturating_add(bytes);
        if let Some(hook) = &self.policy.on_fsync {
            hook(started.elapsed(), entries);
        }
        self.shared
            .publish(self.chain.lines(), self.batch_lines.drain(..));
        self.unsealed_since.get_or_insert_with(Instant::now);
        Ok(())
    }

    fn seal_if_due(&mut self) {
        if self.failed.is_some() {
            return;
        }
        let unsealed = self.chain.lines().saturating_sub(self.sealed_lines);
        let waited = self
            .unsealed_since
            .map(|since| core_duration(since.elapsed()));
        if self.policy.seal.is_due(unsealed, self.sealed_lines, waited) {
            // An error is kept in `failed`; later appends are answered with it.
            let _ = self.seal_now();
        }
    }

    /// When an idle, non-empty open segment is due for rotation by age.
    fn rotation_due(&self) -> Option<Instant> {
        if self.failed.is_some() {
            return None;
        }
        let age = self.seg.rotation.due_at_age(self.seg.bytes)?;
        let due = self.seg.started.checked_add(std_duration(age))?;
        Some(
            self.seg
                .not_before
                .map_or(due, |not_before| due.max(not_before)),
        )
    }

    /// Rotates the open segment when it is large or old enough. A failure before the
    /// files are renamed (the seal, the anchor) leaves the segment open and is retried
    /// later; a failure after it fails the journal (the next start finishes the rotation).
    fn rotate_if_due(&mut self) {
        if self.failed.is_some() || self.seg.bytes == 0 {
            return;
        }
        let now = Instant::now();
        let age = core_duration(now.saturating_duration_since(self.seg.started));
        let due = self.seg.rotation.is_due(self.seg.bytes, age);
        let put_off = self.seg.not_before.is_some_and(|t| t > now);
        if !due || put_off {
            return;
        }
        if let Err(e) = self.rotate() {
            tracing::error!(error = %e, "journal segment rotation failed");
        }
    }

    /// Seals the last line (the boundary), anchors it, renames the open segment to
    /// `events.<seq>.jsonl` / `.seals`, starts the new segment and applies retention.
    fn rotate(&mut self) -> io::Result<()> {
        self.seal_now()?;
        let Some(boundary) = self.last_seal.clone() else {
            return Ok(());
        };
        if let Err(e) = self.anchor_now() {
            tracing::warn!(error = %e, "cannot anchor the segment boundary; rotating later");
            self.seg.not_before = Instant::now().checked_add(ANCHOR_INTERVAL);
            return Ok(());
        }
        self.seg.not_before = None;
        if let Err(e) = self.switch_files(&boundary) {
            self.failed = Some(format!("journal rotation failed: {e}"));
            return Err(e);
        }
        tracing::info!(
            segment = %segment_file(self.seg.next_seq - 1),
            lines = boundary.lines(),
            "journal segment rotated"
        );
        self.apply_retention()
    }

    /// The renames and the new files of a rotation; each step is durable before the next,
    /// and the next start finishes a rotation interrupted between any two.
    fn switch_files(&mut self, boundary: &Seal) -> io::Result<()> {
        let dir = self.seg.dir.clone();
        let seq = self.seg.next_seq;
        let rename = |from: &str, to: &str| {
            std::fs::rename(dir.join(from), dir.join(to)).map_err(|e| at(&dir.join(from), e))
        };
        self.crash_point(1)?;
        rename(JOURNAL_FILE, &segment_file(seq))?;
        self.crash_point(2)?;
        rename(SEALS_FILE, &segment_seals_file(seq))?;
        sync_dir(&dir)?;
        self.crash_point(3)?;
        write_boundary(&dir, boundary)?;
        self.crash_point(4)?;
        let (file, _) = open_append(&dir.join(JOURNAL_FILE))?;
        sync_dir(&dir)?;
        self.out.file = file;
        self.out.seals = SealFile::open(dir.join(SEALS_FILE), &dir)?;
        self.seg.next_seq = seq + 1;
        self.seg.bytes = 0;
        self.seg.started = Instant::now();
        Ok(())
    }

    #[cfg(test)]
    fn crash_point(&mut self, step: u8) -> io::Result<()> {
        if self.crash_rotation_at == Some(step) {
            self.crash_rotation_at = None;
            return Err(io::Error::other(format!(
                "test crash before rotation step {step}"
            )));
        }
        Ok(())
    }

    #[cfg(not(test))]
    #[allow(clippy::unused_self, clippy::unnecessary_wraps)]
    fn crash_point(&mut self, _step: u8) -> io::Result<()> {
        Ok(())
    }

    /// Deletes the oldest rotated segments beyond `retain` or older than `retain_age`
    /// (never the newest: the open segment continues it). The deletion is journaled
    /// (`journal_segments_deleted`, then what the carry hook returns) and sealed before any
    /// file is removed, so a crash leaves
    /// segments the journal says are deleted (removed again at the next start), never
    /// segments deleted without a record.
    pub(super) fn apply_retention(&mut self) -> io::Result<()> {
        if !self.seg.retention.is_set() {
            return Ok(());
        }
        let dir = self.seg.dir.clone();
        let seqs = list_segments(&dir)?;
        let count = self.seg.retention.doomed(seqs.len(), |i| {
            let written = segment_mtime(&dir, seqs[i]).ok()?;
            written.elapsed().ok().map(core_duration)
        });
        let doomed = &seqs[..count];
        let (Some(&first), Some(&through)) = (doomed.first(), doomed.last()) else {
            return Ok(());
        };
        let through_line = boundary_lines(&dir, through + 1)?;
        self.write_now(&deleted_entry(doomed.len(), first, through, through_line))?;
        if let Some(carry) = self.seg.carry.clone() {
            let files: Vec<_> = doomed
                .iter()
                .map(|&seq| dir.join(segment_file(seq)))
                .collect();
            for entry in carry(&files)? {
                self.write_now(&entry)?;
            }
        }
        self.seal_now()?;
        for &seq in doomed {
            remove_segment(&dir, seq)?;
        }
        sync_dir(&dir)
    }
}

/// A host span as the core's (microseconds, saturating).
pub(super) fn core_duration(d: Duration) -> heidi_core::Duration {
    heidi_core::Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The core's span as the host's.
fn std_duration(d: heidi_core::Duration) -> Duration {
    Duration::from_micros(d.as_micros())
}

/// Lines before rotated segment `seq` (its boundary seal's line count; 0 without one).
fn boundary_lines(dir: &Path, seq: u64) -> io::Result<u64> {
    Ok(first_record(&dir.join(segment_seals_file(seq)))?
        .and_then(|r| Seal::parse(&r).ok())
        .map_or(0, |s| s.lines()))
}

/// The `journal_segments_deleted` event: segments `first` to `through` (`count` of them)
/// are deleted; `through_line` is the last line they held (the core's [`SegmentsDeleted`]).
fn deleted_entry(count: usize, first: u64, through: u64, through_line: u64) -> JournalEntry {
    let deleted = SegmentsDeleted {
        count: u64::try_from(count).unwrap_or(u64::MAX),
        first,
        through,
        through_line,
    };
    let mut entry = JournalEntry::info(JOURNAL_STAGE, SEGMENTS_DELETED, deleted.to_string());
    entry.counters_delta = deleted
        .counters()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    entry
}
