//! `RATE_LIMIT_CHECK` and `RATE_LIMIT_CONSUME`: the core's [`Service`] (params, decision,
//! reply, denial counters, sweep) over limiter slots on the heap.

use heidi_core::Instant;
use heidi_core::key::KeyHasher;
use heidi_core::limit::{PolicyTable, Tat};
use heidi_core::proto::{Method, Request};
use heidi_core::service::{REPLY_MAX_BYTES, Reply, ReplyBuf, Served, Service};
use heidi_core::table::Slot;

/// The service, its slots and the buffer its replies are written into.
pub(crate) struct RateLimits {
    service: Service<Box<[Slot<Tat>]>>,
    reply: Box<ReplyBuf>,
}

impl RateLimits {
    /// A limiter over `slots` slots (a non-zero multiple of 8) under `limits`.
    pub(crate) fn new(hasher: KeyHasher, limits: PolicyTable, slots: usize) -> RateLimits {
        let storage = vec![Slot::empty(); slots].into_boxed_slice();
        RateLimits {
            service: Service::new(hasher, limits, storage),
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

    /// Frees up to `budget` refilled buckets, continuing where the last sweep stopped.
    pub(crate) fn sweep(&mut self, now: Instant, budget: usize) {
        self.service.sweep(now, budget);
    }
}
