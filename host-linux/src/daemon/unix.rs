//! The Unix socket: the first byte picks framed JSON or line commands (DESIGN §6); every
//! connection is bounded in count, frame size, idle time and buffered output.

use super::appends::{Appends, Begun};
use super::decoder::Decoder;
use super::reply;
use super::state::{Peer, Shared, VERSION};
use heidi_core::proto::frame::FRAME_LIMIT_MAX_BYTES;
use heidi_core::proto::{
    Command, ErrorCode, LINE_MAX_BYTES, LINE_REPLY_MAX_BYTES, LineDecoder, LineReply, Mode,
    frame_prefix, sniff,
};
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{Semaphore, watch};

/// Bytes read from a connection at a time.
const READ_BYTES: usize = 16 * 1024;
/// Replies are flushed once this many bytes are buffered, so a client that pipelines without
/// reading cannot make the daemon buffer without bound.
const FLUSH_BYTES: usize = 64 * 1024;
/// Most connections being turned away at once; beyond it they are closed without a reply.
const REFUSERS: usize = 32;

/// Accepts connections until `shutdown` turns true. `connections` bounds the live ones; its
/// permits all return once every connection has finished.
pub async fn serve(
    shared: Arc<Shared>,
    listener: tokio::net::UnixListener,
    connections: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let refusers = Arc::new(Semaphore::new(REFUSERS));
    let gauge = shared.metrics.connections("unix");
    let mut last_warning = None;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(&mut last_warning, "unix", &e).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            shared.metrics.rejected("unix");
            if let Ok(refuser) = refusers.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(refuser);
                });
            }
            continue;
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let gauge = gauge.clone();
        tokio::spawn(async move {
            gauge.inc();
            shared.open_connections.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = connection(&shared, stream, shutdown).await {
                tracing::debug!(error = %e, "unix connection ended with an error");
            }
            shared.open_connections.fetch_sub(1, Ordering::Relaxed);
            gauge.dec();
            drop(permit);
        });
    }
}

/// After a failed `accept` (typically `EMFILE`: out of descriptors): back off 100 ms so the
/// loop does not spin, and warn at most once a second.
pub(super) async fn accept_failed(
    last_warning: &mut Option<std::time::Instant>,
    transport: &str,
    e: &io::Error,
) {
    if last_warning.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1)) {
        tracing::warn!(transport, error = %e, "accept failed; backing off");
        *last_warning = Some(std::time::Instant::now());
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

/// Answers a connection over the limit with `OVERLOADED` in its own mode, then closes it.
async fn refuse(mut stream: UnixStream) {
    let mut first = [0u8; 1];
    let wait = std::time::Duration::from_secs(1);
    let Ok(Ok(1)) = tokio::time::timeout(wait, stream.read(&mut first)).await else {
        return;
    };
    let mut out = Vec::new();
    match sniff(first[0]) {
        Mode::Framed => {
            let mut body = Vec::new();
            reply::error(
                ErrorCode::Overloaded,
                "too many connections; retry shortly",
                &mut body,
            );
            push_frame(&mut out, &body);
        }
        Mode::Line => out.extend_from_slice(b"ERR OVERLOADED\n"),
    }
    let _ = tokio::time::timeout(wait, stream.write_all(&out)).await;
}

fn peer_of(stream: &UnixStream) -> Peer {
    match stream.peer_cred() {
        Ok(cred) => Peer::Unix {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
        },
        Err(_) => Peer::Unix {
            uid: u32::MAX,
            gid: u32::MAX,
            pid: None,
        },
    }
}

/// One connection: sniff, then serve frames or lines until EOF, idle timeout, a fatal framing
/// error, or shutdown (checked between reads, so requests already read are answered).
async fn connection(
    shared: &Shared,
    mut stream: UnixStream,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let peer = peer_of(&stream);
    let mut buf = vec![0u8; READ_BYTES];
    let idle = shared.config.limits.idle_timeout;
    let Read::Data(n) = read(&mut stream, &mut buf, idle, &mut shutdown).await? else {
        return Ok(());
    };
    match sniff(buf[0]) {
        Mode::Framed => framed(shared, &peer, stream, buf, n, shutdown).await,
        Mode::Line => lines(shared, stream, buf, n, shutdown).await,
    }
}

/// What one read produced.
enum Read {
    /// This many bytes.
    Data(usize),
    /// The client closed its side.
    Eof,
    /// The idle timeout passed, or shutdown began.
    Stop,
}

/// Reads once, giving up after `wait` or when shutdown begins.
async fn read(
    stream: &mut UnixStream,
    buf: &mut [u8],
    wait: std::time::Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> io::Result<Read> {
    if *shutdown.borrow() || wait.is_zero() {
        return Ok(Read::Stop);
    }
    tokio::select! {
        read = tokio::time::timeout(wait, stream.read(buf)) => match read {
            Ok(Ok(0)) => Ok(Read::Eof),
            Err(_) => Ok(Read::Stop),
            Ok(Ok(n)) => Ok(Read::Data(n)),
            Ok(Err(e)) => Err(e),
        },
        _ = shutdown.changed() => Ok(Read::Stop),
    }
}

async fn write(
    stream: &mut UnixStream,
    out: &mut Vec<u8>,
    idle: std::time::Duration,
) -> io::Result<()> {
    match tokio::time::timeout(idle, stream.write_all(out)).await {
        Ok(result) => {
            out.clear();
            result
        }
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client stopped reading",
        )),
    }
}

/// How long the next read may wait: the idle timeout, but a frame or line that has started
/// must be complete within the idle timeout of its first byte, so a client trickling one
/// byte at a time cannot hold a connection forever.
fn read_budget(
    idle: std::time::Duration,
    partial_since: Option<std::time::Instant>,
) -> std::time::Duration {
    partial_since.map_or(idle, |t| idle.saturating_sub(t.elapsed()))
}

/// Tracks when the unfinished frame or line at the end of the input began.
fn track_partial(partial_since: &mut Option<std::time::Instant>, mid_message: bool) {
    if !mid_message {
        *partial_since = None;
    } else if partial_since.is_none() {
        *partial_since = Some(std::time::Instant::now());
    }
}

fn push_frame(out: &mut Vec<u8>, body: &[u8]) {
    // `Shared::call` keeps every body within the reply limit, far below the frame maximum.
    let prefix = frame_prefix(body.len(), FRAME_LIMIT_MAX_BYTES).expect("reply bodies are bounded");
    out.extend_from_slice(&prefix);
    out.extend_from_slice(body);
}

async fn framed(
    shared: &Shared,
    peer: &Peer,
    mut stream: UnixStream,
    mut buf: Vec<u8>,
    mut n: usize,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let limits = shared.config.limits;
    let mut decoder = Decoder::new(limits.request_max_bytes);
    let mut out = Vec::new();
    let mut body = Vec::new();
    let mut appends = Appends::default();
    let mut partial_since = None;
    loop {
        let mut input = &buf[..n];
        let mut mid_frame = false;
        // When the request being decoded began to be served: the end of the previous one in
        // this read (see `Shared::call_from`), or now.
        let mut since = std::time::Instant::now();
        while !input.is_empty() {
            let step = decoder.feed(input);
            input = &input[step.consumed..];
            mid_frame = step.frame.is_none();
            match step.frame {
                None => {}
                Some(Ok(frame)) => match shared.begin(since, frame, peer) {
                    Begun::Deferred(deferred) => appends.push(deferred),
                    Begun::Serve(parsed) => {
                        if let Some(end) =
                            drain(shared, peer, &mut appends, &mut body, &mut out).await
                        {
                            since = end;
                        }
                        since = shared.call_parsed(since, parsed, peer, &mut body).await;
                        push_frame(&mut out, &body);
                    }
                },
                Some(Err(e)) => {
                    drain(shared, peer, &mut appends, &mut body, &mut out).await;
                    reply::error(e.code(), &e.to_string(), &mut body);
                    push_frame(&mut out, &body);
                    if e.is_fatal() {
                        return write(&mut stream, &mut out, limits.idle_timeout).await;
                    }
                    since = std::time::Instant::now();
                }
            }
            if out.len() >= FLUSH_BYTES {
                write(&mut stream, &mut out, limits.idle_timeout).await?;
                since = std::time::Instant::now();
            }
        }
        // Appends read in this batch share group commits; answer them before reading on.
        drain(shared, peer, &mut appends, &mut body, &mut out).await;
        if !out.is_empty() {
            write(&mut stream, &mut out, limits.idle_timeout).await?;
        }
        track_partial(&mut partial_since, mid_frame);
        let wait = read_budget(limits.idle_timeout, partial_since);
        match read(&mut stream, &mut buf, wait, &mut shutdown).await? {
            Read::Data(read) => n = read,
            Read::Eof | Read::Stop => return Ok(()),
        }
    }
}

/// Answers the connection's deferred appends, framing each reply into `out`.
async fn drain(
    shared: &Shared,
    peer: &Peer,
    appends: &mut Appends<'_>,
    body: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Option<std::time::Instant> {
    if appends.is_empty() {
        return None;
    }
    appends
        .drain(shared, peer, body, |reply| push_frame(out, reply))
        .await
}

async fn lines(
    shared: &Shared,
    mut stream: UnixStream,
    mut buf: Vec<u8>,
    mut n: usize,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let idle = shared.config.limits.idle_timeout;
    let mut decoder = LineDecoder::<LINE_MAX_BYTES>::new();
    let mut out = Vec::new();
    let mut line_buf = [0u8; LINE_REPLY_MAX_BYTES];
    let mut partial_since = None;
    loop {
        let mut input = &buf[..n];
        let mut mid_line = false;
        while !input.is_empty() {
            let step = decoder.feed(input);
            input = &input[step.consumed..];
            mid_line = step.line.is_none();
            let reply = match step.line {
                None => None,
                Some(Err(_)) => Some(LineReply::LineTooLong),
                Some(Ok(line)) => {
                    LineReply::answer(Command::parse(line), VERSION, || shared.daemon_status())
                }
            };
            if let Some(reply) = reply {
                let len = reply
                    .encode(&mut line_buf)
                    .expect("LINE_REPLY_MAX_BYTES holds every reply");
                out.extend_from_slice(&line_buf[..len]);
            }
            if out.len() >= FLUSH_BYTES {
                write(&mut stream, &mut out, idle).await?;
            }
        }
        if !out.is_empty() {
            write(&mut stream, &mut out, idle).await?;
        }
        track_partial(&mut partial_since, mid_line);
        match read(
            &mut stream,
            &mut buf,
            read_budget(idle, partial_since),
            &mut shutdown,
        )
        .await?
        {
            Read::Data(read) => n = read,
            Read::Stop => return Ok(()),
            Read::Eof => {
                // An unterminated last command (`printf ping | nc -U …`) is still answered.
                let last = decoder.finish().map(Command::parse);
                if let Some(reply) =
                    last.and_then(|c| LineReply::answer(c, VERSION, || shared.daemon_status()))
                {
                    let len = reply
                        .encode(&mut line_buf)
                        .expect("LINE_REPLY_MAX_BYTES holds every reply");
                    out.extend_from_slice(&line_buf[..len]);
                    write(&mut stream, &mut out, idle).await?;
                }
                return Ok(());
            }
        }
    }
}
