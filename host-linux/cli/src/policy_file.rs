//! `heidi policy apply FILE`: a policy document from JSON or TOML (by extension), as JSON.

use std::path::Path;

use serde_json::Value;

/// Largest policy file read (the request limit is far smaller; this only bounds the read).
pub const POLICY_FILE_MAX_BYTES: u64 = 1024 * 1024;

/// Reads `path` as JSON (`.json`) or TOML (`.toml`, converted to JSON). The document must be
/// an object (a table).
pub fn load_policy(path: &Path) -> Result<Value, String> {
    let shown = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{shown}: {e}"))?
        .len();
    if size > POLICY_FILE_MAX_BYTES {
        return Err(format!(
            "{shown}: {size} bytes is above the limit of {POLICY_FILE_MAX_BYTES}"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let doc = match ext.as_deref() {
        Some("json") => {
            serde_json::from_str::<Value>(&text).map_err(|e| format!("{shown}: {e}"))?
        }
        Some("toml") => {
            let table: toml::Table = toml::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
            serde_json::to_value(table).map_err(|e| format!("{shown}: {e}"))?
        }
        _ => return Err(format!("{shown}: expected a .json or .toml file")),
    };
    if !doc.is_object() {
        return Err(format!("{shown}: the policy must be an object"));
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_and_toml_give_the_same_document() {
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("p.json");
        std::fs::write(&j, r#"{"limits":{"api":{"rate":5,"burst":10}},"name":"x"}"#).unwrap();
        let t = dir.path().join("p.TOML");
        std::fs::write(&t, "name = \"x\"\n[limits.api]\nrate = 5\nburst = 10\n").unwrap();
        let expected = json!({"limits": {"api": {"rate": 5, "burst": 10}}, "name": "x"});
        assert_eq!(load_policy(&j).unwrap(), expected);
        assert_eq!(load_policy(&t).unwrap(), expected);
    }

    #[test]
    fn bad_files_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("a.yaml", "x: 1"),
            ("b.json", "[1]"),
            ("c.json", "{"),
            ("d.toml", "= 1"),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            let e = load_policy(&p).unwrap_err();
            assert!(e.contains(name), "{e}");
        }
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; POLICY_FILE_MAX_BYTES as usize + 1]).unwrap();
        assert!(load_policy(&big).unwrap_err().contains("limit"));
        assert!(load_policy(&dir.path().join("missing.json")).is_err());
    }
}
