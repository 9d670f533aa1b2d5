//! Which HTTP requests a daemon's listener serves, judged by the request head alone: `Host`,
//! `Origin` and `Content-Type`.
//!
//! A listener on loopback is not a security boundary against the user's own browser: any page
//! can send it a "simple" cross-origin `POST` (CSRF), and a page whose name the attacker
//! re-points at `127.0.0.1` (DNS rebinding) can even read the replies, because to the browser
//! the daemon is then the page's own origin. [`HttpGuard::admit`] closes both doors:
//!
//! 1. **`Host`, on every request.** On a loopback listener it must be a loopback literal
//!    (`127.0.0.0/8`, `[::1]`) or `localhost` (any case), with the listener's port (no port
//!    means 80). A rebinding page always sends its own name (`evil.example:8080`), so it is
//!    refused ([`Refusal::status`] 421), whatever it requests. On a listener bound elsewhere
//!    (the daemon then requires a bearer token, which a browser never adds by itself) any
//!    well-formed `Host` is accepted: clients reach it by names the daemon cannot know.
//! 2. **`Origin`, on state-changing requests** (every method but `GET`, `HEAD`, `OPTIONS`,
//!    `TRACE`). Absent (a non-browser client) is accepted; otherwise it must be the daemon's
//!    own origin: `http://` and, on loopback, a loopback name with the listener's port, else
//!    the same authority as `Host`. `null` (sandboxed frames, `file:` pages) is refused (403).
//! 3. **`Content-Type`, on state-changing requests.** A body must be declared
//!    `application/json` (parameters: only `charset=utf-8`); a declared type that is not JSON
//!    is refused even without a body, so an empty HTML form cannot post either (415). A
//!    browser cannot send `application/json` cross-origin without a CORS preflight, which the
//!    daemon never grants.
//!
//! A header that occurs twice is refused: there is no telling which copy a proxy or the
//! browser meant.
//!
//! ```
//! use heidi_core::proto::http_guard::{Header, HttpGuard, Refusal, RequestHead};
//!
//! let guard = HttpGuard { port: 8080, loopback: true };
//! // The reproduction: a page posting text/plain to /api/call through a rebound name.
//! let attack = RequestHead {
//!     method: b"POST",
//!     host: Header::One(b"evil.example:80"),
//!     origin: Header::One(b"http://evil.example"),
//!     content_type: Header::One(b"text/plain"),
//!     has_body: true,
//! };
//! assert_eq!(guard.admit(&attack), Err(Refusal::HostNotLoopback));
//! // `curl -X POST http://127.0.0.1:8080/api/v1/action/train_now`: no body, no Origin.
//! let curl = RequestHead {
//!     method: b"POST",
//!     host: Header::One(b"127.0.0.1:8080"),
//!     origin: Header::Absent,
//!     content_type: Header::Absent,
//!     has_body: false,
//! };
//! assert_eq!(guard.admit(&curl), Ok(()));
//! ```

use super::ErrorCode;
use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

/// The listener a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpGuard {
    /// The port the listener is bound to.
    pub port: u16,
    /// Whether it is bound to a loopback address: then only loopback names pass as `Host`.
    pub loopback: bool,
}

/// How often a header occurs in a request, and its value when it occurs once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header<'a> {
    /// Not sent.
    Absent,
    /// Sent once, with this value (surrounding whitespace already trimmed by HTTP parsing).
    One(&'a [u8]),
    /// Sent more than once.
    Repeated,
}

/// What [`HttpGuard::admit`] reads of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The request method, e.g. `b"POST"` (methods are case-sensitive).
    pub method: &'a [u8],
    /// `Host`, or the authority of an absolute-form request target (which wins over `Host`).
    pub host: Header<'a>,
    /// `Origin`.
    pub origin: Header<'a>,
    /// `Content-Type`.
    pub content_type: Header<'a>,
    /// Whether the request carries a body (a non-zero `Content-Length`, or chunked).
    pub has_body: bool,
}

/// Why a request is refused. [`Refusal::status`] is the HTTP status to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Refusal {
    /// No `Host` header (HTTP/1.1 requires one).
    HostMissing,
    /// `Host` sent twice.
    HostRepeated,
    /// `Host` is not `name[:port]`, `ipv4[:port]` or `[ipv6][:port]`.
    HostMalformed,
    /// `Host` names something else than loopback on a loopback listener.
    HostNotLoopback,
    /// `Host` carries another port than the listener's.
    HostWrongPort,
    /// `Origin: null`.
    OriginNull,
    /// `Origin` sent twice, or not `http://authority`.
    OriginMalformed,
    /// `Origin` is another origin than the daemon's own.
    OriginForeign,
    /// A body without `Content-Type`.
    ContentTypeMissing,
    /// `Content-Type` is not `application/json` (or sent twice, or with another charset).
    ContentTypeNotJson,
}

impl Refusal {
    /// The HTTP status: 421 (Misdirected Request) for `Host`, 403 for `Origin`, 415
    /// (Unsupported Media Type) for `Content-Type`.
    pub fn status(self) -> u16 {
        match self {
            Refusal::HostMissing
            | Refusal::HostRepeated
            | Refusal::HostMalformed
            | Refusal::HostNotLoopback
            | Refusal::HostWrongPort => 421,
            Refusal::OriginNull | Refusal::OriginMalformed | Refusal::OriginForeign => 403,
            Refusal::ContentTypeMissing | Refusal::ContentTypeNotJson => 415,
        }
    }

    /// The error reply's code: `BAD_REQUEST` for `Content-Type`, `REFUSED` for the rest.
    pub fn code(self) -> ErrorCode {
        match self {
            Refusal::ContentTypeMissing | Refusal::ContentTypeNotJson => ErrorCode::BadRequest,
            _ => ErrorCode::Refused,
        }
    }

    /// What is wrong, for the error reply.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::HostMissing => "the request has no Host header",
            Refusal::HostRepeated => "the request has more than one Host header",
            Refusal::HostMalformed => "the Host header is not a host name or address",
            Refusal::HostNotLoopback => {
                "the Host header must name loopback (127.0.0.0/8, [::1] or localhost)"
            }
            Refusal::HostWrongPort => "the Host header names another port than this listener's",
            Refusal::OriginNull => "requests from an opaque origin (Origin: null) are refused",
            Refusal::OriginMalformed => "the Origin header is not one http:// origin",
            Refusal::OriginForeign => "cross-origin requests are refused",
            Refusal::ContentTypeMissing => "a request body needs Content-Type: application/json",
            Refusal::ContentTypeNotJson => "Content-Type must be application/json",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for Refusal {}

/// Whether `method` is safe (RFC 9110 §9.2.1): `GET`, `HEAD`, `OPTIONS`, `TRACE`. Every
/// other method counts as state-changing.
pub fn is_safe_method(method: &[u8]) -> bool {
    matches!(method, b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE")
}

impl HttpGuard {
    /// Serves or refuses a request by its head (see the module docs for the rules).
    pub fn admit(&self, head: &RequestHead<'_>) -> Result<(), Refusal> {
        let host = match head.host {
            Header::Absent => return Err(Refusal::HostMissing),
            Header::Repeated => return Err(Refusal::HostRepeated),
            Header::One(value) => Authority::parse(value).ok_or(Refusal::HostMalformed)?,
        };
        if self.loopback {
            if !host.loopback {
                return Err(Refusal::HostNotLoopback);
            }
            if host.port() != self.port {
                return Err(Refusal::HostWrongPort);
            }
        }
        if is_safe_method(head.method) {
            return Ok(());
        }
        self.check_origin(head.origin, &host)?;
        check_content_type(head.content_type, head.has_body)
    }

    fn check_origin(&self, origin: Header<'_>, host: &Authority<'_>) -> Result<(), Refusal> {
        let value = match origin {
            Header::Absent => return Ok(()),
            Header::Repeated => return Err(Refusal::OriginMalformed),
            Header::One(b"null") => return Err(Refusal::OriginNull),
            Header::One(value) => value,
        };
        let origin = strip_prefix_ignore_case(value, b"http://")
            .and_then(Authority::parse)
            .ok_or(Refusal::OriginMalformed)?;
        let own = if self.loopback {
            origin.loopback && origin.port() == self.port
        } else {
            origin.host.eq_ignore_ascii_case(host.host) && origin.port() == host.port()
        };
        if own {
            Ok(())
        } else {
            Err(Refusal::OriginForeign)
        }
    }
}

fn check_content_type(content_type: Header<'_>, has_body: bool) -> Result<(), Refusal> {
    match content_type {
        Header::Absent if has_body => Err(Refusal::ContentTypeMissing),
        Header::Absent => Ok(()),
        Header::Repeated => Err(Refusal::ContentTypeNotJson),
        Header::One(value) if is_json(value) => Ok(()),
        Header::One(_) => Err(Refusal::ContentTypeNotJson),
    }
}

/// `application/json`, any case, optionally with `charset=utf-8` (quoted or not).
fn is_json(value: &[u8]) -> bool {
    let mut parts = value.split(|&b| b == b';');
    let media = trim(parts.next().unwrap_or_default());
    if !media.eq_ignore_ascii_case(b"application/json") {
        return false;
    }
    parts.all(|param| {
        let param = trim(param);
        let Some(eq) = param.iter().position(|&b| b == b'=') else {
            return false;
        };
        let (name, value) = (trim(&param[..eq]), trim(&param[eq + 1..]));
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        name.eq_ignore_ascii_case(b"charset") && value.eq_ignore_ascii_case(b"utf-8")
    })
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

fn strip_prefix_ignore_case<'a>(value: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &value[prefix.len()..])
}

/// Longest host name accepted (DNS: 253 characters, plus a trailing dot).
const HOST_MAX_BYTES: usize = 255;

/// `host[:port]` of a `Host` header or an origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Authority<'a> {
    /// The host as sent (brackets included for IPv6).
    host: &'a [u8],
    /// Whether it names loopback: `localhost`, `127.0.0.0/8` or `[::1]`.
    loopback: bool,
    /// The explicit port, if any.
    port: Option<u16>,
}

impl<'a> Authority<'a> {
    fn parse(value: &'a [u8]) -> Option<Authority<'a>> {
        let (host, rest, loopback) = if value.first() == Some(&b'[') {
            let close = value.iter().position(|&b| b == b']')?;
            let inside = core::str::from_utf8(&value[1..close]).ok()?;
            let ip: Ipv6Addr = inside.parse().ok()?;
            (&value[..=close], &value[close + 1..], ip.is_loopback())
        } else {
            let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
            let host = &value[..end];
            if host.is_empty() || host.len() > HOST_MAX_BYTES || !host.iter().all(is_name_byte) {
                return None;
            }
            let loopback = host.eq_ignore_ascii_case(b"localhost")
                || core::str::from_utf8(host)
                    .ok()
                    .and_then(|h| h.parse::<Ipv4Addr>().ok())
                    .is_some_and(|ip| ip.is_loopback());
            (host, &value[end..], loopback)
        };
        let port = match rest {
            [] => None,
            [b':', digits @ ..] => Some(parse_port(digits)?),
            _ => return None,
        };
        Some(Authority {
            host,
            loopback,
            port,
        })
    }

    /// The port, 80 when none is given (the `http` default).
    fn port(&self) -> u16 {
        self.port.unwrap_or(80)
    }
}

/// Letters, digits, `-`, `.`, `_`, `~`: a DNS name or an IPv4 literal. No `@` (userinfo), no
/// `%` (the daemon's names need no escapes), no `/`.
fn is_name_byte(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// 1 to 5 decimal digits, at most 65535.
fn parse_port(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).ok()
}

#[cfg(test)]
mod tests;
