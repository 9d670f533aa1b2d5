//! The pipeline's status as the JSON document hosts publish (the daemon's `state.json`,
//! `STATUS` and `GET /api/v1/status`): written by the core so every host shows the same
//! bytes.

use core::fmt::{self, Write};

use super::Status;
use crate::WallTime;
use crate::json::escape::{Escaping, write_quoted};

/// Writes the status document of `status`: `awaiting_train`, `last_error`, `mode`,
/// `pause_requested`, `paused_before`, `round`, `run_id`, `stage`, `stage_started_at` (UTC,
/// like the journal's `ts`; `null` unless a stage is running and `stage_started_at` is
/// given), `state` and `status` (the one word of [`Status::run_status`]), keys in byte
/// order. `detail` (the host's description of the last failure) follows `last_error`'s
/// reason after `": "`. `run_id` and `detail` are escaped.
pub fn write_status<W: Write>(
    status: &Status,
    run_id: &str,
    stage_started_at: Option<WallTime>,
    detail: Option<&str>,
    w: &mut W,
) -> fmt::Result {
    write!(w, "{{\"awaiting_train\":{}", status.awaiting_train)?;
    w.write_str(",\"last_error\":")?;
    match status.last_error {
        None => w.write_str("null")?,
        Some(reason) => {
            w.write_char('"')?;
            let mut text = Escaping::new(w);
            write!(text, "{reason}")?;
            if let Some(detail) = detail {
                write!(text, ": {detail}")?;
            }
            w.write_char('"')?;
        }
    }
    write!(
        w,
        ",\"mode\":\"{}\",\"pause_requested\":{},\"paused_before\":",
        status.mode.name(),
        status.pause_requested
    )?;
    name_or_null(w, status.resume_to.map(|s| s.name()))?;
    write!(w, ",\"round\":{},\"run_id\":", status.round)?;
    write_quoted(w, run_id)?;
    w.write_str(",\"stage\":")?;
    name_or_null(w, status.stage.map(|s| s.name()))?;
    w.write_str(",\"stage_started_at\":")?;
    match stage_started_at.filter(|_| status.stage_started_at.is_some()) {
        Some(t) => write!(w, "\"{t}\"")?,
        None => w.write_str("null")?,
    }
    write!(
        w,
        ",\"state\":\"{}\",\"status\":\"{}\"}}",
        status.state.name(),
        status.run_status().name()
    )
}

fn name_or_null<W: Write>(w: &mut W, name: Option<&str>) -> fmt::Result {
    match name {
        Some(name) => write!(w, "\"{name}\""),
        None => w.write_str("null"),
    }
}
