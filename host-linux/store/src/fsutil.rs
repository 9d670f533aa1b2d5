//! Small file-system helpers: private directories and files, directory fsync, path context,
//! and reading files in `OUT_DIR` that someone else may have replaced.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read};
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

/// Opens `path` for reading, `Ok(None)` when it does not exist; anything but a regular file
/// (a FIFO, a device such as `/dev/zero`, a directory, also behind a symlink) is an
/// `InvalidData` error naming it. The open does not block (`O_NONBLOCK`: a FIFO without a
/// writer would hold start-up forever) and the type is checked on the opened handle, so the
/// file cannot be swapped between the check and the read.
pub(crate) fn open_regular(path: &Path) -> io::Result<Option<File>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(at(path, e)),
    };
    let meta = file.metadata().map_err(|e| at(path, e))?;
    if !meta.is_file() {
        let msg = format!("{} is not a regular file", path.display());
        return Err(err(io::ErrorKind::InvalidData, msg));
    }
    Ok(Some(file))
}

/// Reads the regular file `path` whole, `Ok(None)` when it does not exist. Anything but a
/// regular file (a FIFO, a device, a directory, also behind a symlink) is an `InvalidData`
/// error, and the open does not block (`open_regular`); more than `max` bytes is an
/// `InvalidData` error naming the limit (at most `max + 1` bytes are read, whatever the file
/// claims or grows to).
pub fn read_regular(path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let Some(file) = open_regular(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| at(path, e))?;
    if bytes.len() as u64 > max {
        let msg = format!("{} is above the limit of {max} bytes", path.display());
        return Err(err(io::ErrorKind::InvalidData, msg));
    }
    Ok(Some(bytes))
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
    let key = heidi_common::clock::random_key()?;
    Ok(key.iter().take(n).map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_regular_refuses_what_is_not_a_bounded_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(read_regular(&path, 4).unwrap().is_none(), "absent");
        std::fs::write(&path, b"1234").unwrap();
        assert_eq!(read_regular(&path, 4).unwrap().unwrap(), b"1234");
        std::fs::write(&path, b"12345").unwrap();
        let e = read_regular(&path, 4).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("limit of 4 bytes"), "{e}");
        std::fs::remove_file(&path).unwrap();
        // Neither blocks: a FIFO without a writer, an endless device behind a symlink.
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &path,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let e = read_regular(&path, 4).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let e = read_regular(&path, 4).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = open_regular(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("not a regular file"),
            "a directory: {e}"
        );
    }
}
