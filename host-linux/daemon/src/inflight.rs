//! The bound on requests being served at once (`limits.max_inflight`).
//!
//! A request that finds the bound reached is answered `OVERLOADED`; nobody waits for a slot,
//! so a counter is enough (a semaphore's waiter queue would cost a lock per release).

use std::sync::atomic::{AtomicU32, Ordering};

/// Counts requests in flight, up to a maximum.
#[derive(Debug)]
pub struct Inflight {
    max: u32,
    now: AtomicU32,
}

/// One request's slot; released when dropped.
#[derive(Debug)]
pub struct InflightPermit<'a>(&'a Inflight);

impl Inflight {
    /// A bound of `max` requests at once.
    pub fn new(max: u32) -> Inflight {
        Inflight {
            max,
            now: AtomicU32::new(0),
        }
    }

    /// A slot, or `None` when `max` requests are in flight.
    pub fn try_acquire(&self) -> Option<InflightPermit<'_>> {
        if self.now.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.now.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(InflightPermit(self))
    }

    /// Whether a slot is free now: what [`Inflight::try_acquire`] would answer, for a request
    /// that would give its slot back before anything else runs on its thread (one answered
    /// without waiting), so it takes none.
    pub fn has_room(&self) -> bool {
        self.now.load(Ordering::Acquire) < self.max
    }

    /// A slot for a request that found room ([`Inflight::has_room`]) and now turns out to
    /// wait: taken whatever the count, since the request was admitted already. Requests
    /// that other threads admit at the same instant may thus pass the bound by one each.
    pub fn hold(&self) -> InflightPermit<'_> {
        self.now.fetch_add(1, Ordering::AcqRel);
        InflightPermit(self)
    }

    /// Requests in flight now.
    pub fn current(&self) -> u32 {
        self.now.load(Ordering::Acquire).min(self.max)
    }
}

impl Drop for InflightPermit<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_reached_and_released() {
        let inflight = Inflight::new(2);
        let a = inflight.try_acquire().expect("first");
        let b = inflight.try_acquire().expect("second");
        assert!(inflight.try_acquire().is_none(), "the third is refused");
        assert_eq!(inflight.current(), 2);
        drop(a);
        let c = inflight.try_acquire().expect("a released slot is reused");
        drop((b, c));
        assert_eq!(inflight.current(), 0);
        assert!(Inflight::new(0).try_acquire().is_none());
    }

    #[test]
    fn room_is_what_an_acquire_would_find_and_a_hold_always_counts() {
        let inflight = Inflight::new(1);
        assert!(inflight.has_room());
        let held = inflight.hold();
        assert!(!inflight.has_room());
        assert!(inflight.try_acquire().is_none());
        let over = inflight.hold();
        assert_eq!(inflight.now.load(Ordering::Acquire), 2);
        drop((held, over));
        assert!(inflight.has_room());
        assert!(!Inflight::new(0).has_room());
    }

    #[test]
    fn concurrent_holders_never_exceed_the_bound() {
        let inflight = Inflight::new(3);
        let peak = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        if let Some(_p) = inflight.try_acquire() {
                            peak.fetch_max(inflight.now.load(Ordering::Acquire), Ordering::AcqRel);
                        }
                    }
                });
            }
        });
        assert_eq!(inflight.current(), 0);
        assert!(
            peak.load(Ordering::Acquire) <= 3 + 1,
            "a refused attempt counts only briefly"
        );
    }
}
