//! The error replies a host answers itself, outside the service's methods: a caller not
//! admitted, no in-flight slot, a queue to the disk that is full, a reply beyond the reply
//! limit, a pipeline that refuses or has stopped, a write that failed. Their codes and words
//! are decided here, so every host refuses the same way (see `docs/PROTOCOL.md`, "Replies and
//! errors"); what went wrong is the host's to find out.
//!
//! ```
//! use heidi_core::proto::{ErrorCode, HostRefusal, Method, Queue};
//!
//! let full = HostRefusal::QueueFull(Queue::Journal);
//! assert_eq!(full.code(), ErrorCode::Overloaded);
//! assert_eq!(full.to_string(), "the journal queue is full; retry shortly");
//! let who = "uid 1000";
//! let forbidden = HostRefusal::Forbidden { peer: &who, method: Method::ApplyPolicy };
//! assert_eq!(
//!     forbidden.to_string(),
//!     "uid 1000 may not call admin methods such as APPLY_POLICY (see the daemon's [authorization])"
//! );
//! ```

use core::fmt;

use super::{ErrorCode, Method};

/// A queue in front of a host's disk writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Queue {
    /// The journal's appends.
    Journal,
    /// The idempotency records.
    IdempotencyRecords,
}

impl Queue {
    const fn name(self) -> &'static str {
        match self {
            Queue::Journal => "journal",
            Queue::IdempotencyRecords => "idempotency record",
        }
    }
}

/// An error reply a host writes itself ([`code`](HostRefusal::code), and the message its
/// `Display` writes).
#[derive(Clone, Copy)]
pub enum HostRefusal<'a> {
    /// The caller may not call methods of `method`'s class (`FORBIDDEN`).
    Forbidden {
        /// Who called, as the host names callers.
        peer: &'a dyn fmt::Display,
        /// What it called.
        method: Method,
    },
    /// Every in-flight slot is held (`OVERLOADED`).
    InflightFull,
    /// A queue to the disk is full (`OVERLOADED`); nothing was applied.
    QueueFull(Queue),
    /// A policy change found the journal's queue full (`OVERLOADED`); nothing was applied.
    PolicyQueueFull,
    /// The reply came out longer than the reply limit (`INTERNAL`).
    ReplyTooLarge {
        /// Its length, in bytes.
        len: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The pipeline does not take the command in its state (`REFUSED`); why.
    PipelineRefused(&'a str),
    /// The pipeline's runner has stopped: the host is shutting down (`UNAVAILABLE`); why.
    PipelineStopped(&'a str),
    /// A write to the disk or another I/O failed (`INTERNAL`); the host's description.
    Failed(&'a dyn fmt::Display),
    /// A policy change could not be staged or journaled (`INTERNAL`); nothing was applied.
    PolicyNotApplied(&'a dyn fmt::Display),
    /// A method reached a host with no handler for it (`INTERNAL`).
    NoHandler,
}

impl HostRefusal<'_> {
    /// The error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            HostRefusal::Forbidden { .. } => ErrorCode::Forbidden,
            HostRefusal::InflightFull
            | HostRefusal::QueueFull(_)
            | HostRefusal::PolicyQueueFull => ErrorCode::Overloaded,
            HostRefusal::PipelineRefused(_) => ErrorCode::Refused,
            HostRefusal::PipelineStopped(_) => ErrorCode::Unavailable,
            HostRefusal::ReplyTooLarge { .. }
            | HostRefusal::Failed(_)
            | HostRefusal::PolicyNotApplied(_)
            | HostRefusal::NoHandler => ErrorCode::Internal,
        }
    }
}

/// The message.
impl fmt::Display for HostRefusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostRefusal::Forbidden { peer, method } => write!(
                f,
                "{peer} may not call {} methods such as {method} (see the daemon's [authorization])",
                method.class()
            ),
            HostRefusal::InflightFull => f.write_str("too many requests in flight; retry shortly"),
            HostRefusal::QueueFull(queue) => {
                write!(f, "the {} queue is full; retry shortly", queue.name())
            }
            HostRefusal::PolicyQueueFull => {
                f.write_str("the journal queue is full; nothing was applied")
            }
            HostRefusal::ReplyTooLarge { len, limit } => {
                write!(f, "the reply of {len} bytes exceeds the {limit}-byte limit")
            }
            HostRefusal::PipelineRefused(why) | HostRefusal::PipelineStopped(why) => {
                f.write_str(why)
            }
            HostRefusal::Failed(why) => write!(f, "{why}"),
            HostRefusal::PolicyNotApplied(why) => write!(f, "{why}, so nothing was applied"),
            HostRefusal::NoHandler => f.write_str("method has no handler"),
        }
    }
}

impl fmt::Debug for HostRefusal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {self}", self.code())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn each_refusal_has_its_code_and_words() {
        let peer = "http 127.0.0.1:5";
        let io = "disk full";
        let all: [(HostRefusal<'_>, ErrorCode, &str); 11] = [
            (
                HostRefusal::Forbidden {
                    peer: &peer,
                    method: Method::LeaseAcquire,
                },
                ErrorCode::Forbidden,
                "http 127.0.0.1:5 may not call mutate methods such as LEASE_ACQUIRE (see the daemon's [authorization])",
            ),
            (
                HostRefusal::InflightFull,
                ErrorCode::Overloaded,
                "too many requests in flight; retry shortly",
            ),
            (
                HostRefusal::QueueFull(Queue::Journal),
                ErrorCode::Overloaded,
                "the journal queue is full; retry shortly",
            ),
            (
                HostRefusal::QueueFull(Queue::IdempotencyRecords),
                ErrorCode::Overloaded,
                "the idempotency record queue is full; retry shortly",
            ),
            (
                HostRefusal::PolicyQueueFull,
                ErrorCode::Overloaded,
                "the journal queue is full; nothing was applied",
            ),
            (
                HostRefusal::ReplyTooLarge { len: 9, limit: 8 },
                ErrorCode::Internal,
                "the reply of 9 bytes exceeds the 8-byte limit",
            ),
            (
                HostRefusal::PipelineRefused("running"),
                ErrorCode::Refused,
                "running",
            ),
            (
                HostRefusal::PipelineStopped("stopping"),
                ErrorCode::Unavailable,
                "stopping",
            ),
            (HostRefusal::Failed(&io), ErrorCode::Internal, "disk full"),
            (
                HostRefusal::PolicyNotApplied(&io),
                ErrorCode::Internal,
                "disk full, so nothing was applied",
            ),
            (
                HostRefusal::NoHandler,
                ErrorCode::Internal,
                "method has no handler",
            ),
        ];
        for (refusal, code, words) in all {
            assert_eq!(
                (refusal.code(), refusal.to_string().as_str()),
                (code, words)
            );
        }
    }
}
