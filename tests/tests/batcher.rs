//! Model-based property tests of `heidi_core::batcher::Batcher` against a plain `VecDeque`.
//!
//! Invariants: every item pushed with `Ok` comes out exactly once and in order, no batch is
//! empty or holds more than `N` items, `Full` happens exactly when `N` items wait, and a host
//! that honours `poll_timeout` never lets an item wait past its linger (nor polls in vain).
//! The linger changes mid-trace, with items queued: the new linger applies to them at once, so
//! an item waits at most its arrival plus the linger in force, or until the change if that
//! deadline had already passed when the linger was lowered.

use std::collections::VecDeque;

use heidi_core::batcher::{Batch, Batcher, BatcherConfig, FlushReason, Full, PushSizedError};
use heidi_core::{Duration, Instant};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// Let time pass (µs).
    Advance(u64),
    /// Push the next item at the current time.
    Push,
    /// Poll at the current time.
    Poll,
    /// Sleep until `poll_timeout` (if any) and poll: must yield a batch.
    Honour,
    /// Flush at the current time (shutdown).
    Flush,
    /// Replace the configuration with this linger.
    SetLinger(Duration),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..150_000).prop_map(Op::Advance),
        5 => Just(Op::Push),
        2 => Just(Op::Poll),
        1 => Just(Op::Honour),
        1 => Just(Op::Flush),
        1 => linger().prop_map(Op::SetLinger),
    ]
}

fn linger() -> impl Strategy<Value = Duration> {
    prop_oneof![
        1 => Just(Duration::ZERO),
        1 => Just(Duration::from_millis(100)),
        2 => (1u64..200_000).prop_map(Duration::from_micros),
    ]
}

/// The reference: a FIFO of (item, arrival) with room for `n`.
struct Model {
    queue: VecDeque<(u64, Instant)>,
    n: usize,
    linger: Duration,
}

impl Model {
    fn push(&mut self, now: Instant, item: u64) -> bool {
        let fits = self.queue.len() < self.n;
        if fits {
            self.queue.push_back((item, now));
        }
        fits
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let &(_, oldest) = self.queue.front()?;
        Some(if self.queue.len() == self.n {
            oldest
        } else {
            oldest + self.linger
        })
    }

    fn due(&self, now: Instant) -> Option<FlushReason> {
        let &(_, oldest) = self.queue.front()?;
        if self.queue.len() == self.n {
            Some(FlushReason::Size)
        } else if now >= oldest + self.linger {
            Some(FlushReason::Linger)
        } else {
            None
        }
    }

    fn take(&mut self, reason: FlushReason) -> (Vec<u64>, FlushReason, Instant) {
        let oldest = self.queue.front().expect("non-empty").1;
        let items = self.queue.drain(..).map(|(item, _)| item).collect();
        (items, reason, oldest)
    }

    fn poll(&mut self, now: Instant) -> Option<(Vec<u64>, FlushReason, Instant)> {
        let reason = self.due(now)?;
        Some(self.take(reason))
    }

    fn flush(&mut self, now: Instant) -> Option<(Vec<u64>, FlushReason, Instant)> {
        self.queue.front()?;
        let reason = self.due(now).unwrap_or(FlushReason::Manual);
        Some(self.take(reason))
    }
}

/// Drives a batcher and the model side by side.
struct Run<const N: usize> {
    batcher: Batcher<u64, N>,
    model: Model,
    now: Instant,
    next_item: u64,
    accepted: Vec<u64>,
    emitted: Vec<u64>,
}

impl<const N: usize> Run<N> {
    fn new(linger: Duration) -> Self {
        Run {
            batcher: Batcher::new(BatcherConfig { linger }),
            model: Model {
                queue: VecDeque::new(),
                n: N,
                linger,
            },
            now: Instant::ZERO,
            next_item: 0,
            accepted: Vec::new(),
            emitted: Vec::new(),
        }
    }

    fn push(&mut self) -> Result<(), TestCaseError> {
        let item = self.next_item;
        self.next_item += 1;
        let got = self.batcher.push(self.now, item);
        let fits = self.model.push(self.now, item);
        prop_assert_eq!(got.is_ok(), fits, "push Full iff N items wait");
        match got {
            Ok(()) => self.accepted.push(item),
            Err(Full(back)) => prop_assert_eq!(back, item, "Full hands the item back"),
        }
        Ok(())
    }

    fn record(
        &mut self,
        got: Option<Batch<u64, N>>,
        want: Option<(Vec<u64>, FlushReason, Instant)>,
    ) -> Result<Option<Batch<u64, N>>, TestCaseError> {
        let got_view = got
            .as_ref()
            .map(|b| (b.items.to_vec(), b.reason, b.oldest_at));
        prop_assert_eq!(&got_view, &want);
        if let Some(batch) = &got {
            prop_assert!(!batch.items.is_empty() && batch.items.len() <= N);
            self.emitted.extend_from_slice(&batch.items);
        }
        Ok(got)
    }

    fn poll(&mut self) -> Result<Option<Batch<u64, N>>, TestCaseError> {
        let got = self.batcher.poll_batch(self.now);
        let want = self.model.poll(self.now);
        let got = self.record(got, want)?;
        if got.is_none() {
            // No busy loop: when nothing is due, the deadline is strictly later.
            if let Some(t) = self.batcher.poll_timeout() {
                prop_assert!(t > self.now);
            }
        }
        Ok(got)
    }

    fn set_linger(&mut self, linger: Duration) {
        self.batcher.set_config(BatcherConfig { linger });
        self.model.linger = linger;
    }

    fn honour(&mut self) -> Result<(), TestCaseError> {
        if let Some(t) = self.batcher.poll_timeout() {
            self.now = self.now.max(t);
            prop_assert!(self.poll()?.is_some(), "poll at poll_timeout yields");
        }
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Advance(us) => self.now += Duration::from_micros(us),
            Op::Push => self.push()?,
            Op::Poll => {
                let _ = self.poll()?;
            }
            Op::Honour => self.honour()?,
            Op::SetLinger(linger) => self.set_linger(linger),
            Op::Flush => {
                let got = self.batcher.flush(self.now);
                let want = self.model.flush(self.now);
                let _ = self.record(got, want)?;
            }
        }
        prop_assert_eq!(self.batcher.config().linger, self.model.linger);
        prop_assert_eq!(self.batcher.poll_timeout(), self.model.poll_timeout());
        prop_assert_eq!(self.batcher.len(), self.model.queue.len());
        Ok(())
    }

    /// Flushes what is left and checks every accepted item came out once, in order.
    fn finish(mut self) -> Result<(), TestCaseError> {
        let got = self.batcher.flush(self.now);
        let want = self.model.flush(self.now);
        let _ = self.record(got, want)?;
        prop_assert!(self.batcher.is_empty());
        prop_assert_eq!(&self.emitted, &self.accepted);
        Ok(())
    }
}

fn against_model<const N: usize>(linger: Duration, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut run = Run::<N>::new(linger);
    for op in ops {
        run.step(op)?;
    }
    run.finish()
}

/// A host that sleeps until `poll_timeout` whenever it comes before the next event.
fn honouring_host<const N: usize>(linger: Duration, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut run = Run::<N>::new(linger);
    let mut arrivals = Vec::new();
    let mut changed_at = Instant::ZERO;
    for op in ops {
        let target = match *op {
            Op::Advance(us) => run.now + Duration::from_micros(us),
            _ => run.now,
        };
        while let Some(t) = run.batcher.poll_timeout().filter(|&t| t <= target) {
            run.now = run.now.max(t);
            let batch = run.poll()?;
            prop_assert!(batch.is_some(), "poll at poll_timeout yields");
            for item in batch.into_iter().flat_map(|b| b.items) {
                let arrived: Instant = arrivals[item as usize];
                let due = (arrived + run.model.linger).max(changed_at);
                prop_assert!(run.now <= due, "item {} waited past its linger", item);
            }
        }
        run.now = target;
        match *op {
            Op::Push => {
                arrivals.push(run.now);
                run.push()?;
                prop_assert!(run.batcher.len() <= N);
            }
            Op::SetLinger(linger) => {
                run.set_linger(linger);
                changed_at = run.now;
            }
            _ => {}
        }
    }
    run.finish()
}

fn config() -> ProptestConfig {
    heidi_tests::proptest_config(256)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn batcher_matches_the_model(
        n in 0usize..3,
        linger in linger(),
        ops in prop::collection::vec(op(), 0..200),
    ) {
        match n {
            0 => against_model::<1>(linger, &ops)?,
            1 => against_model::<3>(linger, &ops)?,
            _ => against_model::<8>(linger, &ops)?,
        }
    }

    #[test]
    fn honoured_deadlines_bound_every_wait(
        n in 0usize..3,
        linger in linger(),
        ops in prop::collection::vec(op(), 0..200),
    ) {
        match n {
            0 => honouring_host::<1>(linger, &ops)?,
            1 => honouring_host::<5>(linger, &ops)?,
            _ => honouring_host::<8>(linger, &ops)?,
        }
    }
}

/// A host with a byte cap: pushes items of random sizes; an item handed back as `Full` waits
/// (like the sidecar's held submission) until the due batch is polled, then goes first.
fn byte_capped<const N: usize>(
    max_bytes: usize,
    sizes: &[usize],
    polls: &[bool],
) -> Result<(), TestCaseError> {
    let mut b: Batcher<u64, N> = Batcher::new(BatcherConfig {
        linger: Duration::from_millis(100),
    })
    .with_max_bytes(max_bytes);
    let now = Instant::ZERO;
    let (mut accepted, mut emitted, mut held) = (Vec::new(), Vec::new(), None);
    let check = |batch: Batch<u64, N>, emitted: &mut Vec<u64>| {
        let bytes: usize = batch.items.iter().map(|&i| sizes[i as usize]).sum();
        prop_assert!(!batch.items.is_empty() && batch.items.len() <= N);
        prop_assert!(
            bytes <= max_bytes,
            "batch of {} bytes above the cap {}",
            bytes,
            max_bytes
        );
        emitted.extend_from_slice(&batch.items);
        Ok(())
    };
    for (i, (&size, &poll)) in sizes.iter().zip(polls.iter().cycle()).enumerate() {
        if poll || held.is_some() {
            if let Some(batch) = b.poll_batch(now) {
                check(batch, &mut emitted)?;
            }
            if let Some((item, bytes)) = held.take() {
                b.push_sized(now, item, bytes)
                    .expect("a held item fits an empty batch");
                accepted.push(item);
            }
        }
        match b.push_sized(now, i as u64, size) {
            Ok(()) => accepted.push(i as u64),
            Err(PushSizedError::Full(Full(item))) => {
                prop_assert!(
                    b.is_full() && b.poll_timeout() == Some(now),
                    "Full means due now"
                );
                held = Some((item, size));
            }
            Err(PushSizedError::TooLarge { item, error }) => {
                prop_assert_eq!(item, i as u64);
                prop_assert!(size > max_bytes && error.bytes == size);
            }
        }
        prop_assert!(b.bytes() <= max_bytes);
    }
    if let Some(batch) = b.flush(now) {
        check(batch, &mut emitted)?;
    }
    if let Some((item, bytes)) = held.take() {
        b.push_sized(now, item, bytes).expect("fits an empty batch");
        accepted.push(item);
        check(b.flush(now).expect("one item"), &mut emitted)?;
    }
    prop_assert_eq!(emitted, accepted, "every accepted item once, in order");
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_byte_cap_is_never_exceeded_and_nothing_is_lost(
        n in 0usize..3,
        max_bytes in 1usize..200,
        sizes in prop::collection::vec(0usize..250, 0..200),
        polls in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        match n {
            0 => byte_capped::<1>(max_bytes, &sizes, &polls)?,
            1 => byte_capped::<3>(max_bytes, &sizes, &polls)?,
            _ => byte_capped::<8>(max_bytes, &sizes, &polls)?,
        }
    }
}
