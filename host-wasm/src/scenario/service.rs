//! Scenario `service`: clients send `RATE_LIMIT_CONSUME` and `RATE_LIMIT_CHECK` frames to
//! heidi-core's service machine, as the daemon's listeners do: each frame goes through
//! `Request::parse` and `Service::handle`, and the reply's typed outcome is what is counted.
//!
//! Client `i` sends Poisson arrivals of operation `search` at cost 1, each for one of its
//! `keys` client keys (`user-i`, or `user-i-j` when it has several); `check_permille` of them
//! are checks, `bad_permille` carry a malformed cost (`BAD_REQUEST`). Frames and replies each
//! cross a network of `latency_ms` to twice that, so requests overtake each other. With
//! `retry`, a consume answered `RATE_LIMITED` or `OVERLOADED` is sent again `retry_after_ms`
//! after its reply arrives, at most [`MAX_RETRIES`] times. `search` is limited to
//! `limit_capacity` per `limit_window_ms`; the limiter holds `table_slots` buckets, so many
//! keys can fill it (`OVERLOADED`). A request sent while [`MAX_IN_FLIGHT`] are in flight is
//! shed.

use super::{MAX_IN_FLIGHT, check_rate, encode, parse};
use crate::driver::{self, Parts, Run};
use crate::engine::Engine;
use crate::error::{SimError, check_range};
use crate::json::Value;
use crate::latency::Latencies;
use crate::rng::Rng;
use crate::trace::{EventLog, Ticker, Trace, check_timeline};
use heidi_core::key::KeyHasher;
use heidi_core::limit::{LimitPolicy, Operation, PolicyError, PolicyTable, Tat};
use heidi_core::proto::{ErrorCode, Request};
use heidi_core::service::{Outcome, REPLY_MAX_BYTES, Served, Service};
use heidi_core::table::Slot;
use heidi_core::{Duration, Instant};

/// Most clients in one run.
pub const MAX_CLIENTS: usize = 16;
/// Most keys of one client.
pub const MAX_KEYS: u32 = 10_000;
/// Largest `limit_capacity`.
pub const MAX_CAPACITY: u32 = 1_000_000;
/// Longest `limit_window_ms` (one day).
pub const MAX_WINDOW_MS: u64 = 86_400_000;
/// Most limiter slots (`table_slots`, a multiple of 8): 1 MiB of buckets.
pub const MAX_TABLE_SLOTS: u32 = 65_536;
/// Most times one request is sent again.
pub const MAX_RETRIES: u32 = 3;
/// Longest one-way network latency, ms.
pub const MAX_LATENCY_MS: u64 = 60_000;

/// One client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientParams {
    /// Mean arrivals per second (Poisson), 1..=[`MAX_RATE_PER_SEC`](super::MAX_RATE_PER_SEC).
    pub rate_per_sec: u32,
    /// Client keys it spreads its requests over, 1..=[`MAX_KEYS`] (default 1).
    pub keys: u32,
}

/// The scenario's parameters (defaults: 4 clients at 40, 20, 10 and 5 requests/s with one key
/// each, 10 per second, 10 % checks, 1 % malformed, retries after the hint, 5–10 ms each way,
/// 64 slots, 10 s in ticks of 100 ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Simulated time, ms.
    pub duration_ms: u64,
    /// Tick width, ms.
    pub tick_ms: u64,
    /// The clients (1..=[`MAX_CLIENTS`]).
    pub clients: Vec<ClientParams>,
    /// Bucket capacity of `search`, in tokens.
    pub limit_capacity: u32,
    /// Window in which a bucket refills completely, ms.
    pub limit_window_ms: u64,
    /// Limiter slots, a multiple of 8 up to [`MAX_TABLE_SLOTS`].
    pub table_slots: u32,
    /// Share of requests that are `RATE_LIMIT_CHECK`, permille.
    pub check_permille: u32,
    /// Share of requests with a malformed cost, permille.
    pub bad_permille: u32,
    /// Whether a refused consume is sent again after `retry_after_ms`.
    pub retry: bool,
    /// Least one-way network latency, ms (uniform up to twice this).
    pub latency_ms: u64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            duration_ms: 10_000,
            tick_ms: 100,
            clients: [40, 20, 10, 5]
                .map(|rate_per_sec| ClientParams {
                    rate_per_sec,
                    keys: 1,
                })
                .to_vec(),
            limit_capacity: 10,
            limit_window_ms: 1_000,
            table_slots: 64,
            check_permille: 100,
            bad_permille: 10,
            retry: true,
            latency_ms: 5,
        }
    }
}

/// One tick's aggregates (answers counted when the service gives them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Start of the tick, ms.
    pub t_ms: u64,
    /// Requests clients sent (new ones and retries).
    pub sent: u64,
    /// Of those, retries.
    pub retries: u64,
    /// Requests shed because [`MAX_IN_FLIGHT`] were in flight.
    pub shed: u64,
    /// Consumes granted and checks answered `"allowed":true`.
    pub allowed: u64,
    /// Consumes answered `RATE_LIMITED`.
    pub rate_limited: u64,
    /// Checks answered `"allowed":false`.
    pub check_denied: u64,
    /// Consumes answered `OVERLOADED` (the table is full).
    pub overloaded: u64,
    /// Requests answered `BAD_REQUEST`.
    pub bad_request: u64,
    /// Requests in flight (either way) at the tick's end.
    pub in_flight: u64,
    /// Limiter buckets held at the tick's end.
    pub limiter_keys: u64,
    /// Median `retry_after` of the refusals in the tick, µs.
    pub retry_after_p50_us: Option<u64>,
    /// 99th percentile of the same, µs.
    pub retry_after_p99_us: Option<u64>,
    /// Consumes granted per client.
    pub allowed_by_client: Vec<u64>,
}

/// A notable event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A client's first `RATE_LIMITED` after a grant (or at the start).
    Throttled {
        /// When, µs.
        t_us: u64,
        /// The client's index.
        client: usize,
        /// When the service said the call is granted, µs.
        retry_at_us: u64,
    },
    /// A client's first grant after `RATE_LIMITED`.
    Resumed {
        /// When, µs.
        t_us: u64,
        /// The client's index.
        client: usize,
    },
    /// The first `OVERLOADED` after another answer: the table holds no refilled bucket.
    TableFull {
        /// When, µs.
        t_us: u64,
        /// When the service said a slot frees, µs.
        retry_at_us: u64,
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
    /// Requests sent (retries included).
    pub sent: u64,
    /// Retries sent.
    pub retries: u64,
    /// Retries granted.
    pub retries_allowed: u64,
    /// Requests shed.
    pub shed: u64,
    /// Requests the service answered.
    pub served: u64,
    /// Answers per kind, as in [`Tick`].
    pub allowed: u64,
    /// See [`Tick::rate_limited`].
    pub rate_limited: u64,
    /// See [`Tick::check_denied`].
    pub check_denied: u64,
    /// See [`Tick::overloaded`].
    pub overloaded: u64,
    /// See [`Tick::bad_request`].
    pub bad_request: u64,
    /// Requests sent but not served when the run ended (`sent = shed + served + unserved`).
    pub unserved_at_end: u64,
    /// Most limiter buckets held at a tick's end.
    pub limiter_keys_peak: u64,
    /// The service's own count of `RATE_LIMITED` answers to `search`.
    pub search_denials: u64,
}

/// The trace of this scenario.
pub type ServiceTrace = Trace<Params, Tick, Event, Summary>;

/// One request, as it travels.
#[derive(Clone, Copy, Debug)]
pub struct Req {
    client: usize,
    key: u32,
    consume: bool,
    bad: bool,
    attempt: u32,
}

/// The engine's events.
pub enum Ev {
    /// Client `i`'s next new request.
    Arrival(usize),
    /// A request is sent again.
    Retry(Req),
    /// A request reaches the service.
    Arrive(Req),
    /// A reply reaches its client: the outcome and when it was served.
    Reply(Req, Outcome, Instant),
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
    let n = p.clients.len() as u64;
    check_range("clients (count)", n, 1, MAX_CLIENTS as u64)?;
    for (i, c) in p.clients.iter().enumerate() {
        check_rate(&format!("clients[{i}].rate_per_sec"), c.rate_per_sec)?;
        check_range(
            &format!("clients[{i}].keys"),
            c.keys.into(),
            1,
            MAX_KEYS.into(),
        )?;
    }
    check_range(
        "table_slots",
        p.table_slots.into(),
        8,
        MAX_TABLE_SLOTS.into(),
    )?;
    if p.table_slots % 8 != 0 {
        return Err(SimError::param("table_slots", "must be a multiple of 8"));
    }
    check_range("check_permille", p.check_permille.into(), 0, 1_000)?;
    check_range("bad_permille", p.bad_permille.into(), 0, 1_000)?;
    check_range("latency_ms", p.latency_ms, 0, MAX_LATENCY_MS)?;
    let cap = p.limit_capacity.into();
    check_range("limit_capacity", cap, 0, MAX_CAPACITY.into())?;
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
pub fn simulate(seed: u64, max_steps: u64, p: Params) -> Result<ServiceTrace, SimError> {
    let policy = check(&p)?;
    let world = World::new(seed, &p, policy);
    let run = Run {
        scenario: "service",
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
    service: Service<Box<[Slot<Tat>]>>,
    check_permille: u32,
    bad_permille: u32,
    retry: bool,
    latency_us: u64,
    out: [u8; REPLY_MAX_BYTES],
    frame: String,
    tick: Tick,
    retry_after: Latencies,
    ticks: Vec<Tick>,
    events: EventLog<Event>,
    totals: Summary,
    /// Requests and replies on the network.
    in_flight: u64,
    /// Requests sent and not yet served.
    unserved: u64,
    overloaded: bool,
}

struct Client {
    name: String,
    keys: u32,
    rate_per_sec: u64,
    rng: Rng,
    throttled: bool,
    allowed_in_tick: u64,
}

impl World {
    fn new(seed: u64, p: &Params, policy: LimitPolicy) -> World {
        let mut rng = Rng::new(seed);
        let mut key_seed = [0u8; 16];
        key_seed[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        key_seed[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        let mut limits = PolicyTable::DEFAULT;
        limits.set(Operation::Search, policy);
        let slots = vec![Slot::empty(); p.table_slots as usize].into_boxed_slice();
        let clients = p
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| Client {
                name: format!("user-{i}"),
                keys: c.keys,
                rate_per_sec: c.rate_per_sec.into(),
                rng: rng.fork(i as u64),
                throttled: false,
                allowed_in_tick: 0,
            })
            .collect();
        World {
            end: Instant::from_millis(p.duration_ms),
            rng,
            clients,
            service: Service::new(KeyHasher::new(key_seed), limits, slots),
            check_permille: p.check_permille,
            bad_permille: p.bad_permille,
            retry: p.retry,
            latency_us: p.latency_ms * 1_000,
            out: [0; REPLY_MAX_BYTES],
            frame: String::new(),
            tick: Tick::default(),
            retry_after: Latencies::default(),
            ticks: Vec::new(),
            events: EventLog::default(),
            totals: Summary::default(),
            in_flight: 0,
            unserved: 0,
            overloaded: false,
        }
    }

    fn gap(&mut self, client: usize) -> Duration {
        let c = &mut self.clients[client];
        Duration::from_micros(c.rng.poisson_gap_us(c.rate_per_sec))
    }

    fn latency(&mut self) -> Duration {
        let base = self.latency_us;
        Duration::from_micros(base + self.rng.below(base + 1))
    }

    /// A client's new request.
    fn new_request(&mut self, client: usize) -> Req {
        let c = &mut self.clients[client];
        let key = c.rng.below(c.keys.into()) as u32;
        let consume = !c.rng.chance_permille(self.check_permille);
        let bad = c.rng.chance_permille(self.bad_permille);
        Req {
            client,
            key,
            consume,
            bad,
            attempt: 0,
        }
    }

    fn send(&mut self, engine: &mut Engine<Ev>, req: Req) {
        self.tick.sent += 1;
        self.tick.retries += u64::from(req.attempt > 0);
        if self.in_flight >= MAX_IN_FLIGHT {
            self.tick.shed += 1;
            return;
        }
        self.in_flight += 1;
        self.unserved += 1;
        let latency = self.latency();
        engine.after(latency, Ev::Arrive(req));
    }

    /// The frame of `req`, as a client library writes it.
    fn write_frame(&mut self, req: Req) {
        let c = &self.clients[req.client];
        let f = &mut self.frame;
        f.clear();
        f.push_str(if req.consume {
            r#"{"method":"RATE_LIMIT_CONSUME","params":{"key":""#
        } else {
            r#"{"method":"RATE_LIMIT_CHECK","params":{"key":""#
        });
        f.push_str(&c.name);
        if c.keys > 1 {
            f.push('-');
            f.push_str(&req.key.to_string());
        }
        f.push_str(r#"","operation":"search","cost":"#);
        f.push_str(if req.bad { "-1}}" } else { "1}}" });
    }

    /// The service answers a request; the reply travels back.
    fn serve(&mut self, engine: &mut Engine<Ev>, req: Req) -> Result<(), SimError> {
        let now = engine.now();
        self.unserved -= 1;
        self.write_frame(req);
        let request =
            Request::parse(&self.frame).map_err(|_| SimError::internal("a frame was refused"))?;
        let Served::Reply(reply) = self.service.handle(now, &request, &mut self.out) else {
            return Err(SimError::internal("the service does not cover rate limits"));
        };
        self.count(now, req, reply.outcome);
        let latency = self.latency();
        engine.after(latency, Ev::Reply(req, reply.outcome, now));
        Ok(())
    }

    fn count(&mut self, now: Instant, req: Req, outcome: Outcome) {
        let t_us = now.as_micros();
        let client = req.client;
        let c = &mut self.clients[client];
        let mut overloaded = false;
        match outcome {
            Outcome::Allowed => {
                self.tick.allowed += 1;
                if req.consume {
                    c.allowed_in_tick += 1;
                    if core::mem::replace(&mut c.throttled, false) {
                        self.events.push(Event::Resumed { t_us, client });
                    }
                }
            }
            Outcome::Denied { retry_at } if req.consume => {
                self.tick.rate_limited += 1;
                self.retry_after
                    .add(retry_at.saturating_duration_since(now));
                if !core::mem::replace(&mut c.throttled, true) {
                    let retry_at_us = retry_at.as_micros();
                    self.events.push(Event::Throttled {
                        t_us,
                        client,
                        retry_at_us,
                    });
                }
            }
            Outcome::Denied { .. } => self.tick.check_denied += 1,
            Outcome::Refused {
                code: ErrorCode::Overloaded,
                retry_at,
            } => {
                overloaded = true;
                self.tick.overloaded += 1;
                let retry_at = retry_at.unwrap_or(Instant::MAX);
                self.retry_after
                    .add(retry_at.saturating_duration_since(now));
                if !self.overloaded {
                    let retry_at_us = retry_at.as_micros();
                    self.events.push(Event::TableFull { t_us, retry_at_us });
                }
            }
            Outcome::Refused { .. } => self.tick.bad_request += 1,
        }
        self.overloaded = overloaded;
    }

    /// A reply reaches its client, which may send the request again after the hint.
    fn reply(&mut self, engine: &mut Engine<Ev>, req: Req, outcome: Outcome, served: Instant) {
        self.in_flight -= 1;
        if req.attempt > 0 && outcome == Outcome::Allowed {
            self.totals.retries_allowed += 1;
        }
        let retry_at = match outcome {
            Outcome::Denied { retry_at } if req.consume => retry_at,
            Outcome::Refused {
                code: ErrorCode::Overloaded,
                retry_at: Some(retry_at),
            } => retry_at,
            _ => return,
        };
        if !self.retry || req.attempt >= MAX_RETRIES || retry_at == Instant::MAX {
            return;
        }
        // The client sees `retry_after_ms` (whole ms, rounded up) and waits it from now.
        let wait_ms = retry_at.saturating_duration_since(served).as_millis_ceil();
        let at = engine.now().saturating_add(Duration::from_millis(wait_ms));
        if at < self.end {
            let retry = Req {
                attempt: req.attempt + 1,
                ..req
            };
            engine.at(at, Ev::Retry(retry));
        }
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
                let req = self.new_request(client);
                self.send(engine, req);
                let at = engine.now().saturating_add(self.gap(client));
                if at < self.end {
                    engine.at(at, Ev::Arrival(client));
                }
            }
            Ev::Retry(req) => self.send(engine, req),
            Ev::Arrive(req) => self.serve(engine, req)?,
            Ev::Reply(req, outcome, served) => self.reply(engine, req, outcome, served),
        }
        Ok(())
    }

    fn close_tick(&mut self, now: Instant, ticker: &Ticker) {
        let mut tick = core::mem::take(&mut self.tick);
        tick.t_ms = ticker.start_ms();
        tick.in_flight = self.in_flight;
        tick.limiter_keys = self.service.limiter_keys() as u64;
        (tick.retry_after_p50_us, tick.retry_after_p99_us) = self.retry_after.take_p50_p99();
        tick.allowed_by_client = self
            .clients
            .iter_mut()
            .map(|c| core::mem::take(&mut c.allowed_in_tick))
            .collect();
        self.service.sweep(now, 64);
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
        let mut s = core::mem::take(&mut self.totals);
        for t in self.ticks.iter().chain([&self.tick]) {
            s.sent += t.sent;
            s.retries += t.retries;
            s.shed += t.shed;
            s.allowed += t.allowed;
            s.rate_limited += t.rate_limited;
            s.check_denied += t.check_denied;
            s.overloaded += t.overloaded;
            s.bad_request += t.bad_request;
            s.limiter_keys_peak = s.limiter_keys_peak.max(t.limiter_keys);
        }
        s.served = s.allowed + s.rate_limited + s.check_denied + s.overloaded + s.bad_request;
        s.unserved_at_end = self.unserved;
        s.search_denials = self.service.denials()[Operation::Search as usize].1;
        s
    }
}

impl Default for ClientParams {
    fn default() -> ClientParams {
        ClientParams {
            rate_per_sec: 0,
            keys: 1,
        }
    }
}

crate::json_object!(ClientParams { rate_per_sec, keys } required { rate_per_sec });
crate::json_object!(Params {
    duration_ms,
    tick_ms,
    clients,
    limit_capacity,
    limit_window_ms,
    table_slots,
    check_permille,
    bad_permille,
    retry,
    latency_ms
});
crate::json_fields!(Tick {
    t_ms,
    sent,
    retries,
    shed,
    allowed,
    rate_limited,
    check_denied,
    overloaded,
    bad_request,
    in_flight,
    limiter_keys,
    retry_after_p50_us,
    retry_after_p99_us,
    allowed_by_client
});
crate::json_fields!(Summary {
    sent,
    retries,
    retries_allowed,
    shed,
    served,
    allowed,
    rate_limited,
    check_denied,
    overloaded,
    bad_request,
    unserved_at_end,
    limiter_keys_peak,
    search_denials
});
crate::json_enum!(Event {
    Throttled "throttled" { t_us, client, retry_at_us },
    Resumed "resumed" { t_us, client },
    TableFull "table_full" { t_us, retry_at_us },
    StepCap "step_cap" { t_us },
});

#[cfg(test)]
mod tests {
    use super::*;

    fn run_default(seed: u64) -> ServiceTrace {
        simulate(seed, 10_000_000, Params::default()).unwrap()
    }

    #[test]
    fn every_request_is_answered_or_in_flight() {
        for seed in 1..=3 {
            let t = run_default(seed);
            let s = &t.summary;
            assert_eq!(s.sent, s.shed + s.served + s.unserved_at_end, "{s:?}");
            assert_eq!(s.search_denials, s.rate_limited, "{s:?}");
            assert!(s.bad_request > 0 && s.check_denied > 0, "{s:?}");
            assert_eq!(s.overloaded, 0);
        }
    }

    #[test]
    fn each_client_is_held_to_its_limit_and_retries_are_granted() {
        let t = run_default(1);
        let s = &t.summary;
        // 10 s at 10 per second plus the first burst of 10: at most 110 grants per key.
        for i in 0..4 {
            let granted: u64 = t.ticks.iter().map(|k| k.allowed_by_client[i]).sum();
            assert!(granted <= 110, "client {i}: {granted}");
        }
        // The fast client is throttled; its retries after the hint compete with its own new
        // requests for the same key, so only some are granted.
        assert!(
            t.events
                .iter()
                .any(|e| matches!(e, Event::Throttled { client: 0, .. }))
        );
        assert!(s.retries > 0 && s.retries_allowed > 0, "{s:?}");
    }

    #[test]
    fn many_keys_fill_a_small_table() {
        let p = Params {
            clients: vec![ClientParams {
                rate_per_sec: 2_000,
                keys: 1_000,
            }],
            table_slots: 8,
            limit_capacity: 2,
            limit_window_ms: 60_000,
            ..Params::default()
        };
        let t = simulate(1, 10_000_000, p).unwrap();
        let s = &t.summary;
        assert!(s.overloaded > s.allowed, "{s:?}");
        assert!(s.limiter_keys_peak <= 8);
        assert!(
            t.events
                .iter()
                .any(|e| matches!(e, Event::TableFull { .. }))
        );
    }

    #[test]
    fn limits_are_reached_and_named() {
        use crate::scenario::testing::{assert_limits, assert_refused};
        use serde_json::json;
        assert_limits(
            "service",
            &[
                (
                    json!({"clients": [{"rate_per_sec": 1, "keys": MAX_KEYS}]}),
                    json!({"clients": [{"rate_per_sec": 1, "keys": MAX_KEYS + 1}]}),
                    "clients[0].keys",
                ),
                (
                    json!({"table_slots": MAX_TABLE_SLOTS}),
                    json!({"table_slots": MAX_TABLE_SLOTS + 8}),
                    "table_slots",
                ),
                (
                    json!({"latency_ms": MAX_LATENCY_MS}),
                    json!({"latency_ms": MAX_LATENCY_MS + 1}),
                    "latency_ms",
                ),
            ],
        );
        assert_refused(
            "service",
            &[
                (json!({"table_slots": 12}), "table_slots"),
                (json!({"clients": []}), "clients (count)"),
                (json!({"limit_capacity": 0}), "limit_capacity"),
            ],
        );
    }
}
