//! Small file-system helpers: private directories and files, directory fsync, path context.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Creates `path` and missing parents with mode 0700 (existing ones are left as they are).
/// A new directory's entry is synced in its parent.
pub(super) fn create_private_dir(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| at(path, e))?;
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Makes a directory entry change (create, rename) durable.
pub(super) fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| at(path, e))
}

/// Opens `path` for appending (`O_APPEND`), creating it with mode 0600; `true` if created.
pub(super) fn open_append(path: &Path) -> io::Result<(File, bool)> {
    let created = OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(file) => Ok((file, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => OpenOptions::new()
            .append(true)
            .open(path)
            .map(|f| (f, false))
            .map_err(|e| at(path, e)),
        Err(e) => Err(at(path, e)),
    }
}

/// Creates a new file with mode 0600 for writing; fails if it exists.
pub(super) fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| at(path, e))
}

/// `e` with `path` in front of its message.
pub(super) fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// An error of `kind` with `msg`.
pub(super) fn err(kind: io::ErrorKind, msg: String) -> io::Error {
    io::Error::new(kind, msg)
}

/// `n` random bytes as lowercase hex.
pub(super) fn random_hex(n: usize) -> io::Result<String> {
    let key = crate::clock::random_key()?;
    Ok(key.iter().take(n).map(|b| format!("{b:02x}")).collect())
}
