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
