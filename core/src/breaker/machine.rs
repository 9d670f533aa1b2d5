//! [`Breaker`]: the circuit-breaker state machine.

use super::config::{BreakerConfig, BreakerConfigError, MAX_PROBES};
use super::events::EventQueue;
use super::state::{NO_SLOT, Outcome, Permit, Recorded, Rejected, State, Transition};
use super::window::RateState;
use crate::retry::policy::capped_backoff;
use crate::time::Instant;

/// A circuit breaker (see the [module docs](super) for the call order).
///
/// Every call is O(1) apart from a scan of at most [`MAX_PROBES`] probe slots or
/// [`TIME_BUCKETS`](super::TIME_BUCKETS) time buckets.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Breaker {
    config: BreakerConfig,
    state: State,
    generation: u32,
    open_until: Instant,
    consecutive_failures: u32,
    trips: u32,
    probe_successes: u8,
    probes: [Option<Instant>; MAX_PROBES as usize],
    rate: RateState,
    events: EventQueue,
}

impl Breaker {
    /// A closed breaker.
    pub const fn new(config: BreakerConfig) -> Result<Breaker, BreakerConfigError> {
        if let Err(e) = config.validate() {
            return Err(e);
        }
        Ok(Breaker {
            config,
            state: State::Closed,
            generation: 0,
            open_until: Instant::ZERO,
            consecutive_failures: 0,
            trips: 0,
            probe_successes: 0,
            probes: [None; MAX_PROBES as usize],
            rate: RateState::new(config.rate),
            events: EventQueue::new(),
        })
    }

    /// The configuration.
    pub const fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The current state (as of the last call; a due timeout is applied by the next call).
    pub const fn state(&self) -> State {
        self.state
    }

    /// When the breaker stops rejecting: the end of the open period when open,
    /// [`Instant::MAX`] when forced open, `None` otherwise. Pass this to
    /// [`RetryPolicy::next`](crate::retry::RetryPolicy::next).
    pub const fn open_until(&self) -> Option<Instant> {
        match self.state {
            State::Open => Some(self.open_until),
            State::ForcedOpen => Some(Instant::MAX),
            _ => None,
        }
    }

    /// Consecutive failures counted while closed.
    pub const fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Half-open probes admitted and not yet returned.
    pub fn probes_in_flight(&self) -> usize {
        self.probes.iter().filter(|p| p.is_some()).count()
    }

    /// Transitions dropped because the host did not drain [`Breaker::poll_event`] in time.
    pub const fn dropped_events(&self) -> u32 {
        self.events.dropped
    }

    /// Asks to make one call at `now`, after applying any due timeout.
    pub fn acquire(&mut self, now: Instant) -> Result<Permit, Rejected> {
        match self.state {
            State::Closed | State::Disabled => Ok(self.permit(NO_SLOT)),
            _ => self.acquire_slow(now),
        }
    }

    fn acquire_slow(&mut self, now: Instant) -> Result<Permit, Rejected> {
        self.handle_timeout(now);
        match self.state {
            State::Closed | State::Disabled => Ok(self.permit(NO_SLOT)),
            State::Open => Err(Rejected {
                until: self.open_until,
            }),
            State::ForcedOpen => Err(Rejected {
                until: Instant::MAX,
            }),
            State::HalfOpen => self.acquire_probe(now),
        }
    }

    fn acquire_probe(&mut self, now: Instant) -> Result<Permit, Rejected> {
        let slots = &mut self.probes[..self.config.half_open_max_probes as usize];
        match slots.iter().position(Option::is_none) {
            Some(slot) => {
                slots[slot] = Some(now + self.config.probe_timeout);
                self.debug_check();
                Ok(self.permit(slot as u8))
            }
            None => Err(Rejected {
                until: self.probe_deadline().unwrap_or(Instant::MAX),
            }),
        }
    }

    /// The invariants, checked after every state-changing step in debug builds.
    fn debug_check(&self) {
        let max = self.config.half_open_max_probes as usize;
        debug_assert!(self.probes[max..].iter().all(Option::is_none));
        debug_assert!(self.state == State::HalfOpen || self.probes_in_flight() == 0);
        debug_assert!(self.probe_successes < self.config.success_threshold);
        debug_assert!(self.state != State::Open || self.trips > 0);
    }

    fn permit(&self, slot: u8) -> Permit {
        Permit {
            generation: self.generation,
            slot,
        }
    }

    /// Returns a permit with the call's outcome, at `now` (after applying any due timeout).
    pub fn record(&mut self, now: Instant, permit: Permit, outcome: Outcome) -> Recorded {
        if self.state == State::HalfOpen {
            self.handle_timeout(now);
        }
        if permit.generation != self.generation {
            return Recorded::Stale;
        }
        let failed = self.is_failure(outcome);
        match self.state {
            State::Closed => self.record_closed(now, failed),
            State::HalfOpen => self.record_probe(now, permit.slot, failed),
            State::Disabled => return Recorded::Ignored,
            State::Open | State::ForcedOpen => return Recorded::Stale,
        }
        Recorded::Counted
    }

    /// Returns a permit whose call never ran: nothing is counted, and a probe's slot is freed.
    pub fn abandon(&mut self, permit: Permit) {
        let live = permit.generation == self.generation && self.state == State::HalfOpen;
        if live {
            self.free_probe(permit.slot);
        }
    }

    fn is_failure(&self, outcome: Outcome) -> bool {
        match (outcome, self.config.slow_call_threshold) {
            (Outcome::Failure(_), _) => true,
            (Outcome::Success(took), Some(slow)) => took >= slow,
            (Outcome::Success(_), None) => false,
        }
    }

    fn record_closed(&mut self, now: Instant, failed: bool) {
        self.consecutive_failures = match failed {
            true => self.consecutive_failures.saturating_add(1),
            false => 0,
        };
        let threshold = self.config.failure_threshold;
        let by_count = threshold != 0 && self.consecutive_failures >= threshold;
        let by_rate = self.rate.push(&self.config.rate, now, failed);
        if by_count || by_rate {
            self.trips = 1;
            self.transition(now, State::Open);
        }
    }

    fn free_probe(&mut self, slot: u8) {
        if let Some(p) = self.probes.get_mut(slot as usize) {
            *p = None;
        }
    }

    fn record_probe(&mut self, now: Instant, slot: u8, failed: bool) {
        self.free_probe(slot);
        if failed {
            self.reopen(now);
            return;
        }
        self.probe_successes = self.probe_successes.saturating_add(1);
        if self.probe_successes >= self.config.success_threshold {
            self.transition(now, State::Closed);
        }
    }

    fn reopen(&mut self, now: Instant) {
        self.trips = self.trips.saturating_add(1);
        self.transition(now, State::Open);
    }

    /// The next instant at which the breaker changes state on its own: the end of the open
    /// period, or the deadline of the oldest half-open probe. The host calls
    /// [`Breaker::handle_timeout`] then, even when no call arrives.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Open => Some(self.open_until),
            State::HalfOpen => self.probe_deadline(),
            _ => None,
        }
    }

    fn probe_deadline(&self) -> Option<Instant> {
        self.probes.iter().flatten().min().copied()
    }

    /// Performs the transitions due at `now`: Open → HalfOpen at the end of the open period,
    /// HalfOpen → Open when a probe has not reported by its deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Open if now >= self.open_until => self.transition(now, State::HalfOpen),
            State::HalfOpen if self.probe_deadline().is_some_and(|d| now >= d) => self.reopen(now),
            _ => {}
        }
    }

    /// The oldest transition not yet taken by the host. Drain it after every call.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Transition> {
        self.events.pop()
    }

    /// Admin: reject every call until [`Breaker::reset`].
    pub fn force_open(&mut self, now: Instant) {
        self.transition(now, State::ForcedOpen);
    }

    /// Admin: let every call through, counting nothing, until [`Breaker::reset`].
    pub fn disable(&mut self, now: Instant) {
        self.transition(now, State::Disabled);
    }

    /// Admin: back to a fresh Closed state (counters, windows and trip backoff cleared).
    pub fn reset(&mut self, now: Instant) {
        self.transition(now, State::Closed);
        self.clear_counts();
    }

    /// Enters `to`; a no-op if the breaker is already there. Every state change starts a new
    /// generation, which turns all outstanding permits stale.
    fn transition(&mut self, now: Instant, to: State) {
        if self.state == to {
            return;
        }
        let from = self.state;
        self.events.push(Transition { from, to, at: now });
        self.state = to;
        self.generation = self.generation.wrapping_add(1);
        self.probes = [None; MAX_PROBES as usize];
        self.probe_successes = 0;
        match to {
            State::Closed => self.clear_counts(),
            State::Open => self.open_until = now + self.open_time(),
            _ => {}
        }
        self.debug_check();
    }

    fn clear_counts(&mut self) {
        self.consecutive_failures = 0;
        self.trips = 0;
        self.rate = RateState::new(self.config.rate);
    }

    /// `min(reset_timeout × reset_backoff^(trips−1), reset_timeout_max)`.
    fn open_time(&self) -> crate::time::Duration {
        let c = &self.config;
        let exponent = self.trips.saturating_sub(1);
        capped_backoff(
            c.reset_timeout,
            c.reset_backoff,
            exponent,
            c.reset_timeout_max,
        )
    }
}
