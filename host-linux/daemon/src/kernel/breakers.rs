//! What is left of breakers on the host side: the policy document's breaker section turned
//! into the core's [`BreakerPolicies`] (which `Breakers::apply_policies` puts in force), and
//! the breakers' states for `/metrics`. `BREAKER_ACQUIRE` and `BREAKER_RECORD`, the permits, the timers and
//! the state changes are the core service's (`heidi_core::service`).

use heidi_core::service::{BreakerPolicies, Breakers, PermitSlot};

use super::policy::Policy;

type Held = Breakers<Box<[PermitSlot]>>;

/// The breaker configurations of `policy`, as the core holds them.
pub(crate) fn policies(policy: &Policy) -> BreakerPolicies {
    let mut out = BreakerPolicies::new(*policy.breaker_default());
    for (name, config) in policy.named_breakers() {
        // The policy holds at most BREAKER_POLICIES_MAX entries, `default` included, and
        // names of at most 64 bytes: each fits.
        let fits = out.insert(name, *config);
        debug_assert!(fits.is_ok(), "breakers.{name} fits the core's table");
    }
    out
}

/// Every breaker's name and state.
pub(crate) fn states(breakers: &Held) -> Vec<(String, &'static str)> {
    let registry = breakers.registry().iter();
    registry
        .map(|(_, n, b)| (n.to_owned(), b.state().as_str()))
        .collect()
}
