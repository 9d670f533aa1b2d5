//! [`parse_journal_append`]: `JOURNAL_APPEND` params into a [`JournalEntry`] the host appends.

use heidi_core::journal::redact::holds_secret;
use heidi_core::journal::{
    ARTIFACT_PATH_MAX_BYTES, ARTIFACT_PATHS_MAX, DELTA_MAX_ENTRIES, Level, NAME_MAX_BYTES,
    is_valid_name,
};

/// Why a name that matches a secret rule is refused. The name itself is not echoed.
const SECRET_NAME: &str = "holds a secret (a redaction rule matches it; names are never redacted)";
use heidi_core::proto::ErrorCode;
use serde_json::Value;

use super::fields::{FieldError, Fields, join, parse_params};
use heidi_common::JournalEntry;

/// Stages only the daemon writes; a client event cannot pose as one of them.
pub const RESERVED_STAGES: [&str; 4] = ["kernel", "pipeline", "daemon", "journal"];

/// Parses `JOURNAL_APPEND` params (see `docs/PROTOCOL.md`): `event_type` (required name),
/// `stage` (name, default `"client"`, not one of [`RESERVED_STAGES`]), `level` (`debug`,
/// `info` (default), `warning`, `error`), `message` (required string), optional
/// `counters_delta` / `usage_delta` (objects of at most 16 names to integers),
/// `artifact_paths` (at most 16 strings of at most 256 bytes) and `error` (string or null).
/// The entry's `round` is 1; the host sets the current round. Errors are `BAD_REQUEST` with
/// a message naming the param; a field given twice at any depth is refused
/// (`params.counters_delta.rows: duplicate field`), as for every other method.
pub fn parse_journal_append(params: &str) -> Result<JournalEntry, (ErrorCode, String)> {
    let bad = |e: FieldError| (ErrorCode::BadRequest, format!("{}: {}", e.field, e.reason));
    let value = parse_params(params).map_err(|fail| (fail.code, fail.message))?;
    entry(&value).map_err(bad)
}

fn name_field(f: &mut Fields<'_>, field: &'static str) -> Result<Option<String>, FieldError> {
    match f.str(field, NAME_MAX_BYTES)? {
        Some(s) if !is_valid_name(s.as_bytes()) => {
            Err(f.error(field, "must be a name: 1 to 64 of A-Z a-z 0-9 _ . : -"))
        }
        Some(s) if holds_secret(s) => Err(f.error(field, SECRET_NAME)),
        other => Ok(other.map(str::to_owned)),
    }
}

fn entry(value: &Value) -> Result<JournalEntry, FieldError> {
    let mut f = Fields::new(value, "params")?;
    let event_type =
        name_field(&mut f, "event_type")?.ok_or_else(|| f.error("event_type", "is required"))?;
    let stage = name_field(&mut f, "stage")?.unwrap_or_else(|| "client".to_owned());
    // Case-insensitive, so `Kernel` cannot pass for the daemon's `kernel` to a reader.
    if RESERVED_STAGES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(&stage))
    {
        return Err(f.error("stage", format!("`{stage}` is reserved for the daemon")));
    }
    let level = match f.str("level", 16)? {
        None | Some("info") => Level::Info,
        Some("debug") => Level::Debug,
        Some("warning") => Level::Warning,
        Some("error") => Level::Error,
        Some(_) => {
            return Err(f.error("level", "must be debug, info, warning or error"));
        }
    };
    let message = match f.raw("message") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(f.error("message", "must be a string")),
        None => return Err(f.error("message", "is required")),
    };
    let counters_delta = delta(&mut f, "counters_delta")?;
    let usage_delta = delta(&mut f, "usage_delta")?;
    let artifact_paths = paths(&mut f)?;
    let error = match f.raw("error") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(f.error("error", "must be a string or null")),
    };
    f.finish()?;
    Ok(JournalEntry {
        round: 1,
        stage,
        level,
        event_type,
        message,
        counters_delta,
        usage_delta,
        artifact_paths,
        error,
    })
}

fn delta(f: &mut Fields<'_>, field: &'static str) -> Result<Vec<(String, i64)>, FieldError> {
    let Some(obj) = f.object(field)? else {
        return Ok(Vec::new());
    };
    let (path, entries) = obj.entries();
    if entries.len() > DELTA_MAX_ENTRIES {
        let reason = format!("at most {DELTA_MAX_ENTRIES} entries");
        return Err(FieldError {
            field: path,
            reason,
        });
    }
    let mut out = Vec::with_capacity(entries.len());
    for (name, v) in entries {
        let at = || join(&path, name);
        if !is_valid_name(name.as_bytes()) {
            let reason = "names are 1 to 64 of A-Z a-z 0-9 _ . : -".to_owned();
            return Err(FieldError {
                field: at(),
                reason,
            });
        }
        if holds_secret(name) {
            // The path would name the secret: the field alone is reported.
            return Err(FieldError {
                field: path.clone(),
                reason: format!("a name {SECRET_NAME}"),
            });
        }
        let n = v.as_i64().ok_or_else(|| FieldError {
            field: at(),
            reason: "must be a 64-bit integer".to_owned(),
        })?;
        out.push((name.to_owned(), n));
    }
    Ok(out)
}

fn paths(f: &mut Fields<'_>) -> Result<Vec<String>, FieldError> {
    let list = match f.raw("artifact_paths") {
        None => return Ok(Vec::new()),
        Some(Value::Array(list)) if list.len() <= ARTIFACT_PATHS_MAX => list,
        Some(_) => {
            let reason = format!("must be a list of at most {ARTIFACT_PATHS_MAX} strings");
            return Err(f.error("artifact_paths", reason));
        }
    };
    list.iter()
        .map(|v| match v {
            Value::String(s) if !s.is_empty() && s.len() <= ARTIFACT_PATH_MAX_BYTES => {
                Ok(s.clone())
            }
            _ => Err(f.error(
                "artifact_paths",
                format!("each path is a string of 1 to {ARTIFACT_PATH_MAX_BYTES} bytes"),
            )),
        })
        .collect()
}
