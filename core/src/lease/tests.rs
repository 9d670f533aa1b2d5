use super::*;
use crate::key::{KeyHash, KeyHasher};
use crate::table::Slot;

type Small = Leases<[Slot<LeaseSet<5>>; 8]>;

fn s(v: u64) -> Instant {
    Instant::from_secs(v)
}

fn key(name: &str) -> KeyHash {
    KeyHasher::new([4; 16]).hash(name.as_bytes())
}

fn leases(config: LeaseConfig) -> Small {
    Leases::new([Slot::empty(); 8], config, [99; 16]).unwrap()
}

#[test]
fn defaults_follow_the_design() {
    let c = LeaseConfig::default();
    assert_eq!(c, LeaseConfig::DEFAULT);
    assert_eq!(c.limit_per_key, 5);
    assert_eq!(c.ttl, Duration::from_secs(180));
}

#[test]
fn five_acquires_then_at_limit_until_the_earliest_expiry() {
    let mut l = leases(LeaseConfig::default());
    let k = key("user");
    let mut granted = [None; 5];
    for (i, g) in granted.iter_mut().enumerate() {
        let lease = l.acquire(s(i as u64), k).unwrap();
        assert_eq!(lease.expires_at, s(i as u64 + 180));
        *g = Some(lease);
    }
    assert_eq!(l.active(s(10), k), 5);
    let err = l.acquire(s(10), k).unwrap_err();
    assert_eq!(err, AcquireError::AtLimit { retry_at: s(180) });
    assert_eq!(err.retry_at(), s(180));
    // Expiry happens on time, with no sweep: one microsecond early is still refused.
    let early = s(180) - Duration::from_micros(1);
    assert!(l.acquire(early, k).is_err());
    assert_eq!(l.active(s(180), k), 4);
    let sixth = l.acquire(s(180), k).unwrap();
    assert!(granted.iter().all(|g| g.unwrap().id != sixth.id));
    assert_eq!(l.active(s(180), k), 5);
}

#[test]
fn release_frees_a_place_at_once() {
    let mut l = leases(LeaseConfig::default());
    let k = key("user");
    let first = l.acquire(s(0), k).unwrap();
    for _ in 0..4 {
        let _ = l.acquire(s(0), k).unwrap();
    }
    l.release(s(1), k, first.id).unwrap();
    assert_eq!(l.active(s(1), k), 4);
    let _ = l.acquire(s(1), k).unwrap();
}

#[test]
fn released_and_expired_leases_stay_dead() {
    let mut l = leases(LeaseConfig::default());
    let k = key("user");
    let a = l.acquire(s(0), k).unwrap();
    let b = l.acquire(s(0), k).unwrap();
    l.release(s(1), k, a.id).unwrap();
    assert_eq!(l.refresh(s(2), k, a.id), Err(RefreshError::Unknown));
    assert_eq!(l.release(s(2), k, a.id), Err(ReleaseError::Unknown));
    assert_eq!(l.refresh(s(180), k, b.id), Err(RefreshError::Unknown));
    assert_eq!(l.release(s(180), k, b.id), Err(ReleaseError::Unknown));
    // The freed slots are reused by new leases; the old ids still do not match.
    let c = l.acquire(s(181), k).unwrap();
    let d = l.acquire(s(181), k).unwrap();
    for old in [a.id, b.id] {
        assert_eq!(l.refresh(s(181), k, old), Err(RefreshError::Unknown));
    }
    assert_eq!(l.active(s(181), k), 2);
    assert_ne!(c.id, d.id);
}

#[test]
fn refresh_extends_from_now() {
    let mut l = leases(LeaseConfig::default());
    let k = key("user");
    let a = l.acquire(s(0), k).unwrap();
    assert_eq!(l.refresh(s(100), k, a.id), Ok(s(280)));
    assert_eq!(l.active(s(279), k), 1);
    assert_eq!(l.next_expiry(s(279), k), Some(s(280)));
    assert_eq!(l.active(s(280), k), 0);
    assert_eq!(l.next_expiry(s(280), k), None);
}

#[test]
fn ids_only_match_their_own_key() {
    let mut l = leases(LeaseConfig::default());
    let (k1, k2) = (key("one"), key("two"));
    let a = l.acquire(s(0), k1).unwrap();
    let _ = l.acquire(s(0), k2).unwrap();
    assert_eq!(l.refresh(s(1), k2, a.id), Err(RefreshError::Unknown));
    assert_eq!(l.release(s(1), k2, a.id), Err(ReleaseError::Unknown));
    assert_eq!(
        l.release(s(1), key("nobody"), a.id),
        Err(ReleaseError::Unknown)
    );
    assert_eq!(
        l.refresh(s(1), k1, LeaseId::from_raw(0)),
        Err(RefreshError::Unknown)
    );
    assert_eq!(l.active(s(1), k1), 1);
}

#[test]
fn table_full_says_when_a_key_frees_and_live_keys_are_never_evicted() {
    let mut l = leases(LeaseConfig::default());
    for (i, name) in (1..).zip(["a", "b", "c", "d", "e", "f", "g", "h"]) {
        let k = key(name);
        let _ = l.acquire(s(0), k).unwrap();
        // A second, later lease keeps the key alive longer.
        let _ = l.acquire(s(i), k).unwrap();
    }
    assert_eq!(l.keys(), 8);
    let newcomer = key("new");
    let err = l.acquire(s(20), newcomer).unwrap_err();
    assert_eq!(err, AcquireError::TableFull { retry_at: s(181) });
    assert_eq!(l.active(s(20), key("a")), 2);
    assert_eq!(l.active(s(180), key("a")), 1);
    let _ = l.acquire(s(181), newcomer).unwrap();
    assert_eq!(l.active(s(181), key("a")), 0);
    assert_eq!(l.active(s(181), key("b")), 1);
    assert_eq!(l.keys(), 8);
}

#[test]
fn releasing_the_last_lease_frees_the_key_and_sweep_clears_expired_keys() {
    let mut l = leases(LeaseConfig::default());
    let (k1, k2) = (key("one"), key("two"));
    let a = l.acquire(s(0), k1).unwrap();
    let _ = l.acquire(s(0), k2).unwrap();
    assert_eq!(l.keys(), 2);
    l.release(s(1), k1, a.id).unwrap();
    assert_eq!(l.keys(), 1);
    assert_eq!(l.sweep(s(179), 0, 8), 0);
    assert_eq!(l.keys(), 1);
    let _ = l.sweep(s(180), 0, 8);
    assert_eq!(l.keys(), 0);
    assert_eq!(l.capacity(), 8);
}

#[test]
fn a_lowered_limit_applies_to_existing_keys() {
    let mut l = leases(LeaseConfig::default());
    let k = key("user");
    for t in 0..4 {
        let _ = l.acquire(s(t), k).unwrap();
    }
    let lower = LeaseConfig {
        limit_per_key: 2,
        ..LeaseConfig::default()
    };
    l.set_config(lower).unwrap();
    assert_eq!(l.config(), lower);
    // 4 live, limit 2: three must expire before one fits (expiries 180, 181, 182, 183).
    let err = l.acquire(s(10), k).unwrap_err();
    assert_eq!(err, AcquireError::AtLimit { retry_at: s(182) });
    let _ = l.acquire(s(182), k).unwrap();
}

#[test]
fn invalid_configs_are_refused() {
    let zero = LeaseConfig {
        limit_per_key: 0,
        ..LeaseConfig::default()
    };
    let above = LeaseConfig {
        limit_per_key: 6,
        ..LeaseConfig::default()
    };
    let no_ttl = LeaseConfig {
        ttl: Duration::ZERO,
        ..LeaseConfig::default()
    };
    let new = |c| Small::new([Slot::empty(); 8], c, [0; 16]).map(|_| ());
    assert_eq!(new(zero), Err(LeaseConfigError::LimitZero));
    assert_eq!(
        new(above),
        Err(LeaseConfigError::LimitAboveSlots { limit: 6, slots: 5 })
    );
    assert_eq!(new(no_ttl), Err(LeaseConfigError::TtlZero));
    let mut l = leases(LeaseConfig::default());
    assert_eq!(l.set_config(zero), Err(LeaseConfigError::LimitZero));
    assert_eq!(l.config(), LeaseConfig::default());
}

#[test]
fn custom_slot_count_and_errors_display() {
    extern crate std;
    use std::string::ToString;
    let config = LeaseConfig {
        limit_per_key: 2,
        ttl: Duration::from_millis(10),
    };
    let mut l: Leases<_, 2> = Leases::new([Slot::empty(); 16], config, [1; 16]).unwrap();
    let k = key("x");
    let _ = l.acquire(s(0), k).unwrap();
    let _ = l.acquire(s(0), k).unwrap();
    let err = l.acquire(s(0), k).unwrap_err();
    assert!(err.to_string().contains("limit"));
    let full = AcquireError::TableFull { retry_at: s(1) };
    assert!(full.to_string().contains("full"));
    assert!(RefreshError::Unknown.to_string().contains("released"));
    assert!(ReleaseError::Unknown.to_string().contains("expired"));
    assert!(LeaseConfigError::TtlZero.to_string().contains("ttl"));
}

#[test]
fn nothing_is_granted_when_the_ttl_would_pass_the_end_of_the_clock() {
    let mut l = leases(LeaseConfig::default());
    let k = key("end");
    // At Instant::MAX a lease would be dead at birth and never count: 100 would be granted.
    for _ in 0..100 {
        let err = l.acquire(Instant::MAX, k).unwrap_err();
        assert_eq!(err, AcquireError::ExpiryOverflow);
        assert_eq!(err.retry_at(), Instant::MAX);
    }
    assert_eq!(l.keys(), 0, "a refused acquire takes no slot");
    // Near the end a saturated expiry would be a short lease: refused too.
    let near = Instant::MAX - Duration::from_secs(10);
    assert_eq!(l.acquire(near, k), Err(AcquireError::ExpiryOverflow));
    // The last instant whose TTL fits is granted the full TTL, and the limit holds.
    let last = Instant::MAX - DEFAULT_LEASE_TTL;
    let first = l.acquire(last, k).unwrap();
    assert_eq!(first.expires_at, Instant::MAX);
    for _ in 1..5 {
        let _ = l.acquire(last, k).unwrap();
    }
    let sixth = l.acquire(last, k);
    assert_eq!(
        sixth,
        Err(AcquireError::AtLimit {
            retry_at: Instant::MAX
        })
    );
    assert_eq!(l.active(Instant::MAX - Duration::from_micros(1), k), 5);
    // A shorter TTL makes the end of the clock usable again.
    let short = LeaseConfig {
        ttl: Duration::from_secs(1),
        ..LeaseConfig::default()
    };
    l.set_config(short).unwrap();
    let other = key("other");
    let lease = l
        .acquire(Instant::MAX - Duration::from_secs(1), other)
        .unwrap();
    assert_eq!(lease.expires_at, Instant::MAX);
}

#[test]
fn a_refresh_past_the_end_of_the_clock_is_refused_and_changes_nothing() {
    let mut l = leases(LeaseConfig::default());
    let k = key("end");
    let last = Instant::MAX - DEFAULT_LEASE_TTL - Duration::from_secs(5);
    let lease = l.acquire(last, k).unwrap();
    // Refreshing to MAX exactly still gives the full TTL.
    let fits = Instant::MAX - DEFAULT_LEASE_TTL;
    assert_eq!(l.refresh(fits, k, lease.id), Ok(Instant::MAX));
    let later = fits + Duration::from_secs(1);
    assert_eq!(
        l.refresh(later, k, lease.id),
        Err(RefreshError::ExpiryOverflow)
    );
    assert_eq!(l.next_expiry(later, k), Some(Instant::MAX));
    assert_eq!(
        l.refresh(Instant::MAX, k, lease.id),
        Err(RefreshError::ExpiryOverflow)
    );
    // The lease stopped counting at its expiry, MAX; release finds nothing there.
    assert_eq!(l.active(Instant::MAX, k), 0);
    assert_eq!(
        l.release(Instant::MAX, k, lease.id),
        Err(ReleaseError::Unknown)
    );
    let mut s: heapless::String<128> = heapless::String::new();
    core::fmt::write(&mut s, format_args!("{}", RefreshError::ExpiryOverflow)).unwrap();
    assert!(s.contains("end of the clock"));
}
