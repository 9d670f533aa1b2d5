//! The upstream as the engine sees it: [`UpstreamApi`], implemented over gRPC by
//! [`GrpcUpstream`] and by fakes in tests. The engine applies the deadline around every call
//! (so a fake is held to it too); [`GrpcUpstream`] also sends it as `grpc-timeout`.

use crate::proto::upstream_client::UpstreamClient;
use crate::proto::{BatchReceipt, Query, QueryResponse, TransactionBatch};
use crate::sidecar::config::UPSTREAM_MESSAGE_LIMIT_BYTES;
use heidi_core::upstream::{REASON_METADATA, Reason, Verdict, classify, failed_call_code};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

/// An upstream call in progress.
pub type CallFuture<T> = Pin<Box<dyn Future<Output = Result<T, Status>> + Send>>;

/// What the sidecar calls upstream.
pub trait UpstreamApi: Send + Sync + 'static {
    /// `Upstream.ApplyBatch`: one receipt per transaction, in order.
    fn apply_batch(&self, batch: TransactionBatch, deadline: Duration) -> CallFuture<BatchReceipt>;
    /// `Upstream.Query`.
    fn query(&self, query: Query, deadline: Duration) -> CallFuture<QueryResponse>;
}

/// The upstream over one lazily connected HTTP/2 channel (calls multiplex on it; a
/// connection that fails is re-established by the next call). Messages either way are at
/// most [`UPSTREAM_MESSAGE_LIMIT_BYTES`], the bound `BATCH_MAX_BYTES` is checked against.
#[derive(Clone, Debug)]
pub struct GrpcUpstream {
    client: UpstreamClient<Channel>,
}

impl GrpcUpstream {
    /// A client of `url` (http:// or https://, with `tls` for the latter); connecting waits
    /// at most `connect_timeout`. Nothing is dialled until the first call.
    pub fn new(
        url: &str,
        tls: Option<ClientTlsConfig>,
        connect_timeout: Duration,
    ) -> Result<GrpcUpstream, tonic::transport::Error> {
        let mut endpoint = Endpoint::from_shared(url.to_owned())?
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true);
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls)?;
        }
        let client = UpstreamClient::new(endpoint.connect_lazy())
            .max_encoding_message_size(UPSTREAM_MESSAGE_LIMIT_BYTES)
            .max_decoding_message_size(UPSTREAM_MESSAGE_LIMIT_BYTES);
        Ok(GrpcUpstream { client })
    }
}

impl UpstreamApi for GrpcUpstream {
    fn apply_batch(&self, batch: TransactionBatch, deadline: Duration) -> CallFuture<BatchReceipt> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let mut request = Request::new(batch);
            request.set_timeout(deadline);
            let started = std::time::Instant::now();
            let reply = client
                .apply_batch(request)
                .await
                .map_err(|s| deadline_as_such(s, started.elapsed() >= deadline))?;
            Ok(reply.into_inner())
        })
    }

    fn query(&self, query: Query, deadline: Duration) -> CallFuture<QueryResponse> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let mut request = Request::new(query);
            request.set_timeout(deadline);
            let started = std::time::Instant::now();
            let reply = client
                .query(request)
                .await
                .map_err(|s| deadline_as_such(s, started.elapsed() >= deadline))?;
            Ok(reply.into_inner())
        })
    }
}

/// The core's verdict on a failed upstream call: its code, and the reason the upstream gave
/// in the `heidi-reason` metadata ([`REASON_METADATA`]).
pub fn verdict(status: &Status) -> Verdict {
    let reason = status
        .metadata()
        .get(REASON_METADATA)
        .and_then(|v| v.to_str().ok());
    classify(status.code() as i32, Reason::parse(reason))
}

/// tonic's channel enforces the request's `grpc-timeout` itself and reports it as CANCELLED
/// with a [`tonic::TimeoutExpired`] in the status's source chain; the call did run out of
/// time, so callers get DEADLINE_EXCEEDED, and the core classifies it as such (retryable, an
/// upstream failure). Recognised by the error's type, not by its message. A tonic upstream
/// enforces the same `grpc-timeout` and may answer CANCELLED on the wire a moment before the
/// channel's own timer fires (seen on a busy machine): a CANCELLED that arrives once the
/// deadline has passed (`past_deadline`) is a deadline too.
fn deadline_as_such(status: Status, past_deadline: bool) -> Status {
    let code = status.code() as i32;
    let counted = failed_call_code(code, past_deadline, timed_out(&status));
    if counted != code {
        let message = format!("upstream call: {}", status.message());
        return Status::new(tonic::Code::from_i32(counted), message);
    }
    status
}

fn timed_out(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<tonic::TimeoutExpired>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Runs `call` under `deadline`: a call that has not finished by then is dropped (cancelled)
/// and ends in DEADLINE_EXCEEDED. Returns the result and how long the call took.
pub async fn with_deadline<T>(
    deadline: Duration,
    call: CallFuture<T>,
) -> (Result<T, Status>, Duration) {
    // tokio's clock: virtual under a paused test runtime, like the timeout.
    let started = tokio::time::Instant::now();
    let result = match tokio::time::timeout(deadline, call).await {
        Ok(result) => result,
        Err(_) => Err(Status::deadline_exceeded(format!(
            "upstream did not answer within the {} ms deadline",
            deadline.as_millis()
        ))),
    };
    (result, started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn a_channel_timeout_is_a_deadline_by_type_not_by_text() {
        let expired = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(expired.code(), Code::Cancelled);
        assert_eq!(
            deadline_as_such(expired, false).code(),
            Code::DeadlineExceeded
        );
        let text = tonic::TimeoutExpired(()).to_string();
        let lookalike = Status::cancelled(text);
        assert_eq!(deadline_as_such(lookalike, false).code(), Code::Cancelled);
    }

    #[test]
    fn a_cancel_from_the_upstream_after_the_deadline_is_a_deadline() {
        let on_the_wire = || Status::cancelled("Timeout expired");
        assert_eq!(
            deadline_as_such(on_the_wire(), true).code(),
            Code::DeadlineExceeded
        );
        assert_eq!(
            deadline_as_such(on_the_wire(), false).code(),
            Code::Cancelled
        );
    }

    #[test]
    fn the_reason_metadata_picks_the_class() {
        use heidi_core::upstream::Class;
        let mut full = Status::resource_exhausted("dedupe table full");
        full.metadata_mut()
            .insert(REASON_METADATA, "key_capacity".parse().unwrap());
        assert_eq!(verdict(&full).class, Class::Refusal);
        let busy = Status::resource_exhausted("busy");
        assert_eq!(verdict(&busy).class, Class::Overload);
        assert_eq!(verdict(&Status::unavailable("down")).class, Class::Failure);
    }
}
