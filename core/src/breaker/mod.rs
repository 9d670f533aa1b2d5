//! Circuit breakers: stop calling an upstream that keeps failing, and probe it on time.
//!
//! A [`Breaker`] is Closed (calls pass and are counted), Open (calls are rejected until the
//! reset timeout), HalfOpen (a bounded number of probes pass; success closes, failure
//! re-opens), or in one of two admin modes, ForcedOpen and Disabled. It trips on
//! `failure_threshold` consecutive failures, or, with a [`RateTrip`], when the failure rate over
//! the last K calls or the last T reaches a threshold after a minimum number of calls. Calls
//! that succeed slowly (`slow_call_threshold`) count as failures. Defaults: docs/CORE.md
//! ([`BreakerConfig::DEFAULT`]).
//!
//! # Call order
//!
//! ```
//! use heidi_core::breaker::{Breaker, BreakerConfig, Outcome};
//! use heidi_core::{Duration, Instant};
//!
//! let mut breaker = Breaker::new(BreakerConfig::DEFAULT).unwrap();
//! let now = Instant::from_secs(1);
//! match breaker.acquire(now) {
//!     Ok(permit) => {
//!         // ... make the call, measure it ...
//!         let took = Duration::from_millis(20);
//!         let _ = breaker.record(now + took, permit, Outcome::Success(took));
//!     }
//!     Err(rejected) => {
//!         // Fail fast; tell the client to come back at `rejected.until`.
//!         let _ = rejected.until;
//!     }
//! }
//! // Journal the state changes, then sleep until the next deadline (or the next request)
//! // and call `handle_timeout`: an open breaker half-opens on time even when idle.
//! while let Some(t) = breaker.poll_event() {
//!     let _ = (t.from, t.to, t.at);
//! }
//! if let Some(deadline) = breaker.poll_timeout() {
//!     breaker.handle_timeout(deadline);
//! }
//! ```
//!
//! # Permits
//!
//! [`Breaker::acquire`] hands out a [`Permit`] that must go back to the breaker that issued it
//! through [`Breaker::record`] (with the [`Outcome`] and duration) or [`Breaker::abandon`]
//! (the call never ran). Both take `now` and first apply any due timeout, like every call
//! that takes `now`. A permit carries the generation it was issued in; every state change
//! and every admin call ([`Breaker::force_open`], [`Breaker::disable`], [`Breaker::reset`],
//! even one that keeps the state, such as a reset while Closed) starts a new generation, so a
//! permit returned after a trip, a reset or an admin change is *stale*
//! ([`Recorded::Stale`]) and counts for nothing: results of calls started under old
//! conditions never corrupt the new state. A permit also carries its breaker's
//! [tag](Breaker::tag); one returned to a breaker with another tag is *foreign*
//! ([`Recorded::Foreign`]) and counts for nothing either. The breakers of a
//! [`BreakerRegistry`] have distinct tags; give standalone breakers distinct tags with
//! [`Breaker::with_tag`].
//!
//! ```
//! use heidi_core::breaker::{Breaker, BreakerConfig, Outcome, Recorded};
//! use heidi_core::{Duration, Instant};
//!
//! let config = BreakerConfig::DEFAULT;
//! let mut a = Breaker::with_tag(config, 1).unwrap();
//! let mut b = Breaker::with_tag(config, 2).unwrap();
//! let now = Instant::from_secs(1);
//! let failed = Outcome::Failure(Duration::from_millis(3));
//! // A permit returned to the wrong breaker counts for nothing there.
//! let permit = a.acquire(now).unwrap();
//! assert_eq!(b.record(now, permit, failed), Recorded::Foreign);
//! // A reset turns every outstanding permit stale, even while Closed.
//! let permit = a.acquire(now).unwrap();
//! a.reset(now);
//! assert_eq!(a.record(now, permit, failed), Recorded::Stale);
//! // A call that never ran goes back with `abandon`.
//! let permit = a.acquire(now).unwrap();
//! a.abandon(now, permit);
//! assert_eq!(a.consecutive_failures(), 0);
//! ```
//!
//! A half-open probe also holds one of `half_open_max_probes` slots. A probe that
//! is never returned (a host dropped its permit, or the call hangs) is treated as failed at
//! `probe_timeout`, on time, which re-opens the breaker: the slot cannot be lost for good, and
//! an upstream that does not answer a probe in time is not healthy (after resilience4j's
//! `maxWaitDurationInHalfOpenState`). A probe result, or an abandon, that arrives after its
//! deadline is stale: the timeout has re-opened the breaker first.
//!
//! # Events
//!
//! Each state change is queued as a [`Transition`] `{ from, to, at }` in a ring of
//! [`EVENT_CAPACITY`]; the host drains [`Breaker::poll_event`] after each call and journals
//! them. If it does not, the oldest transitions are dropped and counted
//! ([`Breaker::dropped_events`]).
//!
//! # Registry
//!
//! [`BreakerRegistry`] holds up to `N` breakers under distinct names; asking again for a name
//! returns the same breaker.

mod config;
mod events;
mod machine;
mod registry;
mod state;
mod window;

pub use config::{
    BreakerConfig, BreakerConfigError, MAX_LAST_CALLS, MAX_PROBES, RateTrip, RateWindow,
    TIME_BUCKETS,
};
pub use events::EVENT_CAPACITY;
pub use machine::Breaker;
pub use registry::{BreakerId, BreakerRegistry, RegistryError};
pub use state::{Outcome, Permit, Recorded, Rejected, State, Transition};

#[cfg(test)]
mod reconfigure_tests;
#[cfg(test)]
mod tests;
