//! When a journal writer seals, rotates its open segment and deletes rotated segments: the
//! thresholds of `docs/JOURNAL.md` ("Seals", "Segments") as pure answers. The host keeps
//! the clock and the files; it asks these with the counts and ages it measured.

use crate::Duration;

/// When the writer seals: after `every_lines` unsealed lines, once the oldest unsealed line
/// has waited `interval`, and right after the first line of a journal that has no seal yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SealRule {
    /// Unsealed lines that call for a seal.
    pub every_lines: u64,
    /// How long an unsealed line may wait for its seal.
    pub interval: Duration,
}

impl SealRule {
    /// Whether to seal now, with `unsealed` lines after the last seal (which covers
    /// `sealed` lines), the oldest of them written `waited` ago (`None`: none is waiting).
    #[must_use]
    pub fn is_due(&self, unsealed: u64, sealed: u64, waited: Option<Duration>) -> bool {
        if unsealed == 0 {
            return false;
        }
        unsealed >= self.every_lines || sealed == 0 || waited.is_some_and(|w| w >= self.interval)
    }
}

/// When the open segment is rotated: once it holds `max_bytes`, or (if set) once it is
/// `max_age` old and not empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rotation {
    /// Bytes that call for a rotation.
    pub max_bytes: u64,
    /// Age that calls for a rotation of a non-empty segment.
    pub max_age: Option<Duration>,
}

impl Rotation {
    /// Whether an open segment of `bytes`, started `age` ago, is due.
    #[must_use]
    pub fn is_due(&self, bytes: u64, age: Duration) -> bool {
        bytes > 0 && (bytes >= self.max_bytes || self.max_age.is_some_and(|max| age >= max))
    }

    /// The age at which an open segment of `bytes` becomes due by age, for a writer that
    /// sleeps until then (`None`: it never does, or it is empty).
    #[must_use]
    pub fn due_at_age(&self, bytes: u64) -> Option<Duration> {
        self.max_age.filter(|_| bytes > 0)
    }
}

/// Which rotated segments are deleted: those beyond the newest `keep`, and those last written
/// `max_age` ago or longer; always the oldest first, and never the newest rotated segment
/// (the open segment continues it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Retention {
    /// Rotated segments kept (`None`: no bound by count).
    pub keep: Option<u64>,
    /// Rotated segments older than this are deleted (`None`: no bound by age).
    pub max_age: Option<Duration>,
}

impl Retention {
    /// Whether retention deletes anything ever.
    #[must_use]
    pub fn is_set(&self) -> bool {
        self.keep.is_some() || self.max_age.is_some()
    }

    /// How many of `count` rotated segments, oldest first, to delete. `age_of(i)` is how
    /// long ago segment `i` (0: the oldest) was last written, if known; it is asked only
    /// when the answer depends on it.
    #[must_use]
    pub fn doomed(&self, count: usize, mut age_of: impl FnMut(usize) -> Option<Duration>) -> usize {
        let older = count.saturating_sub(1);
        let excess = self.keep.map_or(0, |keep| {
            let keep = usize::try_from(keep).unwrap_or(usize::MAX);
            count.saturating_sub(keep)
        });
        (0..older)
            .take_while(|&i| {
                i < excess
                    || self
                        .max_age
                        .is_some_and(|max| age_of(i).is_some_and(|age| age >= max))
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn seals_by_lines_by_wait_and_the_first_line() {
        let rule = SealRule {
            every_lines: 10,
            interval: S(1),
        };
        assert!(!rule.is_due(0, 0, None));
        assert!(rule.is_due(1, 0, None), "the first line of a journal");
        assert!(!rule.is_due(9, 5, Some(S(0))));
        assert!(rule.is_due(10, 5, None));
        assert!(!rule.is_due(3, 5, Some(Duration::from_millis(999))));
        assert!(rule.is_due(3, 5, Some(S(1))));
    }

    #[test]
    fn rotates_by_size_or_age_never_empty() {
        let r = Rotation {
            max_bytes: 100,
            max_age: Some(S(60)),
        };
        assert!(!r.is_due(0, S(1000)));
        assert!(!r.is_due(99, S(59)));
        assert!(r.is_due(100, S(0)));
        assert!(r.is_due(1, S(60)));
        assert_eq!(r.due_at_age(0), None);
        assert_eq!(r.due_at_age(1), Some(S(60)));
        let by_size = Rotation { max_age: None, ..r };
        assert!(!by_size.is_due(1, Duration::MAX));
        assert_eq!(by_size.due_at_age(1), None);
    }

    #[test]
    fn retention_deletes_a_prefix_and_never_the_newest() {
        let none = |_| None;
        let keep2 = Retention {
            keep: Some(2),
            max_age: None,
        };
        assert_eq!(keep2.doomed(0, none), 0);
        assert_eq!(keep2.doomed(2, none), 0);
        assert_eq!(keep2.doomed(5, none), 3);
        let keep0 = Retention {
            keep: Some(0),
            ..keep2
        };
        assert_eq!(keep0.doomed(3, none), 2, "the newest stays");
        // By age: the oldest first, stopping at the first one young enough.
        let ages = [S(100), S(5), S(100), S(100)];
        let by_age = Retention {
            keep: None,
            max_age: Some(S(50)),
        };
        assert_eq!(by_age.doomed(4, |i| Some(ages[i])), 1);
        assert_eq!(by_age.doomed(4, |_| Some(S(100))), 3, "the newest stays");
        assert_eq!(
            by_age.doomed(4, none),
            0,
            "an unknown age keeps the segment"
        );
        assert!(
            !Retention {
                keep: None,
                max_age: None
            }
            .is_set()
        );
    }
}
