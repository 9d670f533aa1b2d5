//! Test-fixture behaviour of the reference upstream: injected failures (seeded rate, outage
//! windows, a down switch) and the per-call service cost on a fixed number of lanes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

use super::config::{PPM, UpstreamConfig};

/// Why a call is failed on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Inside an outage window, or the upstream was set down.
    Outage,
    /// Drawn by the failure rate.
    Random,
}

/// Decides which calls fail.
#[derive(Debug)]
pub(crate) struct Faults {
    rate_ppm: u32,
    rng: Mutex<fastrand::Rng>,
    down: AtomicBool,
}

impl Faults {
    pub(crate) fn new(config: &UpstreamConfig) -> Faults {
        Faults {
            rate_ppm: config.failure_rate_ppm,
            rng: Mutex::new(fastrand::Rng::with_seed(config.seed)),
            down: AtomicBool::new(false),
        }
    }

    /// Sets or clears the down switch (every call fails while it is set).
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// Whether the call arriving `since_start` after the start fails, and why. One RNG draw
    /// per call that is not already failed by an outage.
    pub(crate) fn decide(&self, config: &UpstreamConfig, since_start: Duration) -> Option<Fault> {
        if self.down.load(Ordering::Relaxed) || config.in_outage(since_start) {
            return Some(Fault::Outage);
        }
        if self.rate_ppm == 0 {
            return None;
        }
        let draw = self
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .u32(0..PPM);
        (draw < self.rate_ppm).then_some(Fault::Random)
    }
}

/// `concurrency` lanes, each serving one call at a time for `cost`: a call takes the lane that
/// frees first and completes at `max(now, lane free) + cost`. Completion times are computed,
/// not slept piecemeal, so timer rounding does not add up across calls.
#[derive(Debug)]
pub(crate) struct Lanes {
    cost: Duration,
    free_at: Mutex<Vec<Instant>>,
}

impl Lanes {
    pub(crate) fn new(config: &UpstreamConfig) -> Lanes {
        Lanes {
            cost: config.cost,
            free_at: Mutex::new(vec![Instant::now(); config.concurrency]),
        }
    }

    /// Books a lane for one call arriving at `now`; returns when its service completes.
    pub(crate) fn book(&self, now: Instant) -> Instant {
        if self.cost.is_zero() {
            return now;
        }
        let mut lanes = self.free_at.lock().unwrap_or_else(|e| e.into_inner());
        let lane = lanes
            .iter_mut()
            .min()
            .expect("validated: at least one lane");
        let done = (*lane).max(now) + self.cost;
        *lane = done;
        done
    }
}
