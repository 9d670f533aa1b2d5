//! What is left of breakers on the host side: the policy document's breaker section turned
//! into the core's [`BreakerPolicies`], and a policy change checked and put in force on the
//! breakers that exist. `BREAKER_ACQUIRE` and `BREAKER_RECORD`, the permits, the timers and
//! the state changes are the core service's (`heidi_core::service`).

use heidi_core::Instant;
use heidi_core::breaker::{BreakerConfig, BreakerId};
use heidi_core::service::{BreakerPolicies, Breakers, PermitSlot};

use super::policy::{Policy, PolicyError};

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

/// Breakers whose configuration `policy` changes, with the new configuration checked
/// (nothing is changed yet).
pub(crate) fn prepare(
    breakers: &Held,
    policy: &Policy,
) -> Result<Vec<(BreakerId, BreakerConfig)>, PolicyError> {
    let mut out = Vec::new();
    for (id, name, b) in breakers.registry().iter() {
        let config = policy.breaker(name);
        if config != b.config() {
            config.validate().map_err(|e| PolicyError {
                field: format!("breakers.{name}"),
                reason: e.to_string(),
            })?;
            out.push((id, *config));
        }
    }
    Ok(out)
}

/// Puts `policy` in force at `now`: new breakers get its configurations, and the changes from
/// [`prepare`] apply with [`heidi_core::breaker::Breaker::reconfigure`]: each breaker keeps its
/// state (an open one stays open, at most until its old deadline), no transition happens, and
/// its outstanding permits turn stale in the core (recording one answers
/// `"recorded":"stale"`; they expire as usual).
pub(crate) fn install_at(
    breakers: &mut Held,
    now: Instant,
    policy: &Policy,
    changes: Vec<(BreakerId, BreakerConfig)>,
) {
    breakers.set_policies(policies(policy));
    for (id, config) in changes {
        // Checked by `prepare`: a refusal would leave the breaker as it was.
        let checked = breakers.reconfigure(now, id, config);
        debug_assert!(checked.is_ok(), "prepare validated {config:?}");
    }
}

/// Every breaker's name and state.
pub(crate) fn states(breakers: &Held) -> Vec<(String, &'static str)> {
    let registry = breakers.registry().iter();
    registry
        .map(|(_, n, b)| (n.to_owned(), b.state().as_str()))
        .collect()
}
