//! An in-test fake daemon (feature `fake`): a std `UnixListener` thread that speaks the
//! framing, one thread per connection running the test's handler.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A listening fake daemon; stops accepting when dropped.
pub struct FakeServer {
    /// The socket it listens on.
    pub path: PathBuf,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl FakeServer {
    /// Serves every connection with `handler(n, stream)`, `n` counting connections from 0.
    pub fn start(handler: impl Fn(usize, UnixStream) + Send + Sync + 'static) -> FakeServer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fake.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let (count, halt) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let n = count.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                std::thread::spawn(move || handler(n, stream));
            }
        });
        FakeServer {
            path,
            accepted,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// Answers each request with `reply(request)`.
    pub fn json(reply: impl Fn(&Value) -> Value + Send + Sync + 'static) -> FakeServer {
        FakeServer::start(move |_, mut stream| {
            if let Some(request) = read_request(&mut stream) {
                write_reply(&mut stream, &reply(&request));
            }
        })
    }

    /// The endpoint string of this server.
    pub fn endpoint(&self) -> crate::endpoint::Endpoint {
        crate::endpoint::Endpoint::Unix(self.path.clone())
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.path); // wake the accept loop
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one framed request and parses it.
pub fn read_request(stream: &mut UnixStream) -> Option<Value> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// Writes one framed reply.
pub fn write_reply(stream: &mut UnixStream, reply: &Value) {
    let body = serde_json::to_vec(reply).unwrap();
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    let _ = stream.write_all(&frame);
}

/// A one-way gate: threads wait until the test opens it (or a deadline passes).
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    /// Opens the gate for every waiter.
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    /// Waits until open, at most 20 s (so a failing test cannot hang).
    pub fn wait(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut open = self.open.lock().unwrap();
        while !*open {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            open = self.opened.wait_timeout(open, left).unwrap().0;
        }
    }
}

/// Polls `cond` until it holds or 10 s pass; returns whether it held.
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::yield_now();
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// A sleeper that records delays instead of sleeping.
#[derive(Default)]
pub struct RecordingSleeper(pub Mutex<Vec<Duration>>);

impl super::Sleeper for RecordingSleeper {
    fn sleep(&self, delay: Duration) {
        self.0.lock().unwrap().push(delay);
    }
}

/// A telemetry sink that keeps every event as (method, status, retry_count).
#[derive(Default)]
pub struct RecordingTelemetry(pub Mutex<Vec<(String, super::CallStatus, u32)>>);

impl super::Telemetry for RecordingTelemetry {
    fn record(&self, e: &super::CallEvent<'_>) {
        let entry = (e.method.to_owned(), e.status, e.retry_count);
        self.0.lock().unwrap().push(entry);
    }
}
