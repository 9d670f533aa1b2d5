//! [`Fields`]: reads one JSON object field by field, with errors that name the field's full
//! path (`limits.search.capacity_tokens`, `params.cost`) and refuse unknown fields.
//!
//! Shared by request parameters and the policy document, so both speak the same language:
//! `<path>: <reason>`.

use heidi_core::Duration;
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

    /// This object's dotted path.
    pub(crate) fn path(&self) -> &str {
        &self.path
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

    /// Whether `name` is present with the value `null` (marks it asked).
    pub(crate) fn is_null(&mut self, name: &'static str) -> bool {
        self.asked.push(name);
        self.map.get(name).is_some_and(Value::is_null)
    }

    /// An integer in `min..=max`, if present.
    pub(crate) fn u64_in(
        &mut self,
        name: &'static str,
        min: u64,
        max: u64,
    ) -> Result<Option<u64>, FieldError> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(self.error(name, format!("must be an integer from {min} to {max}"))),
        }
    }

    /// A `u32` in `min..=max`, if present.
    pub(crate) fn u32_in(
        &mut self,
        name: &'static str,
        min: u32,
        max: u32,
    ) -> Result<Option<u32>, FieldError> {
        let n = self.u64_in(name, u64::from(min), u64::from(max))?;
        // In range of a u32 by the bounds just checked.
        Ok(n.map(|n| u32::try_from(n).unwrap_or(max)))
    }

    /// A duration in whole milliseconds, `min_ms..=max_ms`, if present.
    pub(crate) fn ms_in(
        &mut self,
        name: &'static str,
        min_ms: u64,
        max_ms: u64,
    ) -> Result<Option<Duration>, FieldError> {
        Ok(self
            .u64_in(name, min_ms, max_ms)?
            .map(Duration::from_millis))
    }

    /// A boolean, if present.
    pub(crate) fn bool(&mut self, name: &'static str) -> Result<Option<bool>, FieldError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.error(name, "must be true or false")),
        }
    }

    /// A string of 1 to `max_bytes` bytes, if present.
    pub(crate) fn str(
        &mut self,
        name: &'static str,
        max_bytes: usize,
    ) -> Result<Option<&'a str>, FieldError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= max_bytes => Ok(Some(s)),
            Some(Value::String(_)) => {
                Err(self.error(name, format!("must be 1 to {max_bytes} bytes long")))
            }
            Some(_) => Err(self.error(name, "must be a string")),
        }
    }

    /// A nested object, if present.
    pub(crate) fn object(&mut self, name: &'static str) -> Result<Option<Fields<'a>>, FieldError> {
        let path = join(&self.path, name);
        self.raw(name).map(|v| Fields::new(v, &path)).transpose()
    }

    /// Every (name, value) of an object whose keys are names chosen by the user (operations,
    /// breaker names), in key order; `finish` then has nothing left to refuse.
    pub(crate) fn entries(self) -> (String, Vec<(&'a str, &'a Value)>) {
        let entries = self.map.iter().map(|(k, v)| (k.as_str(), v)).collect();
        (self.path, entries)
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
    fn errors_name_the_full_path() {
        let doc = json!({"a": {"b": -1, "s": 5, "t": ""}, "x": 1});
        let mut root = Fields::new(&doc, "").unwrap();
        let mut a = root.object("a").unwrap().unwrap();
        let e = a.u64_in("b", 1, 10).unwrap_err();
        assert_eq!(e.field, "a.b");
        assert_eq!(e.reason, "must be an integer from 1 to 10");
        assert_eq!(a.str("s", 8).unwrap_err().reason, "must be a string");
        assert_eq!(
            a.str("t", 8).unwrap_err().reason,
            "must be 1 to 8 bytes long"
        );
        let e = root.finish().unwrap_err();
        assert_eq!(e.field, "x");
        assert_eq!(e.reason, "unknown field (expected one of: a)");
    }

    #[test]
    fn null_is_absent_and_non_objects_are_refused() {
        let doc = json!({"n": null});
        let mut f = Fields::new(&doc, "params").unwrap();
        assert_eq!(f.u64_in("n", 0, 1), Ok(None));
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
    fn required_and_float_values() {
        let doc = json!({"f": 1.5, "b": "yes"});
        let mut f = Fields::new(&doc, "params").unwrap();
        assert!(f.u64_in("f", 0, 9).is_err());
        assert_eq!(f.bool("b").unwrap_err().reason, "must be true or false");
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
