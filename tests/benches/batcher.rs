//! Batcher throughput: `heidi_core::batcher::Batcher<u64, 8>` against a plain
//! `std::collections::VecDeque<u64>` doing the same work (no crate peer is required).
//!
//! - `batcher_push`: 8 pushes into an empty queue (setup not timed), per item.
//! - `batcher_cycle`: the steady state, 8 pushes then the batch taken out and read, per item.
//!
//! After criterion's report, a summary re-times both pairs in the same process (median of 15
//! rounds) and prints heidi next to the peer with the ratio heidi / peer (target: push ≤ 10 ns).
//!
//! Run: `cargo bench -p heidi-tests --bench batcher` (quick: add
//! `-- --warm-up-time 1 --measurement-time 3`).

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Instant as StdInstant;

use criterion::{BatchSize, Criterion, Throughput};
use heidi_core::Instant;
use heidi_core::batcher::{Batcher, BatcherConfig};
use heidi_tests::bench::fixed3;

const N: usize = 8;
const NOW: Instant = Instant::from_secs(1);

fn fresh_batcher() -> Batcher<u64, N> {
    Batcher::new(BatcherConfig::DEFAULT)
}

fn fresh_deque() -> VecDeque<u64> {
    VecDeque::with_capacity(N)
}

fn heidi_push(b: &mut Batcher<u64, N>) {
    for i in 0..N as u64 {
        assert!(b.push(NOW, black_box(i)).is_ok());
    }
}

fn deque_push(q: &mut VecDeque<u64>) {
    for i in 0..N as u64 {
        q.push_back(black_box(i));
    }
}

/// Pushes N items, takes the batch and reads it.
fn heidi_cycle(b: &mut Batcher<u64, N>) -> u64 {
    heidi_push(b);
    let batch = b.poll_batch(NOW).expect("a full queue is due");
    batch.items.iter().fold(0, |acc, x| acc ^ x)
}

/// Pushes N items and drains them.
fn deque_cycle(q: &mut VecDeque<u64>) -> u64 {
    deque_push(q);
    q.drain(..N).fold(0, |acc, x| acc ^ x)
}

fn bench_push(c: &mut Criterion) {
    let mut g = c.benchmark_group("batcher_push");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("heidi", |b| {
        b.iter_batched_ref(fresh_batcher, heidi_push, BatchSize::SmallInput)
    });
    g.bench_function("vecdeque", |b| {
        b.iter_batched_ref(fresh_deque, deque_push, BatchSize::SmallInput)
    });
    g.finish();
}

fn bench_cycle(c: &mut Criterion) {
    let mut g = c.benchmark_group("batcher_cycle");
    g.throughput(Throughput::Elements(N as u64));
    let mut batcher = fresh_batcher();
    g.bench_function("heidi", |b| b.iter(|| heidi_cycle(&mut batcher)));
    let mut deque = fresh_deque();
    g.bench_function("vecdeque", |b| b.iter(|| deque_cycle(&mut deque)));
    g.finish();
}

const ROUNDS: usize = 15;
const BLOCK: usize = 4_096;

/// Median over rounds of picoseconds per item, for `run` returning (elapsed ns, items).
fn median_ps(mut run: impl FnMut() -> (u128, u128)) -> u128 {
    let mut per_item: Vec<u128> = (0..ROUNDS)
        .map(|_| {
            let (ns, items) = run();
            ns * 1_000 / items
        })
        .collect();
    per_item.sort_unstable();
    per_item[ROUNDS / 2]
}

/// Times `routine` over a block of fresh inputs (made before the clock starts).
fn time_fresh<T>(make: fn() -> T, routine: fn(&mut T)) -> (u128, u128) {
    let mut inputs: Vec<T> = (0..BLOCK).map(|_| make()).collect();
    let start = StdInstant::now();
    for input in &mut inputs {
        routine(black_box(input));
    }
    let ns = start.elapsed().as_nanos();
    drop(black_box(inputs));
    (ns, (BLOCK * N) as u128)
}

/// Times `cycle` repeated on one queue.
fn time_cycles<T>(queue: &mut T, cycle: fn(&mut T) -> u64) -> (u128, u128) {
    let start = StdInstant::now();
    for _ in 0..BLOCK * 8 {
        black_box(cycle(black_box(queue)));
    }
    (start.elapsed().as_nanos(), (BLOCK * 8 * N) as u128)
}

fn print_pair(name: &str, heidi_ps: u128, peer_ps: u128) {
    println!(
        "{name:<28} heidi {:>9} ns/item   VecDeque {:>9} ns/item   ratio {}",
        fixed3(heidi_ps, 1_000),
        fixed3(peer_ps, 1_000),
        fixed3(heidi_ps, peer_ps)
    );
}

fn summary() {
    println!("\nbatcher summary (same process, median of {ROUNDS} rounds, N = {N}):");
    let heidi = median_ps(|| time_fresh(fresh_batcher, heidi_push));
    let peer = median_ps(|| time_fresh(fresh_deque, deque_push));
    print_pair("push", heidi, peer);
    let (mut b, mut q) = (fresh_batcher(), fresh_deque());
    let heidi = median_ps(|| time_cycles(&mut b, heidi_cycle));
    let peer = median_ps(|| time_cycles(&mut q, deque_cycle));
    print_pair("push + take batch", heidi, peer);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_push(&mut c);
    bench_cycle(&mut c);
    c.final_summary();
    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    if !quick {
        summary();
    }
}
