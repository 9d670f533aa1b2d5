//! A tiny fixed queue of [`Transition`]s waiting for the host.

use super::state::{State, Transition};
use crate::time::Instant;

/// Transitions a breaker keeps for the host. No call makes more than one, so a host that
/// drains [`Breaker::poll_event`](super::Breaker::poll_event) after every call never loses
/// one; the rest is slack for a host that drains less often.
pub const EVENT_CAPACITY: usize = 4;

/// A ring of the last [`EVENT_CAPACITY`] transitions. When the host does not drain it, the
/// oldest transition makes room and is counted in `dropped`.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) struct EventQueue {
    ring: [Transition; EVENT_CAPACITY],
    head: u8,
    len: u8,
    pub(crate) dropped: u32,
}

impl EventQueue {
    pub(crate) const fn new() -> EventQueue {
        let blank = Transition {
            from: State::Closed,
            to: State::Closed,
            at: Instant::ZERO,
        };
        EventQueue {
            ring: [blank; EVENT_CAPACITY],
            head: 0,
            len: 0,
            dropped: 0,
        }
    }

    pub(crate) fn push(&mut self, t: Transition) {
        if self.len as usize == EVENT_CAPACITY {
            self.pop();
            self.dropped = self.dropped.saturating_add(1);
        }
        let tail = (self.head as usize + self.len as usize) % EVENT_CAPACITY;
        self.ring[tail] = t;
        self.len += 1;
    }

    pub(crate) fn pop(&mut self) -> Option<Transition> {
        if self.len == 0 {
            return None;
        }
        let t = self.ring[self.head as usize];
        self.head = ((self.head as usize + 1) % EVENT_CAPACITY) as u8;
        self.len -= 1;
        Some(t)
    }
}
