//! The journal's configuration and the answers of [`Journal`](super::Journal).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Called after every journal batch's `fdatasync` with its latency and the number of
/// entries the batch made durable.
pub type FsyncHook = Arc<dyn Fn(Duration, usize) + Send + Sync>;

/// Called by retention with the rotated segment files it is about to delete (oldest first);
/// the entries it returns are journaled after `journal_segments_deleted` and sealed before
/// any file is removed, so that what the deleted lines established (the policy in force)
/// is still named by the journal that remains.
pub type CarryHook =
    Arc<dyn Fn(&[PathBuf]) -> std::io::Result<Vec<heidi_common::JournalEntry>> + Send + Sync>;

/// Where the journal lives and how it batches and seals.
#[derive(Clone)]
pub struct JournalConfig {
    /// `OUT_DIR`: holds `events.jsonl` and `events.seals`; created (0700) if missing.
    pub dir: PathBuf,
    /// `RUN_ID`. `None`: the run id of the existing journal, else a generated one like
    /// `run-20261123-141503-ab12`. A run id that differs from an existing journal's is
    /// refused by [`Journal::open`](super::Journal::open).
    pub run_id: Option<String>,
    /// The seal key file; it must lie outside `dir`. See
    /// [`load_or_create_key`](super::load_or_create_key).
    pub key_path: PathBuf,
    /// Write a seal after this many new lines (at least 1).
    pub seal_every_lines: u64,
    /// Also seal when unsealed lines have waited this long.
    pub seal_interval: Duration,
    /// Most entries per group commit (at least 1).
    pub max_batch: usize,
    /// Capacity of the submit queue (at least 1); full → [`AppendError::Overloaded`].
    pub queue_capacity: usize,
    /// Lines kept in memory for [`Journal::tail`](super::Journal::tail).
    pub tail_capacity: usize,
    /// Observer of every journal `fdatasync`: (latency, entries in the batch).
    pub on_fsync: Option<FsyncHook>,
    /// Open a journal of more than one line that has no seal record at all (its seal file
    /// deleted or emptied) instead of refusing it; the acceptance is journaled
    /// (`journal_unsealed_accepted`). Also opens a journal whose seals are behind its anchor
    /// (`journal_anchor_accepted`). Default false.
    pub accept_unsealed: bool,
    /// Rotate the open segment (`events.jsonl`) once it holds this many bytes (checked after
    /// each group commit, so a segment may exceed it by one batch). See docs/JOURNAL.md,
    /// "Segments".
    pub segment_max_bytes: u64,
    /// Also rotate a non-empty open segment this long after it was started (or, for the
    /// segment found at open, after the open). `None`: no age limit.
    pub segment_max_age: Option<Duration>,
    /// Keep at most this many rotated segments, deleting the oldest (journaled as
    /// `journal_segments_deleted`). `None`: keep all.
    pub retain_segments: Option<u64>,
    /// Delete rotated segments last written longer ago than this. `None`: no age limit.
    /// The newest rotated segment is never deleted (the open one continues it).
    pub retain_age: Option<Duration>,
    /// What retention carries forward from the segments it deletes. `None`: nothing.
    pub carry: Option<CarryHook>,
}

impl JournalConfig {
    /// Defaults: no run id, a seal every 1000 lines or 5 s, batches of up to 1024 entries, a
    /// queue of 4096, a tail of 256 lines, no fsync observer, an unsealed journal refused,
    /// segments of 64 MiB with no age limit, every rotated segment kept.
    pub fn new(dir: PathBuf, key_path: PathBuf) -> JournalConfig {
        JournalConfig {
            dir,
            run_id: None,
            key_path,
            seal_every_lines: 1000,
            seal_interval: Duration::from_secs(5),
            max_batch: 1024,
            queue_capacity: 4096,
            tail_capacity: 256,
            on_fsync: None,
            accept_unsealed: false,
            segment_max_bytes: Self::SEGMENT_MAX_BYTES_DEFAULT,
            segment_max_age: None,
            retain_segments: None,
            retain_age: None,
            carry: None,
        }
    }

    /// Default `segment_max_bytes`: 64 MiB.
    pub const SEGMENT_MAX_BYTES_DEFAULT: u64 = 64 << 20;
    /// Least `segment_max_bytes` accepted.
    pub const SEGMENT_MIN_BYTES: u64 = 1024;

    /// Largest `max_batch` accepted (a batch buffers up to 16 KiB per entry).
    pub const MAX_BATCH_LIMIT: usize = 4096;
    /// Largest `queue_capacity` accepted (the queue's slots are allocated up front).
    pub const QUEUE_CAPACITY_LIMIT: usize = 65_536;
    /// Largest `tail_capacity` accepted (a line may take 16 KiB).
    pub const TAIL_CAPACITY_LIMIT: usize = 4096;

    /// Refuses a zero `seal_every_lines`, `max_batch` or `queue_capacity`, and sizes above
    /// the limits.
    pub(super) fn validate(&self) -> std::io::Result<()> {
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let fields = [
            ("seal_every_lines", self.seal_every_lines, 1, u64::MAX),
            (
                "max_batch",
                as_u64(self.max_batch),
                1,
                as_u64(Self::MAX_BATCH_LIMIT),
            ),
            (
                "queue_capacity",
                as_u64(self.queue_capacity),
                1,
                as_u64(Self::QUEUE_CAPACITY_LIMIT),
            ),
            (
                "tail_capacity",
                as_u64(self.tail_capacity),
                0,
                as_u64(Self::TAIL_CAPACITY_LIMIT),
            ),
            (
                "segment_max_bytes",
                self.segment_max_bytes,
                Self::SEGMENT_MIN_BYTES,
                u64::MAX,
            ),
            (
                "retain_segments",
                self.retain_segments.unwrap_or(1),
                1,
                u64::MAX,
            ),
        ];
        match fields.iter().find(|(_, n, min, max)| n < min || n > max) {
            Some((field, _, min, max)) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("journal config: {field} must be {min} to {max}"),
            )),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for JournalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JournalConfig")
            .field("dir", &self.dir)
            .field("run_id", &self.run_id)
            .field("key_path", &self.key_path)
            .field("seal_every_lines", &self.seal_every_lines)
            .field("seal_interval", &self.seal_interval)
            .field("max_batch", &self.max_batch)
            .field("queue_capacity", &self.queue_capacity)
            .field("tail_capacity", &self.tail_capacity)
            .field("on_fsync", &self.on_fsync.is_some())
            .field("accept_unsealed", &self.accept_unsealed)
            .field("segment_max_bytes", &self.segment_max_bytes)
            .field("segment_max_age", &self.segment_max_age)
            .field("retain_segments", &self.retain_segments)
            .field("retain_age", &self.retain_age)
            .field("carry", &self.carry.is_some())
            .finish()
    }
}

/// What [`Journal::open`](super::Journal::open) found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// The run id in use.
    pub run_id: String,
    /// Lines in the journal after recovery (including the `journal_truncated` line, if any).
    pub lines: u64,
    /// Bytes of a torn last line that were cut (0 if none).
    pub cut_bytes: u64,
    /// Lines covered by the last valid seal found at open (before the seal written at open).
    pub sealed_lines: u64,
    /// The journal file was created by this open.
    pub created: bool,
    /// Lines of a journal without seals accepted by
    /// [`JournalConfig::accept_unsealed`] (0: the journal matched its seals).
    pub unsealed_accepted: u64,
    /// Why the seals did not match the journal's anchor, when
    /// [`JournalConfig::accept_unsealed`] accepted it (`None`: they matched, or no anchor).
    pub anchor_accepted: Option<String>,
    /// The journal's anchor file (beside the seal key).
    pub anchor: PathBuf,
    /// Rotated segments in `OUT_DIR` after the open (and its retention).
    pub segments: u64,
    /// Temporary files of interrupted atomic writes removed from `OUT_DIR` at open
    /// (journaled as `stale_temp_files_removed`).
    pub temp_files_removed: u64,
    /// Lines before the open segment (0 when there is no rotated segment): it starts at
    /// line `segment_start_line + 1`.
    pub segment_start_line: u64,
}

/// A durable line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Its 1-based line number.
    pub line: u64,
    /// Lowercase hex SHA-256 of the line including its `\n` (the next line's `prev_hash`).
    pub hash: String,
}

/// Why an append was not made durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendError {
    /// The encoder refused the entry (bad name, too many deltas, line too long, …); the chain
    /// did not advance.
    Invalid(String),
    /// The submit queue is full; try again later.
    Overloaded,
    /// The journal was closed.
    Closed,
    /// Writing or syncing failed (this batch or an earlier one); the line is not known to be
    /// durable and the journal accepts nothing more.
    Io(String),
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendError::Invalid(why) => write!(f, "journal entry refused: {why}"),
            AppendError::Overloaded => f.write_str("journal queue full"),
            AppendError::Closed => f.write_str("journal closed"),
            AppendError::Io(why) => write!(f, "journal write failed: {why}"),
        }
    }
}

impl std::error::Error for AppendError {}
