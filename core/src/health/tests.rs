use super::*;
use crate::time::Duration;

const T0: Instant = Instant::from_secs(100);
const SILENCE: Duration = Duration::from_secs(60);
const US: Duration = Duration::from_micros(1);

fn set<const N: usize>(names: &[&str]) -> Health<N> {
    let mut h = Health::new(HealthConfig::default()).unwrap();
    for name in names {
        h.register(T0, name).unwrap();
    }
    h
}

fn status<const N: usize>(h: &Health<N>, now: Instant, name: &str) -> CheckStatus {
    h.check(now, name).unwrap().status
}

#[test]
fn defaults_are_30s_and_3_failures() {
    let c = HealthConfig::default();
    assert_eq!(c.interval, Duration::from_secs(30));
    assert_eq!(c.failure_threshold, 3);
    assert_eq!(c.silence_limit(), SILENCE);
}

#[test]
fn no_checks_is_healthy() {
    let h = set::<4>(&[]);
    let summary = h.aggregate(T0);
    assert_eq!(summary.status, AggregateStatus::Healthy);
    assert_eq!(
        (summary.healthy, summary.unhealthy, summary.unknown),
        (0, 0, 0)
    );
    assert_eq!(h.poll_timeout(T0), None);
    assert!(h.is_empty());
}

#[test]
fn unhealthy_after_three_consecutive_failures_and_a_pass_resets() {
    let mut h = set::<4>(&["db"]);
    assert_eq!(h.report(T0, "db", false), Ok(CheckStatus::Healthy));
    assert_eq!(h.report(T0, "db", false), Ok(CheckStatus::Healthy));
    assert_eq!(h.report(T0, "db", false), Ok(CheckStatus::Unhealthy));
    assert_eq!(h.check(T0, "db").unwrap().consecutive_failures, 3);
    assert_eq!(h.report(T0, "db", false), Ok(CheckStatus::Unhealthy));
    assert_eq!(h.report(T0, "db", true), Ok(CheckStatus::Healthy));
    assert_eq!(h.check(T0, "db").unwrap().consecutive_failures, 0);
    // Interrupted failures never reach the threshold.
    for pass in [false, false, true, false, false] {
        assert_eq!(h.report(T0, "db", pass), Ok(CheckStatus::Healthy));
    }
}

#[test]
fn silent_for_two_intervals_is_unknown() {
    let mut h = set::<4>(&["db"]);
    let at = T0 + Duration::from_secs(5);
    let _ = h.report(at, "db", true).unwrap();
    assert_eq!(status(&h, at + SILENCE - US, "db"), CheckStatus::Healthy);
    assert_eq!(status(&h, at + SILENCE, "db"), CheckStatus::Unknown);
    // An unhealthy check that falls silent is unknown too.
    let mut h = set::<4>(&["db"]);
    for _ in 0..3 {
        let _ = h.report(T0, "db", false).unwrap();
    }
    assert_eq!(status(&h, T0 + SILENCE - US, "db"), CheckStatus::Unhealthy);
    assert_eq!(status(&h, T0 + SILENCE, "db"), CheckStatus::Unknown);
}

#[test]
fn a_new_check_has_two_intervals_of_grace() {
    let h = set::<4>(&["db"]);
    let info = h.check(T0 + SILENCE - US, "db").unwrap();
    assert_eq!(info.status, CheckStatus::Healthy);
    assert_eq!(info.last_report, None);
    assert_eq!(info.unknown_at, T0 + SILENCE);
    assert_eq!(status(&h, T0 + SILENCE, "db"), CheckStatus::Unknown);
}

#[test]
fn a_report_ends_the_silence_and_failures_carry_over_it() {
    let mut h = set::<4>(&["db"]);
    let _ = h.report(T0, "db", false).unwrap();
    let _ = h.report(T0, "db", false).unwrap();
    let late = T0 + SILENCE + SILENCE;
    assert_eq!(status(&h, late, "db"), CheckStatus::Unknown);
    assert_eq!(h.report(late, "db", false), Ok(CheckStatus::Unhealthy));
    assert_eq!(h.report(late, "db", true), Ok(CheckStatus::Healthy));
}

#[test]
fn aggregate_all_some_none_healthy() {
    let mut h = set::<4>(&["a", "b", "c"]);
    assert_eq!(h.aggregate(T0).status, AggregateStatus::Healthy);
    for _ in 0..3 {
        let _ = h.report(T0, "a", false).unwrap();
    }
    let summary = h.aggregate(T0);
    assert_eq!(summary.status, AggregateStatus::Degraded);
    assert_eq!(
        (summary.healthy, summary.unhealthy, summary.unknown),
        (2, 1, 0)
    );
    // b keeps reporting; c falls silent: unknown counts as not healthy.
    let later = T0 + Duration::from_secs(50);
    let _ = h.report(later, "b", true).unwrap();
    let _ = h.report(later, "a", false).unwrap();
    let summary = h.aggregate(T0 + SILENCE);
    assert_eq!(summary.status, AggregateStatus::Degraded);
    assert_eq!(
        (summary.healthy, summary.unhealthy, summary.unknown),
        (1, 1, 1)
    );
    let summary = h.aggregate(later + SILENCE);
    assert_eq!(summary.status, AggregateStatus::Unhealthy);
    assert_eq!(
        (summary.healthy, summary.unhealthy, summary.unknown),
        (0, 0, 3)
    );
}

#[test]
fn one_unhealthy_check_alone_is_unhealthy() {
    let mut h = set::<1>(&["a"]);
    for _ in 0..3 {
        let _ = h.report(T0, "a", false).unwrap();
    }
    assert_eq!(h.aggregate(T0).status, AggregateStatus::Unhealthy);
}

#[test]
fn poll_timeout_is_the_next_check_to_fall_silent() {
    let mut h = set::<4>(&["a", "b"]);
    let t1 = T0 + Duration::from_secs(10);
    let _ = h.report(t1, "a", true).unwrap();
    assert_eq!(h.poll_timeout(T0), Some(T0 + SILENCE));
    // Past b's deadline, only a's remains; past both, none.
    assert_eq!(h.poll_timeout(T0 + SILENCE), Some(t1 + SILENCE));
    assert_eq!(h.poll_timeout(t1 + SILENCE), None);
    // A report pushes the deadline back.
    let _ = h.report(t1 + SILENCE, "b", true).unwrap();
    assert_eq!(h.poll_timeout(t1 + SILENCE), Some(t1 + SILENCE + SILENCE));
}

#[test]
fn register_limits_and_errors() {
    let mut h = set::<2>(&["a"]);
    assert_eq!(h.register(T0, "a"), Err(RegisterError::AlreadyRegistered));
    let long = core::str::from_utf8(&[b'x'; NAME_MAX_BYTES + 1]).unwrap();
    assert_eq!(h.register(T0, long), Err(RegisterError::NameTooLong));
    let exact = &long[..NAME_MAX_BYTES];
    assert_eq!(h.register(T0, exact), Ok(()));
    assert_eq!(h.len(), h.capacity());
    assert_eq!(h.register(T0, "c"), Err(RegisterError::Full));
    // Names are kept exactly.
    let names: heapless::Vec<&str, 2> = h.iter(T0).map(|(n, _)| n).collect();
    assert_eq!(names, ["a", exact]);
    drop(names);
    assert_eq!(h.unregister("a"), Ok(()));
    assert_eq!(h.register(T0, "c"), Ok(()));
}

#[test]
fn unknown_names_are_errors() {
    let mut h = set::<2>(&["a"]);
    assert_eq!(h.report(T0, "b", true), Err(UnknownCheck));
    assert_eq!(h.check(T0, "b"), Err(UnknownCheck));
    assert_eq!(h.unregister("b"), Err(UnknownCheck));
    assert_eq!(h.report(T0, "A", true), Err(UnknownCheck));
}

#[test]
fn threshold_one_and_config_errors() {
    let config = HealthConfig {
        failure_threshold: 1,
        ..HealthConfig::default()
    };
    let mut h = Health::<2>::new(config).unwrap();
    h.register(T0, "a").unwrap();
    assert_eq!(h.report(T0, "a", false), Ok(CheckStatus::Unhealthy));
    assert_eq!(h.config(), &config);
    let zero = HealthConfig {
        failure_threshold: 0,
        ..config
    };
    let err = Health::<2>::new(zero).unwrap_err();
    assert_eq!(err, HealthConfigError::FailureThreshold);
    let zero = HealthConfig {
        interval: Duration::ZERO,
        ..config
    };
    assert_eq!(zero.validate(), Err(HealthConfigError::Interval));
}

fn text(e: impl core::fmt::Display) -> heapless::String<96> {
    let mut s = heapless::String::new();
    core::fmt::write(&mut s, format_args!("{e}")).unwrap();
    s
}

#[test]
fn errors_display_their_field_or_cause() {
    let interval = text(HealthConfigError::Interval);
    assert!(interval.starts_with("interval"));
    let threshold = text(HealthConfigError::FailureThreshold);
    assert!(threshold.starts_with("failure_threshold"));
    assert!(text(RegisterError::Full).contains("full"));
    assert!(text(RegisterError::NameTooLong).contains("64 bytes"));
    let dup = text(RegisterError::AlreadyRegistered);
    assert!(dup.contains("already"));
    assert!(text(UnknownCheck).contains("no health check"));
}

#[test]
fn only_a_healthy_check_is_ready() {
    let mut h = set::<4>(&["db", "queue"]);
    assert_eq!(h.readiness(T0, "db"), Readiness::Ready, "within the grace");
    assert_eq!(h.readiness(T0, "cache"), Readiness::Unreported);
    for _ in 0..3 {
        h.report(T0, "db", false).unwrap();
    }
    assert_eq!(h.readiness(T0, "db"), Readiness::Unhealthy);
    assert_eq!(h.readiness(T0 + SILENCE, "queue"), Readiness::Unknown);
    assert_eq!(
        [
            Readiness::Ready,
            Readiness::Unhealthy,
            Readiness::Unknown,
            Readiness::Unreported
        ]
        .map(Readiness::as_str),
        ["ready", "unhealthy", "unknown", "unreported"]
    );
}
