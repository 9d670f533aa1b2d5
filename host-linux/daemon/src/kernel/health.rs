//! `HEALTH_REPORT` and `HEALTH_AGGREGATE`: the core's health set. A check is registered by
//! its first report.

use heidi_core::Instant;
use heidi_core::health::{AggregateStatus, CheckStatus, Health, HealthConfig, NAME_MAX_BYTES};
use heidi_core::journal::is_valid_name;
use heidi_core::proto::ErrorCode;
use serde_json::{Value, json};

use super::config::HEALTH_CHECKS_MAX;
use super::fields::Fields;
use super::reply::{Answer, Fail, ms_until};

type Set = Health<HEALTH_CHECKS_MAX>;

/// A check that holds readiness back, and why: `unhealthy`, `unknown` (silent for two
/// intervals) or `unreported` (it never reported since the daemon started).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotReady {
    /// The check's name.
    pub name: String,
    /// `"unhealthy"`, `"unknown"` or `"unreported"`.
    pub status: &'static str,
}

/// The health set.
pub(crate) struct HealthChecks {
    set: Box<Set>,
}

fn check_str(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Healthy => "healthy",
        CheckStatus::Unhealthy => "unhealthy",
        CheckStatus::Unknown => "unknown",
    }
}

fn aggregate_str(s: AggregateStatus) -> &'static str {
    match s {
        AggregateStatus::Healthy => "healthy",
        AggregateStatus::Degraded => "degraded",
        AggregateStatus::Unhealthy => "unhealthy",
    }
}

fn empty(config: HealthConfig) -> Box<Set> {
    // The policy validated `config`; the defaults are valid too.
    let set = Health::new(config).or_else(|_| Health::new(HealthConfig::DEFAULT));
    Box::new(set.expect("defaults are valid"))
}

impl HealthChecks {
    /// An empty set under `config`.
    pub(crate) fn new(config: HealthConfig) -> HealthChecks {
        HealthChecks { set: empty(config) }
    }

    /// `HEALTH_REPORT`.
    pub(crate) fn report(&mut self, now: Instant, params: &Value) -> Answer {
        let mut f = Fields::new(params, "params")?;
        let name = f.str_req("name", NAME_MAX_BYTES)?;
        if !is_valid_name(name.as_bytes()) {
            return Err(f
                .error("name", "names are 1 to 64 of A-Z a-z 0-9 _ . : -")
                .into());
        }
        let pass = f
            .bool("pass")?
            .ok_or_else(|| f.error("pass", "is required"))?;
        f.finish()?;
        if self.set.check(now, name).is_err() {
            self.set.register(now, name).map_err(|e| {
                let message = format!("{e} ({HEALTH_CHECKS_MAX} checks)");
                Fail::new(ErrorCode::Overloaded, message)
            })?;
        }
        let _ = self.set.report(now, name, pass);
        let info = self
            .set
            .check(now, name)
            .map_err(|e| Fail::new(ErrorCode::Internal, e.to_string()))?;
        Ok(json!({
            "ok": true,
            "name": name,
            "status": check_str(info.status),
            "consecutive_failures": info.consecutive_failures,
            "unknown_in_ms": ms_until(now, info.unknown_at),
        }))
    }

    /// `HEALTH_AGGREGATE`.
    pub(crate) fn aggregate(&self, now: Instant, params: &Value) -> Answer {
        Fields::new(params, "params")?.finish()?;
        let summary = self.set.aggregate(now);
        let mut checks: Vec<(&str, CheckStatus)> = self.set.iter(now).collect();
        checks.sort_unstable_by_key(|c| c.0);
        let checks: Vec<Value> = checks
            .into_iter()
            .map(|(name, status)| json!({"name": name, "status": check_str(status)}))
            .collect();
        Ok(json!({
            "status": aggregate_str(summary.status),
            "healthy": summary.healthy,
            "unhealthy": summary.unhealthy,
            "unknown": summary.unknown,
            "checks": checks,
        }))
    }

    /// The set rebuilt under `config`, each check keeping its registration or last report and
    /// its failures (replayed up to the new threshold, which is all the status depends on).
    pub(crate) fn rebuilt(&self, now: Instant, config: HealthConfig) -> Box<Set> {
        let mut new = empty(config);
        let silence = self.set.config().silence_limit();
        for (name, _) in self.set.iter(now) {
            let Ok(info) = self.set.check(now, name) else {
                continue;
            };
            match info.last_report {
                Some(at) => {
                    let _ = new.register(at, name);
                    let fails = info.consecutive_failures.min(config.failure_threshold);
                    if fails == 0 {
                        let _ = new.report(at, name, true);
                    }
                    for _ in 0..fails {
                        let _ = new.report(at, name, false);
                    }
                }
                None => {
                    let _ = new.register(info.unknown_at.saturating_sub(silence), name);
                }
            }
        }
        new
    }

    /// Installs a set from [`HealthChecks::rebuilt`].
    pub(crate) fn install(&mut self, set: Box<Set>) {
        self.set = set;
    }

    /// Those of `names` that are not healthy at `now` (see [`NotReady`]).
    pub(crate) fn not_ready(&self, now: Instant, names: &[String]) -> Vec<NotReady> {
        names
            .iter()
            .filter_map(|name| {
                let status = match self.set.check(now, name) {
                    Ok(info) if info.status == CheckStatus::Healthy => return None,
                    Ok(info) => check_str(info.status),
                    Err(_) => "unreported",
                };
                Some(NotReady {
                    name: name.clone(),
                    status,
                })
            })
            .collect()
    }

    /// Registered checks.
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }
}
