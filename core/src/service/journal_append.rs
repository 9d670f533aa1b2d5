//! The params of `JOURNAL_APPEND`, validated with the rules of `docs/PROTOCOL.md` into a
//! [`JournalAppend`] that borrows the request: names are checked and unescaped, free text
//! (`message`, `error`, each artifact path) is checked as a JSON string and handed over as it
//! was sent, for the host to decode when it builds the journal line.
//!
//! When several things are wrong, the first of this order is reported: text that is not an
//! object, a member given twice, `event_type`, `stage` (and whether it is reserved), `level`,
//! `message`, `counters_delta`, `usage_delta`, `artifact_paths`, `error`, then the unknown
//! member whose name sorts first.

use core::fmt;

use heapless::{String, Vec};

use super::fields::{self, FieldError, Found, Schema, unescaped_len, with_text};
use crate::journal::redact::holds_secret;
use crate::journal::{
    ARTIFACT_PATH_MAX_BYTES, ARTIFACT_PATHS_MAX, DELTA_MAX_ENTRIES, Level, NAME_MAX_BYTES,
    is_valid_name,
};
use crate::json::scan::Scanner;
use crate::proto::params::{Member, Members, NotAnObject};

/// Stages only the daemon writes; a client event cannot pose as one of them (compared
/// without regard to case, so `Kernel` cannot pass for `kernel` to a reader).
pub const RESERVED_STAGES: [&str; 4] = ["kernel", "pipeline", "daemon", "journal"];

/// A journal name (`stage`, `event_type`, a delta's entry), unescaped.
pub type JournalName = String<NAME_MAX_BYTES>;

/// Why a name that matches a secret rule is refused. The name itself is not echoed.
const SECRET_NAME: &str = "holds a secret (a redaction rule matches it; names are never redacted)";

/// A valid `JOURNAL_APPEND`: what the host appends (with the current round).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalAppend<'a> {
    /// The event's name.
    pub event_type: JournalName,
    /// The stage (`"client"` when not given), never one of [`RESERVED_STAGES`].
    pub stage: JournalName,
    /// The severity (`info` when not given).
    pub level: Level,
    /// The message as sent: a JSON string, quotes included, with valid escapes.
    pub message: &'a str,
    /// Counter changes, by name.
    pub counters_delta: Vec<(JournalName, i64), DELTA_MAX_ENTRIES>,
    /// Resource usage changes, by name.
    pub usage_delta: Vec<(JournalName, i64), DELTA_MAX_ENTRIES>,
    /// Artifact paths as sent: JSON strings of 1 to [`ARTIFACT_PATH_MAX_BYTES`] bytes
    /// (unescaped), quotes included.
    pub artifact_paths: Vec<&'a str, ARTIFACT_PATHS_MAX>,
    /// The error text as sent (a JSON string, quotes included), if any.
    pub error: Option<&'a str>,
}

/// Why `JOURNAL_APPEND` params were refused; shown as `params.<field>: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendError<'a>(Fault<'a>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fault<'a> {
    Field(FieldError<'a>),
    /// `stage` names a reserved stage.
    Reserved(JournalName),
    /// A delta entry: the map, the entry's name as written, the reason.
    Entry(&'static str, &'a str, &'static str),
}

impl<'a> From<FieldError<'a>> for AppendError<'a> {
    fn from(e: FieldError<'a>) -> AppendError<'a> {
        AppendError(Fault::Field(e))
    }
}

impl fmt::Display for AppendError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Fault::Field(e) => e.fmt(f),
            Fault::Reserved(stage) => {
                write!(f, "params.stage: `{stage}` is reserved for the daemon")
            }
            Fault::Entry(map, name, reason) => {
                with_text(name, |name| write!(f, "params.{map}.{name}: {reason}"))
            }
        }
    }
}

static APPEND: Schema<8> = Schema {
    names: [
        "event_type",
        "stage",
        "level",
        "message",
        "counters_delta",
        "usage_delta",
        "artifact_paths",
        "error",
    ],
    expected: "artifact_paths, counters_delta, error, event_type, level, message, stage, \
               usage_delta",
};

/// Reads `JOURNAL_APPEND` params (see the module docs).
pub fn parse_journal_append(params: &str) -> Result<JournalAppend<'_>, AppendError<'_>> {
    read(Members::new(params))
}

fn read<'a>(
    members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
) -> Result<JournalAppend<'a>, AppendError<'a>> {
    let found = fields::collect(members, &APPEND)?;
    let event_type = name(&found, 0)?.ok_or(FieldError::Required("event_type"))?;
    let stage = match name(&found, 1)? {
        Some(stage) => stage,
        None => String::try_from("client").unwrap_or_default(),
    };
    if RESERVED_STAGES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(&stage))
    {
        return Err(AppendError(Fault::Reserved(stage)));
    }
    let mut level_buf = [0u8; 16];
    let level = match found.text_opt(2, &mut level_buf)? {
        None | Some("info") => Level::Info,
        Some("debug") => Level::Debug,
        Some("warning") => Level::Warning,
        Some("error") => Level::Error,
        Some(_) => {
            let reason = "must be debug, info, warning or error";
            return Err(FieldError::Invalid("level", reason).into());
        }
    };
    let message = found.raw(3).ok_or(FieldError::Required("message"))?;
    json_string(message, "message", usize::MAX)?;
    let counters_delta = delta(&found, 4, "counters_delta")?;
    let usage_delta = delta(&found, 5, "usage_delta")?;
    let artifact_paths = paths(&found)?;
    let error = match found.raw(7) {
        None => None,
        Some(raw) if raw.starts_with('"') => {
            json_string(raw, "error", usize::MAX)?;
            Some(raw)
        }
        Some(_) => return Err(FieldError::Invalid("error", "must be a string or null").into()),
    };
    found.finish()?;
    Ok(JournalAppend {
        event_type,
        stage,
        level,
        message,
        counters_delta,
        usage_delta,
        artifact_paths,
        error,
    })
}

/// An optional journal name: 1 to 64 bytes of the name set, holding no secret.
fn name<'m>(found: &Found<'m, 8>, i: usize) -> Result<Option<JournalName>, AppendError<'m>> {
    let mut buf = [0u8; NAME_MAX_BYTES];
    let Some(text) = found.text_opt(i, &mut buf)? else {
        return Ok(None);
    };
    let field = APPEND.names[i];
    if !is_valid_name(text.as_bytes()) {
        let reason = "must be a name: 1 to 64 of A-Z a-z 0-9 _ . : -";
        return Err(FieldError::Invalid(field, reason).into());
    }
    if holds_secret(text) {
        return Err(FieldError::Invalid(field, SECRET_NAME).into());
    }
    Ok(String::try_from(text).ok())
}

/// `raw` is a JSON string with valid escapes of at most `max` bytes once unescaped.
fn json_string<'a>(raw: &str, field: &'static str, max: usize) -> Result<usize, AppendError<'a>> {
    if !raw.starts_with('"') {
        return Err(FieldError::NotAString(field).into());
    }
    let len = unescaped_len(raw).ok_or(FieldError::BadEscape(field))?;
    if len > max {
        return Err(FieldError::Length(field, max).into());
    }
    Ok(len)
}

/// A delta map: an object of at most 16 entries, each a valid name holding no secret, to a
/// 64-bit integer; in name order.
fn delta<'m>(
    found: &Found<'m, 8>,
    i: usize,
    field: &'static str,
) -> Result<Vec<(JournalName, i64), DELTA_MAX_ENTRIES>, AppendError<'m>> {
    let mut out = Vec::new();
    let Some(raw) = found.raw(i) else {
        return Ok(out);
    };
    if !raw.starts_with('{') {
        return Err(FieldError::Invalid(field, "must be an object").into());
    }
    let entry = |name, reason| AppendError(Fault::Entry(field, name, reason));
    let mut count = 0;
    let mut first_fault = None;
    for member in Members::new(raw) {
        let member = member.map_err(|_| FieldError::Invalid(field, "must be an object"))?;
        count += 1;
        if count > DELTA_MAX_ENTRIES || first_fault.is_some() {
            continue;
        }
        let raw_name = member.name_raw();
        let checked = with_text(raw_name, |text| -> Result<JournalName, AppendError<'m>> {
            if !is_valid_name(text.as_bytes()) {
                return Err(entry(raw_name, "names are 1 to 64 of A-Z a-z 0-9 _ . : -"));
            }
            if holds_secret(text) {
                // The path would name the secret: the map alone is reported.
                return Err(FieldError::Invalid(
                    field,
                    "a name holds a secret (a redaction \
                    rule matches it; names are never redacted)",
                )
                .into());
            }
            if out.iter().any(|(n, _): &(JournalName, i64)| n == text) {
                return Err(entry(raw_name, "duplicate field"));
            }
            Ok(String::try_from(text).unwrap_or_default())
        });
        let value = checked.and_then(|name| {
            let n = member
                .as_i64()
                .ok_or_else(|| entry(raw_name, "must be a 64-bit integer"))?;
            Ok((name, n))
        });
        match value {
            Ok(pair) => {
                let _ = out.push(pair);
            }
            Err(e) => first_fault = Some(e),
        }
    }
    if count > DELTA_MAX_ENTRIES {
        return Err(FieldError::Invalid(field, "at most 16 entries").into());
    }
    if let Some(e) = first_fault {
        return Err(e);
    }
    out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// `artifact_paths`: a list of at most 16 strings of 1 to 256 bytes.
fn paths<'m>(found: &Found<'m, 8>) -> Result<Vec<&'m str, ARTIFACT_PATHS_MAX>, AppendError<'m>> {
    let mut out = Vec::new();
    let Some(raw) = found.raw(6) else {
        return Ok(out);
    };
    let list = "must be a list of at most 16 strings";
    let each = "each path is a string of 1 to 256 bytes";
    let mut sc = Scanner::new(raw.as_bytes());
    sc.expect(b'[')
        .map_err(|_| FieldError::Invalid("artifact_paths", list))?;
    sc.ws();
    if !sc.eat(b']') {
        loop {
            let span = sc
                .value()
                .map_err(|_| FieldError::Invalid("artifact_paths", list))?;
            let item = &raw[span];
            let len = json_string(item, "artifact_paths", ARTIFACT_PATH_MAX_BYTES)
                .map_err(|_| FieldError::Invalid("artifact_paths", each))?;
            if len == 0 {
                return Err(FieldError::Invalid("artifact_paths", each).into());
            }
            out.push(item)
                .map_err(|_| FieldError::Invalid("artifact_paths", list))?;
            sc.ws();
            if sc.eat(b']') {
                break;
            }
            sc.expect(b',')
                .map_err(|_| FieldError::Invalid("artifact_paths", list))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::format;
    use std::string::{String as StdString, ToString};
    use std::vec::Vec as StdVec;

    use super::*;

    fn err(params: &str) -> StdString {
        parse_journal_append(params).unwrap_err().to_string()
    }

    #[test]
    fn defaults_escaped_names_and_sorted_deltas() {
        let a = parse_journal_append(r#"{"event_type":"done","message":"ok"}"#).unwrap();
        assert_eq!(
            (a.event_type.as_str(), a.stage.as_str(), a.level, a.message),
            ("done", "client", Level::Info, r#""ok""#)
        );
        assert!(a.counters_delta.is_empty() && a.artifact_paths.is_empty() && a.error.is_none());
        let a = parse_journal_append(
            r#"{"event_type":"\u0078","stage":"train","level":"error","message":"a\nb",
                "counters_delta":{"rows":-3,"b":9007199254740993,"m":-9223372036854775808},
                "usage_delta":{"c\u0070u":5},"artifact_paths":["/tmp/a", "\u00e9"],
                "error":"boom"}"#,
        )
        .unwrap();
        assert_eq!((a.event_type.as_str(), a.level), ("x", Level::Error));
        let names: StdVec<(&str, i64)> = a
            .counters_delta
            .iter()
            .map(|(n, v)| (n.as_str(), *v))
            .collect();
        assert_eq!(
            names,
            [("b", 9_007_199_254_740_993), ("m", i64::MIN), ("rows", -3)]
        );
        assert_eq!(a.usage_delta[0].0.as_str(), "cpu");
        assert_eq!(a.artifact_paths.as_slice(), [r#""/tmp/a""#, r#""\u00e9""#]);
        assert_eq!((a.message, a.error), (r#""a\nb""#, Some(r#""boom""#)));
        let a = parse_journal_append(r#"{"event_type":"x","message":"m","error":null}"#).unwrap();
        assert_eq!(a.error, None);
    }

    #[test]
    fn refusals_name_the_param_first_in_order() {
        let many: StdString = (0..17).map(|i| format!(r#""c{i}":1,"#)).collect();
        let sixteen_paths = [r#""p""#; 16].join(",");
        let cases = [
            (
                r#"{"message":"m"}"#.to_string(),
                "params.event_type: is required",
            ),
            (
                r#"{"event_type":"x"}"#.to_string(),
                "params.message: is required",
            ),
            (
                r#"{"event_type":"a b","message":"m"}"#.to_string(),
                "params.event_type: must be a name: 1 to 64 of A-Z a-z 0-9 _ . : -",
            ),
            (
                r#"{"event_type":"x","message":"m","stage":"Kernel"}"#.to_string(),
                "params.stage: `Kernel` is reserved for the daemon",
            ),
            (
                r#"{"event_type":"x","message":"m","level":"fatal"}"#.to_string(),
                "params.level: must be debug, info, warning or error",
            ),
            (
                r#"{"event_type":"x","message":7}"#.to_string(),
                "params.message: must be a string",
            ),
            (
                r#"{"event_type":"x","message":"\ud800"}"#.to_string(),
                "params.message: holds an invalid escape",
            ),
            (
                r#"{"event_type":"x","message":"m","counters_delta":[1]}"#.to_string(),
                "params.counters_delta: must be an object",
            ),
            (
                r#"{"event_type":"x","message":"m","counters_delta":{"a":1.5}}"#.to_string(),
                "params.counters_delta.a: must be a 64-bit integer",
            ),
            (
                r#"{"event_type":"x","message":"m","usage_delta":{"a":9223372036854775808}}"#
                    .to_string(),
                "params.usage_delta.a: must be a 64-bit integer",
            ),
            (
                r#"{"event_type":"x","message":"m","counters_delta":{"a b":1}}"#.to_string(),
                "params.counters_delta.a b: names are 1 to 64 of A-Z a-z 0-9 _ . : -",
            ),
            (
                r#"{"event_type":"x","message":"m","counters_delta":{"rows":1,"r\u006fws":2}}"#
                    .to_string(),
                "params.counters_delta.rows: duplicate field",
            ),
            (
                format!(r#"{{"event_type":"x","message":"m","counters_delta":{{{many}"z":1}}}}"#),
                "params.counters_delta: at most 16 entries",
            ),
            (
                format!(
                    r#"{{"event_type":"x","message":"m","artifact_paths":[{sixteen_paths},"q"]}}"#
                ),
                "params.artifact_paths: must be a list of at most 16 strings",
            ),
            (
                r#"{"event_type":"x","message":"m","artifact_paths":[""]}"#.to_string(),
                "params.artifact_paths: each path is a string of 1 to 256 bytes",
            ),
            (
                format!(
                    r#"{{"event_type":"x","message":"m","artifact_paths":["{}"]}}"#,
                    "p".repeat(257)
                ),
                "params.artifact_paths: each path is a string of 1 to 256 bytes",
            ),
            (
                r#"{"event_type":"x","message":"m","artifact_paths":"p"}"#.to_string(),
                "params.artifact_paths: must be a list of at most 16 strings",
            ),
            (
                r#"{"event_type":"x","message":"m","error":5}"#.to_string(),
                "params.error: must be a string or null",
            ),
            (
                r#"{"event_type":"x","message":"m","round":2,"a":1}"#.to_string(),
                "params.a: unknown field (expected one of: artifact_paths, counters_delta, \
                 error, event_type, level, message, stage, usage_delta)",
            ),
            (
                r#"{"event_type":"x","message":"m","event_type":"y"}"#.to_string(),
                "params.event_type: duplicate field",
            ),
            (
                "[1]".to_string(),
                "params: not a JSON object (invalid at byte 0)",
            ),
        ];
        for (params, message) in cases {
            assert_eq!(err(&params), message, "{params}");
        }
        // The bounds themselves are accepted.
        let sixteen: StdString = (0..16).map(|i| format!(r#","c{i}":1"#)).collect();
        let p =
            format!(r#"{{"event_type":"x","message":"m","counters_delta":{{"z":0{sixteen}}}}}"#);
        assert_eq!(
            err(&p),
            "params.counters_delta: at most 16 entries",
            "17 with z"
        );
        let p = format!(
            r#"{{"event_type":"x","message":"m","counters_delta":{{{}}}}}"#,
            &sixteen[1..]
        );
        assert_eq!(parse_journal_append(&p).unwrap().counters_delta.len(), 16);
        let p = format!(
            r#"{{"event_type":"x","message":"m","artifact_paths":[{sixteen_paths}],"stage":"{}"}}"#,
            "s".repeat(64)
        );
        let a = parse_journal_append(&p).unwrap();
        assert_eq!((a.artifact_paths.len(), a.stage.len()), (16, 64));
        let p = format!(
            r#"{{"event_type":"x","message":"m","artifact_paths":["{}"]}}"#,
            "p".repeat(256)
        );
        assert!(parse_journal_append(&p).is_ok());
    }

    #[test]
    fn names_holding_a_secret_are_refused_without_echoing_them() {
        let secret = "hf_FakeTokenForTestsOnlyAbcdefghijklm9";
        for (params, message) in [
            (
                format!(r#"{{"event_type":"{secret}","message":"m"}}"#),
                "params.event_type: holds a secret",
            ),
            (
                format!(r#"{{"event_type":"x","stage":"{secret}","message":"m"}}"#),
                "params.stage: holds a secret",
            ),
            (
                format!(r#"{{"event_type":"x","message":"m","counters_delta":{{"{secret}":1}}}}"#),
                "params.counters_delta: a name holds a secret",
            ),
        ] {
            let got = err(&params);
            assert!(got.starts_with(message), "{got}");
            assert!(!got.contains("Fake"), "{got}");
        }
    }
}
