//! [`Fields`]: reads one JSON object field by field, with errors that name the field's full
//! path (`limits.search.capacity_tokens`, `params.cost`) and refuse unknown fields.
//!
//! Shared by request parameters and the policy document, so both speak the same language:
//! `<path>: <reason>`.

use heidi_core::proto::ErrorCode;
use serde_json::{Map, Value};

use super::reply::Fail;

mod unique;

use unique::{UniqueError, parse_unique};

/// A field that is missing, of the wrong type, out of range or unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// The field's full dotted path.
    pub(crate) field: String,
    /// What is wrong with it.
    pub(crate) reason: String,
}

/// One JSON object being read. Every getter records the field name, so [`Fields::finish`]
/// can refuse the fields nobody asked for and list the expected ones.
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
    asked: Vec<&'static str>,
}

/// Joins a parent path and a field name.
pub(crate) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

impl<'a> Fields<'a> {
    /// Reads `value`, which must be an object; `path` names it in errors (`""` for a root whose
    /// fields are named bare).
    pub(crate) fn new(value: &'a Value, path: &str) -> Result<Fields<'a>, FieldError> {
        match value {
            Value::Object(map) => Ok(Fields {
                map,
                path: path.to_owned(),
                asked: Vec::new(),
            }),
            _ => Err(FieldError {
                field: if path.is_empty() { "(document)" } else { path }.to_owned(),
                reason: "must be an object".to_owned(),
            }),
        }
    }

    /// An error about field `name` of this object.
    pub(crate) fn error(&self, name: &str, reason: impl Into<String>) -> FieldError {
        FieldError {
            field: join(&self.path, name),
            reason: reason.into(),
        }
    }

    /// The raw value of `name`; JSON `null` counts as absent.
    pub(crate) fn raw(&mut self, name: &'static str) -> Option<&'a Value> {
        self.asked.push(name);
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// Refuses the first field (in key order) that no getter asked for.
    pub(crate) fn finish(self) -> Result<(), FieldError> {
        match self.map.keys().find(|k| !self.asked.contains(&k.as_str())) {
            None => Ok(()),
            Some(unknown) => {
                let mut expected = self.asked.clone();
                expected.sort_unstable();
                expected.dedup();
                let reason = if expected.is_empty() {
                    "unknown field (this object takes no fields)".to_owned()
                } else {
                    format!("unknown field (expected one of: {})", expected.join(", "))
                };
                Err(self.error(unknown, reason))
            }
        }
    }
}

/// Parses a request's `params` text into a [`Value`], refusing a duplicate key at any depth
/// (`serde_json` would keep the last one): `BAD_REQUEST` with `params.cost: duplicate field`,
/// or `params: <serde_json's message>` for text that is not JSON.
pub(crate) fn parse_params(text: &str) -> Result<Value, Fail> {
    parse_unique(text, "params").map_err(|e| {
        let message = match e {
            UniqueError::Duplicate(path) => format!("{path}: duplicate field"),
            UniqueError::Syntax(why) => format!("params: {why}"),
        };
        Fail::new(ErrorCode::BadRequest, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_name_the_full_path_and_refuse_unknown_fields() {
        let doc = json!({"policy": {}, "x": 1});
        let mut root = Fields::new(&doc, "params").unwrap();
        assert!(root.raw("policy").is_some());
        assert_eq!(root.error("policy", "bad").field, "params.policy");
        let e = root.finish().unwrap_err();
        assert_eq!(e.field, "params.x");
        assert_eq!(e.reason, "unknown field (expected one of: policy)");
        let empty = json!({"y": null});
        let e = Fields::new(&empty, "params").unwrap().finish().unwrap_err();
        assert_eq!(e.reason, "unknown field (this object takes no fields)");
    }

    #[test]
    fn null_is_absent_and_non_objects_are_refused() {
        let doc = json!({"n": null});
        let mut f = Fields::new(&doc, "params").unwrap();
        assert_eq!(f.raw("n"), None);
        assert!(f.finish().is_ok());
        let e = Fields::new(&json!([1]), "params").err().unwrap();
        assert_eq!(
            (e.field.as_str(), e.reason.as_str()),
            ("params", "must be an object")
        );
        let e = Fields::new(&json!(1), "").err().unwrap();
        assert_eq!(e.field, "(document)");
    }

    #[test]
    fn params_with_a_duplicate_are_a_bad_request_naming_the_path() {
        let text = r#"{"key":"a","operation":"other","cost":1,"cost":2}"#;
        let fail = parse_params(text).unwrap_err();
        assert_eq!(fail.code, ErrorCode::BadRequest);
        assert_eq!(fail.message, "params.cost: duplicate field");
        let fail = parse_params("{").unwrap_err();
        assert_eq!(fail.code, ErrorCode::BadRequest);
        assert!(fail.message.starts_with("params: EOF"), "{}", fail.message);
        assert_eq!(parse_params(r#"{"cost":2}"#).unwrap(), json!({"cost": 2}));
    }
}
