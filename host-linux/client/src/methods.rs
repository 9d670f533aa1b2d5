//! Every method's parameter shape, in one place, and the typed helpers on [`Client`].
//!
//! The shapes are those of `docs/PROTOCOL.md` §4 (checked against the daemon by the
//! `e2e_client` tests). 64-bit ids (breaker permits, lease ids, idempotency tokens) travel as
//! decimal strings: the helpers take them as `&str`, as a reply gave them
//! ([`CallResult::id`]). The helpers return whatever the daemon answers as a [`CallResult`].

use heidi_core::pipeline::Mode;
use heidi_core::proto::Method;
use heidi_core::upstream::BreakerInput;
use serde_json::{Map, Value, json};

use super::{CallResult, Client};
use heidi_common::JournalEntry;

/// The outcome recorded under a breaker permit (`BREAKER_RECORD`'s `outcome`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum BreakerOutcome {
    /// The guarded call succeeded.
    Success,
    /// The guarded call failed.
    Failure,
    /// The call never ran: the permit is returned and counts for nothing.
    Abandoned,
}

impl BreakerOutcome {
    /// `success`, `failure` or `abandoned`.
    pub fn as_str(self) -> &'static str {
        heidi_core::guard::remote::outcome(self.input())
    }

    /// What the breaker is told.
    const fn input(self) -> BreakerInput {
        match self {
            BreakerOutcome::Success => BreakerInput::Success,
            BreakerOutcome::Failure => BreakerInput::Failure,
            BreakerOutcome::Abandoned => BreakerInput::Neutral,
        }
    }
}

/// How an idempotent piece of work ended (`IDEMPOTENCY_COMPLETE`'s `outcome` and `digest`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdempotencyOutcome<'a> {
    /// It succeeded; the digest of its result (64 hex digits) is remembered.
    Success {
        /// 64 hex digits, e.g. a SHA-256 of the result.
        digest: &'a str,
    },
    /// It failed; the key is released (or remembered as failed with `remember_failures`).
    Failure,
}

/// How a pipeline run goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum PipelineMode {
    /// Collect data; train on request.
    Collect,
    /// Collect and train every round.
    Full,
}

impl PipelineMode {
    /// `collect` or `full` (the core's [`Mode::name`]).
    pub const fn as_str(self) -> &'static str {
        self.mode().name()
    }

    /// The core's mode.
    pub const fn mode(self) -> Mode {
        match self {
            PipelineMode::Collect => Mode::Collect,
            PipelineMode::Full => Mode::Full,
        }
    }
}

/// `{}`.
fn empty() -> Value {
    json!({})
}

/// Parameters of `RATE_LIMIT_CHECK` and `RATE_LIMIT_CONSUME` (`tier` only when given).
pub(crate) fn limit_params(key: &str, operation: &str, cost: u32, tier: Option<&str>) -> Value {
    let mut params = json!({"key": key, "operation": operation, "cost": cost});
    if let Some(tier) = tier {
        params["tier"] = tier.into();
    }
    params
}

/// Parameters of `BREAKER_ACQUIRE`.
pub(crate) fn breaker_acquire_params(name: &str) -> Value {
    json!({"name": name})
}

/// Parameters of `BREAKER_RECORD`; `duration_ms` only when given (the daemon then uses the
/// time since the acquire).
pub(crate) fn breaker_record_params(
    name: &str,
    permit: &str,
    outcome: &str,
    duration_ms: Option<u64>,
) -> Value {
    let mut params = json!({"name": name, "permit": permit, "outcome": outcome});
    if let Some(ms) = duration_ms {
        params["duration_ms"] = ms.into();
    }
    params
}

/// Parameters of `IDEMPOTENCY_COMPLETE`: `digest` only with a success.
pub(crate) fn idempotency_complete_params(
    key: &str,
    token: &str,
    outcome: IdempotencyOutcome<'_>,
) -> Value {
    match outcome {
        IdempotencyOutcome::Success { digest } => {
            json!({"key": key, "token": token, "outcome": "success", "digest": digest})
        }
        IdempotencyOutcome::Failure => json!({"key": key, "token": token, "outcome": "failure"}),
    }
}

/// Parameters of `JOURNAL_APPEND` from an entry: every field but `round` (the daemon sets
/// it, with `ts`, `run_id` and `prev_hash`); empty maps and lists and a `None` error are
/// left out.
pub(crate) fn journal_append_params(entry: &JournalEntry) -> Value {
    let mut params = json!({
        "event_type": entry.event_type,
        "message": entry.message,
        "stage": entry.stage,
        "level": entry.level.as_str(),
    });
    let delta = |pairs: &[(String, i64)]| {
        let map: Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.clone(), (*v).into()))
            .collect();
        Value::Object(map)
    };
    if !entry.counters_delta.is_empty() {
        params["counters_delta"] = delta(&entry.counters_delta);
    }
    if !entry.usage_delta.is_empty() {
        params["usage_delta"] = delta(&entry.usage_delta);
    }
    if !entry.artifact_paths.is_empty() {
        params["artifact_paths"] = json!(entry.artifact_paths);
    }
    if let Some(error) = &entry.error {
        params["error"] = error.as_str().into();
    }
    params
}

/// A 64-bit id field of a reply as its decimal string (sent as a string, or as a JSON
/// integer by an older daemon); `None` when absent or not an unsigned 64-bit integer.
pub(crate) fn id_of(payload: &Value, name: &str) -> Option<String> {
    match payload.get(name)? {
        Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u64>().is_ok() => {
            Some(s.clone())
        }
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

impl Client {
    /// `PING` → `{"ok":true,"pong":true,"version"}`.
    pub fn ping(&self) -> CallResult {
        self.call(Method::Ping.as_str(), empty())
    }

    /// `STATUS` → `protocol_version`, `version`, `pid`, `uptime_ms`, `policy_version`,
    /// `journal` `{run_id, lines}`, `pipeline`, ….
    pub fn status(&self) -> CallResult {
        self.call(Method::Status.as_str(), empty())
    }

    /// `APPLY_POLICY` `{"policy"}` → `{"ok":true,"version"}`, or `INVALID_POLICY` with
    /// `<field>: <reason>`. The whole document replaces the policy (missing parts take the
    /// built-in defaults).
    pub fn apply_policy(&self, policy: Value) -> CallResult {
        self.call(Method::ApplyPolicy.as_str(), json!({"policy": policy}))
    }

    /// `GET_POLICY` → `{"ok":true,"version","policy"}` (the complete document).
    pub fn get_policy(&self) -> CallResult {
        self.call(Method::GetPolicy.as_str(), empty())
    }

    /// `RATE_LIMIT_CHECK` `{"key","operation","cost","tier"}`: would a consume be granted (no
    /// tokens taken)? → `allowed`, `remaining`, `retry_after_ms`, `limit`, `window_ms`,
    /// `operation`, and `tier` when a tier chose the limit. `tier: None` is the policy's
    /// `default_tier` (else its top-level `limits`); an unknown tier is `BAD_REQUEST`.
    pub fn rate_limit_check(
        &self,
        key: &str,
        operation: &str,
        cost: u32,
        tier: Option<&str>,
    ) -> CallResult {
        let params = limit_params(key, operation, cost, tier);
        self.call(Method::RateLimitCheck.as_str(), params)
    }

    /// `RATE_LIMIT_CONSUME` `{"key","operation","cost","tier"}`: take the tokens →
    /// `allowed`, `remaining`, `reset_after_ms`, `limit`, `window_ms`, `operation` (and
    /// `tier`); or `RATE_LIMITED` with `retry_after_ms`. `tier` as for
    /// [`Client::rate_limit_check`].
    pub fn rate_limit_consume(
        &self,
        key: &str,
        operation: &str,
        cost: u32,
        tier: Option<&str>,
    ) -> CallResult {
        let params = limit_params(key, operation, cost, tier);
        self.call(Method::RateLimitConsume.as_str(), params)
    }

    /// `BREAKER_ACQUIRE` `{"name"}` → `allowed`, `permit` (decimal string), `probe`, `state`;
    /// or `CIRCUIT_OPEN` with `retry_after_ms` (absent when forced open).
    pub fn breaker_acquire(&self, name: &str) -> CallResult {
        self.call(
            Method::BreakerAcquire.as_str(),
            breaker_acquire_params(name),
        )
    }

    /// `BREAKER_RECORD` `{"name","permit","outcome"}` plus `duration_ms` when given →
    /// `{"ok":true,"recorded","state"}`; `recorded` is `counted`, `stale`, `ignored`,
    /// `abandoned`, `expired` or `unknown`.
    pub fn breaker_record(
        &self,
        name: &str,
        permit: &str,
        outcome: BreakerOutcome,
        duration_ms: Option<u64>,
    ) -> CallResult {
        let params = breaker_record_params(name, permit, outcome.as_str(), duration_ms);
        self.call(Method::BreakerRecord.as_str(), params)
    }

    /// `LEASE_ACQUIRE` `{"key"}` → `lease_id` (decimal string), `expires_in_ms`, `active`,
    /// `limit`; or `LEASE_UNAVAILABLE` with `retry_after_ms`. The TTL is the policy's.
    pub fn lease_acquire(&self, key: &str) -> CallResult {
        self.call(Method::LeaseAcquire.as_str(), json!({"key": key}))
    }

    /// `LEASE_REFRESH` `{"key","lease_id"}` → `lease_id`, `expires_in_ms`; or
    /// `LEASE_NOT_FOUND`.
    pub fn lease_refresh(&self, key: &str, lease_id: &str) -> CallResult {
        let params = json!({"key": key, "lease_id": lease_id});
        self.call(Method::LeaseRefresh.as_str(), params)
    }

    /// `LEASE_RELEASE` `{"key","lease_id"}` → `released`, `active`; or `LEASE_NOT_FOUND`.
    pub fn lease_release(&self, key: &str, lease_id: &str) -> CallResult {
        let params = json!({"key": key, "lease_id": lease_id});
        self.call(Method::LeaseRelease.as_str(), params)
    }

    /// `IDEMPOTENCY_BEGIN` `{"key"}` → `status` `started` (with `token`, `expires_in_ms`),
    /// `done` (with `digest`, and `response` if one was stored), or `failed`; or
    /// `IN_PROGRESS`.
    pub fn idempotency_begin(&self, key: &str) -> CallResult {
        self.call(Method::IdempotencyBegin.as_str(), json!({"key": key}))
    }

    /// `IDEMPOTENCY_COMPLETE` `{"key","token","outcome"}` plus `digest` with a success →
    /// `status` `remembered` or `released`; or `REFUSED` with `reason`.
    pub fn idempotency_complete(
        &self,
        key: &str,
        token: &str,
        outcome: IdempotencyOutcome<'_>,
    ) -> CallResult {
        let params = idempotency_complete_params(key, token, outcome);
        self.call(Method::IdempotencyComplete.as_str(), params)
    }

    /// [`idempotency_complete`](Self::idempotency_complete) that also stores `response` (at
    /// most 4096 bytes) with the record; `IDEMPOTENCY_BEGIN` returns it with `done`, also
    /// after a daemon restart.
    pub fn idempotency_complete_with_response(
        &self,
        key: &str,
        token: &str,
        outcome: IdempotencyOutcome<'_>,
        response: &str,
    ) -> CallResult {
        let mut params = idempotency_complete_params(key, token, outcome);
        params["response"] = response.into();
        self.call(Method::IdempotencyComplete.as_str(), params)
    }

    /// `HEALTH_REPORT` `{"name","pass"}` → `name`, `status`, `consecutive_failures`,
    /// `unknown_in_ms`.
    pub fn health_report(&self, name: &str, pass: bool) -> CallResult {
        let params = json!({"name": name, "pass": pass});
        self.call(Method::HealthReport.as_str(), params)
    }

    /// `HEALTH_AGGREGATE` → `status`, `healthy`, `unhealthy`, `unknown`, `checks`.
    pub fn health_aggregate(&self) -> CallResult {
        self.call(Method::HealthAggregate.as_str(), empty())
    }

    /// `JOURNAL_APPEND` of `entry` (every field but `round`, which the daemon sets) →
    /// `{"ok":true,"line","hash"}`, sent once the line is durable.
    pub fn journal_append(&self, entry: &JournalEntry) -> CallResult {
        let params = journal_append_params(entry);
        self.call(Method::JournalAppend.as_str(), params)
    }

    /// `JOURNAL_TAIL` `{"lines"}` (1 ..= 256): the last journal lines as `events`, oldest
    /// first.
    pub fn journal_tail(&self, lines: u32) -> CallResult {
        self.call(Method::JournalTail.as_str(), json!({"lines": lines}))
    }

    /// `PIPELINE_START` `{"mode"}` (`UNAVAILABLE` until the pipeline runner lands).
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

/// Whether a call of `method` that timed out or lost its connection may be sent again
/// without applying anything twice: the protocol's answer
/// ([`Method::is_retry_safe`](heidi_core::proto::Method::is_retry_safe)); a name the
/// protocol does not know is not.
pub(crate) fn is_retry_safe(method: &str) -> bool {
    method
        .parse::<heidi_core::proto::Method>()
        .is_ok_and(heidi_core::proto::Method::is_retry_safe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use heidi_core::journal::Level;

    #[test]
    fn params_follow_the_protocol() {
        let p = breaker_record_params(
            "db",
            "18446744073709551615",
            BreakerOutcome::Abandoned.as_str(),
            None,
        );
        assert_eq!(
            p,
            json!({"name": "db", "permit": "18446744073709551615", "outcome": "abandoned"})
        );
        let p = breaker_record_params("db", "1", BreakerOutcome::Failure.as_str(), Some(7));
        assert_eq!(p["duration_ms"], 7);
        let ok = IdempotencyOutcome::Success { digest: "ab" };
        assert_eq!(
            idempotency_complete_params("k", "5", ok),
            json!({"key": "k", "token": "5", "outcome": "success", "digest": "ab"})
        );
        assert_eq!(
            idempotency_complete_params("k", "5", IdempotencyOutcome::Failure),
            json!({"key": "k", "token": "5", "outcome": "failure"})
        );
    }

    #[test]
    fn journal_append_sends_every_field_but_round() {
        let mut e = JournalEntry::info("client", "batch_done", "wrote rows");
        assert_eq!(
            journal_append_params(&e),
            json!({"event_type": "batch_done", "message": "wrote rows", "stage": "client", "level": "info"})
        );
        e.level = Level::Warning;
        e.counters_delta = vec![("rows".into(), 120)];
        e.usage_delta = vec![("ms".into(), -3)];
        e.artifact_paths = vec!["a/b".into()];
        e.error = Some("x".into());
        let p = journal_append_params(&e);
        assert_eq!(p["level"], "warning");
        assert_eq!(p["counters_delta"], json!({"rows": 120}));
        assert_eq!(p["usage_delta"], json!({"ms": -3}));
        assert_eq!(p["artifact_paths"], json!(["a/b"]));
        assert_eq!(p["error"], "x");
        assert!(p.get("round").is_none());
    }

    #[test]
    fn ids_are_decimal_strings_or_integers() {
        let v = json!({"a": "14757395258967641292", "b": 7, "c": "x1", "d": -1, "f": "+5", "e": "18446744073709551616"});
        assert_eq!(id_of(&v, "a").as_deref(), Some("14757395258967641292"));
        assert_eq!(id_of(&v, "b").as_deref(), Some("7"));
        for bad in ["c", "d", "e", "f", "missing"] {
            assert_eq!(id_of(&v, bad), None, "{bad}");
        }
    }
}
