//! Writing a policy back as a complete document (every section, every field).

use heidi_core::breaker::{BreakerConfig, RateWindow};
use heidi_core::limit::LimitPolicy;
use heidi_core::retry::{Jitter, RetryPolicy};
use serde_json::{Map, Value, json};

use super::Policy;

pub(super) fn policy(p: &Policy) -> Value {
    let rate = &*p.rate;
    let limits: Map<String, Value> = rate
        .operations()
        .map(|(op, name)| (name.to_owned(), limit(rate.limit(op, None))))
        .collect();
    let retry: Map<String, Value> = p
        .retry_policies()
        .map(|(name, r)| (name.to_owned(), retry(r)))
        .collect();
    let mut breakers = Map::new();
    breakers.insert("default".to_owned(), breaker(p.breaker_default()));
    for (name, c) in p.named_breakers() {
        breakers.insert(name.to_owned(), breaker(c));
    }
    let mut doc = json!({
        "limits": limits,
        "retry": retry,
        "breakers": breakers,
        "leases": {
            "limit_per_key": p.leases().limit_per_key,
            "ttl_ms": p.leases().ttl.as_millis(),
        },
        "health": {
            "interval_ms": p.health().interval.as_millis(),
            "failure_threshold": p.health().failure_threshold,
        },
        "idempotency": {
            "ttl_ms": p.idempotency().ttl.as_millis(),
            "in_progress_timeout_ms": p.idempotency().in_progress_timeout.as_millis(),
            "remember_failures": p.idempotency().remember_failures,
        },
    });
    // Left out while empty (the default), so the digest of a policy that names no readiness
    // checks, tiers or default tier is the one it had before those fields existed: a
    // `policy.json` written then still verifies.
    let readiness = p.readiness_checks();
    if !readiness.is_empty() {
        doc["readiness"] = json!({ "checks": readiness });
    }
    let tiers: Map<String, Value> = rate
        .tiers()
        .map(|(tier, name)| {
            let own: Map<String, Value> = rate
                .tier_limits(tier)
                .map(|(op, l)| (rate.operation_name(op).to_owned(), limit(l)))
                .collect();
            (name.to_owned(), json!({ "limits": own }))
        })
        .collect();
    if !tiers.is_empty() {
        doc["tiers"] = Value::Object(tiers);
    }
    if let Some(tier) = rate.default_tier() {
        doc["default_tier"] = rate.tier_name(tier).into();
    }
    doc
}

fn limit(l: &LimitPolicy) -> Value {
    json!({
        "capacity_tokens": l.capacity_tokens(),
        "window_ms": l.window().as_millis(),
    })
}

fn retry(r: &RetryPolicy) -> Value {
    let jitter = match r.jitter {
        Jitter::None => "none",
        Jitter::Equal => "equal",
        Jitter::Full => "full",
    };
    json!({
        "max_attempts": r.max_attempts,
        "base_delay_ms": r.base_delay.as_millis(),
        "max_delay_ms": r.max_delay.as_millis(),
        "multiplier": r.multiplier,
        "jitter": jitter,
    })
}

fn breaker(c: &BreakerConfig) -> Value {
    let rate = c.rate.map(|r| {
        let mut m = Map::new();
        m.insert("threshold_permille".into(), r.threshold_permille.into());
        m.insert("min_calls".into(), r.min_calls.into());
        match r.window {
            RateWindow::LastCalls(n) => m.insert("window_calls".into(), n.into()),
            RateWindow::Time(d) => m.insert("window_ms".into(), d.as_millis().into()),
        };
        Value::Object(m)
    });
    json!({
        "failure_threshold": c.failure_threshold,
        "rate": rate,
        "slow_call_threshold_ms": c.slow_call_threshold.map(|d| d.as_millis()),
        "reset_timeout_ms": c.reset_timeout.as_millis(),
        "reset_backoff": c.reset_backoff,
        "reset_timeout_max_ms": c.reset_timeout_max.as_millis(),
        "half_open_max_probes": c.half_open_max_probes,
        "success_threshold": c.success_threshold,
        "probe_timeout_ms": c.probe_timeout.as_millis(),
    })
}
