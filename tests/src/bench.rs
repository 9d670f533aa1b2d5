//! Shared pieces of the criterion benchmarks: a recorder of per-iteration times that lets a
//! benchmark print its own median next to a peer's, measured in the same run, with the ratio.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Per-iteration times (picoseconds) of each timed batch, by benchmark id.
///
/// Use it inside criterion's `iter_custom`: `b.iter_custom(|iters| rec.time("id", iters, || …))`.
#[derive(Default)]
pub struct Recorder {
    samples: RefCell<HashMap<String, Vec<u128>>>,
}

impl Recorder {
    /// Times `iters` calls of `f`, records the per-iteration time of the batch (batches shorter
    /// than 100 µs are too coarse and are not recorded), and returns the elapsed time.
    pub fn time<F: FnMut()>(&self, id: &str, iters: u64, mut f: F) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        let elapsed = start.elapsed();
        if elapsed >= Duration::from_micros(100) {
            let ps = elapsed.as_nanos() * 1_000 / u128::from(iters.max(1));
            self.samples
                .borrow_mut()
                .entry(id.to_owned())
                .or_default()
                .push(ps);
        }
        elapsed
    }

    /// Median per-iteration time over the last 100 batches of `id`, in picoseconds.
    pub fn median_ps(&self, id: &str) -> Option<u128> {
        let samples = self.samples.borrow();
        let all = samples.get(id)?;
        let mut last: Vec<u128> = all[all.len().saturating_sub(100)..].to_vec();
        last.sort_unstable();
        last.get(last.len() / 2).copied()
    }

    /// Prints `what: ours X ns, <peer> Y ns, ratio X/Y` from the medians of two ids.
    pub fn compare(&self, what: &str, ours: &str, peer_name: &str, peer: &str) {
        match (self.median_ps(ours), self.median_ps(peer)) {
            (Some(x), Some(y)) => println!(
                "{what}: ours {} ns, {peer_name} {} ns, ratio {}",
                fixed3(x, 1_000),
                fixed3(y, 1_000),
                fixed3(x, y)
            ),
            _ => println!("{what}: not measured in this run (filtered out)"),
        }
    }
}

/// `num / den` rounded to three decimals, in integer arithmetic.
pub fn fixed3(num: u128, den: u128) -> String {
    let milli = (num * 1_000 + den / 2) / den.max(1);
    format!("{}.{:03}", milli / 1_000, milli % 1_000)
}

/// A fixed pseudo-random permutation of `0..n` (xorshift, Fisher–Yates), for visiting keys in
/// an order the cache cannot predict, the same in every run.
pub fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = usize::try_from(x % (i as u64 + 1)).unwrap();
        order.swap(i, j);
    }
    order
}

/// Steps through an order (from [`shuffled`]) cyclically.
pub struct Cycle<'a> {
    order: &'a [usize],
    i: usize,
}

impl<'a> Cycle<'a> {
    /// Starts at the first element of `order` (not empty).
    pub fn new(order: &'a [usize]) -> Cycle<'a> {
        Cycle { order, i: 0 }
    }

    /// The next index, wrapping around.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> usize {
        let k = self.order[self.i];
        self.i += 1;
        if self.i == self.order.len() {
            self.i = 0;
        }
        k
    }
}
