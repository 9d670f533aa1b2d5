//! Scenario `breaker`: a circuit breaker and retries in front of an upstream that fails for
//! windows of time, with or without a retry budget.
//!
//! Requests arrive (Poisson, `rate_per_sec`) and each is one guarded call of heidi-core's
//! [`Guard`], the machine the gRPC sidecar drives for its upstream calls, so the scenario
//! shows what the sidecar does: the request is counted in the [`RetryBudget`] (with
//! `budget`); each attempt asks the [`Breaker`] for a permit, and a refusal ends the request
//! at once (never retried into, never waited for); an admitted attempt calls the upstream and
//! its outcome goes back to the breaker; after a failure the guard retries at a jittered
//! backoff ([`RetryPolicy`]) or gives up because the attempts are spent, the breaker will
//! still be open at the retry time, or (with `budget`) the budget is exhausted.
//!
//! The default outages show both protections. From 5 s to 15 s the upstream browns out (60 %
//! failures): below the breaker's trip rules, so the breaker stays closed and, without a
//! budget, every failure is retried and the upstream sees about twice the traffic (a retry
//! storm); the budget caps retries at 20 % of requests plus 10 per second. From 20 s to 25 s
//! it fails outright: the breaker trips, probes while half-open and closes again once the
//! upstream recovers. The summary counts upstream calls inside the outage windows.
//!
//! A request that arrives while [`MAX_IN_FLIGHT`] requests are unfinished (waiting for an
//! answer or a retry) is shed and counted. Requests unfinished at the end are counted in
//! `in_flight_at_end`: `requests = succeeded + failed + shed + in_flight_at_end`.
//!
//! Parameters and their checks are in `params.rs`, the tests in `tests.rs`.

mod params;
#[cfg(test)]
mod tests;

pub use params::{
    MAX_ATTEMPTS, MAX_BUDGET_MIN_PER_SEC, MAX_BUDGET_RATIO_PERMILLE, MAX_DELAY_MS, MAX_MULTIPLIER,
    MAX_OUTAGES, Outage, Params,
};

use super::{MAX_IN_FLIGHT, encode, parse};
use crate::driver::{self, Parts, Run};
use crate::engine::{Engine, Timer};
use crate::error::SimError;
use crate::json::Value;
use crate::latency::Latencies;
use crate::rng::Rng;
use crate::trace::{EventLog, Ticker, Trace};
use crate::upstream::Upstream;
use heidi_core::breaker::{Breaker, Permit, State};
use heidi_core::guard::{Action, Answer, Finish, GaveUp, Guard, GuardConfig, local};
use heidi_core::retry::{GiveUpReason, RetryBudget, RetryPolicy};
use heidi_core::upstream::Class;
use heidi_core::{Duration, Instant};
use params::Setup;

/// One tick's aggregates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Start of the tick, ms.
    pub t_ms: u64,
    /// New requests.
    pub arrivals: u64,
    /// New requests shed because [`MAX_IN_FLIGHT`] requests were unfinished.
    pub shed: u64,
    /// Attempts (first tries and retries).
    pub attempts: u64,
    /// Attempts the breaker let through to the upstream.
    pub upstream_calls: u64,
    /// Upstream calls that failed (ended in this tick).
    pub upstream_failures: u64,
    /// Attempts the breaker rejected (each ends its request).
    pub rejected: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Requests given up because of the breaker: refused a permit, or still open at the retry
    /// time.
    pub gave_up_breaker: u64,
    /// Retries refused by the budget.
    pub gave_up_budget: u64,
    /// Requests that failed with their attempts spent.
    pub gave_up_attempts: u64,
    /// Requests that succeeded.
    pub succeeded: u64,
    /// Whether any part of the tick overlaps an outage window.
    pub outage: bool,
    /// Breaker state at the tick's end (`closed`, `open`, `half_open`).
    pub breaker: &'static str,
    /// Retries the budget would allow at the tick's end (0 without a budget).
    pub budget_available: u64,
    /// Median end-to-end latency (arrival to success, retries included) of the requests
    /// that succeeded in the tick, µs; failed requests are not included.
    pub success_latency_p50_us: Option<u64>,
    /// 99th percentile of the same, µs.
    pub success_latency_p99_us: Option<u64>,
}

/// A notable event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The breaker changed state.
    Breaker {
        /// When, µs.
        t_us: u64,
        /// State left.
        from: &'static str,
        /// State entered.
        to: &'static str,
    },
    /// An outage began.
    OutageStart {
        /// When, µs.
        t_us: u64,
        /// Failure rate inside it.
        fail_permille: u32,
    },
    /// An outage ended.
    OutageEnd {
        /// When, µs.
        t_us: u64,
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
    /// Whether retries drew on a budget.
    pub budget: bool,
    /// Requests.
    pub requests: u64,
    /// Requests shed because [`MAX_IN_FLIGHT`] requests were unfinished.
    pub shed: u64,
    /// Requests unfinished (awaiting an answer or a retry) when the run ended.
    pub in_flight_at_end: u64,
    /// Requests that succeeded.
    pub succeeded: u64,
    /// Requests that failed in the end.
    pub failed: u64,
    /// Attempts.
    pub attempts: u64,
    /// Upstream calls.
    pub upstream_calls: u64,
    /// Upstream calls that started inside an outage window.
    pub upstream_calls_in_outage: u64,
    /// Requests that arrived inside an outage window.
    pub requests_in_outage: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Retries scheduled inside an outage window.
    pub retries_in_outage: u64,
    /// Attempts the breaker rejected (each ends its request).
    pub rejected: u64,
    /// Requests given up because of the breaker: refused a permit, or still open at the retry
    /// time.
    pub gave_up_breaker: u64,
    /// Retries refused by the budget.
    pub gave_up_budget: u64,
    /// Requests that failed with their attempts spent.
    pub gave_up_attempts: u64,
    /// Transitions into open: from closed (a trip) and from half-open (a failed probe).
    pub trips: u64,
    /// Time the breaker spent open or half-open, ms.
    pub breaker_not_closed_ms: u64,
    /// Median end-to-end latency (arrival to success, retries included) of the requests
    /// that succeeded, µs; failed requests are not included.
    pub success_latency_p50_us: Option<u64>,
    /// 99th percentile of the same, µs.
    pub success_latency_p99_us: Option<u64>,
}

/// The trace of this scenario.
pub type BreakerTrace = Trace<Params, Tick, Event, Summary>;

/// The engine's events.
pub enum Ev {
    /// The next request.
    Arrival,
    /// The retry time of a request that arrived at `arrived` has come.
    Retry {
        /// The request's arrival.
        arrived: Instant,
        /// Its guarded call.
        guard: Guard,
    },
    /// An upstream call ended.
    Done {
        /// The request's arrival.
        arrived: Instant,
        /// Its guarded call.
        guard: Guard,
        /// The breaker's permit for the call.
        permit: Permit,
        /// Whether it succeeded.
        ok: bool,
        /// How long it took.
        latency: Duration,
    },
    /// The breaker's deadline (`poll_timeout`).
    BreakerTimeout(Instant),
    /// An outage window starts (`Some(fail_permille)`) or ends (`None`).
    OutageEdge(Option<u32>),
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
pub fn simulate(seed: u64, max_steps: u64, p: Params) -> Result<BreakerTrace, SimError> {
    let setup = params::check(&p)?;
    let world = World::new(seed, &p, setup);
    let run = Run {
        scenario: "breaker",
        seed,
        max_steps,
        duration_ms: p.duration_ms,
        tick_ms: p.tick_ms,
    };
    driver::drive(run, p, world)
}

struct World {
    rng: Rng,
    arrivals_rng: Rng,
    rate_per_sec: u64,
    end: Instant,
    outages: Vec<Outage>,
    in_flight: u64,
    upstream: Upstream,
    policy: RetryPolicy,
    budget: Option<RetryBudget>,
    breaker: Breaker,
    breaker_timer: Timer,
    not_closed_since: Option<Instant>,
    outage: Option<u32>,
    tick: Tick,
    tick_latency: Latencies,
    all_latency: Latencies,
    ticks: Vec<Tick>,
    events: EventLog<Event>,
    s: Summary,
}

impl World {
    fn new(seed: u64, p: &Params, setup: Setup) -> World {
        let mut rng = Rng::new(seed);
        let arrivals_rng = rng.fork(1);
        World {
            rng,
            arrivals_rng,
            rate_per_sec: p.rate_per_sec.into(),
            end: Instant::from_millis(p.duration_ms),
            outages: p.outages.clone(),
            in_flight: 0,
            upstream: setup.upstream,
            policy: setup.policy,
            budget: p.budget.then_some(setup.budget),
            breaker: setup.breaker,
            breaker_timer: Timer::default(),
            not_closed_since: None,
            outage: None,
            tick: Tick::default(),
            tick_latency: Latencies::default(),
            all_latency: Latencies::default(),
            ticks: Vec::new(),
            events: EventLog::default(),
            s: Summary {
                budget: p.budget,
                ..Summary::default()
            },
        }
    }

    fn gap(&mut self) -> Duration {
        Duration::from_micros(self.arrivals_rng.poisson_gap_us(self.rate_per_sec))
    }

    fn arrive(&mut self, engine: &mut Engine<Ev>) {
        self.tick.arrivals += 1;
        self.s.requests += 1;
        self.s.requests_in_outage += u64::from(self.outage.is_some());
        if self.in_flight >= MAX_IN_FLIGHT {
            self.tick.shed += 1;
            self.s.shed += 1;
            return;
        }
        self.in_flight += 1;
        let config = GuardConfig::new(self.policy).with_budget(self.budget.is_some());
        let now = engine.now();
        self.drive(engine, now, Guard::new(config, None), None, Duration::ZERO);
    }

    /// Serves the request's guard until it waits for the upstream or a retry time, or ends;
    /// `permit` and `took` are those of the call that just ended, if any.
    fn drive(
        &mut self,
        engine: &mut Engine<Ev>,
        arrived: Instant,
        mut guard: Guard,
        mut permit: Option<Permit>,
        took: Duration,
    ) {
        let now = engine.now();
        loop {
            let answer = match guard.poll(now) {
                Action::CountRequest => {
                    if let Some(b) = &mut self.budget {
                        b.record_request(now);
                    }
                    Answer::Counted
                }
                Action::Acquire => {
                    self.tick.attempts += 1;
                    self.s.attempts += 1;
                    let (granted, answer) = local::acquire(&mut self.breaker, now);
                    if granted.is_none() {
                        self.tick.rejected += 1;
                        self.s.rejected += 1;
                    }
                    permit = granted;
                    answer
                }
                Action::Attempt { .. } => {
                    let Some(permit) = permit.take() else { return };
                    return self.call(engine, arrived, guard, permit);
                }
                Action::Record(input) => {
                    let Some(p) = permit.take() else { return };
                    local::record(&mut self.breaker, now, p, input, took)
                }
                Action::TakeRetry => match &mut self.budget {
                    Some(b) => Answer::Budget(b.try_retry(now)),
                    None => Answer::Budget(Ok(())),
                },
                Action::Wait(at) => {
                    self.tick.retries += 1;
                    self.s.retries += 1;
                    self.s.retries_in_outage += u64::from(self.outage.is_some());
                    return engine.at(at, Ev::Retry { arrived, guard });
                }
                Action::Done(finish) => return self.finish(now, arrived, finish),
                // Not asked: the scenario's guards have no rate limit.
                Action::Limit => return,
            };
            if guard.handle(now, answer).is_err() {
                return;
            }
        }
    }

    /// Calls the upstream with the permit of the guard's attempt.
    fn call(&mut self, engine: &mut Engine<Ev>, arrived: Instant, guard: Guard, permit: Permit) {
        self.tick.upstream_calls += 1;
        self.s.upstream_calls += 1;
        self.s.upstream_calls_in_outage += u64::from(self.outage.is_some());
        let fail = self.outage.unwrap_or(self.upstream.fail_permille());
        let call = self.upstream.call_failing(&mut self.rng, fail);
        let (ok, latency) = (call.ok, call.latency);
        let done = Ev::Done {
            arrived,
            guard,
            permit,
            ok,
            latency,
        };
        engine.after(latency, done);
    }

    fn done(
        &mut self,
        engine: &mut Engine<Ev>,
        arrived: Instant,
        mut guard: Guard,
        permit: Permit,
        ok: bool,
        latency: Duration,
    ) {
        let now = engine.now();
        let answer = match ok {
            true => Answer::Succeeded,
            false => {
                self.tick.upstream_failures += 1;
                let random = self.rng.next_u64();
                let verdict = Class::Failure.verdict();
                Answer::Failed { verdict, random }
            }
        };
        if guard.handle(now, answer).is_ok() {
            // The breaker hears the call's own duration.
            self.drive(engine, arrived, guard, Some(permit), latency);
        }
    }

    /// Counts how the request that arrived at `arrived` ended.
    fn finish(&mut self, now: Instant, arrived: Instant, finish: Finish) {
        self.in_flight -= 1;
        let reason = match finish.result {
            Ok(()) => {
                self.tick.succeeded += 1;
                self.s.succeeded += 1;
                let total = now.saturating_duration_since(arrived);
                self.tick_latency.add(total);
                self.all_latency.add(total);
                return;
            }
            Err(reason) => reason,
        };
        self.s.failed += 1;
        let (tick, total) = match reason {
            GaveUp::Retry(GiveUpReason::BudgetExhausted { .. }) => {
                (&mut self.tick.gave_up_budget, &mut self.s.gave_up_budget)
            }
            GaveUp::Retry(GiveUpReason::BreakerOpen { .. }) | GaveUp::BreakerRefused { .. } => {
                (&mut self.tick.gave_up_breaker, &mut self.s.gave_up_breaker)
            }
            // Attempts spent (nothing else ends a guard without a deadline or a limiter whose
            // failures are all retryable).
            _ => (
                &mut self.tick.gave_up_attempts,
                &mut self.s.gave_up_attempts,
            ),
        };
        *tick += 1;
        *total += 1;
    }

    fn outage_edge(&mut self, now: Instant, edge: Option<u32>) {
        let t_us = now.as_micros();
        self.outage = edge;
        self.events.push(match edge {
            Some(fail_permille) => Event::OutageStart {
                t_us,
                fail_permille,
            },
            None => Event::OutageEnd { t_us },
        });
    }

    /// Drains the breaker's transitions and keeps one timer event at its deadline.
    fn after_step(&mut self, engine: &mut Engine<Ev>) {
        while let Some(tr) = self.breaker.poll_event() {
            let t_us = tr.at.as_micros();
            let (from, to) = (tr.from.as_str(), tr.to.as_str());
            self.events.push(Event::Breaker { t_us, from, to });
            if tr.to == State::Open {
                self.s.trips += 1;
            }
            match (tr.from, tr.to, self.not_closed_since) {
                (State::Closed, _, None) => self.not_closed_since = Some(tr.at),
                (_, State::Closed, Some(since)) => {
                    self.s.breaker_not_closed_ms +=
                        tr.at.saturating_duration_since(since).as_millis();
                    self.not_closed_since = None;
                }
                _ => {}
            }
        }
        let due = self.breaker.poll_timeout();
        self.breaker_timer.sync(engine, due, Ev::BreakerTimeout);
    }

    /// Whether an outage window overlaps `[start, end)` (an empty window overlaps nothing).
    fn outage_overlaps(&self, start: Instant, end: Instant) -> bool {
        self.outages.iter().any(|o| {
            Instant::from_millis(o.start_ms) < end && Instant::from_millis(o.end_ms) > start
        })
    }
}

impl driver::World for World {
    type Ev = Ev;
    type Tick = Tick;
    type Event = Event;
    type Summary = Summary;

    fn start(&mut self, engine: &mut Engine<Ev>) {
        for o in &self.outages {
            let start = Instant::from_millis(o.start_ms);
            engine.at(start, Ev::OutageEdge(Some(o.fail_permille)));
            engine.at(Instant::from_millis(o.end_ms), Ev::OutageEdge(None));
        }
        let first = self.gap();
        engine.after(first, Ev::Arrival);
    }

    fn handle(&mut self, engine: &mut Engine<Ev>, ev: Ev) -> Result<(), SimError> {
        match ev {
            Ev::Arrival => {
                self.arrive(engine);
                let gap = self.gap();
                if engine.now().saturating_add(gap) < self.end {
                    engine.after(gap, Ev::Arrival);
                }
            }
            Ev::Retry { arrived, guard } => {
                self.drive(engine, arrived, guard, None, Duration::ZERO)
            }
            Ev::Done {
                arrived,
                guard,
                permit,
                ok,
                latency,
            } => self.done(engine, arrived, guard, permit, ok, latency),
            Ev::BreakerTimeout(at) => {
                if self.breaker_timer.fire(at) {
                    self.breaker.handle_timeout(engine.now());
                }
            }
            Ev::OutageEdge(edge) => self.outage_edge(engine.now(), edge),
        }
        self.after_step(engine);
        Ok(())
    }

    fn close_tick(&mut self, now: Instant, ticker: &Ticker) {
        let mut tick = core::mem::take(&mut self.tick);
        let start = Instant::from_millis(ticker.start_ms());
        tick.t_ms = ticker.start_ms();
        tick.outage = self.outage_overlaps(start, now);
        tick.breaker = self.breaker.state().as_str();
        tick.budget_available = self.budget.as_ref().map_or(0, |b| b.available(now));
        (tick.success_latency_p50_us, tick.success_latency_p99_us) =
            self.tick_latency.take_p50_p99();
        self.ticks.push(tick);
    }

    fn step_cap_event(t_us: u64) -> Event {
        Event::StepCap { t_us }
    }

    fn events(&mut self) -> &mut EventLog<Event> {
        &mut self.events
    }

    fn finish(mut self, end: Instant) -> Parts<Tick, Event, Summary> {
        let mut s = core::mem::take(&mut self.s);
        if let Some(since) = self.not_closed_since {
            s.breaker_not_closed_ms += end.saturating_duration_since(since).as_millis();
        }
        s.in_flight_at_end = self.in_flight;
        s.success_latency_p50_us = self.all_latency.percentile(50);
        s.success_latency_p99_us = self.all_latency.percentile(99);
        Parts {
            ticks: self.ticks,
            events: self.events,
            summary: s,
            journal: None,
        }
    }
}

crate::json_fields!(Tick {
    t_ms,
    arrivals,
    shed,
    attempts,
    upstream_calls,
    upstream_failures,
    rejected,
    retries,
    gave_up_breaker,
    gave_up_budget,
    gave_up_attempts,
    succeeded,
    outage,
    breaker,
    budget_available,
    success_latency_p50_us,
    success_latency_p99_us
});
crate::json_fields!(Summary {
    budget,
    requests,
    shed,
    in_flight_at_end,
    succeeded,
    failed,
    attempts,
    upstream_calls,
    upstream_calls_in_outage,
    requests_in_outage,
    retries,
    retries_in_outage,
    rejected,
    gave_up_breaker,
    gave_up_budget,
    gave_up_attempts,
    trips,
    breaker_not_closed_ms,
    success_latency_p50_us,
    success_latency_p99_us
});
crate::json_enum!(Event {
    Breaker "breaker" { t_us, from, to },
    OutageStart "outage_start" { t_us, fail_permille },
    OutageEnd "outage_end" { t_us },
    StepCap "step_cap" { t_us },
});
