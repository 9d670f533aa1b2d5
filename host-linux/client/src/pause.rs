//! [`Sleeper`]: how the client waits between retries (injectable, so tests record the delays
//! instead of sleeping), and the random `u64` the core's jitter needs.

use std::time::Duration;

/// Waits between retry attempts.
pub trait Sleeper: Send + Sync {
    /// Blocks the calling thread for `delay`.
    fn sleep(&self, delay: Duration);
}

/// [`std::thread::sleep`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadSleeper;

impl Sleeper for ThreadSleeper {
    fn sleep(&self, delay: Duration) {
        std::thread::sleep(delay);
    }
}

/// A uniformly random `u64` from the operating system, for the core's jitter. If the source
/// fails, `u64::MAX` (the full, unjittered delay: never shorter than intended).
pub(crate) fn random_u64() -> u64 {
    getrandom::u64().unwrap_or(u64::MAX)
}

/// A core duration as a std duration.
pub(crate) fn to_std(d: heidi_core::Duration) -> Duration {
    Duration::from_micros(d.as_micros())
}
