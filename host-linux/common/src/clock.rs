//! The host's clocks, converted at the edge into the core's time types.

use heidi_core::{Instant, WallTime};
use std::time::{SystemTime, UNIX_EPOCH};

/// A monotonic clock whose epoch is its creation: `now()` is a core [`Instant`].
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: std::time::Instant,
    source: Source,
}

/// Where a [`Clock`] reads the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// `std::time::Instant::now()`.
    Std,
    /// `tokio::time::Instant::now()`: the same clock, except in a test runtime whose time is
    /// paused, where it is virtual and moves only when the test (or tokio's auto-advance)
    /// moves it.
    #[cfg(feature = "tokio")]
    Tokio,
}

impl Clock {
    /// A clock whose [`Instant::ZERO`] is now.
    pub fn start() -> Clock {
        Clock {
            epoch: std::time::Instant::now(),
            source: Source::Std,
        }
    }

    /// A clock that reads tokio's time, so that timers (`tokio::time::sleep`) and readings
    /// agree under a paused test runtime; in production it reads the same monotonic clock as
    /// [`Clock::start`]. (Feature `tokio`.)
    #[cfg(feature = "tokio")]
    pub fn start_tokio() -> Clock {
        Clock {
            epoch: tokio::time::Instant::now().into_std(),
            source: Source::Tokio,
        }
    }

    fn read(&self) -> std::time::Instant {
        match self.source {
            Source::Std => std::time::Instant::now(),
            #[cfg(feature = "tokio")]
            Source::Tokio => tokio::time::Instant::now().into_std(),
        }
    }

    /// Microseconds since the clock started, as a core [`Instant`].
    pub fn now(&self) -> Instant {
        self.at(self.read())
    }

    /// A std instant read earlier, as a core [`Instant`] of this clock (the clock's start if
    /// `at` precedes it).
    pub fn at(&self, at: std::time::Instant) -> Instant {
        let micros = at.saturating_duration_since(self.epoch).as_micros();
        Instant::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// The std instant that corresponds to a core `Instant` of this clock (for timers).
    pub fn to_std(&self, at: Instant) -> std::time::Instant {
        self.epoch + std::time::Duration::from_micros(at.as_micros())
    }
}

/// The wall clock, for stamping journal lines only.
pub fn wall_now() -> WallTime {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    WallTime::from_unix_millis(ms)
}

/// 16 bytes from the operating system's random source (seeds and id keys).
pub fn random_key() -> std::io::Result<[u8; 16]> {
    let mut key = [0u8; 16];
    getrandom::fill(&mut key).map_err(std::io::Error::other)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_round_trips() {
        let clock = Clock::start();
        let a = clock.now();
        let b = clock.now();
        assert!(b >= a);
        let back = clock.to_std(b);
        assert!(back >= clock.epoch);
    }

    #[cfg(feature = "tokio")]
    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_follows_paused_time() {
        let clock = Clock::start_tokio();
        let before = clock.now();
        tokio::time::advance(std::time::Duration::from_secs(3600)).await;
        let after = clock.now();
        assert_eq!(
            after.saturating_duration_since(before),
            heidi_core::Duration::from_secs(3600)
        );
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(random_key().unwrap(), random_key().unwrap());
    }
}
