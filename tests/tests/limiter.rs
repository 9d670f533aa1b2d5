//! Property tests for the token bucket and the keyed limiter (`heidi_core::limit`).
//!
//! (a) The bucket against a plainly written rational token bucket. The equivalence that holds
//!     is exact, answer for answer (grant, `remaining`, `retry_at`), with the ideal bucket
//!     whose window is `capacity × ceil(window / capacity)`: the rounded-up refill time, which
//!     is the configured window whenever capacity divides it. Comparing grant by grant against
//!     the unrounded window is not a valid property: once the two disagree once, their levels
//!     differ and either may grant more later. The rate bound against the configured window is
//!     checked instead, as (b).
//!     Policy changes are in the traces: the model keeps the time until the bucket is full
//!     (the documented meaning of a change) and so may go into debt below zero tokens.
//! (b) Over every interval of a trace, granted cost ≤ capacity + ⌊capacity × elapsed / window⌋,
//!     including traces that run into `Instant::MAX`.
//! (c) The keyed limiter: every Granted/Denied answer equals that of an unbounded map of model
//!     buckets (so eviction loses nothing), also across policy changes mid-trace (a new
//!     policy applies to existing keys); TableFull only for a key without a live bucket, with a
//!     `retry_at` in the future; and a drained key stays limited, with the same `retry_at`,
//!     however many other keys arrive. After every call: the occupied slots are exactly the
//!     model keys that [`KeyedLimiter::get`] finds (`len()` counts them), `len() ≤ capacity()`,
//!     every key whose bucket is not full (TAT > now) is present, and every key's full-at
//!     instant equals the model's (an absent key counts as full).

use std::collections::HashMap;

use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::limit::{
    Acquire, ArrayLimiter, CostOverCapacity, KeyedAcquire, KeyedLimiter, LimitPolicy, Tat,
    TokenBucket,
};
use heidi_core::{Duration, Instant};
use proptest::prelude::*;

/// A token bucket in rational arithmetic: `level` is tokens × `window_us` (so refilling
/// `capacity` tokens per `window_us` adds `capacity` per µs). Negative after a policy change
/// that leaves the bucket in debt.
#[derive(Clone, Debug)]
struct Model {
    capacity: i128,
    window_us: i128,
    level: i128,
    last_us: u64,
}

impl Model {
    fn new(capacity: u32, window_us: u64) -> Model {
        let (capacity, window_us) = (i128::from(capacity), i128::from(window_us));
        Model {
            capacity,
            window_us,
            level: capacity * window_us,
            last_us: 0,
        }
    }

    /// The model of `policy`: the ideal bucket over the rounded-up refill time.
    fn of(policy: &LimitPolicy) -> Model {
        Model::new(policy.capacity_tokens(), policy.refill_time().as_micros())
    }

    fn full(&self) -> i128 {
        self.capacity * self.window_us
    }

    /// The instant (µs) at which the bucket is full again, or `now_us` if it already is: the
    /// TAT of the real bucket, clamped to now.
    fn full_at(&self, now_us: u64) -> u64 {
        let dt = i128::from(now_us.saturating_sub(self.last_us));
        let level = (self.level + self.capacity * dt).min(self.full());
        let debt_us = (self.full() - level + self.capacity - 1) / self.capacity;
        now_us + u64::try_from(debt_us).unwrap()
    }

    fn advance(&mut self, now_us: u64) {
        if now_us > self.last_us {
            let dt = i128::from(now_us - self.last_us);
            self.level = (self.level + self.capacity * dt).min(self.full());
            self.last_us = now_us;
        }
    }

    fn acquire(&mut self, now_us: u64, cost: u32) -> Result<Acquire, ()> {
        let cost = i128::from(cost);
        if cost > self.capacity {
            return Err(());
        }
        self.advance(now_us);
        let need = cost * self.window_us;
        if self.level >= need {
            self.level -= need;
            let remaining = (self.level / self.window_us).max(0);
            return Ok(Acquire::Granted {
                remaining: u32::try_from(remaining).unwrap(),
            });
        }
        let wait = (need - self.level + self.capacity - 1) / self.capacity;
        let retry_at = i128::from(now_us) + wait;
        Ok(Acquire::Denied {
            retry_at: Instant::from_micros(u64::try_from(retry_at).unwrap()),
        })
    }

    /// A new policy: the bucket is full again after the same time as before.
    fn set_policy(&mut self, now_us: u64, capacity: u32, window_us: u64) {
        self.advance(now_us);
        let old_capacity = self.capacity;
        assert_eq!(self.level % old_capacity, 0, "levels stay whole µs of debt");
        let debt_us = (self.full() - self.level) / old_capacity;
        *self = Model {
            level: 0,
            last_us: self.last_us,
            ..Model::new(capacity, window_us)
        };
        self.level = self.capacity * (self.window_us - debt_us);
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Wait `step_us`, then acquire `cost`.
    Acquire { step_us: u64, cost: u32 },
    /// Switch to `capacity` per `window_us`.
    SetPolicy { capacity: u32, window_us: u64 },
}

fn window_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..=1_000, 1_000u64..=120_000_000]
}

fn policy_strategy() -> impl Strategy<Value = LimitPolicy> {
    (1u32..=100, window_strategy())
        .prop_map(|(c, w)| LimitPolicy::new(c, Duration::from_micros(w)).unwrap())
}

/// Steps scaled to the window so that traces both drain and refill buckets.
fn op_strategy(window_us: u64) -> impl Strategy<Value = Op> {
    let step = prop_oneof![
        3 => Just(0u64),
        5 => 0..=window_us / 20 + 1,
        1 => 0..=window_us * 2,
    ];
    prop_oneof![
        20 => (step, 0u32..=110).prop_map(|(step_us, cost)| Op::Acquire { step_us, cost }),
        1 => (1u32..=100, window_strategy()).prop_map(|(capacity, window_us)| Op::SetPolicy { capacity, window_us }),
    ]
}

fn trace_strategy() -> impl Strategy<Value = (LimitPolicy, u64, Vec<Op>)> {
    policy_strategy().prop_flat_map(|p| {
        let w = p.window().as_micros();
        (
            Just(p),
            0u64..=1 << 40,
            proptest::collection::vec(op_strategy(w), 1..200),
        )
    })
}

fn config() -> ProptestConfig {
    heidi_tests::proptest_config(256)
}

proptest! {
    #![proptest_config(config())]

    /// (a) Answer-for-answer equality with the rational model of the rounded refill time.
    #[test]
    fn bucket_matches_rational_model((policy, start_us, ops) in trace_strategy()) {
        let mut bucket = TokenBucket::new(policy);
        let mut model = Model::of(&policy);
        model.last_us = start_us;
        let mut now = start_us;
        for op in ops {
            match op {
                Op::Acquire { step_us, cost } => {
                    now += step_us;
                    let t = Instant::from_micros(now);
                    let peek = bucket.check(t, cost);
                    let ours = bucket.acquire(t, cost);
                    prop_assert_eq!(peek, ours);
                    let theirs = model.acquire(now, cost);
                    match (ours, theirs) {
                        (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "at {} cost {}", now, cost),
                        (Err(CostOverCapacity { cost_tokens, capacity_tokens }), Err(())) => {
                            prop_assert_eq!(cost_tokens, cost);
                            prop_assert_eq!(capacity_tokens, policy_capacity(&bucket));
                        }
                        (a, b) => prop_assert!(false, "ours {:?}, model {:?}", a, b),
                    }
                }
                Op::SetPolicy { capacity, window_us } => {
                    let p = LimitPolicy::new(capacity, Duration::from_micros(window_us)).unwrap();
                    bucket.set_policy(p);
                    model.set_policy(now, capacity, p.refill_time().as_micros());
                }
            }
        }
    }

    /// (b) The rate bound over every interval [t_i, t_j] of a trace, for the configured window.
    #[test]
    fn never_more_than_capacity_plus_rate_times_elapsed(
        (policy, start_us, ops) in trace_strategy(),
        near_the_end in proptest::bool::weighted(0.2),
    ) {
        let mut bucket = TokenBucket::new(policy);
        let base = if near_the_end {
            Instant::MAX - Duration::from_micros(start_us % (policy.refill_time().as_micros() * 3))
        } else {
            Instant::from_micros(start_us)
        };
        let mut now = base;
        let mut events: Vec<(u64, u64)> = Vec::new(); // (time µs, granted cost)
        for op in ops {
            let Op::Acquire { step_us, cost } = op else { continue };
            now += Duration::from_micros(step_us);
            let cost = cost.min(policy.capacity_tokens());
            let granted = bucket.acquire(now, cost).unwrap().is_granted();
            events.push((now.as_micros(), if granted { u64::from(cost) } else { 0 }));
        }
        check_rate_bound(&policy, &events)?;
    }

    /// (c) The keyed limiter equals an unbounded map of model buckets whenever it answers
    /// Granted or Denied, holds every bucket that is not full, and no more slots than it has.
    #[test]
    fn keyed_limiter_loses_nothing_in_fixed_memory(
        policy in keyed_policy(),
        universe in prop_oneof![Just(8u32), Just(64), Just(96), Just(160), Just(512), Just(100_000)],
        calls in proptest::collection::vec(keyed_op(), 1..400),
    ) {
        let hasher = KeyHasher::new([9; 16]);
        let mut limiter = ArrayLimiter::<64>::new_array();
        let mut policy = policy;
        let mut models: HashMap<KeyHash, Model> = HashMap::new();
        let mut now = 0u64;
        for call in calls {
            let (step_us, key, cost) = match call {
                KeyedOp::Call { step_us, key, cost } => (step_us, key, cost),
                KeyedOp::SetPolicy(new) => {
                    // Applies to every existing key: the models keep their time until full.
                    policy = new;
                    let window_us = policy.refill_time().as_micros();
                    for model in models.values_mut() {
                        model.set_policy(now, policy.capacity_tokens(), window_us);
                    }
                    check_keyed_state(&limiter, &models, now)?;
                    continue;
                }
            };
            now += step_us;
            let key = hasher.hash(&(key % universe).to_le_bytes());
            let cost = cost.min(policy.capacity_tokens());
            let t = Instant::from_micros(now);
            let answer = limiter.acquire(t, key, &policy, cost).unwrap();
            let model = models.entry(key).or_insert_with(|| {
                let mut m = Model::of(&policy);
                m.last_us = now;
                m
            });
            match answer {
                KeyedAcquire::Granted { remaining } => {
                    prop_assert_eq!(Ok(Acquire::Granted { remaining }), model.acquire(now, cost));
                }
                KeyedAcquire::Denied { retry_at } => {
                    prop_assert_eq!(Ok(Acquire::Denied { retry_at }), model.acquire(now, cost));
                }
                KeyedAcquire::TableFull { retry_at } => {
                    prop_assert!(retry_at > t);
                    prop_assert!(limiter.get(key).is_none());
                    // A key without a bucket is full: the model would have granted.
                    prop_assert!(model.clone().acquire(now, cost).unwrap().is_granted());
                }
            }
            check_keyed_state(&limiter, &models, now)?;
        }
    }

    /// (c) A drained key stays limited, with the same retry_at, whatever other keys arrive.
    #[test]
    fn a_limited_key_stays_limited_under_a_flood(
        capacity in 1u32..=50,
        flood in proptest::collection::vec((any::<u64>(), 1u32..=50, 0u64..=1_000), 0..2_000),
    ) {
        let policy = LimitPolicy::new(capacity, Duration::from_secs(60)).unwrap();
        let mut limiter = KeyedLimiter::new(vec![heidi_core::table::Slot::<Tat>::empty(); 256].into_boxed_slice());
        let victim = KeyHash::from_raw(0xdead_beef);
        let t0 = Instant::from_secs(10);
        prop_assert!(limiter.acquire(t0, victim, &policy, capacity).unwrap().is_granted());
        let first = limiter.acquire(t0, victim, &policy, 1).unwrap();
        let retry_at = first.retry_at().unwrap();
        let mut now = t0;
        for (key, cost, step_us) in flood {
            now = (now + Duration::from_micros(step_us)).min(retry_at - Duration::from_micros(1));
            let cost = cost.min(capacity);
            let _ = limiter.acquire(now, KeyHash::from_raw(key), &policy, cost).unwrap();
        }
        prop_assert_eq!(limiter.acquire(now, victim, &policy, 1).unwrap(), first);
        prop_assert!(limiter.acquire(retry_at, victim, &policy, 1).unwrap().is_granted());
    }
}

#[derive(Clone, Debug)]
enum KeyedOp {
    /// Wait `step_us`, then acquire `cost` for key number `key` (modulo the universe).
    Call { step_us: u64, key: u32, cost: u32 },
    /// From now on, call with this policy.
    SetPolicy(LimitPolicy),
}

fn keyed_policy() -> impl Strategy<Value = LimitPolicy> {
    (1u32..=20, 1u64..=2_000)
        .prop_map(|(c, w)| LimitPolicy::new(c, Duration::from_micros(w)).unwrap())
}

fn keyed_op() -> impl Strategy<Value = KeyedOp> {
    prop_oneof![
        30 => (0u64..=40, any::<u32>(), 0u32..=20)
            .prop_map(|(step_us, key, cost)| KeyedOp::Call { step_us, key, cost }),
        1 => keyed_policy().prop_map(KeyedOp::SetPolicy),
    ]
}

/// The keyed limiter's table against the models, at `now_us`. (`KeyedLimiter` has no `iter`;
/// every key it ever saw is a model key, so counting the model keys it finds counts its
/// occupied slots.)
fn check_keyed_state<S>(
    limiter: &KeyedLimiter<S>,
    models: &HashMap<KeyHash, Model>,
    now_us: u64,
) -> Result<(), TestCaseError>
where
    S: AsRef<[heidi_core::table::Slot<Tat>]> + AsMut<[heidi_core::table::Slot<Tat>]>,
{
    let now = Instant::from_micros(now_us);
    let mut present = 0;
    for (key, model) in models {
        let tat = limiter.get(*key);
        present += usize::from(tat.is_some());
        let want = Instant::from_micros(model.full_at(now_us));
        if want > now {
            prop_assert!(
                tat.is_some(),
                "{:?}: a bucket short of full was evicted",
                key
            );
        }
        let got = tat.map_or(now, |t| t.full_at().max(now));
        prop_assert_eq!(got, want, "full-at of {:?} at {}", key, now);
    }
    prop_assert_eq!(present, limiter.len(), "len() counts the occupied slots");
    prop_assert_eq!(
        limiter.iter().count(),
        limiter.len(),
        "iter() yields the occupied slots"
    );
    prop_assert!(limiter.len() <= limiter.capacity());
    limiter.assert_invariants();
    Ok(())
}

fn policy_capacity(bucket: &TokenBucket) -> u32 {
    bucket.policy().capacity_tokens()
}

/// Checks the bound for every pair i ≤ j of events (time-ordered).
fn check_rate_bound(policy: &LimitPolicy, events: &[(u64, u64)]) -> Result<(), TestCaseError> {
    let capacity = u128::from(policy.capacity_tokens());
    let window = u128::from(policy.window().as_micros());
    let mut prefix = vec![0u64];
    for (_, cost) in events {
        prefix.push(prefix.last().unwrap() + cost);
    }
    for i in 0..events.len() {
        for j in i..events.len() {
            let granted = u128::from(prefix[j + 1] - prefix[i]);
            let elapsed = u128::from(events[j].0 - events[i].0);
            let bound = capacity + capacity * elapsed / window;
            prop_assert!(
                granted <= bound,
                "granted {} in [{}, {}] > bound {}",
                granted,
                events[i].0,
                events[j].0,
                bound
            );
        }
    }
    Ok(())
}

#[test]
fn model_reproduces_the_design_table() {
    let mut m = Model::new(60, 60_000_000);
    let granted = (0..70)
        .filter(|_| m.acquire(0, 1).unwrap().is_granted())
        .count();
    assert_eq!(granted, 60);
    let mut m = Model::new(10, 60_000_000);
    let answers: Vec<bool> = [5, 5, 5]
        .iter()
        .map(|&c| m.acquire(0, c).unwrap().is_granted())
        .collect();
    assert_eq!(answers, [true, true, false]);
}
