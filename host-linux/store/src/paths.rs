//! Default file locations shared by the daemon and the CLI.

use std::path::PathBuf;

/// The journal file name inside `OUT_DIR`.
pub const JOURNAL_FILE: &str = "events.jsonl";
/// The seal file name, beside the journal.
pub const SEALS_FILE: &str = "events.seals";
/// The status file name inside `OUT_DIR`.
pub const STATE_FILE: &str = "state.json";

/// `OUT_DIR` when unset: `$XDG_STATE_HOME/heidi-kernel`, else `~/.local/state/heidi-kernel`,
/// else `./heidi-out`.
pub fn default_out_dir() -> PathBuf {
    xdg_dir("XDG_STATE_HOME", ".local/state")
        .map(|d| d.join("heidi-kernel"))
        .unwrap_or_else(|| PathBuf::from("heidi-out"))
}

/// The seal key file when unset: `$XDG_CONFIG_HOME/heidi-kernel/seal.key`, else
/// `~/.config/heidi-kernel/seal.key`, else `./heidi-seal.key`. It lives outside `OUT_DIR` on
/// purpose: a key beside the journal would let whoever rewrites the journal re-seal it.
pub fn default_key_path() -> PathBuf {
    xdg_dir("XDG_CONFIG_HOME", ".config")
        .map(|d| d.join("heidi-kernel").join("seal.key"))
        .unwrap_or_else(|| PathBuf::from("heidi-seal.key"))
}

fn xdg_dir(var: &str, home_relative: &str) -> Option<PathBuf> {
    let set = |v: String| (!v.is_empty()).then(|| PathBuf::from(v));
    std::env::var(var).ok().and_then(set).or_else(|| {
        std::env::var("HOME")
            .ok()
            .and_then(set)
            .map(|h| h.join(home_relative))
    })
}
