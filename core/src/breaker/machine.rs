//! [`Breaker`]: the circuit-breaker state machine.

use super::config::{BreakerConfig, BreakerConfigError, MAX_PROBES};
use super::events::EventQueue;
use super::state::{NO_SLOT, Outcome, Permit, Recorded, Rejected, State, Transition};
use super::window::RateState;
use crate::retry::policy::capped_backoff;
use crate::time::Instant;

mod reconfigure;

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
    tag: u16,
    open_until: Instant,
    consecutive_failures: u32,
    trips: u32,
    probe_successes: u8,
    probes: [Option<Instant>; MAX_PROBES as usize],
    rate: RateState,
    events: EventQueue,
}

impl Breaker {
    /// A closed breaker with [tag](Breaker::tag) 0.
    pub const fn new(config: BreakerConfig) -> Result<Breaker, BreakerConfigError> {
        Breaker::with_tag(config, 0)
    }

    /// A closed breaker whose permits carry `tag`. Give the breakers of a host distinct tags:
    /// a permit returned to a breaker with another tag counts for nothing
    /// ([`Recorded::Foreign`]). A [`BreakerRegistry`](super::BreakerRegistry) tags its
    /// breakers itself (1, 2, … in insertion order), so tag 0 is left to [`Breaker::new`].
    pub const fn with_tag(config: BreakerConfig, tag: u16) -> Result<Breaker, BreakerConfigError> {
        if let Err(e) = config.validate() {
            return Err(e);
        }
        Ok(Breaker {
            config,
            state: State::Closed,
            generation: 0,
            tag,
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

    /// The tag its permits carry ([`Breaker::with_tag`]).
    pub const fn tag(&self) -> u16 {
        self.tag
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
        let answer = self.admit(now);
        self.debug_check();
        answer
    }

    fn admit(&mut self, now: Instant) -> Result<Permit, Rejected> {
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
                Ok(self.permit(slot as u8))
            }
            None => Err(Rejected {
                until: self.probe_deadline().unwrap_or(Instant::MAX),
            }),
        }
    }

    /// The invariants, checked at the end of every call that changes the breaker, in debug
    /// builds; O([`MAX_PROBES`] + window buckets).
    fn debug_check(&self) {
        let c = &self.config;
        let max = c.half_open_max_probes as usize;
        debug_assert!(
            self.probes[max..].iter().all(Option::is_none),
            "probes ≤ max"
        );
        let half_open = self.state == State::HalfOpen;
        debug_assert!(
            half_open || self.probes_in_flight() == 0,
            "probes only half-open"
        );
        debug_assert!(half_open || self.probe_successes == 0, "probe_successes");
        debug_assert!(
            self.probe_successes < c.success_threshold,
            "probe_successes"
        );
        debug_assert!(
            self.state != State::Open || self.trips > 0,
            "open ⇒ trips > 0"
        );
        if self.state == State::Closed {
            debug_assert!(self.trips == 0, "closed ⇒ trips = 0");
            let below = c.failure_threshold == 0 || self.consecutive_failures < c.failure_threshold;
            debug_assert!(below, "closed ⇒ consecutive_failures < failure_threshold");
        }
        self.rate.debug_check();
    }

    fn permit(&self, slot: u8) -> Permit {
        Permit {
            generation: self.generation,
            tag: self.tag,
            slot,
        }
    }

    /// Returns a permit with the call's outcome, at `now` (after applying any due timeout).
    pub fn record(&mut self, now: Instant, permit: Permit, outcome: Outcome) -> Recorded {
        self.handle_timeout(now);
        let answer = self.count(now, &permit, outcome);
        self.debug_check();
        answer
    }

    fn count(&mut self, now: Instant, permit: &Permit, outcome: Outcome) -> Recorded {
        if let Some(refused) = self.refusal(permit) {
            return refused;
        }
        let failed = self.is_failure(outcome);
        match self.state {
            State::Closed => self.record_closed(now, failed),
            State::HalfOpen => self.record_probe(now, permit.slot, failed),
            State::Disabled => return Recorded::Ignored,
            // No permit of the current generation exists there.
            State::Open | State::ForcedOpen => return Recorded::Stale,
        }
        Recorded::Counted
    }

    /// Why `permit` cannot count here, if it cannot: another breaker issued it, or this one
    /// has changed state or taken an admin call since.
    fn refusal(&self, permit: &Permit) -> Option<Recorded> {
        if permit.tag != self.tag {
            Some(Recorded::Foreign)
        } else if permit.generation != self.generation {
            Some(Recorded::Stale)
        } else {
            None
        }
    }

    /// Returns a permit whose call never ran, at `now` (after applying any due timeout, so a
    /// probe abandoned after its deadline has already re-opened the breaker): nothing is
    /// counted, and a live probe's slot is freed. Stale and foreign permits change nothing.
    pub fn abandon(&mut self, now: Instant, permit: Permit) {
        self.handle_timeout(now);
        if self.refusal(&permit).is_none() {
            self.free_probe(permit.slot);
        }
        self.debug_check();
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
            self.enter(now, State::Open);
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
            self.enter(now, State::Closed);
        }
    }

    fn reopen(&mut self, now: Instant) {
        self.trips = self.trips.saturating_add(1);
        self.enter(now, State::Open);
    }

    /// The next instant at which the breaker changes state on its own: the end of the open
    /// period, or the deadline of the oldest half-open probe. The host calls
    /// [`Breaker::handle_timeout`] then, even when no call arrives.
    #[must_use]
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

    /// Performs the transition due at `now`, if any: Open → HalfOpen at the end of the open
    /// period, HalfOpen → Open when a probe has not reported by its deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Open if now >= self.open_until => self.enter(now, State::HalfOpen),
            State::HalfOpen if self.probe_deadline().is_some_and(|d| now >= d) => self.reopen(now),
            _ => return,
        }
        self.debug_check();
    }

    /// The oldest transition not yet taken by the host. Drain it after every call.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Transition> {
        self.events.pop()
    }

    /// Admin: reject every call until [`Breaker::reset`]. Outstanding permits turn stale.
    pub fn force_open(&mut self, now: Instant) {
        self.enter(now, State::ForcedOpen);
        self.debug_check();
    }

    /// Admin: let every call through, counting nothing, until [`Breaker::reset`].
    /// Outstanding permits turn stale.
    pub fn disable(&mut self, now: Instant) {
        self.enter(now, State::Disabled);
        self.debug_check();
    }

    /// Admin: back to a fresh Closed state (counters, windows and trip backoff cleared), from
    /// any state, Closed included. Outstanding permits turn stale.
    pub fn reset(&mut self, now: Instant) {
        self.enter(now, State::Closed);
        self.debug_check();
    }

    /// Enters `to` (queuing a [`Transition`] if the state changes) and starts a new
    /// generation: every outstanding permit turns stale and every probe slot empties. Every
    /// automatic transition and every admin call comes through here, even an admin call that
    /// keeps the state.
    fn enter(&mut self, now: Instant, to: State) {
        if self.state != to {
            let from = self.state;
            self.events.push(Transition { from, to, at: now });
            self.state = to;
        }
        self.generation = self.generation.wrapping_add(1);
        self.probes = [None; MAX_PROBES as usize];
        self.probe_successes = 0;
        match to {
            State::Closed => self.clear_counts(),
            State::Open => self.open_until = now + self.open_time(),
            _ => {}
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::Outcome;
    use crate::time::Duration;

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "trips")]
    fn a_closed_breaker_with_trips_fails_the_debug_check_after_a_record() {
        let mut b = Breaker::new(BreakerConfig::DEFAULT).unwrap();
        let p = b.acquire(Instant::ZERO).unwrap();
        b.trips = 1;
        let _ = b.record(Instant::ZERO, p, Outcome::Success(Duration::ZERO));
    }
}
