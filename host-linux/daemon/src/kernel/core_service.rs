//! The core's [`Service`]: `RATE_LIMIT_CHECK`, `RATE_LIMIT_CONSUME`, `BREAKER_ACQUIRE` and
//! `BREAKER_RECORD` (params, decision, reply, counters), its timers, and its effects (breaker
//! state changes, turned into `breaker_transition` journal entries here), over tables on the
//! heap.

use heidi_common::JournalEntry;
use heidi_core::Instant;
use heidi_core::breaker::State;
use heidi_core::journal::Level;
use heidi_core::key::KeyHasher;
use heidi_core::limit::{PolicyTable, Tat};
use heidi_core::proto::{Method, Request};
use heidi_core::service::{
    BreakerPolicies, Breakers, Effect, PermitSlot, REPLY_MAX_BYTES, Reply, ReplyBuf, Served,
    Service,
};
use heidi_core::table::Slot;

/// The service over boxed limiter and permit slots.
pub(crate) type CoreService = Service<Box<[Slot<Tat>]>, 0, 0, Breakers<Box<[PermitSlot]>>>;

/// The service, its storage and the buffer its replies are written into.
pub(crate) struct Core {
    service: Box<CoreService>,
    reply: Box<ReplyBuf>,
}

impl Core {
    /// A service with `slots` limiter slots (a non-zero multiple of 8) under `limits`, and
    /// `permits` breaker permit slots whose ids are keyed by `permit_key`.
    pub(crate) fn new(
        hasher: KeyHasher,
        limits: PolicyTable,
        slots: usize,
        (breakers, permits, permit_key): (BreakerPolicies, usize, [u8; 16]),
    ) -> Core {
        let storage = vec![Slot::empty(); slots].into_boxed_slice();
        let permit_slots = vec![PermitSlot::EMPTY; permits.max(1)].into_boxed_slice();
        let breakers = Breakers::new(breakers, permit_slots, permit_key);
        Core {
            service: Box::new(Service::new(hasher, limits, storage).with_breakers(breakers)),
            reply: Box::new([0; REPLY_MAX_BYTES]),
        }
    }

    /// Serves a parsed request the core covers, the reply body in `out`; `None` (and `out`
    /// untouched) for any other method.
    pub(crate) fn serve(
        &mut self,
        now: Instant,
        request: &Request<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Reply> {
        let served = self.service.handle(now, request, &mut self.reply);
        self.copy(served, out)
    }

    /// [`Core::serve`] for a method and its params text.
    pub(crate) fn serve_params(
        &mut self,
        now: Instant,
        method: Method,
        params: &str,
        out: &mut Vec<u8>,
    ) -> Option<Reply> {
        let served = self
            .service
            .handle_params(now, method, params, &mut self.reply);
        self.copy(served, out)
    }

    fn copy(&self, served: Served, out: &mut Vec<u8>) -> Option<Reply> {
        let Served::Reply(reply) = served else {
            return None;
        };
        out.clear();
        out.extend_from_slice(&self.reply[..reply.len]);
        Some(reply)
    }

    /// Puts a new policy's limits in force.
    pub(crate) fn set_limits(&mut self, limits: PolicyTable) {
        self.service.set_limits(limits);
    }

    /// Denials per operation since start.
    pub(crate) fn denials(&self) -> Vec<(&'static str, u64)> {
        let denials = self.service.denials();
        denials.iter().map(|&(op, n)| (op.as_str(), n)).collect()
    }

    /// Buckets held.
    pub(crate) fn len(&self) -> usize {
        self.service.limiter_keys()
    }

    /// The service's next deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.service.poll_timeout()
    }

    /// Runs the service's due timers.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.service.handle_timeout(now);
    }

    /// The next effect as a journal entry: a breaker transition is a `breaker_transition`
    /// event of stage `kernel` (`breaker <name>: <from> -> <to>`), a warning when the breaker
    /// opens.
    pub(crate) fn poll_journal(&mut self) -> Option<JournalEntry> {
        match self.service.poll_effect()? {
            Effect::BreakerTransition(t) => {
                let message = format!("breaker {}: {} -> {}", t.name, t.from, t.to);
                let mut entry = JournalEntry::info("kernel", "breaker_transition", message);
                // Only entering open (or forced open) is a warning; open -> half_open is not.
                if matches!(t.to, State::Open | State::ForcedOpen) {
                    entry.level = Level::Warning;
                }
                Some(entry)
            }
        }
    }

    /// The breakers.
    pub(crate) fn breakers(&self) -> &Breakers<Box<[PermitSlot]>> {
        // Built with breakers in `Core::new`.
        self.service.breakers().expect("the service has breakers")
    }

    /// The breakers, mutably.
    pub(crate) fn breakers_mut(&mut self) -> &mut Breakers<Box<[PermitSlot]>> {
        self.service
            .breakers_mut()
            .expect("the service has breakers")
    }
}
