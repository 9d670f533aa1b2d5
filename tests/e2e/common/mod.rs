//! The end-to-end harness: start `heidid` in a temp dir, talk to it over its socket and HTTP,
//! stop it with a signal or kill it, and look at its files.

#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod grpc;

use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Bounded waits: everything here gives up after this long.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub out_dir: PathBuf,
    pub key: PathBuf,
    pub port: u16,
    pub child: Option<Child>,
    extra_args: Vec<String>,
    config: Option<String>,
    /// `Some(dir)`: started with no `--socket` flag and `XDG_RUNTIME_DIR=dir`.
    runtime_dir: Option<PathBuf>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// `Some(file)`: the daemon's stderr (its log) is appended there.
    pub log: Option<PathBuf>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Daemon {
    /// Starts a daemon with defaults plus `args`.
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::start_with_config(args, None)
    }

    /// Starts a daemon with a TOML configuration file.
    pub fn start_with_config(args: &[&str], config: Option<&str>) -> Daemon {
        Daemon::start_with_env(args, config, &[])
    }

    /// Starts a daemon with a TOML configuration file and extra environment variables.
    pub fn start_with_env(args: &[&str], config: Option<&str>, env: &[(&str, &str)]) -> Daemon {
        let mut d = Daemon::unstarted(args, config, env);
        d.spawn();
        d
    }

    /// Starts a daemon like [`Daemon::start_with_env`] whose log (stderr, JSON lines, level
    /// `info`) is kept in `d.log`.
    pub fn start_logged(args: &[&str], config: Option<&str>, env: &[(&str, &str)]) -> Daemon {
        let mut d = Daemon::unstarted(args, config, env);
        d.env.push(("HEIDI_LOG".into(), "info".into()));
        d.extra_args.extend(["--log-format".into(), "json".into()]);
        d.log = Some(d.dir.path().join("heidid.log"));
        d.spawn();
        d
    }

    /// The log lines of a daemon from [`Daemon::start_logged`], parsed.
    pub fn log_lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.log.as_ref().unwrap()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    fn unstarted(args: &[&str], config: Option<&str>, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        Daemon {
            socket: dir.path().join("k.sock"),
            out_dir: dir.path().join("out"),
            key: dir.path().join("keys").join("seal.key"),
            port: free_port(),
            dir,
            child: None,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            config: config.map(str::to_owned),
            runtime_dir: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log: None,
        }
    }

    /// Starts a daemon with NO `--socket` flag and `XDG_RUNTIME_DIR` set to a fresh directory
    /// (`d.runtime_dir()`), so it listens at the default `$XDG_RUNTIME_DIR/heidi-kernel.sock`.
    pub fn start_in_runtime_dir(args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().join("run");
        std::fs::create_dir(&runtime).unwrap();
        let mut d = Daemon {
            socket: runtime.join("heidi-kernel.sock"),
            out_dir: dir.path().join("out"),
            key: dir.path().join("keys").join("seal.key"),
            port: free_port(),
            dir,
            child: None,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            config: None,
            runtime_dir: Some(runtime),
            env: Vec::new(),
            log: None,
        };
        d.spawn();
        d
    }

    /// The `XDG_RUNTIME_DIR` of a daemon from [`Daemon::start_in_runtime_dir`].
    pub fn runtime_dir(&self) -> Option<&Path> {
        self.runtime_dir.as_deref()
    }

    /// `heidi --socket <this daemon's socket>` with the `HEIDI*` and `XDG_RUNTIME_DIR`
    /// variables removed.
    pub fn heidi(&self) -> Command {
        let mut cmd = heidi_bare();
        cmd.arg("--socket").arg(&self.socket);
        cmd
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_heidid"));
        for (k, _) in std::env::vars() {
            let pipeline_var = ["ROUNDS", "RUN_UNIT_TESTS", "MAX_CPU_PCT", "MAX_MEM_PCT"]
                .contains(&k.as_str())
                || k == "MAX_WALL_TIME_MINUTES"
                || k == "PIPELINE_MODE";
            if pipeline_var
                || k.starts_with("HEIDI")
                || k == "OUT_DIR"
                || k == "RUN_ID"
                || k == "XDG_RUNTIME_DIR"
            {
                cmd.env_remove(k);
            }
        }
        match &self.runtime_dir {
            None => {
                cmd.arg("--socket").arg(&self.socket);
            }
            Some(dir) => {
                cmd.env("XDG_RUNTIME_DIR", dir);
            }
        }
        cmd.arg("-p")
            .arg(self.port.to_string())
            .arg("--out-dir")
            .arg(&self.out_dir)
            .arg("--seal-key")
            .arg(&self.key)
            .env("HEIDI_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(&self.extra_args)
            .stdin(Stdio::null());
        if let Some(path) = &self.log {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            cmd.stderr(file);
        }
        if let Some(text) = &self.config {
            let path = self.dir.path().join("heidid.toml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("--config").arg(path);
        }
        cmd
    }

    /// (Re)starts the process and waits until it is ready.
    pub fn spawn(&mut self) {
        let child = self.command().spawn().expect("spawn heidid");
        self.child = Some(child);
        self.wait_ready();
    }

    /// (Re)starts the process with `args` added for this start only, its stderr written to
    /// the returned file, and waits until it is ready.
    pub fn spawn_logged(&mut self, args: &[&str]) -> PathBuf {
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.dir.path().join(format!("heidid-{n}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = self
            .command()
            .args(args)
            .stderr(file)
            .spawn()
            .expect("spawn heidid");
        self.child = Some(child);
        self.wait_ready();
        log
    }

    /// Starts the process with `args` added, expecting it to exit during start-up (it is
    /// killed if it still runs after [`DEADLINE`]); returns its exit code and stderr.
    pub fn start_refused(&self, args: &[&str]) -> (Option<i32>, String) {
        let log = self.dir.path().join("refused.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut child = self
            .command()
            .args(args)
            .stderr(file)
            .spawn()
            .expect("spawn heidid");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stderr = std::fs::read_to_string(&log).unwrap();
        let status = status.unwrap_or_else(|| panic!("heidid did not refuse to start: {stderr}"));
        (status.code(), stderr)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("heidid exited during start-up: {status}");
            }
            if UnixStream::connect(&self.socket).is_ok() && self.http_get("/readyz").0 == 200 {
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "heidid not ready within {DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        wait_exit(&mut child)
    }

    /// SIGKILL, no cleanup.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        let _ = child.wait();
    }

    pub fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s
    }

    /// One framed call on a fresh connection (as the kernel-bridge client does).
    pub fn call(&self, method: &str, params: Value) -> Value {
        let mut s = self.connect();
        write_request(&mut s, method, params);
        read_frame(&mut s).expect("a reply frame")
    }

    pub fn http_get(&self, path: &str) -> (u16, String) {
        http(self.port, "GET", path, None)
    }

    pub fn http_post(&self, path: &str, body: &str) -> (u16, String) {
        http(self.port, "POST", path, Some(body))
    }

    pub fn journal(&self) -> PathBuf {
        self.out_dir.join("events.jsonl")
    }

    pub fn seals(&self) -> PathBuf {
        self.out_dir.join("events.seals")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn wait_exit(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "heidid did not exit within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

pub fn write_request(s: &mut UnixStream, method: &str, params: Value) {
    try_write_request(s, method, params).unwrap();
}

/// [`write_request`] that reports a failed write (a daemon killed meanwhile).
pub fn try_write_request(s: &mut UnixStream, method: &str, params: Value) -> std::io::Result<()> {
    let body = serde_json::json!({"method": method, "params": params, "timestamp": 1700000000.123});
    s.write_all(&frame(body.to_string().as_bytes()))
}

/// Reads one frame; `None` at EOF.
pub fn read_frame(s: &mut UnixStream) -> Option<Value> {
    let mut len = [0u8; 4];
    if s.read_exact(&mut len).is_err() {
        return None;
    }
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    Some(serde_json::from_slice(&body).expect("reply is JSON"))
}

/// Sends `text` in line mode and reads until `lines` lines came back.
pub fn line_exchange(d: &Daemon, text: &str, lines: usize) -> Vec<String> {
    let mut s = d.connect();
    s.write_all(text.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.iter().filter(|b| **b == b'\n').count() < lines {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "connection closed early: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A minimal HTTP/1.1 request over a fresh TCP connection (`Connection: close`).
pub fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    http_with(port, method, path, body, &[])
}

pub fn http_with(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[&str],
) -> (u16, String) {
    let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let body = body.unwrap_or("");
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    http_raw_on(s, &req)
}

/// Sends `request` exactly as given (head and body) on a fresh connection; the status and
/// body of the reply, or `(0, "")` when nobody listens.
pub fn http_raw(port: u16, request: &str) -> (u16, String) {
    let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    http_raw_on(s, request)
}

fn http_raw_on(mut s: std::net::TcpStream, req: &str) -> (u16, String) {
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Open file descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

pub fn heidi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_heidi"))
}

/// `heidi` with no flags and the `HEIDI*` and `XDG_RUNTIME_DIR` variables removed, so only
/// what the test sets reaches it.
pub fn heidi_bare() -> Command {
    let mut cmd = heidi();
    for (k, _) in std::env::vars() {
        if k.starts_with("HEIDI") || k == "XDG_RUNTIME_DIR" {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// A finished command's exit code, stdout and stderr.
pub fn run_cmd(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("run the command");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// How the daemon names this test process as a socket peer: `uid=U gid=G pid=P`.
pub fn socket_peer() -> String {
    format!(
        "uid={} gid={} pid={}",
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
        std::process::id()
    )
}

/// Appends events (`event_type` `burst`, message `"{tag} {i}"`) from a thread, one
/// connection per event, until `stop_at` are acknowledged, then `kill -9`s the daemon in the
/// middle of the stream. `on_ack(line, hash, message)` sees each acknowledged event.
pub fn append_then_kill9(
    d: &mut Daemon,
    tag: &str,
    stop_at: usize,
    mut on_ack: impl FnMut(u64, &str, &str) + Send + 'static,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = Arc::new(AtomicUsize::new(0));
    let (socket, tag) = (d.socket.clone(), tag.to_owned());
    let writer = {
        let count = count.clone();
        std::thread::spawn(move || {
            for i in 0.. {
                let message = format!("{tag} {i}");
                let Ok(mut s) = UnixStream::connect(&socket) else {
                    return;
                };
                s.set_read_timeout(Some(DEADLINE)).unwrap();
                // The kill may come between the connect and the write: the stream then ends.
                let params = serde_json::json!({"event_type": "burst", "message": message});
                if try_write_request(&mut s, "JOURNAL_APPEND", params).is_err() {
                    return;
                }
                match read_frame(&mut s) {
                    Some(reply) if reply["ok"] == true => {
                        let line = reply["line"].as_u64().unwrap();
                        on_ack(line, reply["hash"].as_str().unwrap(), &message);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => return,
                }
            }
        })
    };
    let start = Instant::now();
    while count.load(Ordering::Relaxed) < stop_at {
        assert!(start.elapsed() < DEADLINE, "appends too slow");
        std::thread::yield_now();
    }
    d.kill9();
    writer.join().unwrap();
}
