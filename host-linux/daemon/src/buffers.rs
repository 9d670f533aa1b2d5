//! Buffers lent to Unix connections only while they have bytes to handle.
//!
//! An idle connection holds no read buffer and no frame decoder: it waits for readability,
//! borrows a read buffer for the read and the requests it carries, and borrows a decoder that
//! it keeps only while a frame is unfinished. A storm of connections therefore costs a few
//! hundred bytes each while they wait, and the buffers they used go back to a pool that keeps
//! at most [`KEEP`] of each kind; the rest are freed. Without this, every connection held
//! about 25 KiB for its whole life, and the allocator kept the memory of a storm of 2,000 of
//! them after they closed.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use super::decoder::Decoder;

/// Bytes read from a connection at a time.
pub(crate) const READ_BYTES: usize = 16 * 1024;
/// Most buffers of each kind the pool keeps for reuse.
pub(crate) const KEEP: usize = 64;

/// The pools of read buffers and frame decoders the Unix listener lends.
pub(crate) struct ConnBuffers {
    reads: Pool<Box<[u8]>>,
    decoders: Pool<Decoder>,
    /// The request limit every lent decoder enforces.
    request_max_bytes: usize,
}

impl ConnBuffers {
    /// Empty pools; decoders are made for bodies of at most `request_max_bytes`.
    pub(crate) fn new(request_max_bytes: usize) -> ConnBuffers {
        ConnBuffers {
            reads: Pool::default(),
            decoders: Pool::default(),
            request_max_bytes,
        }
    }

    /// A read buffer of [`READ_BYTES`], returned to the pool when dropped.
    pub(crate) fn read_buffer(&self) -> Lent<'_, Box<[u8]>> {
        self.reads.lend(|| vec![0u8; READ_BYTES].into_boxed_slice())
    }

    /// A frame decoder between frames. Dropped between frames, it returns to the pool; one
    /// holding part of a frame or a fatal error is freed instead.
    pub(crate) fn decoder(&self) -> Lent<'_, Decoder> {
        self.decoders.lend(|| Decoder::new(self.request_max_bytes))
    }

    /// How many buffers of each kind (read, decoder) the pools hold now.
    #[cfg(test)]
    pub(crate) fn pooled(&self) -> (usize, usize) {
        (self.reads.len(), self.decoders.len())
    }
}

/// A value a pool may lend again once it comes back.
trait Reusable {
    /// Whether the value is fit to lend to another connection as it is.
    fn reusable(&self) -> bool;
}

impl Reusable for Box<[u8]> {
    fn reusable(&self) -> bool {
        // Whatever bytes it holds are overwritten by the next read.
        true
    }
}

impl Reusable for Decoder {
    fn reusable(&self) -> bool {
        self.between_frames()
    }
}

/// A bounded stack of reusable values.
struct Pool<T> {
    free: Mutex<Vec<T>>,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            free: Mutex::new(Vec::new()),
        }
    }
}

impl<T: Reusable> Pool<T> {
    fn lend(&self, make: impl FnOnce() -> T) -> Lent<'_, T> {
        let reused = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        Lent {
            value: Some(reused.unwrap_or_else(make)),
            pool: self,
        }
    }

    fn give_back(&self, value: T) {
        if !value.reusable() {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < KEEP {
            free.push(value);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.free.lock().unwrap().len()
    }
}

/// A value borrowed from a pool; it goes back when dropped, if still fit to lend.
#[allow(private_bounds)]
pub(crate) struct Lent<'a, T: Reusable> {
    /// Always `Some` until dropped.
    value: Option<T>,
    pool: &'a Pool<T>,
}

impl<T: Reusable> Deref for Lent<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value.as_ref().expect("present until dropped")
    }
}

impl<T: Reusable> DerefMut for Lent<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value.as_mut().expect("present until dropped")
    }
}

impl<T: Reusable> Drop for Lent<'_, T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            self.pool.give_back(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_lent_again() {
        let pools = ConnBuffers::new(8192);
        let first = pools.read_buffer();
        let addr = first.as_ptr();
        drop(first);
        assert_eq!(pools.pooled(), (1, 0));
        assert_eq!(pools.read_buffer().as_ptr(), addr);
    }

    #[test]
    fn the_pool_keeps_at_most_keep_of_each_kind() {
        let pools = ConnBuffers::new(8192);
        let many: Vec<_> = (0..KEEP + 10)
            .map(|_| (pools.read_buffer(), pools.decoder()))
            .collect();
        assert_eq!(pools.pooled(), (0, 0));
        drop(many);
        assert_eq!(pools.pooled(), (KEEP, KEEP));
    }

    #[test]
    fn a_decoder_holding_part_of_a_frame_or_an_error_is_not_lent_again() {
        let pools = ConnBuffers::new(64);
        let mut partial = pools.decoder();
        assert!(partial.feed(&[0, 0, 0, 5, b'{']).frame.is_none());
        drop(partial);
        assert_eq!(pools.pooled().1, 0);
        let mut failed = pools.decoder();
        let over = 1000u32.to_be_bytes();
        assert!(
            matches!(failed.feed(&over).frame, Some(Err(_))),
            "over the limit"
        );
        drop(failed);
        assert_eq!(pools.pooled().1, 0);
        let mut done = pools.decoder();
        assert!(matches!(
            done.feed(&[0, 0, 0, 2, b'{', b'}']).frame,
            Some(Ok(_))
        ));
        drop(done);
        assert_eq!(pools.pooled().1, 1);
    }
}
