//! The policy document: every bound reached, every error naming its field.

extern crate std;

use std::format;
use std::string::{String, ToString};

use super::*;
use crate::Duration;

type Big = RatePolicy<CUSTOM_OPERATIONS_MAX, TIERS_MAX>;
type Small = RatePolicy<4, 2>;

fn err<const C: usize, const T: usize>(doc: &str) -> (String, String) {
    let e = RatePolicy::<C, T>::parse(doc).expect_err(doc);
    (e.path().to_string(), e.to_string())
}

fn per_min(capacity: u32) -> LimitPolicy {
    LimitPolicy::new(capacity, Duration::from_secs(60)).unwrap()
}

/// `{"limits":{"op0":{},…}}` with `n` custom operations.
fn custom_ops(n: usize) -> String {
    let entries: std::vec::Vec<String> = (0..n).map(|i| format!(r#""op{i:03}":{{}}"#)).collect();
    format!(r#"{{"limits":{{{}}}}}"#, entries.join(","))
}

#[test]
fn an_empty_document_is_the_built_in_defaults() {
    for doc in ["{}", r#"{"limits":{}}"#, r#"{"limits":null,"tiers":null}"#] {
        let p = Small::parse(doc).unwrap();
        assert_eq!(p, Small::new(), "{doc}");
        assert_eq!(*p.builtin_limits(), PolicyTable::DEFAULT);
        assert_eq!(p.operations_len(), 6);
        assert_eq!(p.default_tier(), None);
    }
}

#[test]
fn the_six_built_ins_keep_their_names_ids_and_defaults() {
    let p = Big::new();
    for op in Operation::ALL {
        let id = p.operation(op.as_str());
        assert_eq!(id, OpId::from(op));
        assert_eq!(id.builtin(), Some(op));
        assert_eq!(p.operation_name(id), op.as_str());
        assert_eq!(*p.limit(id, None), op.default_policy());
    }
    assert_eq!(p.operation("llm_call"), OpId::OTHER);
    assert_eq!(p.operation("Search"), OpId::OTHER);
    let names: std::vec::Vec<&str> = p.operations().map(|(_, n)| n).collect();
    assert_eq!(
        names,
        [
            "search",
            "transform",
            "embed",
            "ai_generate",
            "health_check",
            "other"
        ]
    );
}

#[test]
fn an_existing_limits_document_means_the_same() {
    let doc = r#"{"limits":{"search":{"capacity_tokens":60},"other":{"window_ms":1000}},
        "retry":{"quick":{}},"breakers":{},"leases":{},"health":{},"idempotency":{},
        "readiness":{"checks":[]}}"#;
    let p = RatePolicy::<0, 0>::parse(doc).unwrap();
    let mut table = PolicyTable::DEFAULT;
    table.set(Operation::Search, per_min(60));
    table.set(
        Operation::Other,
        LimitPolicy::new(30, Duration::from_millis(1000)).unwrap(),
    );
    assert_eq!(*p.builtin_limits(), table);
    assert_eq!(p, RatePolicy::from_table(table));
}

#[test]
fn custom_operations_are_defined_by_name() {
    let doc = r#"{"limits":{"zeta":{"capacity_tokens":5},"llm_call":{"capacity_tokens":100,"window_ms":60000},"a.b:c-d_e":{}}}"#;
    let p = Small::parse(doc).unwrap();
    assert_eq!(p.operations_len(), 9);
    let llm = p.operation("llm_call");
    assert_eq!(llm.builtin(), None);
    assert_eq!(p.operation_name(llm), "llm_call");
    assert_eq!(*p.limit(llm, None), per_min(100));
    // Missing fields: the "anything else" default, 30 per 60 s.
    assert_eq!(*p.limit(p.operation("a.b:c-d_e"), None), per_min(30));
    assert_eq!(p.limit(p.operation("zeta"), None).capacity_tokens(), 5);
    // Sorted after the built-in ones.
    let custom: std::vec::Vec<&str> = p.operations().skip(6).map(|(_, n)| n).collect();
    assert_eq!(custom, ["a.b:c-d_e", "llm_call", "zeta"]);
    assert_eq!(p.operation("llm_cal"), OpId::OTHER);
}

#[test]
fn two_hundred_fifty_six_operations_fit_the_next_is_refused() {
    let p = Big::parse(&custom_ops(250)).unwrap();
    assert_eq!(p.operations_len(), OPERATIONS_MAX);
    for i in 0..250 {
        let name = format!("op{i:03}");
        assert_eq!(p.operation_name(p.operation(&name)), name);
    }
    let (path, message) = err::<250, 16>(&custom_ops(251));
    assert_eq!(path, "limits.op250");
    assert_eq!(
        message,
        "limits.op250: at most 256 operations (the 6 built-in ones included)"
    );
    // A smaller table says its own bound.
    assert!(Small::parse(&custom_ops(4)).is_ok());
    let (path, message) = err::<4, 2>(&custom_ops(5));
    assert_eq!(path, "limits.op004");
    assert!(message.ends_with("at most 10 operations (the 6 built-in ones included)"));
    // Built-in names never count twice.
    let doc = r#"{"limits":{"search":{},"other":{},"a":{},"b":{},"c":{},"d":{}}}"#;
    assert!(Small::parse(doc).is_ok());
    // No room for custom operations at all.
    let (path, _) = err::<0, 0>(r#"{"limits":{"search":{},"llm_call":{}}}"#);
    assert_eq!(path, "limits.llm_call");
}

#[test]
fn names_are_checked() {
    let long = "x".repeat(65);
    let (path, message) = err::<4, 2>(&format!(r#"{{"limits":{{"{long}":{{}}}}}}"#));
    assert_eq!(path, format!("limits.{}…", &long[..64]));
    assert!(message.ends_with(": names are 1 to 64 of A-Z a-z 0-9 _ . : -"));
    let max = "y".repeat(64);
    assert!(Small::parse(&format!(r#"{{"limits":{{"{max}":{{}}}}}}"#)).is_ok());
    for bad in ["", "llm call", "llm/call", "é", "a\\\"b", "tab\\t"] {
        let doc = format!(r#"{{"limits":{{"{bad}":{{}}}}}}"#);
        let e = Small::parse(&doc).expect_err(&doc);
        assert_eq!(e.reason, Reason::BadName, "{doc}");
        assert!(e.path().starts_with("limits."), "{doc}");
    }
    let (path, _) = err::<4, 2>(r#"{"tiers":{"pro tier":{}}}"#);
    assert_eq!(path, "tiers.pro tier");
    // An escaped name is read unescaped.
    let p = Small::parse(r#"{"limits":{"llm\u005fcall":{}}}"#).unwrap();
    assert_ne!(p.operation("llm_call"), OpId::OTHER);
}

#[test]
fn duplicates_are_refused() {
    for (doc, path) in [
        (r#"{"limits":{"a":{},"a":{}}}"#, "limits.a"),
        (r#"{"limits":{"a":{},"\u0061":{}}}"#, "limits.a"),
        (r#"{"limits":{"search":{},"search":{}}}"#, "limits.search"),
        (
            r#"{"limits":{"a":{"window_ms":1,"window_ms":2}}}"#,
            "limits.a.window_ms",
        ),
        (r#"{"limits":{},"limits":null}"#, "limits"),
        (r#"{"retry":{},"retry":{}}"#, "retry"),
        (r#"{"tiers":{"pro":{},"pro":{}}}"#, "tiers.pro"),
        (
            r#"{"tiers":{"pro":{"limits":{},"limits":{}}}}"#,
            "tiers.pro.limits",
        ),
        (
            r#"{"tiers":{"pro":{"limits":{"search":{},"search":{}}}}}"#,
            "tiers.pro.limits.search",
        ),
        (
            r#"{"tiers":{"f":{}},"default_tier":"f","default_tier":"f"}"#,
            "default_tier",
        ),
    ] {
        let e = Small::parse(doc).expect_err(doc);
        assert_eq!((e.path(), e.reason), (path, Reason::Duplicate), "{doc}");
    }
}

#[test]
fn values_and_unknown_fields_name_the_field() {
    for (doc, message) in [
        (
            r#"{"limits":{"search":{"capacity_tokens":0}}}"#,
            "limits.search.capacity_tokens: must be an integer from 1 to 4294967295",
        ),
        (
            r#"{"limits":{"x":{"capacity_tokens":4294967296}}}"#,
            "limits.x.capacity_tokens: must be an integer from 1 to 4294967295",
        ),
        (
            r#"{"limits":{"x":{"window_ms":2592000001}}}"#,
            "limits.x.window_ms: must be an integer from 1 to 2592000000",
        ),
        (
            r#"{"limits":{"x":{"window_ms":"60000"}}}"#,
            "limits.x.window_ms: must be an integer from 1 to 2592000000",
        ),
        (
            r#"{"limits":{"x":{"window":60000}}}"#,
            "limits.x.window: unknown field (expected one of: capacity_tokens, window_ms)",
        ),
        (r#"{"limits":[]}"#, "limits: must be an object"),
        (r#"{"limits":{"x":1}}"#, "limits.x: must be an object"),
        (r#"{"tiers":{"pro":[]}}"#, "tiers.pro: must be an object"),
        (
            r#"{"tiers":{"pro":{"limit":{}}}}"#,
            "tiers.pro.limit: unknown field (expected one of: limits)",
        ),
        (
            r#"{"tier":{}}"#,
            "tier: unknown field (expected one of: breakers, default_tier, health, idempotency, leases, limits, readiness, retry, tiers)",
        ),
        (r#"{"default_tier":1}"#, "default_tier: must be a string"),
        ("[]", "(document): not a JSON object (invalid at byte 0)"),
        (
            r#"{"limits":{"a":{}},}"#,
            "(document): not a JSON object (invalid at byte 19)",
        ),
    ] {
        let e = Small::parse(doc).expect_err(doc);
        assert_eq!(e.to_string(), message, "{doc}");
    }
    // A syntax error anywhere wins over a field error before it.
    let (path, message) = err::<4, 2>(r#"{"bogus":1,"limits":{"a":{}}"#);
    assert_eq!(path, "");
    assert!(message.contains("not a JSON object"));
}

#[test]
fn tiers_override_the_top_level() {
    let doc = r#"{
        "limits":{"llm_call":{"capacity_tokens":100,"window_ms":60000},"search":{"capacity_tokens":40}},
        "tiers":{
            "pro":{"limits":{"llm_call":{"capacity_tokens":1000},"search":{"window_ms":1000}}},
            "free":{"limits":{"llm_call":{"capacity_tokens":10}}},
            "empty":{}
        },
        "default_tier":"free"}"#;
    let p = RatePolicy::<4, 3>::parse(doc).unwrap();
    let names: std::vec::Vec<&str> = p.tiers().map(|(_, n)| n).collect();
    assert_eq!(names, ["empty", "free", "pro"]);
    let (free, pro, empty) = (
        p.tier("free").unwrap(),
        p.tier("pro").unwrap(),
        p.tier("empty").unwrap(),
    );
    assert_eq!(p.default_tier(), Some(free));
    assert_eq!(p.tier_name(pro), "pro");
    assert_eq!(p.tier("gold"), None);
    let llm = p.operation("llm_call");
    let search = p.operation("search");
    assert_eq!(*p.limit(llm, None), per_min(100));
    assert_eq!(*p.limit(llm, Some(free)), per_min(10));
    assert_eq!(*p.limit(llm, Some(pro)), per_min(1000));
    assert_eq!(*p.limit(llm, Some(empty)), per_min(100));
    // Missing fields of a tier entry come from the document's top level.
    assert_eq!(
        *p.limit(search, Some(pro)),
        LimitPolicy::new(40, Duration::from_secs(1)).unwrap()
    );
    assert_eq!(*p.limit(search, Some(free)), per_min(40));
    // Operations a tier does not name follow the top level (here the built-in default).
    let embed = p.operation("embed");
    assert_eq!(
        *p.limit(embed, Some(pro)),
        Operation::Embed.default_policy()
    );
    // What each tier sets itself.
    let own: std::vec::Vec<(&str, u32)> = p
        .tier_limits(pro)
        .map(|(op, l)| (p.operation_name(op), l.capacity_tokens()))
        .collect();
    assert_eq!(own, [("search", 40), ("llm_call", 1000)]);
    assert_eq!(p.tier_limits(empty).count(), 0);
}

#[test]
fn tier_bounds_and_unknown_names() {
    let tiers = |n: usize| {
        let entries: std::vec::Vec<String> = (0..n).map(|i| format!(r#""t{i:02}":{{}}"#)).collect();
        format!(r#"{{"tiers":{{{}}}}}"#, entries.join(","))
    };
    let p = Big::parse(&tiers(16)).unwrap();
    assert_eq!(p.tiers().count(), 16);
    let (path, message) = err::<250, 16>(&tiers(17));
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("tiers.t16", "tiers.t16: at most 16 tiers")
    );
    let (path, _) = err::<4, 2>(&tiers(3));
    assert_eq!(path, "tiers.t02");
    let (_, message) = err::<4, 0>(&tiers(1));
    assert_eq!(message, "tiers.t00: at most 0 tiers");
    // A tier may set only operations that exist.
    let (path, message) = err::<4, 2>(r#"{"tiers":{"pro":{"limits":{"llm_call":{}}}}}"#);
    assert_eq!(path, "tiers.pro.limits.llm_call");
    assert!(message.contains("unknown operation"), "{message}");
    // The field path reaches into a tier's entry.
    let (_, message) = err::<4, 2>(
        r#"{"limits":{"x":{}},"tiers":{"pro":{"limits":{"x":{"capacity_tokens":-1}}}}}"#,
    );
    assert_eq!(
        message,
        "tiers.pro.limits.x.capacity_tokens: must be an integer from 1 to 4294967295"
    );
    // default_tier must name a tier.
    let (_, message) = err::<4, 2>(r#"{"tiers":{"free":{}},"default_tier":"pro"}"#);
    assert_eq!(
        message,
        "default_tier: unknown tier (not defined under `tiers`)"
    );
    let (path, _) = err::<4, 2>(r#"{"default_tier":"free"}"#);
    assert_eq!(path, "default_tier");
    let p = Small::parse(r#"{"tiers":{"free":{}},"default_tier":null}"#).unwrap();
    assert_eq!(p.default_tier(), None);
}

#[test]
fn parse_into_leaves_defaults_on_error() {
    let mut p = Small::parse(r#"{"limits":{"a":{}}}"#).unwrap();
    assert!(
        p.parse_into(r#"{"limits":{"b":{}},"tiers":{"x":{"limits":{"c":{}}}}}"#)
            .is_err()
    );
    assert_eq!(p, Small::new());
}

#[test]
fn bucket_keys_follow_names_not_places() {
    let hasher = KeyHasher::new([3; 16]);
    let one = Small::parse(r#"{"limits":{"m":{}}}"#).unwrap();
    let two = Small::parse(r#"{"limits":{"a":{},"m":{}}}"#).unwrap();
    let (m1, m2) = (one.operation("m"), two.operation("m"));
    assert_ne!(m1, m2);
    assert_eq!(
        one.bucket_key(&hasher, m1, b"k"),
        two.bucket_key(&hasher, m2, b"k")
    );
    assert_ne!(
        two.bucket_key(&hasher, two.operation("a"), b"k"),
        two.bucket_key(&hasher, m2, b"k")
    );
    for op in Operation::ALL {
        assert_eq!(
            one.bucket_key(&hasher, OpId::from(op), b"k"),
            op.key(&hasher, b"k")
        );
        assert_ne!(
            one.bucket_key(&hasher, OpId::from(op), b"k"),
            one.bucket_key(&hasher, m1, b"k")
        );
    }
}

#[test]
fn the_default_configuration_is_small() {
    assert!(core::mem::size_of::<RatePolicy>() <= 256);
    assert!(core::mem::size_of::<Big>() <= 170 * 1024);
}

/// Random documents against a map model: every defined name resolves to its limit, under
/// every tier, whatever the order the names were written in.
#[test]
fn lookups_match_a_map_model() {
    use std::collections::BTreeMap;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for _ in 0..200 {
        let mut ops: BTreeMap<String, u32> = BTreeMap::new();
        for _ in 0..next(12) {
            let name = format!("op{}", next(40));
            ops.insert(name, 1 + next(1000) as u32);
        }
        let mut tiers: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
        for _ in 0..next(4) {
            let mut own = BTreeMap::new();
            for name in ops.keys() {
                if next(2) == 0 {
                    own.insert(name.clone(), 1 + next(1000) as u32);
                }
            }
            tiers.insert(format!("t{}", next(9)), own);
        }
        let entry =
            |(name, cap): (&String, &u32)| format!(r#""{name}":{{"capacity_tokens":{cap}}}"#);
        let limits: std::vec::Vec<String> = ops.iter().rev().map(entry).collect();
        let tier_docs: std::vec::Vec<String> = tiers
            .iter()
            .rev()
            .map(|(t, own)| {
                let own: std::vec::Vec<String> = own.iter().map(entry).collect();
                format!(r#""{t}":{{"limits":{{{}}}}}"#, own.join(","))
            })
            .collect();
        let doc = format!(
            r#"{{"limits":{{{}}},"tiers":{{{}}}}}"#,
            limits.join(","),
            tier_docs.join(",")
        );
        let p = RatePolicy::<12, 4>::parse(&doc).expect(&doc);
        assert_eq!(p.operations_len(), 6 + ops.len());
        for (name, cap) in &ops {
            let op = p.operation(name);
            assert_eq!(p.operation_name(op), name);
            assert_eq!(p.limit(op, None).capacity_tokens(), *cap, "{doc}");
            for (t, own) in &tiers {
                let tier = p.tier(t).unwrap();
                let want = own.get(name).unwrap_or(cap);
                assert_eq!(p.limit(op, Some(tier)).capacity_tokens(), *want, "{doc}");
            }
        }
        for (t, own) in &tiers {
            let got: BTreeMap<String, u32> = p
                .tier_limits(p.tier(t).unwrap())
                .map(|(op, l)| (p.operation_name(op).into(), l.capacity_tokens()))
                .collect();
            assert_eq!(&got, own);
        }
        assert_eq!(p.operation("op40"), OpId::OTHER);
    }
}

/// What `GET_POLICY` will write (every operation, each tier's own entries, the default tier)
/// reads back as the same policy.
#[test]
fn the_written_document_reads_back_the_same() {
    let doc = r#"{"limits":{"llm_call":{"capacity_tokens":100},"embed":{"window_ms":1000}},
        "tiers":{"pro":{"limits":{"llm_call":{"capacity_tokens":1000},"search":{"window_ms":5}}},
                 "free":{}},
        "default_tier":"pro"}"#;
    let p = RatePolicy::<4, 2>::parse(doc).unwrap();
    let entry = |name: &str, l: &LimitPolicy| {
        format!(
            r#""{name}":{{"capacity_tokens":{},"window_ms":{}}}"#,
            l.capacity_tokens(),
            l.window().as_millis()
        )
    };
    let limits: std::vec::Vec<String> = p
        .operations()
        .map(|(op, name)| entry(name, p.limit(op, None)))
        .collect();
    let tiers: std::vec::Vec<String> = p
        .tiers()
        .map(|(t, name)| {
            let own: std::vec::Vec<String> = p
                .tier_limits(t)
                .map(|(op, l)| entry(p.operation_name(op), l))
                .collect();
            format!(r#""{name}":{{"limits":{{{}}}}}"#, own.join(","))
        })
        .collect();
    let default = p.default_tier().map(|t| p.tier_name(t)).unwrap();
    let written = format!(
        r#"{{"limits":{{{}}},"tiers":{{{}}},"default_tier":"{default}"}}"#,
        limits.join(","),
        tiers.join(",")
    );
    assert_eq!(RatePolicy::<4, 2>::parse(&written).unwrap(), p, "{written}");
}
