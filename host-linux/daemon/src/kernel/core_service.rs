//! The core's [`Service`]: `RATE_LIMIT_CHECK`, `RATE_LIMIT_CONSUME`, `BREAKER_ACQUIRE` and
//! `BREAKER_RECORD` (params, decision, reply, counters), its timers, and its effects (breaker
//! state changes, turned into `breaker_transition` journal entries here), over tables on the
//! heap, under the policy's [`DaemonRatePolicy`] (custom operations, tiers). The service (its
//! ~160 KB rate policy inline) is boxed, and a new policy is swapped in through a boxed spare,
//! so it never moves through the stack on an apply.

use heidi_common::JournalEntry;
use heidi_core::Instant;
use heidi_core::breaker::State;
use heidi_core::journal::Level;
use heidi_core::key::KeyHasher;
use heidi_core::limit::Tat;
use heidi_core::policy::{CUSTOM_OPERATIONS_MAX, RatePolicy, TIERS_MAX};
use heidi_core::proto::{Method, Request};
use heidi_core::service::{
    BreakerPolicies, Breakers, Effect, PermitSlot, REPLY_MAX_BYTES, Reply, ReplyBuf, Served,
    Service,
};
use heidi_core::table::Slot;

use super::policy::DaemonRatePolicy;

/// The service over boxed limiter and permit slots, with room for every custom operation and
/// tier a policy may define.
pub(crate) type CoreService =
    Service<Box<[Slot<Tat>]>, CUSTOM_OPERATIONS_MAX, TIERS_MAX, Breakers<Box<[PermitSlot]>>>;

/// The service, its storage and the buffer its replies are written into.
pub(crate) struct Core {
    service: Box<CoreService>,
    /// Where the next rate policy is copied before it is swapped in; holds the one before
    /// after.
    spare: Box<DaemonRatePolicy>,
    reply: Box<ReplyBuf>,
}

impl Core {
    /// A service with `slots` limiter slots (a non-zero multiple of 8) under `policy`, and
    /// `permits` breaker permit slots whose ids are keyed by `permit_key`.
    pub(crate) fn new(
        hasher: KeyHasher,
        policy: &DaemonRatePolicy,
        slots: usize,
        (breakers, permits, permit_key): (BreakerPolicies, usize, [u8; 16]),
    ) -> Core {
        let storage = vec![Slot::empty(); slots].into_boxed_slice();
        let permit_slots = vec![PermitSlot::EMPTY; permits.max(1)].into_boxed_slice();
        let breakers = Breakers::new(breakers, permit_slots, permit_key);
        let service = Service::with_policy(hasher, RatePolicy::new(), storage);
        let mut core = Core {
            service: Box::new(service.with_breakers(breakers)),
            spare: Box::default(),
            reply: Box::new([0; REPLY_MAX_BYTES]),
        };
        core.set_policy(policy);
        core
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

    /// Puts `policy` in force: copied into the spare on the heap, then swapped in (buckets
    /// and denial counts follow the operations' names).
    pub(crate) fn set_policy(&mut self, policy: &DaemonRatePolicy) {
        (*self.spare).clone_from(policy);
        self.service.swap_policy(&mut self.spare);
    }

    /// Denials per operation of the policy in force (built-in ones first, then the custom
    /// ones in name order).
    pub(crate) fn denials(&self) -> Vec<(String, u64)> {
        let denials = self.service.operation_denials();
        denials.map(|(name, n)| (name.to_owned(), n)).collect()
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
