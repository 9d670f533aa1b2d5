//! A size-or-linger batcher: [`Batcher<T, N>`] gathers up to `N` items and hands them out as
//! one [`Batch`] when `N` are queued or when the oldest has waited [`BatcherConfig::linger`].
//!
//! # Contract
//!
//! - [`Batcher::push`] queues an item, or hands it back in [`Full`] when `N` items are already
//!   queued and not yet taken. Nothing is ever dropped.
//! - [`Batcher::poll_timeout`] is the exact instant from which [`Batcher::poll_batch`] returns a
//!   batch (`None` while empty). A host that sleeps until then and polls never busy-loops and
//!   never lets an item wait longer than the linger.
//! - [`Batcher::poll_batch`] takes the whole queue (at most `N` items, in arrival order) once it
//!   is due; [`Batcher::flush`] takes it at once, for shutdown.
//!
//! # Byte budget
//!
//! A host whose batches travel in one message with a size limit (a gRPC upstream refuses
//! messages above its limit) gives the batcher a byte cap ([`Batcher::with_max_bytes`]) and
//! pushes items with their encoded size ([`Batcher::push_sized`]). A batch then never holds
//! more than the cap: an item that would take the queued bytes above it is handed back in
//! [`PushSizedError::Full`] and the queued items are due at once ([`FlushReason::Size`], the
//! batch is full); an item larger than the cap on its own is refused for good with
//! [`PushSizedError::TooLarge`] (check it first with [`check_item_bytes`]).
//!
//! Every call is O(1) apart from moving the batch out (at most `N` items). `N` is checked at
//! compile time: `1 ≤ N ≤ 8` ([`MAX_BATCH_ITEMS`]); `Batcher::<T, 9>::new` does not build.
//! A batch size configured at run time (a sidecar's `BATCH_SIZE`) uses
//! [`Batcher::with_limit`]: storage for `N`, batches of `limit ≤ N`; wherever this page says
//! "`N` items" it then means `limit`.
//!
//! ```
//! use heidi_core::batcher::{Batcher, BatcherConfig, FlushReason};
//! use heidi_core::{Duration, Instant};
//!
//! let mut b: Batcher<u32, 4> = Batcher::new(BatcherConfig::default());
//! let t0 = Instant::from_millis(0);
//! b.push(t0, 1).unwrap();
//! b.push(t0, 2).unwrap();
//! assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_millis(100)));
//! assert!(b.poll_batch(Instant::from_millis(99)).is_none());
//! let batch = b.poll_batch(Instant::from_millis(100)).unwrap();
//! assert_eq!(batch.items.as_slice(), &[1, 2]);
//! assert_eq!(batch.reason, FlushReason::Linger);
//! assert_eq!(b.poll_timeout(), None);
//! ```
//!
//! A batch size above the guard is a build error:
//!
//! ```compile_fail
//! use heidi_core::batcher::{Batcher, BatcherConfig};
//! let b: Batcher<u32, 9> = Batcher::new(BatcherConfig::DEFAULT);
//! ```

use crate::time::{Duration, Instant};
use core::fmt;

/// The largest batch size a [`Batcher`] accepts (N ≤ 8), and the default `N`.
pub const MAX_BATCH_ITEMS: usize = 8;

/// Default linger: how long the oldest item may wait before a partial batch is flushed (100 ms).
pub const DEFAULT_LINGER: Duration = Duration::from_millis(100);

/// Configuration of a [`Batcher`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BatcherConfig {
    /// The longest an item waits before a partial batch is flushed ([`DEFAULT_LINGER`]).
    /// Zero flushes every item on the next poll.
    pub linger: Duration,
}

impl BatcherConfig {
    /// The defaults: linger 100 ms.
    pub const DEFAULT: BatcherConfig = BatcherConfig {
        linger: DEFAULT_LINGER,
    };
}

impl Default for BatcherConfig {
    fn default() -> BatcherConfig {
        BatcherConfig::DEFAULT
    }
}

/// Why a batch was handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FlushReason {
    /// The batch was full: `N` items were queued, or the next item would have taken the
    /// queued bytes above the byte cap ([`Batcher::push_sized`]).
    Size,
    /// The oldest item had waited the linger time.
    Linger,
    /// The host asked for it ([`Batcher::flush`], e.g. at shutdown) before it was due.
    Manual,
}

impl fmt::Display for FlushReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FlushReason::Size => "size",
            FlushReason::Linger => "linger",
            FlushReason::Manual => "manual",
        })
    }
}

/// A batch of 1 to `N` items in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use = "a batch holds items that must be sent"]
pub struct Batch<T, const N: usize> {
    /// The items, oldest first. Never empty, never more than `N`.
    pub items: heapless::Vec<T, N>,
    /// What made the batch due.
    pub reason: FlushReason,
    /// When the oldest item arrived (the earliest `now` passed to [`Batcher::push`] among them).
    pub oldest_at: Instant,
}

/// [`Batcher::push`] found `N` items already queued; the item comes back untouched.
///
/// The queue is due ([`FlushReason::Size`]): poll a batch, then push again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use = "the item was not queued"]
pub struct Full<T>(pub T);

impl<T> Full<T> {
    /// The item that was refused.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Display for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("batch full: poll a batch before pushing more")
    }
}

impl<T: fmt::Debug> core::error::Error for Full<T> {}

/// Why [`Batcher::push_sized`] did not queue an item; the item comes back untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use = "the item was not queued"]
pub enum PushSizedError<T> {
    /// The batch is full (`N` items, or the item does not fit in the bytes left): poll the
    /// batch, which is now due, then push the item again.
    Full(Full<T>),
    /// The item alone is larger than the byte cap: it can never be sent in a batch.
    TooLarge {
        /// The item.
        item: T,
        /// Its size.
        error: TooLarge,
    },
}

impl<T> PushSizedError<T> {
    /// The item that was refused.
    pub fn into_inner(self) -> T {
        match self {
            PushSizedError::Full(Full(item)) | PushSizedError::TooLarge { item, .. } => item,
        }
    }
}

/// An item larger than the byte cap of a batch ([`check_item_bytes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TooLarge {
    /// The item's size in bytes.
    pub bytes: usize,
    /// The byte cap of a batch.
    pub max_bytes: usize,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes, above the batch byte cap of {} bytes",
            self.bytes, self.max_bytes
        )
    }
}

impl core::error::Error for TooLarge {}

/// Whether an item of `bytes` can ever travel in a batch capped at `max_bytes`: a host checks
/// this before queueing and refuses a larger item alone.
pub const fn check_item_bytes(bytes: usize, max_bytes: usize) -> Result<(), TooLarge> {
    if bytes > max_bytes {
        Err(TooLarge { bytes, max_bytes })
    } else {
        Ok(())
    }
}

/// A run-time batch size outside `1 ..= N` ([`Batcher::with_limit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BatchLimitError {
    /// The size asked for.
    pub limit: usize,
    /// The largest this batcher holds (`N`).
    pub max: usize,
}

impl fmt::Display for BatchLimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batch size {} is outside 1 to {}", self.limit, self.max)
    }
}

impl core::error::Error for BatchLimitError {}

/// Gathers items into batches of at most `N` (default and maximum [`MAX_BATCH_ITEMS`]).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Batcher<T, const N: usize = MAX_BATCH_ITEMS> {
    items: heapless::Vec<T, N>,
    /// Items that make a batch: `N`, or fewer when chosen at run time ([`Batcher::with_limit`]).
    limit: usize,
    /// Arrival of the oldest queued item; [`Instant::MAX`] while empty.
    oldest_at: Instant,
    config: BatcherConfig,
    /// The byte cap of a batch ([`usize::MAX`]: none).
    max_bytes: usize,
    /// Bytes queued (sizes given to [`Batcher::push_sized`]).
    bytes: usize,
    /// An item did not fit in the bytes left: the queued items are a full batch.
    sealed: bool,
}

impl<T, const N: usize> Batcher<T, N> {
    /// An empty batcher. Fails to compile unless `1 ≤ N ≤ 8`.
    pub const fn new(config: BatcherConfig) -> Batcher<T, N> {
        const {
            assert!(
                N >= 1 && N <= MAX_BATCH_ITEMS,
                "Batcher<T, N> needs 1 <= N <= 8"
            )
        };
        Batcher {
            items: heapless::Vec::new(),
            limit: N,
            oldest_at: Instant::MAX,
            config,
            max_bytes: usize::MAX,
            bytes: 0,
            sealed: false,
        }
    }

    /// The same batcher with a byte cap: a batch never holds more than `max_bytes` bytes of
    /// items pushed with [`push_sized`](Self::push_sized) (items pushed with
    /// [`push`](Self::push) count as zero bytes).
    pub const fn with_max_bytes(mut self, max_bytes: usize) -> Batcher<T, N> {
        self.max_bytes = max_bytes;
        self
    }

    /// The byte cap of a batch ([`usize::MAX`] when none was set).
    pub const fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Bytes queued.
    pub const fn bytes(&self) -> usize {
        self.bytes
    }

    /// A batcher whose batches hold `limit` items, chosen at run time (a configured batch size),
    /// in storage for `N`; fails unless `1 ≤ limit ≤ N`.
    pub const fn with_limit(
        config: BatcherConfig,
        limit: usize,
    ) -> Result<Batcher<T, N>, BatchLimitError> {
        if limit == 0 || limit > N {
            return Err(BatchLimitError { limit, max: N });
        }
        let mut b = Batcher::new(config);
        b.limit = limit;
        Ok(b)
    }

    /// Items that make a full batch.
    pub const fn limit(&self) -> usize {
        self.limit
    }

    /// The configuration in force.
    pub const fn config(&self) -> BatcherConfig {
        self.config
    }

    /// Replaces the configuration; a new linger applies to the items already queued.
    pub fn set_config(&mut self, config: BatcherConfig) {
        self.config = config;
    }

    /// Number of queued items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether [`limit`](Self::limit) items are queued, or an item was handed back because it
    /// did not fit in the bytes left (the next [`push`](Self::push) would return [`Full`]).
    pub fn is_full(&self) -> bool {
        self.items.len() >= self.limit || self.sealed
    }

    /// Queues `item`, which arrived at `now`, or hands it back when
    /// [`limit`](Self::limit) items are queued.
    pub fn push(&mut self, now: Instant, item: T) -> Result<(), Full<T>> {
        if self.is_full() {
            return Err(Full(item));
        }
        self.items.push(item).map_err(Full)?;
        self.oldest_at = self.oldest_at.min(now);
        Ok(())
    }

    /// Queues `item` of `bytes` bytes, which arrived at `now`. Hands it back when the batch is
    /// full or the item would take the queued bytes above the cap (the queued items are then
    /// due at once: poll them and push again), or for good when it is larger than the cap
    /// on its own.
    pub fn push_sized(
        &mut self,
        now: Instant,
        item: T,
        bytes: usize,
    ) -> Result<(), PushSizedError<T>> {
        if let Err(error) = check_item_bytes(bytes, self.max_bytes) {
            return Err(PushSizedError::TooLarge { item, error });
        }
        if self.bytes.saturating_add(bytes) > self.max_bytes {
            self.sealed = true;
        }
        self.push(now, item).map_err(PushSizedError::Full)?;
        self.bytes += bytes;
        Ok(())
    }

    /// When the queued items are due: the oldest arrival plus the linger, or the oldest arrival
    /// itself (a past instant, meaning "now") once the batch is full. `None` while empty.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.items.is_empty() {
            None
        } else if self.is_full() {
            Some(self.oldest_at)
        } else {
            Some(self.oldest_at + self.config.linger)
        }
    }

    /// The queued items as a batch if they are due at `now` (`N` queued, or the oldest has
    /// waited the linger), else `None`.
    #[must_use]
    pub fn poll_batch(&mut self, now: Instant) -> Option<Batch<T, N>> {
        let reason = self.due(now)?;
        Some(self.take(reason))
    }

    /// The queued items as a batch whether due or not (shutdown, explicit flush); `None` while
    /// empty. The reason is [`FlushReason::Manual`] unless the batch was due anyway.
    #[must_use]
    pub fn flush(&mut self, now: Instant) -> Option<Batch<T, N>> {
        if self.items.is_empty() {
            return None;
        }
        let reason = self.due(now).unwrap_or(FlushReason::Manual);
        Some(self.take(reason))
    }

    fn due(&self, now: Instant) -> Option<FlushReason> {
        if self.is_full() {
            Some(FlushReason::Size)
        } else if !self.items.is_empty() && now >= self.oldest_at + self.config.linger {
            Some(FlushReason::Linger)
        } else {
            None
        }
    }

    fn take(&mut self, reason: FlushReason) -> Batch<T, N> {
        self.bytes = 0;
        self.sealed = false;
        let oldest_at = core::mem::replace(&mut self.oldest_at, Instant::MAX);
        Batch {
            items: core::mem::take(&mut self.items),
            reason,
            oldest_at,
        }
    }
}

impl<T, const N: usize> Default for Batcher<T, N> {
    fn default() -> Batcher<T, N> {
        Batcher::new(BatcherConfig::DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_time_limit_makes_batches_of_that_size() {
        let t0 = Instant::from_millis(0);
        for limit in 1..=MAX_BATCH_ITEMS {
            let mut b: Batcher<usize> = Batcher::with_limit(BatcherConfig::DEFAULT, limit).unwrap();
            assert_eq!(b.limit(), limit);
            for i in 0..limit {
                assert!(b.poll_batch(t0).is_none());
                b.push(t0, i).unwrap();
            }
            assert!(b.is_full());
            assert_eq!(b.poll_timeout(), Some(t0));
            assert_eq!(b.push(t0, 99), Err(Full(99)));
            let batch = b.poll_batch(t0).unwrap();
            assert_eq!(batch.reason, FlushReason::Size);
            assert_eq!(batch.items.len(), limit);
            assert!(b.is_empty());
        }
        let mut three: Batcher<u8, 8> = Batcher::with_limit(BatcherConfig::DEFAULT, 3).unwrap();
        three.push(t0, 1).unwrap();
        assert_eq!(three.poll_timeout(), Some(t0 + DEFAULT_LINGER));
        let linger = three.poll_batch(t0 + DEFAULT_LINGER).unwrap();
        assert_eq!(
            (linger.reason, linger.items.len()),
            (FlushReason::Linger, 1)
        );
    }

    #[test]
    fn a_run_time_limit_outside_one_to_n_is_refused() {
        let zero = Batcher::<u8, 4>::with_limit(BatcherConfig::DEFAULT, 0).unwrap_err();
        assert_eq!(zero, BatchLimitError { limit: 0, max: 4 });
        let five = Batcher::<u8, 4>::with_limit(BatcherConfig::DEFAULT, 5).unwrap_err();
        assert_eq!(five, BatchLimitError { limit: 5, max: 4 });
        extern crate std;
        use std::string::ToString;
        assert_eq!(five.to_string(), "batch size 5 is outside 1 to 4");
    }

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    #[test]
    fn defaults_follow_the_design() {
        let b: Batcher<u8> = Batcher::default();
        assert_eq!(b.config().linger, Duration::from_millis(100));
        assert_eq!(BatcherConfig::default(), BatcherConfig::DEFAULT);
        let mut b: Batcher<u8> = Batcher::default();
        for i in 0..8 {
            b.push(ms(0), i).unwrap();
        }
        assert!(b.is_full());
    }

    #[test]
    fn size_flush_at_n_items_in_order() {
        let mut b: Batcher<u32, 3> = Batcher::default();
        for (t, i) in [(0, 10), (5, 11)] {
            b.push(ms(t), i).unwrap();
            assert!(b.poll_batch(ms(t)).is_none());
        }
        b.push(ms(7), 12).unwrap();
        assert_eq!(b.poll_timeout(), Some(ms(0)));
        let batch = b.poll_batch(ms(7)).unwrap();
        assert_eq!(batch.items.as_slice(), &[10, 11, 12]);
        assert_eq!(batch.reason, FlushReason::Size);
        assert_eq!(batch.oldest_at, ms(0));
        assert!(b.is_empty());
        assert_eq!(b.poll_timeout(), None);
    }

    #[test]
    fn linger_flush_exactly_at_the_deadline() {
        let mut b: Batcher<u32> = Batcher::default();
        b.push(ms(10), 1).unwrap();
        b.push(ms(60), 2).unwrap();
        let deadline = ms(110);
        assert_eq!(b.poll_timeout(), Some(deadline));
        assert!(b.poll_batch(deadline - Duration::from_micros(1)).is_none());
        let batch = b.poll_batch(deadline).unwrap();
        assert_eq!(batch.items.as_slice(), &[1, 2]);
        assert_eq!(batch.reason, FlushReason::Linger);
        assert_eq!(batch.oldest_at, ms(10));
    }

    #[test]
    fn full_hands_the_item_back() {
        let mut b: Batcher<u32, 2> = Batcher::default();
        b.push(ms(0), 1).unwrap();
        b.push(ms(0), 2).unwrap();
        assert_eq!(b.push(ms(1), 3), Err(Full(3)));
        assert_eq!(Full(3).into_inner(), 3);
        let batch = b.poll_batch(ms(1)).unwrap();
        assert_eq!(batch.items.as_slice(), &[1, 2]);
        b.push(ms(1), 3).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b.poll_timeout(), Some(ms(101)));
    }

    #[test]
    fn flush_takes_everything_and_names_the_reason() {
        let mut b: Batcher<u32, 4> = Batcher::default();
        assert!(b.flush(ms(0)).is_none());
        b.push(ms(0), 1).unwrap();
        let batch = b.flush(ms(50)).unwrap();
        assert_eq!(batch.reason, FlushReason::Manual);
        assert_eq!(batch.items.as_slice(), &[1]);
        assert!(b.flush(ms(50)).is_none());
        b.push(ms(50), 2).unwrap();
        assert_eq!(b.flush(ms(150)).unwrap().reason, FlushReason::Linger);
    }

    #[test]
    fn zero_linger_and_n_of_one() {
        let mut b: Batcher<u32, 1> = Batcher::new(BatcherConfig {
            linger: Duration::ZERO,
        });
        b.push(ms(3), 7).unwrap();
        assert_eq!(b.push(ms(3), 8), Err(Full(8)));
        assert_eq!(b.poll_batch(ms(3)).unwrap().reason, FlushReason::Size);
        let mut b: Batcher<u32, 2> = Batcher::new(BatcherConfig {
            linger: Duration::ZERO,
        });
        b.push(ms(3), 7).unwrap();
        assert_eq!(b.poll_timeout(), Some(ms(3)));
        assert_eq!(b.poll_batch(ms(3)).unwrap().reason, FlushReason::Linger);
    }

    #[test]
    fn deadline_saturates_and_new_linger_applies_to_queued_items() {
        let mut b: Batcher<u32> = Batcher::default();
        b.push(Instant::MAX, 1).unwrap();
        assert_eq!(b.poll_timeout(), Some(Instant::MAX));
        let _ = b.flush(Instant::MAX);
        b.push(ms(0), 1).unwrap();
        b.set_config(BatcherConfig {
            linger: Duration::from_millis(5),
        });
        assert_eq!(b.poll_timeout(), Some(ms(5)));
    }

    #[test]
    fn an_earlier_clock_reading_moves_the_deadline_forward() {
        // Hosts should pass a non-decreasing `now`; if not, the earliest arrival wins so no
        // item waits past its linger.
        let mut b: Batcher<u32> = Batcher::default();
        b.push(ms(50), 1).unwrap();
        b.push(ms(20), 2).unwrap();
        assert_eq!(b.poll_timeout(), Some(ms(120)));
    }

    #[test]
    fn the_byte_cap_makes_a_full_batch_before_it_is_passed() {
        let t0 = ms(0);
        let mut b: Batcher<u32> = Batcher::default().with_max_bytes(100);
        assert_eq!(b.max_bytes(), 100);
        b.push_sized(t0, 1, 60).unwrap();
        b.push_sized(t0, 2, 40).unwrap();
        assert_eq!((b.bytes(), b.is_full()), (100, false));
        // 100 + 1 > 100: handed back, and the queued pair is due at once.
        assert_eq!(b.push_sized(t0, 3, 1), Err(PushSizedError::Full(Full(3))));
        assert!(b.is_full());
        assert_eq!(b.poll_timeout(), Some(t0));
        assert_eq!(b.push(t0, 4), Err(Full(4)), "a full batch takes nothing");
        let batch = b.poll_batch(t0).unwrap();
        assert_eq!(
            (batch.items.as_slice(), batch.reason),
            (&[1, 2][..], FlushReason::Size)
        );
        assert_eq!((b.bytes(), b.is_full()), (0, false));
        b.push_sized(t0, 3, 1).unwrap();
        assert_eq!(b.poll_timeout(), Some(t0 + DEFAULT_LINGER));
    }

    #[test]
    fn an_item_above_the_cap_is_refused_alone() {
        let mut b: Batcher<u32> = Batcher::default().with_max_bytes(100);
        b.push_sized(ms(0), 1, 100).unwrap();
        let refused = b.push_sized(ms(0), 2, 101).unwrap_err();
        let error = TooLarge {
            bytes: 101,
            max_bytes: 100,
        };
        assert_eq!(refused, PushSizedError::TooLarge { item: 2, error });
        assert_eq!(refused.into_inner(), 2);
        assert!(!b.is_full(), "a refused item does not seal the batch");
        assert_eq!(check_item_bytes(101, 100), Err(error));
        assert_eq!(check_item_bytes(100, 100), Ok(()));
        extern crate std;
        use std::string::ToString;
        assert_eq!(
            error.to_string(),
            "101 bytes, above the batch byte cap of 100 bytes"
        );
        let unlimited: Batcher<u32> = Batcher::default();
        assert_eq!(unlimited.max_bytes(), usize::MAX);
    }

    #[test]
    fn displays() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(FlushReason::Linger.to_string(), "linger");
        assert!(Full(1u8).to_string().contains("full"));
    }
}
