//! Scenario `batching`: a sidecar gathers requests into batches of at most `batch_max`
//! (≤ 8) with heidi-core's [`Batcher`], under a load that rises linearly from
//! `rate_start_per_sec` to `rate_end_per_sec`.
//!
//! A batch goes upstream when it is full or its oldest item has waited `linger_ms`
//! (heidi-core decides which, and says when via `poll_timeout`). At low load batches are
//! small and items wait up to the linger; as load rises batches fill and go out by size, and
//! the wait shrinks. Each batch takes `latency_ms` + `per_item_us` per item (+ jitter) and
//! fails as a whole with `fail_permille`. At the end the queue is flushed and the run goes on
//! (without ticks) until the last batch is answered, so every item is accounted for:
//! `items = batched_items + shed` and `batched_items = answered_items` unless the step cap
//! stopped the run. An arrival that finds [`MAX_IN_FLIGHT`] items queued or in unanswered
//! batches is shed.

use super::{MAX_IN_FLIGHT, check_rate, encode, parse};
use crate::driver::{self, Parts, Run};
use crate::engine::{Engine, Timer};
use crate::error::{SimError, check_range};
use crate::json::Value;
use crate::latency::Latencies;
use crate::rng::Rng;
use crate::trace::{EventLog, Ticker, Trace, check_timeline, milli_ratio};
use crate::upstream::Upstream;
use heidi_core::batcher::{Batch, Batcher, BatcherConfig, FlushReason, MAX_BATCH_ITEMS};
use heidi_core::{Duration, Instant};

/// Longest `linger_ms` (one minute).
pub const MAX_LINGER_MS: u64 = 60_000;
/// Largest `per_item_us` (one minute per item).
pub const MAX_PER_ITEM_US: u64 = 60_000_000;

/// The scenario's parameters (defaults: 20 → 2000 requests/s over 10 s, batches of 8,
/// linger 20 ms, upstream 10 ms + 0.5 ms per item + up to 5 ms jitter, no failures).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Simulated time, ms.
    pub duration_ms: u64,
    /// Tick width, ms.
    pub tick_ms: u64,
    /// Arrival rate at the start, per second.
    pub rate_start_per_sec: u32,
    /// Arrival rate at the end, per second.
    pub rate_end_per_sec: u32,
    /// Largest batch (1..=8).
    pub batch_max: u32,
    /// Longest wait of the oldest queued item, ms.
    pub linger_ms: u64,
    /// Upstream base latency per batch, ms.
    pub latency_ms: u64,
    /// Upstream latency per item in the batch, µs.
    pub per_item_us: u64,
    /// Upstream latency jitter, ms.
    pub latency_jitter_ms: u64,
    /// Probability that a batch fails, permille.
    pub fail_permille: u32,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            duration_ms: 10_000,
            tick_ms: 100,
            rate_start_per_sec: 20,
            rate_end_per_sec: 2_000,
            batch_max: 8,
            linger_ms: 20,
            latency_ms: 10,
            per_item_us: 500,
            latency_jitter_ms: 5,
            fail_permille: 0,
        }
    }
}

/// One tick's aggregates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Start of the tick, ms.
    pub t_ms: u64,
    /// Offered load at the tick's start, requests per second.
    pub rate_per_sec: u64,
    /// Requests that arrived.
    pub arrivals: u64,
    /// Requests shed because [`MAX_IN_FLIGHT`] items were queued or in flight.
    pub shed: u64,
    /// Batches sent upstream (= upstream calls).
    pub batches: u64,
    /// Items in those batches.
    pub batch_items: u64,
    /// Mean batch size in thousandths of an item (`null` without batches).
    pub batch_mean_milli: Option<u64>,
    /// `batch_sizes[i]`: batches of `i + 1` items.
    pub batch_sizes: Vec<u64>,
    /// Batches sent because they were full.
    pub flush_size: u64,
    /// Batches sent because the linger expired.
    pub flush_linger: u64,
    /// Items queued at the tick's end.
    pub queued: u64,
    /// Batches that failed (ended in this tick).
    pub failed_batches: u64,
    /// Median latency (arrival to batch answer) of the items answered in the tick, µs.
    pub latency_p50_us: Option<u64>,
    /// 99th percentile of the same, µs.
    pub latency_p99_us: Option<u64>,
}

/// A notable event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Batches started going out for another reason than the previous one (`size` once the
    /// load fills batches within the linger, `linger` when it no longer does).
    FlushReason {
        /// When, µs.
        t_us: u64,
        /// `size`, `linger` or `manual`.
        reason: &'static str,
        /// The offered load then, per second.
        rate_per_sec: u64,
    },
    /// The run stopped at the step cap.
    StepCap {
        /// When, µs.
        t_us: u64,
    },
}

/// Totals of the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Requests.
    pub items: u64,
    /// Requests shed because [`MAX_IN_FLIGHT`] items were queued or in flight.
    pub shed: u64,
    /// Batches (upstream calls).
    pub batches: u64,
    /// Items sent in batches (`items − shed` unless the step cap stopped the run).
    pub batched_items: u64,
    /// Items whose batch was answered (`batched_items` unless the step cap stopped the run).
    pub answered_items: u64,
    /// Mean batch size, thousandths of an item.
    pub batch_mean_milli: Option<u64>,
    /// Largest batch seen.
    pub batch_largest: u64,
    /// Batches sent because they were full.
    pub flush_size: u64,
    /// Batches sent because the linger expired.
    pub flush_linger: u64,
    /// Batches sent by the final flush.
    pub flush_manual: u64,
    /// Batches that failed.
    pub failed_batches: u64,
    /// Median item latency (arrival to its batch's answer) of every answered item, µs.
    pub latency_p50_us: Option<u64>,
    /// 99th percentile item latency, µs.
    pub latency_p99_us: Option<u64>,
}

/// The trace of this scenario.
pub type BatchingTrace = Trace<Params, Tick, Event, Summary>;

/// The engine's events.
pub enum Ev {
    /// The next request.
    Arrival,
    /// The batcher's linger deadline.
    Linger(Instant),
    /// A batch's answer.
    Answer(Answer),
}

/// A batch's answer: its items' arrival times and whether it succeeded.
pub struct Answer {
    arrivals: [Instant; MAX_BATCH_ITEMS],
    len: usize,
    ok: bool,
}

/// Parses `params` and runs the scenario.
///
/// # Errors
/// Bad parameters.
pub fn run(seed: u64, max_steps: u64, params: &Value) -> Result<Vec<u8>, SimError> {
    Ok(encode(&simulate(seed, max_steps, parse(params)?)?))
}

/// Runs the scenario.
///
/// # Errors
/// Bad parameters.
pub fn simulate(seed: u64, max_steps: u64, p: Params) -> Result<BatchingTrace, SimError> {
    check_timeline(p.duration_ms, p.tick_ms)?;
    check_rate("rate_start_per_sec", p.rate_start_per_sec)?;
    check_rate("rate_end_per_sec", p.rate_end_per_sec)?;
    check_range("batch_max", p.batch_max.into(), 1, MAX_BATCH_ITEMS as u64)?;
    check_range("linger_ms", p.linger_ms, 0, MAX_LINGER_MS)?;
    check_range("per_item_us", p.per_item_us, 0, MAX_PER_ITEM_US)?;
    let upstream = Upstream::new(p.fail_permille, p.latency_ms, p.latency_jitter_ms)?;
    let world = World::new(seed, &p, upstream)?;
    let run = Run {
        scenario: "batching",
        seed,
        max_steps,
        duration_ms: p.duration_ms,
        tick_ms: p.tick_ms,
    };
    driver::drive(run, p, world)
}

/// A batch on its way: the items' arrival times (the first `len`) and why it went.
struct Sent {
    arrivals: [Instant; MAX_BATCH_ITEMS],
    len: usize,
    reason: FlushReason,
}

impl<const N: usize> From<Batch<Instant, N>> for Sent {
    fn from(b: Batch<Instant, N>) -> Sent {
        let mut arrivals = [Instant::ZERO; MAX_BATCH_ITEMS];
        let len = b.items.len().min(MAX_BATCH_ITEMS);
        for (slot, &at) in arrivals.iter_mut().zip(b.items.iter()) {
            *slot = at;
        }
        Sent {
            arrivals,
            len,
            reason: b.reason,
        }
    }
}

struct World {
    batch_max: usize,
    rng: Rng,
    arrivals_rng: Rng,
    rate_start: u64,
    rate_end: u64,
    duration_us: u64,
    per_item_us: u64,
    upstream: Upstream,
    batcher: Batcher<Instant>,
    linger: Timer,
    in_flight: u64,
    end: Instant,
    last_reason: Option<FlushReason>,
    tick: Tick,
    tick_latency: Latencies,
    all_latency: Latencies,
    ticks: Vec<Tick>,
    events: EventLog<Event>,
    s: Summary,
}

impl World {
    fn new(seed: u64, p: &Params, upstream: Upstream) -> Result<World, SimError> {
        let mut rng = Rng::new(seed);
        let arrivals_rng = rng.fork(1);
        let config = BatcherConfig {
            linger: Duration::from_millis(p.linger_ms),
        };
        let batch_max = p.batch_max as usize;
        // `batch_max` was checked to be 1..=8 (`check_range` above); a refusal is a simulator
        // bug, reported as such (an `expect` would pull the error's Debug into the module).
        let batcher = Batcher::with_limit(config, batch_max)
            .map_err(|e| SimError::internal(format_args!("batcher: {e}")))?;
        Ok(World {
            batch_max,
            rng,
            arrivals_rng,
            rate_start: p.rate_start_per_sec.into(),
            rate_end: p.rate_end_per_sec.into(),
            duration_us: p.duration_ms * 1_000,
            per_item_us: p.per_item_us,
            upstream,
            batcher,
            linger: Timer::default(),
            in_flight: 0,
            end: Instant::from_millis(p.duration_ms),
            last_reason: None,
            tick: Tick {
                rate_per_sec: p.rate_start_per_sec.into(),
                batch_sizes: vec![0; batch_max],
                ..Tick::default()
            },
            tick_latency: Latencies::default(),
            all_latency: Latencies::default(),
            ticks: Vec::new(),
            events: EventLog::default(),
            s: Summary::default(),
        })
    }

    /// The offered load at `t`: linear from the start rate to the end rate.
    fn rate_at(&self, t: Instant) -> u64 {
        let t = t.as_micros().min(self.duration_us);
        let (a, b, d) = (self.rate_start, self.rate_end, self.duration_us.max(1));
        if b >= a {
            a + (b - a) * t / d
        } else {
            a - (a - b) * t / d
        }
    }

    /// Gap to the next arrival under the load at `now` (Poisson with a rate that changes
    /// slowly compared with the gaps).
    fn gap(&mut self, now: Instant) -> Duration {
        let rate = self.rate_at(now);
        Duration::from_micros(self.arrivals_rng.poisson_gap_us(rate))
    }

    fn arrive(&mut self, engine: &mut Engine<Ev>) {
        let now = engine.now();
        self.tick.arrivals += 1;
        self.s.items += 1;
        if self.in_flight >= MAX_IN_FLIGHT {
            self.tick.shed += 1;
            self.s.shed += 1;
            return;
        }
        self.in_flight += 1;
        if self.batcher.push(now, now).is_err() {
            // N queued: the batch is due now; send it, then queue the newcomer.
            self.drain(engine);
            let again = self.batcher.push(now, now);
            debug_assert!(again.is_ok(), "a drained batcher has room");
        }
        self.drain(engine);
    }

    /// Sends every batch that is due now.
    fn drain(&mut self, engine: &mut Engine<Ev>) {
        let now = engine.now();
        while let Some(batch) = self.batcher.poll_batch(now) {
            self.send(engine, batch.into());
        }
    }

    fn send(&mut self, engine: &mut Engine<Ev>, batch: Sent) {
        let n = batch.len as u64;
        debug_assert!((1..=self.batch_max as u64).contains(&n));
        self.tick.batches += 1;
        self.tick.batch_items += n;
        if let Some(slot) = self.tick.batch_sizes.get_mut(batch.len.saturating_sub(1)) {
            *slot += 1;
        }
        self.s.batches += 1;
        self.s.batched_items += n;
        self.s.batch_largest = self.s.batch_largest.max(n);
        let reason = match batch.reason {
            FlushReason::Size => {
                self.tick.flush_size += 1;
                self.s.flush_size += 1;
                "size"
            }
            FlushReason::Linger => {
                self.tick.flush_linger += 1;
                self.s.flush_linger += 1;
                "linger"
            }
            FlushReason::Manual => {
                self.s.flush_manual += 1;
                "manual"
            }
        };
        if self.last_reason != Some(batch.reason) {
            self.last_reason = Some(batch.reason);
            let now = engine.now();
            let (t_us, rate_per_sec) = (now.as_micros(), self.rate_at(now));
            self.events.push(Event::FlushReason {
                t_us,
                reason,
                rate_per_sec,
            });
        }
        let call = self.upstream.call(&mut self.rng);
        let latency = call.latency + Duration::from_micros(self.per_item_us.saturating_mul(n));
        engine.after(
            latency,
            Ev::Answer(Answer {
                arrivals: batch.arrivals,
                len: batch.len,
                ok: call.ok,
            }),
        );
    }

    fn answer(&mut self, now: Instant, answer: &Answer) {
        if !answer.ok {
            self.tick.failed_batches += 1;
            self.s.failed_batches += 1;
        }
        let arrivals = answer.arrivals.get(..answer.len).unwrap_or_default();
        self.in_flight -= arrivals.len() as u64;
        self.s.answered_items += arrivals.len() as u64;
        for &at in arrivals {
            let d = now.saturating_duration_since(at);
            self.tick_latency.add(d);
            self.all_latency.add(d);
        }
    }
}

impl driver::World for World {
    type Ev = Ev;
    type Tick = Tick;
    type Event = Event;
    type Summary = Summary;

    fn start(&mut self, engine: &mut Engine<Ev>) {
        let first = self.gap(Instant::ZERO);
        engine.after(first, Ev::Arrival);
    }

    fn handle(&mut self, engine: &mut Engine<Ev>, ev: Ev) -> Result<(), SimError> {
        match ev {
            Ev::Arrival => {
                self.arrive(engine);
                let gap = self.gap(engine.now());
                if engine.now().saturating_add(gap) < self.end {
                    engine.after(gap, Ev::Arrival);
                }
            }
            Ev::Linger(at) => {
                if self.linger.fire(at) {
                    self.drain(engine);
                }
            }
            Ev::Answer(answer) => self.answer(engine.now(), &answer),
        }
        let due = self.batcher.poll_timeout();
        self.linger.sync(engine, due, Ev::Linger);
        Ok(())
    }

    /// Flushes the queue and keeps going until every batch is answered.
    fn wind_down(&mut self, engine: &mut Engine<Ev>) -> bool {
        if let Some(batch) = self.batcher.flush(engine.now()) {
            self.send(engine, batch.into());
        }
        self.linger.sync(engine, None, Ev::Linger);
        true
    }

    fn step_cap_event(t_us: u64) -> Event {
        Event::StepCap { t_us }
    }

    fn events(&mut self) -> &mut EventLog<Event> {
        &mut self.events
    }

    fn finish(mut self, _end: Instant) -> Parts<Tick, Event, Summary> {
        let summary = self.summary();
        Parts {
            ticks: self.ticks,
            events: self.events,
            summary,
            journal: None,
        }
    }

    fn close_tick(&mut self, _now: Instant, ticker: &Ticker) {
        let next = Tick {
            rate_per_sec: self.rate_at(ticker.boundary()),
            batch_sizes: vec![0; self.batch_max],
            ..Tick::default()
        };
        let mut tick = core::mem::replace(&mut self.tick, next);
        tick.t_ms = ticker.start_ms();
        tick.queued = self.batcher.len() as u64;
        tick.batch_mean_milli = milli_ratio(tick.batch_items, tick.batches);
        (tick.latency_p50_us, tick.latency_p99_us) = self.tick_latency.take_p50_p99();
        self.ticks.push(tick);
    }
}

impl World {
    fn summary(&mut self) -> Summary {
        let mut s = core::mem::take(&mut self.s);
        s.batch_mean_milli = milli_ratio(s.batched_items, s.batches);
        s.latency_p50_us = self.all_latency.percentile(50);
        s.latency_p99_us = self.all_latency.percentile(99);
        s
    }
}

crate::json_object!(Params {
    duration_ms,
    tick_ms,
    rate_start_per_sec,
    rate_end_per_sec,
    batch_max,
    linger_ms,
    latency_ms,
    per_item_us,
    latency_jitter_ms,
    fail_permille
});
crate::json_fields!(Tick {
    t_ms,
    rate_per_sec,
    arrivals,
    shed,
    batches,
    batch_items,
    batch_mean_milli,
    batch_sizes,
    flush_size,
    flush_linger,
    queued,
    failed_batches,
    latency_p50_us,
    latency_p99_us
});
crate::json_fields!(Summary {
    items,
    shed,
    batches,
    batched_items,
    answered_items,
    batch_mean_milli,
    batch_largest,
    flush_size,
    flush_linger,
    flush_manual,
    failed_batches,
    latency_p50_us,
    latency_p99_us
});
crate::json_enum!(Event {
    FlushReason "flush_reason" { t_us, reason, rate_per_sec },
    StepCap "step_cap" { t_us },
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::MAX_RATE_PER_SEC;

    #[test]
    fn no_item_is_lost_duplicated_or_over_batched() {
        for batch_max in 1..=8 {
            let p = Params {
                batch_max,
                ..Params::default()
            };
            let t = simulate(7, 10_000_000, p).unwrap();
            let s = &t.summary;
            assert_eq!(s.items, s.batched_items, "N={batch_max}");
            assert_eq!(s.shed, 0);
            // The final batches are answered after the last tick.
            assert_eq!(s.answered_items, s.batched_items, "N={batch_max}");
            assert!(t.end_ms >= t.params.duration_ms);
            assert!(s.batch_largest <= u64::from(batch_max));
            assert!(
                t.ticks
                    .iter()
                    .all(|k| k.batch_sizes.len() == batch_max as usize)
            );
            let sized: u64 = t
                .ticks
                .iter()
                .map(|k| {
                    k.batch_sizes
                        .iter()
                        .enumerate()
                        .map(|(i, n)| (i as u64 + 1) * n)
                        .sum::<u64>()
                })
                .sum();
            // The final manual flush is not in a tick.
            assert!(sized <= s.batched_items && s.batched_items - sized <= u64::from(batch_max));
        }
    }

    #[test]
    fn rising_load_fills_the_batches_and_shortens_the_wait() {
        let t = simulate(1, 10_000_000, Params::default()).unwrap();
        // 20 requests/s at first: about one item per 20 ms linger; 2000/s at the end: full.
        let (first, last) = (&t.ticks[..3], &t.ticks[t.ticks.len() - 10..]);
        let mean = |ks: &[Tick]| {
            milli_ratio(
                ks.iter().map(|k| k.batch_items).sum(),
                ks.iter().map(|k| k.batches).sum(),
            )
            .unwrap_or(0)
        };
        assert!(mean(first) < 2_500, "{}", mean(first));
        assert!(mean(last) > 7_000, "{}", mean(last));
        assert!(first.iter().map(|k| k.flush_linger).sum::<u64>() > 0);
        assert!(
            last.iter().map(|k| k.flush_size).sum::<u64>()
                > last.iter().map(|k| k.flush_linger).sum::<u64>()
        );
        assert!(
            t.events
                .iter()
                .any(|e| matches!(e, Event::FlushReason { reason: "size", .. }))
        );
        // No item waits past the linger: latency ≤ linger + upstream (10 ms + 8 × 0.5 ms + 5 ms).
        assert!(t.summary.latency_p99_us.unwrap() <= 20_000 + 19_000);
        assert!(t.ticks.iter().all(|k| k.queued < 8));
    }

    #[test]
    fn the_last_batch_is_answered() {
        // A linger longer than the run: everything goes out in the final flush.
        let p = Params {
            duration_ms: 1_000,
            rate_start_per_sec: 5,
            rate_end_per_sec: 5,
            batch_max: 8,
            linger_ms: 60_000,
            ..Params::default()
        };
        let t = simulate(2, 10_000_000, p).unwrap();
        let s = &t.summary;
        assert!(s.items > 0 && s.items < 8, "{s:?}");
        assert_eq!(s.flush_manual, 1);
        assert_eq!(s.answered_items, s.items);
        assert!(s.latency_p50_us.is_some());
    }

    #[test]
    fn the_in_flight_cap_sheds_items() {
        // 100 000/s into batches of 1 that take a minute each: the cap is reached in a second.
        let p = Params {
            duration_ms: 1_500,
            rate_start_per_sec: MAX_RATE_PER_SEC,
            rate_end_per_sec: MAX_RATE_PER_SEC,
            batch_max: 1,
            latency_ms: 60_000,
            ..Params::default()
        };
        let t = simulate(1, 10_000_000, p).unwrap();
        let s = &t.summary;
        assert!(!t.step_cap_reached);
        assert!(s.shed > 30_000, "{s:?}");
        assert_eq!(s.items, s.batched_items + s.shed);
        assert_eq!(s.answered_items, s.batched_items);
        assert!(s.batched_items <= MAX_IN_FLIGHT + 1, "{s:?}");
    }

    #[test]
    fn limits_are_reached_and_named() {
        use crate::scenario::testing::{assert_limits, assert_refused};
        use serde_json::json;
        assert_limits(
            "batching",
            &[
                (
                    json!({"batch_max": 8}),
                    json!({"batch_max": 9}),
                    "batch_max",
                ),
                (
                    json!({"rate_start_per_sec": MAX_RATE_PER_SEC}),
                    json!({"rate_start_per_sec": MAX_RATE_PER_SEC + 1}),
                    "rate_start_per_sec",
                ),
                (
                    json!({"rate_end_per_sec": MAX_RATE_PER_SEC}),
                    json!({"rate_end_per_sec": MAX_RATE_PER_SEC + 1}),
                    "rate_end_per_sec",
                ),
                (
                    json!({"linger_ms": MAX_LINGER_MS}),
                    json!({"linger_ms": MAX_LINGER_MS + 1}),
                    "linger_ms",
                ),
                (
                    json!({"per_item_us": MAX_PER_ITEM_US}),
                    json!({"per_item_us": MAX_PER_ITEM_US + 1}),
                    "per_item_us",
                ),
                (
                    json!({"fail_permille": 1_000}),
                    json!({"fail_permille": 1_001}),
                    "fail_permille",
                ),
            ],
        );
        assert_refused(
            "batching",
            &[
                (json!({"batch_max": 0}), "batch_max"),
                (json!({"rate_start_per_sec": 0}), "rate_start_per_sec"),
            ],
        );
    }
}
