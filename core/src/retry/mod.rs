//! Retries: when to try a failed call again ([`RetryPolicy`]) and how many retries the traffic
//! can afford ([`RetryBudget`]).
//!
//! A host that retries asks, after each failed attempt,
//! [`RetryPolicy::next_with_budget`]`(now, attempts_made, random, breaker.open_until(), &mut
//! budget)` and either sleeps until [`RetryDecision::RetryAt`] or reports the failure with the
//! [`GiveUpReason`]. Randomness for jitter is a `u64` the host draws; time is the host's
//! [`Instant`](crate::Instant). Retry in one layer only: a client that retries a call its
//! server already retries multiplies the load.

mod attempt;
pub mod budget;
pub mod policy;

pub use attempt::AttemptFault;
pub use budget::{BudgetConfig, BudgetConfigError, BudgetExhausted, RetryBudget};
pub use policy::{GiveUpReason, Jitter, PolicyError, RetryDecision, RetryPolicy};
