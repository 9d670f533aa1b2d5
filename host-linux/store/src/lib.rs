//! The daemon's durable files: the journal (group commit, seals, restart), `state.json`, key
//! files, the idempotency log; and their offline check ([`verify`], `heidi journal verify`).
//! The daemon `heidid` writes through this crate; the CLI reads through it.
//!
//! The run journal is `OUT_DIR/events.jsonl` with its seals in `OUT_DIR/events.seals`; the
//! formats, the chain and the seals are the core's (`heidi_core::journal`, `docs/JOURNAL.md`).
//! This crate owns the files:
//!
//! - [`Journal::open`] verifies an existing journal against its seals, cuts a torn last line
//!   (and journals the cut as the first line written after the restart), resumes the chain and
//!   starts one writer thread. Tampering, a broken chain, a bad seal or another run id stop the
//!   open with an error that names the line and the reason.
//! - [`Journal::append`] queues an entry (bounded; a full queue is
//!   [`AppendError::Overloaded`]) and resolves only after the line is on disk: the writer
//!   thread encodes a batch of up to `max_batch` entries, writes it with one `write_all`,
//!   `fdatasync`s once and acknowledges every entry (group commit).
//! - Seals are written every `seal_every_lines` lines, when lines have waited
//!   `seal_interval`, at open (when the tail is unsealed) and at [`Journal::close`].
//! - The journal's anchor ([`anchor_path`], beside the seal key) copies the latest seal; it is
//!   replaced at open, at most once per second while seals are written and at close, always
//!   after the seal is durable. Seals behind it stop the open (docs/JOURNAL.md, "The anchor").
//! - The journal is rotated into segments (`events.<seq>.jsonl` + `.seals`) by size or age,
//!   with optional retention; the open one keeps the names `events.jsonl` / `events.seals`
//!   ([`journal_files`] lists them in reading order; docs/JOURNAL.md, "Segments").
//! - [`IdemLog`] keeps the idempotency records across restarts (`OUT_DIR/idempotency.jsonl`).
//! - [`write_state_atomic`] replaces a status file atomically; [`load_or_create_key`] reads or
//!   creates the seal key file (raw bytes, mode 0600, outside `OUT_DIR`).
//! - [`paths`] names the files and their default locations; [`verify`] checks a journal
//!   directory (segments, seals, anchor) with the core's streaming verifier, without a daemon.

mod anchor;
mod config;
mod fsutil;
mod idem_entry;
mod idem_load;
mod idem_log;
mod journal;
mod key;
mod open;
pub mod paths;
mod recover;
mod seals;
mod segments;
mod state;
pub mod verify;
mod writer;

#[cfg(test)]
mod tests;

pub use anchor::{anchor_path, read_anchor};
pub use config::{AppendError, Appended, CarryHook, FsyncHook, JournalConfig, OpenReport};
pub use fsutil::read_regular;
pub use idem_entry::IdemEntry;
pub use idem_load::IdemLoadReport;
pub use idem_log::{Durable, IdemLog, IdemLogError};
pub use journal::Journal;
pub use journal::durable;
pub use key::{KEY_FILE_MAX_BYTES, KEY_FILE_NEW_BYTES, load_key, load_or_create_key};
pub use segments::{
    journal_files, list_segments, parse_segment_file, segment_file, segment_seals_file,
};
pub use state::write_state_atomic;
