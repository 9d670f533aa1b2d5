//! `heidid`, the heidi-kernel daemon: configuration, the Unix-socket and HTTP listeners, the
//! kernel methods, the pipeline and its stage runner, metrics, shutdown.
//!
//! The host is thin. Every decision (a limit, a breaker transition, a retry delay, a journal
//! line, a protocol reply) comes from `heidi-core`; this crate supplies sockets, files,
//! processes, threads and clocks, and translates between them and the core's values. Its
//! durable files are `heidi-store`'s.
//!
//! | file | what it holds |
//! |---|---|
//! | [`kernel`] | the core components behind the methods, and the policy document |
//! | [`runner`] | pipeline stages as supervised subprocesses (process group, cgroup, capture) |
//! | [`config`] | flags, environment and TOML resolved into one validated [`config::Config`] |
//! | `state` | the shared daemon state and the request dispatcher both listeners use |
//! | `unix` | the Unix socket: sniffing, framed JSON, line commands, bounds |
//! | `http` | loopback HTTP (axum on hyper), bearer token, idle timeout |
//! | `metrics` | the Prometheus registry |
//! | `audit` | the audit log: carried-out admin calls one line each within a rate, the rest counted per peer |
//! | `run` | start-up, readiness, shutdown |

pub mod config;
pub mod kernel;
pub mod runner;

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
