//! The parts of a rate-limit success reply that depend only on the operation and the tier in
//! force, written once and copied into each reply.
//!
//! A success reply (`RATE_LIMIT_CHECK`, a granted `RATE_LIMIT_CONSUME`) is
//! `{"allowed":…` + *head* + remaining + `,"retry_after_ms":…` or `,"reset_after_ms":…` +
//! *tail*, where the head is `,"limit":30,"operation":"search","remaining":` and the tail
//! `,"tier":"free","window_ms":60000}` (no `tier` member when no tier chose the limit). Both
//! follow from the (operation, tier) pair of the policy in force, so [`Fragments`] keeps them
//! for the last pairs served, in a small direct-mapped cache of [`SLOTS`] entries (3.5 KiB):
//! a hit copies two fixed-size arrays instead of formatting two numbers and two names. A miss
//! writes the entry with the same writer the reply used before, so the bytes are the same
//! either way.
//!
//! An entry is named by the indexes of its operation and tier, which mean something else
//! under another policy: [`Fragments::clear`] must run whenever the policy changes
//! (`Service::swap_policy` does).

use super::rate_limit::Call;
use crate::journal::NAME_MAX_BYTES;
use crate::json::writer::Writer;
use crate::policy::{OpId, TierId};

/// Entries in the cache; a power of two.
pub(crate) const SLOTS: usize = 16;

/// Longest decimal `u64`.
const U64_DIGITS: usize = 20;

/// Longest head: `,"limit":` `u32` `,"operation":"` name `","remaining":`.
const HEAD_MAX: usize = 9 + 10 + 14 + NAME_MAX_BYTES + 14;

/// Longest tail: `,"tier":"` name `"` `,"window_ms":` `u64` `}`.
const TAIL_MAX: usize = 9 + NAME_MAX_BYTES + 1 + 13 + U64_DIGITS + 1;

/// One (operation, tier) pair's head and tail.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// [`tag`] of the pair held; 0: none.
    tag: u32,
    head_len: u8,
    tail_len: u8,
    head: [u8; HEAD_MAX],
    tail: [u8; TAIL_MAX],
}

/// The cache: see the [module docs](self).
#[derive(Clone, Debug)]
pub(crate) struct Fragments {
    entries: [Entry; SLOTS],
}

/// A pair's non-zero tag: the operation's index (below 256) and the tier's (below 16) plus one,
/// 0 for none.
fn tag(op: OpId, tier: Option<TierId>) -> u32 {
    let tier = tier.map_or(0, |t| t.index() + 1);
    ((op.index() << 5 | tier) + 1) as u32
}

/// A pair's entry: 16 operations in a row under one tier, or 16 tiers of one operation (7 is
/// odd, so it steps through all 16 slots), each have their own.
fn slot(op: OpId, tier: Option<TierId>) -> usize {
    let tier = tier.map_or(0, |t| t.index() + 1);
    (op.index() + 7 * tier) % SLOTS
}

impl Entry {
    const EMPTY: Entry = Entry {
        tag: 0,
        head_len: 0,
        tail_len: 0,
        head: [0; HEAD_MAX],
        tail: [0; TAIL_MAX],
    };

    /// Writes `call`'s head and tail.
    fn fill(&mut self, tag: u32, call: &Call<'_>) {
        let mut w = Writer::new(&mut self.head);
        w.bytes(b",\"limit\":");
        w.u64(u64::from(call.limit.capacity_tokens()));
        w.bytes(b",\"operation\":\"");
        w.bytes(call.op_name.as_bytes());
        w.bytes(b"\",\"remaining\":");
        // Names are at most NAME_MAX_BYTES, so both always fit (HEAD_MAX, TAIL_MAX < 256).
        let head_len = w.finish().map_or(0, |n| n);
        let mut w = Writer::new(&mut self.tail);
        if let Some(tier) = call.tier {
            w.bytes(b",\"tier\":\"");
            w.bytes(tier.as_bytes());
            w.byte(b'"');
        }
        w.bytes(b",\"window_ms\":");
        w.u64(call.limit.window().as_millis());
        w.byte(b'}');
        let tail_len = w.finish().map_or(0, |n| n);
        self.head_len = head_len as u8;
        self.tail_len = tail_len as u8;
        self.tag = tag;
    }

    /// Appends the head.
    pub(crate) fn head(&self, w: &mut Writer<'_>) {
        w.prefix_of(&self.head, usize::from(self.head_len));
    }

    /// Appends the tail.
    pub(crate) fn tail(&self, w: &mut Writer<'_>) {
        w.prefix_of(&self.tail, usize::from(self.tail_len));
    }
}

impl Fragments {
    pub(crate) const fn new() -> Fragments {
        Fragments {
            entries: [Entry::EMPTY; SLOTS],
        }
    }

    /// The entry of `call`'s operation and tier, written first when it holds another pair.
    #[inline]
    pub(crate) fn get(&mut self, call: &Call<'_>) -> &Entry {
        let tag = tag(call.op, call.tier_id);
        let entry = &mut self.entries[slot(call.op, call.tier_id)];
        if entry.tag != tag {
            entry.fill(tag, call);
        }
        entry
    }

    /// Forgets every entry: the policy changed.
    pub(crate) fn clear(&mut self) {
        for entry in &mut self.entries {
            entry.tag = 0;
        }
    }
}

const _: () = assert!(HEAD_MAX < 256 && TAIL_MAX < 256 && SLOTS.is_power_of_two());
