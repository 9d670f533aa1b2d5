//! Atomic replacement of small status files (`state.json`).

use std::io::{self, Write};
use std::path::Path;

use super::fsutil::{at, create_private_file, err, random_hex, sync_dir};

/// Replaces `dir/file_name` with `bytes` atomically: writes a temporary file (mode 0600) in
/// the same directory, fsyncs it, renames it over the target and fsyncs the directory.
/// A reader sees the old content or the new, never a mix; on error the temporary file is
/// removed. `file_name` must be a plain file name (no `/`, not `.` or `..`).
pub fn write_state_atomic(dir: &Path, file_name: &str, bytes: &[u8]) -> io::Result<()> {
    let plain = !file_name.is_empty()
        && file_name != "."
        && file_name != ".."
        && !file_name.contains(['/', '\0']);
    if !plain {
        let msg = format!("state file name {file_name:?} is not a plain file name");
        return Err(err(io::ErrorKind::InvalidInput, msg));
    }
    let tmp = dir.join(temp_name(file_name, std::process::id(), &random_hex(4)?));
    let result = write_then_rename(&tmp, &dir.join(file_name), bytes).and_then(|()| sync_dir(dir));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The temporary file name of [`write_state_atomic`]: `.<file name>.<pid>.<hex>.tmp`
/// (removed at the next open when a crash leaves it; see `segments::is_state_temp`).
pub(super) fn temp_name(file_name: &str, pid: u32, hex: &str) -> String {
    format!(".{file_name}.{pid}.{hex}.tmp")
}

fn write_then_rename(tmp: &Path, target: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = create_private_file(tmp)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| at(tmp, e))?;
    drop(file);
    std::fs::rename(tmp, target).map_err(|e| at(target, e))
}
