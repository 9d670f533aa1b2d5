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

use core::ops::Range;

use crate::json::scan::{JSON_MAX_DEPTH, ScanError, Scanner};

/// One member of an object: its name and its value's raw JSON text.
///
/// It holds the object's text and the member's offsets in it, and cuts a name or a value out
/// only when asked: a `&str` cut checks both ends for character boundaries, which a reader
/// that only compares a name's bytes or reads a number does not need.
#[derive(Clone, Copy)]
pub struct Member<'a> {
    /// The text the offsets point into.
    text: &'a str,
    /// The name as written between its quotes (escapes not decoded).
    name: Span,
    /// The value's JSON text.
    value: Span,
    /// The name has no escape.
    name_plain: bool,
    /// The value is a string without escapes.
    plain_str: bool,
}

/// The furthest a member of [`Members`] may end in its object's text, in bytes (4 GiB): a
/// member's offsets are held in 32 bits, and the offset of a fault in [`NotAnObject`] is too.
/// A member that ends further is refused as the object's fault, at the member's name.
pub const MEMBER_END_MAX: usize = u32::MAX as usize;

/// Byte offsets `[start, end)` of a member's name or value, on the text's character
/// boundaries (the scanner found them on tokens); 32 bits keep a member small.
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

impl<'a> Member<'a> {
    /// The member's name, or `None` when it is written with escapes.
    #[must_use]
    pub fn name(&self) -> Option<&'a str> {
        self.name_plain.then(|| self.name_raw())
    }

    /// The name's bytes, or `None` when it is written with escapes: [`Member::name`] without
    /// the cut of a `&str`.
    #[inline]
    pub(crate) fn name_bytes(&self) -> Option<&'a [u8]> {
        self.name_plain.then(|| self.bytes(self.name))
    }

    /// The name exactly as written between its quotes, escapes included.
    pub(crate) fn name_raw(&self) -> &'a str {
        self.str(self.name)
    }

    /// The value's JSON text, exactly as sent.
    #[must_use]
    pub fn raw(&self) -> &'a str {
        self.str(self.value)
    }

    /// Whether the value is `null`.
    #[inline]
    pub(crate) fn is_null(&self) -> bool {
        self.bytes(self.value) == b"null"
    }

    /// The value when it is a JSON string without escapes; `None` for anything else.
    #[must_use]
    pub fn as_plain_str(&self) -> Option<&'a str> {
        if !self.plain_str {
            return None;
        }
        // The span is a whole string, so it starts and ends with a quote.
        self.text
            .get(self.value.start as usize + 1..(self.value.end as usize).saturating_sub(1))
    }

    /// The value when it is a JSON integer in `0..=u64::MAX` written without a fraction or
    /// exponent; `None` for anything else.
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        decimal(self.bytes(self.value))
    }

    /// The value when it is a JSON integer in the range of an `i64` written without a
    /// fraction or exponent; `None` for anything else.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        match self.bytes(self.value).split_first() {
            Some((b'-', magnitude)) => 0i64.checked_sub_unsigned(decimal(magnitude)?),
            _ => i64::try_from(self.as_u64()?).ok(),
        }
    }

    /// The text at `span` (empty if it were not on character boundaries, which the scanner
    /// rules out).
    fn str(&self, span: Span) -> &'a str {
        self.text
            .get(span.start as usize..span.end as usize)
            .unwrap_or("")
    }

    /// The bytes at `span`.
    #[inline]
    fn bytes(&self, span: Span) -> &'a [u8] {
        self.text
            .as_bytes()
            .get(span.start as usize..span.end as usize)
            .unwrap_or(&[])
    }
}

/// `digits` as a `u64`: one or more decimal digits, no sign, no fraction, in range.
#[inline]
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    // One pass: a byte that is not a digit, or a value past `u64::MAX`, gives `None`.
    digits.iter().try_fold(0u64, |n, d| {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Two members are equal when their names and values are the same text (wherever they lie)
/// and the scan learned the same of them.
impl PartialEq for Member<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.name_raw(), self.raw(), self.name_plain, self.plain_str)
            == (
                other.name_raw(),
                other.raw(),
                other.name_plain,
                other.plain_str,
            )
    }
}

impl Eq for Member<'_> {}

impl core::fmt::Debug for Member<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Member")
            .field("name_raw", &self.name_raw())
            .field("value", &self.raw())
            .field("name_plain", &self.name_plain)
            .field("plain_str", &self.plain_str)
            .finish()
    }
}

/// Where a member lies in the scanned text (byte offsets), and what the scan learned of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawMember {
    /// The name between its quotes.
    pub(crate) name: Range<usize>,
    /// The value's text.
    pub(crate) value: Range<usize>,
    /// The name has no escape.
    pub(crate) name_plain: bool,
    /// The value is a string without escapes.
    pub(crate) plain_str: bool,
}

impl RawMember {
    /// The member in `text`, the text that was scanned; `None` when it ends past
    /// [`MEMBER_END_MAX`].
    pub(crate) fn in_text<'a>(&self, text: &'a str) -> Option<Member<'a>> {
        // The offsets grow through a member (name, then value): when the last fits, all do.
        let offset = |at: usize| at as u32;
        u32::try_from(self.value.end).ok()?;
        Some(Member {
            text,
            name: Span {
                start: offset(self.name.start),
                end: offset(self.name.end),
            },
            value: Span {
                start: offset(self.value.start),
                end: offset(self.value.end),
            },
            name_plain: self.name_plain,
            plain_str: self.plain_str,
        })
    }
}

/// One step through an object's members, shared by [`Members`] and
/// [`Request::parse`](super::Request::parse): with `first`, the object's `{` (after
/// whitespace); otherwise the `,` before the next member. Returns `None` once the closing `}`
/// is consumed. Member values nest at most `max_depth` deep.
#[inline(always)]
pub(crate) fn next_member(
    sc: &mut Scanner<'_>,
    first: bool,
    max_depth: usize,
) -> Result<Option<RawMember>, ScanError> {
    if first {
        sc.expect(b'{')?;
        sc.ws();
        if sc.eat(b'}') {
            return Ok(None);
        }
    } else {
        if !sc.comma_or_close(b'}')? {
            return Ok(None);
        }
        sc.ws();
    }
    let name_start = sc.pos() + 1;
    let escaped = sc.skip_string()?;
    let name_end = sc.pos() - 1;
    sc.expect(b':')?;
    sc.ws();
    let start = sc.pos();
    let plain_str = if sc.peek() == Some(b'"') {
        !sc.skip_string()?
    } else {
        sc.value_within(max_depth)?;
        false
    };
    Ok(Some(RawMember {
        name: name_start..name_end,
        value: start..sc.pos(),
        name_plain: !escaped,
        plain_str,
    }))
}

/// Most members of a request's `params` that [`Request::parse`](super::Request::parse)
/// records while it scans the frame; [`Request::members`](super::Request::members) scans a
/// bigger object again.
pub const PARAMS_RECORDED_MAX: usize = 8;

/// A recorded member: offsets from the start of `params`, `u16` so that a request stays
/// small (an object longer than that is scanned again instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Spot {
    name: [u16; 2],
    value: [u16; 2],
    name_plain: bool,
    plain_str: bool,
}

/// The members of `params` as the request parse found them (the default: none, as for `{}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) struct Recorded {
    spots: [Spot; PARAMS_RECORDED_MAX],
    /// How many spots hold members; [`Recorded::OVERFLOW`] when they did not all fit.
    len: u8,
}

impl Recorded {
    const OVERFLOW: u8 = u8::MAX;

    /// Records a member of the object that starts at byte `base` of the scanned text.
    pub(crate) fn push(&mut self, raw: &RawMember, base: usize) {
        // The offsets grow through a member (name, then value), so when the value's end fits a
        // `u16`, all four do.
        let fits = u16::try_from(raw.value.end - base).is_ok();
        match self.spots.get_mut(usize::from(self.len)) {
            Some(slot) if fits => {
                let offset = |at: usize| (at - base) as u16;
                *slot = Spot {
                    name: [offset(raw.name.start), offset(raw.name.end)],
                    value: [offset(raw.value.start), offset(raw.value.end)],
                    name_plain: raw.name_plain,
                    plain_str: raw.plain_str,
                };
                self.len += 1;
            }
            _ => self.len = Recorded::OVERFLOW,
        }
    }

    /// The members of `params`, the object these offsets were recorded in.
    pub(crate) fn members<'r, 'a>(&'r self, params: &'a str) -> ParamsMembers<'r, 'a> {
        let inner = match self.recorded(params) {
            Some(recorded) => Inner::Recorded(recorded),
            None => Inner::Scanned(Members::new(params)),
        };
        ParamsMembers { inner }
    }

    /// The members of `params` when they were all recorded; `None` when the object has to be
    /// scanned again.
    pub(crate) fn recorded<'r, 'a>(&'r self, params: &'a str) -> Option<RecordedMembers<'r, 'a>> {
        let spots = self.spots.get(..usize::from(self.len))?;
        Some(RecordedMembers {
            params,
            spots: spots.iter(),
        })
    }
}

/// The members of a request's `params`, from [`Request::members`](super::Request::members):
/// the same items, in the same order, as [`Members::new`] over `params` yields, without
/// scanning the text again when the parse recorded them.
#[derive(Clone)]
pub struct ParamsMembers<'r, 'a> {
    inner: Inner<'r, 'a>,
}

#[derive(Clone)]
enum Inner<'r, 'a> {
    Recorded(RecordedMembers<'r, 'a>),
    Scanned(Members<'a>),
}

impl<'a> Iterator for ParamsMembers<'_, 'a> {
    type Item = Result<Member<'a>, NotAnObject>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Recorded(recorded) => recorded.next(),
            Inner::Scanned(members) => members.next(),
        }
    }
}

/// The members the request parse recorded, one [`Spot`] each: the items of
/// [`ParamsMembers`] in a type of its own, so that a reader generic over the iterator
/// (the hot rate-limit methods) keeps each member in registers instead of passing it
/// through the enum's slot on the stack.
#[derive(Clone)]
pub(crate) struct RecordedMembers<'r, 'a> {
    params: &'a str,
    spots: core::slice::Iter<'r, Spot>,
}

impl<'a> Iterator for RecordedMembers<'_, 'a> {
    type Item = Result<Member<'a>, NotAnObject>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let spot = self.spots.next()?;
        // The offsets were recorded while scanning `params`, on its token boundaries.
        let span = |[a, b]: [u16; 2]| Span {
            start: u32::from(a),
            end: u32::from(b),
        };
        Some(Ok(Member {
            text: self.params,
            name: span(spot.name),
            value: span(spot.value),
            name_plain: spot.name_plain,
            plain_str: spot.plain_str,
        }))
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
/// [`JSON_MAX_DEPTH`]). Yields an error once, and then ends,
/// when the text is not one JSON object (or holds a member that ends past
/// [`MEMBER_END_MAX`]).
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
        let first = match self.position {
            Position::Done => return Ok(None),
            Position::Start => true,
            Position::AfterMember => false,
        };
        let Some(raw) = next_member(&mut self.sc, first, JSON_MAX_DEPTH)? else {
            self.sc.end()?;
            return Ok(None);
        };
        self.position = Position::AfterMember;
        // The spans come from scanning `text`, so they lie on its character boundaries.
        raw.in_text(self.text)
            .map(Some)
            .ok_or(ScanError::Syntax(raw.name.start))
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

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_member_ending_past_4_gib_is_refused() {
        let raw = |end: usize| RawMember {
            name: 1..2,
            value: end - 1..end,
            name_plain: true,
            plain_str: false,
        };
        // Offsets past the text (no 4 GiB text needed): only the bound is looked at.
        let text = r#"{"a":1}"#;
        assert!(raw(MEMBER_END_MAX).in_text(text).is_some());
        assert!(raw(MEMBER_END_MAX + 1).in_text(text).is_none());
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
