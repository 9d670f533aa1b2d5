//! JSON in and out without serde: a strict reader for configs and a writer for traces.
//!
//! Hand-written because the module must stay small: serde's derived deserializers and
//! serde_json's float parsing were over half of a 270 KB module. Integers only, both ways.
//! The [`json_object!`](crate::json_object) macro derives [`ToJson`] and [`FromJson`] for a
//! parameter struct from its field list.

pub mod read;
pub mod write;

pub use read::{Value, parse};
pub use write::{ToJson, Writer, to_vec};

use crate::error::SimError;

/// A value that can be read from config JSON; `path` names it in errors
/// (`params.clients[0].rate_per_sec`).
pub trait FromJson: Sized {
    /// Reads `v`.
    ///
    /// # Errors
    /// `bad_json` when `v` has the wrong type or unknown fields.
    fn from_json(v: &Value, path: &str) -> Result<Self, SimError>;
}

fn type_error(path: &str, expected: &str, got: &Value) -> SimError {
    SimError::new(
        "bad_json",
        format!("{path}: expected {expected}, found {}", got.kind()),
    )
}

fn int_in<T: TryFrom<i128>>(v: &Value, path: &str, what: &str) -> Result<T, SimError> {
    match v {
        Value::Int(n) => T::try_from(*n).map_err(|_| {
            // The reader keeps integers in i64::MIN..=u64::MAX: sign and magnitude print the
            // same as the i128 would, without i128 formatting code in the wasm module.
            let sign = if *n < 0 { "-" } else { "" };
            let magnitude = u64::try_from(n.unsigned_abs()).unwrap_or(u64::MAX);
            SimError::new(
                "bad_json",
                format!("{path}: {sign}{magnitude} does not fit {what}"),
            )
        }),
        other => Err(type_error(path, what, other)),
    }
}

impl FromJson for u64 {
    fn from_json(v: &Value, path: &str) -> Result<u64, SimError> {
        int_in(v, path, "an unsigned 64-bit integer")
    }
}

impl FromJson for u32 {
    fn from_json(v: &Value, path: &str) -> Result<u32, SimError> {
        int_in(v, path, "an unsigned 32-bit integer")
    }
}

impl FromJson for bool {
    fn from_json(v: &Value, path: &str) -> Result<bool, SimError> {
        match v {
            Value::Bool(b) => Ok(*b),
            other => Err(type_error(path, "a boolean", other)),
        }
    }
}

impl FromJson for String {
    fn from_json(v: &Value, path: &str) -> Result<String, SimError> {
        match v {
            Value::Str(s) => Ok(s.clone()),
            other => Err(type_error(path, "a string", other)),
        }
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(v: &Value, path: &str) -> Result<Vec<T>, SimError> {
        match v {
            Value::Arr(items) => {
                // A loop rather than `collect` into a `Result`, whose adapter was ~500 bytes of wasm per
                // element type.
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(T::from_json(item, &format!("{path}[{i}]"))?);
                }
                Ok(out)
            }
            other => Err(type_error(path, "an array", other)),
        }
    }
}

/// The members of object `v`, after checking that each is one of `known`.
///
/// # Errors
/// `bad_json` when `v` is not an object or has a member not in `known`.
pub fn members<'v>(
    v: &'v Value,
    path: &str,
    known: &[&str],
) -> Result<&'v [(String, Value)], SimError> {
    let Value::Obj(members) = v else {
        return Err(type_error(path, "an object", v));
    };
    if let Some((name, _)) = members.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(SimError::new(
            "bad_json",
            format!(
                "{path}: unknown field `{name}`, expected one of {}",
                known.join(", ")
            ),
        ));
    }
    Ok(members)
}

/// The member `name` of an object's members.
pub fn member<'v>(members: &'v [(String, Value)], name: &str) -> Option<&'v Value> {
    members.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The error for a required member `name` missing from the object at `path`.
pub fn missing(path: &str, name: &str) -> SimError {
    SimError::new("bad_json", format!("{path}: missing field `{name}`"))
}

/// A field that [`read_fields`] fills: [`FromJson`] behind a vtable, so that a struct's
/// reader is one loop over a table of fields rather than a copy of the parsing code per field.
pub trait ReadField {
    /// Replaces `self` with the value read from `v`.
    ///
    /// # Errors
    /// As [`FromJson::from_json`].
    fn read_field(&mut self, v: &Value, path: &str) -> Result<(), SimError>;
}

impl<T: FromJson> ReadField for T {
    fn read_field(&mut self, v: &Value, path: &str) -> Result<(), SimError> {
        *self = T::from_json(v, path)?;
        Ok(())
    }
}

/// Reads object `v` into `slots`, one per name in `known` (in that order): members that are
/// present replace their slot's value, missing ones leave it as it is.
///
/// # Errors
/// `bad_json` when `v` is not an object, has a member not in `known`, lacks one of
/// `required`, or a member cannot be read.
pub fn read_fields(
    v: &Value,
    path: &str,
    known: &[&str],
    required: &[&str],
    slots: &mut [&mut dyn ReadField],
) -> Result<(), SimError> {
    let members = members(v, path, known)?;
    if let Some(name) = required.iter().find(|name| member(members, name).is_none()) {
        return Err(missing(path, name));
    }
    for (name, slot) in known.iter().zip(slots) {
        if let Some(x) = member(members, name) {
            slot.read_field(x, &format!("{path}.{name}"))?;
        }
    }
    Ok(())
}

/// Derives [`ToJson`] for a struct: one member per listed field, in that order.
#[macro_export]
macro_rules! json_fields {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl $crate::json::ToJson for $ty {
            fn write_json(&self, w: &mut $crate::json::Writer) {
                w.begin_object();
                $( w.field(stringify!($field), &self.$field); )*
                w.end_object();
            }
        }
    };
}

/// Derives [`ToJson`] for an enum of struct variants: an object whose first member is
/// `"kind"`, then the variant's fields in the listed order.
#[macro_export]
macro_rules! json_enum {
    ($ty:ident { $($variant:ident $kind:literal { $($field:ident),* $(,)? }),* $(,)? }) => {
        impl $crate::json::ToJson for $ty {
            fn write_json(&self, w: &mut $crate::json::Writer) {
                match self {
                    $( $ty::$variant { $($field),* } => {
                        w.begin_object();
                        w.field("kind", $kind);
                        $( w.field(stringify!($field), $field); )*
                        w.end_object();
                    } )*
                }
            }
        }
    };
}

/// Derives [`ToJson`] (as [`json_fields!`](crate::json_fields)) and [`FromJson`] for a
/// struct with `Default`: missing fields keep their defaults, `required` ones must be
/// present, unknown fields are an error.
#[macro_export]
macro_rules! json_object {
    ($ty:ident { $($field:ident),* $(,)? } $(required { $($req:ident),* $(,)? })?) => {
        $crate::json_fields!($ty { $($field),* });

        impl $crate::json::FromJson for $ty {
            fn from_json(v: &$crate::json::Value, path: &str) -> Result<$ty, $crate::SimError> {
                let mut out = <$ty>::default();
                $crate::json::read_fields(
                    v,
                    path,
                    &[$(stringify!($field)),*],
                    &[$($(stringify!($req)),*)?],
                    &mut [$(&mut out.$field),*],
                )?;
                Ok(out)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq)]
    struct Inner {
        a: u32,
        b: u64,
    }
    json_object!(Inner { a, b } required { a });

    #[derive(Debug, PartialEq)]
    struct Outer {
        n: u64,
        flag: bool,
        name: String,
        items: Vec<Inner>,
    }
    impl Default for Outer {
        fn default() -> Outer {
            Outer {
                n: 7,
                flag: true,
                name: "x".into(),
                items: vec![],
            }
        }
    }
    json_object!(Outer {
        n,
        flag,
        name,
        items
    });

    fn read(text: &str) -> Result<Outer, SimError> {
        Outer::from_json(&parse(text.as_bytes())?, "params")
    }

    #[test]
    fn missing_fields_keep_defaults_and_round_trip() {
        assert_eq!(read("{}").unwrap(), Outer::default());
        let o = read(r#"{"n":3,"items":[{"a":1},{"a":2,"b":5}]}"#).unwrap();
        assert_eq!(o.items, vec![Inner { a: 1, b: 0 }, Inner { a: 2, b: 5 }]);
        let text = String::from_utf8(to_vec(&o)).unwrap();
        assert_eq!(
            text,
            r#"{"n":3,"flag":true,"name":"x","items":[{"a":1,"b":0},{"a":2,"b":5}]}"#
        );
        assert_eq!(read(&text).unwrap(), o);
    }

    #[test]
    fn errors_name_the_path() {
        let cases = [
            (
                r#"{"m":1}"#,
                "params: unknown field `m`, expected one of n, flag, name, items",
            ),
            (
                r#"{"n":-1}"#,
                "params.n: -1 does not fit an unsigned 64-bit integer",
            ),
            (
                r#"{"n":"1"}"#,
                "params.n: expected an unsigned 64-bit integer, found a string",
            ),
            (
                r#"{"flag":1}"#,
                "params.flag: expected a boolean, found an integer",
            ),
            (
                r#"{"name":null}"#,
                "params.name: expected a string, found null",
            ),
            (
                r#"{"items":{}}"#,
                "params.items: expected an array, found an object",
            ),
            (
                r#"{"items":[{"b":1}]}"#,
                "params.items[0]: missing field `a`",
            ),
            (
                r#"{"items":[{"a":4294967296}]}"#,
                "params.items[0].a: 4294967296 does not fit",
            ),
            (r#"[]"#, "params: expected an object, found an array"),
        ];
        for (input, message) in cases {
            let e = read(input).unwrap_err();
            assert_eq!(e.code, "bad_json");
            assert!(e.message.starts_with(message), "{input}: {e}");
        }
    }
}
