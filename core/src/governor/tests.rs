use super::*;
use crate::time::Duration;

const T0: Instant = Instant::from_secs(10);
const IDLE: Load = Load {
    running: 0,
    queued: 0,
    cpu_permille: 0,
    mem_permille: 0,
};
const COOLDOWN: Duration = Duration::from_millis(1_000);
const GAP: Duration = Duration::from_millis(100);

fn governor() -> Governor {
    Governor::new(GovernorConfig::default()).unwrap()
}

fn hold(retry_at: Instant, reason: HoldReason) -> Admission {
    Admission::Hold { retry_at, reason }
}

const QUEUE_FULL: Admission = Admission::Reject {
    reason: RejectReason::QueueFull,
};

#[test]
fn defaults_follow_the_design() {
    let c = GovernorConfig::default();
    assert_eq!((c.queue_max, c.running_max), (100, 10));
    assert_eq!((c.cpu_hold_permille, c.mem_hold_permille), (850, 900));
    assert_eq!((c.cooldown, c.start_gap), (COOLDOWN, GAP));
}

#[test]
fn idle_host_starts() {
    let mut g = governor();
    assert_eq!(g.admit(T0, IDLE), Admission::Start);
    assert_eq!(g.last_start(), Some(T0));
}

#[test]
fn queue_boundary_99_starts_100_rejects() {
    let g = governor();
    let load = |queued| Load { queued, ..IDLE };
    assert_eq!(g.decide(T0, load(99)), Admission::Start);
    assert_eq!(g.decide(T0, load(100)), QUEUE_FULL);
    assert_eq!(g.decide(T0, load(u32::MAX)), QUEUE_FULL);
}

#[test]
fn running_boundary_9_starts_10_holds() {
    let g = governor();
    let load = |running| Load { running, ..IDLE };
    assert_eq!(g.decide(T0, load(9)), Admission::Start);
    let held = hold(T0 + COOLDOWN, HoldReason::Running);
    assert_eq!(g.decide(T0, load(10)), held);
}

#[test]
fn cpu_boundary_84_9_percent_starts_85_holds() {
    let g = governor();
    let load = |cpu_permille| Load {
        cpu_permille,
        ..IDLE
    };
    assert_eq!(g.decide(T0, load(840)), Admission::Start);
    assert_eq!(g.decide(T0, load(849)), Admission::Start);
    let held = hold(T0 + COOLDOWN, HoldReason::Cpu);
    assert_eq!(g.decide(T0, load(850)), held);
    assert_eq!(g.decide(T0, load(2_400)), held);
}

#[test]
fn mem_boundary_89_9_percent_starts_90_holds() {
    let g = governor();
    let load = |mem_permille| Load {
        mem_permille,
        ..IDLE
    };
    assert_eq!(g.decide(T0, load(899)), Admission::Start);
    let held = hold(T0 + COOLDOWN, HoldReason::Mem);
    assert_eq!(g.decide(T0, load(900)), held);
}

#[test]
fn a_watermark_of_zero_is_off_and_never_holds() {
    let off = Governor::new(GovernorConfig {
        cpu_hold_permille: 0,
        mem_hold_permille: 0,
        ..GovernorConfig::DEFAULT
    })
    .unwrap();
    let saturated = Load {
        cpu_permille: 1_000,
        mem_permille: 1_000,
        ..IDLE
    };
    assert_eq!(off.decide(T0, saturated), Admission::Start);
    // The running limit still holds.
    let full = Load {
        running: 10,
        ..saturated
    };
    assert_eq!(
        off.decide(T0, full),
        hold(T0 + COOLDOWN, HoldReason::Running)
    );
    // Only the watermark set to 0 is off.
    let cpu_only = Governor::new(GovernorConfig {
        cpu_hold_permille: 0,
        ..GovernorConfig::DEFAULT
    })
    .unwrap();
    assert_eq!(
        cpu_only.decide(T0, saturated),
        hold(T0 + COOLDOWN, HoldReason::Mem)
    );
}

#[test]
fn start_gap_holds_until_last_start_plus_gap() {
    let mut g = governor();
    assert_eq!(g.admit(T0, IDLE), Admission::Start);
    assert_eq!(g.admit(T0, IDLE), hold(T0 + GAP, HoldReason::StartGap));
    let just_before = T0 + GAP - Duration::from_micros(1);
    assert_eq!(
        g.admit(just_before, IDLE),
        hold(T0 + GAP, HoldReason::StartGap)
    );
    // A hold does not move the last start.
    assert_eq!(g.last_start(), Some(T0));
    assert_eq!(g.admit(T0 + GAP, IDLE), Admission::Start);
    assert_eq!(g.last_start(), Some(T0 + GAP));
}

#[test]
fn precedence_queue_then_running_cpu_mem_then_gap() {
    let mut g = governor();
    g.record_start(T0);
    let all = Load {
        running: 10,
        queued: 100,
        cpu_permille: 1_000,
        mem_permille: 1_000,
    };
    assert_eq!(g.decide(T0, all), QUEUE_FULL);
    let all = Load { queued: 0, ..all };
    let at = T0 + COOLDOWN;
    assert_eq!(g.decide(T0, all), hold(at, HoldReason::Running));
    let all = Load { running: 0, ..all };
    assert_eq!(g.decide(T0, all), hold(at, HoldReason::Cpu));
    let all = Load {
        cpu_permille: 0,
        ..all
    };
    assert_eq!(g.decide(T0, all), hold(at, HoldReason::Mem));
    assert_eq!(g.decide(T0, IDLE), hold(T0 + GAP, HoldReason::StartGap));
}

#[test]
fn a_load_hold_never_retries_before_the_gap_ends() {
    let config = GovernorConfig {
        cooldown: Duration::from_millis(10),
        start_gap: Duration::from_millis(500),
        ..GovernorConfig::default()
    };
    let mut g = Governor::new(config).unwrap();
    g.record_start(T0);
    let busy = Load {
        running: 10,
        ..IDLE
    };
    let at = T0 + Duration::from_millis(500);
    assert_eq!(g.decide(T0, busy), hold(at, HoldReason::Running));
    // Once the gap is over, the cooldown alone counts.
    let later = T0 + Duration::from_secs(1);
    let at = later + Duration::from_millis(10);
    assert_eq!(g.decide(later, busy), hold(at, HoldReason::Running));
}

#[test]
fn decide_does_not_record_and_zero_gap_allows_back_to_back_starts() {
    let g = governor();
    assert_eq!(g.decide(T0, IDLE), Admission::Start);
    assert_eq!(g.last_start(), None);
    let config = GovernorConfig {
        start_gap: Duration::ZERO,
        ..GovernorConfig::default()
    };
    let mut g = Governor::new(config).unwrap();
    assert_eq!(g.admit(T0, IDLE), Admission::Start);
    assert_eq!(g.admit(T0, IDLE), Admission::Start);
    assert_eq!(g.config(), &config);
}

#[test]
fn config_validation_names_the_field() {
    let d = GovernorConfig::default();
    let cases = [
        (
            GovernorConfig { queue_max: 0, ..d },
            GovernorConfigError::QueueMax,
            "queue_max",
        ),
        (
            GovernorConfig {
                running_max: 0,
                ..d
            },
            GovernorConfigError::RunningMax,
            "running_max",
        ),
        (
            GovernorConfig {
                cpu_hold_permille: 1_001,
                ..d
            },
            GovernorConfigError::CpuHoldPermille,
            "cpu_hold_permille",
        ),
        (
            GovernorConfig {
                mem_hold_permille: 1_001,
                ..d
            },
            GovernorConfigError::MemHoldPermille,
            "mem_hold_permille",
        ),
        (
            GovernorConfig {
                cooldown: Duration::ZERO,
                ..d
            },
            GovernorConfigError::Cooldown,
            "cooldown",
        ),
    ];
    for (config, error, field) in cases {
        assert_eq!(Governor::new(config), Err(error));
        let mut s: heapless::String<64> = heapless::String::new();
        core::fmt::write(&mut s, format_args!("{error}")).unwrap();
        assert!(s.starts_with(field), "{s}");
    }
    let edge = GovernorConfig {
        cpu_hold_permille: 1_000,
        mem_hold_permille: 1,
        ..d
    };
    assert!(edge.validate().is_ok());
}
