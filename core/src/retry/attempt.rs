//! Whether a failed attempt of a request may be made again: the client's half of the retry
//! rule (the policy says when; this says whether at all).

/// How one attempt failed without a reply, as a client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AttemptFault {
    /// The server is not (yet) there: nothing was sent.
    NotConnected,
    /// The deadline passed; the server may have applied the request.
    TimedOut,
    /// The connection broke before a whole reply arrived; the server may have applied the
    /// request.
    Broken,
    /// Anything else: the request or the reply is unusable, and sending it again gives the
    /// same answer.
    Unusable,
}

impl AttemptFault {
    /// Whether another attempt could succeed and is safe: after [`AttemptFault::NotConnected`]
    /// always; after a timeout or a broken connection only for a `read_only` request
    /// (a second `RATE_LIMIT_CONSUME` would take tokens twice); never after
    /// [`AttemptFault::Unusable`], nor after any reply the server did send.
    #[must_use]
    pub const fn may_retry(self, read_only: bool) -> bool {
        match self {
            AttemptFault::NotConnected => true,
            AttemptFault::TimedOut | AttemptFault::Broken => read_only,
            AttemptFault::Unusable => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AttemptFault::*;

    #[test]
    fn only_what_cannot_have_been_applied_twice_is_retried() {
        for read_only in [false, true] {
            assert!(NotConnected.may_retry(read_only));
            assert_eq!(TimedOut.may_retry(read_only), read_only);
            assert_eq!(Broken.may_retry(read_only), read_only);
            assert!(!Unusable.may_retry(read_only));
        }
    }
}
