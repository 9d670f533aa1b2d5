//! The load generator: `connections` Unix-socket connections, each keeping up to `pipeline`
//! requests in flight, closed-loop (send as soon as a slot frees) or open-loop (`rate_per_s`,
//! latency measured from each request's *intended* send time, so a stall is not hidden).
//!
//! Every connection makes one round trip before the clock starts: the server's accept and
//! per-connection set-up (a first read can wait tens of milliseconds for it) would otherwise be
//! measured as the first requests' latency, and in open loop as the lateness of every request
//! scheduled behind them.

use super::conn::Conn;
use super::latency::{Latencies, Summary};
use super::wire::{ReplyReader, request_frame};
use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Most connections one run opens.
pub const CONNECTIONS_MAX: usize = 4096;
/// Most requests one connection keeps in flight.
pub const PIPELINE_MAX: usize = 1024;
/// Bytes read from a connection at a time.
const READ_BYTES: usize = 64 * 1024;

/// When a run stops sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// After this many requests in total (spread evenly over the connections).
    Requests(u64),
    /// After this long (requests in flight are still awaited).
    After(Duration),
}

/// One run's settings.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The daemon's (or peer's) Unix socket.
    pub socket: PathBuf,
    /// Connections opened before the clock starts (`1..=CONNECTIONS_MAX`).
    pub connections: usize,
    /// Requests in flight per connection (`1..=PIPELINE_MAX`).
    pub pipeline: usize,
    /// When to stop.
    pub stop: Stop,
    /// Open loop: total requests per second over all connections; `None` is closed loop.
    pub rate_per_s: Option<u64>,
    /// The request body (JSON) sent every time.
    pub body: String,
}

impl LoadConfig {
    /// Checks every limit; the message names the offending setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=CONNECTIONS_MAX).contains(&self.connections) {
            return Err(format!("connections: must be in 1..={CONNECTIONS_MAX}"));
        }
        if !(1..=PIPELINE_MAX).contains(&self.pipeline) {
            return Err(format!("pipeline: must be in 1..={PIPELINE_MAX}"));
        }
        match self.stop {
            Stop::Requests(0) => return Err("requests: must be at least 1".into()),
            Stop::After(d) if d.is_zero() => return Err("duration: must be above 0".into()),
            _ => {}
        }
        if self.rate_per_s == Some(0) {
            return Err("rate: must be at least 1 request per second".into());
        }
        request_frame(&self.body).map(drop)
    }
}

/// What a run measured, and the first error reply (to show why errors happened).
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// Every request's latency (open loop: from its scheduled send time).
    pub latencies: Latencies,
    /// Counts, throughput and percentiles of `latencies`.
    pub summary: Summary,
    /// Open loop only: latency from the actual send, which leaves out the client's own
    /// lateness (tokio timers fire at millisecond granularity) but also hides server stalls
    /// that delayed sends (coordinated omission). Closed loop: `None` (the same as `summary`).
    pub from_send: Option<Summary>,
    /// The body of the first error reply, if any.
    pub first_error: Option<String>,
}

/// One connection's share of the run.
struct Plan {
    frame: std::sync::Arc<[u8]>,
    pipeline: usize,
    /// Stop after this many requests, or at `deadline`.
    requests: u64,
    deadline: Option<Instant>,
    /// Open loop: the gap between this connection's sends, and its first send time.
    interval: Option<Duration>,
    first_due: Instant,
}

/// What one connection saw.
struct ConnReport {
    latencies: Latencies,
    from_send: Latencies,
    replies: u64,
    errors: u64,
    first_error: Option<String>,
}

/// A connection and everything its run needs, allocated before the clock starts (two
/// latency histograms alone touch about 440 KiB; built inside the run, fifty connections'
/// set-up delayed the first sends by 20 ms).
struct Session {
    conn: Conn,
    /// (scheduled send time, actual send time) of each request in flight, oldest first.
    in_flight: VecDeque<(Instant, Instant)>,
    out: Vec<u8>,
    buf: Vec<u8>,
    reader: ReplyReader,
    report: ConnReport,
}

impl Session {
    /// Connects, makes the unmeasured first round trip, and allocates the run's state.
    async fn open(config: &LoadConfig, frame: &[u8]) -> io::Result<Session> {
        let mut stream = UnixStream::connect(&config.socket).await?;
        let mut buf = vec![0u8; READ_BYTES];
        warm_up(&mut stream, frame, &mut buf).await?;
        Ok(Session {
            conn: Conn::new(stream)?,
            in_flight: VecDeque::with_capacity(config.pipeline),
            out: Vec::with_capacity(frame.len() * config.pipeline),
            buf,
            reader: ReplyReader::new(),
            report: ConnReport {
                latencies: Latencies::new(),
                from_send: Latencies::new(),
                replies: 0,
                errors: 0,
                first_error: None,
            },
        })
    }
}

/// Connects every connection, then runs the load; returns once every reply is in.
///
/// An I/O error, an early close or a malformed reply frame on any connection fails the run.
pub async fn run(config: &LoadConfig) -> io::Result<LoadReport> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let frame: std::sync::Arc<[u8]> = request_frame(&config.body)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
        .into();
    let mut sessions = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        sessions.push(Session::open(config, &frame).await?);
    }
    let n = config.connections as u64;
    // Open loop: each connection sends at rate/n, staggered so the sends interleave evenly.
    let interval = config
        .rate_per_s
        .map(|rate| Duration::from_nanos((1_000_000_000u64.saturating_mul(n) / rate).max(1)));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(config.connections);
    for (i, session) in sessions.into_iter().enumerate() {
        let i = i as u64;
        let (requests, deadline) = match config.stop {
            Stop::Requests(total) => (total / n + u64::from(i < total % n), None),
            Stop::After(d) => (u64::MAX, Some(start + d)),
        };
        let stagger = interval.map_or(Duration::ZERO, |iv| {
            Duration::from_nanos((iv.as_nanos() as u64).saturating_mul(i) / n)
        });
        let plan = Plan {
            frame: frame.clone(),
            pipeline: config.pipeline,
            requests,
            deadline,
            interval,
            first_due: start + stagger,
        };
        tasks.push(tokio::spawn(drive(session, plan)));
    }
    // Merged once every connection is done: merging walks whole histograms, which would
    // delay the replies of connections still running on this thread.
    let mut reports = Vec::with_capacity(tasks.len());
    for task in tasks {
        reports.push(task.await.map_err(io::Error::other)??);
    }
    let elapsed = start.elapsed();
    let (mut latencies, mut from_send) = (Latencies::new(), Latencies::new());
    let (mut replies, mut errors, mut first_error) = (0, 0, None);
    for conn in reports {
        latencies.merge(&conn.latencies);
        from_send.merge(&conn.from_send);
        replies += conn.replies;
        errors += conn.errors;
        first_error = first_error.or(conn.first_error);
    }
    let summary = Summary::new(&latencies, replies, errors, elapsed);
    let from_send = interval.map(|_| Summary::new(&from_send, replies, errors, elapsed));
    Ok(LoadReport {
        latencies,
        summary,
        from_send,
        first_error,
    })
}

/// One connection: send while a slot is free (and, open loop, the next send is due), read
/// replies, and match each to its send time (replies come in order).
async fn drive(session: Session, plan: Plan) -> io::Result<ConnReport> {
    let Session {
        conn,
        mut in_flight,
        mut out,
        mut buf,
        mut reader,
        mut report,
    } = session;
    let (mut sent, mut next_due) = (0u64, plan.first_due);
    loop {
        let now = Instant::now();
        let done = |sent: u64, due: Instant| {
            sent >= plan.requests
                || plan
                    .deadline
                    .is_some_and(|d| now >= d || (plan.interval.is_some() && due >= d))
        };
        while in_flight.len() < plan.pipeline && !done(sent, next_due) {
            let stamp = match plan.interval {
                None => now,
                Some(_) if next_due > now => break,
                Some(iv) => {
                    let due = next_due;
                    next_due += iv;
                    due
                }
            };
            out.extend_from_slice(&plan.frame);
            in_flight.push_back((stamp, now));
            sent += 1;
        }
        // What the socket does not take now is retried after the next read or turn.
        conn.write_some(&mut out)?;
        let sending = !done(sent, next_due);
        if in_flight.is_empty() && !sending {
            break;
        }
        let wait_for_timer = plan.interval.is_some() && sending && in_flight.len() < plan.pipeline;
        tokio::select! {
            biased;
            read = conn.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    return Err(closed_early());
                }
                let received = Instant::now();
                let mut unexpected = false;
                reader
                    .feed(&buf[..n], |error| match in_flight.pop_front() {
                        Some((scheduled, sent_at)) => {
                            report.latencies.record(received.saturating_duration_since(scheduled));
                            report.from_send.record(received.saturating_duration_since(sent_at));
                            report.replies += 1;
                            report.errors += u64::from(error);
                        }
                        None => unexpected = true,
                    })
                    .map_err(bad_frame)?;
                if unexpected {
                    return Err(unasked_reply());
                }
            }
            () = pace(next_due), if wait_for_timer => {}
            () = tokio::task::yield_now(), if !out.is_empty() => {}
        }
    }
    report.first_error = reader.take_first_error();
    Ok(report)
}

/// One request and its reply, not measured (see the module's documentation).
async fn warm_up(stream: &mut UnixStream, frame: &[u8], buf: &mut [u8]) -> io::Result<()> {
    stream.write_all(frame).await?;
    let mut reader = ReplyReader::new();
    let mut replies = 0u32;
    while replies == 0 {
        let n = stream.read(buf).await?;
        if n == 0 {
            return Err(closed_early());
        }
        reader
            .feed(&buf[..n], |_| replies += 1)
            .map_err(bad_frame)?;
    }
    if replies > 1 || reader.mid_frame() {
        return Err(unasked_reply());
    }
    Ok(())
}

fn closed_early() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection with requests in flight",
    )
}

fn unasked_reply() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "a reply arrived with no request in flight",
    )
}

fn bad_frame(e: heidi_core::proto::FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad reply frame: {e}"))
}

/// Below this, an open-loop send is awaited by yielding (busy) rather than with a timer.
const SPIN_BELOW: Duration = Duration::from_millis(2);

/// Waits towards `due`: tokio's timers fire on millisecond ticks, which would send every
/// connection's requests in one burst per tick, so the last stretch yields to the scheduler
/// instead (the client's core stays busy in open loop; the caller re-checks the time).
async fn pace(due: Instant) {
    match due.checked_duration_since(Instant::now()) {
        Some(wait) if wait > SPIN_BELOW => tokio::time::sleep(wait - SPIN_BELOW / 2).await,
        _ => tokio::task::yield_now().await,
    }
}
