//! `RATE_LIMIT_CHECK` and `RATE_LIMIT_CONSUME`: the core's [`Service`] (params, decision,
//! reply, denial counters, sweep) over limiter slots on the heap, under the policy's
//! [`DaemonRatePolicy`] (custom operations, tiers). The service (its ~160 KB policy inline)
//! is boxed, and a new policy is swapped in through a boxed spare, so neither moves through
//! the stack.

use heidi_core::Instant;
use heidi_core::key::KeyHasher;
use heidi_core::limit::Tat;
use heidi_core::policy::RatePolicy;
use heidi_core::proto::{Method, Request};
use heidi_core::service::{REPLY_MAX_BYTES, Reply, ReplyBuf, Served, Service};
use heidi_core::table::Slot;

use super::policy::DaemonRatePolicy;

type RateService = Service<Box<[Slot<Tat>]>, { CUSTOM }, { TIERS }>;
const CUSTOM: usize = heidi_core::policy::CUSTOM_OPERATIONS_MAX;
const TIERS: usize = heidi_core::policy::TIERS_MAX;

/// The service, its slots and the buffer its replies are written into.
pub(crate) struct RateLimits {
    service: Box<RateService>,
    /// Where the next policy is copied before it is swapped in; holds the one before after.
    spare: Box<DaemonRatePolicy>,
    reply: Box<ReplyBuf>,
}

impl RateLimits {
    /// A limiter over `slots` slots (a non-zero multiple of 8) under `policy`.
    pub(crate) fn new(hasher: KeyHasher, policy: &DaemonRatePolicy, slots: usize) -> RateLimits {
        let storage = vec![Slot::empty(); slots].into_boxed_slice();
        let mut limits = RateLimits {
            service: Box::new(Service::with_policy(hasher, RatePolicy::new(), storage)),
            spare: Box::default(),
            reply: Box::new([0; REPLY_MAX_BYTES]),
        };
        limits.set_policy(policy);
        limits
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

    /// [`RateLimits::serve`] for a method and its params text.
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

    /// Frees up to `budget` refilled buckets, continuing where the last sweep stopped.
    pub(crate) fn sweep(&mut self, now: Instant, budget: usize) {
        self.service.sweep(now, budget);
    }
}
