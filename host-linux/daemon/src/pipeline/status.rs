//! The pipeline status as JSON, for `state.json`, `STATUS` and `GET /api/v1/status`.

use heidi_core::WallTime;
use heidi_core::pipeline::Status;
use serde_json::{Value, json};

/// The status document: `status` (the one word of [`Status::run_status`]), `state`, `round`, `mode`, `run_id`, `stage`, `stage_started_at`
/// (UTC, like the journal's `ts`), `last_error`, plus `awaiting_train`, `paused_before`
/// and `pause_requested`. `detail` (the runner's description of the last failure) is
/// appended to `last_error`.
pub fn status_json(
    status: &Status,
    run_id: &str,
    stage_started_at: Option<WallTime>,
    detail: Option<&str>,
) -> Value {
    let last_error = status.last_error.map(|e| match detail {
        Some(d) => format!("{e}: {d}"),
        None => e.to_string(),
    });
    json!({
        "status": status.run_status().name(),
        "state": status.state.name(),
        "round": status.round,
        "mode": status.mode.name(),
        "run_id": run_id,
        "stage": status.stage.map(|s| s.name()),
        "stage_started_at": stage_started_at
            .filter(|_| status.stage_started_at.is_some())
            .map(|t| t.to_string()),
        "last_error": last_error,
        "awaiting_train": status.awaiting_train,
        "paused_before": status.resume_to.map(|s| s.name()),
        "pause_requested": status.pause_requested,
    })
}

/// The `state.json` document: [`status_json`] plus the seed's names for the same values,
/// `current_round` and `current_stage`.
pub fn state_file_json(status: &Value) -> Value {
    let mut doc = status.clone();
    doc["current_round"] = status["round"].clone();
    doc["current_stage"] = status["stage"].clone();
    doc
}
