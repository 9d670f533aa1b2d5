//! [`Breaker::reconfigure`]: a new configuration for a live breaker that keeps its state.

use super::Breaker;
use crate::breaker::config::{BreakerConfig, BreakerConfigError, MAX_PROBES};
use crate::breaker::state::State;
use crate::breaker::window::RateState;
use crate::time::Instant;

impl Breaker {
    /// Puts `config` in force at `now`, keeping the state: the breaker never changes state
    /// and queues no [`Transition`](super::Transition) here (a due timeout is left to the next
    /// call, as [`Breaker::handle_timeout`] would perform it anyway).
    ///
    /// - An invalid `config` is refused and nothing changes.
    /// - A `config` equal to the one in force changes nothing (not even the generation).
    /// - Otherwise it is an admin change: a new generation starts, so every outstanding permit
    ///   turns [stale](super::Recorded::Stale) (its call ran under the old rules) and every
    ///   half-open probe slot empties (the state stays HalfOpen; new probes are admitted under
    ///   the new limits).
    /// - Open: the open period never grows, and shrinks to the new reset timeout:
    ///   `open_until = min(open_until, now + open time under the new config)` (the open time
    ///   keeps the trip count, so `reset_backoff` still applies). A deadline already given to
    ///   callers is never moved later.
    /// - Closed: consecutive failures are kept, capped at `failure_threshold − 1` so the next
    ///   failure trips but the change itself does not.
    /// - The failure-rate window is kept when its [`RateWindow`](crate::breaker::RateWindow) (kind and
    ///   size) is unchanged, and emptied otherwise (its statistics would be meaningless).
    pub fn reconfigure(
        &mut self,
        now: Instant,
        config: BreakerConfig,
    ) -> Result<(), BreakerConfigError> {
        config.validate()?;
        if config == self.config {
            return Ok(());
        }
        let same_window = self.config.rate.map(|r| r.window) == config.rate.map(|r| r.window);
        self.config = config;
        self.generation = self.generation.wrapping_add(1);
        self.probes = [None; MAX_PROBES as usize];
        self.probe_successes = 0;
        if !same_window {
            self.rate = RateState::new(config.rate);
        }
        match self.state {
            State::Closed if config.failure_threshold != 0 => {
                let cap = config.failure_threshold - 1;
                self.consecutive_failures = self.consecutive_failures.min(cap);
            }
            State::Open => {
                let bound = now + self.open_time();
                self.open_until = self.open_until.min(bound);
            }
            _ => {}
        }
        self.debug_check();
        Ok(())
    }
}
