//! Descriptors for the configured connections: the soft `RLIMIT_NOFILE` is raised to the hard
//! limit at start, and a configuration that could still run out is refused up front (rather
//! than connections hanging unaccepted under `EMFILE`).

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept for everything but client connections: the journal, seals, state and
/// key files, the lock, listeners, the runtime, refused connections being answered.
const RESERVED: u64 = 256;

/// Raises the soft limit and checks that two listeners of `max_connections` each fit.
pub(crate) fn ensure(max_connections: u32) -> Result<u64, String> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(error = %e, "cannot raise the open-files limit");
        }
    }
    let available = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let needed = 2 * u64::from(max_connections) + RESERVED;
    if available < needed {
        return Err(format!(
            "configuration error in limits.max_connections: {max_connections} connections on each \
             of two listeners need {needed} descriptors, but the open-files limit is {available} \
             (raise it with `ulimit -n` or LimitNOFILE=, or lower max_connections)"
        ));
    }
    Ok(available)
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_connections_fit_and_absurd_ones_are_refused() {
        let available = super::ensure(16).unwrap();
        assert!(available >= 16 * 2 + super::RESERVED);
        if available < u64::from(u32::MAX) {
            let e = super::ensure(u32::MAX).unwrap_err();
            assert!(e.contains("limits.max_connections"), "{e}");
        }
    }
}
