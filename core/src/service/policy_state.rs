//! The policy in force and how a change takes over: the version sequence ([`PolicyVersion`])
//! and putting a validated document in force across the service's components, all or
//! nothing ([`Service::commit_policy`]). `APPLY_POLICY`'s two steps: a host reads and
//! validates the document (`read_apply_policy`, `RatePolicy::parse_into`, `Sections::parse`,
//! `check_compatible`), answers with [`PolicyVersion::next`] once the change is journaled,
//! then commits it with that version.

use core::fmt;

use super::{BreakerPolicies, MaybeBreakers, MaybeHealth, MaybeIdempotency, MaybeLeases, Service};
use crate::Instant;
use crate::limit::Tat;
use crate::policy::{InvalidPolicy, RatePolicy, Reason, Sections};
use crate::table::Slot;

/// The version of the policy in force. The built-in policy is version 1; each change that
/// is committed takes the next; a change prepared against an older version is refused at
/// commit ([`StalePolicy`]), so the version a change is journaled under is the one it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PolicyVersion(u64);

impl Default for PolicyVersion {
    fn default() -> PolicyVersion {
        PolicyVersion::FIRST
    }
}

impl PolicyVersion {
    /// The built-in policy's version, 1.
    pub const FIRST: PolicyVersion = PolicyVersion(1);

    /// The version of a policy restored at start-up (as journaled; 0 is taken as 1).
    pub const fn restored(version: u64) -> PolicyVersion {
        PolicyVersion(if version == 0 { 1 } else { version })
    }

    /// The version in force.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The version the next change gets.
    pub const fn next(self) -> u64 {
        self.0.saturating_add(1)
    }

    /// Moves to `version`, the one a change was prepared with; refused when another change
    /// was committed in between.
    pub fn commit(&mut self, version: u64) -> Result<(), StalePolicy> {
        if version != self.next() {
            return Err(StalePolicy { current: self.0 });
        }
        self.0 = version;
        Ok(())
    }
}

/// A change prepared against an older version: another was committed in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StalePolicy {
    /// The version in force now.
    pub current: u64,
}

impl StalePolicy {
    /// The field the refusal names: `policy`.
    pub const FIELD: &'static str = "policy";
}

impl fmt::Display for StalePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "version {} was applied meanwhile; send the document again",
            self.current
        )
    }
}

impl<S, const CUSTOM: usize, const TIERS: usize, B, L, H, I> Service<S, CUSTOM, TIERS, B, L, H, I>
where
    S: AsRef<[Slot<Tat>]> + AsMut<[Slot<Tat>]>,
    B: MaybeBreakers,
    L: MaybeLeases,
    H: MaybeHealth,
    I: MaybeIdempotency,
{
    /// Puts a validated policy in force at `now`: `rate` (swapped in like
    /// [`Service::swap_policy`]: it receives the policy that was) and `sections`' breakers,
    /// leases and health. Every fallible part is built or checked first — a health set under
    /// a changed configuration, the breakers' new configurations — so on an error nothing
    /// changes; the error names the section.
    // The error names its field by a path held inline, like every policy error (no allocation).
    #[allow(clippy::result_large_err)]
    pub fn commit_policy(
        &mut self,
        now: Instant,
        rate: &mut RatePolicy<CUSTOM, TIERS>,
        sections: &Sections,
    ) -> Result<(), InvalidPolicy> {
        let health = self
            .health()
            .reconfigured(*sections.health())
            .map_err(|e| InvalidPolicy::at(&["health"], Reason::Health(e)))?;
        if let Some(breakers) = self.breakers_mut() {
            let policies = BreakerPolicies::of_sections(sections);
            breakers
                .apply_policies(now, policies)
                .map_err(|e| InvalidPolicy::at(&["breakers"], Reason::Breaker(e)))?;
        }
        if let Some(set) = health {
            *self.health_mut() = set;
        }
        // Validated with the document against the same bounds: it cannot fail.
        let leases = self.leases_mut().set_config(*sections.leases());
        debug_assert!(leases.is_ok(), "the policy validated the lease config");
        self.swap_policy(rate);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Health, HealthConfig};
    use crate::key::KeyHasher;
    use crate::lease::{LeaseConfig, LeaseSet};
    use crate::limit::PolicyTable;
    use crate::service::LeaseTable;
    use crate::{Duration, Instant};
    extern crate std;
    use std::boxed::Box;
    use std::vec;

    type Leases = LeaseTable<Box<[Slot<LeaseSet<4>>]>, 4>;

    #[test]
    fn a_commit_puts_every_section_and_the_limits_in_force() {
        let limiter = vec![Slot::empty(); 64].into_boxed_slice();
        let make = |n: usize| vec![Slot::empty(); n].into_boxed_slice();
        let config = LeaseConfig {
            limit_per_key: 3,
            ttl: Duration::from_secs(60),
        };
        let leases: Leases = LeaseTable::new(64, make, config, [2; 16]).unwrap();
        let health: Health<4> = Health::new(HealthConfig::DEFAULT).unwrap();
        let mut service = Service::new(KeyHasher::new([1; 16]), PolicyTable::DEFAULT, limiter)
            .with_leases(leases)
            .with_health(health);
        let doc = r#"{"limits":{"search":{"capacity_tokens":7,"window_ms":1000}},
            "leases":{"limit_per_key":2,"ttl_ms":5000},
            "health":{"interval_ms":1000,"failure_threshold":2}}"#;
        let mut rate = RatePolicy::<0, 0>::default();
        rate.parse_into(doc).unwrap();
        let sections = Sections::parse(doc).unwrap();
        service
            .commit_policy(Instant::from_secs(1), &mut rate, &sections)
            .unwrap();
        assert_ne!(service.limits(), &PolicyTable::DEFAULT);
        assert_eq!(
            rate.builtin_limits(),
            &PolicyTable::DEFAULT,
            "the old policy back"
        );
        assert_eq!(service.leases().config().limit_per_key, 2);
        assert_eq!(service.leases().config().ttl, Duration::from_secs(5));
        assert_eq!(service.health().config(), sections.health());
        // The same document again changes nothing, and the health set is kept as it is.
        service
            .commit_policy(Instant::from_secs(2), &mut rate, &sections)
            .unwrap();
        assert_eq!(service.health().config(), sections.health());
    }

    #[test]
    fn versions_follow_one_another_and_a_stale_change_is_refused() {
        let mut v = PolicyVersion::default();
        assert_eq!((v.get(), v.next()), (1, 2));
        assert_eq!(v.commit(3), Err(StalePolicy { current: 1 }));
        assert_eq!(v.commit(2), Ok(()));
        assert_eq!(v.get(), 2);
        assert_eq!(v.commit(2), Err(StalePolicy { current: 2 }));
        assert_eq!(PolicyVersion::restored(0), PolicyVersion::FIRST);
        assert_eq!(PolicyVersion::restored(7).next(), 8);
        assert_eq!(PolicyVersion::restored(u64::MAX).next(), u64::MAX);
        extern crate std;
        use std::string::ToString;
        assert_eq!(
            StalePolicy { current: 4 }.to_string(),
            "version 4 was applied meanwhile; send the document again"
        );
    }
}
