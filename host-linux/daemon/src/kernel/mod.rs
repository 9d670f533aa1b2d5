//! The core components behind the daemon's methods, and the policy document.
//!
//! [`Kernel`] holds every piece of core state the daemon serves (the core's service with the
//! keyed limiter, the breakers, leases, health checks and idempotency records) and the
//! [`Policy`] in force.
//! It is pure: no I/O, no clock (time comes in as `now`), no randomness (seeds come in at
//! construction). Every call does bounded work, so the daemon can keep it behind a mutex.
//!
//! The daemon's loop around it:
//!
//! 1. For each request: `kernel.handle(now, method, params, &mut out)`. [`Handled::Reply`]:
//!    send `out`, which says what the [`Said`] says. [`Handled::Decided`]: send `out`; the
//!    core's service decided it and says how (its typed outcome, for metrics).
//!    [`Handled::ApplyPolicy`]: journal the change durably, commit it, then send `out`.
//!    [`Handled::Idempotency`]: persist the idempotency record (or wait for the earlier ones),
//!    then send `out`.
//!    [`Handled::NotKernel`]: the method is the host's own (`PING`, `JOURNAL_*`, …).
//! 2. Drain [`Kernel::poll_journal`] (breaker transitions, the service's effects) into the
//!    journal. Until they are drained, at most 64 wait and breaker calls that could add one
//!    are refused `OVERLOADED`: none is dropped.
//! 3. Sleep until [`Kernel::poll_timeout`] or the next request; then [`Kernel::tick`] (the
//!    service's `handle_timeout`), and drain again.
//!
//! Every method, its params, replies and errors are specified in `docs/PROTOCOL.md`.
//!
//! ```
//! use heidi_core::proto::Method;
//! use heidi_core::service::Outcome;
//! use heidi_core::Instant;
//! use heidi_daemon::kernel::{Handled, Kernel, KernelCapacity, KernelSeeds, Policy};
//!
//! let seeds = KernelSeeds { key_hasher: [1; 16], lease_ids: [2; 16], idempotency_tokens: [3; 16] };
//! let small = KernelCapacity { limiter_slots: 64, lease_slots: 64, idempotency_slots: 64, held_permits: 64 };
//! let mut kernel = Kernel::with_capacity(seeds, Policy::default(), small);
//! let mut out = Vec::new();
//! let params = r#"{"key":"user:1","operation":"transform","cost":4}"#;
//! let handled = kernel.handle(Instant::from_secs(1), Method::RateLimitConsume, params, &mut out);
//! assert!(matches!(handled, Handled::Decided(r) if r.outcome == Outcome::Allowed));
//! let reply: serde_json::Value = serde_json::from_slice(&out).unwrap();
//! assert_eq!(reply["remaining"], 6); // transform: 10 per 60 s
//! ```

mod breakers;
mod config;
mod core_service;
mod health;
mod idempotency;
mod journal_append;
mod policy;
mod stats;

#[cfg(test)]
mod tests;

use heidi_core::Instant;
use heidi_core::journal::{POLICY_APPLIED, POLICY_STAGE};
use heidi_core::key::KeyHasher;
use heidi_core::policy::InvalidPolicy;
use heidi_core::proto::{HostCall, Method, Request, Server};
use heidi_core::service::{self, PolicyParamsError, PolicyVersion, StalePolicy};

pub use config::{
    BREAKER_POLICIES_MAX, BREAKERS_MAX, DURATION_MAX_MS, HEALTH_CHECKS_MAX,
    HEALTH_FAILURE_THRESHOLD_MAX, IDEMPOTENCY_RESPONSE_MAX_BYTES, KEY_MAX_BYTES, KernelCapacity,
    KernelSeeds, LEASE_SLOTS_PER_KEY, OPERATION_MAX_BYTES, PERMIT_TTL_MS, READINESS_CHECKS_MAX,
    RETRY_ATTEMPTS_MAX, RETRY_POLICIES_MAX,
};
pub use health::NotReady;
pub use journal_append::{RESERVED_STAGES, parse_journal_append};
pub use policy::{DaemonRatePolicy, Policy, PolicyError};
pub use stats::KernelStats;

pub use crate::reply::Said;

use core_service::{Core, Parts};
use heidi_common::JournalEntry;
pub use idempotency::{IdemChange, IdemPersist, IdemRestored};

/// What the host must do after [`Kernel::handle`].
#[derive(Debug)]
pub enum Handled {
    /// Send `out` now; it says this.
    Reply(Said),
    /// Send `out` now: a method the core's [`Service`](service::Service) decided, with its typed outcome (the
    /// host counts it from this, never from the reply's bytes).
    Decided(service::Reply),
    /// A validated `APPLY_POLICY` that is not applied yet: journal [`PendingPolicy::entry`]
    /// durably, then [`Kernel::commit_policy`], then send `out` (or an error reply if either
    /// step fails: then nothing was applied).
    ApplyPolicy(Box<PendingPolicy>),
    /// An idempotency call: make [`IdemPersist`] durable (a record written, or every record
    /// written before), then send `out`, which says this; if that fails, send an error
    /// instead.
    Idempotency(IdemPersist, Said),
    /// A host-owned method (`PING`, `STATUS`, `JOURNAL_APPEND`, `JOURNAL_TAIL`, `PIPELINE_*`);
    /// `out` is untouched.
    NotKernel,
}

/// A validated policy waiting to be journaled and committed (see [`Handled::ApplyPolicy`]).
#[derive(Debug)]
pub struct PendingPolicy {
    policy: Policy,
    version: u64,
    /// The `policy_applied` event to make durable before committing.
    pub entry: JournalEntry,
}

impl PendingPolicy {
    /// The version the policy gets when committed.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The validated policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// Every core component the daemon serves, and the policy in force. See the module docs.
pub struct Kernel {
    policy: Policy,
    version: PolicyVersion,
    hasher: KeyHasher,
    /// The core's service: rate limits, breakers, leases, health checks and idempotency
    /// records, with their timers and effects.
    core: Core,
}

impl Kernel {
    /// A kernel with production table sizes ([`KernelCapacity::DEFAULT`], about 12 MiB).
    pub fn new(seeds: KernelSeeds, policy: Policy) -> Kernel {
        Kernel::with_capacity(seeds, policy, KernelCapacity::DEFAULT)
    }

    /// A kernel with the given table sizes (rounded up to multiples of 8).
    pub fn with_capacity(seeds: KernelSeeds, policy: Policy, capacity: KernelCapacity) -> Kernel {
        let hasher = KeyHasher::new(seeds.key_hasher);
        // Permit ids get their own minter key, derived from the lease-id seed.
        let derive = |part: u8| hasher_of(seeds.lease_ids).hash_parts(&[b"permits", &[part]]);
        let mut permit_key = [0u8; 16];
        permit_key[..8].copy_from_slice(&derive(0).get().to_le_bytes());
        permit_key[8..].copy_from_slice(&derive(1).get().to_le_bytes());
        Kernel {
            hasher,
            core: Core::new(
                KeyHasher::new(seeds.key_hasher),
                policy.rate(),
                Parts {
                    limiter_slots: config::slots(capacity.limiter_slots),
                    breakers: (
                        service::BreakerPolicies::of_sections(policy.sections()),
                        capacity.held_permits,
                        permit_key,
                    ),
                    leases: (
                        config::slots(capacity.lease_slots),
                        *policy.leases(),
                        seeds.lease_ids,
                    ),
                    health: *policy.health(),
                    idempotency: (
                        config::slots(capacity.idempotency_slots),
                        *policy.idempotency(),
                        seeds.idempotency_tokens,
                    ),
                },
            ),
            policy,
            version: PolicyVersion::FIRST,
        }
    }

    /// Handles one request: clears `out` and writes a complete JSON reply body into it (a
    /// success object or an error reply), or leaves `out` alone for a host-owned method.
    pub fn handle(
        &mut self,
        now: Instant,
        method: Method,
        params: &str,
        out: &mut Vec<u8>,
    ) -> Handled {
        match self.core.serve_params(now, method, params, out) {
            Some(reply) => self.decided(reply),
            None => self.dispatch(method, params, out),
        }
    }

    /// [`Kernel::handle`] for a parsed request: the members of its params that the parse
    /// recorded are read without scanning the text again.
    pub fn handle_request(
        &mut self,
        now: Instant,
        request: &Request<'_>,
        out: &mut Vec<u8>,
    ) -> Handled {
        match self.core.serve(now, request, out) {
            Some(reply) => self.decided(reply),
            None => self.dispatch(request.method, request.params, out),
        }
    }

    /// A reply the core's service decided: sent now, or once what it waits for is durable.
    fn decided(&self, reply: service::Reply) -> Handled {
        match self.core.durable() {
            Some(durable) => {
                Handled::Idempotency(idempotency::persist_of(durable), Said::from(&reply))
            }
            None => Handled::Decided(reply),
        }
    }

    /// The methods the core's [`Service`](service::Service) does not cover yet:
    /// `APPLY_POLICY` and `GET_POLICY` (their params, replies and rules are the core's).
    fn dispatch(&mut self, method: Method, params: &str, out: &mut Vec<u8>) -> Handled {
        match method.server() {
            Server::Host(HostCall::GetPolicy) => {
                out.clear();
                Handled::Reply(match service::read_get_policy(params) {
                    Ok(()) => {
                        let mut text = String::new();
                        let (rate, sections) = (self.policy.rate(), self.policy.sections());
                        // Writing into a `String` cannot fail.
                        let _ = service::write_policy_reply(
                            self.version.get(),
                            rate,
                            sections,
                            &mut text,
                        );
                        out.extend_from_slice(text.as_bytes());
                        Said::Success
                    }
                    Err(e) => crate::reply::error(PolicyParamsError::CODE, &e.to_string(), out),
                })
            }
            Server::Host(HostCall::ApplyPolicy) => self.apply_policy(params, out),
            _ => Handled::NotKernel,
        }
    }

    fn apply_policy(&mut self, params: &str, out: &mut Vec<u8>) -> Handled {
        out.clear();
        let doc = match service::read_apply_policy(params) {
            Ok(doc) => doc,
            Err(e) => {
                let said = crate::reply::error(PolicyParamsError::CODE, &e.to_string(), out);
                return Handled::Reply(said);
            }
        };
        let policy = match self.validate_apply(doc) {
            Ok(policy) => policy,
            Err(e) => {
                let said = crate::reply::error(InvalidPolicy::CODE, &e.to_string(), out);
                return Handled::Reply(said);
            }
        };
        let version = self.version.next();
        let mut text = String::new();
        let _ = service::write_applied_reply(version, &mut text);
        out.extend_from_slice(text.as_bytes());
        let message = policy.event_message(version, "applied");
        let entry = JournalEntry::info(POLICY_STAGE, POLICY_APPLIED, message);
        Handled::ApplyPolicy(Box::new(PendingPolicy {
            policy,
            version,
            entry,
        }))
    }

    /// Validates the whole document against the running state; changes nothing. Every
    /// breaker configuration is checked by the parse, so putting it in force cannot fail.
    fn validate_apply(&self, doc: &str) -> Result<Policy, PolicyError> {
        let policy = Policy::parse(doc)?;
        self.check_compatible(&policy)?;
        Ok(policy)
    }

    fn check_compatible(&self, policy: &Policy) -> Result<(), PolicyError> {
        let running = self.core.idempotency().config();
        Ok(service::check_compatible(policy.sections(), running)?)
    }

    /// Applies a policy validated by [`Kernel::handle`] once its `policy_applied` event is
    /// durable. Builds every new component state first, then swaps it all in; on an error
    /// (another policy was committed in between) nothing changes.
    pub fn commit_policy(
        &mut self,
        now: Instant,
        pending: PendingPolicy,
    ) -> Result<u64, PolicyError> {
        let mut version = self.version;
        version
            .commit(pending.version)
            .map_err(|stale| PolicyError {
                field: StalePolicy::FIELD.to_owned(),
                reason: stale.to_string(),
            })?;
        let policy = pending.policy;
        self.check_compatible(&policy)?;
        self.core.commit_policy(now, &policy)?;
        self.policy = policy;
        self.version = version;
        Ok(version.get())
    }

    /// Puts back the idempotency records saved before a restart (`entries` oldest first, as
    /// [`IdemLog::open`](heidi_store::IdemLog::open) returns them), their wall-clock times
    /// converted through `anchor`. When the table has no room the oldest are dropped.
    pub fn restore_idempotency(
        &mut self,
        anchor: heidi_core::service::WallAnchor,
        entries: &[heidi_store::IdemEntry],
    ) -> IdemRestored {
        let idempotency = self.core.idempotency_mut();
        idempotency::restore(idempotency, anchor, &self.hasher, entries)
    }

    /// Continues the version sequence of a policy restored at start-up (`version` ≥ 1).
    pub fn restore_version(&mut self, version: u64) {
        self.version = PolicyVersion::restored(version);
    }

    /// Bounded housekeeping: the core service's timers (breaker timeouts, expired breaker
    /// permits, the limiter, lease and idempotency sweeps). Drain [`Kernel::poll_journal`]
    /// afterwards.
    pub fn tick(&mut self, now: Instant) {
        self.core.handle_timeout(now);
    }

    /// The earliest instant at which [`Kernel::tick`] has work; `None` when nothing is
    /// scheduled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    /// The next breaker transition to journal (stage `kernel`, event `breaker_transition`),
    /// from the core service's effects. At most
    /// [`EFFECTS_MAX`](heidi_core::service::EFFECTS_MAX) wait, and none is dropped: while they
    /// are not drained, breaker calls that could add one are refused `OVERLOADED`.
    pub fn poll_journal(&mut self) -> Option<JournalEntry> {
        self.core.poll_journal()
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// 1 at start, +1 per successful `APPLY_POLICY`.
    pub fn policy_version(&self) -> u64 {
        self.version.get()
    }

    /// The checks named by the policy's `readiness.checks` that are not healthy at `now`, in
    /// the policy's order; empty when the daemon may report ready. A check that never
    /// reported counts as not healthy (`unreported`).
    pub fn not_ready(&self, now: Instant) -> Vec<NotReady> {
        health::not_ready(self.core.health(), now, &self.policy.readiness_checks())
    }

    /// Counters and gauges for `/metrics`.
    pub fn stats(&self) -> KernelStats {
        KernelStats {
            limiter_denials: self.core.denials(),
            breakers: breakers::states(self.core.breakers()),
            limiter_keys: self.core.len(),
            lease_keys: self.core.leases().keys(),
            idempotency_keys: self.core.idempotency().len(),
            health_checks: self.core.health().len(),
            breaker_permits: self.core.breakers().held_permits(),
        }
    }
}

fn hasher_of(seed: [u8; 16]) -> KeyHasher {
    KeyHasher::new(seed)
}
