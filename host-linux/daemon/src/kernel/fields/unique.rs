//! [`parse_unique`]: JSON text to a [`Value`], refusing a duplicate object key at any depth.
//!
//! `serde_json::from_str::<Value>` keeps the last of two equal keys, so
//! `{"cost":1,"cost":2}` would silently mean 2. This parser builds the same `Value` for every
//! document without duplicates, and names the first duplicate's full path otherwise
//! (`params.cost: duplicate field`, `params.policy.limits.search.capacity_tokens: duplicate
//! field`, `params.items[2].id: duplicate field`). Nesting is bounded by serde_json's
//! recursion limit (128), so deep input is an error, never a stack overflow.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::join;

/// Why a text is not a JSON document without duplicate keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UniqueError {
    /// Not JSON (serde_json's message, with line and column), or trailing characters.
    Syntax(String),
    /// The full path of the first duplicated key.
    Duplicate(String),
}

/// Parses `text` into a [`Value`], refusing a duplicate key in any object; `root` names the
/// document in paths (`"params"`).
pub(crate) fn parse_unique(text: &str, root: &str) -> Result<Value, UniqueError> {
    let duplicate = RefCell::new(None);
    let seed = Node {
        path: root.to_owned(),
        duplicate: &duplicate,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| match duplicate.into_inner() {
        Some(path) => UniqueError::Duplicate(path),
        None => UniqueError::Syntax(e.to_string()),
    })
}

/// One JSON value at `path`; the first duplicate key found is stored in `duplicate` (the
/// error serde_json returns carries only a position).
struct Node<'d> {
    path: String,
    duplicate: &'d RefCell<Option<String>>,
}

impl Node<'_> {
    fn child(&self, path: String) -> Node<'_> {
        Node {
            path,
            duplicate: self.duplicate,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) =
            seq.next_element_seed(self.child(format!("{}[{}]", self.path, items.len())))?
        {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            if out.contains_key(&key) {
                let message = format!("{path}: duplicate field");
                *self.duplicate.borrow_mut() = Some(path);
                return Err(de::Error::custom(message));
            }
            let value = map.next_value_seed(self.child(path))?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicate(text: &str) -> String {
        match parse_unique(text, "params") {
            Err(UniqueError::Duplicate(path)) => path,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn a_duplicate_key_is_named_by_its_full_path() {
        let consume = r#"{"key":"a","operation":"other","cost":1,"cost":2}"#;
        assert_eq!(duplicate(consume), "params.cost");
        let policy = r#"{"policy":{"limits":{"search":{"capacity_tokens":5,
            "window_ms":1000,"capacity_tokens":6}}}}"#;
        assert_eq!(
            duplicate(policy),
            "params.policy.limits.search.capacity_tokens"
        );
        assert_eq!(
            duplicate(r#"{"a":[1,{"x":1},{"y":1,"y":2}]}"#),
            "params.a[2].y"
        );
        assert_eq!(duplicate(r#"[[{"z":0,"z":0}]]"#), "params[0][0].z");
        assert_eq!(
            parse_unique(r#"{"k":1,"k":1}"#, ""),
            Err(UniqueError::Duplicate("k".to_owned()))
        );
    }

    #[test]
    fn equal_keys_in_different_objects_are_fine() {
        let text = r#"{"a":{"k":1},"b":{"k":2},"c":[{"k":3},{"k":4}]}"#;
        let v = parse_unique(text, "params").unwrap();
        assert_eq!(v["c"][1]["k"], 4);
    }

    #[test]
    fn without_duplicates_it_matches_serde_json() {
        let texts = [
            "{}",
            "[]",
            "null",
            "true",
            r#""s\u00e9\n""#,
            "0",
            "-1",
            "18446744073709551615",
            "-9223372036854775808",
            "1.5",
            "-0.0",
            "123456789012345678901234567890",
            r#"{"a":[1,2.5,-3,"x",null,false,{"b":{}}],"é":"\"","":0}"#,
            " \n{ \"spaced\" : [ 1 , 2 ] }\t",
        ];
        for text in texts {
            let expected: Value = serde_json::from_str(text).unwrap();
            assert_eq!(parse_unique(text, "params"), Ok(expected), "{text}");
        }
    }

    #[test]
    fn syntax_errors_and_trailing_characters_are_refused() {
        for text in [
            "",
            "{",
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            "[1] [2]",
            "nul",
            "{'a':1}",
        ] {
            let e = parse_unique(text, "params").unwrap_err();
            assert!(matches!(e, UniqueError::Syntax(_)), "{text}: {e:?}");
            // serde_json refuses the same texts.
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let UniqueError::Syntax(message) = parse_unique(&deep, "params").unwrap_err() else {
            panic!("not a syntax error")
        };
        assert!(message.contains("recursion limit"), "{message}");
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse_unique(&ok, "params").is_ok());
    }
}
