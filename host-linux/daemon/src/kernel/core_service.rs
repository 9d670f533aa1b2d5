//! The core's [`Service`]: rate limits, breakers, leases, health checks and idempotency
//! records (params, decision, reply, counters, what to persist), its timers, and its effects (breaker state changes, turned into
//! `breaker_transition` journal entries here), over tables on the heap, under the policy's
//! [`DaemonRatePolicy`] (custom operations, tiers). The service (its ~160 KB rate policy
//! inline) is boxed, and a new policy is swapped in through a boxed spare, so it never moves
//! through the stack on an apply.

use heidi_common::JournalEntry;
use heidi_core::Instant;
use heidi_core::health::{Health, HealthConfig};
use heidi_core::idempotency::IdempotencyConfig;
use heidi_core::key::KeyHasher;
use heidi_core::lease::{LeaseConfig, LeaseSet};
use heidi_core::limit::Tat;
use heidi_core::policy::{CUSTOM_OPERATIONS_MAX, InvalidPolicy, RatePolicy, TIERS_MAX};
use heidi_core::proto::{Method, Request};
use heidi_core::service::{
    BreakerPolicies, BreakerTransition, Breakers, Durable, Effect, Idempotency, LeaseTable,
    PermitSlot, REPLY_MAX_BYTES, Reply, ReplyBuf, Served, Service,
};
use heidi_core::table::Slot;

use super::config::{HEALTH_CHECKS_MAX, LEASE_SLOTS_PER_KEY};
use super::idempotency::{DaemonIdempotency, StoredResponses, record_slots};
use super::policy::{DaemonRatePolicy, Policy};

/// The lease storage: made at the first lease call.
type LeaseSlots = Box<[Slot<LeaseSet<LEASE_SLOTS_PER_KEY>>]>;

/// The daemon's lease table.
pub(crate) type DaemonLeases = LeaseTable<LeaseSlots, LEASE_SLOTS_PER_KEY>;

/// The daemon's health checks.
pub(crate) type DaemonHealth = Health<HEALTH_CHECKS_MAX>;

/// The service over boxed limiter, permit and lease slots, with room for every custom
/// operation and tier a policy may define.
pub(crate) type CoreService = Service<
    Box<[Slot<Tat>]>,
    CUSTOM_OPERATIONS_MAX,
    TIERS_MAX,
    Breakers<Box<[PermitSlot]>>,
    DaemonLeases,
    DaemonHealth,
    DaemonIdempotency,
>;

/// What the service is built from besides the rate policy.
pub(crate) struct Parts {
    /// Limiter slots (a non-zero multiple of 8).
    pub(crate) limiter_slots: usize,
    /// The breakers' configurations, the permit slots and the permit-id key.
    pub(crate) breakers: (BreakerPolicies, usize, [u8; 16]),
    /// Lease keys (a non-zero multiple of 8), the configuration and the lease-id key.
    pub(crate) leases: (usize, LeaseConfig, [u8; 16]),
    /// The health checks' configuration.
    pub(crate) health: HealthConfig,
    /// Idempotency records (a non-zero multiple of 8), the configuration and the token key.
    pub(crate) idempotency: (usize, IdempotencyConfig, [u8; 16]),
}

fn lease_slots(n: usize) -> LeaseSlots {
    vec![Slot::empty(); n].into_boxed_slice()
}

/// The service, its storage and the buffer its replies are written into.
pub(crate) struct Core {
    service: Box<CoreService>,
    /// Where the next rate policy is copied before it is swapped in; holds the one before
    /// after.
    spare: Box<DaemonRatePolicy>,
    reply: Box<ReplyBuf>,
    /// The buffer of the replies that may be longer than a [`ReplyBuf`], made at the first.
    large: Vec<u8>,
}

impl Core {
    /// A service under `policy`, built from `parts` (configurations the policy validated).
    ///
    /// # Panics
    /// If a configuration in `parts` is one its component refuses: the policy's parse
    /// checks each section against the bounds the daemon builds with, so this cannot happen
    /// for a policy that was read.
    pub(crate) fn new(hasher: KeyHasher, policy: &DaemonRatePolicy, parts: Parts) -> Core {
        let mut storage = vec![Slot::empty(); parts.limiter_slots].into_boxed_slice();
        // Empty slots are zero bytes: an idle daemon keeps none of their pages resident.
        crate::memory::release_zeroed(&mut storage);
        let (breakers, permits, permit_key) = parts.breakers;
        let mut permit_slots = vec![PermitSlot::EMPTY; permits.max(1)].into_boxed_slice();
        crate::memory::release_zeroed(&mut permit_slots);
        let breakers = Breakers::new(breakers, permit_slots, permit_key);
        let (lease_keys, lease_config, lease_key) = parts.leases;
        // The policy's sections were validated against these bounds when it was read, so
        // the components take them as they are: a refusal here is a broken invariant, not a
        // configuration to replace silently with defaults.
        let leases = LeaseTable::new(lease_keys, lease_slots, lease_config, lease_key)
            .expect("the policy's [leases] section was validated when the policy was read");
        let health = Health::new(parts.health)
            .expect("the policy's [health] section was validated when the policy was read");
        let (records, idem_config, token_key) = parts.idempotency;
        let idempotency = |config| {
            let responses = StoredResponses::new(records);
            Idempotency::new(records, record_slots, config, token_key, responses)
        };
        let idempotency = idempotency(idem_config)
            .expect("the policy's [idempotency] section was validated when the policy was read");
        let service = Service::with_policy(hasher, RatePolicy::new(), storage)
            .with_breakers(breakers)
            .with_leases(leases)
            .with_health(health)
            .with_idempotency(idempotency);
        let mut core = Core {
            service: Box::new(service),
            spare: Box::default(),
            reply: Box::new([0; REPLY_MAX_BYTES]),
            large: Vec::new(),
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
        match self.service.handle(now, request, &mut self.reply) {
            Served::LargeReply => {
                self.large.resize(self.service.large_reply_max_bytes(), 0);
                let served = self.service.handle_large(now, request, &mut self.large);
                self.copy_large(served, out)
            }
            served => self.copy(served, out),
        }
    }

    /// [`Core::serve`] for a method and its params text.
    pub(crate) fn serve_params(
        &mut self,
        now: Instant,
        method: Method,
        params: &str,
        out: &mut Vec<u8>,
    ) -> Option<Reply> {
        match self
            .service
            .handle_params(now, method, params, &mut self.reply)
        {
            Served::LargeReply => {
                self.large.resize(self.service.large_reply_max_bytes(), 0);
                let served = self
                    .service
                    .handle_large_params(now, method, params, &mut self.large);
                self.copy_large(served, out)
            }
            served => self.copy(served, out),
        }
    }

    fn copy_large(&self, served: Served, out: &mut Vec<u8>) -> Option<Reply> {
        copy_into(served, &self.large, out)
    }

    /// What the last idempotency call's reply waits for (see [`Durable`]).
    pub(crate) fn durable(&self) -> Option<Durable<'_>> {
        self.service.durable()
    }

    /// The idempotency records.
    pub(crate) fn idempotency(&self) -> &DaemonIdempotency {
        self.service.idempotency()
    }

    /// The idempotency records, mutably.
    pub(crate) fn idempotency_mut(&mut self) -> &mut DaemonIdempotency {
        self.service.idempotency_mut()
    }

    fn copy(&self, served: Served, out: &mut Vec<u8>) -> Option<Reply> {
        copy_into(served, &self.reply[..], out)
    }

    /// Puts a validated policy in force with the core's
    /// [`Service::commit_policy`](heidi_core::service::Service::commit_policy): its rate
    /// part copied into the spare on the heap, then swapped in; on an error nothing changes.
    #[allow(clippy::result_large_err)] // the core's policy error, made once per refused change
    pub(crate) fn commit_policy(
        &mut self,
        now: Instant,
        policy: &Policy,
    ) -> Result<(), InvalidPolicy> {
        (*self.spare).clone_from(policy.rate());
        self.service
            .commit_policy(now, &mut self.spare, policy.sections())
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

    /// The leases.
    pub(crate) fn leases(&self) -> &DaemonLeases {
        self.service.leases()
    }

    /// The health checks.
    pub(crate) fn health(&self) -> &DaemonHealth {
        self.service.health()
    }

    /// The service's next deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.service.poll_timeout()
    }

    /// Runs the service's due timers.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.service.handle_timeout(now);
    }

    /// The next effect as a journal entry, in the form the core gives it (a breaker
    /// transition's stage, event type, level and message).
    pub(crate) fn poll_journal(&mut self) -> Option<JournalEntry> {
        match self.service.poll_effect()? {
            Effect::BreakerTransition(t) => {
                let (stage, event_type) = (BreakerTransition::STAGE, BreakerTransition::EVENT_TYPE);
                let mut entry = JournalEntry::info(stage, event_type, t.to_string());
                entry.level = t.level();
                Some(entry)
            }
        }
    }

    /// The breakers.
    pub(crate) fn breakers(&self) -> &Breakers<Box<[PermitSlot]>> {
        // Built with breakers in `Core::new`.
        self.service.breakers().expect("the service has breakers")
    }
}

/// The reply the service wrote into `buf`, copied into `out`; `None` when it wrote none.
fn copy_into(served: Served, buf: &[u8], out: &mut Vec<u8>) -> Option<Reply> {
    let Served::Reply(reply) = served else {
        return None;
    };
    out.clear();
    out.extend_from_slice(&buf[..reply.len]);
    Some(reply)
}
