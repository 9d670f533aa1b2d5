//! LEASE_ACQUIRE, LEASE_REFRESH and LEASE_RELEASE.

use heidi_core::proto::Method::{
    LeaseAcquire as Acquire, LeaseRefresh as Refresh, LeaseRelease as Release,
};

use super::{SEEDS, SMALL, at, err, kernel, ok};
use crate::kernel::{Kernel, KernelCapacity, Policy};

fn with_id(key: &str, id: &str) -> String {
    format!(r#"{{"key":"{key}","lease_id":"{id}"}}"#)
}

#[test]
fn five_per_key_then_unavailable_with_retry_after() {
    let mut k = kernel();
    let mut ids = Vec::new();
    for i in 0..5 {
        let v = ok(&mut k, at(i), Acquire, r#"{"key":"user:1"}"#);
        assert_eq!(v["expires_in_ms"], 180_000);
        assert_eq!(v["active"], i + 1);
        assert_eq!(v["limit"], 5);
        let id = v["lease_id"].as_str().unwrap().to_owned();
        assert_eq!(
            id.parse::<u64>().unwrap().to_string(),
            id,
            "exact decimal u64"
        );
        ids.push(id);
    }
    let v = err(
        &mut k,
        at(10),
        Acquire,
        r#"{"key":"user:1"}"#,
        "LEASE_UNAVAILABLE",
    );
    assert_eq!(v["retry_after_ms"], 170_000); // the first lease expires at 180 s
    ok(&mut k, at(10), Acquire, r#"{"key":"user:2"}"#);
    // Release one: room again.
    let v = ok(&mut k, at(10), Release, &with_id("user:1", &ids[0]));
    assert_eq!(
        (v["released"].clone(), v["active"].clone()),
        (true.into(), 4.into())
    );
    ok(&mut k, at(10), Acquire, r#"{"key":"user:1"}"#);
}

#[test]
fn refresh_extends_and_released_or_expired_stays_dead() {
    let mut k = kernel();
    let id = ok(&mut k, at(0), Acquire, r#"{"key":"k"}"#)["lease_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = ok(&mut k, at(100), Refresh, &with_id("k", &id));
    assert_eq!(v["expires_in_ms"], 180_000);
    assert_eq!(v["lease_id"], id.as_str());
    // Still live at 200 s thanks to the refresh.
    ok(&mut k, at(200), Refresh, &with_id("k", &id));
    ok(&mut k, at(201), Release, &with_id("k", &id));
    err(
        &mut k,
        at(201),
        Refresh,
        &with_id("k", &id),
        "LEASE_NOT_FOUND",
    );
    err(
        &mut k,
        at(201),
        Release,
        &with_id("k", &id),
        "LEASE_NOT_FOUND",
    );
    let id = ok(&mut k, at(300), Acquire, r#"{"key":"k"}"#)["lease_id"]
        .as_str()
        .unwrap()
        .to_owned();
    err(
        &mut k,
        at(480),
        Refresh,
        &with_id("k", &id),
        "LEASE_NOT_FOUND",
    );
    // Wrong key, never-issued id.
    let id2 = ok(&mut k, at(500), Acquire, r#"{"key":"k"}"#)["lease_id"]
        .as_str()
        .unwrap()
        .to_owned();
    err(
        &mut k,
        at(500),
        Release,
        &with_id("other", &id2),
        "LEASE_NOT_FOUND",
    );
    err(
        &mut k,
        at(500),
        Release,
        &with_id("k", "12345"),
        "LEASE_NOT_FOUND",
    );
}

#[test]
fn bad_params() {
    let mut k = kernel();
    for (method, params) in [
        (Acquire, r#"{}"#),
        (Acquire, r#"{"key":"k","lease_id":"1"}"#),
        (Refresh, r#"{"key":"k"}"#),
        (Refresh, r#"{"key":"k","lease_id":"abc"}"#),
        (Release, r#"{"key":"k","lease_id":1.5}"#),
        (Release, r#"{"lease_id":"1"}"#),
    ] {
        let v = err(&mut k, at(1), method, params, "BAD_REQUEST");
        assert!(v["message"].as_str().unwrap().starts_with("params."), "{v}");
    }
}

#[test]
fn a_full_table_is_overloaded() {
    let small = KernelCapacity {
        lease_slots: 8,
        ..SMALL
    };
    let mut k = Kernel::with_capacity(SEEDS, Policy::default(), small);
    for i in 0..8 {
        ok(&mut k, at(1), Acquire, &format!(r#"{{"key":"k{i}"}}"#));
    }
    let v = err(&mut k, at(1), Acquire, r#"{"key":"k8"}"#, "OVERLOADED");
    assert_eq!(v["retry_after_ms"], 180_000);
    // After the leases expire their slots are reclaimed.
    ok(&mut k, at(181), Acquire, r#"{"key":"k8"}"#);
}
