//! Start-up and readiness of a real `heidid`: systemd notification once the sockets listen,
//! configuration errors that name the field, a live socket or a locked OUT_DIR refused, the
//! socket created 0600.

mod common;

use common::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::process::Command;

fn heidid() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_heidid"));
    for (k, _) in std::env::vars() {
        if k.starts_with("HEIDI") || k == "OUT_DIR" || k == "RUN_ID" || k == "NOTIFY_SOCKET" {
            cmd.env_remove(k);
        }
    }
    cmd.env("HEIDI_LOG", "warn");
    cmd
}

#[test]
fn ready_is_notified_once_the_socket_listens_and_stopping_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(DEADLINE)).unwrap();
    let socket = dir.path().join("k.sock");
    let mut child = heidid()
        .arg("--socket")
        .arg(&socket)
        .arg("--no-http")
        .arg("--out-dir")
        .arg(dir.path().join("out"))
        .arg("--seal-key")
        .arg(dir.path().join("seal.key"))
        .env("NOTIFY_SOCKET", &notify_path)
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).expect("a notification");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    // At READY=1 the socket already accepts, with mode 0600.
    assert!(UnixStream::connect(&socket).is_ok());
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let n = notify.recv(&mut buf).expect("a STOPPING notification");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    assert!(wait_exit(&mut child).success(), "SIGINT exits 0");
}

#[test]
fn bad_configuration_stops_start_up_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[limits]\nmax_connections = 0\n").unwrap();
    let out = heidid().arg("--config").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("limits.max_connections"), "{stderr}");

    std::fs::write(&config, "[policy.limits.search]\ncapacity_tokens = 0\n").unwrap();
    let out = heidid().arg("--config").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("policy.limits.search.capacity_tokens"));

    let out = heidid().args(["--http-bind", "0.0.0.0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http.bind"));
    // Restricting a class while HTTP serves without a token would let HTTP callers past it.
    std::fs::write(&config, "[authorization]\nadmin_uids = [0]\n").unwrap();
    let out = heidid().arg("--config").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("authorization") && stderr.contains("http.token"),
        "{stderr}"
    );
    std::fs::write(&config, "[authorization]\nadmin_gids = [4294967295]\n").unwrap();
    let out = heidid().arg("--config").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("authorization.admin_gids"), "{stderr}");
}

#[test]
fn a_live_socket_and_a_locked_out_dir_are_not_taken_over() {
    let d = Daemon::start(&[]);
    let other = tempfile::tempdir().unwrap();
    // Same socket, another OUT_DIR: someone listens there, so it is refused.
    let out = heidid()
        .arg("--socket")
        .arg(&d.socket)
        .arg("--no-http")
        .arg("--out-dir")
        .arg(other.path().join("out"))
        .arg("--seal-key")
        .arg(other.path().join("seal.key"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another daemon is listening"));
    // Another socket, same OUT_DIR: the lock refuses it.
    let out = heidid()
        .arg("--socket")
        .arg(other.path().join("k2.sock"))
        .arg("--no-http")
        .arg("--out-dir")
        .arg(&d.out_dir)
        .arg("--seal-key")
        .arg(&d.key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another heidid is using"));
    // The first daemon was not disturbed.
    assert_eq!(d.call("PING", json!({}))["pong"], true);
}

#[test]
fn dash_h_is_the_http_host_and_help_is_long() {
    for host in ["127.0.0.1", "localhost"] {
        let d = Daemon::start(&["-h", host]);
        let (code, body) = d.http_get("/api/v1/status");
        assert_eq!(code, 200, "-h {host}: {body}");
    }
    let d = Daemon::start(&["--host", "127.0.0.1"]);
    assert_eq!(d.http_get("/healthz").0, 200);
    // The loopback guard of --http-bind applies to -h.
    let out = heidid().args(["-h", "0.0.0.0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http.bind"));
    let out = heidid().args(["-h", "evil.example"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an IP address or localhost"));
    // -h alone wants a value; --help prints help.
    let out = heidid().arg("-h").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = heidid().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "-h, --http-bind <HOST>",
        "--host",
        "-d, --daemon",
        "-p, --port",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    // The Host guard admits all of 127.0.0.0/8 (heidi_core::proto::http_guard): so says help.
    assert!(
        help.contains("127.0.0.0/8 or [::1]) or localhost"),
        "--help names the loopback range the Host guard admits:\n{help}"
    );
}

/// A detached daemon, killed when the test ends however it ends.
struct Detached {
    pid: i32,
}

impl Detached {
    fn alive(&self) -> bool {
        // A zombie (its parent exited; init reaps it) counts as gone.
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
            .unwrap_or(false)
    }

    fn signal(&self, signal: rustix::process::Signal) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid) {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        if self.alive() {
            self.signal(rustix::process::Signal::KILL);
        }
    }
}

fn fd_target(pid: i32, fd: u32) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap()
}

#[test]
fn dash_d_detaches_once_listening_and_sigterm_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("k.sock");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = heidid()
        .arg("-d")
        .args(["-p", &port.to_string()])
        .arg("--socket")
        .arg(&socket)
        .arg("--out-dir")
        .arg(dir.path().join("out"))
        .arg("--seal-key")
        .arg(dir.path().join("seal.key"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pid: i32 = stdout.trim().parse().unwrap_or_else(|_| {
        panic!(
            "no pid on stdout: {stdout:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let daemon = Detached { pid };
    assert!(out.status.success(), "{:?}", out.status);
    // The parent returned only once the daemon listens on both listeners.
    assert!(daemon.alive());
    assert!(UnixStream::connect(&socket).is_ok());
    assert_eq!(http(port, "GET", "/readyz", None).0, 200);
    // Its own session, stdio on /dev/null, the working directory kept.
    // Read from /proc: in a container whose session leader lives outside the PID
    // namespace, getsid(2) answers 0 for this test process.
    let session = |pid: i32| -> i32 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 1..];
        // Fields after the name: state, ppid, pgrp, session.
        after_name
            .split_whitespace()
            .nth(3)
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(session(pid), pid, "the daemon leads a session of its own");
    assert_ne!(session(std::process::id() as i32), pid);
    for fd in 0..3 {
        assert_eq!(
            fd_target(pid, fd),
            std::path::Path::new("/dev/null"),
            "fd {fd}"
        );
    }
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(cwd, std::env::current_dir().unwrap());

    daemon.signal(rustix::process::Signal::TERM);
    let start = std::time::Instant::now();
    while daemon.alive() {
        assert!(
            start.elapsed() < DEADLINE,
            "the detached daemon ignored SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let journal = read_lines(&dir.path().join("out").join("events.jsonl"));
    assert!(journal.last().unwrap().contains("daemon_stopped"));
}

#[test]
fn dash_d_reports_a_failed_start_with_its_status_and_message() {
    // A configuration error: exit 2, the message names the field.
    let out = heidid()
        .args(["-d", "--http-bind", "0.0.0.0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http.bind"));
    assert!(out.stdout.is_empty());
    // A failure after the configuration (the OUT_DIR is locked): exit 1 with the reason.
    let d = Daemon::start(&[]);
    let other = tempfile::tempdir().unwrap();
    let out = heidid()
        .arg("-d")
        .arg("--no-http")
        .arg("--socket")
        .arg(other.path().join("k2.sock"))
        .arg("--out-dir")
        .arg(&d.out_dir)
        .arg("--seal-key")
        .arg(&d.key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another heidid is using"));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_group_or_world_writable_out_dir_is_warned_about() {
    let mut d = Daemon::start(&[]);
    assert!(d.stop().success());
    let quiet = d.spawn_logged(&[]);
    assert!(d.stop().success());
    let log = std::fs::read_to_string(quiet).unwrap();
    assert!(!log.contains("OUT_DIR is writable"), "{log}");

    std::fs::set_permissions(&d.out_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let warned = d.spawn_logged(&[]);
    assert!(d.stop().success());
    let log = std::fs::read_to_string(warned).unwrap();
    assert!(
        log.contains("WARN") && log.contains("OUT_DIR is writable by group and others"),
        "{log}"
    );
}
