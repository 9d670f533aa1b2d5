//! The sidecar: a local gRPC proxy (`heidi.sidecar.v1.Sidecar`) that batches transactions
//! toward an upstream (`Upstream.ApplyBatch`), with idempotent retries, a retry budget, a
//! circuit breaker and a deadline on every upstream call. Binary: `heidi-sidecar`; docs:
//! docs/SIDECAR.md.
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | flags > environment (`LISTEN_ADDR`, `BATCH_SIZE`, …) > `[sidecar]` > defaults |
//! | [`engine`] | the driver task owning the core batcher, breaker and retry budget |
//! | [`upstream`] | the upstream as a trait, and its gRPC client |
//! | [`service`] | the gRPC service |
//! | [`status`] | the statuses callers get |
//! | [`metrics`] | Prometheus metrics |
//! | [`run`] | starting and stopping a sidecar (in-process or as the binary) |
//!
//! Every decision is the core's: when a batch is due ([`heidi_core::batcher`]), whether a
//! call may go and when the breaker half-opens ([`heidi_core::breaker`]), whether and when to
//! retry ([`heidi_core::retry`]), what a failure means and whether a reply answers its batch
//! ([`heidi_core::upstream`]), which keys are acceptable ([`heidi_core::txn_check`]).

pub mod config;
pub mod engine;
pub mod metrics;
pub mod run;
pub mod service;
pub mod status;
pub mod upstream;

pub use config::SidecarConfig;
pub use run::{RunningSidecar, StartError, start, start_with};
