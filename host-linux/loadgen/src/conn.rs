//! A load-generator connection registered with the reactor for read readiness only.
//!
//! tokio's `UnixStream` registers read and write interest for its whole life. A Unix socket
//! signals "writable" every time the peer reads from it, so the server's every `recv` of our
//! requests would wake this client's thread for an event it never needs, and on a VM that
//! cross-CPU wake-up is charged to the server, in its `recv`. `redis-benchmark`, the peer the
//! daemon is compared with, asks for write readiness only while it has unsent output; this
//! connection never does: requests are written without blocking, and what the socket does
//! not take stays queued in the caller's buffer, retried on the next turn of its loop.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A non-blocking Unix stream watched for readability only.
pub(super) struct Conn {
    fd: AsyncFd<UnixStream>,
}

impl Conn {
    /// Takes over a connected tokio stream.
    pub(super) fn new(stream: tokio::net::UnixStream) -> io::Result<Conn> {
        let stream = stream.into_std()?;
        stream.set_nonblocking(true)?;
        // Deprecated because a generic `T` might change its descriptor while registered; the
        // workspace forbids `unsafe`, so not its `register_with_interest` replacement. Sound
        // here: the `AsyncFd` owns the stream, whose descriptor is fixed until both drop.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(stream, Interest::READABLE)?;
        Ok(Conn { fd })
    }

    /// Waits for bytes and reads them (`Ok(0)` at end of stream).
    pub(super) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.fd.readable().await?;
            if let Ok(read) = ready.try_io(|fd| fd.get_ref().read(buf)) {
                return read;
            }
        }
    }

    /// Writes as much of `out` as the socket takes now and removes it from `out`.
    pub(super) fn write_some(&self, out: &mut Vec<u8>) -> io::Result<()> {
        let mut written = 0;
        while written < out.len() {
            match self.fd.get_ref().write(&out[written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        out.drain(..written);
        Ok(())
    }
}
