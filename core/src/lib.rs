//! heidi-core: the decisions of heidi-kernel, as pure step functions.
//!
//! (Crate documentation is completed once the component APIs settle.)

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

pub mod batcher;
pub mod breaker;
pub mod governor;
pub mod health;
pub mod idempotency;
pub mod key;
pub mod lease;
pub mod limit;
pub mod retry;
pub mod table;
pub mod time;

pub use time::{Duration, Instant, WallTime};
