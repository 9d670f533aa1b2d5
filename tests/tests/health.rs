//! Model-based property tests of `heidi_core::health::Health` against a plain `Vec` of checks.
//!
//! Invariants: register/report/unregister answers match the model (including `Full`,
//! `NameTooLong`, `AlreadyRegistered` and unknown names); every check's status, the aggregate
//! and its counts match the model's rules at every step; `poll_timeout` is the model's next
//! silence deadline, and no check changes to unknown strictly between now and it.

use heidi_core::health::{
    AggregateStatus, CheckStatus, Health, HealthConfig, NAME_MAX_BYTES, RegisterError, UnknownCheck,
};
use heidi_core::{Duration, Instant};
use proptest::prelude::*;

const CAPACITY: usize = 4;
/// Name indices 0..6 are valid names; 6 is one byte too long.
const NAMES: usize = 7;

fn name(i: usize) -> String {
    if i == NAMES - 1 {
        "n".repeat(NAME_MAX_BYTES + 1)
    } else {
        format!("check-{i}")
    }
}

#[derive(Clone, Debug)]
enum Op {
    Advance(u64),
    Register(usize),
    Unregister(usize),
    Report(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..25_000_000).prop_map(Op::Advance),
        2 => (0..NAMES).prop_map(Op::Register),
        1 => (0..NAMES).prop_map(Op::Unregister),
        6 => (0..NAMES, any::<bool>()).prop_map(|(i, pass)| Op::Report(i, pass)),
    ]
}

struct ModelCheck {
    name: String,
    registered_at: Instant,
    last_report: Option<Instant>,
    failures: u32,
}

struct Model {
    config: HealthConfig,
    checks: Vec<ModelCheck>,
}

impl Model {
    fn silent_at(&self, c: &ModelCheck) -> Instant {
        let since = c.last_report.unwrap_or(c.registered_at);
        since + self.config.interval + self.config.interval
    }

    fn status(&self, now: Instant, c: &ModelCheck) -> CheckStatus {
        if now >= self.silent_at(c) {
            CheckStatus::Unknown
        } else if c.failures >= self.config.failure_threshold {
            CheckStatus::Unhealthy
        } else {
            CheckStatus::Healthy
        }
    }

    fn register(&mut self, now: Instant, name: &str) -> Result<(), RegisterError> {
        if name.len() > NAME_MAX_BYTES {
            Err(RegisterError::NameTooLong)
        } else if self.checks.iter().any(|c| c.name == name) {
            Err(RegisterError::AlreadyRegistered)
        } else if self.checks.len() == CAPACITY {
            Err(RegisterError::Full)
        } else {
            self.checks.push(ModelCheck {
                name: name.to_owned(),
                registered_at: now,
                last_report: None,
                failures: 0,
            });
            Ok(())
        }
    }

    fn report(
        &mut self,
        now: Instant,
        name: &str,
        pass: bool,
    ) -> Result<CheckStatus, UnknownCheck> {
        let i = self
            .checks
            .iter()
            .position(|c| c.name == name)
            .ok_or(UnknownCheck)?;
        let c = &mut self.checks[i];
        c.last_report = Some(now);
        c.failures = if pass { 0 } else { c.failures + 1 };
        Ok(self.status(now, &self.checks[i]))
    }

    fn unregister(&mut self, name: &str) -> Result<(), UnknownCheck> {
        let before = self.checks.len();
        self.checks.retain(|c| c.name != name);
        if self.checks.len() == before {
            Err(UnknownCheck)
        } else {
            Ok(())
        }
    }

    fn aggregate(&self, now: Instant) -> AggregateStatus {
        let healthy = self
            .checks
            .iter()
            .filter(|c| self.status(now, c) == CheckStatus::Healthy);
        match healthy.count() {
            n if n == self.checks.len() => AggregateStatus::Healthy,
            0 => AggregateStatus::Unhealthy,
            _ => AggregateStatus::Degraded,
        }
    }
}

fn check_all(h: &Health<CAPACITY>, model: &Model, now: Instant) -> Result<(), TestCaseError> {
    prop_assert_eq!(h.len(), model.checks.len());
    for c in &model.checks {
        let info = h.check(now, &c.name).unwrap();
        prop_assert_eq!(
            info.status,
            model.status(now, c),
            "check {} at {}",
            c.name,
            now
        );
        prop_assert_eq!(info.consecutive_failures, c.failures);
        prop_assert_eq!(info.last_report, c.last_report);
    }
    let summary = h.aggregate(now);
    prop_assert_eq!(summary.status, model.aggregate(now), "aggregate at {}", now);
    let count = |s| {
        model
            .checks
            .iter()
            .filter(|c| model.status(now, c) == s)
            .count()
    };
    prop_assert_eq!(summary.healthy, count(CheckStatus::Healthy));
    prop_assert_eq!(summary.unhealthy, count(CheckStatus::Unhealthy));
    prop_assert_eq!(summary.unknown, count(CheckStatus::Unknown));
    let deadline = model
        .checks
        .iter()
        .map(|c| model.silent_at(c))
        .filter(|&t| t > now)
        .min();
    prop_assert_eq!(h.poll_timeout(now), deadline);
    if let Some(deadline) = deadline {
        // Nothing turns unknown before the deadline the host sleeps until.
        let before = deadline - Duration::from_micros(1);
        prop_assert_eq!(h.aggregate(before).unknown, h.aggregate(now).unknown);
    }
    Ok(())
}

fn against_model(config: HealthConfig, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut h = Health::<CAPACITY>::new(config).unwrap();
    let mut model = Model {
        config,
        checks: Vec::new(),
    };
    let mut now = Instant::from_secs(1);
    for op in ops {
        match *op {
            Op::Advance(us) => now += Duration::from_micros(us),
            Op::Register(i) => {
                let n = name(i);
                prop_assert_eq!(h.register(now, &n), model.register(now, &n));
            }
            Op::Unregister(i) => {
                let n = name(i);
                prop_assert_eq!(h.unregister(&n), model.unregister(&n));
            }
            Op::Report(i, pass) => {
                let n = name(i);
                prop_assert_eq!(h.report(now, &n, pass), model.report(now, &n, pass));
            }
        }
        check_all(&h, &model, now)?;
    }
    Ok(())
}

fn config_strategy() -> impl Strategy<Value = HealthConfig> {
    (1u64..=20, 1u32..=4).prop_map(|(interval_s, failure_threshold)| HealthConfig {
        interval: Duration::from_secs(interval_s),
        failure_threshold,
    })
}

fn proptest_config() -> ProptestConfig {
    heidi_tests::proptest_config(256)
}

proptest! {
    #![proptest_config(proptest_config())]

    #[test]
    fn health_matches_the_model(
        config in config_strategy(),
        ops in prop::collection::vec(op(), 0..200),
    ) {
        against_model(config, &ops)?;
    }
}
