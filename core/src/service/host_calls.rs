//! The params and replies of the methods a host serves itself: `JOURNAL_APPEND` and
//! `JOURNAL_TAIL` (the host holds the journal) and the pipeline's control methods (the host
//! runs the stages). The core reads the params and writes the replies, so every host
//! refuses the same params with the same words and answers in the same bytes; carrying the
//! methods out is the host's (see `docs/PROTOCOL.md`).

use core::fmt::{self, Write};

use super::fields::{self, FieldError, Schema};
use crate::json::escape::write_quoted;
use crate::pipeline::{Input, Mode};
use crate::proto::params::Members;
use crate::proto::{DaemonStatus, Method};

/// Most lines one `JOURNAL_TAIL` returns.
pub const TAIL_MAX_LINES: u16 = 256;

/// Lines `JOURNAL_TAIL` returns when `params.lines` is absent.
pub const TAIL_DEFAULT_LINES: u16 = 20;

/// Why the params of a method the host serves were refused; shown as
/// `params.<field>: <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostParamsError<'a>(FieldError<'a>);

impl fmt::Display for HostParamsError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

static TAIL: Schema<1> = Schema {
    names: ["lines"],
    expected: "lines",
};
static START: Schema<1> = Schema {
    names: ["mode"],
    expected: "mode",
};
static NONE: Schema<0> = Schema {
    names: [],
    expected: "",
};

/// `JOURNAL_TAIL`'s params: how many of the newest lines to return (`params.lines`, 1 to
/// [`TAIL_MAX_LINES`], default [`TAIL_DEFAULT_LINES`]).
pub fn read_journal_tail(params: &str) -> Result<u16, HostParamsError<'_>> {
    let found = fields::collect(Members::new(params), &TAIL).map_err(HostParamsError)?;
    let lines = found
        .integer_in(
            0,
            1..=u64::from(TAIL_MAX_LINES),
            "must be an integer in 1..=256",
        )
        .map_err(HostParamsError)?;
    found.finish().map_err(HostParamsError)?;
    // Within 1..=TAIL_MAX_LINES, so it fits.
    Ok(lines.map_or(TAIL_DEFAULT_LINES, |n| n as u16))
}

/// Bytes of a `JOURNAL_TAIL` reply besides its lines and their commas.
const TAIL_FRAME_BYTES: usize = 64;

/// `JOURNAL_TAIL`'s reply, `{"ok":true,"truncated":…,"events":[…]}`, with the newest of
/// `lines` (journal lines, oldest first: each is one JSON object) that fit a reply of
/// `reply_max_bytes`, oldest first; `truncated` says whether any was left out.
pub fn write_tail_reply<L: AsRef<str>, W: Write>(
    lines: &[L],
    reply_max_bytes: usize,
    w: &mut W,
) -> fmt::Result {
    let budget = reply_max_bytes.saturating_sub(TAIL_FRAME_BYTES);
    let mut used = 0usize;
    let keep = lines
        .iter()
        .rev()
        .take_while(|line| {
            used = used.saturating_add(line.as_ref().len() + 1);
            used <= budget
        })
        .count();
    let truncated = keep < lines.len();
    write!(w, "{{\"ok\":true,\"truncated\":{truncated},\"events\":[")?;
    for (i, line) in lines[lines.len() - keep..].iter().enumerate() {
        if i > 0 {
            w.write_char(',')?;
        }
        w.write_str(line.as_ref())?;
    }
    w.write_str("]}")
}

/// `JOURNAL_APPEND`'s reply once the line is durable: `{"hash":"<hex>","line":N,"ok":true}`
/// (`hash_hex`: the line's chain hash in hex).
pub fn write_appended_reply<W: Write>(line: u64, hash_hex: &str, w: &mut W) -> fmt::Result {
    write!(w, "{{\"hash\":\"{hash_hex}\",\"line\":{line},\"ok\":true}}")
}

/// What a `STATUS` reply reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusReply<'a> {
    /// The fields the `status` line command reports too.
    pub daemon: DaemonStatus<'a>,
    /// Connections open now.
    pub connections: u32,
    /// The version of the policy in force.
    pub policy_version: u64,
    /// The journal's run id.
    pub journal_run_id: &'a str,
    /// Lines in the journal.
    pub journal_lines: u64,
    /// The pipeline's status document ([`write_status`](crate::pipeline::write_status)), as
    /// JSON text; copied as it is.
    pub pipeline: &'a str,
}

/// `STATUS`'s reply: `{"connections":…,"journal":{"lines":…,"run_id":…},"ok":true,"pid":…,
/// "pipeline":{…},"policy_version":…,"protocol_version":…,"queue_depth":…,"rss_kb":…,
/// "threads":…,"uptime_ms":…,"version":…}`, keys in byte order.
pub fn write_status_reply<W: Write>(s: &StatusReply<'_>, w: &mut W) -> fmt::Result {
    let d = &s.daemon;
    write!(
        w,
        "{{\"connections\":{},\"journal\":{{\"lines\":{},\"run_id\":",
        s.connections, s.journal_lines
    )?;
    write_quoted(w, s.journal_run_id)?;
    write!(
        w,
        "}},\"ok\":true,\"pid\":{},\"pipeline\":{},\"policy_version\":{}",
        d.pid, s.pipeline, s.policy_version
    )?;
    write!(
        w,
        ",\"protocol_version\":{},\"queue_depth\":{},\"rss_kb\":{},\"threads\":{},\"uptime_ms\":{},\"version\":",
        d.protocol_version, d.queue_depth, d.rss_kb, d.threads, d.uptime_ms
    )?;
    write_quoted(w, d.version)?;
    w.write_char('}')
}

/// `PING`'s reply: `{"ok":true,"pong":true,"version":…}`, the host's version. The same on
/// every call, so a host may write it once and send the bytes.
pub fn write_pong_reply<W: Write>(version: &str, w: &mut W) -> fmt::Result {
    w.write_str("{\"ok\":true,\"pong\":true,\"version\":")?;
    write_quoted(w, version)?;
    w.write_char('}')
}

/// A `PIPELINE_*` method's reply once the command is carried out:
/// `{"accepted":true,"ok":true,"status":…}` with the pipeline's new status document
/// (`status`, JSON text from [`write_status`](crate::pipeline::write_status), copied as it
/// is).
pub fn write_accepted_reply<W: Write>(status: &str, w: &mut W) -> fmt::Result {
    write!(w, "{{\"accepted\":true,\"ok\":true,\"status\":{status}}}")
}

/// The pipeline input a `PIPELINE_*` method asks for, or `None` for any other method.
/// `PIPELINE_START` may name its `mode` (`"collect"` or `"full"`; absent: `default_mode`,
/// the host's configured one); the others take no params.
pub fn read_pipeline_call(
    method: Method,
    params: &str,
    default_mode: Mode,
) -> Option<Result<Input, HostParamsError<'_>>> {
    let input = match method {
        Method::PipelineStart => return Some(start(params, default_mode)),
        Method::PipelineStop => Input::Stop,
        Method::PipelinePause => Input::Pause,
        Method::PipelineResume => Input::Resume,
        Method::PipelineReset => Input::Reset,
        Method::PipelineTrainNow => Input::TrainNow,
        _ => return None,
    };
    let found = fields::collect(Members::new(params), &NONE);
    Some(
        found
            .and_then(|found| found.finish())
            .map(|()| input)
            .map_err(HostParamsError),
    )
}

fn start(params: &str, default_mode: Mode) -> Result<Input, HostParamsError<'_>> {
    let found = fields::collect(Members::new(params), &START).map_err(HostParamsError)?;
    let mode = match found.raw(0) {
        None => default_mode,
        Some("\"collect\"") => Mode::Collect,
        Some("\"full\"") => Mode::Full,
        Some(_) => {
            let reason = "must be \"collect\" or \"full\"";
            return Err(HostParamsError(FieldError::Invalid("mode", reason)));
        }
    };
    found.finish().map_err(HostParamsError)?;
    Ok(Input::Start(mode))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    fn tail_error(params: &str) -> std::string::String {
        read_journal_tail(params).unwrap_err().to_string()
    }

    #[test]
    fn journal_tail_reads_lines_within_the_bound() {
        assert_eq!(read_journal_tail("{}"), Ok(TAIL_DEFAULT_LINES));
        assert_eq!(
            read_journal_tail(r#"{"lines":null}"#),
            Ok(TAIL_DEFAULT_LINES)
        );
        assert_eq!(read_journal_tail(r#"{"lines":1}"#), Ok(1));
        assert_eq!(read_journal_tail(r#"{"lines":256}"#), Ok(TAIL_MAX_LINES));
        for bad in [
            "0",
            "257",
            "-1",
            "1.5",
            "\"5\"",
            "true",
            "18446744073709551616",
        ] {
            assert_eq!(
                tail_error(&std::format!(r#"{{"lines":{bad}}}"#)),
                "params.lines: must be an integer in 1..=256",
                "{bad}"
            );
        }
        assert_eq!(
            tail_error(r#"{"line":5}"#),
            "params.line: unknown field (expected one of: lines)"
        );
        assert_eq!(
            tail_error(r#"{"lines":5,"lines":6}"#),
            "params.lines: duplicate field"
        );
        assert_eq!(
            tail_error("[1]"),
            "params: not a JSON object (invalid at byte 0)"
        );
    }

    #[test]
    fn tail_reply_keeps_the_newest_lines_that_fit() {
        let lines = [r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#];
        let mut w = std::string::String::new();
        write_tail_reply(&lines, 1 << 16, &mut w).unwrap();
        assert_eq!(
            w,
            r#"{"ok":true,"truncated":false,"events":[{"n":1},{"n":2},{"n":3}]}"#
        );
        // Room for two lines and their commas only.
        w.clear();
        write_tail_reply(&lines, TAIL_FRAME_BYTES + 16, &mut w).unwrap();
        assert_eq!(
            w,
            r#"{"ok":true,"truncated":true,"events":[{"n":2},{"n":3}]}"#
        );
        w.clear();
        write_tail_reply(&lines, 0, &mut w).unwrap();
        assert_eq!(w, r#"{"ok":true,"truncated":true,"events":[]}"#);
        w.clear();
        write_tail_reply::<&str, _>(&[], 0, &mut w).unwrap();
        assert_eq!(w, r#"{"ok":true,"truncated":false,"events":[]}"#);
    }

    #[test]
    fn appended_reply_has_its_keys_in_order() {
        let mut w = std::string::String::new();
        write_appended_reply(u64::MAX, "ab12", &mut w).unwrap();
        assert_eq!(
            w,
            r#"{"hash":"ab12","line":18446744073709551615,"ok":true}"#
        );
    }

    #[test]
    fn pipeline_calls_read_their_input() {
        let read =
            |m, p| read_pipeline_call(m, p, Mode::Full).map(|r| r.map_err(|e| e.to_string()));
        assert_eq!(
            read(Method::PipelineStart, "{}"),
            Some(Ok(Input::Start(Mode::Full)))
        );
        assert_eq!(
            read(Method::PipelineStart, r#"{"mode":"collect"}"#),
            Some(Ok(Input::Start(Mode::Collect)))
        );
        assert_eq!(
            read(Method::PipelineStart, r#"{"mode":"both"}"#),
            Some(Err(r#"params.mode: must be "collect" or "full""#.into()))
        );
        assert_eq!(
            read(Method::PipelineStart, r#"{"mode":"full","x":1}"#),
            Some(Err("params.x: unknown field (expected one of: mode)".into()))
        );
        assert_eq!(
            read(Method::PipelineTrainNow, "{}"),
            Some(Ok(Input::TrainNow))
        );
        assert_eq!(
            read(Method::PipelineStop, r#"{"mode":"full"}"#),
            Some(Err(
                "params.mode: unknown field (this object takes no fields)".into()
            ))
        );
        for &m in Method::ALL {
            assert_eq!(read(m, "{}").is_some(), m.is_pipeline_control(), "{m}");
        }
    }
}
