//! A warning at start when `OUT_DIR` is writable by group or others: whoever can write it
//! can delete or replace `events.seals`, `policy.json` and `state.json`. The seals and the
//! policy file's MAC make such changes evident, but cannot undo them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Who besides the owner may write a directory of mode `mode`, if anyone.
pub(crate) fn writable_by_others(mode: u32) -> Option<&'static str> {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => Some("group and others"),
        (true, false) => Some("group"),
        (false, true) => Some("others"),
        (false, false) => None,
    }
}

/// Logs a warning (target `heidid`) when `dir` is group- or world-writable.
pub(crate) fn warn_if_shared(dir: &Path) {
    let Ok(meta) = std::fs::metadata(dir) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o7777;
    if let Some(who) = writable_by_others(mode) {
        tracing::warn!(
            target: "heidid",
            path = %dir.display(),
            mode = format!("{mode:04o}"),
            "OUT_DIR is writable by {who}: they can delete or replace the journal's seals and \
             policy.json; run chmod go-w on it (heidid creates it 0700)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_or_world_write_is_named() {
        assert_eq!(writable_by_others(0o700), None);
        assert_eq!(writable_by_others(0o755), None);
        assert_eq!(writable_by_others(0o750), None);
        assert_eq!(writable_by_others(0o770), Some("group"));
        assert_eq!(writable_by_others(0o707), Some("others"));
        assert_eq!(writable_by_others(0o1777), Some("group and others"));
    }
}
