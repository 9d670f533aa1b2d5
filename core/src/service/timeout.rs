//! The service's timers: [`Service::poll_timeout`] says when the host must wake it,
//! [`Service::handle_timeout`] does what is due (breaker timeouts, permit expiry, a limiter
//! sweep step), and [`Service::poll_effect`] hands out what the host must carry out.

use super::Service;
use super::breakers::{Breakers, MaybeBreakers};
use super::effects::Effect;
use super::idempotency::MaybeIdempotency;
use super::leases::MaybeLeases;
use crate::limit::Tat;
use crate::table::Slot;
use crate::{Duration, Instant};

/// Time between two sweep steps (limiter buckets, lease keys) while either table holds entries, in ms.
pub const LIMITER_SWEEP_INTERVAL_MS: u64 = 1_000;
/// Slots one sweep step visits in each table.
pub const LIMITER_SWEEP_SLOTS: usize = 4_096;

/// When the next limiter sweep step is due.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sweep {
    next_at: Instant,
}

impl Sweep {
    pub(crate) const fn new() -> Sweep {
        Sweep {
            next_at: Instant::ZERO,
        }
    }
}

impl<S, const CUSTOM: usize, const TIERS: usize, B, L, H, I> Service<S, CUSTOM, TIERS, B, L, H, I>
where
    S: AsRef<[Slot<Tat>]> + AsMut<[Slot<Tat>]>,
    B: MaybeBreakers,
    L: MaybeLeases,
    I: MaybeIdempotency,
{
    /// The earliest instant at which [`Service::handle_timeout`] has work: a breaker's open
    /// period or probe deadline, a permit's expiry, or the next limiter sweep step (while the
    /// limiter holds buckets). `None`: nothing is scheduled; sleep until the next request.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sweep = self.holds_entries().then_some(self.sweep.next_at);
        let breakers = self.breakers.get().and_then(Breakers::poll_timeout);
        match (breakers, sweep) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Does the work due at `now`, bounded: breaker timeouts (open → half-open on time, a
    /// probe that never reported fails), up to
    /// [`PERMITS_EXPIRED_PER_CALL`](super::PERMITS_EXPIRED_PER_CALL) expired permits
    /// abandoned, and one limiter sweep step of
    /// [`LIMITER_SWEEP_SLOTS`] every [`LIMITER_SWEEP_INTERVAL_MS`]. Drain
    /// [`Service::poll_effect`] afterwards: state changes wait for room in the effect queue.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(b) = self.breakers.get_mut() {
            b.handle_timeout(now);
        }
        if self.holds_entries() && now >= self.sweep.next_at {
            self.rate.sweep(now, LIMITER_SWEEP_SLOTS);
            self.leases.sweep(now, LIMITER_SWEEP_SLOTS);
            self.idempotency.sweep(now, LIMITER_SWEEP_SLOTS);
            let every = Duration::from_millis(LIMITER_SWEEP_INTERVAL_MS);
            self.sweep.next_at = now.saturating_add(every);
        }
    }

    /// Whether a sweep has anything to free: limiter buckets, lease keys or idempotency
    /// records.
    fn holds_entries(&self) -> bool {
        self.rate.len() + self.leases.keys() + self.idempotency.records() > 0
    }

    /// The next [`Effect`] for the host to carry out, oldest first; `None` when there is none.
    /// Drain it after every [`Service::handle`] and [`Service::handle_timeout`].
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.breakers.get_mut()?.poll_effect()
    }

    /// The breakers, if the service has them.
    pub fn breakers(&self) -> Option<&Breakers<B::Permits>> {
        self.breakers.get()
    }

    /// The breakers, mutably (policy changes: [`Breakers::set_policies`],
    /// [`Breakers::reconfigure`]).
    pub fn breakers_mut(&mut self) -> Option<&mut Breakers<B::Permits>> {
        self.breakers.get_mut()
    }
}
