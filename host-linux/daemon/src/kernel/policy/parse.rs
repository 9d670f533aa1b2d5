//! Reading and validating a policy document, section by section.

use std::collections::BTreeMap;

use heidi_core::breaker::{BreakerConfig, MAX_LAST_CALLS, MAX_PROBES, RateTrip, RateWindow};
use heidi_core::health::HealthConfig;
use heidi_core::idempotency::IdempotencyConfig;
use heidi_core::journal::is_valid_name;
use heidi_core::lease::LeaseConfig;
use heidi_core::retry::{Jitter, RetryPolicy};
use serde_json::Value;

use super::{Policy, PolicyError};
use crate::kernel::config::{
    BREAKER_POLICIES_MAX, DURATION_MAX_MS, HEALTH_FAILURE_THRESHOLD_MAX, LEASE_SLOTS_PER_KEY,
    READINESS_CHECKS_MAX, RETRY_ATTEMPTS_MAX, RETRY_POLICIES_MAX,
};
use crate::kernel::fields::{FieldError, Fields, join};

type Result<T> = std::result::Result<T, PolicyError>;

fn error(field: String, reason: impl Into<String>) -> PolicyError {
    PolicyError {
        field,
        reason: reason.into(),
    }
}

/// The whole document: the rate-limit part (`limits`, `tiers`, `default_tier`) by the core's
/// [`RatePolicy::parse_into`](heidi_core::policy::RatePolicy::parse_into), the other sections
/// here.
pub(super) fn policy(doc: &Value) -> Result<Policy> {
    let mut root = Fields::new(doc, "")?;
    let mut p = Policy::default();
    let text = serde_json::to_string(doc).expect("a Value always serializes");
    p.rate.parse_into(&text).map_err(|e| PolicyError {
        field: e.path().to_owned(),
        reason: e.reason.to_string(),
    })?;
    for section in ["limits", "tiers", "default_tier"] {
        root.raw(section);
    }
    if let Some(f) = root.object("retry")? {
        p.retry = retry(f)?;
    }
    if let Some(f) = root.object("breakers")? {
        (p.breaker_default, p.breakers) = breakers(f)?;
    }
    if let Some(f) = root.object("leases")? {
        p.leases = leases(f)?;
    }
    if let Some(f) = root.object("health")? {
        p.health = health(f)?;
    }
    if let Some(f) = root.object("idempotency")? {
        p.idempotency = idempotency(f)?;
    }
    if let Some(f) = root.object("readiness")? {
        p.readiness = readiness(f)?;
    }
    root.finish()?;
    Ok(p)
}

fn named(path: &str, name: &str) -> std::result::Result<(), FieldError> {
    if is_valid_name(name.as_bytes()) {
        Ok(())
    } else {
        Err(FieldError {
            field: join(path, name),
            reason: "names are 1 to 64 of A-Z a-z 0-9 _ . : -".to_owned(),
        })
    }
}

fn retry(f: Fields<'_>) -> Result<BTreeMap<String, RetryPolicy>> {
    let mut out = Policy::default().retry;
    let (path, entries) = f.entries();
    for (name, value) in entries {
        named(&path, name)?;
        let base = RetryPolicy::named(name).unwrap_or(RetryPolicy::DEFAULT);
        let p = retry_policy(Fields::new(value, &join(&path, name))?, base)?;
        out.insert(name.to_owned(), p);
        if out.len() > RETRY_POLICIES_MAX {
            let reason = format!("at most {RETRY_POLICIES_MAX} retry policies (built-in included)");
            return Err(error(path, reason));
        }
    }
    Ok(out)
}

fn retry_policy(mut f: Fields<'_>, base: RetryPolicy) -> Result<RetryPolicy> {
    let mut p = base;
    if let Some(n) = f.u32_in("max_attempts", 1, RETRY_ATTEMPTS_MAX)? {
        p.max_attempts = n;
    }
    if let Some(d) = f.ms_in("base_delay_ms", 0, DURATION_MAX_MS)? {
        p.base_delay = d;
    }
    if let Some(d) = f.ms_in("max_delay_ms", 0, DURATION_MAX_MS)? {
        p.max_delay = d;
    }
    if let Some(n) = f.u32_in("multiplier", 1, RETRY_ATTEMPTS_MAX)? {
        p.multiplier = n;
    }
    if let Some(j) = f.str("jitter", 16)? {
        p.jitter = match j {
            "none" => Jitter::None,
            "equal" => Jitter::Equal,
            "full" => Jitter::Full,
            _ => {
                return Err(f
                    .error("jitter", "must be \"none\", \"equal\" or \"full\"")
                    .into());
            }
        };
    }
    if let Err(e) = p.validate() {
        return Err(f.error(&format!("{}_ms", e.field()), e.to_string()).into());
    }
    f.finish()?;
    Ok(p)
}

type Breakers = (BreakerConfig, BTreeMap<String, BreakerConfig>);

fn breakers(f: Fields<'_>) -> Result<Breakers> {
    let (path, entries) = f.entries();
    if entries.len() > BREAKER_POLICIES_MAX {
        let reason = format!("at most {BREAKER_POLICIES_MAX} entries (default included)");
        return Err(error(path, reason));
    }
    let mut default = BreakerConfig::DEFAULT;
    if let Some((_, v)) = entries.iter().find(|(n, _)| *n == "default") {
        default = breaker(Fields::new(v, &join(&path, "default"))?, default)?;
    }
    let mut named_configs = BTreeMap::new();
    for (name, value) in entries.into_iter().filter(|(n, _)| *n != "default") {
        named(&path, name)?;
        let config = breaker(Fields::new(value, &join(&path, name))?, default)?;
        named_configs.insert(name.to_owned(), config);
    }
    Ok((default, named_configs))
}

fn breaker(mut f: Fields<'_>, base: BreakerConfig) -> Result<BreakerConfig> {
    let mut c = base;
    if let Some(n) = f.u32_in("failure_threshold", 0, u32::MAX)? {
        c.failure_threshold = n;
    }
    if f.is_null("rate") {
        c.rate = None;
    } else if let Some(v) = f.raw("rate") {
        c.rate = match v {
            Value::Bool(false) => None,
            _ => Some(rate(Fields::new(v, &join(f.path(), "rate"))?)?),
        };
    }
    if f.is_null("slow_call_threshold_ms") {
        c.slow_call_threshold = None;
    } else if let Some(d) = f.ms_in("slow_call_threshold_ms", 0, DURATION_MAX_MS)? {
        c.slow_call_threshold = (!d.is_zero()).then_some(d);
    }
    if let Some(d) = f.ms_in("reset_timeout_ms", 1, DURATION_MAX_MS)? {
        c.reset_timeout = d;
    }
    if let Some(n) = f.u32_in("reset_backoff", 1, 1_000)? {
        c.reset_backoff = n;
    }
    if let Some(d) = f.ms_in("reset_timeout_max_ms", 1, DURATION_MAX_MS)? {
        c.reset_timeout_max = d;
    }
    if let Some(n) = f.u32_in("half_open_max_probes", 1, u32::from(MAX_PROBES))? {
        c.half_open_max_probes = narrow(n);
    }
    if let Some(n) = f.u32_in("success_threshold", 1, u32::from(u8::MAX))? {
        c.success_threshold = narrow(n);
    }
    if let Some(d) = f.ms_in("probe_timeout_ms", 1, DURATION_MAX_MS)? {
        c.probe_timeout = d;
    }
    if let Err(e) = c.validate() {
        return Err(f.error(breaker_field(e.field()), e.to_string()).into());
    }
    f.finish()?;
    Ok(c)
}

/// A `u32` already checked to fit a `u8`.
fn narrow(n: u32) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// The document's name of a core `BreakerConfig` field.
fn breaker_field(core_field: &str) -> &str {
    match core_field {
        "reset_timeout" => "reset_timeout_ms",
        "reset_timeout_max" => "reset_timeout_max_ms",
        "probe_timeout" => "probe_timeout_ms",
        "rate.window" => "rate",
        other => other,
    }
}

fn rate(mut f: Fields<'_>) -> Result<RateTrip> {
    let threshold = f.u32_in("threshold_permille", 1, 1_000)?;
    let min_calls = f.u32_in("min_calls", 1, u32::MAX)?;
    let calls = f.u32_in("window_calls", 1, u32::from(MAX_LAST_CALLS))?;
    let window_ms = f.ms_in("window_ms", 1, DURATION_MAX_MS)?;
    let window = match (calls, window_ms) {
        (Some(_), Some(_)) => {
            return Err(f
                .error("window_ms", "give window_calls or window_ms, not both")
                .into());
        }
        (Some(n), None) => RateWindow::LastCalls(narrow(n)),
        (None, Some(d)) => RateWindow::Time(d),
        (None, None) => RateTrip::DEFAULT.window,
    };
    let trip = RateTrip {
        threshold_permille: threshold.map_or(RateTrip::DEFAULT.threshold_permille, |t| {
            u16::try_from(t).unwrap_or(1_000)
        }),
        min_calls: min_calls.unwrap_or(RateTrip::DEFAULT.min_calls),
        window,
    };
    if let Err(e) = trip.validate() {
        let field = e.field().trim_start_matches("rate.");
        return Err(f.error(field, e.to_string()).into());
    }
    f.finish()?;
    Ok(trip)
}

fn leases(mut f: Fields<'_>) -> Result<LeaseConfig> {
    let mut c = LeaseConfig::DEFAULT;
    let max = u32::try_from(LEASE_SLOTS_PER_KEY).unwrap_or(u32::MAX);
    if let Some(n) = f.u32_in("limit_per_key", 1, max)? {
        c.limit_per_key = u16::try_from(n).unwrap_or(u16::MAX);
    }
    if let Some(d) = f.ms_in("ttl_ms", 1, DURATION_MAX_MS)? {
        c.ttl = d;
    }
    c.validate(LEASE_SLOTS_PER_KEY)
        .map_err(|e| f.error("limit_per_key", e.to_string()))?;
    f.finish()?;
    Ok(c)
}

fn health(mut f: Fields<'_>) -> Result<HealthConfig> {
    let mut c = HealthConfig::DEFAULT;
    if let Some(d) = f.ms_in("interval_ms", 1, DURATION_MAX_MS)? {
        c.interval = d;
    }
    if let Some(n) = f.u32_in("failure_threshold", 1, HEALTH_FAILURE_THRESHOLD_MAX)? {
        c.failure_threshold = n;
    }
    c.validate()
        .map_err(|e| f.error("interval_ms", e.to_string()))?;
    f.finish()?;
    Ok(c)
}

fn idempotency(mut f: Fields<'_>) -> Result<IdempotencyConfig> {
    let mut c = IdempotencyConfig::DEFAULT;
    if let Some(d) = f.ms_in("ttl_ms", 1, DURATION_MAX_MS)? {
        c.ttl = d;
    }
    if let Some(d) = f.ms_in("in_progress_timeout_ms", 1, DURATION_MAX_MS)? {
        c.in_progress_timeout = d;
    }
    if let Some(b) = f.bool("remember_failures")? {
        c.remember_failures = b;
    }
    c.validate().map_err(|e| f.error("ttl_ms", e.to_string()))?;
    f.finish()?;
    Ok(c)
}

/// `readiness`: `checks`, the names of up to [`READINESS_CHECKS_MAX`] health checks, each
/// named once.
fn readiness(mut f: Fields<'_>) -> Result<Vec<String>> {
    let path = join(f.path(), "checks");
    let Some(value) = f.raw("checks") else {
        f.finish()?;
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(error(path, "must be an array of health check names"));
    };
    if items.len() > READINESS_CHECKS_MAX {
        let reason = format!("at most {READINESS_CHECKS_MAX} checks");
        return Err(error(path, reason));
    }
    let mut names: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("{path}[{i}]");
        let name = match item {
            Value::String(s) if is_valid_name(s.as_bytes()) => s,
            Value::String(_) => {
                return Err(error(field, "names are 1 to 64 of A-Z a-z 0-9 _ . : -"));
            }
            _ => return Err(error(field, "must be a string")),
        };
        if names.contains(name) {
            return Err(error(field, format!("{name:?} is named twice")));
        }
        names.push(name.clone());
    }
    f.finish()?;
    Ok(names)
}
