//! Reading a request's `params` object member by member, without allocating.
//!
//! [`Request::parse`](super::Request::parse) hands the host the raw JSON text of `params`.
//! A host with a hot method reads it through [`Members`] instead of a general JSON parser:
//! each [`Member`] is a name and the raw text of its value, with accessors for the common
//! shapes. Anything unusual (an escaped name or string, a fraction, a nested value) is left to
//! the host's general path, which can then name the bad field precisely.
//!
//! ```
//! use heidi_core::proto::params::Members;
//!
//! let params = r#"{"key":"u1","cost":2,"tags":["a"]}"#;
//! let mut m = Members::new(params);
//! let key = m.next().unwrap().unwrap();
//! assert_eq!((key.name(), key.as_plain_str()), (Some("key"), Some("u1")));
//! let cost = m.next().unwrap().unwrap();
//! assert_eq!(cost.as_u64(), Some(2));
//! assert_eq!(m.next().unwrap().unwrap().raw(), r#"["a"]"#);
//! assert!(m.next().is_none());
//! ```

use crate::json::scan::{ScanError, Scanner};

/// One member of an object: its name and its value's raw JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member<'a> {
    /// The name as written between its quotes (escapes not decoded).
    name_raw: &'a str,
    /// The value's JSON text.
    value: &'a str,
}

impl<'a> Member<'a> {
    /// The member's name, or `None` when it is written with escapes.
    #[must_use]
    pub fn name(&self) -> Option<&'a str> {
        (!self.name_raw.contains('\\')).then_some(self.name_raw)
    }

    /// The value's JSON text, exactly as sent.
    #[must_use]
    pub fn raw(&self) -> &'a str {
        self.value
    }

    /// The value when it is a JSON string without escapes; `None` for anything else.
    #[must_use]
    pub fn as_plain_str(&self) -> Option<&'a str> {
        let inner = self.value.strip_prefix('"')?.strip_suffix('"')?;
        (!inner.contains('\\')).then_some(inner)
    }

    /// The value when it is a JSON integer in `0..=u64::MAX` written without a fraction or
    /// exponent; `None` for anything else.
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        let digits = self.value.as_bytes();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        digits.iter().try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
    }
}

/// Why the text is not a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NotAnObject {
    /// Byte offset of the fault.
    pub at_byte: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    Start,
    AfterMember,
    Done,
}

/// The members of a JSON object, in the order written (strict syntax, nesting bounded by
/// [`JSON_MAX_DEPTH`](crate::proto::JSON_MAX_DEPTH)). Yields an error once, and then ends,
/// when the text is not one JSON object.
#[derive(Clone, Copy)]
pub struct Members<'a> {
    text: &'a str,
    sc: Scanner<'a>,
    position: Position,
}

impl<'a> Members<'a> {
    /// The members of `object`.
    #[must_use]
    pub fn new(object: &'a str) -> Members<'a> {
        Members {
            text: object,
            sc: Scanner::new(object.as_bytes()),
            position: Position::Start,
        }
    }

    fn step(&mut self) -> Result<Option<Member<'a>>, ScanError> {
        match self.position {
            Position::Done => return Ok(None),
            Position::Start => {
                self.sc.expect(b'{')?;
                self.sc.ws();
                if self.sc.eat(b'}') {
                    self.sc.end()?;
                    return Ok(None);
                }
            }
            Position::AfterMember => {
                self.sc.ws();
                if self.sc.eat(b'}') {
                    self.sc.end()?;
                    return Ok(None);
                }
                self.sc.expect(b',')?;
            }
        }
        let name = self.sc.key()?;
        let value = self.sc.value()?;
        self.position = Position::AfterMember;
        Ok(Some(Member {
            name_raw: &self.text[name.start + 1..name.end - 1],
            value: &self.text[value],
        }))
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<Member<'a>, NotAnObject>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(member)) => Some(Ok(member)),
            Ok(None) => {
                self.position = Position::Done;
                None
            }
            Err(ScanError::Syntax(at) | ScanError::TooDeep(at)) => {
                self.position = Position::Done;
                Some(Err(NotAnObject { at_byte: at as u32 }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Result<heapless::Vec<Option<&str>, 8>, NotAnObject> {
        let mut out = heapless::Vec::new();
        for m in Members::new(text) {
            out.push(m?.name()).unwrap();
        }
        Ok(out)
    }

    #[test]
    fn members_in_order_with_whitespace() {
        let got = names(" { \"a\" : 1 , \"b\":{\"c\":[1,2]},\"d\":null } ").unwrap();
        assert_eq!(&got[..], &[Some("a"), Some("b"), Some("d")]);
        assert!(names("{}").unwrap().is_empty());
        assert!(names(" {\n} ").unwrap().is_empty());
    }

    #[test]
    fn escaped_names_are_not_matched() {
        assert_eq!(&names(r#"{"k\u0065y":1}"#).unwrap()[..], &[None]);
    }

    #[test]
    fn bad_objects_fail_once_then_end() {
        for bad in [
            "",
            "[]",
            "1",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\":1}x",
            "{\"a\":1 \"b\":2}",
            "{\"a\":01}",
            "{\"a\":\"\u{1}\"}",
        ] {
            let mut m = Members::new(bad);
            let errors = m.by_ref().filter(Result::is_err).count();
            assert_eq!(errors, 1, "{bad:?}");
            assert!(m.next().is_none(), "{bad:?}");
        }
    }

    #[test]
    fn too_deep_is_an_error() {
        let mut deep = heapless::String::<128>::new();
        deep.push_str("{\"a\":").unwrap();
        for _ in 0..40 {
            deep.push('[').unwrap();
        }
        assert!(Members::new(&deep).any(|m| m.is_err()));
    }

    #[test]
    fn value_accessors() {
        fn member(text: &str) -> Member<'_> {
            Members::new(text).next().unwrap().unwrap()
        }
        assert_eq!(member(r#"{"s":"plain"}"#).as_plain_str(), Some("plain"));
        assert_eq!(member(r#"{"s":"a\"b"}"#).as_plain_str(), None);
        assert_eq!(member(r#"{"s":1}"#).as_plain_str(), None);
        assert_eq!(member(r#"{"n":0}"#).as_u64(), Some(0));
        assert_eq!(
            member(r#"{"n":18446744073709551615}"#).as_u64(),
            Some(u64::MAX)
        );
        for not_u64 in ["18446744073709551616", "-1", "1.0", "1e3", "\"1\"", "null"] {
            let mut text = heapless::String::<64>::new();
            for part in [r#"{"n":"#, not_u64, "}"] {
                text.push_str(part).unwrap();
            }
            assert_eq!(member(&text).as_u64(), None, "{not_u64}");
        }
        assert_eq!(member(r#"{"v": [1, 2] }"#).raw(), "[1, 2]");
    }
}
