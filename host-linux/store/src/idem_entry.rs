//! [`IdemEntry`]: one line of `OUT_DIR/idempotency.jsonl` as the log keeps it. The line's bytes
//! and what they mean are the core's (`heidi_core::service::{write_record_line,
//! read_record_line, LineLife}`); the log keeps the key and the line's [`LineLife`] to keep
//! the file small.

use heidi_core::service::{
    BadLine, IdemRecord, LineLife, LineScratch, RecordLine, WallAnchor, read_record_line,
    write_record_line,
};

/// One record line with the facts the log's upkeep reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdemEntry {
    key: String,
    life: LineLife,
    /// The line, with its newline.
    line: String,
}

impl IdemEntry {
    /// The line of `record`, its times converted through `anchor` (the core's clock and the
    /// wall clock read together).
    pub fn of(record: &IdemRecord<'_>, anchor: WallAnchor) -> IdemEntry {
        let mut line = String::new();
        // Writing into a String cannot fail.
        let _ = write_record_line(record, anchor, &mut line);
        IdemEntry {
            key: record.key().to_owned(),
            life: LineLife::of(record, anchor),
            line,
        }
    }

    /// A line read back from the file (without its newline).
    pub fn read(line: &str, scratch: &mut LineScratch) -> Result<IdemEntry, BadLine> {
        let record = read_record_line(line, scratch)?;
        Ok(IdemEntry {
            key: record.key.to_owned(),
            life: record.life(),
            line: format!("{line}\n"),
        })
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Until when the line's record lives, or that it is a release.
    pub fn life(&self) -> LineLife {
        self.life
    }

    /// The line as written, newline included.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The record the line holds, read with the core's reader (`scratch` holds its unescaped
    /// key and response).
    pub fn record<'a>(&'a self, scratch: &'a mut LineScratch) -> Result<RecordLine<'a>, BadLine> {
        read_record_line(self.line.trim_end_matches('\n'), scratch)
    }
}
