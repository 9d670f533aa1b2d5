//! Transports: one attempt of one call, bounded by a deadline, never retried here (the client
//! retries, in one layer only).

mod http;
mod null;
mod unix;

use std::io;
use std::time::{Duration, Instant};

use heidi_core::proto::{REQUEST_MAX_BYTES, RESPONSE_MAX_BYTES, frame_prefix, write_request};
use heidi_core::retry::AttemptFault;

use super::result::{CallStatus, codes};
use crate::endpoint::Endpoint;
use heidi_common::Token;

pub(crate) use http::HttpTransport;
pub(crate) use null::NullTransport;
pub(crate) use unix::UnixTransport;

/// A request ready to send: the JSON body and its frame prefix (checked against
/// [`REQUEST_MAX_BYTES`]).
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) body: String,
    pub(crate) prefix: [u8; 4],
}

impl Request {
    /// `{"method":…,"params":…,"timestamp":<unix seconds with milliseconds>}`, written without
    /// floating point.
    pub(crate) fn new(
        method: &str,
        params: &serde_json::Value,
        unix_ms: u64,
    ) -> Result<Request, TransportError> {
        let mut body = String::new();
        // Writing into a String cannot fail.
        let _ = write_request(method, &params.to_string(), Some(unix_ms), &mut body);
        let prefix = frame_prefix(body.len(), REQUEST_MAX_BYTES)
            .map_err(|_| TransportError::RequestTooLarge(body.len()))?;
        Ok(Request { body, prefix })
    }
}

/// A reply object and the size of its body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) value: serde_json::Value,
    pub(crate) size: usize,
}

impl Reply {
    /// Parses a reply body, which must be one JSON object.
    pub(crate) fn parse(body: &str) -> Result<Reply, TransportError> {
        match serde_json::from_str::<serde_json::Value>(body) {
            Ok(value) if value.is_object() => Ok(Reply {
                value,
                size: body.len(),
            }),
            Ok(_) => Err(TransportError::BadReply(
                "reply is not a JSON object".into(),
            )),
            Err(e) => Err(TransportError::BadReply(format!("reply is not JSON: {e}"))),
        }
    }
}

/// Why one attempt failed without a usable reply.
#[derive(Debug)]
pub(crate) enum TransportError {
    /// Could not connect.
    Connect(io::Error),
    /// The deadline passed.
    Timeout(String),
    /// The connection broke before a whole reply arrived.
    Broken(String),
    /// The request is longer than [`REQUEST_MAX_BYTES`].
    RequestTooLarge(usize),
    /// The reply is longer than [`RESPONSE_MAX_BYTES`] (its announced length, when known).
    ReplyTooLarge(Option<u64>),
    /// The reply is not a JSON object, or not a valid frame.
    BadReply(String),
}

impl TransportError {
    /// The failure as the core's retry rule knows it ([`AttemptFault::may_retry`]): a
    /// connection refused or reset, or a socket not there yet, is a daemon not (yet)
    /// listening.
    pub(crate) fn fault(&self) -> AttemptFault {
        match self {
            TransportError::Connect(e) => match e.kind() {
                io::ErrorKind::NotFound
                | io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::Interrupted => AttemptFault::NotConnected,
                _ => AttemptFault::Unusable,
            },
            TransportError::Timeout(_) => AttemptFault::TimedOut,
            TransportError::Broken(_) => AttemptFault::Broken,
            _ => AttemptFault::Unusable,
        }
    }

    /// The call status this failure reports.
    pub(crate) fn status(&self) -> CallStatus {
        match self {
            TransportError::Connect(_) | TransportError::Broken(_) => CallStatus::Unavailable,
            TransportError::Timeout(_) => CallStatus::Timeout,
            _ => CallStatus::Error,
        }
    }

    /// The client-side error code, for the failures that have one.
    pub(crate) fn code(&self) -> Option<&'static str> {
        match self {
            TransportError::RequestTooLarge(_) => Some(codes::REQUEST_TOO_LARGE),
            TransportError::ReplyTooLarge(_) => Some(codes::REPLY_TOO_LARGE),
            TransportError::BadReply(_) => Some(codes::BAD_REPLY),
            _ => None,
        }
    }

    /// A one-line description.
    pub(crate) fn reason(&self) -> String {
        match self {
            TransportError::Connect(e) => format!("cannot connect: {e}"),
            TransportError::Timeout(what) => format!("timed out {what}"),
            TransportError::Broken(why) => format!("connection broken: {why}"),
            TransportError::RequestTooLarge(n) => {
                format!("request of {n} bytes exceeds the limit of {REQUEST_MAX_BYTES} bytes")
            }
            TransportError::ReplyTooLarge(n) => {
                let announced = n
                    .map(|n| format!(" ({n} bytes announced)"))
                    .unwrap_or_default();
                format!("reply exceeds the limit of {RESPONSE_MAX_BYTES} bytes{announced}")
            }
            TransportError::BadReply(why) => format!("bad reply: {why}"),
        }
    }
}

/// One of the three transports.
#[derive(Debug)]
pub(crate) enum Transport {
    Unix(UnixTransport),
    Http(HttpTransport),
    Null(NullTransport),
}

impl Transport {
    /// The transport for `endpoint`; `token` is sent on HTTP only.
    pub(crate) fn for_endpoint(endpoint: &Endpoint, token: Option<Token>) -> Transport {
        match endpoint {
            Endpoint::Unix(path) => Transport::Unix(UnixTransport::new(path.clone())),
            Endpoint::Http(url) => Transport::Http(HttpTransport::new(url, token)),
            Endpoint::Null => Transport::Null(NullTransport),
        }
    }

    /// One attempt, finished (or failed) by `deadline`.
    pub(crate) fn send(
        &self,
        request: &Request,
        deadline: Instant,
    ) -> Result<Reply, TransportError> {
        match self {
            Transport::Unix(t) => t.send(request, deadline),
            Transport::Http(t) => t.send(request, deadline),
            Transport::Null(t) => t.send(request, deadline),
        }
    }

    /// Whether this is the null transport.
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Transport::Null(_))
    }
}

/// Time left until `deadline`, or a timeout error naming what was being done.
pub(crate) fn remaining(deadline: Instant, doing: &str) -> Result<Duration, TransportError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(TransportError::Timeout(doing.to_owned()))
    } else {
        Ok(left)
    }
}

/// An I/O error during an exchange, as a transport error.
pub(crate) fn io_failure(e: io::Error, doing: &str) -> TransportError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            TransportError::Timeout(doing.to_owned())
        }
        _ => TransportError::Broken(format!("{doing}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_text_and_limit() {
        let params = serde_json::json!({"a": "x\"y"});
        let r = Request::new("PING", &params, 1_700_000_000_123).unwrap();
        assert_eq!(
            r.body,
            r#"{"method":"PING","params":{"a":"x\"y"},"timestamp":1700000000.123}"#
        );
        assert_eq!(r.prefix, (r.body.len() as u32).to_be_bytes());
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["timestamp"].as_f64(), Some(1_700_000_000.123));
        let r = Request::new("PING", &serde_json::json!({}), 5).unwrap();
        assert!(r.body.ends_with(r#""timestamp":0.005}"#));

        // Exactly at the limit is fine; one byte more is refused.
        let overhead = Request::new("X", &serde_json::json!(""), 0)
            .unwrap()
            .body
            .len();
        let fill = "a".repeat(REQUEST_MAX_BYTES - overhead);
        assert!(Request::new("X", &serde_json::json!(fill), 0).is_ok());
        let over = format!("{fill}a");
        let e = Request::new("X", &serde_json::json!(over), 0).unwrap_err();
        assert!(matches!(e, TransportError::RequestTooLarge(n) if n == REQUEST_MAX_BYTES + 1));
        assert_eq!(e.fault(), AttemptFault::Unusable);
    }

    #[test]
    fn replies_must_be_objects() {
        assert_eq!(Reply::parse(r#"{"ok":true}"#).unwrap().size, 11);
        for bad in ["[1]", "3", "nope", ""] {
            assert!(matches!(
                Reply::parse(bad),
                Err(TransportError::BadReply(_))
            ));
        }
    }
}
