//! The HTTP transport: `POST {endpoint}/api/call` with the JSON request as the body, to a
//! loopback endpoint only ([`Endpoint::parse`](crate::endpoint::Endpoint::parse) checks the
//! parsed host). No proxy, no redirects, the reply body capped at [`RESPONSE_MAX_BYTES`].

use std::io;
use std::time::Instant;

use heidi_core::proto::RESPONSE_MAX_BYTES;

use super::{Reply, Request, TransportError, remaining};

/// `POST /api/call` over loopback HTTP.
#[derive(Debug)]
pub(crate) struct HttpTransport {
    url: String,
}

impl HttpTransport {
    /// A transport for the loopback base URL `base` (e.g. `http://127.0.0.1:8080`).
    pub(crate) fn new(base: &url::Url) -> HttpTransport {
        let url = format!("{}/api/call", base.as_str().trim_end_matches('/'));
        HttpTransport { url }
    }

    /// One POST, bounded by `deadline` as ureq's global timeout.
    pub(crate) fn send(
        &self,
        request: &Request,
        deadline: Instant,
    ) -> Result<Reply, TransportError> {
        let left = remaining(deadline, "connecting")?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(left))
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .build()
            .into();
        let mut response = agent
            .post(&self.url)
            .header("content-type", "application/json")
            .send(request.body.as_str())
            .map_err(failure)?;
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(RESPONSE_MAX_BYTES as u64)
            .read_to_string()
            .map_err(failure)?;
        Reply::parse(&body).map_err(|e| match e {
            TransportError::BadReply(why) => {
                TransportError::BadReply(format!("HTTP {status}: {why}"))
            }
            other => other,
        })
    }
}

/// A ureq error as a transport error.
fn failure(e: ureq::Error) -> TransportError {
    match e {
        ureq::Error::Timeout(what) => TransportError::Timeout(format!("({what})")),
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            TransportError::Connect(io::Error::from(io::ErrorKind::ConnectionRefused))
        }
        ureq::Error::Io(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => {
                TransportError::Connect(e)
            }
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                TransportError::Timeout("waiting for the reply".into())
            }
            _ => TransportError::Broken(e.to_string()),
        },
        ureq::Error::BodyExceedsLimit(_) => TransportError::ReplyTooLarge(None),
        other => TransportError::BadReply(other.to_string()),
    }
}
