//! The params reader of the methods whose params are a few named members (leases, health):
//! one pass collects the members a [`Schema`] names, then typed getters read them with the
//! rules of `docs/PROTOCOL.md`, and [`Found::finish`] refuses what nobody asked for.
//!
//! When several things are wrong, the first of this order is reported: text that is not an
//! object, a member given twice, the members in the order the method reads them, then the
//! unknown member whose name sorts first. `null` counts as absent.

use core::fmt;

use super::rate_params::{TextFault, string_member, unescape_name};
use crate::proto::params::{Member, NotAnObject};

/// Longest decimal text of a `u64`.
const ID_MAX_DIGITS: usize = 20;

/// The members a method takes.
pub(crate) struct Schema<const N: usize> {
    /// Their names, indexed by the getters.
    pub(crate) names: [&'static str; N],
    /// The same names as an error lists them: sorted, comma-separated (`""`: none).
    pub(crate) expected: &'static str,
}

/// Why a method's params were refused. Shown as `params.<field>: <reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldError<'a> {
    NotAnObject {
        at_byte: u32,
    },
    Duplicate(&'static str),
    Required(&'static str),
    NotAString(&'static str),
    /// Empty or longer than the bound.
    Length(&'static str, usize),
    BadEscape(&'static str),
    /// A string of this many bytes, longer than the bound.
    TooLong(&'static str, usize, usize),
    /// The value breaks the field's own rule; the reason follows `params.<field>: `.
    Invalid(&'static str, &'static str),
    Unknown {
        name: &'a str,
        expected: &'static str,
    },
}

impl fmt::Display for FieldError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FieldError::NotAnObject { at_byte } => {
                write!(f, "params: not a JSON object (invalid at byte {at_byte})")
            }
            FieldError::Duplicate(field) => write!(f, "params.{field}: duplicate field"),
            FieldError::Required(field) => write!(f, "params.{field}: is required"),
            FieldError::NotAString(field) => write!(f, "params.{field}: must be a string"),
            FieldError::Length(field, max) => {
                write!(f, "params.{field}: must be 1 to {max} bytes long")
            }
            FieldError::BadEscape(field) => write!(f, "params.{field}: holds an invalid escape"),
            FieldError::TooLong(field, len, max) => {
                write!(
                    f,
                    "params.{field}: is {len} bytes; at most {max} are stored"
                )
            }
            FieldError::Invalid(field, reason) => write!(f, "params.{field}: {reason}"),
            FieldError::Unknown { name, expected } => with_text(name, |name| {
                if expected.is_empty() {
                    write!(
                        f,
                        "params.{name}: unknown field (this object takes no fields)"
                    )
                } else {
                    write!(
                        f,
                        "params.{name}: unknown field (expected one of: {expected})"
                    )
                }
            }),
        }
    }
}

/// `raw` (a member name as written) unescaped for `f`, or as written when it cannot be.
pub(crate) fn with_text<T>(raw: &str, f: impl FnOnce(&str) -> T) -> T {
    if !raw.contains('\\') {
        return f(raw);
    }
    match unescape_name(raw) {
        Some(name) => f(name.as_str()),
        None => f(raw),
    }
}

/// The members one pass found, by [`Schema`] index.
pub(crate) struct Found<'m, const N: usize> {
    schema: &'static Schema<N>,
    members: [Option<Member<'m>>; N],
    unknown: Option<&'m str>,
}

/// Reads `members` once against `schema`: every member it names, and the unknown name that
/// sorts first (kept for [`Found::finish`]).
pub(crate) fn collect<'m, const N: usize>(
    members: impl Iterator<Item = Result<Member<'m>, NotAnObject>>,
    schema: &'static Schema<N>,
) -> Result<Found<'m, N>, FieldError<'m>> {
    let mut found = Found {
        schema,
        members: [None; N],
        unknown: None,
    };
    let mut duplicate = None;
    for member in members {
        let member = member.map_err(|e| FieldError::NotAnObject { at_byte: e.at_byte })?;
        let raw = member.name_raw();
        let index = with_text(raw, |name| schema.names.iter().position(|n| *n == name));
        match index {
            Some(i) if found.members[i].is_some() => {
                duplicate.get_or_insert(schema.names[i]);
            }
            Some(i) => found.members[i] = Some(member),
            None => {
                let first = match found.unknown {
                    None => true,
                    Some(kept) => with_text(raw, |a| with_text(kept, |b| a < b)),
                };
                if first {
                    found.unknown = Some(raw);
                }
            }
        }
    }
    match duplicate {
        Some(field) => Err(FieldError::Duplicate(field)),
        None => Ok(found),
    }
}

impl<'m, const N: usize> Found<'m, N> {
    fn member(&self, i: usize) -> Option<Member<'m>> {
        self.members[i].filter(|m| m.raw() != "null")
    }

    /// The raw JSON text of a member given (and not `null`).
    pub(crate) fn raw(&self, i: usize) -> Option<&'m str> {
        self.member(i).map(|m| m.raw())
    }

    /// An optional integer in `range` (absent or `null`: `None`); anything else is refused
    /// with `reason`.
    pub(crate) fn integer_in(
        &self,
        i: usize,
        range: core::ops::RangeInclusive<u64>,
        reason: &'static str,
    ) -> Result<Option<u64>, FieldError<'m>> {
        match self.member(i) {
            None => Ok(None),
            Some(m) => match m.as_u64() {
                Some(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(FieldError::Invalid(self.schema.names[i], reason)),
            },
        }
    }

    /// A required string of 1 to `M` bytes, unescaped into `buf` when written with escapes.
    pub(crate) fn text<'s, const M: usize>(
        &self,
        i: usize,
        buf: &'s mut [u8; M],
    ) -> Result<&'s str, FieldError<'m>>
    where
        'm: 's,
    {
        let field = self.schema.names[i];
        let member = self.member(i).ok_or(FieldError::Required(field))?;
        string_member(member, buf).map_err(|fault| match fault {
            TextFault::NotAString => FieldError::NotAString(field),
            TextFault::BadEscape => FieldError::BadEscape(field),
            TextFault::Length => FieldError::Length(field, M),
        })
    }

    /// An optional string of 1 to `M` bytes (absent or `null`: `None`).
    pub(crate) fn text_opt<'s, const M: usize>(
        &self,
        i: usize,
        buf: &'s mut [u8; M],
    ) -> Result<Option<&'s str>, FieldError<'m>>
    where
        'm: 's,
    {
        match self.member(i) {
            None => Ok(None),
            Some(_) => self.text(i, buf).map(Some),
        }
    }

    /// An optional string of 0 to `M` bytes, unescaped into `buf`; its length. Longer is
    /// refused with its length (`params.response: is 4097 bytes; at most 4096 are stored`).
    pub(crate) fn text_any<const M: usize>(
        &self,
        i: usize,
        buf: &mut [u8; M],
    ) -> Result<Option<usize>, FieldError<'m>> {
        let field = self.schema.names[i];
        let Some(member) = self.member(i) else {
            return Ok(None);
        };
        let raw = member.raw();
        if !raw.starts_with('"') {
            return Err(FieldError::NotAString(field));
        }
        let len = unescaped_len(raw).ok_or(FieldError::BadEscape(field))?;
        if len > M {
            return Err(FieldError::TooLong(field, len, M));
        }
        if len == 0 {
            return Ok(Some(0));
        }
        if let Some(plain) = member.as_plain_str() {
            buf[..len].copy_from_slice(plain.as_bytes());
            return Ok(Some(len));
        }
        // Escaped: unescaped into `buf`.
        let text = string_member(member, buf).map_err(|_| FieldError::BadEscape(field))?;
        Ok(Some(text.len()))
    }

    /// A required 64-bit id: up to 20 decimal digits in a string (as the service writes ids),
    /// or a JSON integer.
    pub(crate) fn id(&self, i: usize) -> Result<u64, FieldError<'m>> {
        let field = self.schema.names[i];
        let member = self.member(i).ok_or(FieldError::Required(field))?;
        decimal_id(member).ok_or(FieldError::Invalid(
            field,
            "must be a 64-bit id as a decimal string",
        ))
    }

    /// A required boolean.
    pub(crate) fn boolean(&self, i: usize) -> Result<bool, FieldError<'m>> {
        let field = self.schema.names[i];
        match self.member(i).map(|m| m.raw()) {
            None => Err(FieldError::Required(field)),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(FieldError::Invalid(field, "must be true or false")),
        }
    }

    /// Refuses the unknown member whose name sorts first, if any.
    pub(crate) fn finish(&self) -> Result<(), FieldError<'m>> {
        match self.unknown {
            Some(name) => Err(FieldError::Unknown {
                name,
                expected: self.schema.expected,
            }),
            None => Ok(()),
        }
    }
}

/// `member` as a 64-bit id: up to 20 decimal digits in a string (escapes allowed), or a JSON
/// integer; `None` for anything else.
pub(crate) fn decimal_id(member: Member<'_>) -> Option<u64> {
    if !member.raw().starts_with('"') {
        return member.as_u64();
    }
    let mut buf = [0u8; ID_MAX_DIGITS];
    let digits = string_member(member, &mut buf).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.bytes().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The length in bytes of the JSON string `quoted` (quotes included) once unescaped; `None`
/// for a bad escape (a lone surrogate, a short `\u`, an unknown letter).
pub(crate) fn unescaped_len(quoted: &str) -> Option<usize> {
    let body = quoted.as_bytes().get(1..quoted.len().checked_sub(1)?)?;
    let mut len = 0;
    let mut at = 0;
    while at < body.len() {
        if body[at] != b'\\' {
            len += 1;
            at += 1;
            continue;
        }
        let kind = *body.get(at + 1)?;
        at += 2;
        if kind != b'u' {
            if !matches!(kind, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') {
                return None;
            }
            len += 1;
            continue;
        }
        let unit = hex4(body.get(at..at + 4)?)?;
        at += 4;
        len += match unit {
            0..=0x7f => 1,
            0x80..=0x7ff => 2,
            0xd800..=0xdbff => {
                // A high surrogate must be followed by `\u` and a low one: 4 bytes together.
                if body.get(at..at + 2)? != b"\\u" {
                    return None;
                }
                let low = hex4(body.get(at + 2..at + 6)?)?;
                if !(0xdc00..=0xdfff).contains(&low) {
                    return None;
                }
                at += 6;
                4
            }
            0xdc00..=0xdfff => return None,
            _ => 3,
        };
    }
    Some(len)
}

fn hex4(digits: &[u8]) -> Option<u32> {
    digits
        .iter()
        .try_fold(0u32, |n, &d| Some(n * 16 + char::from(d).to_digit(16)?))
}
