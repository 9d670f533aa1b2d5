//! The null transport: no daemon; every call succeeds with an empty payload.

use std::time::Instant;

use super::{Reply, Request, TransportError};

/// Answers `{}` to everything (tests, a disabled bridge).
#[derive(Debug)]
pub(crate) struct NullTransport;

impl NullTransport {
    /// Always `{}`.
    pub(crate) fn send(
        &self,
        _request: &Request,
        _deadline: Instant,
    ) -> Result<Reply, TransportError> {
        Reply::parse("{}")
    }
}
