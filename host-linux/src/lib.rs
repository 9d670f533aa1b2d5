//! heidi-kernel on Linux: the daemon `heidid`, the CLI `heidi`, and a client library.
//!
//! The host is thin. Every decision (a limit, a breaker transition, a retry delay, a journal
//! line, a protocol reply) comes from `heidi-core`; this crate supplies sockets, files,
//! threads, clocks and random seeds, and translates between them and the core's values.
//!
//! | module | what it holds |
//! |---|---|
//! | [`clock`] | the monotonic clock as a core `Instant`, the wall clock as a `WallTime` |
//! | [`endpoint`] | socket-path precedence and strict loopback checks for HTTP endpoints |
//! | [`kernel`] | the core components behind the methods, and the policy document |
//! | [`store`] | the durable journal (group commit, seals, restart), `state.json`, key files |
//! | [`daemon`] | `heidid`: configuration, the Unix-socket and HTTP listeners, metrics |
//! | [`client`] | the client library (unix, http and null transports, `guard`) |
//! | [`cli`] | the `heidi` command line |
//! | [`loadgen`] | `heidi-bench`: the daemon load generator, its echo peer and fsync baseline |
//!
//! Crates used instead of hand-written code: tokio (I/O, timers, signals), axum (HTTP),
//! clap (flags), toml and serde_json (documents), tracing (logs), prometheus-client
//! (`/metrics`), sd-notify (systemd readiness), getrandom (seeds), indicatif (progress bars),
//! ureq (the client's HTTP transport) and url (endpoint parsing).

pub mod cli;
pub use heidi_client as client;
pub use heidi_common::clock;
pub mod daemon;
pub use heidi_common::endpoint;
pub use heidi_grpc as grpc;
pub mod kernel;
pub mod loadgen;
pub mod paths;
pub mod runner;
pub mod store;
