//! The daemon's side of `OUT_DIR/idempotency.jsonl`: restoring the records at start, and
//! making a record durable before the reply that depends on it.

use crate::kernel::{IdemPersist, Kernel};
use heidi_common::clock::{Clock, wall_now};
use heidi_core::proto::{HostRefusal, Queue};
use heidi_core::service::WallAnchor;
use heidi_store::{Durable, IdemLog, IdemLogError};
use std::path::Path;
use std::sync::Mutex;

use super::reply::{self, Said};
use super::run::Stop;

/// Opens the record file and puts its live records back into the kernel's table; logs what
/// was restored and what was dropped (expired, beyond the table's capacity, unreadable, a
/// torn last line). A record file that is not a regular file refuses start-up
/// ([`Stop::Refused`]).
pub(crate) async fn open_and_restore(
    out_dir: &Path,
    capacity: usize,
    queue_capacity: usize,
    kernel: &Mutex<Kernel>,
    clock: Clock,
) -> Result<IdemLog, Stop> {
    let dir = out_dir.to_path_buf();
    let now_ms = wall_now().as_unix_millis();
    let opened =
        tokio::task::spawn_blocking(move || IdemLog::open(&dir, now_ms, capacity, queue_capacity))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| {
                let why = format!("cannot open the idempotency records: {e}");
                match e.kind() {
                    // Not a regular file, or beyond a limit: an operator must look.
                    std::io::ErrorKind::InvalidData => Stop::Refused(why),
                    _ => Stop::Failed(why),
                }
            })?;
    let (log, lines, load) = opened;
    let restored = {
        let mut kernel = kernel.lock().unwrap_or_else(|p| p.into_inner());
        kernel.restore_idempotency(anchor(clock), &lines)
    };
    tracing::info!(
        restored = restored.restored,
        expired = load.expired,
        "idempotency records restored"
    );
    let dropped = load.over_capacity + restored.no_room;
    if dropped > 0 {
        tracing::warn!(
            dropped,
            capacity,
            "more idempotency records than the table holds: the oldest were dropped"
        );
    }
    if load.corrupt_lines + restored.invalid > 0 {
        tracing::warn!(
            lines = load.corrupt_lines + restored.invalid,
            first_line = load.first_corrupt_line,
            "unreadable idempotency records were skipped"
        );
    }
    if load.torn_bytes > 0 {
        tracing::warn!(
            cut_bytes = load.torn_bytes,
            "a torn last idempotency record (a crash mid-write) was cut"
        );
    }
    Ok(log)
}

/// The core's clock and the wall clock, read together.
fn anchor(clock: Clock) -> WallAnchor {
    WallAnchor {
        now: clock.now(),
        wall_ms: wall_now().as_unix_millis(),
    }
}

/// Queues what `persist` asks for (call it under the kernel's lock, so that records reach
/// the file in the order the kernel decided them, and a barrier follows the completion it
/// reports).
pub(crate) fn submit(
    log: &IdemLog,
    clock: Clock,
    persist: IdemPersist,
) -> Result<Durable, IdemLogError> {
    match persist {
        IdemPersist::Record(change) => log.submit(Some(change.entry(anchor(clock)))),
        IdemPersist::Barrier => log.submit(None),
    }
}

/// Waits until a submitted record is durable; on failure replaces the reply in `out` with an
/// error saying the result is not durable. Returns what the reply in `out` says (`said`, the
/// kernel's reply's, once the record is durable).
pub(crate) async fn finish(
    submitted: Result<Durable, IdemLogError>,
    said: Said,
    out: &mut Vec<u8>,
) -> Said {
    let result = match submitted {
        Ok(durable) => durable.wait().await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => said,
        Err(IdemLogError::Overloaded) => {
            reply::refuse(&HostRefusal::QueueFull(Queue::IdempotencyRecords), out)
        }
        Err(e) => {
            tracing::error!(error = %e, "an idempotency record is not durable");
            reply::refuse(&HostRefusal::Failed(&e), out)
        }
    }
}
