//! Picking each value from the first layer that sets it (flag, variable, file key, default)
//! and checking it against its range, remembering where it came from for the error message.

use super::args::{Args, JitterKind};
use super::file::SidecarSection;
use super::{ConfigError, DEFAULT_LISTEN, DEFAULT_UPSTREAM, Env, err, jitter};
use heidi_core::Duration;
use heidi_core::breaker::BreakerConfig;
use heidi_core::retry::{BudgetConfig, RetryPolicy};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// A value and the flag, variable or file key it came from (`default` for a default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Sourced<T> {
    pub(super) value: T,
    pub(super) source: String,
}

impl<T> Sourced<T> {
    pub(super) fn new(source: &str, value: T) -> Sourced<T> {
        Sourced {
            value,
            source: source.to_owned(),
        }
    }
}

/// The three layers above the defaults.
pub(super) struct Layers<'a> {
    pub(super) args: &'a Args,
    pub(super) env: &'a Env,
    pub(super) file: &'a SidecarSection,
}

/// The first layer that sets a value; a variable's text is parsed here, and a parse error
/// names the variable.
fn first<T: FromStr>(
    flag: (Option<T>, &str),
    env: Option<(&Option<String>, &str)>,
    file: (Option<T>, &str),
) -> Result<Option<Sourced<T>>, ConfigError>
where
    T::Err: std::fmt::Display,
{
    if let (Some(v), name) = flag {
        return Ok(Some(Sourced::new(name, v)));
    }
    if let Some((Some(text), name)) = env {
        let v = text
            .trim()
            .parse::<T>()
            .map_err(|e| err(name, format!("{text:?} does not parse: {e}")))?;
        return Ok(Some(Sourced::new(name, v)));
    }
    Ok(file.0.map(|v| Sourced::new(file.1, v)))
}

fn in_range(v: Sourced<u64>, range: RangeInclusive<u64>) -> Result<u64, ConfigError> {
    if range.contains(&v.value) {
        return Ok(v.value);
    }
    Err(err(
        &v.source,
        format!(
            "{} is out of range {} ..= {}",
            v.value,
            range.start(),
            range.end()
        ),
    ))
}

impl Layers<'_> {
    /// A number from the first layer that sets it, else `default`, within `range`.
    pub(super) fn num(
        &self,
        flag: (Option<u64>, &str),
        env: Option<(&Option<String>, &str)>,
        file: (Option<u64>, &str),
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let v = first(flag, env, file)?.unwrap_or_else(|| Sourced::new("default", default));
        in_range(v, range)
    }

    pub(super) fn listen(&self) -> Result<Sourced<SocketAddr>, ConfigError> {
        let v = first(
            (self.args.listen, "--listen"),
            Some((&self.env.listen_addr, "LISTEN_ADDR")),
            (self.file.listen, "sidecar.listen"),
        )?;
        Ok(v.unwrap_or_else(|| {
            Sourced::new(
                "default",
                DEFAULT_LISTEN
                    .parse()
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 50051))),
            )
        }))
    }

    pub(super) fn upstream(&self) -> Result<Sourced<String>, ConfigError> {
        let v = first(
            (self.args.upstream.clone(), "--upstream"),
            Some((
                &self.env.warm_orchestrator_endpoint,
                "WARM_ORCHESTRATOR_ENDPOINT",
            )),
            (self.file.upstream.clone(), "sidecar.upstream"),
        )?
        .unwrap_or_else(|| Sourced::new("default", DEFAULT_UPSTREAM.to_owned()));
        let url = url::Url::parse(&v.value)
            .map_err(|e| err(&v.source, format!("{:?} is not a URL: {e}", v.value)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err(
                &v.source,
                format!("{:?}: the scheme must be http or https", v.value),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(err(&v.source, format!("{:?} names no host", v.value)));
        }
        Ok(v)
    }

    /// `BATCH_SIZE`: 1 ..= `guard` (8); above the guard is refused, never clamped.
    pub(super) fn batch_size(&self, guard: u64) -> Result<u64, ConfigError> {
        let v = first(
            (self.args.batch_size, "--batch-size"),
            Some((&self.env.batch_size, "BATCH_SIZE")),
            (self.file.batch_size, "sidecar.batch_size"),
        )?
        .unwrap_or_else(|| Sourced::new("default", guard));
        if v.value > guard {
            return Err(err(
                &v.source,
                format!("{} is above the batch size guard of {guard}", v.value),
            ));
        }
        in_range(v, 1..=guard)
    }

    /// `BATCH_MAX_BYTES`: 1 ..= `limit`, the largest message the upstream client sends.
    pub(super) fn batch_max_bytes(&self, default: u64, limit: u64) -> Result<u64, ConfigError> {
        let v = first(
            (self.args.batch_max_bytes, "--batch-max-bytes"),
            Some((&self.env.batch_max_bytes, "BATCH_MAX_BYTES")),
            (self.file.batch_max_bytes, "sidecar.batch_max_bytes"),
        )?
        .unwrap_or_else(|| Sourced::new("default", default));
        if v.value > limit {
            return Err(err(
                &v.source,
                format!(
                    "{} is above the upstream message limit of {limit} bytes (the most the \
                     upstream client sends or receives in one message)",
                    v.value
                ),
            ));
        }
        in_range(v, 1..=limit)
    }

    pub(super) fn batch_timeout_ms(&self) -> Result<u64, ConfigError> {
        self.num(
            (self.args.batch_timeout_ms, "--batch-timeout-ms"),
            Some((&self.env.batch_timeout_ms, "BATCH_TIMEOUT_MS")),
            (self.file.batch_timeout_ms, "sidecar.batch_timeout_ms"),
            100,
            0..=60_000,
        )
    }

    pub(super) fn retry(&self) -> Result<RetryPolicy, ConfigError> {
        let (a, r) = (self.args, &self.file.retry);
        let max_attempts = self.num(
            (a.max_attempts, "--max-attempts"),
            None,
            (r.max_attempts, "sidecar.retry.max_attempts"),
            4,
            1..=10,
        )?;
        let base_ms = self.num(
            (a.retry_base_delay_ms, "--retry-base-delay-ms"),
            None,
            (r.base_delay_ms, "sidecar.retry.base_delay_ms"),
            100,
            1..=60_000,
        )?;
        let max_ms = self.num(
            (None, ""),
            None,
            (r.max_delay_ms, "sidecar.retry.max_delay_ms"),
            1_000,
            1..=600_000,
        )?;
        let multiplier = self.num(
            (None, ""),
            None,
            (r.multiplier, "sidecar.retry.multiplier"),
            2,
            1..=10,
        )?;
        let policy = RetryPolicy {
            max_attempts: max_attempts as u32,
            base_delay: Duration::from_millis(base_ms),
            max_delay: Duration::from_millis(max_ms),
            multiplier: multiplier as u32,
            jitter: jitter(r.jitter.unwrap_or(JitterKind::Equal)),
        };
        policy
            .validate()
            .map_err(|e| err(&format!("sidecar.retry.{}", e.field()), e.to_string()))?;
        Ok(policy)
    }

    pub(super) fn budget(&self) -> Result<BudgetConfig, ConfigError> {
        let b = &self.file.budget;
        let window_ms = self.num(
            (None, ""),
            None,
            (b.window_ms, "sidecar.budget.window_ms"),
            10_000,
            10..=3_600_000,
        )?;
        let ratio = self.num(
            (self.args.budget_ratio_permille, "--budget-ratio-permille"),
            None,
            (b.ratio_permille, "sidecar.budget.ratio_permille"),
            200,
            0..=10_000,
        )?;
        let floor = self.num(
            (None, ""),
            None,
            (b.min_retries_per_sec, "sidecar.budget.min_retries_per_sec"),
            10,
            0..=1_000_000,
        )?;
        Ok(BudgetConfig {
            window: Duration::from_millis(window_ms),
            ratio_permille: ratio as u32,
            min_retries_per_sec: floor as u32,
        })
    }

    /// The breaker; a probe that has not answered one upstream deadline plus a second after
    /// it started counts as failed (it cannot answer later).
    pub(super) fn breaker(&self, deadline_ms: u64) -> Result<BreakerConfig, ConfigError> {
        let (a, b) = (self.args, &self.file.breaker);
        let failures = self.num(
            (a.breaker_failure_threshold, "--breaker-failure-threshold"),
            None,
            (b.failure_threshold, "sidecar.breaker.failure_threshold"),
            5,
            1..=10_000,
        )?;
        let reset_ms = self.num(
            (a.breaker_reset_timeout_ms, "--breaker-reset-timeout-ms"),
            None,
            (b.reset_timeout_ms, "sidecar.breaker.reset_timeout_ms"),
            60_000,
            1..=86_400_000,
        )?;
        let successes = self.num(
            (None, ""),
            None,
            (b.success_threshold, "sidecar.breaker.success_threshold"),
            1,
            1..=100,
        )?;
        let reset_timeout = Duration::from_millis(reset_ms);
        let config = BreakerConfig {
            failure_threshold: failures as u32,
            reset_timeout,
            reset_timeout_max: reset_timeout.max(BreakerConfig::DEFAULT.reset_timeout_max),
            success_threshold: successes as u8,
            half_open_max_probes: 1,
            probe_timeout: Duration::from_millis(deadline_ms.saturating_add(1_000)),
            ..BreakerConfig::DEFAULT
        };
        config
            .validate()
            .map_err(|e| err(&format!("sidecar.breaker.{}", e.field()), e.to_string()))?;
        Ok(config)
    }
}
