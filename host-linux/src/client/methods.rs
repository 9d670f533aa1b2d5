//! Every method's parameter shape, in one place, and the typed helpers on [`Client`].
//!
//! The shapes follow DESIGN §6 and the task brief; `docs/PROTOCOL.md` (written with the
//! daemon) is authoritative, and only this file changes if the two differ. The helpers return
//! whatever the daemon answers as a [`CallResult`].

use heidi_core::proto::Method;
use serde_json::{Value, json};

use super::{CallResult, Client};

/// The outcome recorded under a breaker permit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BreakerOutcome {
    /// The guarded call succeeded.
    Success,
    /// The guarded call failed.
    Failure,
}

impl BreakerOutcome {
    /// `success` or `failure`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerOutcome::Success => "success",
            BreakerOutcome::Failure => "failure",
        }
    }
}

/// How a pipeline run goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PipelineMode {
    /// Collect data; train on request.
    Collect,
    /// Collect and train every round.
    Full,
}

impl PipelineMode {
    /// `collect` or `full`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PipelineMode::Collect => "collect",
            PipelineMode::Full => "full",
        }
    }
}

/// `{}`.
fn empty() -> Value {
    json!({})
}

/// Parameters of `RATE_LIMIT_CHECK` and `RATE_LIMIT_CONSUME`.
pub(crate) fn limit_params(key: &str, operation: &str, cost: u32) -> Value {
    json!({"key": key, "operation": operation, "cost": cost})
}

/// Parameters of `BREAKER_ACQUIRE`.
pub(crate) fn breaker_acquire_params(name: &str) -> Value {
    json!({"name": name})
}

/// Parameters of `BREAKER_RECORD`.
pub(crate) fn breaker_record_params(name: &str, permit: &str, outcome: BreakerOutcome) -> Value {
    json!({"name": name, "permit": permit, "outcome": outcome.as_str()})
}

/// The permit of a `BREAKER_ACQUIRE` success reply (a string, or a number as text).
pub(crate) fn permit_of(payload: &Value) -> Option<String> {
    match payload.get("permit")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether a `RATE_LIMIT_*` success reply grants the call (`"allowed"`, true when absent).
pub(crate) fn limit_allowed(payload: &Value) -> bool {
    payload
        .get("allowed")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

impl Client {
    /// `PING`.
    pub fn ping(&self) -> CallResult {
        self.call(Method::Ping.as_str(), empty())
    }

    /// `STATUS`.
    pub fn status(&self) -> CallResult {
        self.call(Method::Status.as_str(), empty())
    }

    /// `APPLY_POLICY` with `{"policy": policy}`.
    pub fn apply_policy(&self, policy: Value) -> CallResult {
        self.call(Method::ApplyPolicy.as_str(), json!({"policy": policy}))
    }

    /// `GET_POLICY`.
    pub fn get_policy(&self) -> CallResult {
        self.call(Method::GetPolicy.as_str(), empty())
    }

    /// `RATE_LIMIT_CHECK` `{"key","operation","cost"}`: would the call be granted (no tokens taken)?
    pub fn rate_limit_check(&self, key: &str, operation: &str, cost: u32) -> CallResult {
        let params = limit_params(key, operation, cost);
        self.call(Method::RateLimitCheck.as_str(), params)
    }

    /// `RATE_LIMIT_CONSUME` `{"key","operation","cost"}`: take the tokens, or learn when to retry.
    pub fn rate_limit_consume(&self, key: &str, operation: &str, cost: u32) -> CallResult {
        let params = limit_params(key, operation, cost);
        self.call(Method::RateLimitConsume.as_str(), params)
    }

    /// `BREAKER_ACQUIRE` `{"name"}`: a permit, or `CIRCUIT_OPEN`.
    pub fn breaker_acquire(&self, name: &str) -> CallResult {
        self.call(
            Method::BreakerAcquire.as_str(),
            breaker_acquire_params(name),
        )
    }

    /// `BREAKER_RECORD` `{"name","permit","outcome"}`.
    pub fn breaker_record(&self, name: &str, permit: &str, outcome: BreakerOutcome) -> CallResult {
        let params = breaker_record_params(name, permit, outcome);
        self.call(Method::BreakerRecord.as_str(), params)
    }

    /// `LEASE_ACQUIRE` `{"key"}` plus `"ttl_ms"` when given.
    pub fn lease_acquire(&self, key: &str, ttl_ms: Option<u64>) -> CallResult {
        let mut params = json!({"key": key});
        if let Some(ttl) = ttl_ms {
            params["ttl_ms"] = ttl.into();
        }
        self.call(Method::LeaseAcquire.as_str(), params)
    }

    /// `LEASE_REFRESH` `{"key","lease_id"}`.
    pub fn lease_refresh(&self, key: &str, lease_id: &str) -> CallResult {
        let params = json!({"key": key, "lease_id": lease_id});
        self.call(Method::LeaseRefresh.as_str(), params)
    }

    /// `LEASE_RELEASE` `{"key","lease_id"}`.
    pub fn lease_release(&self, key: &str, lease_id: &str) -> CallResult {
        let params = json!({"key": key, "lease_id": lease_id});
        self.call(Method::LeaseRelease.as_str(), params)
    }

    /// `IDEMPOTENCY_BEGIN` `{"key"}`.
    pub fn idempotency_begin(&self, key: &str) -> CallResult {
        self.call(Method::IdempotencyBegin.as_str(), json!({"key": key}))
    }

    /// `IDEMPOTENCY_COMPLETE` `{"key","digest"}` (a digest of the work's result).
    pub fn idempotency_complete(&self, key: &str, digest: &str) -> CallResult {
        let params = json!({"key": key, "digest": digest});
        self.call(Method::IdempotencyComplete.as_str(), params)
    }

    /// `HEALTH_REPORT` `{"name","ok"}` plus `"message"` when given.
    pub fn health_report(&self, name: &str, ok: bool, message: Option<&str>) -> CallResult {
        let mut params = json!({"name": name, "ok": ok});
        if let Some(m) = message {
            params["message"] = m.into();
        }
        self.call(Method::HealthReport.as_str(), params)
    }

    /// `HEALTH_AGGREGATE`.
    pub fn health_aggregate(&self) -> CallResult {
        self.call(Method::HealthAggregate.as_str(), empty())
    }

    /// `JOURNAL_APPEND` `{"stage","event_type","message"}`.
    pub fn journal_append(&self, stage: &str, event_type: &str, message: &str) -> CallResult {
        let params = json!({"stage": stage, "event_type": event_type, "message": message});
        self.call(Method::JournalAppend.as_str(), params)
    }

    /// `JOURNAL_TAIL` `{"n"}`: the last `n` journal lines.
    pub fn journal_tail(&self, n: u32) -> CallResult {
        self.call(Method::JournalTail.as_str(), json!({"n": n}))
    }

    /// `PIPELINE_START` `{"mode"}`.
    pub fn pipeline_start(&self, mode: PipelineMode) -> CallResult {
        let params = json!({"mode": mode.as_str()});
        self.call(Method::PipelineStart.as_str(), params)
    }

    /// `PIPELINE_STOP`.
    pub fn pipeline_stop(&self) -> CallResult {
        self.call(Method::PipelineStop.as_str(), empty())
    }

    /// `PIPELINE_PAUSE`.
    pub fn pipeline_pause(&self) -> CallResult {
        self.call(Method::PipelinePause.as_str(), empty())
    }

    /// `PIPELINE_RESUME`.
    pub fn pipeline_resume(&self) -> CallResult {
        self.call(Method::PipelineResume.as_str(), empty())
    }

    /// `PIPELINE_RESET`.
    pub fn pipeline_reset(&self) -> CallResult {
        self.call(Method::PipelineReset.as_str(), empty())
    }

    /// `PIPELINE_TRAIN_NOW`.
    pub fn pipeline_train_now(&self) -> CallResult {
        self.call(Method::PipelineTrainNow.as_str(), empty())
    }
}

/// How long a breaker stays open, from a `BREAKER_RECORD` reply that says it opened
/// (`"state":"open"` with `"retry_after_ms"`).
pub(crate) fn breaker_open_for_ms(payload: &Value) -> Option<u64> {
    if payload.get("state").and_then(Value::as_str) != Some("open") {
        return None;
    }
    payload.get("retry_after_ms").and_then(Value::as_u64)
}

/// Methods that change nothing in the daemon, so a call that timed out or lost its
/// connection may be sent again without applying anything twice.
pub(crate) fn is_read_only(method: &str) -> bool {
    matches!(
        method,
        "PING" | "STATUS" | "GET_POLICY" | "RATE_LIMIT_CHECK" | "HEALTH_AGGREGATE" | "JOURNAL_TAIL"
    )
}
