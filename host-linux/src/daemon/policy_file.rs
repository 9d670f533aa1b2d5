//! `OUT_DIR/policy.json`: the policy applied at run time, kept across restarts.
//!
//! Written atomically after every committed `APPLY_POLICY`:
//! `{"version":N,"sha256":"…","policy":{…}}`. At start-up it takes precedence over the
//! configuration file's `[policy]`, and the version sequence continues from it; delete the
//! file to return to the configured policy (at version 1).

use crate::kernel::Policy;
use crate::store::write_state_atomic;
use std::path::Path;

/// The file name inside `OUT_DIR`.
pub(crate) const POLICY_FILE: &str = "policy.json";

/// A policy restored from `policy.json`.
#[derive(Debug)]
pub(crate) struct Restored {
    /// The policy.
    pub(crate) policy: Policy,
    /// Its version.
    pub(crate) version: u64,
}

/// Reads `OUT_DIR/policy.json`: `Ok(None)` when there is none; an error (naming the file and
/// the field) when it exists but is not a valid policy.
pub(crate) fn load(out_dir: &Path) -> Result<Option<Restored>, String> {
    let path = out_dir.join(POLICY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let bad = |what: String| {
        format!(
            "{}: {what} (delete it to use the configured policy)",
            path.display()
        )
    };
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let version = doc["version"]
        .as_u64()
        .filter(|v| *v >= 1)
        .ok_or_else(|| bad("version: must be an integer ≥ 1".into()))?;
    let policy = Policy::from_json(&doc["policy"]).map_err(|e| bad(format!("policy.{e}")))?;
    if doc["sha256"].as_str() != Some(policy.digest_hex().as_str()) {
        return Err(bad("sha256: does not match the policy document".into()));
    }
    Ok(Some(Restored { policy, version }))
}

/// Replaces `OUT_DIR/policy.json`; a failure is logged (the change is applied and journaled,
/// but would not survive a restart).
pub(crate) async fn save(out_dir: &Path, file: &serde_json::Value) {
    let dir = out_dir.to_path_buf();
    let bytes = serde_json::to_vec_pretty(file).expect("a Value always serializes");
    let written =
        tokio::task::spawn_blocking(move || write_state_atomic(&dir, POLICY_FILE, &bytes)).await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::error!("cannot write policy.json: the applied policy will not survive a restart");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        let policy = Policy::default();
        let file = serde_json::json!({"version": 7, "sha256": policy.digest_hex(), "policy": policy.to_json()});
        std::fs::write(dir.path().join(POLICY_FILE), file.to_string()).unwrap();
        let restored = load(dir.path()).unwrap().unwrap();
        assert_eq!((restored.version, restored.policy), (7, policy.clone()));

        let tampered =
            serde_json::json!({"version": 7, "sha256": "00", "policy": policy.to_json()});
        std::fs::write(dir.path().join(POLICY_FILE), tampered.to_string()).unwrap();
        assert!(load(dir.path()).unwrap_err().contains("sha256"));
        let bad = serde_json::json!({"version": 2, "sha256": "", "policy": {"leases": {"ttl": 1}}});
        std::fs::write(dir.path().join(POLICY_FILE), bad.to_string()).unwrap();
        assert!(load(dir.path()).unwrap_err().contains("policy.leases.ttl"));
    }
}
