//! Operation sequences against the batcher. Invariants: every item pushed with `Ok` comes out
//! exactly once and in order, no batch is empty or larger than N, `Full` hands the very item
//! back, and a poll at or after `poll_timeout` always yields a batch.
#![no_main]

use arbitrary::Arbitrary;
use heidi_core::batcher::{Batcher, BatcherConfig};
use heidi_core::{Duration, Instant};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Advance(u32),
    Push,
    Poll,
    Honour,
    Flush,
    SetLinger(u32),
}

const N: usize = 5;

fuzz_target!(|input: (u32, Vec<Op>)| {
    let (linger_us, ops) = input;
    let config = BatcherConfig {
        linger: Duration::from_micros(u64::from(linger_us)),
    };
    let mut b: Batcher<u64, N> = Batcher::new(config);
    let mut now = Instant::from_secs(1);
    let (mut next_in, mut next_out) = (0u64, 0u64);
    let take = |batch: Option<heidi_core::batcher::Batch<u64, N>>, next_out: &mut u64| {
        if let Some(batch) = batch {
            assert!(!batch.items.is_empty() && batch.items.len() <= N);
            for &item in &batch.items {
                assert_eq!(item, *next_out, "items come out once, in order");
                *next_out += 1;
            }
        }
    };
    for op in ops.iter().take(5_000) {
        match *op {
            Op::Advance(us) => now += Duration::from_micros(u64::from(us)),
            Op::Push => match b.push(now, next_in) {
                Ok(()) => next_in += 1,
                Err(full) => {
                    assert_eq!(full.into_inner(), next_in);
                    assert_eq!(b.len(), N);
                }
            },
            Op::Poll => take(b.poll_batch(now), &mut next_out),
            Op::Honour => {
                if let Some(t) = b.poll_timeout() {
                    now = now.max(t);
                    let batch = b.poll_batch(now);
                    assert!(batch.is_some(), "a poll at the deadline yields a batch");
                    take(batch, &mut next_out);
                }
            }
            Op::Flush => take(b.flush(now), &mut next_out),
            Op::SetLinger(us) => b.set_config(BatcherConfig {
                linger: Duration::from_micros(u64::from(us)),
            }),
        }
        assert_eq!(
            next_in - next_out,
            b.len() as u64,
            "nothing lost or duplicated"
        );
    }
});
