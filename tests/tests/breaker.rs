//! Model-based property tests of `heidi_core::breaker::Breaker`.
//!
//! Two breakers (same configuration, tags 1 and 2, one clock) run next to two plain reference
//! models on random sequences of time steps, acquires, returns (success, failure, slow
//! success, abandon, a permit the host loses), permits returned to the *other* breaker,
//! admin calls and timeouts. After every step each breaker and its model must agree on every
//! answer and on state, deadlines, probes in flight and journaled transitions.
//!
//! The model states the rules instead of copying the mechanism: it keeps, for every permit it
//! issued and has not had back, whether a state transition or an admin call of the issuing
//! breaker has happened since (then the permit is stale), and a probe slot is simply a live
//! probe permit not yet returned. Every call that takes `now` first applies due timeouts. A
//! permit returned to the other breaker is foreign and changes nothing there.
//!
//! Invariants checked on the breakers themselves: they move only along the allowed edges
//! (automatic edges on calls and timeouts, admin edges on admin calls), never have more
//! half-open probes out than configured, and an open breaker becomes half-open exactly at its
//! deadline when the host only calls `handle_timeout` at `poll_timeout()`.

use std::collections::BTreeMap;

use heidi_core::breaker::{
    Breaker, BreakerConfig, Outcome, Permit, RateTrip, RateWindow, Recorded, Rejected, State,
    Transition,
};
use heidi_core::{Duration, Instant};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    heidi_tests::proptest_config(256)
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

/// How the host hands a permit back.
#[derive(Clone, Copy, Debug)]
enum Return {
    Succeed,
    SucceedSlowly,
    Fail,
    Abandon,
    /// Never: the host drops the permit.
    Lose,
}

/// An admin call.
#[derive(Clone, Copy, Debug)]
enum Admin {
    ForceOpen,
    Disable,
    Reset,
}

impl Admin {
    fn target(self) -> State {
        match self {
            Admin::ForceOpen => State::ForcedOpen,
            Admin::Disable => State::Disabled,
            Admin::Reset => State::Closed,
        }
    }
}

/// One step of a run. `k` picks a breaker (`k % 2`), `i` a held permit (`i % held`).
#[derive(Clone, Debug)]
enum Op {
    /// Let this many milliseconds pass.
    Wait(u64),
    Acquire(usize),
    /// Return held permit `i` to the breaker that issued it.
    Return(usize, Return),
    /// Return held permit `i` to the other breaker (a host bug).
    Misroute(usize, Return),
    /// Jump to breaker `k`'s `poll_timeout()` and call `handle_timeout` there (and just
    /// before it).
    Timeout(usize),
    Admin(usize, Admin),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..2usize;
    let i = any::<usize>();
    let ret = prop_oneof![
        4 => Just(Return::Succeed),
        2 => Just(Return::SucceedSlowly),
        5 => Just(Return::Fail),
        3 => Just(Return::Abandon),
        1 => Just(Return::Lose),
    ];
    let admin = prop_oneof![
        1 => Just(Admin::ForceOpen),
        1 => Just(Admin::Disable),
        2 => Just(Admin::Reset),
    ];
    prop_oneof![
        4 => (0..3_000u64).prop_map(Op::Wait),
        // Long enough to pass the default open and probe times.
        1 => (0..100_000u64).prop_map(Op::Wait),
        8 => k.clone().prop_map(Op::Acquire),
        12 => (i, ret.clone()).prop_map(|(i, r)| Op::Return(i, r)),
        2 => (i, ret).prop_map(|(i, r)| Op::Misroute(i, r)),
        3 => k.clone().prop_map(Op::Timeout),
        3 => (k, admin).prop_map(|(k, a)| Op::Admin(k, a)),
    ]
}

/// What the model knows about a permit it issued and has not had back.
#[derive(Clone, Copy, Debug)]
struct Issued {
    /// The deadline of a half-open probe; `None` for any other permit.
    probe_deadline: Option<Instant>,
    /// A state transition or an admin call of the issuing breaker happened since it was
    /// issued: the permit is stale.
    overtaken: bool,
}

/// The reference breaker: the rules of docs/CORE.md written as plainly as possible.
struct Model {
    c: BreakerConfig,
    state: State,
    open_until: Instant,
    consecutive: u32,
    /// Trips since the breaker last closed.
    trips: u32,
    /// Successful probes since the breaker last half-opened.
    successes: u32,
    /// The permits issued and not returned, by the run's permit number.
    outstanding: BTreeMap<u64, Issued>,
    /// (time bucket or 0, failed) of the calls counted since the breaker last closed.
    results: Vec<(u64, bool)>,
    latest_bucket: u64,
    events: Vec<Transition>,
}

impl Model {
    fn new(c: BreakerConfig) -> Model {
        Model {
            c,
            state: State::Closed,
            open_until: Instant::ZERO,
            consecutive: 0,
            trips: 0,
            successes: 0,
            outstanding: BTreeMap::new(),
            results: Vec::new(),
            latest_bucket: 0,
            events: Vec::new(),
        }
    }

    /// Every outstanding permit of this breaker turns stale.
    fn overtake_permits(&mut self) {
        for p in self.outstanding.values_mut() {
            p.overtaken = true;
        }
    }

    /// Deadlines of the probes that hold a slot: live probe permits not yet returned.
    fn probe_deadlines(&self) -> impl Iterator<Item = Instant> + '_ {
        let live = self.outstanding.values().filter(|p| !p.overtaken);
        live.filter_map(|p| p.probe_deadline)
    }

    fn probes_in_flight(&self) -> usize {
        self.probe_deadlines().count()
    }

    fn journal(&mut self, now: Instant, to: State) {
        if self.state != to {
            let from = self.state;
            self.events.push(Transition { from, to, at: now });
            self.state = to;
        }
    }

    /// An automatic transition (always to another state).
    fn transition(&mut self, now: Instant, to: State) {
        assert_ne!(self.state, to);
        self.journal(now, to);
        self.overtake_permits();
        match to {
            State::Closed => self.clear(),
            State::Open => self.open_until = now + open_time(&self.c, self.trips),
            State::HalfOpen => self.successes = 0,
            _ => unreachable!("admin states are entered by admin calls only"),
        }
    }

    /// An admin call: journaled if the state changes, and it always overtakes every permit.
    fn admin(&mut self, now: Instant, to: State) {
        self.journal(now, to);
        self.overtake_permits();
        if to == State::Closed {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.consecutive = 0;
        self.trips = 0;
        self.results.clear();
    }

    fn timeouts(&mut self, now: Instant) {
        match self.state {
            State::Open if now >= self.open_until => self.transition(now, State::HalfOpen),
            State::HalfOpen if self.probe_deadlines().any(|d| now >= d) => {
                self.trips += 1;
                self.transition(now, State::Open);
            }
            _ => {}
        }
    }

    /// Issues permit number `id`, or says why not; `Ok(true)` for a probe.
    fn acquire(&mut self, now: Instant, id: u64) -> Result<bool, Rejected> {
        self.timeouts(now);
        let probe_deadline = match self.state {
            State::Closed | State::Disabled => None,
            State::Open => {
                return Err(Rejected {
                    until: self.open_until,
                });
            }
            State::ForcedOpen => {
                return Err(Rejected {
                    until: Instant::MAX,
                });
            }
            State::HalfOpen if self.probes_in_flight() < self.c.half_open_max_probes as usize => {
                Some(now + self.c.probe_timeout)
            }
            State::HalfOpen => {
                let until = self.probe_deadlines().min().unwrap();
                return Err(Rejected { until });
            }
        };
        let overtaken = false;
        let issued = Issued {
            probe_deadline,
            overtaken,
        };
        self.outstanding.insert(id, issued);
        Ok(probe_deadline.is_some())
    }

    fn failed(&self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Failure(_) => true,
            Outcome::Success(d) => self.c.slow_call_threshold.is_some_and(|s| d >= s),
        }
    }

    /// Takes back permit `id` (`None`: one this breaker did not issue) with an outcome.
    fn record(&mut self, now: Instant, id: Option<u64>, outcome: Outcome) -> Recorded {
        self.timeouts(now);
        let Some(id) = id else {
            return Recorded::Foreign;
        };
        let issued = self.outstanding.remove(&id).expect("issued here");
        if issued.overtaken {
            return Recorded::Stale;
        }
        let failed = self.failed(outcome);
        match self.state {
            State::Closed => self.record_closed(now, failed),
            State::HalfOpen => {
                assert!(issued.probe_deadline.is_some());
                if failed {
                    self.trips += 1;
                    self.transition(now, State::Open);
                } else {
                    self.successes += 1;
                    if self.successes >= self.c.success_threshold as u32 {
                        self.transition(now, State::Closed);
                    }
                }
            }
            State::Disabled => return Recorded::Ignored,
            State::Open | State::ForcedOpen => unreachable!("entering them overtakes all"),
        }
        Recorded::Counted
    }

    fn record_closed(&mut self, now: Instant, failed: bool) {
        self.consecutive = if failed { self.consecutive + 1 } else { 0 };
        let by_count =
            self.c.failure_threshold != 0 && self.consecutive >= self.c.failure_threshold;
        if by_count | self.rate_trips(now, failed) {
            self.trips = 1;
            self.transition(now, State::Open);
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

    /// Takes back permit `id` (`None`: one this breaker did not issue) unused.
    fn abandon(&mut self, now: Instant, id: Option<u64>) {
        self.timeouts(now);
        if let Some(id) = id {
            self.outstanding.remove(&id).expect("issued here");
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Open => Some(self.open_until),
            State::HalfOpen => self.probe_deadlines().min(),
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

/// A permit the host holds: the breaker that issued it and its number.
struct Held {
    issuer: usize,
    id: u64,
    permit: Permit,
}

/// The two breakers under test and their models, with the permits the host still holds.
struct Run {
    b: [Breaker; 2],
    m: [Model; 2],
    now: Instant,
    held: Vec<Held>,
    next_id: u64,
}

impl Run {
    fn new(c: BreakerConfig) -> Run {
        let b = [1, 2].map(|tag| Breaker::with_tag(c, tag).unwrap());
        let m = [Model::new(c), Model::new(c)];
        let (now, held, next_id) = (Instant::from_secs(1), Vec::new(), 0);
        Run {
            b,
            m,
            now,
            held,
            next_id,
        }
    }

    /// Takes a held permit: any of them for an even `i`, one of the three newest for an odd
    /// `i` (so that a probe often comes back soon after it was issued, or just after its
    /// deadline).
    fn take(&mut self, i: usize) -> Option<Held> {
        let n = self.held.len();
        if n == 0 {
            return None;
        }
        let at = match i % 2 {
            0 => (i / 2) % n,
            _ => n - 1 - (i / 2) % n.min(3),
        };
        Some(self.held.swap_remove(at))
    }

    fn acquire(&mut self, k: usize) -> Result<(), TestCaseError> {
        let id = self.next_id;
        self.next_id += 1;
        let got = self.b[k].acquire(self.now);
        let want = self.m[k].acquire(self.now, id);
        prop_assert_eq!(got.as_ref().err(), want.as_ref().err());
        if let (Ok(permit), Ok(probe)) = (got, want) {
            prop_assert_eq!(permit.is_probe(), probe);
            prop_assert_eq!(permit.tag(), self.b[k].tag());
            self.held.push(Held {
                issuer: k,
                id,
                permit,
            });
        }
        Ok(())
    }

    /// Hands held permit `i` back to its issuer, or to the other breaker if `misroute`.
    fn give_back(&mut self, i: usize, how: Return, misroute: bool) -> Result<(), TestCaseError> {
        let Some(Held { issuer, id, permit }) = self.take(i) else {
            return Ok(());
        };
        let (to, id) = match misroute {
            false => (issuer, Some(id)),
            true => (1 - issuer, None),
        };
        let ms = Duration::from_millis;
        let outcome = match how {
            Return::Succeed => Outcome::Success(ms(SLOW_MS - 1)),
            Return::SucceedSlowly => Outcome::Success(ms(SLOW_MS)),
            Return::Fail => Outcome::Failure(ms(5)),
            Return::Abandon => {
                self.b[to].abandon(self.now, permit);
                self.m[to].abandon(self.now, id);
                return Ok(());
            }
            // The issuer's model keeps the permit outstanding: its probe times out.
            Return::Lose => {
                drop(permit);
                return Ok(());
            }
        };
        let got = self.b[to].record(self.now, permit, outcome);
        prop_assert_eq!(got, self.m[to].record(self.now, id, outcome));
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Wait(n) => self.now += Duration::from_millis(n),
            Op::Acquire(k) => self.acquire(k)?,
            Op::Return(i, how) => self.give_back(i, how, false)?,
            Op::Misroute(i, how) => self.give_back(i, how, true)?,
            Op::Timeout(k) => self.timeout(k)?,
            Op::Admin(k, admin) => {
                let b = &mut self.b[k];
                match admin {
                    Admin::ForceOpen => b.force_open(self.now),
                    Admin::Disable => b.disable(self.now),
                    Admin::Reset => b.reset(self.now),
                }
                self.m[k].admin(self.now, admin.target());
            }
        }
        // Keep the held permits bounded: a host that leaks permits is tested by `Lose`.
        if self.held.len() > 32 {
            let Held { issuer, id, permit } = self.held.remove(0);
            self.b[issuer].abandon(self.now, permit);
            self.m[issuer].abandon(self.now, Some(id));
        }
        Ok(())
    }

    /// Drives only `handle_timeout` at breaker `k`'s deadline: nothing happens a microsecond
    /// before it, and the due transition happens exactly at it.
    fn timeout(&mut self, k: usize) -> Result<(), TestCaseError> {
        let b = &mut self.b[k];
        let Some(deadline) = b.poll_timeout() else {
            return Ok(());
        };
        let before = b.state();
        if deadline > self.now {
            b.handle_timeout(deadline - Duration::from_micros(1));
            prop_assert_eq!(b.state(), before, "changed before its deadline");
            self.now = deadline;
        }
        b.handle_timeout(self.now);
        self.m[k].timeouts(self.now);
        let expected = match before {
            State::Open => State::HalfOpen,
            State::HalfOpen => State::Open,
            other => other,
        };
        prop_assert_eq!(b.state(), expected, "no transition at the deadline");
        Ok(())
    }

    fn check(&mut self, op: &Op) -> Result<(), TestCaseError> {
        for k in 0..2 {
            let admin = match *op {
                Op::Admin(j, admin) if j == k => Some(admin.target()),
                _ => None,
            };
            self.check_one(k, admin)?;
        }
        Ok(())
    }

    fn check_one(&mut self, k: usize, admin: Option<State>) -> Result<(), TestCaseError> {
        let (b, m) = (&mut self.b[k], &mut self.m[k]);
        prop_assert_eq!(b.state(), m.state);
        prop_assert_eq!(b.open_until(), m.open_until());
        prop_assert_eq!(b.poll_timeout(), m.poll_timeout());
        prop_assert_eq!(b.probes_in_flight(), m.probes_in_flight());
        prop_assert!(b.probes_in_flight() <= b.config().half_open_max_probes as usize);
        if b.state() == State::Closed {
            prop_assert_eq!(b.consecutive_failures(), m.consecutive);
        }
        let mut want = m.events.drain(..);
        while let Some(t) = b.poll_event() {
            prop_assert_eq!(Some(t), want.next());
            prop_assert!(t.from != t.to);
            match admin {
                Some(target) => prop_assert_eq!(t.to, target, "admin edge"),
                None => prop_assert!(automatic_edge(&t), "not an allowed edge: {:?}", t),
            }
        }
        prop_assert_eq!(want.next(), None);
        prop_assert_eq!(b.dropped_events(), 0);
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
        let mut run = Run::new(c);
        for op in &ops {
            run.step(op)?;
            run.check(op)?;
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
