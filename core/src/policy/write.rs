//! The canonical policy document: every section and field written out, as compact JSON with
//! the keys of every object in byte order. [`write_document`] of a policy parsed back gives
//! the same policy, and the bytes are a stable digest of it (the daemon journals their
//! SHA-256 and a policy file's MAC covers them).
//!
//! `readiness`, `tiers` and `default_tier` are left out while empty, so a policy that uses
//! none of them has the bytes (and the digest) it had before those fields existed.

use core::fmt::{self, Write};

use heapless::Vec;

use super::sections::Sections;
use super::{OPERATIONS_MAX, OpId, RatePolicy};
use crate::Duration;
use crate::breaker::{BreakerConfig, RateWindow};
use crate::limit::LimitPolicy;
use crate::retry::{Jitter, RetryPolicy};

/// Writes the canonical document of the policy made of `rate` and `sections` into `w`.
pub fn write_document<W: Write, const C: usize, const T: usize>(
    rate: &RatePolicy<C, T>,
    sections: &Sections,
    w: &mut W,
) -> fmt::Result {
    w.write_str("{\"breakers\":{")?;
    breakers(sections, w)?;
    w.write_str("}")?;
    if let Some(tier) = rate.default_tier() {
        write!(w, ",\"default_tier\":\"{}\"", rate.tier_name(tier))?;
    }
    let h = sections.health();
    write!(
        w,
        ",\"health\":{{\"failure_threshold\":{},\"interval_ms\":{}}}",
        h.failure_threshold,
        ms(h.interval)
    )?;
    let i = sections.idempotency();
    write!(
        w,
        ",\"idempotency\":{{\"in_progress_timeout_ms\":{},\"remember_failures\":{},\"ttl_ms\":{}}}",
        ms(i.in_progress_timeout),
        i.remember_failures,
        ms(i.ttl)
    )?;
    let l = sections.leases();
    write!(
        w,
        ",\"leases\":{{\"limit_per_key\":{},\"ttl_ms\":{}}}",
        l.limit_per_key,
        ms(l.ttl)
    )?;
    w.write_str(",\"limits\":{")?;
    let ops = sorted_operations(rate);
    for (k, (name, op)) in ops.iter().enumerate() {
        comma(w, k)?;
        write!(w, "\"{name}\":")?;
        limit(rate.limit(*op, None), w)?;
    }
    w.write_str("}")?;
    let mut checks = sections.readiness_checks().peekable();
    if checks.peek().is_some() {
        w.write_str(",\"readiness\":{\"checks\":[")?;
        for (k, name) in checks.enumerate() {
            comma(w, k)?;
            write!(w, "\"{name}\"")?;
        }
        w.write_str("]}")?;
    }
    w.write_str(",\"retry\":{")?;
    for (k, (name, policy)) in sections.retry_policies().enumerate() {
        comma(w, k)?;
        write!(w, "\"{name}\":")?;
        retry(policy, w)?;
    }
    w.write_str("}")?;
    let mut tiers = rate.tiers().peekable();
    if tiers.peek().is_some() {
        w.write_str(",\"tiers\":{")?;
        for (k, (tier, name)) in tiers.enumerate() {
            comma(w, k)?;
            write!(w, "\"{name}\":{{\"limits\":{{")?;
            let own = ops
                .iter()
                .filter_map(|&(name, op)| {
                    let mut own = rate.tier_limits(tier).filter(|(o, _)| *o == op);
                    own.next().map(|(_, l)| (name, l))
                })
                .enumerate();
            for (j, (name, l)) in own {
                comma(w, j)?;
                write!(w, "\"{name}\":")?;
                limit(l, w)?;
            }
            w.write_str("}}")?;
        }
        w.write_str("}")?;
    }
    w.write_str("}")
}

/// Every operation with its name, in name order.
fn sorted_operations<const C: usize, const T: usize>(
    rate: &RatePolicy<C, T>,
) -> Vec<(&str, OpId), OPERATIONS_MAX> {
    let mut ops: Vec<(&str, OpId), OPERATIONS_MAX> = Vec::new();
    for (op, name) in rate.operations() {
        let _ = ops.push((name, op));
    }
    ops.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    ops
}

/// `breakers.default` among the named breakers, all in name order.
fn breakers<W: Write>(s: &Sections, w: &mut W) -> fmt::Result {
    let mut default = Some(s.breaker_default());
    let mut k = 0;
    for (name, config) in s.named_breakers() {
        if let Some(d) = default.filter(|_| "default".as_bytes() < name.as_bytes()) {
            comma(w, k)?;
            w.write_str("\"default\":")?;
            breaker(d, w)?;
            default = None;
            k += 1;
        }
        comma(w, k)?;
        write!(w, "\"{name}\":")?;
        breaker(config, w)?;
        k += 1;
    }
    if let Some(d) = default {
        comma(w, k)?;
        w.write_str("\"default\":")?;
        breaker(d, w)?;
    }
    Ok(())
}

fn breaker<W: Write>(c: &BreakerConfig, w: &mut W) -> fmt::Result {
    write!(
        w,
        "{{\"failure_threshold\":{},\"half_open_max_probes\":{},\"probe_timeout_ms\":{},\"rate\":",
        c.failure_threshold,
        c.half_open_max_probes,
        ms(c.probe_timeout)
    )?;
    match c.rate {
        None => w.write_str("null")?,
        Some(r) => {
            write!(
                w,
                "{{\"min_calls\":{},\"threshold_permille\":{},",
                r.min_calls, r.threshold_permille
            )?;
            match r.window {
                RateWindow::LastCalls(n) => write!(w, "\"window_calls\":{n}}}")?,
                RateWindow::Time(d) => write!(w, "\"window_ms\":{}}}", ms(d))?,
            }
        }
    }
    write!(
        w,
        ",\"reset_backoff\":{},\"reset_timeout_max_ms\":{},\"reset_timeout_ms\":{},\"slow_call_threshold_ms\":",
        c.reset_backoff,
        ms(c.reset_timeout_max),
        ms(c.reset_timeout)
    )?;
    match c.slow_call_threshold {
        None => w.write_str("null")?,
        Some(d) => write!(w, "{}", ms(d))?,
    }
    write!(w, ",\"success_threshold\":{}}}", c.success_threshold)
}

fn retry<W: Write>(r: &RetryPolicy, w: &mut W) -> fmt::Result {
    let jitter = match r.jitter {
        Jitter::None => "none",
        Jitter::Equal => "equal",
        Jitter::Full => "full",
    };
    write!(
        w,
        "{{\"base_delay_ms\":{},\"jitter\":\"{jitter}\",\"max_attempts\":{},\"max_delay_ms\":{},\"multiplier\":{}}}",
        ms(r.base_delay),
        r.max_attempts,
        ms(r.max_delay),
        r.multiplier
    )
}

fn limit<W: Write>(l: &LimitPolicy, w: &mut W) -> fmt::Result {
    write!(
        w,
        "{{\"capacity_tokens\":{},\"window_ms\":{}}}",
        l.capacity_tokens(),
        ms(l.window())
    )
}

fn comma<W: Write>(w: &mut W, k: usize) -> fmt::Result {
    if k > 0 { w.write_char(',') } else { Ok(()) }
}

fn ms(d: Duration) -> u64 {
    d.as_millis()
}
