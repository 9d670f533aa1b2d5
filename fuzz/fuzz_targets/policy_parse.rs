//! Arbitrary text through the rate-limit policy reader (`RatePolicy::parse`), in a small table
//! (8 custom operations, 3 tiers) so the bounds are reached. Invariants: no panic; an accepted
//! policy answers every lookup by name with the place it lists the name at, holds valid names
//! and limits within the bounds, and the document written back from its lookups (as
//! `GET_POLICY` writes it) reads back as the same policy; a refused document names a reason,
//! and leaves a table it was read into at the built-in defaults.
//!
//! An accepted document's other sections (`Sections::parse`) are then written out as the
//! canonical document (`write_document`, what the daemon persists and hashes): that document
//! reads back as the same rate table and the same sections, and writing it again gives the
//! same bytes.
#![no_main]

use heidi_core::limit::LimitPolicy;
use heidi_core::policy::{Name, RatePolicy, Sections, write_document};
use libfuzzer_sys::fuzz_target;

type Small = RatePolicy<8, 3>;

fuzz_target!(|text: &str| {
    let mut spare = Small::parse("{}").expect("an empty document is the defaults");
    match spare.parse_into(text) {
        Ok(()) => {
            check(&spare);
            canonical(&spare, text);
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert_eq!(spare, Small::default());
        }
    }
});

fn check(p: &Small) {
    assert!(p.operations_len() <= 6 + 8);
    assert_eq!(p.operations().count(), p.operations_len());
    for (op, name) in p.operations() {
        assert!(Name::new(name).is_some(), "{name:?}");
        assert_eq!(p.operation(name), op, "{name:?}");
        assert_eq!(p.operation_name(op), name);
        assert!(p.limit(op, None).capacity_tokens() >= 1);
    }
    assert!(p.tiers().count() <= 3);
    for (tier, name) in p.tiers() {
        assert!(Name::new(name).is_some(), "{name:?}");
        assert_eq!(p.tier(name), Some(tier));
        assert_eq!(p.tier_name(tier), name);
    }
    let written = written(p);
    assert_eq!(Small::parse(&written).as_ref(), Ok(p), "{written}");
}

/// The canonical document of an accepted policy is a fixed point.
fn canonical(p: &Small, text: &str) {
    let sections = match Sections::parse(text) {
        Ok(s) => s,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let mut first = String::new();
    write_document(p, &sections, &mut first).expect("a String takes any document");
    let rate = Small::parse(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(&rate, p, "{first}");
    let again = Sections::parse(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(again, sections, "{first}");
    let mut second = String::new();
    write_document(&rate, &again, &mut second).expect("a String takes any document");
    assert_eq!(first, second);
}

/// The document `GET_POLICY` writes: every operation's limit, each tier's own entries, the
/// default tier.
fn written(p: &Small) -> String {
    let entry = |name: &str, l: &LimitPolicy| {
        format!(
            r#""{name}":{{"capacity_tokens":{},"window_ms":{}}}"#,
            l.capacity_tokens(),
            l.window().as_millis()
        )
    };
    let limits: Vec<String> = p
        .operations()
        .map(|(op, name)| entry(name, p.limit(op, None)))
        .collect();
    let tiers: Vec<String> = p
        .tiers()
        .map(|(t, name)| {
            let own: Vec<String> = p
                .tier_limits(t)
                .map(|(op, l)| entry(p.operation_name(op), l))
                .collect();
            format!(r#""{name}":{{"limits":{{{}}}}}"#, own.join(","))
        })
        .collect();
    let mut doc = format!(
        r#"{{"limits":{{{}}},"tiers":{{{}}}"#,
        limits.join(","),
        tiers.join(",")
    );
    if let Some(t) = p.default_tier() {
        doc.push_str(&format!(r#","default_tier":"{}""#, p.tier_name(t)));
    }
    doc.push('}');
    doc
}
