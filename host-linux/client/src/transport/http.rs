//! The HTTP transport: `POST {endpoint}/api/call` with the JSON request as the body, to a
//! loopback endpoint only ([`Endpoint::parse`](crate::endpoint::Endpoint::parse) checks the
//! parsed host). No proxy, no redirects, the reply body capped at [`RESPONSE_MAX_BYTES`].
//! With a token configured, every request carries `Authorization: Bearer <token>`; loopback
//! only, so the token never crosses a network in clear text.

use std::io;
use std::time::Instant;

use heidi_core::proto::RESPONSE_MAX_BYTES;

use super::{Reply, Request, TransportError, remaining};
use heidi_common::Token;

/// `POST /api/call` over loopback HTTP.
#[derive(Debug)]
pub(crate) struct HttpTransport {
    url: String,
    /// `Authorization: Bearer …` (its `Debug` is redacted).
    token: Option<Token>,
}

impl HttpTransport {
    /// A transport for the loopback base URL `base` (e.g. `http://127.0.0.1:8080`), sending
    /// `token` as a bearer token when there is one.
    pub(crate) fn new(base: &url::Url, token: Option<Token>) -> HttpTransport {
        let url = format!("{}/api/call", base.as_str().trim_end_matches('/'));
        HttpTransport { url, token }
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
        let mut post = agent
            .post(&self.url)
            .header("content-type", "application/json");
        if let Some(token) = &self.token {
            post = post.header("authorization", format!("Bearer {}", token.expose()));
        }
        let mut response = post.send(request.body.as_str()).map_err(failure)?;
        let status = response.status();
        let body = response
            .body_mut()
            .with_config()
            .limit(RESPONSE_MAX_BYTES as u64)
            .read_to_string()
            .map_err(failure)?;
        let mut reply = Reply::parse(&body).map_err(|e| match e {
            TransportError::BadReply(why) => {
                TransportError::BadReply(format!("HTTP {status}: {why}"))
            }
            other => other,
        })?;
        if status == 401 {
            self.explain_unauthorized(&mut reply);
        }
        Ok(reply)
    }

    /// Adds to a `401` error reply's message whether a token was sent and how to send one.
    fn explain_unauthorized(&self, reply: &mut Reply) {
        let hint = match self.token {
            None => "HTTP 401: no token was sent; set HEIDI_KERNEL_TOKEN (heidi: --token-file)",
            Some(_) => "HTTP 401: the daemon refused the token sent",
        };
        if let Some(message) = reply.value.get_mut("message") {
            let text = message.as_str().unwrap_or_default();
            *message = serde_json::Value::from(format!("{text} ({hint})"));
        }
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
