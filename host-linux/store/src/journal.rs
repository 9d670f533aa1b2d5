//! [`Journal`]: the handle to the durable journal and its writer thread.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use super::anchor::{Anchored, anchor_path};
use super::config::{AppendError, Appended, JournalConfig, OpenReport};
use super::fsutil::{create_private_dir, open_append, sync_dir};
use super::key;
use super::open::{Recovery, choose_run_id, refuse_key_inside, resume, start_writer};
use super::recover::{cut, verify_existing};
use super::seals::{SealFile, read_seals};
use super::segments::{check_boundary, list_segments, remove_stale_temps, repair_rotation};
use super::writer::{Msg, Output, Policy, Segments, Shared, Writer, core_duration};
use crate::paths::{JOURNAL_FILE, SEALS_FILE};
use heidi_common::JournalEntry;
use heidi_core::journal::{Retention, Rotation, SealRule};

/// A cheap, cloneable handle to the run journal; see the [module docs](super).
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Inner>,
}

struct Inner {
    run_id: String,
    path: PathBuf,
    shared: Arc<Shared>,
    sender: Mutex<Option<SyncSender<Msg>>>,
    thread: Mutex<Option<JoinHandle<io::Result<()>>>>,
}

impl Journal {
    /// Opens (or creates) `dir/events.jsonl`, verifies it against `dir/events.seals` with the
    /// key at `key_path`, cuts a torn last line and journals the cut (`journal_truncated`, the
    /// first line after the restart), seals an unsealed tail and starts the writer thread.
    ///
    /// Refused (`InvalidData`, message naming the line and the reason): any fault but a torn
    /// last line, a seal record that is malformed, forged or out of order, a journal shorter
    /// than or different from its last seal, a journal of more than one line with no seal
    /// record at all, seals behind the journal's anchor (the latest seal, kept beside the key
    /// file: see [`anchor_path`](super::anchor_path)) or an anchor with a bad MAC (both
    /// unless [`JournalConfig::accept_unsealed`]; the acceptance is then journaled as
    /// `journal_unsealed_accepted` or `journal_anchor_accepted`). The anchor is replaced at
    /// open (after the open's seal), at most once per second while seals are written, and
    /// at [`close`](Journal::close); a failure to write it at open fails the open. Refused (`InvalidInput`): a `run_id` that is not
    /// a valid run id or differs from the existing journal's, a key file inside `dir`, a zero
    /// `seal_every_lines`, `max_batch` or `queue_capacity`, sizes above the `*_LIMIT`s of
    /// [`JournalConfig`]. Key file errors: see [`load_or_create_key`](super::load_or_create_key).
    ///
    /// Segments (docs/JOURNAL.md, "Segments"): an interrupted rotation is finished first
    /// (journaled as `journal_rotation_finished`); when rotated segments exist, the open
    /// segment must continue the newest (its seal file's first record equal to that
    /// segment's last seal), else `InvalidData`; retention runs after the open's seal. Stale
    /// temporary files of [`write_state_atomic`](super::write_state_atomic) in `dir` are
    /// removed first (journaled as `stale_temp_files_removed`).
    ///
    /// It reads the open segment once (in 64 KiB chunks), not the rotated ones, and blocks:
    /// call it before the runtime starts or through `spawn_blocking`.
    pub fn open(config: JournalConfig) -> io::Result<(Journal, OpenReport)> {
        config.validate()?;
        create_private_dir(&config.dir)?;
        refuse_key_inside(&config.dir, &config.key_path)?;
        let key = key::load_or_create_key(&config.key_path)?;
        let temp_files_removed = remove_stale_temps(&config.dir)?;
        let repair = repair_rotation(&config.dir, &key)?;
        let path = config.dir.join(JOURNAL_FILE);
        let seals_path = config.dir.join(SEALS_FILE);
        let mut anchor = Anchored::load(anchor_path(&config.key_path, &path)?, &key)?;
        let seals = read_seals(&seals_path, &key, &mut anchor)?;
        let boundary = check_boundary(&config.dir, &key, seals.first.as_ref())?;
        let found = verify_existing(
            &path,
            &seals,
            boundary.as_ref(),
            config.tail_capacity,
            config.accept_unsealed,
        )?;
        let behind_anchor = anchor.finish(seals.check.latest(), &path, config.accept_unsealed)?;
        let run_id = choose_run_id(config.run_id.as_deref(), found.run_id.as_deref(), &path)?;
        // Everything verified: only now change the files.
        if found.torn_bytes > 0 {
            cut(&path, found.intact_end)?;
        }
        if seals.torn_bytes > 0 {
            cut(&seals_path, seals.intact_end)?;
        }
        let (file, created) = open_append(&path)?;
        if created {
            sync_dir(&config.dir)?;
        }
        let seal_file = SealFile::open(seals_path, &config.dir)?;
        let shared = Arc::new(Shared {
            lines: AtomicU64::new(found.lines),
            tail: Mutex::new(found.tail.clone()),
            tail_capacity: config.tail_capacity,
        });
        let chain = resume(&run_id, &found)?;
        let policy = Policy {
            seal: SealRule {
                every_lines: config.seal_every_lines,
                interval: core_duration(config.seal_interval),
            },
            max_batch: config.max_batch,
            on_fsync: config.on_fsync.clone(),
        };
        let output = Output {
            file,
            path: path.clone(),
            seals: seal_file,
            anchor: anchor.path.clone(),
        };
        let segments = Segments {
            dir: config.dir.clone(),
            rotation: Rotation {
                max_bytes: config.segment_max_bytes,
                max_age: config.segment_max_age.map(core_duration),
            },
            retention: Retention {
                keep: config.retain_segments,
                max_age: config.retain_age.map(core_duration),
            },
            carry: config.carry.clone(),
            bytes: found.intact_end,
            started: Instant::now(),
            next_seq: list_segments(&config.dir)?.last().map_or(1, |seq| seq + 1),
            not_before: None,
        };
        let writer = Writer::new(
            output,
            chain,
            key,
            policy,
            shared.clone(),
            seals.check.latest().cloned(),
            segments,
        );
        let recovery = Recovery {
            seal_cut_bytes: seals.torn_bytes,
            behind_anchor,
            temp_files_removed,
            repair,
        };
        let (writer, lines) = start_writer(writer, &found, &recovery)?;
        let (sender, receiver) = mpsc::sync_channel(config.queue_capacity);
        let thread = std::thread::Builder::new()
            .name("heidi-journal".into())
            .spawn(move || writer.run(receiver))?;
        let report = OpenReport {
            run_id: run_id.clone(),
            lines,
            cut_bytes: found.torn_bytes,
            sealed_lines: found.sealed_lines,
            created,
            unsealed_accepted: found.unsealed_accepted,
            anchor_accepted: behind_anchor.map(|f| f.to_string()),
            anchor: anchor.path,
            segments: u64::try_from(list_segments(&config.dir)?.len()).unwrap_or(u64::MAX),
            temp_files_removed,
            segment_start_line: boundary.as_ref().map_or(0, |b| b.lines()),
        };
        let inner = Inner {
            run_id,
            path,
            shared,
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        };
        Ok((
            Journal {
                inner: Arc::new(inner),
            },
            report,
        ))
    }

    /// Appends `entry`; resolves only after its line was written and `fdatasync`ed.
    /// The entry is queued when this is first polled; dropping the future after that does
    /// not withdraw it.
    pub async fn append(&self, entry: JournalEntry) -> Result<Appended, AppendError> {
        durable(self.submit(entry)?).await
    }

    /// [`append`](Journal::append) for threads outside an async runtime (it blocks; do not
    /// call it on a runtime thread).
    pub fn append_blocking(&self, entry: JournalEntry) -> Result<Appended, AppendError> {
        let answer = self.submit(entry)?;
        answer
            .blocking_recv()
            .unwrap_or_else(|_| Err(writer_gone()))
    }

    /// Queues `entry` without waiting; the receiver gets the answer once it is durable (wait
    /// for it with [`durable`]).
    pub fn submit(
        &self,
        entry: JournalEntry,
    ) -> Result<oneshot::Receiver<Result<Appended, AppendError>>, AppendError> {
        let (ack, answer) = oneshot::channel();
        let sender = self
            .inner
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = sender.as_ref() else {
            return Err(AppendError::Closed);
        };
        match sender.try_send(Msg::Append(entry, ack)) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_)) => Err(AppendError::Overloaded),
            Err(TrySendError::Disconnected(_)) => Err(AppendError::Closed),
        }
    }

    /// The last `n` durable lines (without `\n`), oldest first; `n` is capped at the tail
    /// capacity.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let tail = self
            .inner
            .shared
            .tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let skip = tail.len().saturating_sub(n);
        tail.iter().skip(skip).cloned().collect()
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    /// Durable lines in the journal.
    pub fn lines(&self) -> u64 {
        self.inner.shared.lines.load(Ordering::Acquire)
    }

    /// The journal file (`OUT_DIR/events.jsonl`).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Stops accepting appends (later ones are [`AppendError::Closed`]), lets the writer
    /// write and acknowledge everything already queued, write a final seal and stop; waits
    /// for it (blocking: from async code use `spawn_blocking`). Idempotent: a later call
    /// returns `Ok(())`. An error means the journal had failed or the final seal failed.
    pub fn close(&self) -> io::Result<()> {
        let mut thread = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        drop(
            self.inner
                .sender
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        match thread.take() {
            Some(handle) => handle
                .join()
                .map_err(|_| io::Error::other("journal writer thread panicked"))?,
            None => Ok(()),
        }
    }

    /// Test hook: blocks the writer thread until the returned sender is dropped or sent to.
    #[cfg(test)]
    pub(super) fn stall(&self) -> SyncSender<()> {
        let (entered_tx, entered_rx) = mpsc::sync_channel(1);
        let (release_tx, release_rx) = mpsc::sync_channel(1);
        self.send_control(Msg::Stall {
            entered: entered_tx,
            release: release_rx,
        });
        let _ = entered_rx.recv();
        release_tx
    }

    /// Test hook: makes the writer's next journal write fail.
    #[cfg(test)]
    pub(super) fn break_file(&self) {
        self.send_control(Msg::BreakFile);
    }

    /// Test hook: makes the writer's next seal fail.
    #[cfg(test)]
    pub(super) fn break_seals(&self) {
        self.send_control(Msg::BreakSeals);
    }

    /// Test hook: the next rotation stops before step `step` as if the process died there
    /// (see `Msg::CrashRotation`); the journal then fails.
    #[cfg(test)]
    pub(super) fn crash_rotation(&self, step: u8) {
        self.send_control(Msg::CrashRotation(step));
    }

    /// Test hook: queues `msg`, waiting for room.
    #[cfg(test)]
    fn send_control(&self, msg: Msg) {
        let sender = self
            .inner
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = sender.as_ref() {
            let _ = sender.send(msg);
        }
    }
}

fn writer_gone() -> AppendError {
    AppendError::Io("journal writer stopped".to_owned())
}

/// The answer to an append queued with [`Journal::submit`], once it is durable.
pub async fn durable(
    answer: oneshot::Receiver<Result<Appended, AppendError>>,
) -> Result<Appended, AppendError> {
    answer.await.unwrap_or_else(|_| Err(writer_gone()))
}
