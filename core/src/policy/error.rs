//! [`InvalidPolicy`]: why a policy document was refused, naming the field by its path.

use core::fmt;

use super::name::Name;
use crate::breaker::BreakerConfigError;
use crate::health::HealthConfigError;
use crate::idempotency::IdempotencyConfigError;
use crate::lease::LeaseConfigError;
use crate::limit::PolicyError;
use crate::proto::ErrorCode;
use crate::retry::PolicyError as RetryPolicyError;

/// Longest field path an error holds (`tiers.<64>.limits.<64>.capacity_tokens` fits; a longer
/// name, which is invalid anyway, is cut with `…`).
pub const PATH_MAX_BYTES: usize = 192;

/// Longest piece of a user-chosen name an error path shows.
const SEGMENT_MAX_BYTES: usize = 64;

/// A policy document refused: the field's dotted path (`limits.llm_call.capacity_tokens`,
/// `tiers.pro`, `default_tier`; empty for the document itself) and what is wrong with it.
/// `Display` writes `<path>: <reason>`, the message of `INVALID_POLICY`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidPolicy {
    path: heapless::String<PATH_MAX_BYTES>,
    /// What is wrong with the field.
    pub reason: Reason,
}

/// What is wrong with a field of a policy document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Reason {
    /// The document is not one JSON object (strict syntax, nesting at most 32).
    NotJson {
        /// Byte offset of the fault in the document.
        at_byte: u32,
    },
    /// The field must be a JSON object.
    NotAnObject,
    /// The field must be a string.
    NotAString,
    /// The field is given twice in its object.
    Duplicate,
    /// The object takes no field of this name.
    UnknownField {
        /// The names it takes, comma-separated.
        expected: &'static str,
    },
    /// An operation or tier name breaks the naming rule.
    BadName,
    /// More operations than the table holds.
    TooManyOperations {
        /// Operations the table holds, the built-in ones included.
        max: u16,
    },
    /// More tiers than the table holds.
    TooManyTiers {
        /// Tiers the table holds.
        max: u8,
    },
    /// A tier names an operation that is neither built in nor defined under `limits`.
    UnknownOperation,
    /// `default_tier` names no tier of `tiers`.
    UnknownTier,
    /// The value is not an integer in the range.
    Integer {
        /// Smallest value.
        min: u64,
        /// Largest value.
        max: u64,
    },
    /// The values make no rate limit.
    Limit(PolicyError),
    /// The field must be `true` or `false`.
    NotABool,
    /// A retry policy's `jitter` is none of the three.
    Jitter,
    /// A breaker's `rate` gives both `window_calls` and `window_ms`.
    WindowBoth,
    /// The values make no retry policy.
    Retry(RetryPolicyError),
    /// The values make no breaker configuration.
    Breaker(BreakerConfigError),
    /// The values make no lease configuration.
    Leases(LeaseConfigError),
    /// The values make no health configuration.
    Health(HealthConfigError),
    /// The values make no idempotency configuration.
    Idempotency(IdempotencyConfigError),
    /// More retry policies than the document may name.
    TooManyRetryPolicies {
        /// Retry policies allowed, the built-in ones included.
        max: u16,
    },
    /// More breaker entries than the document may give.
    TooManyBreakers {
        /// Entries allowed, `default` included.
        max: u16,
    },
    /// More readiness checks than the document may name.
    TooManyChecks {
        /// Checks allowed.
        max: u16,
    },
    /// `readiness.checks` is not an array.
    NotACheckList,
    /// A readiness check is named twice.
    NamedTwice(Name),
    /// The idempotency section differs from the running one, which is fixed at start-up.
    IdempotencyFixed,
}

impl InvalidPolicy {
    /// The error `reason` at the path made of `segments` joined with `.`; each segment is cut
    /// to 64 bytes (on a character boundary, with `…`), and the path to [`PATH_MAX_BYTES`].
    pub(crate) fn at(segments: &[&str], reason: Reason) -> InvalidPolicy {
        let mut path = heapless::String::new();
        for (i, segment) in segments.iter().enumerate() {
            if i > 0 && path.push('.').is_err() {
                break;
            }
            let cut = cut(segment, SEGMENT_MAX_BYTES);
            let fits = path.push_str(cut).is_ok();
            if !fits || (cut.len() < segment.len() && path.push('…').is_err()) {
                break;
            }
        }
        InvalidPolicy { path, reason }
    }

    /// The field's dotted path; empty for the document itself.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The error code of a refused document: `INVALID_POLICY`.
    pub const CODE: ErrorCode = ErrorCode::InvalidPolicy;
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotJson { at_byte } => {
                write!(f, "not a JSON object (invalid at byte {at_byte})")
            }
            Reason::NotAnObject => f.write_str("must be an object"),
            Reason::NotAString => f.write_str("must be a string"),
            Reason::Duplicate => f.write_str("duplicate field"),
            Reason::UnknownField { expected } => {
                write!(f, "unknown field (expected one of: {expected})")
            }
            Reason::BadName => f.write_str("names are 1 to 64 of A-Z a-z 0-9 _ . : -"),
            Reason::TooManyOperations { max } => write!(
                f,
                "at most {max} operations (the 6 built-in ones included)"
            ),
            Reason::TooManyTiers { max } => write!(f, "at most {max} tiers"),
            Reason::UnknownOperation => f.write_str(
                "unknown operation (a tier may set only the built-in ones and those defined under `limits`)",
            ),
            Reason::UnknownTier => f.write_str("unknown tier (not defined under `tiers`)"),
            Reason::Integer { min, max } => write!(f, "must be an integer from {min} to {max}"),
            Reason::Limit(e) => fmt::Display::fmt(e, f),
            Reason::NotABool => f.write_str("must be true or false"),
            Reason::Jitter => f.write_str("must be \"none\", \"equal\" or \"full\""),
            Reason::WindowBoth => f.write_str("give window_calls or window_ms, not both"),
            Reason::Retry(e) => fmt::Display::fmt(e, f),
            Reason::Breaker(e) => fmt::Display::fmt(e, f),
            Reason::Leases(e) => fmt::Display::fmt(e, f),
            Reason::Health(e) => fmt::Display::fmt(e, f),
            Reason::Idempotency(e) => fmt::Display::fmt(e, f),
            Reason::TooManyRetryPolicies { max } => {
                write!(f, "at most {max} retry policies (built-in included)")
            }
            Reason::TooManyBreakers { max } => write!(f, "at most {max} entries (default included)"),
            Reason::TooManyChecks { max } => write!(f, "at most {max} checks"),
            Reason::NotACheckList => f.write_str("must be an array of health check names"),
            Reason::NamedTwice(name) => write!(f, "{:?} is named twice", name.as_str()),
            Reason::IdempotencyFixed => f.write_str(
                "is fixed at start-up (records hold their TTLs); restart the daemon to change \
                 it, or send the section GET_POLICY shows",
            ),
        }
    }
}

impl fmt::Display for InvalidPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(document)"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.reason)
    }
}

impl core::error::Error for InvalidPolicy {}

#[cfg(feature = "defmt")]
impl defmt::Format for InvalidPolicy {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}: {}", self.path.as_str(), self.reason);
    }
}
