//! Typed requests: `{"method":"PING","params":{},"timestamp":1700000000.123}`.
//!
//! [`Request::parse`] validates the whole frame as strict JSON (nesting at most
//! [`JSON_MAX_DEPTH`] inside a field, with no recursion), then:
//!
//! - `method` (required, a string) is unescaped by serde-json-core (`from_slice_escaped`) into
//!   a fixed buffer and matched exactly against [`Method`]; an unknown name is
//!   [`RequestError::UnknownMethod`] (`UNKNOWN_METHOD`);
//! - `params` (an object; absent or `null` means `{}`) is kept as the raw JSON text of the
//!   object, a slice of the frame, for the host to parse per method;
//! - `timestamp` (optional seconds since the epoch, a JSON number; `null` means absent) is
//!   converted to integer milliseconds at this boundary. No float is ever parsed or stored:
//!   the decimal text is shifted and truncated exactly (see `timestamp.rs`), which is also
//!   more accurate than going through an `f64`;
//! - unknown top-level fields are ignored; a field given twice is an error.
//!
//! ```
//! use heidi_core::proto::{Method, Request};
//!
//! let frame = r#"{"method":"RATE_LIMIT_CONSUME","params":{"key":"u1","cost":2},"timestamp":1700000000.123}"#;
//! let req = Request::parse(frame).unwrap();
//! assert_eq!(req.method, Method::RateLimitConsume);
//! assert_eq!(req.params, r#"{"key":"u1","cost":2}"#);
//! assert_eq!(req.timestamp_ms, Some(1_700_000_000_123));
//! ```

use core::fmt;
use core::ops::Range;

use super::error::ErrorCode;
use super::method::Method;
use super::params::{ParamsMembers, Recorded, RecordedMembers, next_member};
use super::timestamp::seconds_to_millis;
use crate::json::scan::{JSON_MAX_DEPTH, ScanError, Scanner};
use crate::json::unescape::{FixedStr, unescape};

/// At most this many bytes of an unknown method's name are kept for the error message.
pub const METHOD_ECHO_MAX_BYTES: usize = 32;

/// A parsed request, borrowing its `params` from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The raw JSON text of the `params` object, exactly as sent (`{}` when absent or null).
    pub params: &'a str,
    /// `timestamp` in whole milliseconds since the Unix epoch, truncated; `None` when absent.
    pub timestamp_ms: Option<u64>,
    /// The members of `params`, found while scanning the frame.
    recorded: Recorded,
}

/// An unknown method's name as sent, made safe to echo: at most [`METHOD_ECHO_MAX_BYTES`],
/// every byte outside printable ASCII replaced by `?`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MethodName {
    bytes: [u8; METHOD_ECHO_MAX_BYTES],
    len: u8,
}

impl MethodName {
    fn new(name: &[u8]) -> Self {
        let mut bytes = [b'?'; METHOD_ECHO_MAX_BYTES];
        let len = name.len().min(METHOD_ECHO_MAX_BYTES);
        for (dst, &b) in bytes.iter_mut().zip(&name[..len]) {
            if matches!(b, 0x20..=0x7E) {
                *dst = b;
            }
        }
        MethodName {
            bytes,
            len: len as u8,
        }
    }

    /// The safe name (printable ASCII only).
    #[must_use]
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl fmt::Debug for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Why a frame is not a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RequestError {
    /// Not valid JSON (`BAD_JSON`).
    BadJson {
        /// Byte offset of the fault.
        at_byte: u32,
    },
    /// Arrays and objects nested deeper than the limit (`BAD_JSON`).
    TooDeep {
        /// Byte offset where the limit was crossed.
        at_byte: u32,
    },
    /// Valid JSON, but not an object (`BAD_REQUEST`).
    NotAnObject,
    /// No `method` field (`BAD_REQUEST`).
    MissingMethod,
    /// `method` is not a string (`BAD_REQUEST`).
    MethodNotString,
    /// `method` names no known method (`UNKNOWN_METHOD`).
    UnknownMethod {
        /// The name as sent, made safe to echo.
        name: MethodName,
    },
    /// `params` is neither an object nor null (`BAD_REQUEST`).
    ParamsNotObject,
    /// `timestamp` is not a number of seconds in `0..=u64::MAX` ms, nor null (`BAD_REQUEST`).
    BadTimestamp,
    /// A known field appears twice (`BAD_REQUEST`).
    DuplicateField {
        /// The field's name.
        field: &'static str,
    },
}

impl RequestError {
    /// The error reply code for this error.
    #[must_use]
    pub const fn code(&self) -> ErrorCode {
        match self {
            RequestError::BadJson { .. } | RequestError::TooDeep { .. } => ErrorCode::BadJson,
            RequestError::UnknownMethod { .. } => ErrorCode::UnknownMethod,
            _ => ErrorCode::BadRequest,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::BadJson { at_byte } => write!(f, "invalid JSON at byte {at_byte}"),
            RequestError::TooDeep { at_byte } => write!(
                f,
                "JSON nested deeper than {} levels at byte {at_byte}",
                super::JSON_MAX_DEPTH
            ),
            RequestError::NotAnObject => f.write_str("request is not a JSON object"),
            RequestError::MissingMethod => f.write_str("missing field \"method\""),
            RequestError::MethodNotString => f.write_str("\"method\" must be a string"),
            RequestError::UnknownMethod { name } => {
                write!(f, "unknown method \"{}\"", name.as_str())
            }
            RequestError::ParamsNotObject => f.write_str("\"params\" must be an object"),
            RequestError::BadTimestamp => {
                f.write_str("\"timestamp\" must be a non-negative number of seconds")
            }
            RequestError::DuplicateField { field } => write!(f, "duplicate field \"{field}\""),
        }
    }
}

impl core::error::Error for RequestError {}

impl From<ScanError> for RequestError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Syntax(at) => RequestError::BadJson { at_byte: at as u32 },
            ScanError::TooDeep(at) => RequestError::TooDeep { at_byte: at as u32 },
        }
    }
}

/// Spans of the known top-level fields' values.
#[derive(Default)]
struct Fields {
    method: Option<Range<usize>>,
    /// The method string holds an escape.
    method_escaped: bool,
    params: Option<Range<usize>>,
    /// The members of `params`, when it is an object.
    recorded: Recorded,
    timestamp: Option<Range<usize>>,
}

/// The top-level fields a request reads; every other name is ignored.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Method,
    Params,
    Timestamp,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Method => "method",
            Field::Params => "params",
            Field::Timestamp => "timestamp",
        }
    }
}

impl<'a> Request<'a> {
    /// Parses one frame's text. Bounded work: one pass over the frame (recording the members
    /// of `params` on the way), plus serde-json-core over the method string and at most one
    /// unescape per top-level key that has escapes.
    pub fn parse(frame: &'a str) -> Result<Request<'a>, RequestError> {
        let doc = frame.as_bytes();
        let mut fields = Fields::default();
        scan_fields(doc, &mut fields)?;
        let span = fields.method.ok_or(RequestError::MissingMethod)?;
        let method = method(frame, span, fields.method_escaped)?;
        // Members are recorded only for an object, so absent and null `params` have none.
        let params = match fields.params {
            None => "{}",
            Some(r) if doc[r.start] == b'{' => &frame[r],
            Some(r) if &doc[r.clone()] == b"null" => "{}",
            Some(_) => return Err(RequestError::ParamsNotObject),
        };
        let timestamp_ms = match fields.timestamp {
            Some(r) if &doc[r.clone()] != b"null" => Some(timestamp(&doc[r])?),
            _ => None,
        };
        Ok(Request {
            method,
            params,
            timestamp_ms,
            recorded: fields.recorded,
        })
    }

    /// The members of `params`: what [`Members::new`](super::params::Members::new) over
    /// `params` yields, without scanning it again (the parse recorded up to
    /// [`PARAMS_RECORDED_MAX`](super::params::PARAMS_RECORDED_MAX) of them).
    #[must_use]
    pub fn members(&self) -> ParamsMembers<'_, 'a> {
        self.recorded.members(self.params)
    }

    /// [`Request::members`] when the parse recorded them all, in a type of their own (see
    /// [`RecordedMembers`]); `None` when `params` has to be scanned again.
    pub(crate) fn recorded_members(&self) -> Option<RecordedMembers<'_, 'a>> {
        self.recorded.recorded(self.params)
    }
}

/// Walks the top-level object, validating everything, and records the known fields in
/// `fields` (filled in place: it is large, with the members of `params`).
fn scan_fields(doc: &[u8], fields: &mut Fields) -> Result<(), RequestError> {
    let mut sc = Scanner::new(doc);
    sc.ws();
    if sc.peek() != Some(b'{') {
        return Err(not_an_object(doc));
    }
    sc.expect(b'{')?;
    sc.ws();
    if !sc.eat(b'}') {
        loop {
            sc.ws();
            let key_start = sc.pos();
            let escaped = sc.skip_string()?;
            let field = field_of(&doc[key_start..sc.pos()], escaped);
            sc.expect(b':')?;
            sc.ws();
            let start = sc.pos();
            let value = match (field, sc.peek()) {
                (Some(Field::Params), Some(b'{')) => {
                    // A second `params` is refused below, so its members may pile on.
                    let mut first = true;
                    while let Some(member) = next_member(&mut sc, first, JSON_MAX_DEPTH - 1)? {
                        fields.recorded.push(&member, start);
                        first = false;
                    }
                    start..sc.pos()
                }
                (Some(Field::Method), Some(b'"')) => {
                    fields.method_escaped = sc.skip_string()?;
                    start..sc.pos()
                }
                _ => sc.value()?,
            };
            if let Some(field) = field {
                record(fields, field, value)?;
            }
            if !sc.comma_or_close(b'}')? {
                break;
            }
        }
    }
    sc.end()?;
    Ok(())
}

/// The error for a document that does not start with `{`: is it JSON at all?
fn not_an_object(doc: &[u8]) -> RequestError {
    let mut sc = Scanner::new(doc);
    if let Err(e) = sc.value() {
        return e.into();
    }
    match sc.end() {
        Ok(()) => RequestError::NotAnObject,
        Err(e) => e.into(),
    }
}

fn record(fields: &mut Fields, field: Field, value: Range<usize>) -> Result<(), RequestError> {
    let slot = match field {
        Field::Method => &mut fields.method,
        Field::Params => &mut fields.params,
        Field::Timestamp => &mut fields.timestamp,
    };
    if slot.replace(value).is_some() {
        return Err(RequestError::DuplicateField {
            field: field.name(),
        });
    }
    Ok(())
}

/// Which known field the quoted key `key` names (after unescaping, when it has escapes).
fn field_of(key: &[u8], escaped: bool) -> Option<Field> {
    let named = |name: &[u8]| match name {
        b"method" => Some(Field::Method),
        b"params" => Some(Field::Params),
        b"timestamp" => Some(Field::Timestamp),
        _ => None,
    };
    if !escaped {
        // The two names every request sends are 8 bytes with their quotes: one compare each.
        match <&[u8; 8]>::try_from(key) {
            Ok(b"\"method\"") => return Some(Field::Method),
            Ok(b"\"params\"") => return Some(Field::Params),
            _ => return named(&key[1..key.len() - 1]),
        }
    }
    named(unescape::<16>(key)?.as_str().as_bytes())
}

fn method(frame: &str, span: Range<usize>, escaped: bool) -> Result<Method, RequestError> {
    let quoted = &frame.as_bytes()[span.clone()];
    if quoted[0] != b'"' {
        return Err(RequestError::MethodNotString);
    }
    // The usual case, no escapes: match the text between the quotes as it stands.
    if !escaped {
        if let Ok(m) = frame[span.start + 1..span.end - 1].parse() {
            return Ok(m);
        }
    }
    let name: Option<FixedStr<METHOD_ECHO_MAX_BYTES>> = unescape(quoted);
    if let Some(m) = name.as_ref().and_then(|n| n.as_str().parse().ok()) {
        return Ok(m);
    }
    let shown = match &name {
        Some(n) => n.as_str().as_bytes(),
        None => &quoted[1..quoted.len() - 1], // too long or a bad escape: show it as sent
    };
    Err(RequestError::UnknownMethod {
        name: MethodName::new(shown),
    })
}

fn timestamp(text: &[u8]) -> Result<u64, RequestError> {
    if !matches!(text[0], b'-' | b'0'..=b'9') {
        return Err(RequestError::BadTimestamp);
    }
    seconds_to_millis(text).ok_or(RequestError::BadTimestamp)
}

/// Writes a request as clients send it: `{"method":…,"params":…,"timestamp":S.mmm}`.
/// `method` is any name (escaped as needed: a host answers an unknown one
/// `UNKNOWN_METHOD`), `params` a JSON object's text copied as it is, and the timestamp (Unix
/// milliseconds, when given) is written as seconds with three decimals, without a float.
pub fn write_request<W: fmt::Write>(
    method: &str,
    params: &str,
    timestamp_ms: Option<u64>,
    w: &mut W,
) -> fmt::Result {
    w.write_str("{\"method\":")?;
    crate::json::escape::write_quoted(w, method)?;
    write!(w, ",\"params\":{params}")?;
    if let Some(ms) = timestamp_ms {
        write!(w, ",\"timestamp\":{}.{:03}", ms / 1000, ms % 1000)?;
    }
    w.write_char('}')
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_written_request_parses_back() {
        extern crate std;
        let mut text = std::string::String::new();
        super::write_request(
            "RATE_LIMIT_CHECK",
            r#"{"key":"k"}"#,
            Some(1_700_000_000_007),
            &mut text,
        )
        .unwrap();
        assert_eq!(
            text,
            r#"{"method":"RATE_LIMIT_CHECK","params":{"key":"k"},"timestamp":1700000000.007}"#
        );
        let req = super::Request::parse(&text).unwrap();
        assert_eq!(req.timestamp_ms, Some(1_700_000_000_007));
        assert_eq!(req.params, r#"{"key":"k"}"#);
        text.clear();
        super::write_request("a\"b", "{}", None, &mut text).unwrap();
        assert_eq!(text, r#"{"method":"a\"b","params":{}}"#);
    }

    use super::*;
    use crate::proto::params::{Members, PARAMS_RECORDED_MAX};

    fn parse(s: &str) -> Result<Request<'_>, RequestError> {
        Request::parse(s)
    }

    #[test]
    fn the_bridge_clients_request() {
        let req = parse(r#"{"method":"PING","params":{},"timestamp":1700000000.123}"#).unwrap();
        assert_eq!(
            req,
            Request {
                method: Method::Ping,
                params: "{}",
                timestamp_ms: Some(1_700_000_000_123),
                recorded: Recorded::default(),
            }
        );
    }

    #[test]
    fn params_span_is_exact_with_nesting_and_escapes() {
        let frame = r#" { "extra" : [1,{"a":"}"}], "params" : {"s":"q\"}\\","n":[{},[]],"u":"\u00e9"} , "method":"APPLY_POLICY" } "#;
        let req = parse(frame).unwrap();
        assert_eq!(req.method, Method::ApplyPolicy);
        assert_eq!(req.params, r#"{"s":"q\"}\\","n":[{},[]],"u":"\u00e9"}"#);
        assert_eq!(req.timestamp_ms, None);
    }

    /// The members the parse recorded are exactly what a second scan of `params` finds.
    fn assert_members_match(frame: &str) {
        let req = parse(frame).unwrap();
        let mut scanned = Members::new(req.params);
        for recorded in req.members() {
            assert_eq!(Some(recorded), scanned.next(), "{frame}");
        }
        assert_eq!(scanned.next(), None, "{frame}");
    }

    #[test]
    fn recorded_members_match_a_second_scan() {
        for frame in [
            r#"{"method":"RATE_LIMIT_CHECK","params":{"key":"k1","operation":"api_call","cost":1}}"#,
            r#" { "params" : { "k\u0065y" : "a\"b" , "n" : [ 1 , {"x":{}} ] ,"e":{} } , "method":"PING" } "#,
            r#"{"method":"PING","params":{}}"#,
            r#"{"method":"PING","params":null}"#,
            r#"{"method":"PING"}"#,
            r#"{"method":"PING","params":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8}}"#,
            r#"{"method":"PING","params":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":"9"}}"#,
            r#"{"params":{"s":"ü ✓","t":true,"f":-1.5e3,"z":null},"method":"PING"}"#,
        ] {
            assert_members_match(frame);
        }
        let nine = parse(r#"{"method":"PING","params":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":"9"}}"#).unwrap();
        assert_eq!(nine.members().count(), PARAMS_RECORDED_MAX + 1);
        // Offsets past u16 are not recorded; the members are scanned again instead.
        let mut long = heapless::String::<70_100>::new();
        long.push_str(r#"{"method":"PING","params":{"pad":""#)
            .unwrap();
        for _ in 0..70_000 {
            long.push('x').unwrap();
        }
        long.push_str(r#"","last":2}}"#).unwrap();
        assert_members_match(&long);
        let last = parse(&long).unwrap().members().last().unwrap().unwrap();
        assert_eq!((last.name(), last.as_u64()), (Some("last"), Some(2)));
    }

    #[test]
    fn params_nesting_limit_is_exact() {
        let frame = |depth: usize| {
            let mut s = heapless::String::<256>::new();
            s.push_str(r#"{"method":"PING","params":{"a":"#).unwrap();
            for _ in 0..depth {
                s.push('[').unwrap();
            }
            for _ in 0..depth {
                s.push(']').unwrap();
            }
            s.push_str("}}").unwrap();
            s
        };
        // `params` is one level, so its members may nest 31 more.
        assert!(parse(&frame(JSON_MAX_DEPTH - 1)).is_ok());
        assert_members_match(&frame(JSON_MAX_DEPTH - 1));
        assert!(matches!(
            parse(&frame(JSON_MAX_DEPTH)),
            Err(RequestError::TooDeep { .. })
        ));
    }

    #[test]
    fn optional_fields() {
        let req = parse(r#"{"method":"STATUS"}"#).unwrap();
        assert_eq!((req.params, req.timestamp_ms), ("{}", None));
        let req = parse(r#"{"method":"STATUS","params":null,"timestamp":null}"#).unwrap();
        assert_eq!((req.params, req.timestamp_ms), ("{}", None));
        let req = parse(r#"{"timestamp":1700000000,"method":"GET_POLICY"}"#).unwrap();
        assert_eq!(req.timestamp_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn escaped_keys_and_method_are_unescaped() {
        let req = parse(r#"{"m\u0065thod":"P\u0049NG","par\u0061ms":{"x":1}}"#).unwrap();
        assert_eq!((req.method, req.params), (Method::Ping, r#"{"x":1}"#));
    }

    #[test]
    fn unknown_methods_carry_a_safe_name() {
        let e = parse(r#"{"method":"ping"}"#).unwrap_err();
        assert_eq!(e.code(), ErrorCode::UnknownMethod);
        let RequestError::UnknownMethod { name } = e else {
            panic!("{e:?}")
        };
        assert_eq!(name.as_str(), "ping");
        let e = parse(r#"{"method":"a\nb\u00e9"}"#).unwrap_err();
        assert!(matches!(e, RequestError::UnknownMethod { name } if name.as_str() == "a?b??"));
        let long = r#"{"method":"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"}"#;
        let e = parse(long).unwrap_err();
        assert!(
            matches!(e, RequestError::UnknownMethod { name } if name.as_str() == "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345")
        );
        let e = parse(r#"{"method":"\ud800"}"#).unwrap_err();
        assert!(matches!(e, RequestError::UnknownMethod { name } if name.as_str() == "\\ud800"));
    }

    #[test]
    fn bad_requests() {
        use RequestError as E;
        assert_eq!(parse("[1]"), Err(E::NotAnObject));
        assert_eq!(parse(" 12 "), Err(E::NotAnObject));
        assert_eq!(parse("{}"), Err(E::MissingMethod));
        assert_eq!(parse(r#"{"params":{}}"#), Err(E::MissingMethod));
        assert_eq!(parse(r#"{"method":1}"#), Err(E::MethodNotString));
        assert_eq!(
            parse(r#"{"method":"PING","params":[]}"#),
            Err(E::ParamsNotObject)
        );
        assert_eq!(
            parse(r#"{"method":"PING","params":"{}"}"#),
            Err(E::ParamsNotObject)
        );
        assert_eq!(
            parse(r#"{"method":"PING","timestamp":"1"}"#),
            Err(E::BadTimestamp)
        );
        assert_eq!(
            parse(r#"{"method":"PING","timestamp":-1}"#),
            Err(E::BadTimestamp)
        );
        assert_eq!(
            parse(r#"{"method":"PING","timestamp":1e30}"#),
            Err(E::BadTimestamp)
        );
        assert_eq!(
            parse(r#"{"method":"PING","method":"PING"}"#),
            Err(E::DuplicateField { field: "method" })
        );
        for e in [
            E::NotAnObject,
            E::MissingMethod,
            E::ParamsNotObject,
            E::BadTimestamp,
        ] {
            assert_eq!(e.code(), ErrorCode::BadRequest);
        }
    }

    #[test]
    fn bad_json() {
        for s in [
            "",
            "{",
            r#"{"method":"PING"} x"#,
            r#"{"method":"PING",}"#,
            "[1",
            "nul",
        ] {
            let e = parse(s).unwrap_err();
            assert!(matches!(e, RequestError::BadJson { .. }), "{s:?}: {e:?}");
            assert_eq!(e.code(), ErrorCode::BadJson);
        }
        assert_eq!(parse("{x"), Err(RequestError::BadJson { at_byte: 1 }));
        let mut deep = [b'['; 100];
        deep[..22].copy_from_slice(br#"{"method":"PING","p":["#);
        let e = parse(core::str::from_utf8(&deep).unwrap()).unwrap_err();
        assert!(matches!(e, RequestError::TooDeep { .. }));
        assert_eq!(e.code(), ErrorCode::BadJson);
    }
}
