//! What a daemon's HTTP listener answers besides the framed protocol's replies: its refusals
//! (status, error code and message), the bearer-token rule, the probe bodies (`/health`,
//! `/healthz`, `/readyz`) and the dashboard's `train_now` answer. Routing and the HTTP
//! machinery are the host's; what the listener says is decided here, so every host answers
//! the same requests with the same status and bytes (see `docs/PROTOCOL.md`, "HTTP").
//!
//! ```
//! use heidi_core::proto::http_answers::{HttpAnswer, bearer_matches, write_readyz};
//! use heidi_core::proto::http_guard::Header;
//!
//! assert!(bearer_matches(Header::One(b"Bearer s3cret"), b"s3cret"));
//! assert!(!bearer_matches(Header::Absent, b"s3cret"));
//! assert_eq!(HttpAnswer::Unauthorized.status(), 401);
//!
//! let mut body = String::new();
//! let status = write_readyz(false, [("db", "unhealthy")], &mut body).unwrap();
//! assert_eq!(status, 503);
//! assert_eq!(
//!     body,
//!     r#"{"failing":[{"name":"db","status":"unhealthy"}],"ready":false,"reason":"checks"}"#
//! );
//! ```

use core::fmt::{self, Write};

use super::http_guard::Header;
use super::{ErrorCode, TOO_MANY_CONNECTIONS};
use crate::json::escape::write_quoted;

/// `GET /health`'s body (200).
pub const HEALTH_BODY: &str = r#"{"health":"ok"}"#;

/// `GET /healthz`'s body (200): the process answers.
pub const LIVE_BODY: &str = r#"{"status":"ok"}"#;

/// A refusal of the HTTP listener itself, answered with the error reply shape
/// (`{"error":true,"code":…,"message":…}`) and [`status`](HttpAnswer::status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HttpAnswer {
    /// No route has this path (404).
    NoSuchRoute,
    /// The route exists, not for this method (405).
    MethodNotAllowed,
    /// A token is configured and the request's `Authorization` is not `Bearer <token>` (401,
    /// with [`challenge`](HttpAnswer::challenge)).
    Unauthorized,
    /// The request's body is longer than the request limit (413).
    BodyTooLarge {
        /// The limit, in bytes.
        limit_bytes: usize,
    },
    /// The listener holds as many connections as it may (503, with
    /// [`retry_after_s`](HttpAnswer::retry_after_s)); the connection is closed after it.
    TooManyConnections,
}

impl HttpAnswer {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            HttpAnswer::NoSuchRoute => 404,
            HttpAnswer::MethodNotAllowed => 405,
            HttpAnswer::Unauthorized => 401,
            HttpAnswer::BodyTooLarge { .. } => 413,
            HttpAnswer::TooManyConnections => 503,
        }
    }

    /// The error reply's code.
    pub fn code(self) -> ErrorCode {
        match self {
            HttpAnswer::NoSuchRoute | HttpAnswer::MethodNotAllowed => ErrorCode::BadRequest,
            HttpAnswer::Unauthorized => ErrorCode::Refused,
            HttpAnswer::BodyTooLarge { .. } => ErrorCode::FrameTooLarge,
            HttpAnswer::TooManyConnections => ErrorCode::Overloaded,
        }
    }

    /// The `WWW-Authenticate` header's value the answer carries, if any.
    pub fn challenge(self) -> Option<&'static str> {
        match self {
            HttpAnswer::Unauthorized => Some("Bearer"),
            _ => None,
        }
    }

    /// The `Retry-After` header's value (seconds) the answer carries, if any.
    pub fn retry_after_s(self) -> Option<u32> {
        match self {
            HttpAnswer::TooManyConnections => Some(1),
            _ => None,
        }
    }
}

/// The error reply's message.
impl fmt::Display for HttpAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpAnswer::NoSuchRoute => f.write_str("no such route"),
            HttpAnswer::MethodNotAllowed => f.write_str("method not allowed on this route"),
            HttpAnswer::Unauthorized => f.write_str("missing or wrong bearer token"),
            HttpAnswer::BodyTooLarge { limit_bytes } => {
                write!(f, "request body exceeds the limit of {limit_bytes} bytes")
            }
            HttpAnswer::TooManyConnections => f.write_str(TOO_MANY_CONNECTIONS),
        }
    }
}

/// Longest bearer token, in bytes.
pub const TOKEN_MAX_BYTES: usize = 4096;

/// Shortest bearer token a listener may be configured with, in bytes (a client sends the
/// token it is given).
pub const TOKEN_MIN_BYTES: usize = 16;

/// What is wrong with a bearer token's text; `Display` says what is expected, never the
/// text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BadToken {
    /// No text.
    Empty,
    /// Longer than [`TOKEN_MAX_BYTES`].
    TooLong,
    /// A byte that is not printable ASCII, or a space.
    NotPrintable,
    /// Shorter than [`TOKEN_MIN_BYTES`] (a listener's token only).
    TooShort,
}

impl fmt::Display for BadToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadToken::Empty => f.write_str("a non-empty token"),
            BadToken::TooLong => write!(f, "a token of at most {TOKEN_MAX_BYTES} bytes"),
            BadToken::NotPrintable => f.write_str("a token of printable ASCII without spaces"),
            BadToken::TooShort => write!(f, "a token of at least {TOKEN_MIN_BYTES} characters"),
        }
    }
}

/// Checks a bearer token's text: 1 to [`TOKEN_MAX_BYTES`] bytes of printable ASCII without
/// spaces (what an `Authorization` header can carry as given).
pub fn check_token(token: &[u8]) -> Result<(), BadToken> {
    if token.is_empty() {
        return Err(BadToken::Empty);
    }
    if token.len() > TOKEN_MAX_BYTES {
        return Err(BadToken::TooLong);
    }
    if !token.iter().all(u8::is_ascii_graphic) {
        return Err(BadToken::NotPrintable);
    }
    Ok(())
}

/// Checks the token a listener is configured with: [`check_token`], and at least
/// [`TOKEN_MIN_BYTES`] long (a short token is guessed).
pub fn check_listener_token(token: &[u8]) -> Result<(), BadToken> {
    check_token(token)?;
    if token.len() < TOKEN_MIN_BYTES {
        return Err(BadToken::TooShort);
    }
    Ok(())
}

/// Why a listener may not be bound where it was asked to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BindRefusal {
    /// The address is not loopback and the operator did not allow it.
    NotAllowed,
    /// The address is not loopback and no bearer token guards the listener.
    NoToken,
}

/// Whether a listener may be bound to an address (`loopback`: whether it is a loopback
/// address): loopback always; any other only when the operator `allowed` it and a bearer
/// `token` guards it (a browser never sends one by itself, so a page cannot reach it).
pub fn check_bind(loopback: bool, allowed: bool, token: bool) -> Result<(), BindRefusal> {
    match (loopback, allowed, token) {
        (true, _, _) => Ok(()),
        (false, false, _) => Err(BindRefusal::NotAllowed),
        (false, true, false) => Err(BindRefusal::NoToken),
        (false, true, true) => Ok(()),
    }
}

/// Whether the request's `Authorization` header names `expected` as a bearer token: the
/// scheme `Bearer` in any case, one space, the token (surrounding spaces and tabs ignored).
/// Absent, repeated, or another scheme: no. The token is compared in time that depends on
/// its length only, not on where it differs.
pub fn bearer_matches(authorization: Header<'_>, expected: &[u8]) -> bool {
    let Header::One(value) = authorization else {
        return false;
    };
    let Some(space) = value.iter().position(|&b| b == b' ') else {
        return false;
    };
    let (scheme, token) = (&value[..space], trim(&value[space + 1..]));
    scheme.eq_ignore_ascii_case(b"bearer") && constant_time_eq(token, expected)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The HTTP status of a dashboard command the pipeline refused with `code`: 409 for
/// `REFUSED` (the pipeline's state does not allow it now), 503 for anything else (the
/// daemon is stopping or its pipeline cannot take commands).
pub fn command_refused_status(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::Refused => 409,
        _ => 503,
    }
}

/// `POST /api/v1/action/train_now`'s body once the command is carried out:
/// `{"accepted":true,"pipeline":{…},"status":"train initiated"}` (the original daemon's
/// `status`, which its clients read), with the pipeline's status document (`pipeline`, JSON
/// text from [`write_status`](crate::pipeline::write_status), copied as it is).
pub fn write_train_accepted<W: Write>(pipeline: &str, w: &mut W) -> fmt::Result {
    write!(
        w,
        "{{\"accepted\":true,\"pipeline\":{pipeline},\"status\":\"train initiated\"}}"
    )
}

/// `GET /readyz`'s body; returns its HTTP status. Ready (200, `{"ready":true}`) unless the
/// daemon is `stopping` (503, `{"ready":false,"reason":"stopping"}`) or a readiness check is
/// `failing` (pairs of its name and status; 503,
/// `{"failing":[{"name":…,"status":…},…],"ready":false,"reason":"checks"}`).
pub fn write_readyz<'a, W: Write>(
    stopping: bool,
    failing: impl IntoIterator<Item = (&'a str, &'a str)>,
    w: &mut W,
) -> Result<u16, fmt::Error> {
    if stopping {
        w.write_str(r#"{"ready":false,"reason":"stopping"}"#)?;
        return Ok(503);
    }
    let mut failing = failing.into_iter().peekable();
    if failing.peek().is_none() {
        w.write_str(r#"{"ready":true}"#)?;
        return Ok(200);
    }
    w.write_str("{\"failing\":[")?;
    for (i, (name, status)) in failing.enumerate() {
        if i > 0 {
            w.write_char(',')?;
        }
        w.write_str("{\"name\":")?;
        write_quoted(w, name)?;
        w.write_str(",\"status\":")?;
        write_quoted(w, status)?;
        w.write_char('}')?;
    }
    w.write_str(r#"],"ready":false,"reason":"checks"}"#)?;
    Ok(503)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::{String, ToString};

    #[test]
    fn binding_beyond_loopback_needs_leave_and_a_token() {
        assert_eq!(check_bind(true, false, false), Ok(()));
        assert_eq!(check_bind(false, false, true), Err(BindRefusal::NotAllowed));
        assert_eq!(check_bind(false, true, false), Err(BindRefusal::NoToken));
        assert_eq!(check_bind(false, true, true), Ok(()));
    }

    #[test]
    fn token_texts() {
        assert_eq!(check_token(b"a"), Ok(()));
        assert_eq!(check_token(&[b'x'; TOKEN_MAX_BYTES]), Ok(()));
        assert_eq!(
            check_token(&[b'x'; TOKEN_MAX_BYTES + 1]),
            Err(BadToken::TooLong)
        );
        assert_eq!(check_token(b""), Err(BadToken::Empty));
        for bad in ["two words", "tab\there", "line\nbreak", "naïve"] {
            assert_eq!(
                check_token(bad.as_bytes()),
                Err(BadToken::NotPrintable),
                "{bad}"
            );
        }
        assert_eq!(
            check_listener_token(&[b'x'; TOKEN_MIN_BYTES - 1]),
            Err(BadToken::TooShort)
        );
        assert_eq!(check_listener_token(&[b'x'; TOKEN_MIN_BYTES]), Ok(()));
        assert_eq!(
            check_listener_token(b"sixteen chars ok"),
            Err(BadToken::NotPrintable)
        );
        assert_eq!(
            BadToken::TooShort.to_string(),
            "a token of at least 16 characters"
        );
    }

    #[test]
    fn the_bearer_rule() {
        let yes = |v: &[u8]| bearer_matches(Header::One(v), b"abc");
        assert!(yes(b"Bearer abc"));
        assert!(yes(b"bEaReR abc"));
        assert!(yes(b"Bearer   abc \t"));
        assert!(!yes(b"Bearer abd"));
        assert!(!yes(b"Bearer abcd"));
        assert!(!yes(b"Bearer ab"));
        assert!(!yes(b"Bearer "));
        assert!(!yes(b"Basic abc"));
        assert!(!yes(b"Bearerabc"));
        assert!(!yes(b"abc"));
        assert!(!bearer_matches(Header::Repeated, b"abc"));
        assert!(!bearer_matches(Header::Absent, b""));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn refusals_name_their_status_code_and_message() {
        let all = [
            (
                HttpAnswer::NoSuchRoute,
                404,
                ErrorCode::BadRequest,
                "no such route",
            ),
            (
                HttpAnswer::MethodNotAllowed,
                405,
                ErrorCode::BadRequest,
                "method not allowed on this route",
            ),
            (
                HttpAnswer::Unauthorized,
                401,
                ErrorCode::Refused,
                "missing or wrong bearer token",
            ),
            (
                HttpAnswer::BodyTooLarge { limit_bytes: 9 },
                413,
                ErrorCode::FrameTooLarge,
                "request body exceeds the limit of 9 bytes",
            ),
            (
                HttpAnswer::TooManyConnections,
                503,
                ErrorCode::Overloaded,
                "too many connections; retry shortly",
            ),
        ];
        for (answer, status, code, message) in all {
            assert_eq!(
                (answer.status(), answer.code(), answer.to_string().as_str()),
                (status, code, message)
            );
            assert_eq!(answer.challenge().is_some(), status == 401);
            assert_eq!(answer.retry_after_s().is_some(), status == 503);
        }
        assert_eq!(command_refused_status(ErrorCode::Refused), 409);
        assert_eq!(command_refused_status(ErrorCode::Unavailable), 503);
    }

    #[test]
    fn readiness_bodies() {
        let none: [(&str, &str); 0] = [];
        let mut body = String::new();
        assert_eq!(write_readyz(false, none, &mut body), Ok(200));
        assert_eq!(body, r#"{"ready":true}"#);
        body.clear();
        assert_eq!(write_readyz(true, [("x", "y")], &mut body), Ok(503));
        assert_eq!(body, r#"{"ready":false,"reason":"stopping"}"#);
        body.clear();
        let failing = [("a\"b", "unknown"), ("c", "unhealthy")];
        assert_eq!(write_readyz(false, failing, &mut body), Ok(503));
        assert_eq!(
            body,
            r#"{"failing":[{"name":"a\"b","status":"unknown"},{"name":"c","status":"unhealthy"}],"ready":false,"reason":"checks"}"#
        );
        body.clear();
        write_train_accepted(r#"{"state":"IDLE"}"#, &mut body).unwrap();
        assert_eq!(
            body,
            r#"{"accepted":true,"pipeline":{"state":"IDLE"},"status":"train initiated"}"#
        );
    }
}
