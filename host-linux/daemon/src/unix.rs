//! The Unix socket: the first byte picks framed JSON or line commands (docs/PROTOCOL.md); every
//! connection is bounded in count, frame size, idle time and buffered output.

use super::appends::{Appends, Begun};
use super::buffers::Lent;
use super::decoder::Decoder;
use super::metrics::Tally;
use super::reply::{self, Said};
use super::state::{Answer, Caller, KernelLock, Later, Peer, Shared, VERSION};
use super::unix_io::{Read, Waits, read, track_partial, write};
use heidi_core::proto::frame::FRAME_LIMIT_MAX_BYTES;
use heidi_core::proto::{
    Command, ErrorCode, FrameError, LINE_MAX_BYTES, LINE_REPLY_MAX_BYTES, LineDecoder, LineReply,
    Method, Mode, Request, TOO_MANY_CONNECTIONS, frame_prefix, sniff,
};
use std::io;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{Semaphore, watch};

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
            shared.connections.opened();
            if let Err(e) = connection(&shared, stream, shutdown).await {
                tracing::debug!(error = %e, "unix connection ended with an error");
            }
            shared.connections.closed();
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
            reply::error(ErrorCode::Overloaded, TOO_MANY_CONNECTIONS, &mut body);
            push_frame(&mut out, &body);
        }
        Mode::Line => push_line(&mut out, &LineReply::Overloaded),
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
    shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let peer = peer_of(&stream);
    let caller = Caller {
        admitted: shared.admitted(&peer),
        peer,
    };
    let idle = shared.config.limits.idle_timeout;
    let mut waits = Waits::new(shutdown);
    let buffers = &shared.buffers;
    let Read::Data(buf, n) = read(&mut stream, buffers, idle, None, &mut waits).await? else {
        return Ok(());
    };
    match sniff(buf[0]) {
        Mode::Framed => framed(shared, &caller, stream, buf, n, waits).await,
        // Line commands read status: a peer not admitted to read-only methods gets one
        // refusal and the connection is closed.
        Mode::Line if !caller.admitted.admits(LineReply::CLASS) => {
            shared.metrics.forbidden(LineReply::CLASS);
            let mut out = Vec::new();
            push_line(&mut out, &LineReply::Forbidden);
            write(&mut stream, &mut out, idle, &mut waits).await
        }
        Mode::Line => lines(shared, stream, buf, n, waits).await,
    }
}

/// Appends a line-mode reply, `\n` included.
fn push_line(out: &mut Vec<u8>, reply: &LineReply<'_>) {
    let mut line = [0u8; LINE_REPLY_MAX_BYTES];
    let len = reply
        .encode(&mut line)
        .expect("LINE_REPLY_MAX_BYTES holds every reply");
    out.extend_from_slice(&line[..len]);
}

fn push_frame(out: &mut Vec<u8>, body: &[u8]) {
    // `Shared::answer_now` keeps every body within the reply limit, far below the frame maximum.
    let prefix = frame_prefix(body.len(), FRAME_LIMIT_MAX_BYTES).expect("reply bodies are bounded");
    out.extend_from_slice(&prefix);
    out.extend_from_slice(body);
}

/// The framed replies waiting to be written, and the requests they answer, which are counted
/// in the metrics when the write ends: a request's latency runs from the read that brought it
/// (or, after a flush in the middle of a read, from the end of that flush) to the end of the
/// write that carried its reply, which is what the client sees. One clock read per read and
/// one per write serve every request between them.
struct Replies {
    out: Vec<u8>,
    tally: Tally,
    /// When the requests answered in `out` began to be served.
    since: Instant,
}

impl Replies {
    /// Frames the reply to a served request (`method` `None`: one that did not parse), which
    /// says `said`.
    fn push(&mut self, method: Option<Method>, said: Said, body: &[u8]) {
        self.tally.record(method, said.is_success());
        push_frame(&mut self.out, body);
    }

    /// Writes the buffered replies and counts their requests; returns when the write ended,
    /// which is when the requests served next begin.
    async fn write(
        &mut self,
        shared: &Shared,
        stream: &mut UnixStream,
        waits: &mut Waits,
    ) -> io::Result<Instant> {
        let idle = shared.config.limits.idle_timeout;
        let written = write(stream, &mut self.out, idle, waits).await;
        let end = Instant::now();
        let took = end.saturating_duration_since(self.since);
        shared.metrics.requests(&mut self.tally, "unix", took);
        self.since = end;
        written.map(|()| end)
    }
}

async fn framed(
    shared: &Shared,
    caller: &Caller,
    mut stream: UnixStream,
    mut buf: Lent<'_, Box<[u8]>>,
    mut n: usize,
    mut waits: Waits,
) -> io::Result<()> {
    let idle = shared.config.limits.idle_timeout;
    let buffers = &shared.buffers;
    // Held only while a frame is unfinished; between frames it goes back to the pool.
    let mut lent_decoder = None;
    let mut body = Vec::new();
    let mut replies = Replies {
        out: Vec::new(),
        tally: Tally::default(),
        since: Instant::now(),
    };
    let mut appends = Appends::default();
    // The text of a request read behind waiting appends, kept until they are answered.
    let mut behind = String::new();
    let mut partial_since = None;
    loop {
        // The requests of one read arrived together: this instant is when each began to be
        // served and the core's "now" for each, until the connection waits for something.
        replies.since = Instant::now();
        let mut now = shared.clock.at(replies.since);
        let mut input = &buf[..n];
        let mut mid_frame = false;
        let decoder = lent_decoder.get_or_insert_with(|| buffers.decoder());
        while !input.is_empty() {
            let mut ready = Ready {
                shared,
                caller,
                now,
                body: &mut body,
                replies: &mut replies,
                appends: &mut appends,
            };
            let pause = ready.serve(decoder, &mut input, &mut mid_frame, &mut behind);
            match pause {
                Pause::Consumed => {}
                Pause::Later(later) => {
                    let (method, said) = shared.answer_later(*later, &caller.peer, &mut body).await;
                    replies.push(Some(method), said, &body);
                    now = shared.clock.now();
                }
                Pause::Behind => {
                    drain(&mut appends, &mut body, &mut replies).await;
                    now = shared.clock.now();
                    let answer = {
                        let mut kernel = KernelLock::new(&shared.kernel);
                        let parsed = Request::parse(&behind);
                        shared.answer_now(now, parsed, caller, &mut body, &mut kernel)
                    };
                    let (method, said) = match answer {
                        Answer::Done { method, said } => (method, said),
                        Answer::Later(later) => {
                            let (method, said) =
                                shared.answer_later(*later, &caller.peer, &mut body).await;
                            now = shared.clock.now();
                            (Some(method), said)
                        }
                    };
                    replies.push(method, said, &body);
                }
                Pause::BadFrame(e) => {
                    drain(&mut appends, &mut body, &mut replies).await;
                    reply::error(e.code(), &e.to_string(), &mut body);
                    push_frame(&mut replies.out, &body);
                    if e.is_fatal() {
                        return replies
                            .write(shared, &mut stream, &mut waits)
                            .await
                            .map(drop);
                    }
                }
                Pause::Flush => {}
            }
            if replies.out.len() >= FLUSH_BYTES {
                now = shared
                    .clock
                    .at(replies.write(shared, &mut stream, &mut waits).await?);
            }
        }
        // Every byte read is answered or held by the decoder: the read buffer goes back.
        drop(buf);
        if !mid_frame {
            lent_decoder = None;
        }
        // Appends read in this batch share group commits; answer them before reading on.
        drain(&mut appends, &mut body, &mut replies).await;
        if !replies.out.is_empty() {
            // Let the worker serve the other connections that are ready first, so the replies
            // of one pass go out together, as Redis writes every reply before it sleeps: a
            // client asleep in `epoll_wait` is woken by the first of them, not once per
            // connection, and waking it is a cross-CPU interrupt inside our `send`.
            tokio::task::yield_now().await;
            replies.write(shared, &mut stream, &mut waits).await?;
        }
        track_partial(&mut partial_since, mid_frame);
        match read(&mut stream, buffers, idle, partial_since, &mut waits).await? {
            Read::Data(next, read) => (buf, n) = (next, read),
            Read::Eof | Read::Stop => return Ok(()),
        }
    }
}

/// Why [`Ready::serve`] stopped: the input is used up, or something must be waited for.
/// Nothing in it borrows the frame it came from.
enum Pause<'s> {
    /// Every byte of the input is decoded (and every complete frame answered or queued).
    Consumed,
    /// A request that waits for a disk, a lock or the pipeline.
    Later(Box<Later<'s>>),
    /// A request read behind waiting appends, its text kept in `behind`: answer the appends,
    /// then serve it.
    Behind,
    /// A framing error: answer the appends before it, then the error.
    BadFrame(FrameError),
    /// The replies reached [`FLUSH_BYTES`].
    Flush,
}

/// What serving the frames of one read needs, between two waits.
struct Ready<'c, 's> {
    shared: &'s Shared,
    caller: &'c Caller,
    now: heidi_core::Instant,
    body: &'c mut Vec<u8>,
    replies: &'c mut Replies,
    appends: &'c mut Appends<'s>,
}

impl<'s> Ready<'_, 's> {
    /// Decodes and serves frames from `input` until it is used up or a request must wait,
    /// under one hold of the kernel's lock (taken at the first request that needs it and
    /// released on return, so it is never held while the connection waits).
    fn serve(
        &mut self,
        decoder: &mut Decoder,
        input: &mut &[u8],
        mid_frame: &mut bool,
        behind: &mut String,
    ) -> Pause<'s> {
        let mut kernel = KernelLock::new(&self.shared.kernel);
        while !input.is_empty() {
            let step = decoder.feed(input);
            *input = &input[step.consumed..];
            *mid_frame = step.frame.is_none();
            match step.frame {
                None => {}
                Some(Ok(frame)) => {
                    let waiting = !self.appends.is_empty();
                    let begun = self.shared.begin(
                        self.now,
                        frame,
                        self.caller,
                        self.body,
                        waiting,
                        &mut kernel,
                    );
                    match begun {
                        Begun::Deferred(deferred) => self.appends.push(deferred),
                        Begun::Served(Answer::Done { method, said }) => {
                            self.replies.push(method, said, self.body);
                        }
                        Begun::Served(Answer::Later(later)) => return Pause::Later(later),
                        Begun::Behind => {
                            behind.clear();
                            behind.push_str(frame);
                            return Pause::Behind;
                        }
                    }
                }
                Some(Err(e)) => return Pause::BadFrame(e),
            }
            if self.replies.out.len() >= FLUSH_BYTES {
                return Pause::Flush;
            }
        }
        Pause::Consumed
    }
}

/// Answers the connection's deferred appends, framing each reply.
async fn drain(appends: &mut Appends<'_>, body: &mut Vec<u8>, replies: &mut Replies) {
    if appends.is_empty() {
        return;
    }
    appends
        .drain(body, |said, reply| {
            replies.push(Some(Method::JournalAppend), said, reply)
        })
        .await;
}

async fn lines(
    shared: &Shared,
    mut stream: UnixStream,
    mut buf: Lent<'_, Box<[u8]>>,
    mut n: usize,
    mut waits: Waits,
) -> io::Result<()> {
    let idle = shared.config.limits.idle_timeout;
    let buffers = &shared.buffers;
    let mut decoder = LineDecoder::<LINE_MAX_BYTES>::new();
    let mut out = Vec::new();
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
                push_line(&mut out, &reply);
            }
            if out.len() >= FLUSH_BYTES {
                write(&mut stream, &mut out, idle, &mut waits).await?;
            }
        }
        drop(buf);
        if !out.is_empty() {
            write(&mut stream, &mut out, idle, &mut waits).await?;
        }
        track_partial(&mut partial_since, mid_line);
        match read(&mut stream, buffers, idle, partial_since, &mut waits).await? {
            Read::Data(next, read) => (buf, n) = (next, read),
            Read::Stop => return Ok(()),
            Read::Eof => {
                // An unterminated last command (`printf ping | nc -U …`) is still answered.
                let last = decoder.finish().map(Command::parse);
                if let Some(reply) =
                    last.and_then(|c| LineReply::answer(c, VERSION, || shared.daemon_status()))
                {
                    push_line(&mut out, &reply);
                    write(&mut stream, &mut out, idle, &mut waits).await?;
                }
                return Ok(());
            }
        }
    }
}
