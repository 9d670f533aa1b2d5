//! Rate limiting: an integer GCRA token bucket, a keyed limiter over a fixed table, and the
//! named operations with their default limits.
//!
//! - [`bucket`]: [`LimitPolicy`] (capacity per window), the bucket state [`Tat`] and the
//!   single [`TokenBucket`]. `acquire(now, cost)` answers [`Acquire::Granted`] with the whole
//!   tokens `remaining`, or [`Acquire::Denied`] with the exact `retry_at`.
//! - [`keyed`]: [`KeyedLimiter`], one bucket per [`KeyHash`](crate::key::KeyHash) in 16 bytes
//!   of fixed storage, evicting only buckets that have refilled.
//! - [`ops`]: [`Operation`] and [`PolicyTable`], the defaults per operation, and the key of a
//!   client's bucket for an operation.
//! - [`lines`]: [`LineBudget`](lines::LineBudget), a bucket per source and one for all, that
//!   bounds how fast a log may grow (the daemon's audit lines).
//!
//! The policy is an argument of every call rather than part of a bucket's state, so changing
//! a limit applies to existing keys at once.
//!
//! ```
//! use heidi_core::key::KeyHasher;
//! use heidi_core::limit::{ArrayLimiter, KeyedAcquire, Operation, PolicyTable};
//! use heidi_core::Instant;
//!
//! let hasher = KeyHasher::new([7; 16]); // the host's secret seed
//! let policies = PolicyTable::default();
//! let mut limiter = ArrayLimiter::<1024>::new_array();
//! let now = Instant::from_secs(1);
//! let op = Operation::from_name("transform"); // 10 per 60 s
//! for _ in 0..10 {
//!     let answer = limiter.acquire_op(now, &hasher, &policies, op, b"client-1", 1).unwrap();
//!     assert!(answer.is_granted());
//! }
//! let answer = limiter.acquire_op(now, &hasher, &policies, op, b"client-1", 1).unwrap();
//! assert_eq!(answer, KeyedAcquire::Denied { retry_at: Instant::from_secs(7) });
//! ```

pub mod bucket;
pub mod keyed;
pub mod lines;
pub mod ops;

pub use bucket::{Acquire, CostOverCapacity, LimitPolicy, PolicyError, Tat, TokenBucket};
pub use keyed::{ArrayLimiter, KeyedAcquire, KeyedLimiter};
pub use ops::{Operation, PolicyTable};
