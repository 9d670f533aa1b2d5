//! [`InFlight`]: a counting semaphore (Mutex + Condvar) that bounds attempts running at once.
//!
//! Held around each attempt only, never around a whole call or its retry delays, so
//! `max_inflight` attempts really run concurrently (the original client's lock serialised all
//! calls).

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// A counting semaphore with a deadline on waiting.
#[derive(Debug)]
pub(crate) struct InFlight {
    state: Mutex<Counts>,
    freed: Condvar,
    max: usize,
}

#[derive(Debug, Default)]
struct Counts {
    running: usize,
    waiting: usize,
}

/// A held slot; dropping it frees the slot and wakes one waiter.
#[derive(Debug)]
pub(crate) struct Slot<'a> {
    owner: &'a InFlight,
}

impl InFlight {
    /// A semaphore of `max` slots (at least 1).
    pub(crate) fn new(max: usize) -> InFlight {
        InFlight {
            state: Mutex::new(Counts::default()),
            freed: Condvar::new(),
            max: max.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // The counters stay consistent even if a holder panicked: recover them.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a free slot until `deadline`; `None` when the deadline passed first.
    pub(crate) fn acquire(&self, deadline: Instant) -> Option<Slot<'_>> {
        let mut counts = self.lock();
        counts.waiting += 1;
        while counts.running >= self.max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                counts.waiting -= 1;
                return None;
            }
            counts = self
                .freed
                .wait_timeout(counts, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        counts.waiting -= 1;
        counts.running += 1;
        Some(Slot { owner: self })
    }

    /// Attempts running now.
    pub(crate) fn running(&self) -> usize {
        self.lock().running
    }

    /// Callers waiting for a slot now.
    pub(crate) fn waiting(&self) -> usize {
        self.lock().waiting
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.owner.lock().running -= 1;
        self.owner.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn slots_are_counted_and_waiting_times_out() {
        let sem = InFlight::new(2);
        let soon = Instant::now() + Duration::from_secs(5);
        let a = sem.acquire(soon).unwrap();
        let _b = sem.acquire(soon).unwrap();
        assert_eq!(sem.running(), 2);
        // Full: a deadline in the past gives up at once.
        assert!(sem.acquire(Instant::now()).is_none());
        assert_eq!(sem.waiting(), 0);
        drop(a);
        assert_eq!(sem.running(), 1);
        assert!(sem.acquire(soon).is_some());
    }
}
