//! The seal key file: raw secret bytes, mode 0600, outside `OUT_DIR`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use heidi_core::journal::SealKey;

use super::fsutil::{at, create_private_dir, create_private_file, err, sync_dir};

/// Bytes of secret written to a new key file (raw, from the OS random source).
pub const KEY_FILE_NEW_BYTES: usize = 32;
/// Largest key file read, in bytes; a longer one is refused.
pub const KEY_FILE_MAX_BYTES: usize = 4096;

/// Reads the seal key from `path`, or creates it on first start.
///
/// The file's whole content is the secret (raw bytes, not hex), at least
/// [`SEAL_KEY_MIN_BYTES`](heidi_core::journal::SEAL_KEY_MIN_BYTES) = 32 and at most
/// [`KEY_FILE_MAX_BYTES`]; an operator may provide one with `head -c 32 /dev/urandom`. A new
/// file gets [`KEY_FILE_NEW_BYTES`] random bytes and mode 0600, its missing parent
/// directories mode 0700. An existing file that is not a regular file, or that group or
/// others may access (any of mode 0077), is refused.
pub fn load_or_create_key(path: &Path) -> io::Result<SealKey> {
    match File::open(path) {
        Ok(file) => read_key(path, file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_key(path),
        Err(e) => Err(at(path, e)),
    }
}

/// Reads an existing seal key file under the same rules as [`load_or_create_key`], creating
/// nothing: what `heidi journal verify` uses, so it reads exactly the key the daemon sealed with.
pub fn load_key(path: &Path) -> io::Result<SealKey> {
    let file = File::open(path).map_err(|e| at(path, e))?;
    read_key(path, file)
}

fn read_key(path: &Path, file: File) -> io::Result<SealKey> {
    let meta = file.metadata().map_err(|e| at(path, e))?;
    if !meta.is_file() {
        let msg = format!("seal key {} is not a regular file", path.display());
        return Err(err(io::ErrorKind::InvalidInput, msg));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        let msg = format!(
            "seal key {} has mode {mode:04o}: group or others may access it; run chmod 600",
            path.display()
        );
        return Err(err(io::ErrorKind::PermissionDenied, msg));
    }
    let mut secret = Vec::with_capacity(KEY_FILE_NEW_BYTES);
    let limit = u64::try_from(KEY_FILE_MAX_BYTES).unwrap_or(u64::MAX) + 1;
    file.take(limit)
        .read_to_end(&mut secret)
        .map_err(|e| at(path, e))?;
    if secret.len() > KEY_FILE_MAX_BYTES {
        let msg = format!(
            "seal key {} is longer than {KEY_FILE_MAX_BYTES} bytes",
            path.display()
        );
        return Err(err(io::ErrorKind::InvalidData, msg));
    }
    SealKey::new(&secret).map_err(|weak| {
        err(
            io::ErrorKind::InvalidData,
            format!("{}: {weak}", path.display()),
        )
    })
}

fn create_key(path: &Path) -> io::Result<SealKey> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        create_private_dir(parent)?;
    }
    let mut secret = [0u8; KEY_FILE_NEW_BYTES];
    getrandom::fill(&mut secret).map_err(io::Error::other)?;
    let mut file = match create_private_file(path) {
        Ok(file) => file,
        // Another process created it first: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return read_key(path, OpenOptions::new().read(true).open(path)?);
        }
        Err(e) => return Err(e),
    };
    let written = file.write_all(&secret).and_then(|()| file.sync_all());
    if let Err(e) = written {
        // A short key file would make every later start fail; remove it.
        let _ = std::fs::remove_file(path);
        return Err(at(path, e));
    }
    sync_dir(parent.unwrap_or(Path::new(".")))?;
    SealKey::new(&secret).map_err(|weak| err(io::ErrorKind::InvalidData, weak.to_string()))
}
