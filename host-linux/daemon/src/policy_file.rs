//! `OUT_DIR/policy.json`: the policy applied at run time, kept across restarts and keyed
//! with the seal key (`docs/DAEMON.md`, *Policy file*).
//!
//! Layout: `{"version":N,"sha256":"…","mac":"…","policy":{…}}`. `sha256` is the SHA-256 of
//! the canonical document ([`Policy::canonical_bytes`]), the digest the journal's
//! `policy_applied` event names; `mac` is a [`PolicyTag`] over the run id, the version and
//! those bytes. A file without `mac` was written by an older daemon.
//!
//! `APPLY_POLICY` writes `policy.next.json` first, then journals `policy_applied`, then
//! replaces `policy.json` and removes `policy.next.json` ([`PolicyFiles`]). Whatever a crash
//! interrupts, the journal says which of the two files holds the policy in force
//! ([`super::policy_start`]).

use std::path::{Path, PathBuf};

use heidi_core::journal::{FileTag, PolicyMark, PolicyTag, SealKey};

use crate::kernel::Policy;
use heidi_store::{read_regular, write_state_atomic};

/// The file name inside `OUT_DIR`.
pub(crate) const POLICY_FILE: &str = "policy.json";
/// The file an `APPLY_POLICY` writes before its event is journaled.
pub(crate) const POLICY_NEXT_FILE: &str = "policy.next.json";
/// Largest policy file read.
pub(crate) const POLICY_FILE_MAX_BYTES: u64 = 1024 * 1024;

/// A policy file as read: a valid policy; its digest and MAC not yet judged.
#[derive(Debug)]
pub(crate) struct PolicyFile {
    /// The policy.
    pub(crate) policy: Policy,
    /// Its version.
    pub(crate) version: u64,
    /// The `mac` field, if any (`Err(())`: present but not 64 lowercase hex digits).
    tag: Option<Result<PolicyTag, ()>>,
    /// Whether the `sha256` field is the policy's digest.
    digest_ok: bool,
}

impl PolicyFile {
    /// The version and digest it holds.
    pub(crate) fn mark(&self) -> PolicyMark {
        PolicyMark {
            version: self.version,
            digest: self.policy.digest(),
        }
    }

    /// Its MAC judged with `key` for `run_id`; a wrong `sha256` counts as a wrong MAC.
    pub(crate) fn tag(&self, key: &SealKey, run_id: &str) -> FileTag {
        match &self.tag {
            _ if !self.digest_ok => FileTag::Wrong,
            None => FileTag::Missing,
            Some(Ok(tag))
                if tag.is_authentic(key, run_id, self.version, &self.policy.canonical_bytes()) =>
            {
                FileTag::Authentic
            }
            Some(_) => FileTag::Wrong,
        }
    }
}

/// Reads the policy file at `path`: `Ok(None)` when there is none; an error (naming the file
/// and the field, or the limit) when it is not a regular file of at most
/// [`POLICY_FILE_MAX_BYTES`] holding a valid policy.
pub(crate) fn read(path: &Path) -> Result<Option<PolicyFile>, String> {
    let bad = |what: String| format!("{}: {what}", path.display());
    let Some(bytes) = read_regular(path, POLICY_FILE_MAX_BYTES).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let version = doc["version"]
        .as_u64()
        .filter(|v| *v >= 1)
        .ok_or_else(|| bad("version: must be an integer ≥ 1".into()))?;
    let policy = Policy::from_json(&doc["policy"]).map_err(|e| bad(format!("policy.{e}")))?;
    let digest_ok = doc["sha256"].as_str() == Some(policy.digest_hex().as_str());
    let tag = match &doc["mac"] {
        serde_json::Value::Null => None,
        mac => Some(
            mac.as_str()
                .and_then(|hex| PolicyTag::from_hex(hex.as_bytes()))
                .ok_or(()),
        ),
    };
    Ok(Some(PolicyFile {
        policy,
        version,
        tag,
        digest_ok,
    }))
}

/// The bytes of a keyed policy file.
pub(crate) fn encode(key: &SealKey, run_id: &str, version: u64, policy: &Policy) -> Vec<u8> {
    let canonical = policy.canonical_bytes();
    let mac = PolicyTag::new(key, run_id, version, &canonical)
        .map(|t| t.hex().as_str().to_owned())
        .unwrap_or_default(); // the journal's run id is always valid
    let file = serde_json::json!({
        "version": version,
        "sha256": policy.digest_hex(),
        "mac": mac,
        "policy": policy.to_json(),
    });
    serde_json::to_vec_pretty(&file).expect("a Value always serializes")
}

/// Writes the policy files of one run (`OUT_DIR`, the seal key, the run id).
pub(crate) struct PolicyFiles {
    dir: PathBuf,
    key: SealKey,
    run_id: String,
}

impl PolicyFiles {
    /// The files in `dir`, keyed with `key` for `run_id`.
    pub(crate) fn new(dir: PathBuf, key: SealKey, run_id: String) -> PolicyFiles {
        PolicyFiles { dir, key, run_id }
    }

    /// `OUT_DIR`.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The seal key.
    pub(crate) fn key(&self) -> &SealKey {
        &self.key
    }

    /// The run id.
    pub(crate) fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Writes `policy.next.json` (atomically, synced) before the change is journaled.
    pub(crate) async fn stage(&self, version: u64, policy: &Policy) -> Result<(), String> {
        self.write(POLICY_NEXT_FILE, version, policy).await
    }

    /// Removes `policy.next.json` after its change could not be journaled. A failure is
    /// logged: the file names a version the journal never recorded, so the next start
    /// discards it anyway.
    pub(crate) async fn discard(&self) {
        let path = self.dir.join(POLICY_NEXT_FILE);
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
        if !matches!(removed, Ok(Ok(()))) {
            tracing::warn!("cannot remove {POLICY_NEXT_FILE}; the next start discards it");
        }
    }

    /// Replaces `policy.json` with the journaled change, then removes `policy.next.json`.
    /// A failure is logged: the next start finds the change in `policy.next.json`.
    pub(crate) async fn promote(&self, version: u64, policy: &Policy) {
        if let Err(e) = self.write(POLICY_FILE, version, policy).await {
            tracing::error!("{e}; the next start takes the policy from {POLICY_NEXT_FILE}");
            return;
        }
        self.discard().await;
    }

    /// Replaces `policy.json` now (blocking; at start-up).
    pub(crate) fn write_main_now(&self, version: u64, policy: &Policy) -> Result<(), String> {
        let bytes = encode(&self.key, &self.run_id, version, policy);
        write_state_atomic(&self.dir, POLICY_FILE, &bytes)
            .map_err(|e| format!("cannot write {POLICY_FILE}: {e}"))
    }

    async fn write(&self, name: &'static str, version: u64, policy: &Policy) -> Result<(), String> {
        let dir = self.dir.clone();
        let bytes = encode(&self.key, &self.run_id, version, policy);
        tokio::task::spawn_blocking(move || write_state_atomic(&dir, name, &bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot write {name}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn key() -> SealKey {
        SealKey::new(b"a test seal key of at least thirty-two bytes").unwrap()
    }

    fn write(dir: &Path, value: serde_json::Value) -> PathBuf {
        let path = dir.join(POLICY_FILE);
        std::fs::write(&path, value.to_string()).unwrap();
        path
    }

    #[test]
    fn keyed_files_round_trip_and_their_mac_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(POLICY_FILE);
        assert!(read(&path).unwrap().is_none());
        let policy = Policy::default();
        std::fs::write(&path, encode(&key(), "run-1", 7, &policy)).unwrap();
        let file = read(&path).unwrap().unwrap();
        assert_eq!((file.version, &file.policy), (7, &policy));
        assert_eq!(file.mark().digest, policy.digest());
        assert_eq!(file.tag(&key(), "run-1"), FileTag::Authentic);
        assert_eq!(file.tag(&key(), "run-2"), FileTag::Wrong);
        let other = SealKey::new(b"another key of at least thirty-two bytes").unwrap();
        assert_eq!(file.tag(&other, "run-1"), FileTag::Wrong);

        // The reproduced forgery: a capacity of 4e9 with a correct plain sha256.
        let mut doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        doc["policy"]["limits"]["search"]["capacity_tokens"] = 4_000_000_000u64.into();
        let forged = Policy::from_json(&doc["policy"]).unwrap();
        doc["sha256"] = forged.digest_hex().into();
        write(dir.path(), doc.clone());
        assert_eq!(
            read(&path).unwrap().unwrap().tag(&key(), "run-1"),
            FileTag::Wrong
        );
        // Without a mac: an unkeyed (older) file.
        doc.as_object_mut().unwrap().remove("mac");
        write(dir.path(), doc.clone());
        assert_eq!(
            read(&path).unwrap().unwrap().tag(&key(), "run-1"),
            FileTag::Missing
        );
        // A wrong sha256 is as bad as a wrong mac; a malformed mac too.
        doc["sha256"] = "00".into();
        write(dir.path(), doc.clone());
        assert_eq!(
            read(&path).unwrap().unwrap().tag(&key(), "run-1"),
            FileTag::Wrong
        );
        doc["sha256"] = forged.digest_hex().into();
        doc["mac"] = "xyz".into();
        write(dir.path(), doc);
        assert_eq!(
            read(&path).unwrap().unwrap().tag(&key(), "run-1"),
            FileTag::Wrong
        );
    }

    #[test]
    fn invalid_files_are_refused_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let bad = serde_json::json!({"version": 2, "sha256": "", "policy": {"leases": {"ttl": 1}}});
        let path = write(dir.path(), bad);
        assert!(read(&path).unwrap_err().contains("policy.leases.ttl"));
        let path = write(dir.path(), serde_json::json!({"version": 0, "policy": {}}));
        assert!(read(&path).unwrap_err().contains("version"));
        std::fs::write(&path, "{").unwrap();
        assert!(read(&path).unwrap_err().contains(POLICY_FILE));
        std::fs::write(&path, vec![b' '; POLICY_FILE_MAX_BYTES as usize + 1]).unwrap();
        assert!(read(&path).unwrap_err().contains("limit"));
    }
}
