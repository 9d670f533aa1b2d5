//! One daemon per `OUT_DIR`: an exclusive `flock` on `OUT_DIR/heidid.lock`, held for the life
//! of the process (the kernel drops it when the process dies, even on `kill -9`).

use rustix::fs::{FlockOperation, flock};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// The lock file's name inside `OUT_DIR`.
pub(crate) const LOCK_FILE: &str = "heidid.lock";

/// Takes the lock, creating `out_dir` (0700) if needed. Another live daemon on the same
/// directory is an error that says so.
pub(crate) fn acquire(out_dir: &Path) -> io::Result<File> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(out_dir)?;
    let path = out_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "another heidid is using {} (it holds {})",
                out_dir.display(),
                path.display()
            ),
        )),
        Err(e) => Err(io::Error::from(e)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let first = super::acquire(&out).unwrap();
        let e = super::acquire(&out).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        drop(first);
        super::acquire(&out).unwrap();
    }
}
