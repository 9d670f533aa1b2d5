//! Durable files: the journal (group commit, seals, restart), `state.json`, key files.

mod entry;

pub use entry::JournalEntry;
