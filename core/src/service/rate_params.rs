//! The params of `RATE_LIMIT_CHECK` and `RATE_LIMIT_CONSUME`, read in one pass with one rule
//! set: `key` (1 to [`KEY_MAX_BYTES`] bytes), `operation` (1 to [`OPERATION_MAX_BYTES`]),
//! `cost` (an integer that fits a `u32`, default 1; `null` counts as absent), `tier` (optional,
//! 1 to [`TIER_MAX_BYTES`]; `null` counts as absent). Names and strings
//! may be written with escapes: they are unescaped into bounded stack buffers. A refusal
//! names the field path (`params.key: is required`).
//!
//! Cost 0 and a cost above the operation's capacity are not refused here: those are the
//! limiter's rules, and an unknown tier is the policy's ([`KeyedLimiter::acquire`](crate::limit::KeyedLimiter::acquire)).
//!
//! When several things are wrong, the first of this order is reported: a member given twice,
//! then `key`, `operation`, `cost`, `tier`, then the unknown member whose name sorts first.

use core::fmt;

use crate::json::unescape::{FixedStr, unescape};
use crate::proto::ERROR_MESSAGE_MAX_BYTES;
use crate::proto::params::{Member, NotAnObject};

/// Longest client key (`params.key`), in bytes.
pub const KEY_MAX_BYTES: usize = 256;
/// Longest operation name (`params.operation`), in bytes.
pub const OPERATION_MAX_BYTES: usize = 64;
/// Longest tier name (`params.tier`), in bytes.
pub const TIER_MAX_BYTES: usize = 64;

/// The params of one rate-limit call, as sent (the operation not yet looked up). The strings
/// borrow the frame, or the [`Scratch`] when they were written with escapes.
#[derive(Debug)]
pub(crate) struct RateParams<'s> {
    pub(crate) key: &'s str,
    pub(crate) operation: &'s str,
    pub(crate) cost: u32,
    pub(crate) tier: Option<&'s str>,
}

/// Where escaped strings are unescaped: kept by the service, so a call written plainly copies
/// nothing and a call with escapes zeroes nothing.
#[derive(Clone, Debug)]
pub(crate) struct Scratch {
    key: [u8; KEY_MAX_BYTES],
    operation: [u8; OPERATION_MAX_BYTES],
    tier: [u8; TIER_MAX_BYTES],
}

impl Scratch {
    pub(crate) const fn new() -> Scratch {
        Scratch {
            key: [0; KEY_MAX_BYTES],
            operation: [0; OPERATION_MAX_BYTES],
            tier: [0; TIER_MAX_BYTES],
        }
    }
}

/// Why the params were refused: the field and what is wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamError<'a> {
    /// Not a JSON object (only text that did not come from [`Request::parse`]).
    ///
    /// [`Request::parse`]: crate::proto::Request::parse
    NotAnObject { at_byte: u32 },
    /// A member given twice (`params.cost: duplicate field`).
    Duplicate(Field),
    /// A required member is absent or `null`.
    Required(Field),
    /// `key`, `operation` or `tier` is not a string.
    NotAString(Field),
    /// `key`, `operation` or `tier` is empty or too long.
    Length(Field),
    /// `key`, `operation` or `tier` holds an escape that names no character (a lone surrogate).
    BadEscape(Field),
    /// `cost` is not an integer in `0..=u32::MAX`.
    Cost,
    /// A member of another name.
    Unknown(Name<'a>),
}

/// The members these methods take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Key,
    Operation,
    Cost,
    Tier,
}

impl Field {
    fn as_str(self) -> &'static str {
        match self {
            Field::Key => "key",
            Field::Operation => "operation",
            Field::Cost => "cost",
            Field::Tier => "tier",
        }
    }

    fn max_bytes(self) -> usize {
        match self {
            Field::Key => KEY_MAX_BYTES,
            Field::Tier => TIER_MAX_BYTES,
            _ => OPERATION_MAX_BYTES,
        }
    }
}

/// A member's name as written between its quotes; compared and shown unescaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Name<'a>(&'a str);

impl Name<'_> {
    /// The name unescaped (cut to what an error message shows), or as written when it is
    /// longer than that.
    fn with_text<T>(&self, f: impl FnOnce(&str) -> T) -> T {
        if !self.0.contains('\\') {
            return f(self.0);
        }
        match unescape_name(self.0) {
            Some(name) => f(name.as_str()),
            None => f(self.0),
        }
    }
}

impl fmt::Display for ParamError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::NotAnObject { at_byte } => {
                write!(f, "params: not a JSON object (invalid at byte {at_byte})")
            }
            ParamError::Duplicate(field) => write!(f, "params.{}: duplicate field", field.as_str()),
            ParamError::Required(field) => write!(f, "params.{}: is required", field.as_str()),
            ParamError::NotAString(field) => {
                write!(f, "params.{}: must be a string", field.as_str())
            }
            ParamError::Length(field) => write!(
                f,
                "params.{}: must be 1 to {} bytes long",
                field.as_str(),
                field.max_bytes()
            ),
            ParamError::BadEscape(field) => {
                write!(f, "params.{}: holds an invalid escape", field.as_str())
            }
            ParamError::Cost => write!(f, "params.cost: must be an integer from 0 to {}", u32::MAX),
            ParamError::Unknown(name) => name.with_text(|name| {
                write!(
                    f,
                    "params.{name}: unknown field (expected one of: cost, key, operation, tier)"
                )
            }),
        }
    }
}

/// A member's value as the pass read it: `Ok(None)` for `null`.
type Got<T, E> = Result<Option<T>, E>;

/// The scratch buffers of `key`, `operation` and `tier`.
type Bufs<'s, const K: usize, const O: usize, const T: usize> = (
    Option<&'s mut [u8; K]>,
    Option<&'s mut [u8; O]>,
    Option<&'s mut [u8; T]>,
);

/// What one pass over the members found. Each known member is read as soon as it is met
/// (strings unescaped into their scratch buffer when they must be), so no member is kept and
/// moved again: a member copied through memory is read back in wider loads than it was
/// written in, which stalls the load.
struct Seen<'s, 'm, const K: usize, const O: usize, const T: usize> {
    key: Option<Got<&'s str, TextFault>>,
    operation: Option<Got<&'s str, TextFault>>,
    cost: Option<Got<u32, ()>>,
    tier: Option<Got<&'s str, TextFault>>,
    /// The scratch buffers of the strings not met yet: each is taken by the first member of
    /// its name, so a buffer that is gone means the member was met before.
    bufs: Bufs<'s, K, O, T>,
    duplicate: Option<Field>,
    unknown: Option<Name<'m>>,
}

impl<'s, 'm: 's, const K: usize, const O: usize, const T: usize> Seen<'s, 'm, K, O, T> {
    /// Reads `member`, named `name` (unescaped).
    #[inline(always)]
    fn take(&mut self, name: &[u8], member: Member<'m>) {
        match name {
            b"key" => match self.bufs.0.take() {
                Some(buf) => self.key = Some(text_value(member, buf)),
                None => self.twice(Field::Key),
            },
            b"operation" => match self.bufs.1.take() {
                Some(buf) => self.operation = Some(text_value(member, buf)),
                None => self.twice(Field::Operation),
            },
            b"tier" => match self.bufs.2.take() {
                Some(buf) => self.tier = Some(text_value(member, buf)),
                None => self.twice(Field::Tier),
            },
            b"cost" if self.cost.is_some() => self.twice(Field::Cost),
            b"cost" => self.cost = Some(cost_value(member)),
            _ => self.unknown(Name(member.name_raw())),
        }
    }

    fn twice(&mut self, field: Field) {
        self.duplicate.get_or_insert(field);
    }

    /// Keeps the unknown name that sorts first (unescaped).
    fn unknown(&mut self, name: Name<'m>) {
        let first = match self.unknown {
            None => true,
            Some(u) => name.with_text(|a| u.with_text(|b| a < b)),
        };
        if first {
            self.unknown = Some(name);
        }
    }
}

/// Reads the params of a rate-limit call from its members (in the order written).
pub(crate) fn parse<'a: 's, 's>(
    members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
    scratch: &'s mut Scratch,
) -> Result<RateParams<'s>, ParamError<'a>> {
    let Scratch {
        key,
        operation,
        tier,
    } = scratch;
    let mut seen = Seen {
        key: None,
        operation: None,
        cost: None,
        tier: None,
        bufs: (Some(key), Some(operation), Some(tier)),
        duplicate: None,
        unknown: None,
    };
    for member in members {
        let member = member.map_err(|e| ParamError::NotAnObject { at_byte: e.at_byte })?;
        match member.name_bytes() {
            Some(name) => seen.take(name, member),
            // Escaped: "key" and the others are short, so a long name is unknown.
            None => match unescape_name(member.name_raw()) {
                Some(name) => seen.take(name.as_str().as_bytes(), member),
                None => seen.unknown(Name(member.name_raw())),
            },
        }
    }
    if let Some(field) = seen.duplicate {
        return Err(ParamError::Duplicate(field));
    }
    let key = required(Field::Key, seen.key)?;
    let operation = required(Field::Operation, seen.operation)?;
    let cost = match seen.cost {
        Some(Err(())) => return Err(ParamError::Cost),
        Some(Ok(Some(cost))) => cost,
        // Absent or `null`.
        _ => 1,
    };
    let tier = match seen.tier {
        Some(got) => got.map_err(|fault| text_error(Field::Tier, fault))?,
        None => None,
    };
    if let Some(name) = seen.unknown {
        return Err(ParamError::Unknown(name));
    }
    Ok(RateParams {
        key,
        operation,
        cost,
        tier,
    })
}

/// An escaped member name, unescaped; `None` when it is longer than an error can show.
pub(super) fn unescape_name(raw: &str) -> Option<FixedStr<ERROR_MESSAGE_MAX_BYTES>> {
    if raw.len() > ERROR_MESSAGE_MAX_BYTES {
        return None;
    }
    let mut quoted = [0u8; ERROR_MESSAGE_MAX_BYTES + 2];
    let body = quoted.get_mut(1..=raw.len())?;
    body.copy_from_slice(raw.as_bytes());
    quoted[0] = b'"';
    quoted[raw.len() + 1] = b'"';
    unescape(&quoted[..raw.len() + 2])
}

/// A string member of 1 to `N` bytes, unescaped into `buf` when written with escapes;
/// `Ok(None)` for `null`.
#[inline(always)]
fn text_value<'a: 's, 's, const N: usize>(
    member: Member<'a>,
    buf: &'s mut [u8; N],
) -> Got<&'s str, TextFault> {
    if member.is_null() {
        return Ok(None);
    }
    string_member(member, buf).map(Some)
}

/// A required string member: absent or `null` is missing.
fn required<'a>(field: Field, got: Option<Got<&str, TextFault>>) -> Result<&str, ParamError<'a>> {
    match got {
        Some(Ok(Some(text))) => Ok(text),
        Some(Err(fault)) => Err(text_error(field, fault)),
        _ => Err(ParamError::Required(field)),
    }
}

fn text_error<'a>(field: Field, fault: TextFault) -> ParamError<'a> {
    match fault {
        TextFault::NotAString => ParamError::NotAString(field),
        TextFault::BadEscape => ParamError::BadEscape(field),
        TextFault::Length => ParamError::Length(field),
    }
}

/// Why a member is not a string of 1 to `N` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextFault {
    /// Not a JSON string.
    NotAString,
    /// A string with a bad escape.
    BadEscape,
    /// Empty, or longer than `N` bytes (unescaped).
    Length,
}

/// `member` as a string of 1 to `N` bytes: as it stands when it holds no escape, else unescaped
/// into `buf`. The params readers of every method share this rule.
pub(super) fn string_member<'a: 's, 's, const N: usize>(
    member: Member<'a>,
    buf: &'s mut [u8; N],
) -> Result<&'s str, TextFault> {
    let value = if let Some(plain) = member.as_plain_str() {
        plain
    } else if member.raw().starts_with('"') {
        // Escaped: an unescaped string is never longer than its escaped text, so a text of at
        // most `N` bytes between its quotes that fails holds a bad escape.
        let raw = member.raw();
        let fail = if raw.len() - 2 <= N {
            TextFault::BadEscape
        } else {
            TextFault::Length
        };
        let unescaped = unescape::<N>(raw.as_bytes()).ok_or(fail)?;
        let text = unescaped.as_str().as_bytes();
        let copy = &mut buf[..text.len()];
        copy.copy_from_slice(text);
        // A copy of a `&str`.
        core::str::from_utf8(copy).map_err(|_| fail)?
    } else {
        return Err(TextFault::NotAString);
    };
    if (1..=N).contains(&value.len()) {
        Ok(value)
    } else {
        Err(TextFault::Length)
    }
}

/// `cost`: an integer in `0..=u32::MAX`; `Ok(None)` for `null`.
#[inline(always)]
fn cost_value(member: Member<'_>) -> Got<u32, ()> {
    if member.is_null() {
        return Ok(None);
    }
    match member.as_u64().map(u32::try_from) {
        Some(Ok(cost)) => Ok(Some(cost)),
        _ => Err(()),
    }
}
