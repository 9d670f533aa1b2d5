//! The params of `BREAKER_ACQUIRE` (`name`) and `BREAKER_RECORD` (`name`, `permit`,
//! `outcome`, `duration_ms`), read in one pass with the rules of `docs/PROTOCOL.md`:
//!
//! - `name`: a journal name, 1 to [`NAME_MAX_BYTES`] of `A-Z a-z 0-9 _ . : -`;
//! - `permit`: a 64-bit id as a decimal string (or a JSON integer that fits);
//! - `outcome`: `"success"`, `"failure"` or `"abandoned"`;
//! - `duration_ms`: an integer from 0 to [`DURATION_MAX_MS`] (absent or `null`: the time
//!   since the acquire).
//!
//! When several things are wrong, the first of this order is reported: a member given twice,
//! then `name`, `permit`, `outcome` (its type and length), `duration_ms`, `outcome` (its
//! value), then the unknown member whose name sorts first. As for the rate-limit params, an
//! unknown name given twice is reported as unknown.

use core::fmt;

use super::fields::{decimal_id, with_text};
use super::rate_params::{TextFault, string_member, unescape_name};
use crate::Duration;
use crate::journal::{NAME_MAX_BYTES, is_valid_name};
use crate::proto::params::{Member, NotAnObject};

/// Longest `duration_ms` (and any duration the protocol takes): 30 days, in ms.
pub const DURATION_MAX_MS: u64 = 30 * 24 * 3_600 * 1_000;

/// Longest `outcome` text read (the longest valid one is 9 bytes).
const OUTCOME_MAX_BYTES: usize = 16;

/// What a `BREAKER_RECORD` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reported {
    /// The call ran: it failed or not, and took this long if the client says.
    Ran {
        failed: bool,
        took: Option<Duration>,
    },
    /// The call never ran.
    Abandoned,
}

/// The params of one breaker call. `name` borrows the frame or the scratch buffer.
#[derive(Debug)]
pub(crate) struct BreakerParams<'s> {
    pub(crate) name: &'s str,
    /// `BREAKER_RECORD` only.
    pub(crate) permit: u64,
    /// `BREAKER_RECORD` only.
    pub(crate) reported: Reported,
}

/// The members these methods take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Name,
    Permit,
    Outcome,
    DurationMs,
}

impl Field {
    fn as_str(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Permit => "permit",
            Field::Outcome => "outcome",
            Field::DurationMs => "duration_ms",
        }
    }

    fn max_bytes(self) -> usize {
        match self {
            Field::Outcome => OUTCOME_MAX_BYTES,
            _ => NAME_MAX_BYTES,
        }
    }
}

/// Why the params were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamError<'a> {
    NotAnObject {
        at_byte: u32,
    },
    Duplicate(Field),
    Required(Field),
    NotAString(Field),
    Length(Field),
    BadEscape(Field),
    /// `name` holds a character outside the journal's name set.
    NameChars,
    /// `permit` is not a 64-bit id.
    Permit,
    /// `outcome` is none of the three.
    OutcomeValue,
    /// `duration_ms` is not an integer in range.
    Duration,
    /// A member of another name; `record` tells which list to show.
    Unknown {
        name: &'a str,
        record: bool,
    },
}

impl fmt::Display for ParamError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at =
            |f: &mut fmt::Formatter<'_>, field: &Field| write!(f, "params.{}: ", field.as_str());
        match self {
            ParamError::NotAnObject { at_byte } => {
                write!(f, "params: not a JSON object (invalid at byte {at_byte})")
            }
            ParamError::Duplicate(field) => {
                at(f, field)?;
                f.write_str("duplicate field")
            }
            ParamError::Required(field) => {
                at(f, field)?;
                f.write_str("is required")
            }
            ParamError::NotAString(field) => {
                at(f, field)?;
                f.write_str("must be a string")
            }
            ParamError::Length(field) => {
                at(f, field)?;
                write!(f, "must be 1 to {} bytes long", field.max_bytes())
            }
            ParamError::BadEscape(field) => {
                at(f, field)?;
                f.write_str("holds an invalid escape")
            }
            ParamError::NameChars => {
                f.write_str("params.name: names are 1 to 64 of A-Z a-z 0-9 _ . : -")
            }
            ParamError::Permit => {
                f.write_str("params.permit: must be a 64-bit id as a decimal string")
            }
            ParamError::OutcomeValue => {
                f.write_str("params.outcome: must be \"success\", \"failure\" or \"abandoned\"")
            }
            ParamError::Duration => write!(
                f,
                "params.duration_ms: must be an integer from 0 to {DURATION_MAX_MS}"
            ),
            ParamError::Unknown { name, record } => {
                let expected = if *record {
                    "duration_ms, name, outcome, permit"
                } else {
                    "name"
                };
                with_text(name, |name| {
                    write!(
                        f,
                        "params.{name}: unknown field (expected one of: {expected})"
                    )
                })
            }
        }
    }
}

/// Where an escaped `name` is unescaped.
#[derive(Clone, Debug)]
pub(crate) struct Scratch {
    name: [u8; NAME_MAX_BYTES],
}

impl Scratch {
    pub(crate) const fn new() -> Scratch {
        Scratch {
            name: [0; NAME_MAX_BYTES],
        }
    }
}

/// What one pass over the members found.
#[derive(Default)]
struct Seen<'m> {
    members: [Option<Member<'m>>; 4],
    duplicate: Option<Field>,
    unknown: Option<&'m str>,
}

impl<'m> Seen<'m> {
    fn take(&mut self, field: Field, member: Member<'m>) {
        let slot = &mut self.members[field as usize];
        if slot.is_some() {
            self.duplicate.get_or_insert(field);
        } else {
            *slot = Some(member);
        }
    }

    /// Keeps the unknown name that sorts first (unescaped).
    fn unknown(&mut self, raw: &'m str) {
        let first = match self.unknown {
            None => true,
            Some(kept) => with_text(raw, |a| with_text(kept, |b| a < b)),
        };
        if first {
            self.unknown = Some(raw);
        }
    }

    fn get(&self, field: Field) -> Option<Member<'m>> {
        self.members[field as usize].filter(|m| !m.is_null())
    }
}

/// Reads the params of `BREAKER_ACQUIRE` (`record == false`) or `BREAKER_RECORD`.
pub(crate) fn parse<'a: 's, 's>(
    members: impl Iterator<Item = Result<Member<'a>, NotAnObject>>,
    record: bool,
    scratch: &'s mut Scratch,
) -> Result<BreakerParams<'s>, ParamError<'a>> {
    let mut seen = Seen::default();
    for member in members {
        let member = member.map_err(|e| ParamError::NotAnObject { at_byte: e.at_byte })?;
        let raw = member.name_raw();
        let field = match member.name() {
            Some(name) => field_of(name, record),
            None => unescape_name(raw).and_then(|name| field_of(name.as_str(), record)),
        };
        match field {
            Some(field) => seen.take(field, member),
            None => seen.unknown(raw),
        }
    }
    if let Some(field) = seen.duplicate {
        return Err(ParamError::Duplicate(field));
    }
    let name = name(seen.get(Field::Name), &mut scratch.name)?;
    let mut params = BreakerParams {
        name,
        permit: 0,
        reported: Reported::Abandoned,
    };
    if record {
        params.permit = permit(seen.get(Field::Permit))?;
        let mut buf = [0u8; OUTCOME_MAX_BYTES];
        let outcome = text(Field::Outcome, seen.get(Field::Outcome), &mut buf)?;
        let took = match seen.get(Field::DurationMs) {
            None => None,
            Some(m) => match m.as_u64() {
                Some(ms) if ms <= DURATION_MAX_MS => Some(Duration::from_millis(ms)),
                _ => return Err(ParamError::Duration),
            },
        };
        params.reported = match outcome {
            "success" => Reported::Ran {
                failed: false,
                took,
            },
            "failure" => Reported::Ran { failed: true, took },
            "abandoned" => Reported::Abandoned,
            _ => return Err(ParamError::OutcomeValue),
        };
    }
    match seen.unknown {
        Some(name) => Err(ParamError::Unknown { name, record }),
        None => Ok(params),
    }
}

fn field_of(name: &str, record: bool) -> Option<Field> {
    match name {
        "name" => Some(Field::Name),
        "permit" if record => Some(Field::Permit),
        "outcome" if record => Some(Field::Outcome),
        "duration_ms" if record => Some(Field::DurationMs),
        _ => None,
    }
}

/// `name`: a string of 1 to 64 bytes, then the journal's name set.
fn name<'a: 's, 's>(
    member: Option<Member<'a>>,
    buf: &'s mut [u8; NAME_MAX_BYTES],
) -> Result<&'s str, ParamError<'a>> {
    let name = text(Field::Name, member, buf)?;
    if is_valid_name(name.as_bytes()) {
        Ok(name)
    } else {
        Err(ParamError::NameChars)
    }
}

/// `permit`: a 64-bit id ([`decimal_id`]).
fn permit<'a>(member: Option<Member<'a>>) -> Result<u64, ParamError<'a>> {
    let member = member.ok_or(ParamError::Required(Field::Permit))?;
    decimal_id(member).ok_or(ParamError::Permit)
}

/// A required string member of 1 to `N` bytes, unescaped into `buf` when written with escapes.
fn text<'a: 's, 's, const N: usize>(
    field: Field,
    member: Option<Member<'a>>,
    buf: &'s mut [u8; N],
) -> Result<&'s str, ParamError<'a>> {
    let member = member.ok_or(ParamError::Required(field))?;
    string_member(member, buf).map_err(|fault| match fault {
        TextFault::NotAString => ParamError::NotAString(field),
        TextFault::BadEscape => ParamError::BadEscape(field),
        TextFault::Length => ParamError::Length(field),
    })
}
