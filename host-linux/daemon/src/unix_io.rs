//! Reads and writes of one Unix connection, bounded by shutdown and by its deadlines: the idle
//! timeout, the time a started frame or line has to complete, and the time a client has to
//! take its replies.
//!
//! A connection keeps one timer and one shutdown listener for its whole life, and re-arms the
//! timer lazily (when it fires before the deadline in force, or when a deadline comes sooner),
//! so a read or write that completes registers nothing: a new timeout and shutdown waiter per
//! read cost more than serving a pipelined request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;
use tokio::sync::watch;
use tokio::time::Sleep;

use super::buffers::{ConnBuffers, Lent};

/// What one read produced.
pub(super) enum Read<'b> {
    /// This many bytes, at the start of a buffer lent for as long as they are being handled.
    Data(Lent<'b, Box<[u8]>>, usize),
    /// The client closed its side.
    Eof,
    /// The idle timeout passed, or shutdown began.
    Stop,
}

/// What a connection waits on besides its socket.
pub(super) struct Waits {
    shutdown: watch::Receiver<bool>,
    stop: Stop,
    timer: Timer,
}

impl Waits {
    /// The waits of a new connection; `shutdown` turns true when shutdown begins.
    pub(super) fn new(shutdown: watch::Receiver<bool>) -> Waits {
        let mut changes = shutdown.clone();
        Waits {
            shutdown,
            stop: Stop {
                changed: Box::pin(async move {
                    // A closed channel means the daemon is going away: stop too.
                    let _ = changes.changed().await;
                }),
                done: false,
            },
            timer: Timer {
                sleep: Box::pin(tokio::time::sleep(Duration::MAX)),
            },
        }
    }
}

/// Resolves once shutdown begins (the shutdown value changes or its sender is gone).
struct Stop {
    changed: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Set once `changed` has resolved: it must not be polled again.
    done: bool,
}

impl Stop {
    async fn wait(&mut self) {
        if !self.done {
            self.changed.as_mut().await;
            self.done = true;
        }
    }
}

/// One timer for every deadline of a connection.
struct Timer {
    sleep: Pin<Box<Sleep>>,
}

impl Timer {
    /// Resolves once `at` has passed. The timer is moved only when `at` comes before its
    /// deadline, or when it fires before `at`.
    async fn until(&mut self, at: Instant) {
        let at = tokio::time::Instant::from_std(at);
        if at < self.sleep.deadline() {
            self.sleep.as_mut().reset(at);
        }
        loop {
            self.sleep.as_mut().await;
            if tokio::time::Instant::now() >= at {
                return;
            }
            self.sleep.as_mut().reset(at);
        }
    }
}

/// Reads once, giving up when shutdown begins or the idle timeout passes. A frame or line that
/// has started (at `partial_since`) must be complete within the idle timeout of its first
/// byte, so a client trickling one byte at a time cannot hold a connection forever.
///
/// The connection waits for readability holding no buffer; the buffer the bytes land in is
/// borrowed from `buffers` only then.
pub(super) async fn read<'b>(
    stream: &mut UnixStream,
    buffers: &'b ConnBuffers,
    idle: Duration,
    partial_since: Option<Instant>,
    waits: &mut Waits,
) -> io::Result<Read<'b>> {
    let now = Instant::now();
    let deadline = partial_since.unwrap_or(now) + idle;
    if waits.stop.done || *waits.shutdown.borrow() || deadline <= now {
        return Ok(Read::Stop);
    }
    loop {
        tokio::select! {
            biased;
            ready = stream.readable() => ready?,
            () = waits.stop.wait() => return Ok(Read::Stop),
            () = waits.timer.until(deadline) => return Ok(Read::Stop),
        }
        let mut buf = buffers.read_buffer();
        match stream.try_read(&mut buf) {
            Ok(0) => return Ok(Read::Eof),
            Ok(n) => {
                if n < buf.len() {
                    forget_readable(stream);
                }
                return Ok(Read::Data(buf, n));
            }
            // A spurious wake-up: the buffer goes back and the wait resumes.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// After a read that did not fill its buffer: the socket's receive queue was empty when the
/// read ended (a stream socket's read takes all it holds, up to the buffer), so its readiness
/// is forgotten now and the next read waits for the next event, instead of learning it from a
/// `recv` that fails with `EAGAIN` (one system call per pipelined batch). Bytes that arrive
/// after the read raise a new edge-triggered event, so none are missed; tokio's own
/// `AsyncRead` does the same for a short read.
fn forget_readable(stream: &UnixStream) {
    let _ = stream.try_io(Interest::READABLE, || {
        Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
    });
}

/// Writes all of `out` and clears it. A write that has not finished one idle timeout after it
/// first had to wait is an error (the client stopped reading, or reads too slowly to matter),
/// after which the connection is dropped.
pub(super) async fn write(
    stream: &mut UnixStream,
    out: &mut Vec<u8>,
    idle: Duration,
    waits: &mut Waits,
) -> io::Result<()> {
    let result = {
        let mut write = std::pin::pin!(stream.write_all(out));
        // Most writes complete at once; only one that waits reads the clock for its deadline.
        match std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
            Poll::Ready(result) => result,
            Poll::Pending => {
                let deadline = Instant::now() + idle;
                tokio::select! {
                    biased;
                    result = write.as_mut() => result,
                    () = waits.timer.until(deadline) => {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "client stopped reading",
                        ));
                    }
                }
            }
        }
    };
    out.clear();
    if out.capacity() > OUT_KEEP_BYTES {
        // A burst of replies grew it: give the memory back rather than keep it for the
        // connection's whole life.
        *out = Vec::new();
    }
    result
}

/// Capacity an output buffer keeps between writes; a larger one is freed after its write.
pub(super) const OUT_KEEP_BYTES: usize = 16 * 1024;

/// Tracks when the unfinished frame or line at the end of the input began.
pub(super) fn track_partial(partial_since: &mut Option<Instant>, mid_message: bool) {
    if !mid_message {
        *partial_since = None;
    } else if partial_since.is_none() {
        *partial_since = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// Short enough for a quick test, long enough to tell "waited" from "did not".
    const IDLE: Duration = Duration::from_millis(100);

    fn waits() -> (watch::Sender<bool>, Waits) {
        let (tx, rx) = watch::channel(false);
        (tx, Waits::new(rx))
    }

    #[tokio::test]
    async fn a_read_returns_the_bytes_then_the_end_of_stream() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let (_tx, mut w) = waits();
        let buffers = ConnBuffers::new(8192);
        b.write_all(b"abc").await.unwrap();
        let got = read(&mut a, &buffers, IDLE, None, &mut w).await.unwrap();
        let Read::Data(buf, 3) = got else {
            panic!("expected 3 bytes")
        };
        assert_eq!(&buf[..3], b"abc");
        drop(buf);
        drop(b);
        let got = read(&mut a, &buffers, IDLE, None, &mut w).await.unwrap();
        assert!(matches!(got, Read::Eof));
        // Neither the data nor the end of stream keeps a buffer.
        assert_eq!(buffers.pooled().0, 1);
    }

    #[tokio::test]
    async fn an_idle_read_stops_after_the_timeout_every_time() {
        let (mut a, _b) = UnixStream::pair().unwrap();
        let (_tx, mut w) = waits();
        let buffers = ConnBuffers::new(8192);
        // Twice: the second read re-arms the one timer rather than seeing it fire at once.
        for _ in 0..2 {
            let start = Instant::now();
            let got = read(&mut a, &buffers, IDLE, None, &mut w).await.unwrap();
            assert!(matches!(got, Read::Stop));
            assert!(
                start.elapsed() >= IDLE,
                "stopped after {:?}",
                start.elapsed()
            );
        }
    }

    #[tokio::test]
    async fn a_started_frame_must_end_within_the_timeout_of_its_first_byte() {
        let (mut a, _b) = UnixStream::pair().unwrap();
        let (_tx, mut w) = waits();
        let buffers = ConnBuffers::new(8192);
        // Begun a whole timeout ago: no wait at all.
        let start = Instant::now();
        let long_ago = Some(start - 2 * IDLE);
        let got = read(&mut a, &buffers, IDLE, long_ago, &mut w)
            .await
            .unwrap();
        assert!(matches!(got, Read::Stop));
        assert!(start.elapsed() < IDLE);
        // Begun half a timeout ago: the read waits out the other half only.
        let start = Instant::now();
        let half = Some(start - IDLE / 2);
        let got = read(&mut a, &buffers, IDLE, half, &mut w).await.unwrap();
        assert!(matches!(got, Read::Stop));
        assert!(start.elapsed() >= IDLE / 2);
    }

    #[tokio::test]
    async fn shutdown_stops_a_waiting_read_and_every_later_one() {
        let (mut a, _b) = UnixStream::pair().unwrap();
        let (tx, mut w) = waits();
        let buffers = ConnBuffers::new(8192);
        let long = Duration::from_secs(30);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(true).unwrap();
            // Keep the sender: the value, not a closed channel, stops the read.
            tokio::time::sleep(long).await;
        });
        let start = Instant::now();
        let got = read(&mut a, &buffers, long, None, &mut w).await.unwrap();
        assert!(matches!(got, Read::Stop));
        assert!(start.elapsed() < long / 2);
        let got = read(&mut a, &buffers, long, None, &mut w).await.unwrap();
        assert!(matches!(got, Read::Stop));
    }

    #[tokio::test]
    async fn a_daemon_going_away_stops_a_read() {
        let (mut a, _b) = UnixStream::pair().unwrap();
        let (tx, mut w) = waits();
        let buffers = ConnBuffers::new(8192);
        drop(tx);
        let long = Duration::from_secs(30);
        let start = Instant::now();
        let got = read(&mut a, &buffers, long, None, &mut w).await.unwrap();
        assert!(matches!(got, Read::Stop));
        assert!(start.elapsed() < long / 2);
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_times_the_write_out() {
        let (mut a, _b) = UnixStream::pair().unwrap();
        let (_tx, mut w) = waits();
        // Far more than a socket buffer holds, and nobody reads.
        let mut out = vec![7u8; 8 << 20];
        let start = Instant::now();
        let err = write(&mut a, &mut out, IDLE, &mut w).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= IDLE);
    }

    #[tokio::test]
    async fn a_write_the_client_drains_completes_whole() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let (_tx, mut w) = waits();
        let len = 4 << 20;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            got
        });
        let mut out: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let expected = out.clone();
        write(&mut a, &mut out, Duration::from_secs(10), &mut w)
            .await
            .unwrap();
        assert!(out.is_empty());
        assert_eq!(
            out.capacity(),
            0,
            "a burst's buffer is freed after its write"
        );
        drop(a);
        assert_eq!(reader.await.unwrap(), expected);
    }

    #[test]
    fn a_partial_message_keeps_the_time_of_its_first_byte() {
        let mut since = None;
        track_partial(&mut since, true);
        let first = since.expect("set by the first partial read");
        track_partial(&mut since, true);
        assert_eq!(since, Some(first));
        track_partial(&mut since, false);
        assert_eq!(since, None);
    }
}
