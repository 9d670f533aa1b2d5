//! heidi-core: every decision of heidi-kernel, as pure step functions.
//!
//! This crate is `#![no_std]`, allocates nothing, reads no clock, draws no random numbers and
//! does no I/O. The daemon (`heidid`), the browser simulation, the fuzzers and the property tests
//! all run these same functions; they differ only in where time, randomness and bytes come from.
//!
//! # The contract
//!
//! - **Time is an argument.** Every call that depends on time takes `now: Instant`, a reading of
//!   the host's *monotonic* clock in microseconds ([`time`]). Wall-clock time ([`WallTime`])
//!   exists only to stamp records. The core never asks what time it is, so a test can jump a
//!   virtual clock to any deadline and replay the same run exactly.
//! - **Randomness is an argument.** Jitter takes a `u64` the host draws; key hashing takes a
//!   secret seed the host injects once ([`key::KeyHasher`]).
//! - **Work is bounded.** Every call does a bounded amount of work: a table lookup touches at
//!   most 16 slots ([`table`]), a batch moves at most 8 items. There is no "process everything"
//!   loop whose length a client controls.
//! - **Capacities are fixed.** Containers are const-generic arrays or storage the host hands in
//!   once; none grows. When one is full the call says so and hands the item back
//!   ([`batcher::Full`]) or tells when room frees up ([`table::TableFull`]); nothing is
//!   silently dropped, and live state is never evicted to make room.
//! - **Every answer says when.** A denied token carries `retry_at`, an open breaker `until`, a
//!   held stage `retry_at`, and every component with a deadline has a `poll_timeout()`. The
//!   host never guesses and never polls in a busy loop.
//! - **Errors are small enums** per operation, with `Display` and [`core::error::Error`];
//!   configuration errors name the field. Programmer errors (a storage size that is not a
//!   multiple of the group size, a batch size above 8) are assertions, most at compile time.
//!
//! # The host loop
//!
//! A host owns the clock, sockets and timers. Its loop is short: feed inputs in with `now`,
//! act on the answers, then sleep until the earliest `poll_timeout()` or the next input. Here a
//! host rate-limits requests per client and batches the admitted ones toward an upstream, on a
//! simulated clock (a real host reads `std::time::Instant` at the edge instead):
//!
//! ```
//! use heidi_core::batcher::{Batcher, BatcherConfig};
//! use heidi_core::key::KeyHasher;
//! use heidi_core::limit::{ArrayLimiter, KeyedAcquire, LimitPolicy};
//! use heidi_core::{Duration, Instant};
//!
//! let hasher = KeyHasher::new([0x5e; 16]); // from the host's RNG, once at start-up
//! let policy = LimitPolicy::new(3, Duration::from_secs(1)).unwrap(); // 3 per second
//! let mut limiter = ArrayLimiter::<64>::new_array();
//! let mut batcher: Batcher<u32, 4> = Batcher::new(BatcherConfig::default()); // linger 100 ms
//!
//! // Requests arrive as (arrival time in ms, client, request id).
//! let arrivals = [(0, "a", 1), (1, "a", 2), (2, "b", 3), (3, "a", 4), (4, "a", 5), (250, "b", 6)];
//! let mut next = 0;
//! let mut now = Instant::ZERO;
//! let (mut sent, mut denied) = (0, 0);
//! loop {
//!     // 1. Feed in every input that is due.
//!     while let Some(&(at_ms, client, id)) = arrivals.get(next) {
//!         if Instant::from_millis(at_ms) > now {
//!             break;
//!         }
//!         next += 1;
//!         match limiter.acquire(now, hasher.hash(client.as_bytes()), &policy, 1).unwrap() {
//!             KeyedAcquire::Granted { .. } => batcher.push(now, id).expect("drained below"),
//!             KeyedAcquire::Denied { retry_at } | KeyedAcquire::TableFull { retry_at } => {
//!                 assert!(retry_at > now); // the client is told when to come back
//!                 denied += 1;
//!             }
//!         }
//!     }
//!     // 2. Drain the outputs that are due.
//!     while let Some(batch) = batcher.poll_batch(now) {
//!         sent += batch.items.len(); // a real host sends the batch upstream here
//!     }
//!     // 3. Sleep until the next input or the next deadline, whichever is first.
//!     let next_input = arrivals.get(next).map(|a| Instant::from_millis(a.0));
//!     now = match (next_input, batcher.poll_timeout()) {
//!         (Some(a), Some(b)) => a.min(b),
//!         (Some(t), None) | (None, Some(t)) => t,
//!         (None, None) => break,
//!     };
//! }
//! assert_eq!((sent, denied), (5, 1)); // client "a" was held to 3 per second
//! ```
//!
//! # Components
//!
//! | module | what it decides |
//! |---|---|
//! | [`limit`] | integer GCRA token buckets, a keyed limiter, the named operation limits |
//! | [`policy`] | the policy document's operations (built-in and custom), tiers and limits |
//! | [`retry`] | named retry policies with seeded, capped jitter; a retry budget |
//! | [`guard`] | one guarded call: limit, breaker, attempt, classify, record, retry, deadline |
//! | [`breaker`] | circuit breakers (consecutive / rate / slow-call trips) and a registry |
//! | [`batcher`] | size-or-linger batches of at most 8 items |
//! | [`lease`] | per-key concurrency leases with TTL |
//! | [`id`] | unique, unpredictable lease ids and idempotency tokens |
//! | [`journal`] | journal lines, hash chain, redaction, streaming verifier, seals |
//! | [`pipeline`] | the training pipeline's state machine |
//! | [`proto`] | wire codec: frames, line commands, requests, error replies |
//! | [`service`] | the request machine: a parsed request in, reply bytes and a typed outcome out |
//! | [`idempotency`] | new / in-progress / done records with TTL |
//! | [`txn_check`] | what makes an idempotency key and a sidecar batch acceptable |
//! | [`health`] | named checks and their aggregate |
//! | [`governor`] | admission of pipeline stages under load |
//! | [`upstream`] | forwarding to an upstream: failure verdicts, batch-reply checks |
//!
//! # Features
//!
//! All off by default: `std` (conversions from `std::time::Duration`), `serde` (derives on
//! configuration and answer types), `defmt` (derives `defmt::Format`).

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

pub mod batcher;
pub mod breaker;
pub mod governor;
pub mod guard;
pub mod health;
pub mod id;
pub mod idempotency;
pub mod journal;
pub(crate) mod json;
pub mod key;
pub mod lease;
pub mod limit;
pub mod pipeline;
pub mod policy;
pub mod proto;
pub mod retry;
pub mod service;
pub mod table;
pub mod time;
pub mod txn_check;
pub mod upstream;

pub use time::{Duration, Instant, WallTime};
