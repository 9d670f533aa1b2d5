//! Model-based property tests of `heidi_core::idempotency::IdempotencyTable` against a plain
//! `HashMap` of records.
//!
//! Invariants: every answer of `begin` and `complete` matches the model; a key never has two
//! concurrent owners (a `Started` is only handed out when no earlier owner of the key can
//! still complete, and its record lives a positive time, also at the end of the clock); tokens
//! are never zero, never repeat, and are not the previous token plus one; only the current
//! owner's token completes (a neighbour of another key's token does not); the table's memory
//! is fixed (capacity constant, `len` never above it) whatever keys arrive. Traces may jump
//! to the last seconds before `Instant::MAX`.

use std::collections::{HashMap, HashSet};

use heidi_core::idempotency::{
    Begin, BeginError, CompleteError, Completed, IdempotencyConfig, IdempotencyTable, Outcome,
    Record, Token,
};
use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::table::Slot;
use heidi_core::{Duration, Instant};
use proptest::prelude::*;

const TTL: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
enum Op {
    /// Let time pass (µs).
    Advance(u64),
    /// Jump (forward only) to this many µs before `Instant::MAX`.
    NearEnd(u64),
    /// Begin a key.
    Begin(u8),
    /// Complete a key with one of the tokens issued for it (`pick` chooses which, or a bogus
    /// one), with success (carrying a digest byte) or failure.
    Complete {
        key: u8,
        pick: u8,
        success: Option<u8>,
    },
}

fn op(keys: u8) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..4_000_000).prop_map(Op::Advance),
        1 => (0u64..8_000_000).prop_map(Op::NearEnd),
        4 => (0..keys).prop_map(Op::Begin),
        4 => (0..keys, any::<u8>(), prop::option::of(any::<u8>()))
            .prop_map(|(key, pick, success)| Op::Complete { key, pick, success }),
    ]
}

/// The model's record of a key.
#[derive(Clone, Copy, Debug)]
enum Rec {
    InProgress {
        token: Token,
        since: Instant,
        expires_at: Instant,
    },
    Done {
        token: Token,
        outcome: Outcome,
        completed_at: Instant,
        expires_at: Instant,
    },
}

impl Rec {
    fn expires_at(&self) -> Instant {
        match *self {
            Rec::InProgress { expires_at, .. } | Rec::Done { expires_at, .. } => expires_at,
        }
    }

    fn token(&self) -> Token {
        match *self {
            Rec::InProgress { token, .. } | Rec::Done { token, .. } => token,
        }
    }
}

struct Model {
    config: IdempotencyConfig,
    records: HashMap<u8, Rec>,
    /// Slots of the real table, when the model can predict `TableFull` (one group).
    one_group_slots: Option<usize>,
}

impl Model {
    /// What a duplicate is told while the key's record is live; `None` when the key is new.
    fn existing(&self, now: Instant, key: u8) -> Option<Begin> {
        let rec = self.records.get(&key).filter(|r| r.expires_at() > now)?;
        Some(match *rec {
            Rec::InProgress {
                since, expires_at, ..
            } => Begin::InProgress { since, expires_at },
            Rec::Done {
                outcome: Outcome::Success(digest),
                completed_at,
                expires_at,
                ..
            } => Begin::Done {
                digest,
                completed_at,
                expires_at,
            },
            Rec::Done {
                outcome: Outcome::Failure,
                completed_at,
                expires_at,
                ..
            } => Begin::Failed {
                completed_at,
                expires_at,
            },
        })
    }

    /// The expected answer; a start is `Started` with `PENDING` for its token, which the
    /// table chooses (the run checks it is fresh and hands it to `adopt`).
    fn begin(&self, now: Instant, key: u8) -> Result<Begin, BeginError> {
        if let Some(existing) = self.existing(now, key) {
            return Ok(existing);
        }
        let Some(expires_at) = now.checked_add(self.config.in_progress_timeout) else {
            return Err(BeginError::ExpiryOverflow);
        };
        self.check_room(now, key)?;
        Ok(Begin::Started {
            token: PENDING,
            expires_at,
        })
    }

    /// Records the start of `key` under the table's `token`.
    fn adopt(&mut self, now: Instant, key: u8, token: Token, expires_at: Instant) {
        let rec = Rec::InProgress {
            token,
            since: now,
            expires_at,
        };
        self.records.insert(key, rec);
    }

    /// With one group of slots, a new key finds no room exactly when every slot holds a live
    /// record of another key.
    fn check_room(&self, now: Instant, key: u8) -> Result<(), BeginError> {
        let Some(slots) = self.one_group_slots else {
            return Ok(());
        };
        let live = || {
            self.records
                .iter()
                .filter(|(k, r)| **k != key && r.expires_at() > now)
        };
        if live().count() < slots {
            return Ok(());
        }
        let retry_at = live().map(|(_, r)| r.expires_at()).min().unwrap();
        Err(BeginError::TableFull { retry_at })
    }

    fn complete(
        &mut self,
        now: Instant,
        key: u8,
        token: Token,
        outcome: Outcome,
    ) -> Result<Completed, CompleteError> {
        let rec = *self.records.get(&key).ok_or(CompleteError::Unknown)?;
        if rec.token() != token {
            return Err(CompleteError::NotOwner);
        }
        match rec {
            Rec::Done { completed_at, .. } => Err(CompleteError::AlreadyCompleted { completed_at }),
            Rec::InProgress { expires_at, .. } if expires_at <= now => {
                Err(CompleteError::Expired {
                    expired_at: expires_at,
                })
            }
            Rec::InProgress { .. }
                if outcome == Outcome::Failure && !self.config.remember_failures =>
            {
                self.records.remove(&key);
                Ok(Completed::Released)
            }
            Rec::InProgress { .. } => {
                let expires_at = now + self.config.ttl;
                self.records.insert(
                    key,
                    Rec::Done {
                        token,
                        outcome,
                        completed_at: now,
                        expires_at,
                    },
                );
                Ok(Completed::Remembered { expires_at })
            }
        }
    }
}

/// The placeholder for the token the table picks.
const PENDING: Token = Token::from_raw(0);

/// Every `Started` handed out, per key, to check that owners never overlap.
#[derive(Default)]
struct Ledger {
    issued: HashMap<u8, Vec<(Token, Instant)>>,
    /// Every token handed out, and the latest.
    all: HashSet<u64>,
    last: Option<u64>,
    /// Tokens whose owner completed (or released) the key.
    finished: Vec<Token>,
}

impl Ledger {
    fn started(
        &mut self,
        now: Instant,
        key: u8,
        token: Token,
        expires_at: Instant,
    ) -> Result<(), TestCaseError> {
        prop_assert!(
            expires_at > now,
            "key {key}: record begun at {now} is already expired"
        );
        let raw = token.get();
        prop_assert!(
            raw != 0 && self.all.insert(raw),
            "token {raw:#x} zero or reused"
        );
        if let Some(last) = self.last {
            prop_assert!(
                raw != last.wrapping_add(1),
                "tokens count up: {last:#x}, {raw:#x}"
            );
        }
        self.last = Some(raw);
        let owners = self.issued.entry(key).or_default();
        for (other, other_expires) in owners.iter() {
            prop_assert!(
                self.finished.contains(other) || *other_expires <= now,
                "key {key}: {token:?} started while {other:?} still owns it"
            );
        }
        owners.push((token, expires_at));
        Ok(())
    }

    fn pick(&self, key: u8, pick: u8) -> Token {
        let issued = self.issued.get(&key).map_or(&[][..], |v| &v[..]);
        if pick % 16 == 6 {
            // A guess next to the latest token of any key.
            let near = self
                .last
                .unwrap_or(1)
                .wrapping_add(u64::from(pick >> 4))
                .wrapping_sub(8);
            return Token::from_raw(near);
        }
        match issued.get(usize::from(pick) % (issued.len() + 1)) {
            Some((token, _)) if pick % 4 != 0 => *token,
            // Bias towards the latest token, plus an occasional bogus one.
            _ if pick % 8 == 4 => Token::from_raw(u64::MAX),
            _ => issued.last().map_or(Token::from_raw(u64::MAX), |(t, _)| *t),
        }
    }
}

fn hash(key: u8) -> KeyHash {
    KeyHasher::new([42; 16]).hash(&[key])
}

/// Runs `ops` against a table of `N` slots. `strict`: no record can be evicted by another key
/// (few keys), so even answers about expired records must match exactly.
fn against_model<const N: usize>(
    config: IdempotencyConfig,
    seed: [u8; 16],
    keys_in_one_group: bool,
    strict: bool,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut table = IdempotencyTable::new(config, [Slot::<Record>::empty(); N], seed).unwrap();
    let mut model = Model {
        config,
        records: HashMap::new(),
        one_group_slots: keys_in_one_group.then_some(N),
    };
    let mut ledger = Ledger::default();
    let mut now = Instant::from_secs(1);
    for op in ops {
        match *op {
            Op::Advance(us) => now += Duration::from_micros(us),
            Op::NearEnd(us) => now = now.max(Instant::MAX - Duration::from_micros(us)),
            Op::Begin(key) => {
                let got = table.begin(now, hash(key));
                let want = model.begin(now, key);
                if let Ok(Begin::Started { token, expires_at }) = got {
                    let placeholder = Begin::Started {
                        token: PENDING,
                        expires_at,
                    };
                    prop_assert_eq!(Ok(placeholder), want, "begin({}) at {}", key, now);
                    ledger.started(now, key, token, expires_at)?;
                    model.adopt(now, key, token, expires_at);
                } else {
                    prop_assert_eq!(got, want, "begin({}) at {}", key, now);
                }
            }
            Op::Complete { key, pick, success } => {
                let token = ledger.pick(key, pick);
                let outcome = success.map_or(Outcome::Failure, |d| Outcome::Success([d; 32]));
                let got = table.complete(now, hash(key), token, outcome);
                let expired = model
                    .records
                    .get(&key)
                    .is_some_and(|r| r.expires_at() <= now);
                let want = model.complete(now, key, token, outcome);
                if !strict && expired && got == Err(CompleteError::Unknown) {
                    // The table reclaimed the expired record's slot for another key.
                    model.records.remove(&key);
                } else {
                    prop_assert_eq!(got, want, "complete({}, {:?}) at {}", key, token, now);
                }
                if got.is_ok() {
                    ledger.finished.push(token);
                }
            }
        }
        prop_assert_eq!(table.capacity(), N);
        prop_assert!(table.len() <= N);
        if strict {
            prop_assert_eq!(table.len(), model.records.len());
            for key in 0..4 {
                prop_assert_eq!(table.peek(now, hash(key)), model.existing(now, key));
            }
        }
    }
    Ok(())
}

fn config_strategy() -> impl Strategy<Value = IdempotencyConfig> {
    any::<bool>().prop_map(|remember_failures| IdempotencyConfig {
        ttl: TTL,
        in_progress_timeout: TIMEOUT,
        remember_failures,
    })
}

fn proptest_config() -> ProptestConfig {
    heidi_tests::proptest_config(256)
}

proptest! {
    #![proptest_config(proptest_config())]

    /// A few keys in a roomy table: nothing is ever evicted, every answer is exact.
    #[test]
    fn few_keys_match_the_model_exactly(
        config in config_strategy(),
        seed in any::<[u8; 16]>(),
        ops in prop::collection::vec(op(4), 0..200),
    ) {
        against_model::<16>(config, seed, false, true, &ops)?;
    }

    /// More keys than slots (one group of 8): `TableFull` exactly when every slot is live,
    /// with the model's `retry_at`; live records are never evicted.
    #[test]
    fn many_keys_in_a_full_table_match_the_model(
        config in config_strategy(),
        seed in any::<[u8; 16]>(),
        ops in prop::collection::vec(op(12), 0..300),
    ) {
        against_model::<8>(config, seed, true, false, &ops)?;
    }
}

#[test]
fn table_memory_is_fixed_by_its_storage() {
    type Table = IdempotencyTable<[Slot<Record>; 64]>;
    let size = std::mem::size_of::<Table>();
    let mut t: Table =
        IdempotencyTable::new(IdempotencyConfig::default(), [Slot::empty(); 64], [7; 16]).unwrap();
    for i in 0..10_000u32 {
        let _ = t.begin(
            Instant::from_secs(u64::from(i)),
            KeyHasher::new([1; 16]).hash(&i.to_le_bytes()),
        );
    }
    assert_eq!(std::mem::size_of_val(&t), size);
    assert!(t.len() <= 64);
}
