//! [`StateFile`]: `OUT_DIR/state.json`, written by a background task that coalesces.
//!
//! The driver publishes each new status on a watch channel and bumps a sequence number; the
//! writer task writes the newest status ([`write_state_atomic`]: temporary file, fsync,
//! rename, directory fsync) whenever the number moved, skipping the statuses published while
//! it was writing. `state.json` is a cache for people and tools: recovery reads the journal,
//! never this file, so a document behind the journal is harmless.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::watch;

use super::status::{StatusDoc, state_file_json};
use heidi_store::paths::STATE_FILE;
use heidi_store::write_state_atomic;

/// What the writer should write next.
#[derive(Clone, Default)]
struct Job {
    /// Bumped for every new document.
    seq: u64,
    /// Fields of the final document, merged after the run's fields.
    last: Option<Arc<Map<String, Value>>>,
}

/// The last write: its sequence number and result.
#[derive(Clone)]
struct Written {
    seq: u64,
    result: Result<(), String>,
}

/// The handle to the `state.json` writer task; it ends when the handle is dropped.
pub(super) struct StateFile {
    jobs: watch::Sender<Job>,
    written: watch::Receiver<Written>,
}

impl StateFile {
    /// Spawns the writer for `dir/state.json`: each document is the newest value of `status`
    /// as [`state_file_json`], with `extra` merged in (its fields win).
    pub(super) fn spawn(
        dir: PathBuf,
        extra: Map<String, Value>,
        status: watch::Receiver<StatusDoc>,
    ) -> StateFile {
        let (jobs, jobs_rx) = watch::channel(Job::default());
        let (written_tx, written) = watch::channel(Written {
            seq: 0,
            result: Ok(()),
        });
        tokio::spawn(write_loop(dir, extra, status, jobs_rx, written_tx));
        StateFile { jobs, written }
    }

    /// The status channel has a new value: write it soon. Returns its sequence number.
    pub(super) fn changed(&self) -> u64 {
        let mut seq = 0;
        self.jobs.send_modify(|job| {
            job.seq += 1;
            seq = job.seq;
        });
        seq
    }

    /// From now on, documents also carry `last` (merged last, its fields win). Returns the
    /// sequence number of the first such document.
    pub(super) fn finish(&self, last: Map<String, Value>) -> u64 {
        let mut seq = 0;
        self.jobs.send_modify(|job| {
            job.seq += 1;
            job.last = Some(Arc::new(last));
            seq = job.seq;
        });
        seq
    }

    /// The sequence number of the newest document asked for.
    pub(super) fn latest(&self) -> u64 {
        self.jobs.borrow().seq
    }

    /// Waits until document `seq` (or a newer one) was written; its result.
    pub(super) async fn written(&self, seq: u64) -> Result<(), String> {
        let mut written = self.written.clone();
        match written.wait_for(|w| w.seq >= seq).await {
            Ok(w) => w.result.clone(),
            Err(_) => Err("the state.json writer has stopped".to_owned()),
        }
    }
}

async fn write_loop(
    dir: PathBuf,
    extra: Map<String, Value>,
    status: watch::Receiver<StatusDoc>,
    mut jobs: watch::Receiver<Job>,
    written: watch::Sender<Written>,
) {
    while jobs.changed().await.is_ok() {
        let job = jobs.borrow_and_update().clone();
        // The status is published before its job: this one is at least as new.
        let mut doc = state_file_json(&status.borrow());
        if let Value::Object(fields) = &mut doc {
            let last = job.last.iter().flat_map(|m| m.iter());
            for (k, v) in extra.iter().chain(last) {
                fields.insert(k.clone(), v.clone());
            }
        }
        let dir = dir.clone();
        let result = tokio::task::spawn_blocking(move || {
            let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?;
            write_state_atomic(&dir, STATE_FILE, &bytes).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(e) = &result {
            tracing::error!("cannot write state.json: {e}");
        }
        written.send_replace(Written {
            seq: job.seq,
            result,
        });
    }
}

#[cfg(test)]
mod tests {
    use heidi_core::pipeline::{Stage, State, Status};
    use serde_json::json;

    use super::*;

    fn read(dir: &std::path::Path) -> Value {
        serde_json::from_slice(&std::fs::read(dir.join(STATE_FILE)).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn writes_the_newest_status_with_the_extra_fields_then_the_final_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let doc = |round, stage| {
            let status = Status {
                state: State::Collecting,
                round,
                stage,
                ..Status::IDLE
            };
            StatusDoc::of(&status, "run-1", None, None)
        };
        let (status, status_rx) = watch::channel(doc(1, None));
        let extra = json!({"pid": 7, "status": "running"});
        let Value::Object(extra) = extra else {
            unreachable!()
        };
        let file = StateFile::spawn(tmp.path().to_path_buf(), extra, status_rx);
        let mut last = 0;
        for round in 1..=50 {
            status.send_replace(doc(round, Some(Stage::Generate)));
            last = file.changed();
        }
        assert_eq!(file.latest(), last);
        file.written(last).await.unwrap();
        let doc = read(tmp.path());
        assert_eq!(
            (&doc["round"], &doc["current_round"]),
            (&50.into(), &50.into())
        );
        assert_eq!(
            (&doc["pid"], &doc["status"]),
            (&7.into(), &"running".into())
        );
        assert_eq!(doc["current_stage"], "generate");
        let Value::Object(stopped) = json!({"status": "stopped"}) else {
            unreachable!()
        };
        let seq = file.finish(stopped);
        file.written(seq).await.unwrap();
        let doc = read(tmp.path());
        assert_eq!(
            (&doc["pid"], &doc["status"]),
            (&7.into(), &"stopped".into())
        );
        assert_eq!(doc["round"], 50);
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_to_the_waiter() {
        let tmp = tempfile::tempdir().unwrap();
        let idle = StatusDoc::of(&Status::IDLE, "run-1", None, None);
        let (_status, status_rx) = watch::channel(idle);
        let gone = tmp.path().join("missing");
        let file = StateFile::spawn(gone, Map::new(), status_rx);
        let seq = file.changed();
        let err = file.written(seq).await.unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }
}
