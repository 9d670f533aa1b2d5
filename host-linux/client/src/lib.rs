//! The client library of heidi-kernel: unix, http and null transports, retries at one layer,
//! `guard`. It depends on the core and on small crates only (no gRPC, no HTTP server, no
//! metrics registry), so an application that calls the daemon compiles little.
//!
//! ```no_run
//! use heidi_client::{Client, ClientConfig};
//!
//! let client = Client::new(ClientConfig::from_env()?)?;
//! if client.is_available() {
//!     let reply = client.ping();
//!     println!("{} in {} ms: {:?}", reply.status, reply.latency_ms, reply.payload);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! How a call runs (each step fixes a defect of the original client):
//!
//! 1. The request is encoded once; one longer than `REQUEST_MAX_BYTES` is an error result,
//!    never sent.
//! 2. Each attempt takes a slot of a counting semaphore of `max_inflight` slots (waiting at
//!    most the timeout), then runs the transport with a deadline of `timeout_ms` covering
//!    connect, write and read. The slot is released before any retry delay.
//! 3. Transport failures are retried here and nowhere else: no socket or a refused
//!    connection always; a timeout or a broken connection only for read-only methods (`PING`,
//!    `STATUS`, `GET_POLICY`, `RATE_LIMIT_CHECK`, `HEALTH_AGGREGATE`, `JOURNAL_TAIL`), since the
//!    daemon may have applied a request whose reply was lost. Delays come from the core [`heidi_core::retry::RetryPolicy`]
//!    (exponential, jittered, capped; see [`ClientConfig::retry_policy`]). A reply from the
//!    daemon, error or not, is never retried.
//! 4. One [`Telemetry`] event is recorded for the call, after its retries.
//!
//! | file | idea |
//! |---|---|
//! | `config.rs` | [`ClientConfig`] from the `HEIDI_KERNEL_*` variables |
//! | `heidi_common::token` | [`Token`]: the HTTP bearer token, redacted from every print |
//! | `result.rs` | [`CallResult`], [`CallStatus`] |
//! | `transport/` | unix (framed JSON), http (`POST /api/call`), null |
//! | `inflight.rs` | the `max_inflight` semaphore |
//! | `pause.rs` | [`Sleeper`] (injectable waits) and the jitter's random numbers |
//! | `telemetry.rs` | [`Telemetry`], [`CallEvent`], [`TracingTelemetry`] |
//! | `methods.rs` | every method's parameter shape and the typed helpers |
//! | `guard.rs` | [`Client::guard`]: rate limit + breaker + retries around a closure |

mod config;
mod guard;
mod inflight;
mod methods;
mod pause;
mod result;
mod telemetry;
mod transport;

#[cfg(any(test, feature = "fake"))]
pub mod fake;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use heidi_core::retry::{RetryDecision, RetryPolicy};
use serde_json::Value;

pub use config::{
    ClientConfig, ConfigError, ENV_ENABLED, ENV_ENDPOINT, ENV_MAX_INFLIGHT, ENV_REQUIRED,
    ENV_RETRY_ATTEMPTS, ENV_RETRY_DELAY_MS, ENV_TIMEOUT_MS, ENV_TOKEN, MAX_INFLIGHT_MAX,
    MILLIS_MAX, RETRY_ATTEMPTS_MAX,
};
pub use guard::{GuardError, GuardSpec};
pub use heidi_common::JournalEntry;
pub use heidi_common::endpoint;
pub use heidi_common::token::{TOKEN_MAX_BYTES, Token};
pub use methods::{BreakerOutcome, IdempotencyOutcome, PipelineMode};
pub use pause::{Sleeper, ThreadSleeper};
pub use result::{CallResult, CallStatus, codes};
pub use telemetry::{CallEvent, Telemetry, TracingTelemetry};

use crate::endpoint::Endpoint;
use heidi_common::clock::{Clock, wall_now};
use inflight::InFlight;
use transport::{Reply, Request, Transport, TransportError};

/// A client of the daemon. `Send + Sync`: share it between threads with an `Arc`.
pub struct Client {
    config: ClientConfig,
    endpoint: String,
    transport: Transport,
    retry: RetryPolicy,
    inflight: InFlight,
    clock: Clock,
    sleeper: Arc<dyn Sleeper>,
    telemetry: Arc<dyn Telemetry>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for a validated `config`. `enabled = false` selects the null transport.
    pub fn new(config: ClientConfig) -> Result<Client, ConfigError> {
        config.validate()?;
        let endpoint = if config.enabled {
            config.endpoint.clone()
        } else {
            Endpoint::Null
        };
        let retry = config.retry_policy().map_err(|e| ConfigError {
            variable: ENV_RETRY_DELAY_MS,
            value: config.retry_delay_ms.to_string(),
            expected: e.to_string(),
        })?;
        Ok(Client {
            endpoint: endpoint.display(),
            transport: Transport::for_endpoint(&endpoint, config.token.clone()),
            inflight: InFlight::new(config.max_inflight),
            retry,
            config,
            clock: Clock::start(),
            sleeper: Arc::new(ThreadSleeper),
            telemetry: Arc::new(TracingTelemetry),
        })
    }

    /// This client with another telemetry sink.
    pub fn with_telemetry(mut self, telemetry: Arc<dyn Telemetry>) -> Client {
        self.telemetry = telemetry;
        self
    }

    /// This client with another way of waiting between retries.
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Client {
        self.sleeper = sleeper;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The endpoint in use, as configuration spells it (`null` when disabled).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Calls `method` with `params` (a JSON object), retrying transport failures.
    pub fn call(&self, method: &str, params: Value) -> CallResult {
        let started = Instant::now();
        let mut attempts = 0u32;
        let outcome = match Request::new(method, &params, wall_now().as_unix_millis()) {
            Err(e) => Err(e),
            Ok(request) => loop {
                attempts += 1;
                let outcome = self.attempt(&request);
                let Err(e) = outcome else { break outcome };
                if !e.fault().may_retry(methods::is_retry_safe(method)) {
                    break Err(e);
                }
                let now = self.clock.now();
                match self.retry.next(now, attempts, pause::random_u64(), None) {
                    RetryDecision::RetryAt(at) => {
                        self.sleeper
                            .sleep(pause::to_std(at.saturating_duration_since(now)));
                    }
                    RetryDecision::GiveUp(_) => break Err(e),
                }
            },
        };
        let result = finish(outcome, started, attempts.saturating_sub(1));
        self.telemetry.record(&CallEvent {
            method,
            endpoint: &self.endpoint,
            latency_ms: result.latency_ms,
            success: result.success,
            status: result.status,
            retry_count: result.retry_count,
            payload_size: result.payload_size,
            error_code: result.error_code.as_deref(),
            reason: result.reason.as_deref(),
        });
        result
    }

    /// One attempt: an in-flight slot, then the transport, both within the timeout.
    fn attempt(&self, request: &Request) -> Result<Reply, TransportError> {
        let deadline = Instant::now() + self.config.timeout();
        let Some(_slot) = self.inflight.acquire(deadline) else {
            return Err(TransportError::Timeout(
                "waiting for an in-flight slot".into(),
            ));
        };
        self.transport.send(request, deadline)
    }

    /// Whether the daemon answers `PING` with a success reply within the timeout: one
    /// attempt, no retries, no telemetry event. Always true for the null transport.
    pub fn is_available(&self) -> bool {
        if self.transport.is_null() {
            return true;
        }
        let params = Value::Object(Default::default());
        let Ok(request) = Request::new("PING", &params, wall_now().as_unix_millis()) else {
            return false;
        };
        matches!(self.attempt(&request), Ok(reply) if !is_error_reply(&reply.value))
    }

    /// For `HEIDI_KERNEL_REQUIRED`: an error naming the endpoint when the daemon is required
    /// and not available; `Ok` when it is available or not required.
    pub fn require(&self) -> Result<(), String> {
        if self.config.required && !self.is_available() {
            return Err(format!(
                "the kernel daemon is required (HEIDI_KERNEL_REQUIRED) but does not answer at {}",
                self.endpoint
            ));
        }
        Ok(())
    }

    /// Attempts running now (for tests and diagnostics).
    pub fn in_flight(&self) -> usize {
        self.inflight.running()
    }

    /// Callers waiting for an in-flight slot now (for tests and diagnostics).
    pub fn waiting(&self) -> usize {
        self.inflight.waiting()
    }
}

/// `{"error":true,…}`.
fn is_error_reply(value: &Value) -> bool {
    value.get("error") == Some(&Value::Bool(true))
}

/// The result of a call from its last attempt's outcome.
fn finish(outcome: Result<Reply, TransportError>, started: Instant, retries: u32) -> CallResult {
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let mut result = CallResult {
        status: CallStatus::Ok,
        success: true,
        reason: None,
        latency_ms: latency_us / 1000,
        latency_us,
        payload_size: 0,
        payload: None,
        error_code: None,
        retry_count: retries,
    };
    match outcome {
        Ok(reply) => {
            result.payload_size = reply.size;
            if is_error_reply(&reply.value) {
                let text = |k: &str| {
                    reply
                        .value
                        .get(k)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                result.status = CallStatus::Error;
                result.success = false;
                result.error_code = Some(text("code").unwrap_or_else(|| "UNKNOWN".to_owned()));
                result.reason = Some(text("message").unwrap_or_default());
            }
            result.payload = Some(reply.value);
        }
        Err(e) => {
            result.status = e.status();
            result.success = false;
            result.reason = Some(e.reason());
            result.error_code = e.code().map(str::to_owned);
        }
    }
    result
}
