//! [`Telemetry`]: one event per call, after retries (the seed's `kernel_bridge.call` event).
//! Events carry no payload contents and no secrets.

use super::result::CallStatus;

/// What a call reports when it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallEvent<'a> {
    /// The method name, e.g. `PING`.
    pub method: &'a str,
    /// The endpoint as configuration spells it.
    pub endpoint: &'a str,
    /// Total latency in milliseconds.
    pub latency_ms: u64,
    /// Whether the call succeeded.
    pub success: bool,
    /// The outcome class.
    pub status: CallStatus,
    /// Retries after the first attempt.
    pub retry_count: u32,
    /// Bytes of the reply body.
    pub payload_size: usize,
    /// The error code, if any.
    pub error_code: Option<&'a str>,
    /// Why the call failed, if it did.
    pub reason: Option<&'a str>,
}

/// Where call events go.
pub trait Telemetry: Send + Sync {
    /// Records the event of one finished call.
    fn record(&self, event: &CallEvent<'_>);
}

/// The default sink: a `tracing` event at target `kernel_bridge` with
/// `op = "kernel_bridge.call"` (debug level on success, warn on failure).
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingTelemetry;

impl Telemetry for TracingTelemetry {
    fn record(&self, e: &CallEvent<'_>) {
        macro_rules! emit {
            ($level:ident) => {
                tracing::$level!(
                    target: "kernel_bridge",
                    op = "kernel_bridge.call",
                    method = e.method,
                    endpoint = e.endpoint,
                    latency_ms = e.latency_ms,
                    success = e.success,
                    status = e.status.as_str(),
                    retry_count = e.retry_count,
                    payload_size = e.payload_size,
                    error_code = e.error_code,
                    reason = e.reason,
                )
            };
        }
        if e.success {
            emit!(debug);
        } else {
            emit!(warn);
        }
    }
}
