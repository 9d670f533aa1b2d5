//! `heidi-bench`'s load generator: framed requests over Unix sockets with per-request
//! latency, a raw echo peer, and the fsync-per-event baseline.
//!
//! | file | what it holds |
//! |---|---|
//! | [`wire`] | the request bodies (one constant each) and the reply reader |
//! | [`load`] | connections × pipeline depth, closed or open loop, one [`LoadReport`] |
//! | `conn` | a client connection watched for read readiness only |
//! | [`latency`] | HDR latency histograms, [`Summary`] (throughput, p50/p99/p99.9) |
//! | [`echo`] | the raw Unix-socket echo server (the round-trip floor) |
//! | [`fsync`] | one write + `fdatasync` per event (the naive durability baseline) |
//! | [`grpc`] | concurrent callers of a sidecar or an upstream over gRPC, for a duration |
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use heidi_loadgen::{BenchMethod, LoadConfig, Stop, run};
//! let report = run(&LoadConfig {
//!     socket: "/tmp/heidi-kernel.sock".into(),
//!     connections: 50,
//!     pipeline: 16,
//!     stop: Stop::Requests(1_000_000),
//!     rate_per_s: None,
//!     body: BenchMethod::Check.body().to_owned(),
//! })
//! .await?;
//! println!("{}", report.summary);
//! # Ok(()) }
//! ```

mod conn;
pub mod echo;
pub mod fsync;
pub mod grpc;
pub mod latency;
pub mod load;
pub mod wire;

pub use latency::{Latencies, Summary};
pub use load::{LoadConfig, LoadReport, Stop, run};
pub use wire::BenchMethod;

#[cfg(test)]
mod tests;
