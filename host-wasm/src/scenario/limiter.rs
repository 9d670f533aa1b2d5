//! Scenario `limiter`: clients at their own arrival rates, each held to a per-key limit by
//! heidi-core's keyed limiter, in front of an upstream that fails at `fail_permille` and
//! answers after `latency_ms` (+ jitter).
//!
//! Arrivals are Poisson per client. A granted request calls the upstream; a denied one is
//! counted (the client is told `retry_at` and does not resend, so the offered load stays what
//! was configured). An arrival that finds [`MAX_IN_FLIGHT`] calls in flight is shed before
//! the limiter is asked (counted in `shed`). The bucket level of every client is sampled at
//! each tick's end. Calls still in flight when the run ends are counted in
//! `in_flight_at_end`, so `upstream_calls = upstream_successes + upstream_failures +
//! in_flight_at_end`.

use super::{MAX_IN_FLIGHT, check_rate, encode, parse};
use crate::driver::{self, Parts, Run};
use crate::engine::Engine;
use crate::error::{SimError, check_range};
use crate::json::Value;
use crate::latency::Latencies;
use crate::rng::Rng;
use crate::trace::{EventLog, Ticker, Trace, check_timeline};
use crate::upstream::Upstream;
use heidi_core::key::{KeyHash, KeyHasher};
use heidi_core::limit::{Acquire, KeyedAcquire, KeyedLimiter, LimitPolicy, PolicyError, Tat};
use heidi_core::table::Slot;
use heidi_core::{Duration, Instant};

/// Most clients in one run.
pub const MAX_CLIENTS: usize = 16;
/// Largest `limit_capacity`.
pub const MAX_CAPACITY: u32 = 1_000_000;
/// Longest `limit_window_ms` (one day).
pub const MAX_WINDOW_MS: u64 = 86_400_000;
/// Slots of the keyed limiter's table (more than enough for [`MAX_CLIENTS`]). Boxed, as the
/// service scenario's, so the module holds one copy of the table's code.
const TABLE_SLOTS: usize = 64;

/// One client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientParams {
    /// Mean arrivals per second (Poisson), 1..=[`MAX_RATE_PER_SEC`](super::MAX_RATE_PER_SEC).
    pub rate_per_sec: u32,
}

/// The scenario's parameters (defaults: 3 clients at 40, 15 and 5 requests/s, 10 per second
/// each, 5 % upstream failures, 20–30 ms latency, 10 s in ticks of 100 ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Simulated time, ms.
    pub duration_ms: u64,
    /// Tick width, ms.
    pub tick_ms: u64,
    /// The clients (1..=[`MAX_CLIENTS`]); client `i` uses key `client-i`.
    pub clients: Vec<ClientParams>,
    /// Bucket capacity of every key, in tokens.
    pub limit_capacity: u32,
    /// Window in which a bucket refills completely, ms.
    pub limit_window_ms: u64,
    /// Upstream failure probability, permille.
    pub fail_permille: u32,
    /// Upstream base latency, ms.
    pub latency_ms: u64,
    /// Upstream latency jitter (uniform, added), ms.
    pub latency_jitter_ms: u64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            duration_ms: 10_000,
            tick_ms: 100,
            clients: [40, 15, 5]
                .map(|rate_per_sec| ClientParams { rate_per_sec })
                .to_vec(),
            limit_capacity: 10,
            limit_window_ms: 1_000,
            fail_permille: 50,
            latency_ms: 20,
            latency_jitter_ms: 10,
        }
    }
}

/// One tick's aggregates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Start of the tick, ms.
    pub t_ms: u64,
    /// Requests that arrived.
    pub arrivals: u64,
    /// Requests the limiter granted.
    pub admitted: u64,
    /// Requests the limiter denied.
    pub denied: u64,
    /// Requests shed because [`MAX_IN_FLIGHT`] calls were in flight.
    pub shed: u64,
    /// Calls sent upstream (= admitted).
    pub upstream_calls: u64,
    /// Upstream calls that ended in failure during the tick.
    pub upstream_failures: u64,
    /// Upstream calls that ended during the tick.
    pub completed: u64,
    /// Calls in flight at the tick's end.
    pub in_flight: u64,
    /// Median upstream latency of the calls (successful or failed) that ended in the tick,
    /// µs.
    pub latency_p50_us: Option<u64>,
    /// 99th percentile of the same, µs.
    pub latency_p99_us: Option<u64>,
    /// Whole tokens left in each client's bucket at the tick's end.
    pub bucket: Vec<u32>,
}

/// A notable event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A client's first denial after a grant (or at the start): it is being held back.
    Throttled {
        /// When, µs.
        t_us: u64,
        /// The client's index.
        client: usize,
        /// When the limiter said it may try again, µs.
        retry_at_us: u64,
    },
    /// A client's first grant after denials.
    Resumed {
        /// When, µs.
        t_us: u64,
        /// The client's index.
        client: usize,
    },
    /// The run stopped at the step cap.
    StepCap {
        /// When, µs.
        t_us: u64,
    },
}

/// Totals of one client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientSummary {
    /// The configured rate.
    pub rate_per_sec: u32,
    /// Requests that arrived.
    pub arrivals: u64,
    /// Requests granted.
    pub admitted: u64,
    /// Requests denied.
    pub denied: u64,
    /// Requests shed (too many in flight).
    pub shed: u64,
}

/// Totals of the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Requests that arrived.
    pub arrivals: u64,
    /// Requests granted.
    pub admitted: u64,
    /// Requests denied.
    pub denied: u64,
    /// Requests shed because [`MAX_IN_FLIGHT`] calls were in flight.
    pub shed: u64,
    /// Upstream calls (= admitted).
    pub upstream_calls: u64,
    /// Upstream calls that succeeded.
    pub upstream_successes: u64,
    /// Upstream calls that failed.
    pub upstream_failures: u64,
    /// Upstream calls still in flight when the run ended (neither success nor failure).
    pub in_flight_at_end: u64,
    /// Median upstream latency of every completed call (successful or failed), µs.
    pub latency_p50_us: Option<u64>,
    /// 99th percentile of the same, µs.
    pub latency_p99_us: Option<u64>,
    /// Per client, in config order.
    pub clients: Vec<ClientSummary>,
}

/// The trace of this scenario.
pub type LimiterTrace = Trace<Params, Tick, Event, Summary>;

/// The engine's events.
pub enum Ev {
    /// Client `i`'s next request.
    Arrival(usize),
    /// An upstream call ended.
    Done {
        /// Whether it succeeded.
        ok: bool,
        /// How long it took.
        latency: Duration,
    },
}

/// Parses `params` and runs the scenario.
///
/// # Errors
/// Bad parameters.
pub fn run(seed: u64, max_steps: u64, params: &Value) -> Result<Vec<u8>, SimError> {
    Ok(encode(&simulate(seed, max_steps, parse(params)?)?))
}

/// The simulator's own caps, then core's rules (whose errors name the field).
fn check(p: &Params) -> Result<LimitPolicy, SimError> {
    check_timeline(p.duration_ms, p.tick_ms)?;
    check_range(
        "clients (count)",
        p.clients.len() as u64,
        1,
        MAX_CLIENTS as u64,
    )?;
    for (i, c) in p.clients.iter().enumerate() {
        check_rate(&format!("clients[{i}].rate_per_sec"), c.rate_per_sec)?;
    }
    check_range(
        "limit_capacity",
        p.limit_capacity.into(),
        0,
        MAX_CAPACITY.into(),
    )?;
    check_range("limit_window_ms", p.limit_window_ms, 0, MAX_WINDOW_MS)?;
    LimitPolicy::new(p.limit_capacity, Duration::from_millis(p.limit_window_ms)).map_err(|e| {
        let field = match e {
            PolicyError::ZeroCapacity => "limit_capacity",
            PolicyError::ZeroWindow | PolicyError::WindowTooLong => "limit_window_ms",
        };
        SimError::param(field, e)
    })
}

/// Runs the scenario.
///
/// # Errors
/// Bad parameters.
pub fn simulate(seed: u64, max_steps: u64, p: Params) -> Result<LimiterTrace, SimError> {
    let policy = check(&p)?;
    let upstream = Upstream::new(p.fail_permille, p.latency_ms, p.latency_jitter_ms)?;
    let world = World::new(seed, &p, policy, upstream);
    let run = Run {
        scenario: "limiter",
        seed,
        max_steps,
        duration_ms: p.duration_ms,
        tick_ms: p.tick_ms,
    };
    driver::drive(run, p, world)
}

struct World {
    end: Instant,
    rng: Rng,
    clients: Vec<Client>,
    limiter: KeyedLimiter<Box<[Slot<Tat>]>>,
    policy: LimitPolicy,
    upstream: Upstream,
    tick: Tick,
    tick_latency: Latencies,
    all_latency: Latencies,
    ticks: Vec<Tick>,
    events: EventLog<Event>,
    in_flight: u64,
    successes: u64,
}

struct Client {
    key: KeyHash,
    rate_per_sec: u64,
    rng: Rng,
    throttled: bool,
    totals: ClientSummary,
}

impl World {
    fn new(seed: u64, p: &Params, policy: LimitPolicy, upstream: Upstream) -> World {
        let mut rng = Rng::new(seed);
        let mut key_seed = [0u8; 16];
        key_seed[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        key_seed[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        let hasher = KeyHasher::new(key_seed);
        let clients = p
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| Client {
                key: hasher.hash(format!("client-{i}").as_bytes()),
                rate_per_sec: c.rate_per_sec.into(),
                rng: rng.fork(i as u64),
                throttled: false,
                totals: ClientSummary {
                    rate_per_sec: c.rate_per_sec,
                    ..ClientSummary::default()
                },
            })
            .collect();
        World {
            end: Instant::from_millis(p.duration_ms),
            rng,
            clients,
            limiter: KeyedLimiter::new(vec![Slot::empty(); TABLE_SLOTS].into_boxed_slice()),
            policy,
            upstream,
            tick: Tick::default(),
            tick_latency: Latencies::default(),
            all_latency: Latencies::default(),
            ticks: Vec::new(),
            events: EventLog::default(),
            in_flight: 0,
            successes: 0,
        }
    }

    fn gap(&mut self, client: usize) -> Duration {
        let c = &mut self.clients[client];
        Duration::from_micros(c.rng.poisson_gap_us(c.rate_per_sec))
    }

    fn arrive(&mut self, engine: &mut Engine<Ev>, client: usize) -> Result<(), SimError> {
        let now = engine.now();
        self.tick.arrivals += 1;
        let c = &mut self.clients[client];
        c.totals.arrivals += 1;
        if self.in_flight >= MAX_IN_FLIGHT {
            self.tick.shed += 1;
            c.totals.shed += 1;
            return Ok(());
        }
        // Cost 1 never exceeds the capacity (core checked it is at least 1).
        let answer = self
            .limiter
            .acquire(now, c.key, &self.policy, 1)
            .map_err(|e| SimError::internal(format_args!("limiter refused a cost of 1: {e}")))?;
        match answer {
            KeyedAcquire::Granted { .. } => {
                self.tick.admitted += 1;
                c.totals.admitted += 1;
                if c.throttled {
                    c.throttled = false;
                    let t_us = now.as_micros();
                    self.events.push(Event::Resumed { t_us, client });
                }
                self.tick.upstream_calls += 1;
                self.in_flight += 1;
                let call = self.upstream.call(&mut self.rng);
                let (ok, latency) = (call.ok, call.latency);
                engine.after(latency, Ev::Done { ok, latency });
            }
            KeyedAcquire::Denied { retry_at } | KeyedAcquire::TableFull { retry_at } => {
                self.tick.denied += 1;
                c.totals.denied += 1;
                if !c.throttled {
                    c.throttled = true;
                    let (t_us, retry_at_us) = (now.as_micros(), retry_at.as_micros());
                    self.events.push(Event::Throttled {
                        t_us,
                        client,
                        retry_at_us,
                    });
                }
            }
        }
        Ok(())
    }

    fn done(&mut self, ok: bool, latency: Duration) {
        self.in_flight -= 1;
        self.tick.completed += 1;
        if ok {
            self.successes += 1;
        } else {
            self.tick.upstream_failures += 1;
        }
        self.tick_latency.add(latency);
        self.all_latency.add(latency);
    }
}

impl driver::World for World {
    type Ev = Ev;
    type Tick = Tick;
    type Event = Event;
    type Summary = Summary;

    fn start(&mut self, engine: &mut Engine<Ev>) {
        for client in 0..self.clients.len() {
            let gap = self.gap(client);
            engine.after(gap, Ev::Arrival(client));
        }
    }

    fn handle(&mut self, engine: &mut Engine<Ev>, ev: Ev) -> Result<(), SimError> {
        match ev {
            Ev::Arrival(client) => {
                self.arrive(engine, client)?;
                let at = engine.now().saturating_add(self.gap(client));
                if at < self.end {
                    engine.at(at, Ev::Arrival(client));
                }
            }
            Ev::Done { ok, latency } => self.done(ok, latency),
        }
        Ok(())
    }

    fn close_tick(&mut self, now: Instant, ticker: &Ticker) {
        let mut tick = core::mem::take(&mut self.tick);
        tick.t_ms = ticker.start_ms();
        tick.in_flight = self.in_flight;
        (tick.latency_p50_us, tick.latency_p99_us) = self.tick_latency.take_p50_p99();
        tick.bucket = self
            .clients
            .iter()
            .map(|c| match self.limiter.check(now, c.key, &self.policy, 0) {
                Ok(Acquire::Granted { remaining }) => remaining,
                _ => 0,
            })
            .collect();
        self.ticks.push(tick);
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
}

impl World {
    fn summary(&mut self) -> Summary {
        let sum = |f: fn(&ClientSummary) -> u64| self.clients.iter().map(|c| f(&c.totals)).sum();
        let (arrivals, admitted, denied, shed) = (
            sum(|t| t.arrivals),
            sum(|t| t.admitted),
            sum(|t| t.denied),
            sum(|t| t.shed),
        );
        let upstream_failures = self.ticks.iter().map(|t| t.upstream_failures).sum::<u64>()
            + self.tick.upstream_failures;
        Summary {
            arrivals,
            admitted,
            denied,
            shed,
            upstream_calls: admitted,
            upstream_successes: self.successes,
            upstream_failures,
            in_flight_at_end: self.in_flight,
            latency_p50_us: self.all_latency.percentile(50),
            latency_p99_us: self.all_latency.percentile(99),
            clients: self.clients.iter().map(|c| c.totals.clone()).collect(),
        }
    }
}

crate::json_object!(ClientParams { rate_per_sec } required { rate_per_sec });
crate::json_object!(Params {
    duration_ms,
    tick_ms,
    clients,
    limit_capacity,
    limit_window_ms,
    fail_permille,
    latency_ms,
    latency_jitter_ms
});
crate::json_fields!(Tick {
    t_ms,
    arrivals,
    admitted,
    denied,
    shed,
    upstream_calls,
    upstream_failures,
    completed,
    in_flight,
    latency_p50_us,
    latency_p99_us,
    bucket
});
crate::json_fields!(ClientSummary {
    rate_per_sec,
    arrivals,
    admitted,
    denied,
    shed
});
crate::json_fields!(Summary {
    arrivals,
    admitted,
    denied,
    shed,
    upstream_calls,
    upstream_successes,
    upstream_failures,
    in_flight_at_end,
    latency_p50_us,
    latency_p99_us,
    clients
});
crate::json_enum!(Event {
    Throttled "throttled" { t_us, client, retry_at_us },
    Resumed "resumed" { t_us, client },
    StepCap "step_cap" { t_us },
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::MAX_RATE_PER_SEC;

    fn run_default(seed: u64) -> LimiterTrace {
        simulate(seed, 10_000_000, Params::default()).unwrap()
    }

    #[test]
    fn each_client_is_held_to_its_limit_per_window() {
        let t = run_default(1);
        let s = &t.summary;
        assert_eq!(s.arrivals, s.admitted + s.denied);
        // 10 s at 10 per second plus the initial burst of 10: at most 110 per client.
        for c in &s.clients {
            assert!(c.admitted <= 110, "{c:?}");
        }
        // The fast client is throttled hard, the slow one barely.
        assert!(s.clients[0].denied > s.clients[0].admitted, "{s:?}");
        assert!(
            s.clients[2].denied * 10 < s.clients[2].arrivals.max(1) * 2,
            "{s:?}"
        );
        // Within each 1 s window (10 ticks), a client never gets more than capacity + refill.
        let per_window: Vec<u64> = t
            .ticks
            .chunks(10)
            .map(|w| w.iter().map(|t| t.admitted).sum())
            .collect();
        assert!(per_window.iter().all(|&n| n <= 3 * 20), "{per_window:?}");
    }

    #[test]
    fn ticks_cover_the_run_and_add_up() {
        let t = run_default(2);
        assert_eq!(t.ticks.len(), 100);
        assert!(
            t.ticks
                .iter()
                .enumerate()
                .all(|(i, k)| k.t_ms == i as u64 * 100)
        );
        let admitted: u64 = t.ticks.iter().map(|k| k.admitted).sum();
        assert_eq!(admitted, t.summary.admitted);
        assert!(
            t.ticks
                .iter()
                .all(|k| k.bucket.len() == 3 && k.bucket.iter().all(|&b| b <= 10))
        );
        assert!(t.ticks.iter().all(|k| k.arrivals == k.admitted + k.denied));
        // Latency is 20..=30 ms.
        for k in &t.ticks {
            if let (Some(p50), Some(p99)) = (k.latency_p50_us, k.latency_p99_us) {
                assert!((20_000..=30_000).contains(&p50) && p50 <= p99 && p99 <= 30_000);
            }
        }
        assert!(
            t.events
                .iter()
                .any(|e| matches!(e, Event::Throttled { client: 0, .. }))
        );
    }

    #[test]
    fn failures_follow_the_upstream_rate() {
        let p = Params {
            fail_permille: 1_000,
            ..Params::default()
        };
        let t = simulate(3, 10_000_000, p).unwrap();
        assert_eq!(t.summary.upstream_successes, 0);
        let p = Params {
            fail_permille: 0,
            ..Params::default()
        };
        assert_eq!(
            simulate(3, 10_000_000, p)
                .unwrap()
                .summary
                .upstream_failures,
            0
        );
    }

    #[test]
    fn every_call_is_accounted_for() {
        for seed in 1..=3 {
            let s = run_default(seed).summary;
            assert_eq!(s.arrivals, s.admitted + s.denied + s.shed);
            assert_eq!(
                s.upstream_calls,
                s.upstream_successes + s.upstream_failures + s.in_flight_at_end
            );
        }
    }

    #[test]
    fn the_in_flight_cap_sheds_and_bounds_the_queue() {
        // 100 000/s with a 60 s latency and no effective limit: the in-flight cap is reached
        // after a second and every later arrival is shed.
        let p = Params {
            duration_ms: 1_500,
            tick_ms: 100,
            clients: vec![ClientParams {
                rate_per_sec: MAX_RATE_PER_SEC,
            }],
            limit_capacity: MAX_CAPACITY,
            limit_window_ms: 1,
            fail_permille: 0,
            latency_ms: 60_000,
            latency_jitter_ms: 60_000,
        };
        let t = simulate(1, 10_000_000, p).unwrap();
        let s = &t.summary;
        assert!(!t.step_cap_reached);
        assert_eq!(s.admitted, MAX_IN_FLIGHT);
        assert_eq!(s.in_flight_at_end, MAX_IN_FLIGHT);
        assert!(s.shed > 30_000, "{s:?}");
        assert_eq!(s.arrivals, s.admitted + s.denied + s.shed);
        assert!(t.ticks.iter().all(|k| k.in_flight <= MAX_IN_FLIGHT));
        assert_eq!(t.ticks.last().unwrap().in_flight, MAX_IN_FLIGHT);
    }

    #[test]
    fn limits_are_reached_and_named() {
        use crate::scenario::testing::{assert_limits, assert_refused};
        use serde_json::json;
        let rate = MAX_RATE_PER_SEC;
        let clients = |n: usize| vec![json!({"rate_per_sec": 1}); n];
        assert_limits(
            "limiter",
            &[
                (
                    json!({"clients": [{"rate_per_sec": rate}]}),
                    json!({"clients": [{"rate_per_sec": rate + 1}]}),
                    "clients[0].rate_per_sec",
                ),
                (
                    json!({"clients": clients(MAX_CLIENTS)}),
                    json!({"clients": clients(MAX_CLIENTS + 1)}),
                    "clients (count)",
                ),
                (
                    json!({"limit_capacity": MAX_CAPACITY}),
                    json!({"limit_capacity": MAX_CAPACITY + 1}),
                    "limit_capacity",
                ),
                (
                    json!({"limit_window_ms": MAX_WINDOW_MS}),
                    json!({"limit_window_ms": MAX_WINDOW_MS + 1}),
                    "limit_window_ms",
                ),
                (
                    json!({"latency_ms": crate::upstream::MAX_LATENCY_MS}),
                    json!({"latency_ms": crate::upstream::MAX_LATENCY_MS + 1}),
                    "latency_ms",
                ),
                (
                    json!({"fail_permille": 1_000}),
                    json!({"fail_permille": 1_001}),
                    "fail_permille",
                ),
            ],
        );
        // Lower bounds are core's rules; its errors reach the user with the field's name.
        assert_refused(
            "limiter",
            &[
                (json!({"clients": []}), "clients (count)"),
                (
                    json!({"clients": [{"rate_per_sec": 0}]}),
                    "clients[0].rate_per_sec",
                ),
                (
                    json!({"limit_capacity": 0}),
                    "limit_capacity: capacity_tokens",
                ),
                (json!({"limit_window_ms": 0}), "limit_window_ms: window"),
                (json!({"tick_ms": 0}), "tick_ms"),
            ],
        );
        let e = crate::scenario::testing::try_params("limiter", &json!({"clients": [{"rate": 1}]}))
            .unwrap_err();
        assert_eq!(e.code, "bad_json");
        assert!(e.message.contains("unknown field `rate`"), "{e}");
    }
}
