//! Creating the Unix socket file: 0600 from the first instant, and a stale file replaced only
//! when nobody listens on it.

use rustix::fs::Mode;
use socket2::{Domain, SockAddr, Socket, Type};
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Binds a listening socket at `path` with permission bits `mode`.
///
/// An existing file at `path` is removed only if it is a socket that refuses connections (a
/// daemon that died without cleaning up). A live socket, or any other kind of file, is an
/// error that names the path.
pub fn bind(path: &Path, mode: u32, backlog: u32) -> io::Result<UnixListener> {
    remove_if_stale(path)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            std::fs::create_dir_all(parent)?;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    // The socket is created with no group or other access at all (umask 0177), then opened up
    // to `mode`, so there is no window in which another user could connect.
    let old = rustix::process::umask(Mode::from_bits_truncate(0o177));
    let bound = listener(path, backlog);
    rustix::process::umask(old);
    let listener = bound.map_err(|e| with_path(e, path, "cannot bind"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// A listening Unix socket at `path` with room for `backlog` connections not yet accepted
/// (std's `bind` allows only 128, so a burst of clients would wait on a full queue).
fn listener(path: &Path, backlog: u32) -> io::Result<UnixListener> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)?;
    socket.bind(&SockAddr::unix(path)?)?;
    socket.listen(listen_backlog(backlog))?;
    Ok(socket.into())
}

/// The `listen(2)` backlog for `connections` (the kernel caps it at `net.core.somaxconn`).
pub fn listen_backlog(connections: u32) -> i32 {
    i32::try_from(connections).unwrap_or(i32::MAX).max(128)
}

fn remove_if_stale(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(with_path(e, path, "cannot inspect")),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            ),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another daemon is listening on {}", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::warn!(path = %path.display(), "replacing a stale socket file nobody listens on");
            std::fs::remove_file(path)
        }
        Err(e) => Err(with_path(e, path, "cannot probe the existing socket")),
    }
}

/// Removes the socket file at shutdown (only if it is still a socket).
pub fn remove(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

fn with_path(e: io::Error, path: &Path, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn socket_is_0600_and_live_sockets_are_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.sock");
        let listener = bind(&path, 0o600, 128).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let e = bind(&path, 0o600, 128).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        drop(listener);
        // Nobody listens now: the stale file is replaced.
        let _again = bind(&path, 0o660, 128).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o660);
    }

    /// Connects without blocking until the listener's queue refuses; how many got in.
    fn queued_connections(path: &Path, most: usize) -> usize {
        let mut held = Vec::new();
        while held.len() < most {
            let s = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
            s.set_nonblocking(true).unwrap();
            match s.connect(&SockAddr::unix(path).unwrap()) {
                Ok(()) => held.push(s),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        held.len()
    }

    #[test]
    fn the_backlog_holds_a_burst_of_max_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.sock");
        let _listener = bind(&path, 0o600, 1024).unwrap();
        // The kernel caps every backlog at net.core.somaxconn (4096 on current kernels).
        let cap: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .map_or(4096, |s| s.trim().parse().unwrap());
        // Nobody accepts: every connection waits in the backlog (the kernel queues one more
        // than asked for).
        assert!(queued_connections(&path, 1100) >= cap.min(1024));
        if cap >= 1024 {
            let small = dir.path().join("small.sock");
            let _listener = bind(&small, 0o600, 128).unwrap();
            assert!(queued_connections(&small, 1100) < 200);
        }
    }

    #[test]
    fn other_files_are_never_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-socket");
        std::fs::write(&path, b"keep me").unwrap();
        let e = bind(&path, 0o600, 128).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }
}
