//! Model-based property tests of `heidi_core::lease::Leases` against a plain
//! `HashMap<key, Vec<(id, expiry)>>`.
//!
//! Ten keys share a one-group table of 8 slots, so the table fills up and reclaims keys. After
//! every step: each key's `active` count and `next_expiry` match the model and `active ≤ K`;
//! a grant leaves `active ≤ limit` for the limit in force; at an expiry instant the count drops
//! exactly then (not a microsecond earlier); every answer (grant, `AtLimit`/`TableFull` with
//! `retry_at`, `ExpiryOverflow`, refresh, release) matches the model; ids are never zero or
//! reused; a released or expired id never comes back to life. The configuration changes
//! mid-trace (limits lowered below or raised above the leases held, TTL changed, invalid
//! configs refused), and traces may jump to the last moments before `Instant::MAX`.

use std::collections::{HashMap, HashSet};

use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::lease::{
    AcquireError, LeaseConfig, LeaseConfigError, LeaseId, LeaseSet, Leases, RefreshError,
    ReleaseError,
};
use heidi_core::table::Slot;
use heidi_core::{Duration, Instant};
use proptest::prelude::*;

const KEYS: usize = 10;
const TABLE_SLOTS: usize = 8;
/// Lease slots per key, `K`.
const SLOTS: usize = 5;

type Subject = Leases<[Slot<LeaseSet<SLOTS>>; TABLE_SLOTS]>;

/// Which id a refresh or release names.
#[derive(Clone, Debug)]
enum Pick {
    /// One of the key's live leases (random if it has none).
    Live(usize),
    /// An id issued earlier that is no longer live (released or expired).
    Stale(usize),
    /// A live lease of some other key.
    OtherKey(usize),
    /// Any number.
    Random(u64),
}

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    AdvanceToNextExpiry,
    /// Jump (forward only) to this many µs before `Instant::MAX`.
    NearEnd(u64),
    /// A new limit and TTL (µs), possibly invalid.
    SetConfig(u16, u64),
    Acquire(usize),
    Refresh(usize, Pick),
    Release(usize, Pick),
    Sweep(usize, usize),
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        4 => any::<usize>().prop_map(Pick::Live),
        2 => any::<usize>().prop_map(Pick::Stale),
        1 => any::<usize>().prop_map(Pick::OtherKey),
        1 => any::<u64>().prop_map(Pick::Random),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS;
    prop_oneof![
        3 => (0u64..8_000).prop_map(Op::Advance),
        1 => Just(Op::AdvanceToNextExpiry),
        6 => key.clone().prop_map(Op::Acquire),
        2 => (key.clone(), pick()).prop_map(|(k, p)| Op::Refresh(k, p)),
        2 => (key, pick()).prop_map(|(k, p)| Op::Release(k, p)),
        1 => (0usize..TABLE_SLOTS, 0usize..TABLE_SLOTS).prop_map(|(c, n)| Op::Sweep(c, n)),
        1 => (0u64..40_000).prop_map(Op::NearEnd),
        2 => (0u16..=6, ttl_us()).prop_map(|(l, t)| Op::SetConfig(l, t)),
    ]
}

fn ttl_us() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0u64), 20 => 1u64..20_000]
}

/// The reference model: every key's leases as (id, expiry); a lease is live while now < expiry.
struct Model {
    leases: HashMap<usize, Vec<(u64, Instant)>>,
    limit: usize,
    ttl: Duration,
}

impl Model {
    fn live(&self, key: usize, now: Instant) -> Vec<(u64, Instant)> {
        let all = self.leases.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        all.iter().copied().filter(|&(_, exp)| now < exp).collect()
    }

    /// The expected refusal of an acquire, if any.
    fn refusal(&self, key: usize, now: Instant) -> Option<AcquireError> {
        if now.checked_add(self.ttl).is_none() {
            return Some(AcquireError::ExpiryOverflow);
        }
        let mut live: Vec<Instant> = self.live(key, now).iter().map(|l| l.1).collect();
        live.sort();
        if live.len() >= self.limit {
            let retry_at = live[live.len() - self.limit];
            return Some(AcquireError::AtLimit { retry_at });
        }
        if !live.is_empty() {
            return None;
        }
        // One group of 8 slots: a key with no live lease finds room unless 8 other keys hold
        // live leases; a slot frees when the last lease of one of them expires.
        let others: Vec<Instant> = (0..KEYS)
            .filter(|&k| k != key)
            .filter_map(|k| self.live(k, now).iter().map(|l| l.1).max())
            .collect();
        (others.len() >= TABLE_SLOTS).then(|| AcquireError::TableFull {
            retry_at: others.into_iter().min().expect("non-empty"),
        })
    }

    fn refresh(&mut self, key: usize, id: u64, now: Instant) -> Result<Instant, RefreshError> {
        let expires_at = now
            .checked_add(self.ttl)
            .ok_or(RefreshError::ExpiryOverflow)?;
        let leases = self.leases.entry(key).or_default();
        let lease = leases.iter_mut().find(|l| l.0 == id && now < l.1);
        let lease = lease.ok_or(RefreshError::Unknown)?;
        lease.1 = expires_at;
        Ok(expires_at)
    }

    fn release(&mut self, key: usize, id: u64, now: Instant) -> Result<(), ReleaseError> {
        let leases = self.leases.entry(key).or_default();
        let at = leases.iter().position(|l| l.0 == id && now < l.1);
        leases.remove(at.ok_or(ReleaseError::Unknown)?);
        Ok(())
    }

    fn next_expiry(&self, now: Instant) -> Option<Instant> {
        (0..KEYS).flat_map(|k| self.live(k, now)).map(|l| l.1).min()
    }
}

struct Run {
    leases: Subject,
    model: Model,
    keys: Vec<KeyHash>,
    now: Instant,
    issued: Vec<u64>,
    issued_set: HashSet<u64>,
}

impl Run {
    fn new(limit: u16, ttl: Duration, seed: [u8; 16]) -> Run {
        let config = LeaseConfig {
            limit_per_key: limit,
            ttl,
        };
        let hasher = KeyHasher::new([11; 16]);
        Run {
            leases: Leases::new([Slot::empty(); TABLE_SLOTS], config, seed).unwrap(),
            model: Model {
                leases: HashMap::new(),
                limit: usize::from(limit),
                ttl,
            },
            keys: (0..KEYS).map(|k| hasher.hash(&k.to_le_bytes())).collect(),
            now: Instant::ZERO,
            issued: Vec::new(),
            issued_set: HashSet::new(),
        }
    }

    fn id_for(&self, key: usize, pick: &Pick) -> (u64, bool) {
        let live_of = |k: usize| self.model.live(k, self.now);
        let stale: Vec<u64> = self
            .issued
            .iter()
            .copied()
            .filter(|id| (0..KEYS).all(|k| live_of(k).iter().all(|l| l.0 != *id)))
            .collect();
        let others: Vec<u64> = (0..KEYS)
            .filter(|&k| k != key)
            .flat_map(live_of)
            .map(|l| l.0)
            .collect();
        let choose = |ids: &[u64], i: usize| ids.get(i % ids.len().max(1)).copied();
        match *pick {
            Pick::Live(i) => {
                let mine: Vec<u64> = live_of(key).iter().map(|l| l.0).collect();
                (choose(&mine, i).unwrap_or(i as u64), false)
            }
            Pick::Stale(i) => choose(&stale, i).map_or((0, true), |id| (id, true)),
            Pick::OtherKey(i) => choose(&others, i).map_or((0, true), |id| (id, true)),
            Pick::Random(id) => (id, false),
        }
    }

    fn acquire(&mut self, k: usize) -> Result<(), TestCaseError> {
        let got = self.leases.acquire(self.now, self.keys[k]);
        let want = self.model.refusal(k, self.now);
        match (got, want) {
            (Ok(lease), None) => {
                prop_assert_eq!(lease.expires_at, self.now + self.model.ttl);
                let id = lease.id.get();
                prop_assert!(id != 0 && self.issued_set.insert(id), "id reused");
                self.issued.push(id);
                let entry = self.model.leases.entry(k).or_default();
                entry.push((id, lease.expires_at));
                let active = self.leases.active(self.now, self.keys[k]);
                prop_assert!(
                    active <= self.model.limit,
                    "granted above the limit in force"
                );
            }
            (got, want) => prop_assert_eq!(got.err(), want),
        }
        Ok(())
    }

    fn refresh(&mut self, k: usize, pick: &Pick) -> Result<(), TestCaseError> {
        let (id, dead) = self.id_for(k, pick);
        let got = self
            .leases
            .refresh(self.now, self.keys[k], LeaseId::from_raw(id));
        prop_assert_eq!(got, self.model.refresh(k, id, self.now));
        if dead {
            prop_assert!(got.is_err(), "revived");
        }
        Ok(())
    }

    fn release(&mut self, k: usize, pick: &Pick) -> Result<(), TestCaseError> {
        let (id, dead) = self.id_for(k, pick);
        let got = self
            .leases
            .release(self.now, self.keys[k], LeaseId::from_raw(id));
        prop_assert_eq!(got, self.model.release(k, id, self.now));
        if dead {
            prop_assert_eq!(got, Err(ReleaseError::Unknown));
        }
        Ok(())
    }

    /// Applies a new configuration, or checks that an invalid one is refused and changes
    /// nothing.
    fn set_config(&mut self, limit: u16, ttl_us: u64) -> Result<(), TestCaseError> {
        let ttl = Duration::from_micros(ttl_us);
        let config = LeaseConfig {
            limit_per_key: limit,
            ttl,
        };
        let want = if limit == 0 {
            Err(LeaseConfigError::LimitZero)
        } else if usize::from(limit) > SLOTS {
            Err(LeaseConfigError::LimitAboveSlots {
                limit,
                slots: SLOTS,
            })
        } else if ttl.is_zero() {
            Err(LeaseConfigError::TtlZero)
        } else {
            self.model.limit = usize::from(limit);
            self.model.ttl = ttl;
            Ok(())
        };
        prop_assert_eq!(self.leases.set_config(config), want);
        let in_force = LeaseConfig {
            limit_per_key: u16::try_from(self.model.limit).unwrap(),
            ttl: self.model.ttl,
        };
        prop_assert_eq!(self.leases.config(), in_force);
        Ok(())
    }

    /// Jumps to the next expiry, checking the count drops exactly then.
    fn advance_to_next_expiry(&mut self) -> Result<(), TestCaseError> {
        let Some(at) = self.model.next_expiry(self.now) else {
            return Ok(());
        };
        if at > self.now {
            self.now = at - Duration::from_micros(1);
            self.check()?;
        }
        self.now = at;
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Advance(us) => self.now += Duration::from_micros(*us),
            Op::AdvanceToNextExpiry => self.advance_to_next_expiry()?,
            Op::NearEnd(us) => self.now = self.now.max(Instant::MAX - Duration::from_micros(*us)),
            Op::SetConfig(limit, ttl_us) => self.set_config(*limit, *ttl_us)?,
            Op::Acquire(k) => self.acquire(*k)?,
            Op::Refresh(k, pick) => self.refresh(*k, pick)?,
            Op::Release(k, pick) => self.release(*k, pick)?,
            Op::Sweep(cursor, n) => {
                let _ = self.leases.sweep(self.now, *cursor, *n);
            }
        }
        self.check()
    }

    /// Per-key counts and deadlines match the model and respect the limit.
    fn check(&self) -> Result<(), TestCaseError> {
        let mut live_keys = 0;
        for (k, &key) in self.keys.iter().enumerate() {
            let live = self.model.live(k, self.now);
            let active = self.leases.active(self.now, key);
            prop_assert_eq!(active, live.len(), "key {} at {}", k, self.now);
            prop_assert!(active <= SLOTS);
            let next = live.iter().map(|l| l.1).min();
            prop_assert_eq!(self.leases.next_expiry(self.now, key), next);
            live_keys += usize::from(active > 0);
        }
        prop_assert!(live_keys <= self.leases.keys() && self.leases.keys() <= TABLE_SLOTS);
        Ok(())
    }
}

fn config() -> ProptestConfig {
    heidi_tests::proptest_config(256)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn leases_match_the_model(
        limit in 1u16..=5,
        ttl_us in 1u64..20_000,
        seed in any::<[u8; 16]>(),
        ops in prop::collection::vec(op(), 0..300),
    ) {
        let mut run = Run::new(limit, Duration::from_micros(ttl_us), seed);
        for op in &ops {
            run.step(op)?;
        }
    }
}
