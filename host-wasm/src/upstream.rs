//! The simulated upstream: each call fails with a probability and takes a latency.

use crate::error::{SimError, check_range};
use crate::rng::Rng;
use heidi_core::Duration;

/// Longest base latency or jitter a scenario accepts (one minute).
pub const MAX_LATENCY_MS: u64 = 60_000;

/// A flaky upstream: fails with `fail_permille / 1000`, answers after `latency_ms` plus a
/// uniform `0..=latency_jitter_ms`.
#[derive(Clone, Copy, Debug)]
pub struct Upstream {
    fail_permille: u32,
    latency: Duration,
    jitter_us: u64,
}

/// One call's fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// Whether it succeeded.
    pub ok: bool,
    /// How long it took.
    pub latency: Duration,
}

impl Upstream {
    /// Checks and builds the upstream from a scenario's parameters.
    pub fn new(
        fail_permille: u32,
        latency_ms: u64,
        latency_jitter_ms: u64,
    ) -> Result<Upstream, SimError> {
        check_range("fail_permille", u64::from(fail_permille), 0, 1_000)?;
        check_range("latency_ms", latency_ms, 0, MAX_LATENCY_MS)?;
        check_range("latency_jitter_ms", latency_jitter_ms, 0, MAX_LATENCY_MS)?;
        Ok(Upstream {
            fail_permille,
            latency: Duration::from_millis(latency_ms),
            jitter_us: latency_jitter_ms * 1_000,
        })
    }

    /// A call under the normal failure rate.
    pub fn call(&self, rng: &mut Rng) -> Call {
        self.call_failing(rng, self.fail_permille)
    }

    /// A call under `fail_permille` instead of the normal rate (an outage).
    pub fn call_failing(&self, rng: &mut Rng, fail_permille: u32) -> Call {
        let ok = !rng.chance_permille(fail_permille);
        let latency = self.latency + Duration::from_micros(rng.between(0, self.jitter_us));
        Call { ok, latency }
    }

    /// The normal failure rate.
    pub fn fail_permille(&self) -> u32 {
        self.fail_permille
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_stays_within_base_plus_jitter_and_failures_follow_the_rate() {
        let up = Upstream::new(300, 20, 10).unwrap();
        let mut rng = Rng::new(9);
        let calls: Vec<Call> = (0..10_000).map(|_| up.call(&mut rng)).collect();
        assert!(
            calls
                .iter()
                .all(|c| (20_000..=30_000).contains(&c.latency.as_micros()))
        );
        let failed = calls.iter().filter(|c| !c.ok).count();
        assert!((2_800..3_200).contains(&failed), "{failed}");
        assert!(!up.call_failing(&mut rng, 1_000).ok);
    }

    #[test]
    fn bad_upstream_parameters_are_named() {
        let e = Upstream::new(1_001, 0, 0).unwrap_err();
        assert!(e.message.starts_with("fail_permille"), "{e}");
        let e = Upstream::new(0, MAX_LATENCY_MS + 1, 0).unwrap_err();
        assert!(e.message.starts_with("latency_ms"), "{e}");
        let e = Upstream::new(0, 0, MAX_LATENCY_MS + 1).unwrap_err();
        assert!(e.message.starts_with("latency_jitter_ms"), "{e}");
    }
}
