//! The discrete-event engine: a virtual clock that jumps to the next deadline, and a hard cap
//! on steps.
//!
//! Events wait in a binary heap ordered by `(at, class, seq)`: time first, then
//! [`Class::Boundary`] before [`Class::Normal`] (so the tick that ends at `t` closes before
//! anything happening at `t` is counted), then the order in which they were scheduled. The
//! order is total, so a run never depends on the heap's internals. [`Engine::next_event`] pops the
//! earliest event and moves the clock to it; nothing happens between events, so idle time
//! costs nothing.

use heidi_core::{Duration, Instant};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Where an event sorts among events at the same instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Tick boundaries and the end of the run: before everything else at the same instant.
    Boundary,
    /// Everything else, in scheduling order.
    Normal,
}

struct Scheduled<E> {
    at: Instant,
    class: Class,
    seq: u64,
    event: E,
}

impl<E> Scheduled<E> {
    fn key(&self) -> (Instant, Class, u64) {
        (self.at, self.class, self.seq)
    }
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Scheduled<E> {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

/// The virtual clock and its event queue.
pub struct Engine<E> {
    now: Instant,
    queue: BinaryHeap<Scheduled<E>>,
    seq: u64,
    steps: u64,
    max_steps: u64,
    cap_reached: bool,
}

impl<E> Engine<E> {
    /// An engine at time zero that processes at most `max_steps` events.
    pub fn new(max_steps: u64) -> Engine<E> {
        Engine {
            now: Instant::ZERO,
            queue: BinaryHeap::new(),
            seq: 0,
            steps: 0,
            max_steps,
            cap_reached: false,
        }
    }

    /// The virtual time: the instant of the event being processed.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Schedules `event` at `at` (an instant in the past is clamped to now: time never goes
    /// back).
    pub fn at(&mut self, at: Instant, class: Class, event: E) {
        let at = at.max(self.now);
        self.seq += 1;
        let seq = self.seq;
        self.queue.push(Scheduled {
            at,
            class,
            seq,
            event,
        });
    }

    /// Schedules a [`Class::Normal`] event `after` from now.
    pub fn after(&mut self, after: Duration, event: E) {
        let at = self.now.saturating_add(after);
        self.at(at, Class::Normal, event);
    }

    /// The earliest event, with the clock moved to it; `None` when the queue is empty or the
    /// step cap is reached (then [`Engine::cap_reached`] is true and the event stays queued).
    pub fn next_event(&mut self) -> Option<E> {
        if self.steps >= self.max_steps {
            self.cap_reached |= !self.queue.is_empty();
            return None;
        }
        let s = self.queue.pop()?;
        debug_assert!(s.at >= self.now, "the clock went back");
        self.now = s.at;
        self.steps += 1;
        Some(s.event)
    }

    /// Events processed so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Whether the run stopped at the step cap with events still queued.
    pub fn cap_reached(&self) -> bool {
        self.cap_reached
    }

    /// Events still queued.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_jumps_to_each_deadline_in_order() {
        let mut e = Engine::new(100);
        e.at(Instant::from_millis(30), Class::Normal, "c");
        e.at(Instant::from_millis(10), Class::Normal, "a");
        e.at(Instant::from_millis(20), Class::Normal, "b");
        let mut seen = Vec::new();
        while let Some(ev) = e.next_event() {
            seen.push((e.now().as_micros() / 1_000, ev));
        }
        assert_eq!(seen, [(10, "a"), (20, "b"), (30, "c")]);
        assert_eq!(e.steps(), 3);
        assert!(!e.cap_reached());
    }

    #[test]
    fn same_instant_boundary_first_then_scheduling_order() {
        let mut e = Engine::new(100);
        let t = Instant::from_millis(5);
        e.at(t, Class::Normal, 1);
        e.at(t, Class::Normal, 2);
        e.at(t, Class::Boundary, 0);
        e.at(t, Class::Normal, 3);
        let got: Vec<i32> = std::iter::from_fn(|| e.next_event()).collect();
        assert_eq!(got, [0, 1, 2, 3]);
    }

    #[test]
    fn past_instants_are_clamped_to_now() {
        let mut e = Engine::new(100);
        e.at(Instant::from_millis(50), Class::Normal, 'x');
        assert_eq!(e.next_event(), Some('x'));
        e.at(Instant::from_millis(1), Class::Normal, 'y');
        assert_eq!(e.next_event(), Some('y'));
        assert_eq!(e.now(), Instant::from_millis(50));
        e.after(Duration::from_millis(5), 'z');
        assert_eq!(e.next_event(), Some('z'));
        assert_eq!(e.now(), Instant::from_millis(55));
    }

    #[test]
    fn the_step_cap_stops_the_run_and_says_so() {
        let mut e = Engine::new(3);
        for i in 0..5 {
            e.at(Instant::from_millis(i), Class::Normal, i);
        }
        let got: Vec<u64> = std::iter::from_fn(|| e.next_event()).collect();
        assert_eq!(got, [0, 1, 2]);
        assert!(e.cap_reached());
        assert_eq!(e.pending(), 2);
        assert_eq!(e.next_event(), None);
    }

    #[test]
    fn an_exhausted_queue_at_the_cap_is_not_a_cap_hit() {
        let mut e = Engine::new(1);
        e.at(Instant::ZERO, Class::Normal, ());
        assert_eq!(e.next_event(), Some(()));
        assert_eq!(e.next_event(), None);
        assert!(!e.cap_reached());
    }
}
