//! The discrete-event engine: a virtual clock that jumps to the next deadline, a hard cap on
//! steps, and [`Timer`], the one timer event per core deadline.
//!
//! Events wait in a binary heap ordered by `(at, seq)`: time first, then the order in which
//! they were scheduled. Beside the heap the engine holds one tick *boundary*
//! ([`Engine::set_boundary`]), which comes before every event at the same instant (so the tick
//! that ends at `t` closes before anything happening at `t` is counted). The order is total,
//! so a run never depends on the heap's internals. [`Engine::step`] yields the earliest of
//! both and moves the clock to it; nothing happens between events, so idle time costs
//! nothing.

use heidi_core::Instant;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A queued event's place in the heap: its instant, its scheduling order and the slot of
/// [`Engine`]'s slab that holds it. The heap holds only these, not the events, so that its
/// code exists once rather than once per scenario's event type.
type Key = Reverse<(Instant, u64, u32)>;

/// What [`Engine::step`] yields.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<E> {
    /// The tick boundary set with [`Engine::set_boundary`] was reached (it is cleared).
    Boundary,
    /// A scheduled event.
    Event(E),
}

/// The virtual clock and its event queue.
pub struct Engine<E> {
    now: Instant,
    /// Earliest first (`Reverse`: `BinaryHeap` is a max-heap).
    queue: BinaryHeap<Key>,
    /// The queued events, by slot; `None` in a free slot.
    slots: Vec<Option<E>>,
    /// Slots free for reuse.
    free: Vec<u32>,
    boundary: Option<Instant>,
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
            slots: Vec::new(),
            free: Vec::new(),
            boundary: None,
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
    pub fn at(&mut self, at: Instant, event: E) {
        let at = at.max(self.now);
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(free) = self.slots.get_mut(slot as usize) {
                    *free = Some(event);
                }
                slot
            }
            None => {
                self.slots.push(Some(event));
                (self.slots.len() - 1) as u32
            }
        };
        self.queue.push(Reverse((at, self.seq, slot)));
    }

    /// Schedules `event` `after` from now.
    pub fn after(&mut self, after: heidi_core::Duration, event: E) {
        let at = self.now.saturating_add(after);
        self.at(at, event);
    }

    /// Sets (or, with `None`, clears) the next tick boundary; clamped to now.
    pub fn set_boundary(&mut self, at: Option<Instant>) {
        self.boundary = at.map(|at| at.max(self.now));
    }

    /// The earliest of the boundary and the queued events (the boundary first at the same
    /// instant), with the clock moved to it; `None` when nothing is left or the step cap is
    /// reached (then [`Engine::cap_reached`] is true and the work stays queued).
    pub fn step(&mut self) -> Option<Next<E>> {
        let first = self.queue.peek().map(|Reverse((at, _, _))| *at);
        let boundary_first = match (self.boundary, first) {
            (Some(b), Some(e)) => b <= e,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        if self.steps >= self.max_steps {
            self.cap_reached = true;
            return None;
        }
        self.steps += 1;
        if boundary_first {
            self.now = self.boundary.take().unwrap_or(self.now);
            return Some(Next::Boundary);
        }
        let Reverse((at, _, slot)) = self.queue.pop()?;
        debug_assert!(at >= self.now, "the clock went back");
        self.now = at;
        self.free.push(slot);
        self.slots.get_mut(slot as usize)?.take().map(Next::Event)
    }

    /// Events processed so far (boundaries included).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Whether the run stopped at the step cap with work left.
    pub fn cap_reached(&self) -> bool {
        self.cap_reached
    }

    /// Events still queued (the boundary not counted).
    pub fn pending(&self) -> usize {
        self.queue.len()
    }
}

/// One timer event per deadline of a core component (`poll_timeout`).
///
/// Call [`Timer::sync`] after every step with the component's current deadline: it schedules
/// a timer event carrying the deadline only when the deadline is new. When a timer event
/// fires, [`Timer::fire`] says whether it is the live one; an event whose deadline was
/// replaced (or withdrawn) meanwhile is stale and must be ignored, so it neither calls the
/// component nor schedules the same deadline again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timer {
    pending: Option<Instant>,
}

impl Timer {
    /// Schedules `event(due)` when `due` differs from the deadline already scheduled.
    pub fn sync<E>(
        &mut self,
        engine: &mut Engine<E>,
        due: Option<Instant>,
        event: impl FnOnce(Instant) -> E,
    ) {
        if due != self.pending {
            self.pending = due;
            if let Some(at) = due {
                engine.at(at, event(at));
            }
        }
    }

    /// Whether the timer event for deadline `at` is the live one; it is then consumed.
    pub fn fire(&mut self, at: Instant) -> bool {
        let live = self.pending == Some(at);
        if live {
            self.pending = None;
        }
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heidi_core::Duration;

    fn drain<E>(e: &mut Engine<E>) -> Vec<Next<E>> {
        std::iter::from_fn(|| e.step()).collect()
    }

    #[test]
    fn the_clock_jumps_to_each_deadline_in_order() {
        let mut e = Engine::new(100);
        e.at(Instant::from_millis(30), "c");
        e.at(Instant::from_millis(10), "a");
        e.at(Instant::from_millis(20), "b");
        let mut seen = Vec::new();
        while let Some(Next::Event(ev)) = e.step() {
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
        e.at(t, 1);
        e.at(t, 2);
        e.set_boundary(Some(t));
        e.at(t, 3);
        let got = drain(&mut e);
        use Next::{Boundary, Event};
        assert_eq!(got, [Boundary, Event(1), Event(2), Event(3)]);
        // Without a boundary set, only events come.
        e.at(Instant::from_millis(9), 4);
        assert_eq!(drain(&mut e), [Event(4)]);
    }

    #[test]
    fn past_instants_are_clamped_to_now() {
        let mut e = Engine::new(100);
        e.at(Instant::from_millis(50), 'x');
        assert_eq!(e.step(), Some(Next::Event('x')));
        e.at(Instant::from_millis(1), 'y');
        assert_eq!(e.step(), Some(Next::Event('y')));
        assert_eq!(e.now(), Instant::from_millis(50));
        e.after(Duration::from_millis(5), 'z');
        e.set_boundary(Some(Instant::from_millis(2)));
        assert_eq!(e.step(), Some(Next::Boundary));
        assert_eq!(e.now(), Instant::from_millis(50));
        assert_eq!(e.step(), Some(Next::Event('z')));
        assert_eq!(e.now(), Instant::from_millis(55));
    }

    #[test]
    fn the_step_cap_stops_the_run_and_says_so() {
        let mut e = Engine::new(3);
        for i in 0..5 {
            e.at(Instant::from_millis(i), i);
        }
        let got = drain(&mut e);
        assert_eq!(got, [Next::Event(0), Next::Event(1), Next::Event(2)]);
        assert!(e.cap_reached());
        assert_eq!(e.pending(), 2);
        assert_eq!(e.step(), None);
    }

    #[test]
    fn an_exhausted_queue_at_the_cap_is_not_a_cap_hit() {
        let mut e = Engine::new(1);
        e.at(Instant::ZERO, ());
        assert_eq!(e.step(), Some(Next::Event(())));
        assert_eq!(e.step(), None);
        assert!(!e.cap_reached());
        // A boundary left at the cap is work left.
        e.set_boundary(Some(Instant::from_millis(1)));
        assert_eq!(e.step(), None);
        assert!(e.cap_reached());
    }

    #[test]
    fn a_timer_schedules_each_deadline_once_and_ignores_stale_events() {
        let mut e = Engine::new(100);
        let mut timer = Timer::default();
        let (t1, t2) = (Instant::from_millis(10), Instant::from_millis(20));
        timer.sync(&mut e, Some(t2), |at| at);
        timer.sync(&mut e, Some(t2), |at| at);
        assert_eq!(e.pending(), 1, "the same deadline is scheduled once");
        timer.sync(&mut e, Some(t1), |at| at);
        assert_eq!(e.pending(), 2);
        let Some(Next::Event(at)) = e.step() else {
            panic!()
        };
        assert_eq!(at, t1);
        assert!(timer.fire(at));
        // The core now asks for t2 again: the event for t2 is still queued but was replaced
        // by t1, so it is scheduled anew and the old one is stale... unless it is the same
        // deadline, which it is: `fire` accepts the first event for t2 only.
        timer.sync(&mut e, Some(t2), |at| at);
        let fired: Vec<bool> = drain(&mut e)
            .into_iter()
            .map(|n| match n {
                Next::Event(at) => timer.fire(at),
                Next::Boundary => unreachable!(),
            })
            .collect();
        assert_eq!(fired, [true, false]);
        // A withdrawn deadline makes its event stale.
        timer.sync(
            &mut e,
            Some(t2.saturating_add(Duration::from_millis(1))),
            |at| at,
        );
        timer.sync(&mut e, None, |at| at);
        let Some(Next::Event(at)) = e.step() else {
            panic!()
        };
        assert!(!timer.fire(at));
    }
}
