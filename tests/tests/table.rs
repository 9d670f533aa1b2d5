//! Property tests of `heidi_core::table::Table`, the fixed-capacity store behind the keyed
//! limiter, the leases and the idempotency table, against a plain `HashMap` model.
//!
//! Invariants, checked after every step of a random stream of keys, deadlines and clock steps:
//! memory is fixed (the table never holds more entries than slots, and `len` counts exactly the
//! occupied slots); a live entry (one not yet reclaimable) is never evicted or altered by other
//! keys' traffic; an entry is only ever replaced when it was reclaimable; a lookup finds exactly
//! what the model holds; `TableFull` only happens when at least a whole group of slots is live,
//! and its `retry_at` is in the future.

use std::collections::HashMap;

use heidi_core::key::KeyHash;
use heidi_core::table::{GROUP, Reclaim, Slot, Table};
use heidi_core::{Duration, Instant};
use proptest::prelude::*;

/// A value that becomes reclaimable at a chosen instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Until(Instant);

impl Reclaim for Until {
    fn reclaimable_at(&self) -> Instant {
        self.0
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Let time pass (µs).
    Advance(u64),
    /// Take or find the slot of key `k`; a new entry gets a lifetime of `ttl` µs from now.
    Entry { k: u64, ttl: u64 },
    /// Remove key `k`.
    Remove(u64),
    /// Sweep `max` slots from `cursor`.
    Sweep { cursor: usize, max: usize },
}

/// Keys from a small pool so that keys repeat, collide in groups, and fill the table.
fn op(pool: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u64..2_000).prop_map(Op::Advance),
        6 => ((1..=pool), (0u64..5_000)).prop_map(|(k, ttl)| Op::Entry { k, ttl }),
        1 => (1..=pool).prop_map(Op::Remove),
        1 => ((0usize..64), (0usize..40)).prop_map(|(cursor, max)| Op::Sweep { cursor, max }),
    ]
}

/// Spreads a small key number over the whole hash space, so that both halves (the two group
/// choices) vary.
fn key(k: u64) -> KeyHash {
    KeyHash::from_raw(k.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (k << 40))
}

fn check<S>(table: &Table<Until, S>, model: &HashMap<u64, Until>)
where
    S: AsRef<[Slot<Until>]> + AsMut<[Slot<Until>]>,
{
    table.assert_invariants();
    assert!(table.len() <= table.capacity());
    assert_eq!(table.len(), model.len(), "len counts the occupied slots");
    for (&k, v) in model {
        assert_eq!(
            table.get(key(k)),
            Some(v),
            "key {k} holds the model's value"
        );
    }
}

fn run(ops: &[Op], slots: usize) -> Result<(), TestCaseError> {
    let mut table = Table::new(vec![Slot::<Until>::empty(); slots].into_boxed_slice());
    let mut model: HashMap<u64, Until> = HashMap::new();
    let mut now = Instant::from_secs(1);
    for op in ops {
        match *op {
            Op::Advance(us) => now += Duration::from_micros(us),
            Op::Entry { k, ttl } => {
                let before = model.clone();
                let answer = table.entry(now, key(k)).map(|e| (e.inserted, *e.value, e));
                match answer {
                    Ok((inserted, value, e)) => {
                        prop_assert_eq!(inserted, !model.contains_key(&k));
                        if inserted {
                            prop_assert_eq!(value, Until::default());
                            let fresh = Until(now + Duration::from_micros(ttl));
                            *e.value = fresh;
                            model.insert(k, fresh);
                        } else {
                            prop_assert_eq!(Some(&value), model.get(&k));
                        }
                    }
                    Err(full) => {
                        prop_assert!(!model.contains_key(&k), "a present key is always found");
                        prop_assert!(full.retry_at > now, "retry_at is in the future");
                        let live = model.values().filter(|v| v.0 > now).count();
                        prop_assert!(live >= GROUP, "full with only {live} live entries");
                    }
                }
                // Whatever disappeared was reclaimable: live state is never evicted.
                let gone: Vec<u64> = before
                    .keys()
                    .filter(|&&b| table.get(key(b)).is_none())
                    .copied()
                    .collect();
                prop_assert!(gone.len() <= 1, "one insert evicts at most one entry");
                for g in gone {
                    prop_assert!(before[&g].0 <= now, "evicted live key {}", g);
                    model.remove(&g);
                }
            }
            Op::Remove(k) => {
                prop_assert_eq!(table.remove(key(k)), model.remove(&k));
            }
            Op::Sweep { cursor, max } => {
                let _ = table.sweep(now, cursor, max);
                model.retain(|&k, v| {
                    let present = table.get(key(k)).is_some();
                    assert!(present || v.0 <= now, "sweep removed live key {k}");
                    present
                });
            }
        }
        check(&table, &model);
    }
    Ok(())
}

proptest! {
    #![proptest_config(heidi_tests::proptest_config(512))]

    /// One group: every new key competes for the same 8 slots.
    #[test]
    fn one_group_never_evicts_live_entries(ops in proptest::collection::vec(op(20), 1..200)) {
        run(&ops, GROUP)?;
    }

    /// Several groups with two choices each.
    #[test]
    fn many_groups_never_evict_live_entries(ops in proptest::collection::vec(op(60), 1..300)) {
        run(&ops, 4 * GROUP)?;
    }
}
