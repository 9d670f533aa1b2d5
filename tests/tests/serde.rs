//! The `serde` feature of heidi-core: deserialized values obey the same rules as constructed
//! ones, so a configuration file or a wire message cannot smuggle in a state the constructors
//! refuse.

use heidi_core::key::KeyHash;
use heidi_core::limit::LimitPolicy;
use heidi_core::{Duration, Instant};

#[test]
fn a_deserialized_key_hash_is_never_zero() {
    let zero: KeyHash = serde_json::from_str("0").unwrap();
    assert_eq!(
        zero.get(),
        1,
        "zero marks an empty table slot and must never be a key"
    );
    let k: KeyHash = serde_json::from_str("42").unwrap();
    assert_eq!(k.get(), 42);
    assert_eq!(serde_json::to_string(&k).unwrap(), "42");
}

#[test]
fn a_deserialized_limit_policy_is_validated() {
    let p = LimitPolicy::new(60, Duration::from_secs(60)).unwrap();
    let json = serde_json::to_string(&p).unwrap();
    let back: LimitPolicy = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    let zero = json.replace("60,", "0,");
    assert_ne!(
        zero, json,
        "the test must actually change the capacity: {json}"
    );
    let err = serde_json::from_str::<LimitPolicy>(&zero).unwrap_err();
    assert!(err.to_string().contains("capacity_tokens"), "{err}");
}

#[test]
fn instants_round_trip() {
    let t = Instant::from_micros(1_234_567);
    let back: Instant = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(back, t);
}
