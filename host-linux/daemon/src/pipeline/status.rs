//! The pipeline status as JSON, for `state.json`, `STATUS` and `GET /api/v1/status`.

use heidi_core::WallTime;
use heidi_core::pipeline::{Status, write_status};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// The pipeline's status document as the core writes it ([`write_status`]): its bytes, sent
/// as they are in `STATUS`, `GET /api/v1/status` and the `PIPELINE_*` replies, and the same
/// document as a JSON value for `state.json` and for reading fields. Cheap to clone.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusDoc {
    status: Status,
    text: Arc<str>,
    value: Arc<Value>,
}

impl StatusDoc {
    /// The document of `status` (`status`, `state`, `round`, `mode`, `run_id`, `stage`,
    /// `stage_started_at`, `last_error` with `detail`, the runner's description of the last
    /// failure, `awaiting_train`, `paused_before` and `pause_requested`).
    pub fn of(
        status: &Status,
        run_id: &str,
        stage_started_at: Option<WallTime>,
        detail: Option<&str>,
    ) -> StatusDoc {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = write_status(status, run_id, stage_started_at, detail, &mut text);
        let value = serde_json::from_str(&text).expect("the core writes one JSON object");
        StatusDoc {
            status: *status,
            text: text.into(),
            value: Arc::new(value),
        }
    }

    /// The status it documents.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The document's bytes, as the core wrote them.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The document as a JSON value.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

impl std::ops::Index<&str> for StatusDoc {
    type Output = Value;

    /// A field of the document (`Value::Null` when absent).
    fn index(&self, field: &str) -> &Value {
        &self.value[field]
    }
}

impl fmt::Display for StatusDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The `state.json` document: the status document plus the seed's names for the same values,
/// `current_round` and `current_stage`.
pub fn state_file_json(status: &StatusDoc) -> Value {
    let mut doc = status.value().clone();
    doc["current_round"] = status["round"].clone();
    doc["current_stage"] = status["stage"].clone();
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use heidi_core::Instant;
    use heidi_core::pipeline::{ErrorReason, Mode, Stage, State};
    use serde_json::json;

    /// The same fields as `serde_json` writes them: the reference for the core's key order
    /// and escaping.
    fn by_serde(s: &Status, run_id: &str, at: Option<WallTime>, detail: Option<&str>) -> String {
        let last_error = s.last_error.map(|e| match detail {
            Some(d) => format!("{e}: {d}"),
            None => e.to_string(),
        });
        json!({
            "status": s.run_status().name(),
            "state": s.state.name(),
            "round": s.round,
            "mode": s.mode.name(),
            "run_id": run_id,
            "stage": s.stage.map(|s| s.name()),
            "stage_started_at": at.filter(|_| s.stage_started_at.is_some()).map(|t| t.to_string()),
            "last_error": last_error,
            "awaiting_train": s.awaiting_train,
            "paused_before": s.resume_to.map(|s| s.name()),
            "pause_requested": s.pause_requested,
        })
        .to_string()
    }

    #[test]
    fn the_core_writes_the_bytes_serde_would() {
        let idle = Status::IDLE;
        let running = Status {
            state: State::Collecting,
            round: 7,
            mode: Mode::Full,
            stage: Some(Stage::Generate),
            stage_started_at: Some(Instant::from_secs(3)),
            pause_requested: true,
            ..idle
        };
        let failed = Status {
            state: State::Error,
            last_error: Some(ErrorReason::StageFailed(Stage::Generate)),
            ..idle
        };
        let paused = Status {
            state: State::Paused,
            resume_to: Some(State::Validating),
            awaiting_train: true,
            ..idle
        };
        let at = Some(WallTime::from_unix_millis(1_764_000_000_123));
        for status in [idle, running, failed, paused] {
            for detail in [None, Some("exit 1: \"quoted\" \\ tab\t nl\n \u{1} é")] {
                for (run_id, at) in [("run-1", at), ("r\"x", None)] {
                    let mut core = String::new();
                    write_status(&status, run_id, at, detail, &mut core).unwrap();
                    assert_eq!(core, by_serde(&status, run_id, at, detail));
                }
            }
        }
    }
}
