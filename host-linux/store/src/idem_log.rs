//! [`IdemLog`]: `OUT_DIR/idempotency.jsonl`, the idempotency records that survive a restart.
//!
//! Append-only JSON lines ([`IdemEntry`], the core's record lines), written by one thread with
//! group commit: a batch of lines is written with one `write_all` and one `fdatasync`, and
//! every append of the batch is answered after that. At open the file is read back
//! ([`load`](super::idem_load::load)), and replaced atomically (temporary file, fsync,
//! rename, directory fsync) by its live records alone. While the daemon runs it is compacted
//! the same way when the core's [`FileBounds::compact`] says so (a file four times longer
//! than its live records, or naming more than twice as many keys as the table holds; expired
//! records are dropped then), so neither the file nor the writer's memory grows without
//! bound.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use tokio::sync::oneshot;

use heidi_core::service::{FileBounds, IDEMPOTENCY_FILE};

use super::IdemEntry;
use super::fsutil::{at, open_append};
use super::idem_load::{IdemLoadReport, load};
use super::state::write_state_atomic;

/// Most appends written and synced together.
const MAX_BATCH: usize = 1024;

/// Why an append is not known to be durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdemLogError {
    /// The writer's queue is full; retry shortly.
    Overloaded,
    /// Writing or syncing failed (now or earlier: the log then accepts nothing more).
    Failed(String),
}

impl std::fmt::Display for IdemLogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdemLogError::Overloaded => f.write_str("the idempotency record queue is full"),
            IdemLogError::Failed(why) => write!(f, "cannot persist the idempotency record: {why}"),
        }
    }
}

type Ack = oneshot::Sender<Result<(), IdemLogError>>;

/// The handle to the record file's writer thread (cheap to clone; the thread ends with the
/// last handle).
#[derive(Clone)]
pub struct IdemLog {
    tx: SyncSender<(Option<IdemEntry>, Ack)>,
}

impl IdemLog {
    /// Opens `dir/idempotency.jsonl`: returns the live records at `now_ms` (oldest first, at
    /// most `capacity`, see [`IdemLoadReport`]) after rewriting the file with them alone, and
    /// the handle whose thread appends from now on. At most `queue_capacity` appends wait for
    /// the writer; beyond them an append is [`IdemLogError::Overloaded`].
    pub fn open(
        dir: &Path,
        now_ms: u64,
        capacity: usize,
        queue_capacity: usize,
    ) -> io::Result<(IdemLog, Vec<IdemEntry>, IdemLoadReport)> {
        let path = dir.join(IDEMPOTENCY_FILE);
        let bounds = FileBounds::new(capacity);
        let (lines, report) = load(&path, now_ms, bounds)?;
        let mut live = HashMap::new();
        for line in &lines {
            live.insert(line.key().to_owned(), line.clone());
        }
        let file = rewrite(dir, &path, &live)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(queue_capacity.max(1));
        let writer = Writer {
            dir: dir.to_path_buf(),
            path,
            file,
            lines: live.len(),
            prune_above: bounds.prune_above(0),
            bounds,
            live,
            failed: None,
        };
        std::thread::Builder::new()
            .name("heidi-idempotency".into())
            .spawn(move || writer.run(rx))?;
        Ok((IdemLog { tx }, lines, report))
    }

    /// Appends `line`; resolves once it is on disk.
    pub async fn append(&self, line: IdemEntry) -> Result<(), IdemLogError> {
        self.submit(Some(line))?.wait().await
    }

    /// Resolves once every line appended before it is on disk (at once when none waits).
    pub async fn barrier(&self) -> Result<(), IdemLogError> {
        self.submit(None)?.wait().await
    }

    /// Queues `line` (`None`: a barrier) without waiting: lines are written in the order of
    /// their submissions, so a caller that submits under a lock orders them as the lock does.
    pub fn submit(&self, line: Option<IdemEntry>) -> Result<Durable, IdemLogError> {
        let (ack, answer) = oneshot::channel();
        match self.tx.try_send((line, ack)) {
            Ok(()) => Ok(Durable(answer)),
            Err(TrySendError::Full(_)) => Err(IdemLogError::Overloaded),
            Err(TrySendError::Disconnected(_)) => Err(stopped()),
        }
    }
}

/// A submitted line (or barrier) on its way to disk.
pub struct Durable(oneshot::Receiver<Result<(), IdemLogError>>);

impl Durable {
    /// Resolves once the line, and every line submitted before it, is on disk.
    pub async fn wait(self) -> Result<(), IdemLogError> {
        self.0.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> IdemLogError {
    IdemLogError::Failed("the writer has stopped".into())
}

/// Replaces the file with the `live` records and opens it for appending.
fn rewrite(dir: &Path, path: &Path, live: &HashMap<String, IdemEntry>) -> io::Result<File> {
    let mut bytes = Vec::new();
    for line in live.values() {
        bytes.extend_from_slice(line.line().as_bytes());
    }
    write_state_atomic(dir, IDEMPOTENCY_FILE, &bytes)?;
    open_append(path).map(|(f, _)| f)
}

struct Writer {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    /// The newest line of each key with a record (for compaction).
    live: HashMap<String, IdemEntry>,
    /// Lines in the file.
    lines: usize,
    /// The bounds of the file for the table's capacity.
    bounds: FileBounds,
    /// Compact once `live` names more keys than this.
    prune_above: usize,
    /// The first failure; every later append gets it.
    failed: Option<String>,
}

impl Writer {
    fn run(mut self, rx: Receiver<(Option<IdemEntry>, Ack)>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let result = self.write(batch.iter().filter_map(|(l, _)| l.as_ref()));
            for (_, ack) in batch {
                let _ = ack.send(result.clone());
            }
        }
    }

    fn write<'a>(
        &mut self,
        lines: impl Iterator<Item = &'a IdemEntry>,
    ) -> Result<(), IdemLogError> {
        if let Some(why) = &self.failed {
            return Err(IdemLogError::Failed(why.clone()));
        }
        let mut bytes = Vec::new();
        let mut count = 0;
        for line in lines {
            bytes.extend_from_slice(line.line().as_bytes());
            count += 1;
            if line.life().is_release() {
                self.live.remove(line.key());
            } else {
                self.live.insert(line.key().to_owned(), line.clone());
            }
        }
        if count == 0 {
            return Ok(());
        }
        let written = self
            .file
            .write_all(&bytes)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| at(&self.path, e));
        if let Err(e) = written {
            tracing::error!("idempotency records: {e}; no more records are accepted");
            self.failed = Some(e.to_string());
            return Err(IdemLogError::Failed(e.to_string()));
        }
        self.lines += count;
        if self
            .bounds
            .compact(self.lines, self.live.len(), self.prune_above)
        {
            self.compact();
        }
        Ok(())
    }

    /// Rewrites the file with the live records alone; on failure the old file stays (it
    /// holds the same records, and more).
    fn compact(&mut self) {
        let now_ms = heidi_common::clock::wall_now().as_unix_millis();
        self.live.retain(|_, l| l.life().is_live_at(now_ms));
        match rewrite(&self.dir, &self.path, &self.live) {
            Ok(file) => {
                self.file = file;
                self.lines = self.live.len();
            }
            Err(e) => tracing::warn!("cannot compact the idempotency records: {e}"),
        }
        self.prune_above = self.bounds.prune_above(self.live.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heidi_core::service::{LineScratch, RECORD_LINE_MAX_BYTES};

    const NOW: u64 = 1_800_000_000_000;

    fn read(line: &str) -> IdemEntry {
        IdemEntry::read(line, &mut LineScratch::new()).unwrap()
    }

    fn done(key: &str, expires_at_ms: u64) -> IdemEntry {
        let digest = "ab".repeat(32);
        let completed_at_ms = NOW - 1000;
        read(&format!(
            r#"{{"state":"done","key":"{key}","token":"5","digest":"{digest}","response":"{{\"id\":1}}","completed_at_ms":{completed_at_ms},"expires_at_ms":{expires_at_ms}}}"#
        ))
    }

    fn encode(entry: &IdemEntry) -> Vec<u8> {
        entry.line().as_bytes().to_vec()
    }

    fn keys(lines: &[IdemEntry]) -> Vec<&str> {
        lines.iter().map(IdemEntry::key).collect()
    }

    fn open(dir: &Path, now_ms: u64, capacity: usize) -> (IdemLog, Vec<IdemEntry>, IdemLoadReport) {
        IdemLog::open(dir, now_ms, capacity, 16).unwrap()
    }

    #[tokio::test]
    async fn appended_records_are_read_back_newest_per_key() {
        let tmp = tempfile::tempdir().unwrap();
        let (log, lines, _) = open(tmp.path(), NOW, 64);
        assert!(lines.is_empty());
        log.append(done("a", NOW + 10)).await.unwrap();
        log.append(done("b", NOW + 10)).await.unwrap();
        log.append(read(r#"{"state":"released","key":"b"}"#))
            .await
            .unwrap();
        log.append(done("a", NOW + 20)).await.unwrap();
        log.barrier().await.unwrap();
        drop(log);
        let (_, lines, report) = open(tmp.path(), NOW, 64);
        assert_eq!(lines, vec![done("a", NOW + 20)]);
        assert_eq!(report.kept, 1);
        // The open rewrote the file with the live records alone.
        let text = std::fs::read_to_string(tmp.path().join(IDEMPOTENCY_FILE)).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[tokio::test]
    async fn a_barrier_resolves_after_every_line_submitted_before_it_is_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let (log, _, _) = open(tmp.path(), NOW, 64);
        let line = log.submit(Some(done("a", NOW + 10))).unwrap();
        log.barrier().await.unwrap();
        let text = std::fs::read(tmp.path().join(IDEMPOTENCY_FILE)).unwrap();
        assert_eq!(text, encode(&done("a", NOW + 10)));
        line.wait().await.unwrap();
    }

    #[tokio::test]
    async fn a_full_queue_is_overloaded() {
        let tmp = tempfile::tempdir().unwrap();
        let (log, _, _) = IdemLog::open(tmp.path(), NOW, 64, 1).unwrap();
        // The writer may take one off the queue at any time: fill until refused.
        let mut queued = Vec::new();
        let refused = loop {
            match log.submit(None) {
                Ok(d) if queued.len() < 10_000 => queued.push(d),
                Ok(_) => panic!("the queue never filled"),
                Err(e) => break e,
            }
        };
        assert_eq!(refused, IdemLogError::Overloaded);
    }

    #[test]
    fn expired_records_are_dropped_and_a_torn_last_line_is_cut() {
        let tmp = tempfile::tempdir().unwrap();
        let mut bytes = encode(&done("old", NOW));
        bytes.extend(encode(&done("live", NOW + 1)));
        let torn = encode(&done("torn", NOW + 1));
        bytes.extend(&torn[..torn.len() / 2]);
        std::fs::write(tmp.path().join(IDEMPOTENCY_FILE), &bytes).unwrap();
        let (_, lines, report) = open(tmp.path(), NOW, 64);
        assert_eq!(keys(&lines), ["live"]);
        assert_eq!((report.expired, report.torn_bytes), (1, torn.len() / 2));
        let text = std::fs::read(tmp.path().join(IDEMPOTENCY_FILE)).unwrap();
        assert_eq!(text, encode(&done("live", NOW + 1)));
    }

    #[test]
    fn corrupt_and_overlong_lines_are_skipped_and_counted() {
        let tmp = tempfile::tempdir().unwrap();
        let mut bytes = b"not json\n".to_vec();
        bytes.extend(vec![b'x'; RECORD_LINE_MAX_BYTES + 10]);
        bytes.push(b'\n');
        bytes.extend(b"{\"state\":\"done\",\"key\":\"k\"}\n");
        bytes.extend(encode(&done("good", NOW + 1)));
        std::fs::write(tmp.path().join(IDEMPOTENCY_FILE), &bytes).unwrap();
        let (_, lines, report) = open(tmp.path(), NOW, 64);
        assert_eq!(keys(&lines), ["good"]);
        assert_eq!(
            (report.corrupt_lines, report.first_corrupt_line),
            (3, Some(1))
        );
    }

    #[test]
    fn more_records_than_the_capacity_keep_the_newest() {
        let tmp = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        for i in 0..100 {
            bytes.extend(encode(&done(&format!("k{i}"), NOW + 1)));
        }
        std::fs::write(tmp.path().join(IDEMPOTENCY_FILE), &bytes).unwrap();
        let (_, lines, report) = open(tmp.path(), NOW, 8);
        let want: Vec<String> = (92..100).map(|i| format!("k{i}")).collect();
        assert_eq!(keys(&lines), want);
        assert_eq!((report.kept, report.over_capacity), (8, 92));
    }

    #[tokio::test]
    async fn the_file_is_compacted_while_running() {
        let tmp = tempfile::tempdir().unwrap();
        let total = heidi_core::service::COMPACT_MIN_LINES + 10;
        let (log, _, _) = IdemLog::open(tmp.path(), NOW, 64, total).unwrap();
        // Submitted together, so that they share a few syncs.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..total {
            let log = log.clone();
            tasks.spawn(async move { log.append(done(&format!("k{}", i % 3), u64::MAX)).await });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
        let text = std::fs::read_to_string(tmp.path().join(IDEMPOTENCY_FILE)).unwrap();
        assert!(text.lines().count() < 20, "{} lines", text.lines().count());
        drop(log);
        let (_, lines, _) = open(tmp.path(), NOW, 64);
        assert_eq!(lines.len(), 3);
    }

    #[tokio::test]
    async fn many_keys_that_expire_do_not_grow_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let (log, _, _) = open(tmp.path(), NOW, 8);
        let past = 1; // expired when the writer looks again
        for i in 0..100 {
            log.append(done(&format!("k{i}"), past)).await.unwrap();
        }
        let text = std::fs::read_to_string(tmp.path().join(IDEMPOTENCY_FILE)).unwrap();
        assert!(text.lines().count() <= 17, "{} lines", text.lines().count());
    }
}
