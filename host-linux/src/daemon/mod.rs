//! `heidid`: configuration, the Unix-socket and HTTP listeners, metrics, shutdown.
//!
//! | file | what it holds |
//! |---|---|
//! | [`config`] | flags, environment and TOML resolved into one validated [`config::Config`] |
//! | `state` | the shared daemon state and the request dispatcher both listeners use |
//! | `unix` | the Unix socket: sniffing, framed JSON, line commands, bounds |
//! | `http` | loopback HTTP (axum on hyper), bearer token, idle timeout |
//! | `metrics` | the Prometheus registry |
//! | `audit` | the audit log: carried-out admin calls one line each within a rate, the rest counted per peer |
//! | `run` | start-up, readiness, shutdown |

pub mod config;

/// The largest request limit the daemon accepts (`limits.request_max_bytes`).
pub const REQUEST_LIMIT_MAX_BYTES: usize = 64 * 1024;

mod appends;
pub mod audit;
mod buffers;
mod decoder;
pub mod detach;
mod fd_limit;
mod histogram;
pub mod http;
mod idempotency_file;
mod idle_io;
pub mod inflight;
mod instance_lock;
pub mod memory;
pub mod metrics;
mod out_dir;
pub mod pipeline;
mod pipeline_api;
mod policy_file;
mod policy_start;
mod procinfo;
mod reply;
pub mod run;
pub mod socket_file;
mod stages;
pub mod state;
mod supervisor;
pub mod unix;
mod unix_io;
