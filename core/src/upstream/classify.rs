//! What a failed upstream call means: its gRPC status code and the upstream's reason give a
//! [`Class`], and the class a [`Verdict`] (retry or not, what the breaker is told).

use core::fmt;

/// gRPC status codes used by this module (the numbering of `grpc/status.proto`).
pub mod code {
    /// The call was cancelled, usually by the caller.
    pub const CANCELLED: i32 = 1;
    /// An unknown error.
    pub const UNKNOWN: i32 = 2;
    /// The request is invalid whatever the upstream's state.
    pub const INVALID_ARGUMENT: i32 = 3;
    /// The deadline passed before the call completed.
    pub const DEADLINE_EXCEEDED: i32 = 4;
    /// The entity was not found.
    pub const NOT_FOUND: i32 = 5;
    /// The entity already exists.
    pub const ALREADY_EXISTS: i32 = 6;
    /// The caller lacks permission.
    pub const PERMISSION_DENIED: i32 = 7;
    /// A resource (a quota, a queue, a table) is exhausted.
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    /// The system is not in the state the operation needs.
    pub const FAILED_PRECONDITION: i32 = 9;
    /// The operation was aborted (a concurrency conflict).
    pub const ABORTED: i32 = 10;
    /// Past the valid range (a message above the receiver's size limit).
    pub const OUT_OF_RANGE: i32 = 11;
    /// The method is not implemented by the server.
    pub const UNIMPLEMENTED: i32 = 12;
    /// An internal error of the server.
    pub const INTERNAL: i32 = 13;
    /// The service is unavailable (down, unreachable, refusing connections).
    pub const UNAVAILABLE: i32 = 14;
    /// Unrecoverable data loss.
    pub const DATA_LOSS: i32 = 15;
    /// The caller has no valid credentials.
    pub const UNAUTHENTICATED: i32 = 16;
}

/// The response metadata key in which an upstream names why it refused a call
/// ([`Reason::as_str`]); absent when it gives no reason.
pub const REASON_METADATA: &str = "heidi-reason";

/// Why the upstream refused a call, when it says so (metadata [`REASON_METADATA`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reason {
    /// No reason given.
    None,
    /// `key_capacity`: the upstream cannot record another idempotency key (its dedupe table is
    /// full). Permanent for the new keys of the request: retrying cannot help.
    KeyCapacity,
    /// `overloaded`: the upstream is busy; a later attempt may pass.
    Overloaded,
    /// A reason this version does not know.
    Other,
}

impl Reason {
    /// The reason named by a metadata value (`None` for an absent value).
    pub fn parse(value: Option<&str>) -> Reason {
        match value {
            None => Reason::None,
            Some("key_capacity") => Reason::KeyCapacity,
            Some("overloaded") => Reason::Overloaded,
            Some(_) => Reason::Other,
        }
    }

    /// The metadata value of the reason (empty for [`Reason::None`] and [`Reason::Other`]).
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::KeyCapacity => "key_capacity",
            Reason::Overloaded => "overloaded",
            Reason::None | Reason::Other => "",
        }
    }
}

/// The kind of a failed upstream call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Class {
    /// The upstream refused the request on its merits, or cannot take its keys: the
    /// transactions it is about fail ([`split_refusal`](super::split_refusal) says which), it
    /// is not retried, and the breaker counts a success (the upstream answered).
    Refusal,
    /// The upstream is overloaded: retried with backoff (a failed attempt), and the breaker is
    /// told nothing (the call's permit is returned unused).
    Overload,
    /// A transport or server failure (down, unreachable, too slow, crashed): retried with
    /// backoff, and a failure for the breaker.
    Failure,
    /// The upstream cannot serve this call at all (unimplemented, data loss, a reply that does
    /// not answer the batch): not retried, a failure for the breaker.
    Broken,
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Class::Refusal => "refusal",
            Class::Overload => "overload",
            Class::Failure => "failure",
            Class::Broken => "broken",
        })
    }
}

/// What the breaker is told about a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BreakerInput {
    /// Record a success: the upstream is up and answering.
    Success,
    /// Record nothing: return the permit unused (`Breaker::abandon`).
    Neutral,
    /// Record a failure.
    Failure,
}

/// What a failed upstream call means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Verdict {
    /// The class the verdict comes from.
    pub class: Class,
    /// Worth another attempt with the same idempotency keys (subject to the retry policy,
    /// the retry budget and the breaker).
    pub retryable: bool,
    /// What the breaker is told.
    pub breaker: BreakerInput,
}

impl Class {
    /// The verdict of the class.
    pub const fn verdict(self) -> Verdict {
        let (retryable, breaker) = match self {
            Class::Refusal => (false, BreakerInput::Success),
            Class::Overload => (true, BreakerInput::Neutral),
            Class::Failure => (true, BreakerInput::Failure),
            Class::Broken => (false, BreakerInput::Failure),
        };
        Verdict {
            class: self,
            retryable,
            breaker,
        }
    }
}

/// The verdict on a failed call with gRPC status `code` and the upstream's `reason`.
///
/// | code | reason | class | retried | breaker |
/// |---|---|---|---|---|
/// | UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN | any | failure | yes | failure |
/// | RESOURCE_EXHAUSTED | `key_capacity` | refusal | no | success |
/// | RESOURCE_EXHAUSTED | none, `overloaded`, other | overload | yes | nothing |
/// | ABORTED | any | overload | yes | nothing |
/// | UNIMPLEMENTED, DATA_LOSS | any | broken | no | failure |
/// | any other (INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, UNAUTHENTICATED, CANCELLED, unknown codes) | any | refusal | no | success |
///
/// Retrying is safe for every retried class because a repeated transaction carries the same
/// idempotency key and the upstream applies a key at most once.
pub const fn classify(code: i32, reason: Reason) -> Verdict {
    use code::*;
    let class = match (code, reason) {
        (UNAVAILABLE | DEADLINE_EXCEEDED | INTERNAL | UNKNOWN, _) => Class::Failure,
        (RESOURCE_EXHAUSTED, Reason::KeyCapacity) => Class::Refusal,
        (RESOURCE_EXHAUSTED | ABORTED, _) => Class::Overload,
        (UNIMPLEMENTED | DATA_LOSS, _) => Class::Broken,
        _ => Class::Refusal,
    };
    class.verdict()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REASONS: [Reason; 4] = [
        Reason::None,
        Reason::KeyCapacity,
        Reason::Overloaded,
        Reason::Other,
    ];

    fn class_of(code: i32, reason: Reason) -> Class {
        classify(code, reason).class
    }

    #[test]
    fn transport_and_server_failures_are_retried_and_trip_the_breaker() {
        for c in [
            code::UNAVAILABLE,
            code::DEADLINE_EXCEEDED,
            code::INTERNAL,
            code::UNKNOWN,
        ] {
            for r in REASONS {
                assert_eq!(class_of(c, r), Class::Failure, "code {c} {r:?}");
            }
        }
    }

    #[test]
    fn a_full_key_table_is_a_refusal() {
        let v = classify(code::RESOURCE_EXHAUSTED, Reason::KeyCapacity);
        assert_eq!(v, Class::Refusal.verdict());
        assert!(!v.retryable && v.breaker == BreakerInput::Success);
    }

    #[test]
    fn other_exhaustion_is_overload() {
        for r in [Reason::None, Reason::Overloaded, Reason::Other] {
            let v = classify(code::RESOURCE_EXHAUSTED, r);
            assert_eq!(v.class, Class::Overload, "{r:?}");
            assert!(v.retryable && v.breaker == BreakerInput::Neutral);
        }
    }

    #[test]
    fn aborted_is_overload() {
        for r in REASONS {
            assert_eq!(class_of(code::ABORTED, r), Class::Overload, "{r:?}");
        }
    }

    #[test]
    fn unimplemented_and_data_loss_are_broken() {
        for c in [code::UNIMPLEMENTED, code::DATA_LOSS] {
            for r in REASONS {
                let v = classify(c, r);
                assert_eq!(v.class, Class::Broken, "code {c}");
                assert!(!v.retryable && v.breaker == BreakerInput::Failure);
            }
        }
    }

    #[test]
    fn any_other_code_is_a_refusal() {
        for c in [
            code::INVALID_ARGUMENT,
            code::OUT_OF_RANGE,
            code::FAILED_PRECONDITION,
            code::NOT_FOUND,
            code::ALREADY_EXISTS,
            code::PERMISSION_DENIED,
            code::UNAUTHENTICATED,
            code::CANCELLED,
            0,
            -1,
            99,
        ] {
            for r in REASONS {
                let v = classify(c, r);
                assert_eq!(v.class, Class::Refusal, "code {c} {r:?}");
                assert!(!v.retryable && v.breaker == BreakerInput::Success);
            }
        }
    }

    #[test]
    fn reasons_round_trip_through_metadata_values() {
        assert_eq!(Reason::parse(None), Reason::None);
        assert_eq!(Reason::parse(Some("bogus")), Reason::Other);
        for r in [Reason::KeyCapacity, Reason::Overloaded] {
            assert_eq!(Reason::parse(Some(r.as_str())), r);
        }
        assert_eq!(Reason::None.as_str(), "");
    }

    #[test]
    fn displays() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(Class::Refusal.to_string(), "refusal");
        assert_eq!(Class::Overload.to_string(), "overload");
        assert_eq!(Class::Failure.to_string(), "failure");
        assert_eq!(Class::Broken.to_string(), "broken");
    }
}
