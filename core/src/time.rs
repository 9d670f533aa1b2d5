//! Time as a value: [`Instant`], [`Duration`] and the wall-clock [`WallTime`].
//!
//! The core never reads a clock. Hosts convert their monotonic clock to an [`Instant`] at the
//! edge (microseconds since an epoch of the host's choosing, usually process start) and pass it
//! to every call. Arithmetic is checked or saturating; there is deliberately no
//! `Instant - Instant` operator, because an absolute difference hides which of the two was
//! expected to be later. Use [`Instant::saturating_duration_since`] or
//! [`Instant::checked_duration_since`].
//!
//! [`WallTime`] is a separate type so that a wall-clock reading can never be used where a
//! monotonic one is needed: it exists only to stamp records (journal lines) and has no
//! arithmetic with [`Instant`].

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A span of time in whole microseconds.
///
/// The `+`, `-` and `*` operators saturate at [`Duration::ZERO`] and [`Duration::MAX`]; use the
/// `checked_*` methods where overflow must be noticed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Duration {
    micros: u64,
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration { micros: 0 };
    /// The longest representable span (about 584,542 years).
    pub const MAX: Duration = Duration { micros: u64::MAX };

    /// A span of `micros` microseconds.
    pub const fn from_micros(micros: u64) -> Duration {
        Duration { micros }
    }

    /// A span of `millis` milliseconds, saturating at [`Duration::MAX`].
    pub const fn from_millis(millis: u64) -> Duration {
        Duration {
            micros: millis.saturating_mul(1_000),
        }
    }

    /// A span of `secs` seconds, saturating at [`Duration::MAX`].
    pub const fn from_secs(secs: u64) -> Duration {
        Duration {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    /// The span in whole microseconds.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// The span in whole milliseconds, rounded down.
    pub const fn as_millis(self) -> u64 {
        self.micros / 1_000
    }

    /// The span in whole milliseconds, rounded up (use this for "retry after" hints, so that a
    /// client that waits the hinted time is never early).
    pub const fn as_millis_ceil(self) -> u64 {
        self.micros.div_ceil(1_000)
    }

    /// The span in whole seconds, rounded down.
    pub const fn as_secs(self) -> u64 {
        self.micros / 1_000_000
    }

    /// Whether this is [`Duration::ZERO`].
    pub const fn is_zero(self) -> bool {
        self.micros == 0
    }

    /// `self + rhs`, or `None` on overflow.
    pub const fn checked_add(self, rhs: Duration) -> Option<Duration> {
        match self.micros.checked_add(rhs.micros) {
            Some(micros) => Some(Duration { micros }),
            None => None,
        }
    }

    /// `self - rhs`, or `None` if `rhs` is longer than `self`.
    pub const fn checked_sub(self, rhs: Duration) -> Option<Duration> {
        match self.micros.checked_sub(rhs.micros) {
            Some(micros) => Some(Duration { micros }),
            None => None,
        }
    }

    /// `self × rhs`, or `None` on overflow.
    pub const fn checked_mul(self, rhs: u64) -> Option<Duration> {
        match self.micros.checked_mul(rhs) {
            Some(micros) => Some(Duration { micros }),
            None => None,
        }
    }

    /// `self + rhs`, clamped to [`Duration::MAX`].
    pub const fn saturating_add(self, rhs: Duration) -> Duration {
        Duration {
            micros: self.micros.saturating_add(rhs.micros),
        }
    }

    /// `self - rhs`, clamped to [`Duration::ZERO`].
    pub const fn saturating_sub(self, rhs: Duration) -> Duration {
        Duration {
            micros: self.micros.saturating_sub(rhs.micros),
        }
    }

    /// `self × rhs`, clamped to [`Duration::MAX`].
    pub const fn saturating_mul(self, rhs: u64) -> Duration {
        Duration {
            micros: self.micros.saturating_mul(rhs),
        }
    }

    /// The shorter of the two spans (usable in `const` context, unlike `Ord::min`).
    pub const fn min_const(self, other: Duration) -> Duration {
        if self.micros <= other.micros {
            self
        } else {
            other
        }
    }
}

impl Add for Duration {
    type Output = Duration;
    /// Saturating addition.
    fn add(self, rhs: Duration) -> Duration {
        self.saturating_add(rhs)
    }
}

impl AddAssign for Duration {
    fn add_assign(&mut self, rhs: Duration) {
        *self = self.saturating_add(rhs);
    }
}

impl Sub for Duration {
    type Output = Duration;
    /// Saturating subtraction: never below [`Duration::ZERO`].
    fn sub(self, rhs: Duration) -> Duration {
        self.saturating_sub(rhs)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.micros / 1_000, self.micros % 1_000);
        if frac == 0 {
            write!(f, "{whole}ms")
        } else {
            write!(f, "{whole}.{frac:03}ms")
        }
    }
}

#[cfg(feature = "std")]
impl From<std::time::Duration> for Duration {
    /// Truncates to whole microseconds and saturates at [`Duration::MAX`].
    fn from(d: std::time::Duration) -> Duration {
        Duration {
            micros: u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

#[cfg(feature = "std")]
impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> std::time::Duration {
        std::time::Duration::from_micros(d.micros)
    }
}

/// A point on the host's monotonic clock, in microseconds since an epoch the host chooses.
///
/// Only differences between instants from the same host clock mean anything. `Instant + Duration`
/// and `Instant - Duration` saturate at [`Instant::ZERO`] and [`Instant::MAX`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The host clock's epoch.
    pub const ZERO: Instant = Instant { micros: 0 };
    /// The last representable instant; used as "never".
    pub const MAX: Instant = Instant { micros: u64::MAX };

    /// The instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Instant {
        Instant { micros }
    }

    /// The instant `millis` milliseconds after the epoch, saturating.
    pub const fn from_millis(millis: u64) -> Instant {
        Instant {
            micros: millis.saturating_mul(1_000),
        }
    }

    /// The instant `secs` seconds after the epoch, saturating.
    pub const fn from_secs(secs: u64) -> Instant {
        Instant {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// Time elapsed from `earlier` to `self`, or `None` if `earlier` is later than `self`.
    pub const fn checked_duration_since(self, earlier: Instant) -> Option<Duration> {
        match self.micros.checked_sub(earlier.micros) {
            Some(micros) => Some(Duration { micros }),
            None => None,
        }
    }

    /// Time elapsed from `earlier` to `self`, or [`Duration::ZERO`] if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration {
            micros: self.micros.saturating_sub(earlier.micros),
        }
    }

    /// `self + d`, or `None` past [`Instant::MAX`].
    pub const fn checked_add(self, d: Duration) -> Option<Instant> {
        match self.micros.checked_add(d.micros) {
            Some(micros) => Some(Instant { micros }),
            None => None,
        }
    }

    /// `self - d`, or `None` before [`Instant::ZERO`].
    pub const fn checked_sub(self, d: Duration) -> Option<Instant> {
        match self.micros.checked_sub(d.micros) {
            Some(micros) => Some(Instant { micros }),
            None => None,
        }
    }

    /// `self + d`, clamped to [`Instant::MAX`].
    pub const fn saturating_add(self, d: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_add(d.micros),
        }
    }

    /// `self - d`, clamped to [`Instant::ZERO`].
    pub const fn saturating_sub(self, d: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_sub(d.micros),
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturating: clamps to [`Instant::MAX`].
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = self.saturating_add(d);
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    /// Saturating: clamps to [`Instant::ZERO`].
    fn sub(self, d: Duration) -> Instant {
        self.saturating_sub(d)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T+{}", Duration::from_micros(self.micros))
    }
}

/// A wall-clock reading: milliseconds since the Unix epoch, UTC, as read by the host.
///
/// Used only to stamp records. It may jump (NTP, manual changes), so no decision in the core
/// depends on it. [`Display`](fmt::Display) renders the journal's `ts` form,
/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct WallTime {
    unix_ms: u64,
}

/// A [`WallTime`] broken into UTC calendar fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UtcDateTime {
    /// Calendar year (proleptic Gregorian).
    pub year: u32,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of month, 1..=31.
    pub day: u8,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=59.
    pub second: u8,
    /// Millisecond, 0..=999.
    pub millis: u16,
}

impl WallTime {
    /// The wall-clock time `unix_ms` milliseconds after 1970-01-01T00:00:00Z.
    pub const fn from_unix_millis(unix_ms: u64) -> WallTime {
        WallTime { unix_ms }
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_unix_millis(self) -> u64 {
        self.unix_ms
    }

    /// The UTC calendar fields of this reading.
    pub const fn to_utc(self) -> UtcDateTime {
        let days = self.unix_ms / 86_400_000;
        let ms_of_day = self.unix_ms % 86_400_000;
        let (year, month, day) = civil_from_days(days);
        UtcDateTime {
            year,
            month,
            day,
            hour: (ms_of_day / 3_600_000) as u8,
            minute: (ms_of_day / 60_000 % 60) as u8,
            second: (ms_of_day / 1_000 % 60) as u8,
            millis: (ms_of_day % 1_000) as u16,
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`,
/// restricted to non-negative day counts.
const fn civil_from_days(days: u64) -> (u32, u8, u8) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year as u32, month, day)
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.to_utc();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;
    use heapless::String;

    fn render(t: WallTime) -> String<32> {
        let mut s = String::new();
        write!(s, "{t}").unwrap();
        s
    }

    #[test]
    fn wall_time_renders_the_seed_timestamp() {
        // 2026-02-20T07:45:38.307Z, the seed journal's example `ts`.
        let t = WallTime::from_unix_millis(1_771_573_538_307);
        assert_eq!(render(t).as_str(), "2026-02-20T07:45:38.307Z");
    }

    #[test]
    fn wall_time_epoch_and_leap_day() {
        assert_eq!(
            render(WallTime::from_unix_millis(0)).as_str(),
            "1970-01-01T00:00:00.000Z"
        );
        // 2024-02-29T23:59:59.999Z
        let t = WallTime::from_unix_millis(1_709_251_199_999);
        assert_eq!(render(t).as_str(), "2024-02-29T23:59:59.999Z");
        // 2000-03-01T00:00:00.000Z (a 400-year leap century)
        let t = WallTime::from_unix_millis(951_868_800_000);
        assert_eq!(render(t).as_str(), "2000-03-01T00:00:00.000Z");
    }

    #[test]
    fn instant_arithmetic_saturates() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::MAX.checked_add(Duration::from_micros(1)), None);
        assert_eq!(Instant::ZERO.checked_sub(Duration::from_micros(1)), None);
        let a = Instant::from_secs(5);
        let b = Instant::from_secs(7);
        assert_eq!(b.saturating_duration_since(a), Duration::from_secs(2));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        assert_eq!(a.checked_duration_since(b), None);
    }

    #[test]
    fn duration_units_and_rounding() {
        assert_eq!(Duration::from_millis(1_500).as_secs(), 1);
        assert_eq!(Duration::from_micros(1_001).as_millis(), 1);
        assert_eq!(Duration::from_micros(1_001).as_millis_ceil(), 2);
        assert_eq!(Duration::from_secs(u64::MAX), Duration::MAX);
        assert_eq!(Duration::MAX + Duration::from_micros(1), Duration::MAX);
        assert_eq!(Duration::ZERO - Duration::from_micros(1), Duration::ZERO);
        assert_eq!(Duration::MAX.checked_mul(2), None);
        assert_eq!(
            Duration::from_secs(3).saturating_mul(2),
            Duration::from_secs(6)
        );
    }

    #[test]
    fn duration_display() {
        let mut s: String<32> = String::new();
        write!(
            s,
            "{} {}",
            Duration::from_millis(250),
            Duration::from_micros(1_500)
        )
        .unwrap();
        assert_eq!(s.as_str(), "250ms 1.500ms");
    }
}
