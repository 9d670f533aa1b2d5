//! The core [`Batcher`] with its batch size chosen at run time (1 ..= 8): one variant per
//! size, each the core's own batcher, so every flush decision stays in the core.

use heidi_core::Instant;
use heidi_core::batcher::{Batch, Batcher, BatcherConfig, FlushReason, Full};

/// A batch handed out by [`SizedBatcher`].
#[derive(Debug)]
pub struct Taken<T> {
    /// The items, oldest first.
    pub items: Vec<T>,
    /// What made the batch due.
    pub reason: FlushReason,
}

macro_rules! sized {
    ($($v:ident = $n:literal),*) => {
        /// A core batcher of 1 to 8 items, the size picked at run time.
        #[derive(Debug)]
        pub enum SizedBatcher<T> {
            $(
                #[doc = concat!("Batches of ", stringify!($n), ".")]
                $v(Batcher<T, $n>),
            )*
        }

        impl<T> SizedBatcher<T> {
            /// A batcher of `size` items (1 ..= 8), or `None` for any other size.
            pub fn new(size: usize, config: BatcherConfig) -> Option<SizedBatcher<T>> {
                match size {
                    $($n => Some(SizedBatcher::$v(Batcher::new(config))),)*
                    _ => None,
                }
            }

            /// Queues `item` ([`Batcher::push`]).
            pub fn push(&mut self, now: Instant, item: T) -> Result<(), Full<T>> {
                match self { $(SizedBatcher::$v(b) => b.push(now, item),)* }
            }

            /// When the queued items are due ([`Batcher::poll_timeout`]).
            pub fn poll_timeout(&self) -> Option<Instant> {
                match self { $(SizedBatcher::$v(b) => b.poll_timeout(),)* }
            }

            /// The queued items if due ([`Batcher::poll_batch`]).
            pub fn poll_batch(&mut self, now: Instant) -> Option<Taken<T>> {
                match self { $(SizedBatcher::$v(b) => b.poll_batch(now).map(taken),)* }
            }

            /// The queued items, due or not ([`Batcher::flush`]).
            pub fn flush(&mut self, now: Instant) -> Option<Taken<T>> {
                match self { $(SizedBatcher::$v(b) => b.flush(now).map(taken),)* }
            }

            /// Queued items.
            pub fn len(&self) -> usize {
                match self { $(SizedBatcher::$v(b) => b.len(),)* }
            }

            /// Whether nothing is queued.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Whether the batch is full ([`Batcher::is_full`]).
            pub fn is_full(&self) -> bool {
                match self { $(SizedBatcher::$v(b) => b.is_full(),)* }
            }
        }
    };
}

sized!(
    N1 = 1,
    N2 = 2,
    N3 = 3,
    N4 = 4,
    N5 = 5,
    N6 = 6,
    N7 = 7,
    N8 = 8
);

fn taken<T, const N: usize>(batch: Batch<T, N>) -> Taken<T> {
    Taken {
        items: batch.items.into_iter().collect(),
        reason: batch.reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heidi_core::Duration;

    #[test]
    fn every_size_from_one_to_eight_flushes_at_its_size() {
        let config = BatcherConfig {
            linger: Duration::from_millis(100),
        };
        for size in 1..=8 {
            let mut b = SizedBatcher::new(size, config).unwrap();
            let t0 = Instant::from_millis(0);
            for i in 0..size {
                assert!(b.poll_batch(t0).is_none());
                b.push(t0, i).unwrap();
            }
            assert!(b.is_full());
            assert!(b.push(t0, 99).is_err());
            let batch = b.poll_batch(t0).unwrap();
            assert_eq!(batch.items, (0..size).collect::<Vec<_>>());
            assert_eq!(batch.reason, FlushReason::Size);
            assert!(b.is_empty());
        }
        assert!(SizedBatcher::<u8>::new(0, config).is_none());
        assert!(SizedBatcher::<u8>::new(9, config).is_none());
    }

    #[test]
    fn linger_and_flush() {
        let mut b = SizedBatcher::new(8, BatcherConfig::default()).unwrap();
        b.push(Instant::from_millis(0), 1).unwrap();
        assert_eq!(b.poll_timeout(), Some(Instant::from_millis(100)));
        assert_eq!(b.len(), 1);
        assert!(b.poll_batch(Instant::from_millis(99)).is_none());
        assert_eq!(
            b.poll_batch(Instant::from_millis(100)).unwrap().reason,
            FlushReason::Linger
        );
        b.push(Instant::from_millis(0), 2).unwrap();
        assert_eq!(
            b.flush(Instant::from_millis(1)).unwrap().reason,
            FlushReason::Manual
        );
    }
}
