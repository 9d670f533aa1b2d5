//! Scenario `breaker`: a circuit breaker and retries in front of an upstream that fails for
//! windows of time, with or without a retry budget.
//!
//! Requests arrive (Poisson, `rate_per_sec`) and each makes up to `max_attempts` attempts.
//! An attempt asks heidi-core's [`Breaker`] for a permit; an admitted attempt calls the
//! upstream and reports the outcome. After a failure (upstream error or breaker rejection)
//! heidi-core's [`RetryPolicy`] decides: retry at a jittered backoff, or give up because the
//! attempts are spent, the breaker will still be open, or (with `budget`) the
//! [`RetryBudget`] is exhausted.
//!
//! The default outages show both protections. From 5 s to 15 s the upstream browns out (60 %
//! failures): below the breaker's trip rules, so the breaker stays closed and, without a
//! budget, every failure is retried and the upstream sees about twice the traffic (a retry
//! storm); the budget caps retries at 20 % of requests plus 10 per second. From 20 s to 25 s
//! it fails outright: the breaker trips, probes while half-open and closes again once the
//! upstream recovers. The summary counts upstream calls inside the outage windows.

use super::{encode, parse};
use crate::engine::{Class, Engine};
use crate::error::{SimError, check_range};
use crate::json::Value;
use crate::rng::Rng;
use crate::trace::{EventLog, Latencies, RunInfo, Ticker, Trace, check_timeline};
use crate::upstream::Upstream;
use heidi_core::breaker::{Breaker, BreakerConfig, Outcome, Permit, RateTrip, RateWindow, State};
use heidi_core::retry::{
    BudgetConfig, GiveUpReason, Jitter, RetryBudget, RetryDecision, RetryPolicy,
};
use heidi_core::{Duration, Instant};

/// Most outage windows.
pub const MAX_OUTAGES: usize = 8;
/// Highest arrival rate.
pub const MAX_RATE_PER_SEC: u32 = 100_000;
/// Most attempts per request.
pub const MAX_ATTEMPTS: u32 = 10;

/// A window of time in which the upstream fails at another rate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outage {
    /// Start, ms (inclusive).
    pub start_ms: u64,
    /// End, ms (exclusive).
    pub end_ms: u64,
    /// Failure probability inside the window, permille.
    pub fail_permille: u32,
}

/// The scenario's parameters; see the module docs for the defaults' story.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Simulated time, ms.
    pub duration_ms: u64,
    /// Tick width, ms.
    pub tick_ms: u64,
    /// Mean request arrivals per second (Poisson).
    pub rate_per_sec: u32,
    /// Upstream failure probability outside outages, permille.
    pub fail_permille: u32,
    /// Upstream base latency, ms.
    pub latency_ms: u64,
    /// Upstream latency jitter, ms.
    pub latency_jitter_ms: u64,
    /// Outage windows (at most [`MAX_OUTAGES`], non-overlapping).
    pub outages: Vec<Outage>,
    /// Whether retries draw on a retry budget.
    pub budget: bool,
    /// Retries allowed per 1000 requests in the budget's window.
    pub budget_ratio_permille: u32,
    /// Retries allowed per second regardless of traffic.
    pub budget_min_per_sec: u32,
    /// The budget's window, ms.
    pub budget_window_ms: u64,
    /// Attempts per request, the first included (1..=[`MAX_ATTEMPTS`]).
    pub max_attempts: u32,
    /// Delay before the first retry, ms.
    pub base_delay_ms: u64,
    /// Cap on the delay, ms.
    pub max_delay_ms: u64,
    /// Growth of the delay per failed attempt.
    pub multiplier: u32,
    /// Trip after this many consecutive failures (0: rule off).
    pub failure_threshold: u32,
    /// Trip when failures reach this permille of the last `rate_window_calls` calls (0: off).
    pub rate_threshold_permille: u32,
    /// Calls in the failure-rate window (1..=128).
    pub rate_window_calls: u32,
    /// Calls needed in the window before the rate rule applies.
    pub rate_min_calls: u32,
    /// How long the breaker stays open, ms.
    pub reset_timeout_ms: u64,
    /// Probes admitted while half-open (1..=8).
    pub half_open_max_probes: u32,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            duration_ms: 30_000,
            tick_ms: 250,
            rate_per_sec: 200,
            fail_permille: 10,
            latency_ms: 20,
            latency_jitter_ms: 10,
            outages: vec![
                Outage {
                    start_ms: 5_000,
                    end_ms: 15_000,
                    fail_permille: 600,
                },
                Outage {
                    start_ms: 20_000,
                    end_ms: 25_000,
                    fail_permille: 1_000,
                },
            ],
            budget: true,
            budget_ratio_permille: 200,
            budget_min_per_sec: 10,
            budget_window_ms: 10_000,
            max_attempts: 4,
            base_delay_ms: 50,
            max_delay_ms: 1_000,
            multiplier: 2,
            failure_threshold: 20,
            rate_threshold_permille: 800,
            rate_window_calls: 100,
            rate_min_calls: 20,
            reset_timeout_ms: 2_000,
            half_open_max_probes: 1,
        }
    }
}

/// One tick's aggregates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Start of the tick, ms.
    pub t_ms: u64,
    /// New requests.
    pub arrivals: u64,
    /// Attempts (first tries and retries).
    pub attempts: u64,
    /// Attempts the breaker let through to the upstream.
    pub upstream_calls: u64,
    /// Upstream calls that failed (ended in this tick).
    pub upstream_failures: u64,
    /// Attempts the breaker rejected.
    pub rejected: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Retries refused because the breaker would still be open.
    pub gave_up_breaker: u64,
    /// Retries refused by the budget.
    pub gave_up_budget: u64,
    /// Requests that failed with their attempts spent.
    pub gave_up_attempts: u64,
    /// Requests that succeeded.
    pub succeeded: u64,
    /// Whether an outage covers the tick's start.
    pub outage: bool,
    /// Breaker state at the tick's end (`closed`, `open`, `half_open`).
    pub breaker: &'static str,
    /// Retries the budget would allow at the tick's end (0 without a budget).
    pub budget_available: u64,
    /// Median end-to-end latency of the requests that succeeded in the tick, µs.
    pub latency_p50_us: Option<u64>,
    /// 99th percentile of the same, µs.
    pub latency_p99_us: Option<u64>,
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
    /// Attempts the breaker rejected.
    pub rejected: u64,
    /// Retries refused because the breaker would still be open.
    pub gave_up_breaker: u64,
    /// Retries refused by the budget.
    pub gave_up_budget: u64,
    /// Requests that failed with their attempts spent.
    pub gave_up_attempts: u64,
    /// Times the breaker opened.
    pub trips: u64,
    /// Time the breaker spent open or half-open, ms.
    pub breaker_not_closed_ms: u64,
    /// Median end-to-end latency of successful requests, µs.
    pub latency_p50_us: Option<u64>,
    /// 99th percentile of the same, µs.
    pub latency_p99_us: Option<u64>,
}

/// The trace of this scenario.
pub type BreakerTrace = Trace<Params, Tick, Event, Summary>;

enum Ev {
    Tick,
    Arrival,
    Attempt {
        arrived: Instant,
        attempts: u32,
    },
    Done {
        arrived: Instant,
        attempts: u32,
        permit: Permit,
        ok: bool,
        latency: Duration,
    },
    BreakerTimeout,
    OutageEdge {
        start: bool,
        fail_permille: u32,
    },
}

/// Parses `params` and runs the scenario.
///
/// # Errors
/// Bad parameters.
pub fn run(seed: u64, max_steps: u64, params: &Value) -> Result<Vec<u8>, SimError> {
    Ok(encode(&simulate(seed, max_steps, parse(params)?)?))
}

struct Setup {
    upstream: Upstream,
    policy: RetryPolicy,
    budget: RetryBudget,
    breaker: Breaker,
}

fn check(p: &Params) -> Result<Setup, SimError> {
    check_timeline(p.duration_ms, p.tick_ms)?;
    check_range(
        "rate_per_sec",
        p.rate_per_sec.into(),
        1,
        MAX_RATE_PER_SEC.into(),
    )?;
    check_range(
        "outages (count)",
        p.outages.len() as u64,
        0,
        MAX_OUTAGES as u64,
    )?;
    let mut last_end = 0;
    for (i, o) in p.outages.iter().enumerate() {
        check_range(
            &format!("outages[{i}].start_ms"),
            o.start_ms,
            last_end,
            p.duration_ms,
        )?;
        check_range(
            &format!("outages[{i}].end_ms"),
            o.end_ms,
            o.start_ms,
            p.duration_ms,
        )?;
        check_range(
            &format!("outages[{i}].fail_permille"),
            o.fail_permille.into(),
            0,
            1_000,
        )?;
        last_end = o.end_ms;
    }
    check_range(
        "max_attempts",
        p.max_attempts.into(),
        1,
        MAX_ATTEMPTS.into(),
    )?;
    check_range("base_delay_ms", p.base_delay_ms, 0, 3_600_000)?;
    check_range("max_delay_ms", p.max_delay_ms, p.base_delay_ms, 3_600_000)?;
    check_range("multiplier", p.multiplier.into(), 1, 1_000)?;
    let policy = RetryPolicy {
        max_attempts: p.max_attempts,
        base_delay: Duration::from_millis(p.base_delay_ms),
        max_delay: Duration::from_millis(p.max_delay_ms),
        multiplier: p.multiplier,
        jitter: Jitter::Equal,
    };
    policy
        .validate()
        .map_err(|e| SimError::param(e.field(), e))?;
    check_range(
        "budget_ratio_permille",
        p.budget_ratio_permille.into(),
        0,
        1_000_000,
    )?;
    check_range(
        "budget_min_per_sec",
        p.budget_min_per_sec.into(),
        0,
        1_000_000,
    )?;
    check_range("budget_window_ms", p.budget_window_ms, 10, 3_600_000)?;
    let budget = RetryBudget::new(BudgetConfig {
        window: Duration::from_millis(p.budget_window_ms),
        ratio_permille: p.budget_ratio_permille,
        min_retries_per_sec: p.budget_min_per_sec,
    })
    .map_err(|e| SimError::param("budget_window_ms", e))?;
    Ok(Setup {
        upstream: Upstream::new(p.fail_permille, p.latency_ms, p.latency_jitter_ms)?,
        policy,
        budget,
        breaker: breaker(p)?,
    })
}

fn breaker(p: &Params) -> Result<Breaker, SimError> {
    check_range(
        "rate_threshold_permille",
        p.rate_threshold_permille.into(),
        0,
        1_000,
    )?;
    check_range("rate_window_calls", p.rate_window_calls.into(), 1, 128)?;
    check_range(
        "rate_min_calls",
        p.rate_min_calls.into(),
        1,
        p.rate_window_calls.into(),
    )?;
    check_range("reset_timeout_ms", p.reset_timeout_ms, 1, 3_600_000)?;
    check_range("half_open_max_probes", p.half_open_max_probes.into(), 1, 8)?;
    let rate = (p.rate_threshold_permille > 0).then_some(RateTrip {
        threshold_permille: p.rate_threshold_permille as u16,
        min_calls: p.rate_min_calls,
        window: RateWindow::LastCalls(p.rate_window_calls as u8),
    });
    let config = BreakerConfig {
        failure_threshold: p.failure_threshold,
        rate,
        reset_timeout: Duration::from_millis(p.reset_timeout_ms),
        reset_timeout_max: Duration::from_millis(p.reset_timeout_ms),
        half_open_max_probes: p.half_open_max_probes as u8,
        ..BreakerConfig::DEFAULT
    };
    Breaker::new(config).map_err(|e| SimError::param(e.field(), e))
}

/// Runs the scenario.
///
/// # Errors
/// Bad parameters.
pub fn simulate(seed: u64, max_steps: u64, p: Params) -> Result<BreakerTrace, SimError> {
    let setup = check(&p)?;
    let mut w = World::new(seed, &p, setup);
    let mut engine = Engine::new(max_steps);
    let mut ticker = Ticker::new(p.duration_ms, p.tick_ms);
    engine.at(ticker.boundary(), Class::Boundary, Ev::Tick);
    for o in &p.outages {
        let fail_permille = o.fail_permille;
        engine.at(
            Instant::from_millis(o.start_ms),
            Class::Normal,
            Ev::OutageEdge {
                start: true,
                fail_permille,
            },
        );
        engine.at(
            Instant::from_millis(o.end_ms),
            Class::Normal,
            Ev::OutageEdge {
                start: false,
                fail_permille,
            },
        );
    }
    let first = w.gap();
    engine.after(first, Ev::Arrival);
    while let Some(ev) = engine.next_event() {
        match ev {
            Ev::Tick => {
                w.close_tick(engine.now(), &ticker);
                if !ticker.advance() {
                    break;
                }
                engine.at(ticker.boundary(), Class::Boundary, Ev::Tick);
            }
            Ev::Arrival => {
                w.arrive(&mut engine);
                let gap = w.gap();
                if engine.now().saturating_add(gap) < ticker.end() {
                    engine.after(gap, Ev::Arrival);
                }
            }
            Ev::Attempt { arrived, attempts } => w.attempt(&mut engine, arrived, attempts),
            Ev::Done {
                arrived,
                attempts,
                permit,
                ok,
                latency,
            } => {
                w.done(&mut engine, arrived, attempts, permit, ok, latency);
            }
            Ev::BreakerTimeout => {
                w.breaker_timeout_at = None;
                w.breaker.handle_timeout(engine.now());
            }
            Ev::OutageEdge {
                start,
                fail_permille,
            } => w.outage_edge(engine.now(), start, fail_permille),
        }
        w.after_step(&mut engine);
    }
    if engine.cap_reached() {
        let t_us = engine.now().as_micros();
        w.events.push(Event::StepCap { t_us });
    }
    let summary = w.summary(engine.now());
    let info = RunInfo {
        scenario: "breaker",
        seed,
        max_steps,
        tick_ms: p.tick_ms,
    };
    Ok(info.finish(&engine, p, w.ticks, w.events, summary))
}

struct World {
    rng: Rng,
    arrivals_rng: Rng,
    mean_gap_us: u64,
    upstream: Upstream,
    policy: RetryPolicy,
    budget: Option<RetryBudget>,
    breaker: Breaker,
    breaker_timeout_at: Option<Instant>,
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
            mean_gap_us: 1_000_000 / u64::from(p.rate_per_sec),
            upstream: setup.upstream,
            policy: setup.policy,
            budget: p.budget.then_some(setup.budget),
            breaker: setup.breaker,
            breaker_timeout_at: None,
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
        Duration::from_micros(self.arrivals_rng.exp_micros(self.mean_gap_us))
    }

    fn arrive(&mut self, engine: &mut Engine<Ev>) {
        let now = engine.now();
        self.tick.arrivals += 1;
        self.s.requests += 1;
        self.s.requests_in_outage += u64::from(self.outage.is_some());
        if let Some(b) = &mut self.budget {
            b.record_request(now);
        }
        self.attempt(engine, now, 0);
    }

    /// Attempt number `attempts + 1` of a request that arrived at `arrived`.
    fn attempt(&mut self, engine: &mut Engine<Ev>, arrived: Instant, attempts: u32) {
        let now = engine.now();
        let attempts = attempts + 1;
        self.tick.attempts += 1;
        self.s.attempts += 1;
        match self.breaker.acquire(now) {
            Ok(permit) => {
                self.tick.upstream_calls += 1;
                self.s.upstream_calls += 1;
                self.s.upstream_calls_in_outage += u64::from(self.outage.is_some());
                let fail = self.outage.unwrap_or(self.upstream.fail_permille());
                let call = self.upstream.call_failing(&mut self.rng, fail);
                let (ok, latency) = (call.ok, call.latency);
                engine.after(
                    latency,
                    Ev::Done {
                        arrived,
                        attempts,
                        permit,
                        ok,
                        latency,
                    },
                );
            }
            Err(_) => {
                self.tick.rejected += 1;
                self.s.rejected += 1;
                self.failed_attempt(engine, arrived, attempts);
            }
        }
    }

    fn done(
        &mut self,
        engine: &mut Engine<Ev>,
        arrived: Instant,
        attempts: u32,
        permit: Permit,
        ok: bool,
        latency: Duration,
    ) {
        let now = engine.now();
        if ok {
            let _ = self.breaker.record(now, permit, Outcome::Success(latency));
            self.tick.succeeded += 1;
            self.s.succeeded += 1;
            let total = now.saturating_duration_since(arrived);
            self.tick_latency.add(total);
            self.all_latency.add(total);
        } else {
            let _ = self.breaker.record(now, permit, Outcome::Failure(latency));
            self.tick.upstream_failures += 1;
            self.failed_attempt(engine, arrived, attempts);
        }
    }

    /// The retry decision after `attempts` failed attempts, all of it heidi-core's.
    fn failed_attempt(&mut self, engine: &mut Engine<Ev>, arrived: Instant, attempts: u32) {
        let now = engine.now();
        let random = self.rng.next_u64();
        let open_until = self.breaker.open_until();
        let decision = match &mut self.budget {
            Some(b) => self
                .policy
                .next_with_budget(now, attempts, random, open_until, b),
            None => self.policy.next(now, attempts, random, open_until),
        };
        match decision {
            RetryDecision::RetryAt(at) => {
                self.tick.retries += 1;
                self.s.retries += 1;
                self.s.retries_in_outage += u64::from(self.outage.is_some());
                engine.at(at, Class::Normal, Ev::Attempt { arrived, attempts });
            }
            RetryDecision::GiveUp(reason) => {
                self.s.failed += 1;
                let (tick, total) = match reason {
                    GiveUpReason::AttemptsExhausted { .. } => (
                        &mut self.tick.gave_up_attempts,
                        &mut self.s.gave_up_attempts,
                    ),
                    GiveUpReason::BreakerOpen { .. } => {
                        (&mut self.tick.gave_up_breaker, &mut self.s.gave_up_breaker)
                    }
                    GiveUpReason::BudgetExhausted { .. } => {
                        (&mut self.tick.gave_up_budget, &mut self.s.gave_up_budget)
                    }
                };
                *tick += 1;
                *total += 1;
            }
        }
    }

    fn outage_edge(&mut self, now: Instant, start: bool, fail_permille: u32) {
        let t_us = now.as_micros();
        if start {
            self.outage = Some(fail_permille);
            self.events.push(Event::OutageStart {
                t_us,
                fail_permille,
            });
        } else {
            self.outage = None;
            self.events.push(Event::OutageEnd { t_us });
        }
    }

    /// Drains the breaker's transitions and keeps one timeout event at its deadline.
    fn after_step(&mut self, engine: &mut Engine<Ev>) {
        while let Some(tr) = self.breaker.poll_event() {
            let t_us = tr.at.as_micros();
            let (from, to) = (tr.from.as_str(), tr.to.as_str());
            self.events.push(Event::Breaker { t_us, from, to });
            if tr.to == State::Open && tr.from == State::Closed {
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
        if due.is_some() && due != self.breaker_timeout_at {
            self.breaker_timeout_at = due;
            if let Some(at) = due {
                engine.at(at, Class::Normal, Ev::BreakerTimeout);
            }
        }
    }

    fn close_tick(&mut self, now: Instant, ticker: &Ticker) {
        let mut tick = core::mem::take(&mut self.tick);
        tick.t_ms = ticker.start_ms();
        tick.outage = self.outage.is_some();
        tick.breaker = self.breaker.state().as_str();
        tick.budget_available = self.budget.as_ref().map_or(0, |b| b.available(now));
        (tick.latency_p50_us, tick.latency_p99_us) = self.tick_latency.take_p50_p99();
        self.ticks.push(tick);
        self.tick.outage = self.outage.is_some();
    }

    fn summary(&mut self, end: Instant) -> Summary {
        let mut s = core::mem::take(&mut self.s);
        if let Some(since) = self.not_closed_since {
            s.breaker_not_closed_ms += end.saturating_duration_since(since).as_millis();
        }
        s.latency_p50_us = self.all_latency.percentile(50);
        s.latency_p99_us = self.all_latency.percentile(99);
        s
    }
}

crate::json_object!(Outage { start_ms, end_ms, fail_permille } required { start_ms, end_ms, fail_permille });
crate::json_object!(Params {
    duration_ms,
    tick_ms,
    rate_per_sec,
    fail_permille,
    latency_ms,
    latency_jitter_ms,
    outages,
    budget,
    budget_ratio_permille,
    budget_min_per_sec,
    budget_window_ms,
    max_attempts,
    base_delay_ms,
    max_delay_ms,
    multiplier,
    failure_threshold,
    rate_threshold_permille,
    rate_window_calls,
    rate_min_calls,
    reset_timeout_ms,
    half_open_max_probes
});
crate::json_fields!(Tick {
    t_ms,
    arrivals,
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
    latency_p50_us,
    latency_p99_us
});
crate::json_fields!(Summary {
    budget,
    requests,
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
    latency_p50_us,
    latency_p99_us
});
crate::json_enum!(Event {
    Breaker "breaker" { t_us, from, to },
    OutageStart "outage_start" { t_us, fail_permille },
    OutageEnd "outage_end" { t_us },
    StepCap "step_cap" { t_us },
});

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(budget: bool, seed: u64) -> BreakerTrace {
        let p = Params {
            budget,
            ..Params::default()
        };
        simulate(seed, 10_000_000, p).unwrap()
    }

    #[test]
    fn the_budget_prevents_the_retry_storm() {
        for seed in [1, 2, 3] {
            let (with, without) = (sim(true, seed).summary, sim(false, seed).summary);
            // Without a budget the brownout is retried into: far more upstream calls.
            assert!(
                with.upstream_calls_in_outage * 10 < without.upstream_calls_in_outage * 8,
                "seed {seed}: {} with vs {} without",
                with.upstream_calls_in_outage,
                without.upstream_calls_in_outage
            );
            assert!(with.gave_up_budget > 0);
            assert_eq!(without.gave_up_budget, 0);
        }
    }

    #[test]
    fn the_breaker_trips_in_the_hard_outage_and_recovers_after_it() {
        let t = sim(true, 5);
        let opened: Vec<u64> = t
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Breaker {
                    t_us, to: "open", ..
                } => Some(*t_us),
                _ => None,
            })
            .collect();
        assert!(
            opened
                .iter()
                .any(|&t| (20_000_000..25_000_000).contains(&t)),
            "{opened:?}"
        );
        // Closed again after the outage, and in the last tick.
        let closed_after = t
            .events
            .iter()
            .any(|e| matches!(e, Event::Breaker { t_us, to: "closed", .. } if *t_us >= 25_000_000));
        assert!(closed_after);
        assert_eq!(t.ticks.last().unwrap().breaker, "closed");
        // While open, the only upstream calls are probes: far fewer than arrivals.
        let hard: Vec<&Tick> = t
            .ticks
            .iter()
            .filter(|k| (21_000..25_000).contains(&k.t_ms))
            .collect();
        let calls: u64 = hard.iter().map(|k| k.upstream_calls).sum();
        let arrivals: u64 = hard.iter().map(|k| k.arrivals).sum();
        assert!(
            calls * 20 < arrivals,
            "{calls} calls for {arrivals} arrivals"
        );
        assert!(t.summary.trips >= 1 && t.summary.breaker_not_closed_ms >= 2_000);
    }

    #[test]
    fn every_request_is_accounted_for() {
        let t = sim(false, 4);
        let s = &t.summary;
        assert_eq!(
            s.failed,
            s.gave_up_attempts + s.gave_up_breaker + s.gave_up_budget
        );
        assert!(s.succeeded + s.failed <= s.requests);
        assert_eq!(s.attempts, s.upstream_calls + s.rejected);
        assert!(s.attempts <= s.requests * 4);
        let tick_calls: u64 = t.ticks.iter().map(|k| k.upstream_calls).sum();
        assert_eq!(tick_calls, s.upstream_calls);
    }

    #[test]
    fn without_outages_nothing_trips() {
        let p = Params {
            outages: vec![],
            fail_permille: 0,
            ..Params::default()
        };
        let t = simulate(1, 10_000_000, p).unwrap();
        assert_eq!(t.summary.trips, 0);
        assert_eq!(t.summary.retries, 0);
        assert_eq!(t.summary.failed, 0);
        assert!(t.summary.succeeded > 5_000);
        assert!(t.ticks.iter().all(|k| k.breaker == "closed"));
    }

    #[test]
    fn bad_parameters_name_the_field() {
        let cases = [
            (serde_json::json!({"rate_per_sec": 0}), "rate_per_sec"),
            (
                serde_json::json!({"outages": [{"start_ms": 10, "end_ms": 5, "fail_permille": 1}]}),
                "outages[0].end_ms",
            ),
            (
                serde_json::json!({"outages": [{"start_ms": 0, "end_ms": 50, "fail_permille": 1}, {"start_ms": 40, "end_ms": 60, "fail_permille": 1}]}),
                "outages[1].start_ms",
            ),
            (
                serde_json::json!({"outages": [{"start_ms": 0, "end_ms": 50, "fail_permille": 1001}]}),
                "outages[0].fail_permille",
            ),
            (serde_json::json!({"max_attempts": 0}), "max_attempts"),
            (
                serde_json::json!({"max_attempts": MAX_ATTEMPTS + 1}),
                "max_attempts",
            ),
            (
                serde_json::json!({"max_delay_ms": 1, "base_delay_ms": 5}),
                "max_delay_ms",
            ),
            (serde_json::json!({"multiplier": 0}), "multiplier"),
            (
                serde_json::json!({"budget_window_ms": 5}),
                "budget_window_ms",
            ),
            (
                serde_json::json!({"failure_threshold": 0, "rate_threshold_permille": 0}),
                "failure_threshold",
            ),
            (serde_json::json!({"rate_min_calls": 200}), "rate_min_calls"),
            (
                serde_json::json!({"rate_window_calls": 129}),
                "rate_window_calls",
            ),
            (
                serde_json::json!({"reset_timeout_ms": 0}),
                "reset_timeout_ms",
            ),
            (
                serde_json::json!({"half_open_max_probes": 9}),
                "half_open_max_probes",
            ),
        ];
        for (params, field) in cases {
            let e = run(
                1,
                1_000,
                &crate::json::parse(params.to_string().as_bytes()).unwrap(),
            )
            .unwrap_err();
            assert_eq!(e.code, "bad_params", "{e}");
            assert!(e.message.starts_with(field), "{field}: {e}");
        }
        let nine = vec![
            serde_json::json!({"start_ms": 0, "end_ms": 0, "fail_permille": 0});
            MAX_OUTAGES + 1
        ];
        let e = run(
            1,
            1_000,
            &crate::json::parse(
                serde_json::json!({ "outages": nine })
                    .to_string()
                    .as_bytes(),
            )
            .unwrap(),
        )
        .unwrap_err();
        assert!(e.message.starts_with("outages (count)"), "{e}");
        let e = run(
            1,
            1_000,
            &crate::json::parse(serde_json::json!({"budget": "yes"}).to_string().as_bytes())
                .unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.code, "bad_json");
    }
}
