//! Bounded capture of a stage's merged stdout/stderr: the last `capacity` bytes and a count of
//! what was dropped before them. PEM private key bodies are withheld as the output arrives
//! ([`PemFilter`]), before the tail is cut, so a cut cannot separate a key's body from the
//! header that marks it as one.

use std::sync::{Arc, Mutex, PoisonError};

use heidi_core::journal::redact::PemFilter;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe::Receiver;

/// Size of one read from the output pipe.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// The tail of a byte stream: never holds more than `capacity` bytes. The bodies of PEM
/// private keys never enter it: they are withheld as they arrive (the BEGIN and END markers
/// are kept, and the journal's redaction turns them into `[PRIVATE_KEY]`).
#[derive(Debug)]
pub struct TailBuffer {
    buf: Vec<u8>,
    capacity: usize,
    dropped: u64,
    pem: PemFilter,
}

impl TailBuffer {
    /// An empty tail that keeps at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity.min(READ_CHUNK_BYTES)),
            capacity,
            dropped: 0,
            pem: PemFilter::new(),
        }
    }

    /// Appends `data` less any private key body in it, dropping the oldest bytes beyond the
    /// capacity.
    pub fn push(&mut self, data: &[u8]) {
        let mut pem = std::mem::take(&mut self.pem);
        pem.feed(data, |run| self.push_kept(run));
        self.pem = pem;
    }

    /// Appends bytes that passed the key filter.
    fn push_kept(&mut self, data: &[u8]) {
        if data.len() >= self.capacity {
            let skip = data.len() - self.capacity;
            self.dropped += (self.buf.len() + skip) as u64;
            self.buf.clear();
            self.buf.extend_from_slice(&data[skip..]);
            return;
        }
        let over = (self.buf.len() + data.len()).saturating_sub(self.capacity);
        if over > 0 {
            self.buf.drain(..over);
            self.dropped += over as u64;
        }
        self.buf.extend_from_slice(data);
    }

    /// The kept bytes (the stream's last bytes, in order).
    pub fn tail(&self) -> &[u8] {
        &self.buf
    }

    /// How many bytes were dropped from the front (withheld key bodies are not counted: the
    /// END marker kept in their place says what was there).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Takes the kept bytes and the dropped count, leaving the buffer empty.
    pub fn take(&mut self) -> (Vec<u8>, u64) {
        (
            std::mem::take(&mut self.buf),
            std::mem::replace(&mut self.dropped, 0),
        )
    }
}

/// A tail shared between the reading task and the supervisor, so the supervisor can take
/// what was read even if it has to abandon the reader (a descendant that escaped the kill
/// still holding the pipe).
pub(crate) type SharedTail = Arc<Mutex<TailBuffer>>;

/// Reads `pipe` to end of file into `tail`. Read errors end the capture (the stage result does
/// not depend on its output).
pub(crate) async fn drain_into(mut pipe: Receiver, tail: SharedTail) {
    let mut chunk = vec![0u8; READ_CHUNK_BYTES];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => tail
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(&chunk[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TailBuffer;

    #[test]
    fn keeps_everything_below_capacity() {
        let mut t = TailBuffer::new(8);
        t.push(b"abc");
        t.push(b"def");
        assert_eq!(t.tail(), b"abcdef");
        assert_eq!(t.dropped(), 0);
    }

    #[test]
    fn drops_oldest_bytes_at_capacity() {
        let mut t = TailBuffer::new(4);
        t.push(b"abc");
        t.push(b"def");
        assert_eq!(t.tail(), b"cdef");
        assert_eq!(t.dropped(), 2);
    }

    #[test]
    fn a_chunk_larger_than_capacity_keeps_its_end() {
        let mut t = TailBuffer::new(4);
        t.push(b"xy");
        t.push(b"0123456789");
        assert_eq!(t.tail(), b"6789");
        assert_eq!(t.dropped(), 8);
        let (tail, dropped) = t.take();
        assert_eq!((tail.as_slice(), dropped), (&b"6789"[..], 8));
        assert!(t.tail().is_empty());
    }

    #[test]
    fn a_private_key_body_never_enters_the_tail() {
        // The reproduction: `cat key.pem; exit 1`, with a tail that keeps only the end.
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0FAKE\nbody2FAKE\nbody3FAKE\n\
                   body4FAKE\nbody5FAKE\nbody6FAKE==\n-----END RSA PRIVATE KEY-----\n";
        for capacity in [16, 40, 64, 4096] {
            let mut t = TailBuffer::new(capacity);
            for chunk in key.as_bytes().chunks(7) {
                t.push(chunk);
            }
            let tail = String::from_utf8_lossy(t.tail()).into_owned();
            assert!(!tail.contains("FAKE"), "{capacity}: {tail:?}");
            let kept = "-----BEGIN RSA PRIVATE KEY----------END RSA PRIVATE KEY-----\n";
            assert!(kept.ends_with(&tail), "{capacity}: {tail:?}");
            let kept_len = "-----BEGIN RSA PRIVATE KEY----------END RSA PRIVATE KEY-----\n".len();
            assert_eq!(t.dropped() as usize, kept_len - tail.len(), "{capacity}");
        }
        // Without an END line, everything after the header is withheld.
        let mut t = TailBuffer::new(4096);
        t.push(b"oops\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBFAKE\n");
        t.push(b"more FAKE body");
        assert_eq!(t.tail(), b"oops\n-----BEGIN PRIVATE KEY-----");
    }

    #[test]
    fn zero_capacity_counts_everything_as_dropped() {
        let mut t = TailBuffer::new(0);
        t.push(b"abc");
        assert!(t.tail().is_empty());
        assert_eq!(t.dropped(), 3);
    }
}
