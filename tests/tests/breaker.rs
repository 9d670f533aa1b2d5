//! Model-based property tests of `heidi_core::breaker::Breaker`.
//!
//! A plain reference model (vectors, u64 generations, a log of results instead of rings) runs
//! next to the breaker on random sequences of time steps, acquires, records (success,
//! failure, slow success), abandons, admin changes and timeouts. After every step the two must
//! agree on every answer and on state, deadlines and probes in flight. Invariants checked on
//! the breaker itself: it moves only along the allowed edges (automatic edges on calls and
//! timeouts, admin edges on admin calls), it never has more half-open probes out than
//! configured, and an open breaker becomes half-open exactly at its deadline when the host
//! only calls `handle_timeout` at `poll_timeout()`.

use heidi_core::breaker::{
    Breaker, BreakerConfig, Outcome, Permit, RateTrip, RateWindow, Recorded, Rejected, State,
    Transition,
};
use heidi_core::{Duration, Instant};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(heidi_tests::proptest_cases(256))
}

const SLOW_MS: u64 = 300;

fn rate() -> impl Strategy<Value = Option<RateTrip>> {
    let window = prop_oneof![
        (1..=128u8).prop_map(RateWindow::LastCalls),
        (1..8u64).prop_map(|s| RateWindow::Time(Duration::from_secs(s))),
    ];
    let trip = (1..=1_000u16, 1..40u32, window).prop_map(|(threshold_permille, min, window)| {
        let min_calls = match window {
            RateWindow::LastCalls(n) => min.min(n as u32),
            RateWindow::Time(_) => min,
        };
        RateTrip {
            threshold_permille,
            min_calls,
            window,
        }
    });
    prop::option::of(trip)
}

fn breaker_config() -> impl Strategy<Value = BreakerConfig> {
    let timing = (1..5_000u64, 1..4u32, 1..20_000u64, 1..4_000u64);
    let probes = (1..=4u8, 1..=3u8, prop::option::of(Just(SLOW_MS)));
    (0..7u32, rate(), timing, probes).prop_map(|(threshold, rate, timing, probes)| {
        let (reset_ms, backoff, extra_ms, probe_ms) = timing;
        let (max_probes, successes, slow) = probes;
        BreakerConfig {
            failure_threshold: if rate.is_none() {
                threshold.max(1)
            } else {
                threshold
            },
            rate,
            slow_call_threshold: slow.map(Duration::from_millis),
            reset_timeout: Duration::from_millis(reset_ms),
            reset_backoff: backoff,
            reset_timeout_max: Duration::from_millis(reset_ms + extra_ms),
            half_open_max_probes: max_probes,
            success_threshold: successes,
            probe_timeout: Duration::from_millis(probe_ms),
        }
    })
}

/// One step of a run.
#[derive(Clone, Debug)]
enum Op {
    /// Let this many milliseconds pass.
    Wait(u64),
    Acquire,
    /// Return the held permit `i % held` with an outcome.
    Succeed(usize),
    Fail(usize),
    SucceedSlowly(usize),
    Abandon(usize),
    /// Jump to `poll_timeout()` and call `handle_timeout` there (and just before it).
    Timeout,
    ForceOpen,
    Disable,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    let i = any::<usize>();
    prop_oneof![
        4 => (0..3_000u64).prop_map(Op::Wait),
        8 => Just(Op::Acquire),
        4 => i.prop_map(Op::Succeed),
        5 => i.prop_map(Op::Fail),
        2 => i.prop_map(Op::SucceedSlowly),
        1 => i.prop_map(Op::Abandon),
        3 => Just(Op::Timeout),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Disable),
        1 => Just(Op::Reset),
    ]
}

/// What the model remembers about a permit it issued.
#[derive(Clone, Copy, Debug)]
struct ModelPermit {
    generation: u64,
    probe: Option<u64>,
}

/// The reference breaker: the rules of DESIGN §4 written as plainly as possible.
struct Model {
    c: BreakerConfig,
    state: State,
    generation: u64,
    open_until: Instant,
    consecutive: u32,
    trips: u32,
    successes: u32,
    /// (probe id, deadline)
    probes: Vec<(u64, Instant)>,
    next_probe: u64,
    /// (time bucket or call number, failed) of calls counted while closed.
    results: Vec<(u64, bool)>,
    latest_bucket: u64,
    events: Vec<Transition>,
}

impl Model {
    fn new(c: BreakerConfig) -> Model {
        Model {
            c,
            state: State::Closed,
            generation: 0,
            open_until: Instant::ZERO,
            consecutive: 0,
            trips: 0,
            successes: 0,
            probes: Vec::new(),
            next_probe: 0,
            results: Vec::new(),
            latest_bucket: 0,
            events: Vec::new(),
        }
    }

    fn go(&mut self, now: Instant, to: State) {
        if self.state == to {
            return;
        }
        self.events.push(Transition {
            from: self.state,
            to,
            at: now,
        });
        self.state = to;
        self.generation += 1;
        self.probes.clear();
        self.successes = 0;
        match to {
            State::Closed => self.clear(),
            State::Open => self.open_until = now + open_time(&self.c, self.trips),
            _ => {}
        }
    }

    fn clear(&mut self) {
        self.consecutive = 0;
        self.trips = 0;
        self.results.clear();
    }

    fn timeouts(&mut self, now: Instant) {
        match self.state {
            State::Open if now >= self.open_until => self.go(now, State::HalfOpen),
            State::HalfOpen if self.probes.iter().any(|(_, d)| now >= *d) => {
                self.trips += 1;
                self.go(now, State::Open);
            }
            _ => {}
        }
    }

    fn acquire(&mut self, now: Instant) -> Result<ModelPermit, Rejected> {
        self.timeouts(now);
        let generation = self.generation;
        match self.state {
            State::Closed | State::Disabled => Ok(ModelPermit {
                generation,
                probe: None,
            }),
            State::Open => Err(Rejected {
                until: self.open_until,
            }),
            State::ForcedOpen => Err(Rejected {
                until: Instant::MAX,
            }),
            State::HalfOpen if self.probes.len() < self.c.half_open_max_probes as usize => {
                let id = self.next_probe;
                self.next_probe += 1;
                self.probes.push((id, now + self.c.probe_timeout));
                Ok(ModelPermit {
                    generation,
                    probe: Some(id),
                })
            }
            State::HalfOpen => Err(Rejected {
                until: self.probe_deadline().unwrap(),
            }),
        }
    }

    fn probe_deadline(&self) -> Option<Instant> {
        self.probes.iter().map(|(_, d)| *d).min()
    }

    fn failed(&self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Failure(_) => true,
            Outcome::Success(d) => self.c.slow_call_threshold.is_some_and(|s| d >= s),
        }
    }

    fn record(&mut self, now: Instant, p: ModelPermit, outcome: Outcome) -> Recorded {
        if self.state == State::HalfOpen {
            self.timeouts(now);
        }
        if p.generation != self.generation {
            return Recorded::Stale;
        }
        let failed = self.failed(outcome);
        match self.state {
            State::Closed => self.record_closed(now, failed),
            State::HalfOpen => {
                self.probes.retain(|(id, _)| Some(*id) != p.probe);
                if failed {
                    self.trips += 1;
                    self.go(now, State::Open);
                } else {
                    self.successes += 1;
                    if self.successes >= self.c.success_threshold as u32 {
                        self.go(now, State::Closed);
                    }
                }
            }
            State::Disabled => return Recorded::Ignored,
            State::Open | State::ForcedOpen => unreachable!("no permits are issued there"),
        }
        Recorded::Counted
    }

    fn record_closed(&mut self, now: Instant, failed: bool) {
        self.consecutive = if failed { self.consecutive + 1 } else { 0 };
        let by_count =
            self.c.failure_threshold != 0 && self.consecutive >= self.c.failure_threshold;
        if by_count | self.rate_trips(now, failed) {
            self.trips = 1;
            self.go(now, State::Open);
        }
    }

    /// Appends the call and applies the rate rule to the calls in its window.
    fn rate_trips(&mut self, now: Instant, failed: bool) -> bool {
        let Some(rate) = self.c.rate else {
            return false;
        };
        let in_window: Vec<bool> = match rate.window {
            RateWindow::LastCalls(n) => {
                self.results.push((0, failed));
                let skip = self.results.len().saturating_sub(n as usize);
                self.results[skip..].iter().map(|r| r.1).collect()
            }
            RateWindow::Time(w) => {
                let bucket = (now.as_micros() / (w.as_micros() / 10)).max(self.latest_bucket);
                self.latest_bucket = bucket;
                self.results.push((bucket, failed));
                let live = self.results.iter().filter(|(b, _)| b + 10 > bucket);
                live.map(|r| r.1).collect()
            }
        };
        let calls = in_window.len() as u64;
        let failures = in_window.iter().filter(|f| **f).count() as u64;
        calls >= rate.min_calls as u64 && failures * 1_000 >= rate.threshold_permille as u64 * calls
    }

    fn abandon(&mut self, p: ModelPermit) {
        if p.generation == self.generation && self.state == State::HalfOpen {
            self.probes.retain(|(id, _)| Some(*id) != p.probe);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Open => Some(self.open_until),
            State::HalfOpen => self.probe_deadline(),
            _ => None,
        }
    }

    fn open_until(&self) -> Option<Instant> {
        match self.state {
            State::Open => Some(self.open_until),
            State::ForcedOpen => Some(Instant::MAX),
            _ => None,
        }
    }
}

/// `min(reset × backoff^(trips − 1), max)`, by repeated multiplication in u128.
fn open_time(c: &BreakerConfig, trips: u32) -> Duration {
    let max = c.reset_timeout_max.as_micros() as u128;
    let mut d = c.reset_timeout.as_micros() as u128;
    for _ in 1..trips {
        if d >= max {
            break;
        }
        d *= c.reset_backoff as u128;
    }
    Duration::from_micros(d.min(max) as u64)
}

fn automatic_edge(t: &Transition) -> bool {
    matches!(
        (t.from, t.to),
        (State::Closed, State::Open)
            | (State::Open, State::HalfOpen)
            | (State::HalfOpen, State::Closed)
            | (State::HalfOpen, State::Open)
    )
}

/// The pair under test, with the permits the host still holds.
struct Run {
    b: Breaker,
    m: Model,
    now: Instant,
    held: Vec<(Permit, ModelPermit)>,
}

impl Run {
    fn take(&mut self, i: usize) -> Option<(Permit, ModelPermit)> {
        if self.held.is_empty() {
            return None;
        }
        let n = self.held.len();
        Some(self.held.swap_remove(i % n))
    }

    fn record(&mut self, i: usize, outcome: Outcome) -> Result<(), TestCaseError> {
        let Some((p, mp)) = self.take(i) else {
            return Ok(());
        };
        let got = self.b.record(self.now, p, outcome);
        prop_assert_eq!(got, self.m.record(self.now, mp, outcome));
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let ms = Duration::from_millis;
        match *op {
            Op::Wait(n) => self.now += ms(n),
            Op::Acquire => {
                let got = self.b.acquire(self.now);
                let want = self.m.acquire(self.now);
                prop_assert_eq!(got.as_ref().err(), want.as_ref().err());
                if let (Ok(p), Ok(mp)) = (got, want) {
                    prop_assert_eq!(p.is_probe(), mp.probe.is_some());
                    self.held.push((p, mp));
                }
            }
            Op::Succeed(i) => self.record(i, Outcome::Success(ms(SLOW_MS - 1)))?,
            Op::SucceedSlowly(i) => self.record(i, Outcome::Success(ms(SLOW_MS)))?,
            Op::Fail(i) => self.record(i, Outcome::Failure(ms(5)))?,
            Op::Abandon(i) => {
                if let Some((p, mp)) = self.take(i) {
                    self.b.abandon(p);
                    self.m.abandon(mp);
                }
            }
            Op::Timeout => self.timeout()?,
            Op::ForceOpen => {
                self.b.force_open(self.now);
                self.m.go(self.now, State::ForcedOpen);
            }
            Op::Disable => {
                self.b.disable(self.now);
                self.m.go(self.now, State::Disabled);
            }
            Op::Reset => {
                self.b.reset(self.now);
                self.m.go(self.now, State::Closed);
                self.m.clear();
            }
        }
        Ok(())
    }

    /// Drives only `handle_timeout` at the deadline: nothing happens a microsecond before it,
    /// and the due transition happens exactly at it.
    fn timeout(&mut self) -> Result<(), TestCaseError> {
        let Some(deadline) = self.b.poll_timeout() else {
            return Ok(());
        };
        let before = self.b.state();
        if deadline > self.now {
            self.b.handle_timeout(deadline - Duration::from_micros(1));
            prop_assert_eq!(self.b.state(), before, "changed before its deadline");
            self.now = deadline;
        }
        self.b.handle_timeout(self.now);
        self.m.timeouts(self.now);
        let expected = match before {
            State::Open => State::HalfOpen,
            State::HalfOpen => State::Open,
            other => other,
        };
        prop_assert_eq!(self.b.state(), expected, "no transition at the deadline");
        Ok(())
    }

    fn check(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let (b, m) = (&self.b, &self.m);
        prop_assert_eq!(b.state(), m.state);
        prop_assert_eq!(b.open_until(), m.open_until());
        prop_assert_eq!(b.poll_timeout(), m.poll_timeout());
        prop_assert_eq!(b.probes_in_flight(), m.probes.len());
        prop_assert!(b.probes_in_flight() <= b.config().half_open_max_probes as usize);
        if b.state() == State::Closed {
            prop_assert_eq!(b.consecutive_failures(), m.consecutive);
        }
        let admin = matches!(op, Op::ForceOpen | Op::Disable | Op::Reset);
        let mut want = self.m.events.drain(..);
        while let Some(t) = self.b.poll_event() {
            prop_assert_eq!(Some(t), want.next());
            prop_assert!(t.from != t.to);
            if admin {
                let target = match op {
                    Op::ForceOpen => State::ForcedOpen,
                    Op::Disable => State::Disabled,
                    _ => State::Closed,
                };
                prop_assert_eq!(t.to, target, "admin edge");
            } else {
                prop_assert!(automatic_edge(&t), "not an allowed edge: {:?}", t);
            }
        }
        prop_assert_eq!(want.next(), None);
        prop_assert_eq!(self.b.dropped_events(), 0);
        Ok(())
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_breaker_matches_its_model(
        c in prop_oneof![Just(BreakerConfig::DEFAULT), breaker_config()],
        ops in prop::collection::vec(op(), 1..300),
    ) {
        let b = Breaker::new(c).unwrap();
        let mut run = Run { b, m: Model::new(c), now: Instant::from_secs(1), held: Vec::new() };
        for op in &ops {
            run.step(op)?;
            run.check(op)?;
            // Keep the held permits bounded: a host that leaks permits is tested by probes
            // timing out, not by an ever-growing vector.
            if run.held.len() > 32 {
                let (p, mp) = run.held.remove(0);
                run.b.abandon(p);
                run.m.abandon(mp);
            }
        }
    }

    #[test]
    fn an_idle_open_breaker_half_opens_at_its_deadline(
        c in breaker_config(),
        trip_at in 0..1_000_000_000u64,
        lost_probes in 0..6usize,
    ) {
        let mut b = Breaker::new(c).unwrap();
        let mut now = Instant::from_micros(trip_at);
        b.force_open(now);
        b.reset(now);
        // Every rule trips within 128 straight failures.
        for _ in 0..128 {
            if b.state() != State::Closed {
                break;
            }
            let p = b.acquire(now).unwrap();
            let _ = b.record(now, p, Outcome::Failure(Duration::ZERO));
        }
        prop_assert_eq!(b.state(), State::Open);
        // From here on only timeouts (and probes that the host loses) drive the breaker.
        for round in 0..=lost_probes {
            let deadline = b.poll_timeout().unwrap();
            prop_assert_eq!(Some(deadline), b.open_until());
            prop_assert!(deadline > now);
            b.handle_timeout(deadline - Duration::from_micros(1));
            prop_assert_eq!(b.state(), State::Open);
            b.handle_timeout(deadline);
            prop_assert_eq!(b.state(), State::HalfOpen, "round {}", round);
            now = deadline;
            if round == lost_probes {
                break;
            }
            // A probe that never comes back re-opens the breaker on time.
            let lost = b.acquire(now).unwrap();
            prop_assert!(lost.is_probe());
            drop(lost);
            let probe_deadline = b.poll_timeout().unwrap();
            prop_assert_eq!(probe_deadline, now + c.probe_timeout);
            b.handle_timeout(probe_deadline);
            prop_assert_eq!(b.state(), State::Open);
            now = probe_deadline;
        }
    }
}
