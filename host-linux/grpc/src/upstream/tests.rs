//! Unit tests: configuration limits, outage parsing, the store's dedupe and atomicity, the
//! seeded failure draw and the lanes' cost model.

use super::config::*;
use super::faults::{Fault, Faults, Lanes};
use super::store::{Store, StoreError};
use crate::proto::Transaction;
use heidi_core::Instant;
use std::time::Duration;

fn tx(key: &str) -> Transaction {
    Transaction {
        idempotency_key: key.to_owned(),
        ..Default::default()
    }
}

#[test]
fn config_limits_are_reached() {
    let ok = UpstreamConfig::default();
    assert_eq!(ok.validate(), Ok(()));
    let cases: Vec<(UpstreamConfig, ConfigError)> = vec![
        (
            UpstreamConfig {
                failure_rate_ppm: PPM + 1,
                ..ok.clone()
            },
            ConfigError::FailureRate(PPM + 1),
        ),
        (
            UpstreamConfig {
                latency: MAX_DELAY + Duration::from_millis(1),
                ..ok.clone()
            },
            ConfigError::Latency(MAX_DELAY + Duration::from_millis(1)),
        ),
        (
            UpstreamConfig {
                cost: MAX_DELAY + Duration::from_millis(1),
                ..ok.clone()
            },
            ConfigError::Cost(MAX_DELAY + Duration::from_millis(1)),
        ),
        (
            UpstreamConfig {
                concurrency: 0,
                ..ok.clone()
            },
            ConfigError::Concurrency(0),
        ),
        (
            UpstreamConfig {
                concurrency: MAX_CONCURRENCY + 1,
                ..ok.clone()
            },
            ConfigError::Concurrency(MAX_CONCURRENCY + 1),
        ),
        (
            UpstreamConfig {
                capacity: 0,
                ..ok.clone()
            },
            ConfigError::Capacity(0),
        ),
        (
            UpstreamConfig {
                capacity: MAX_CAPACITY + 1,
                ..ok.clone()
            },
            ConfigError::Capacity(MAX_CAPACITY + 1),
        ),
        (
            UpstreamConfig {
                outages: vec![
                    Outage::new(Duration::ZERO, Duration::from_secs(1)).unwrap();
                    MAX_OUTAGES + 1
                ],
                ..ok.clone()
            },
            ConfigError::Outages(MAX_OUTAGES + 1),
        ),
    ];
    for (config, want) in cases {
        assert_eq!(config.validate(), Err(want.clone()), "{config:?}");
        assert!(!want.to_string().is_empty());
    }
    let edges = UpstreamConfig {
        failure_rate_ppm: PPM,
        latency: MAX_DELAY,
        cost: MAX_DELAY,
        concurrency: MAX_CONCURRENCY,
        capacity: MAX_CAPACITY,
        outages: vec![Outage::new(Duration::ZERO, Duration::from_secs(1)).unwrap(); MAX_OUTAGES],
        seed: u64::MAX,
    };
    assert_eq!(edges.validate(), Ok(()));
}

#[test]
fn rates_parse_exactly() {
    let ok = [
        ("0", 0),
        ("1", PPM),
        ("0.2", 200_000),
        ("0.000001", 1),
        ("20%", 200_000),
        ("0.5%", 5_000),
        ("100%", PPM),
        (" 0.25 ", 250_000),
        ("1.0", PPM),
    ];
    for (text, ppm) in ok {
        assert_eq!(parse_rate(text), Ok(ppm), "{text}");
    }
    for bad in [
        "",
        "1.01",
        "2",
        "101%",
        "-0.1",
        "0.0000001",
        ".5",
        "5.",
        "abc",
        "1e-1",
        "%",
    ] {
        assert!(
            parse_rate(bad).unwrap_err().contains("expected 0 to 1"),
            "{bad}"
        );
    }
}

#[test]
fn outages_parse_and_contain() {
    let o: Outage = "500..1500".parse().unwrap();
    assert_eq!(
        o,
        Outage::new(Duration::from_millis(500), Duration::from_millis(1500)).unwrap()
    );
    assert!(!o.contains(Duration::from_millis(499)));
    assert!(o.contains(Duration::from_millis(500)));
    assert!(o.contains(Duration::from_millis(1499)));
    assert!(!o.contains(Duration::from_millis(1500)));
    for bad in ["", "5", "5..", "..5", "10..10", "20..10", "a..b", "-1..5"] {
        let e = bad.parse::<Outage>().unwrap_err();
        assert!(e.contains("START_MS..END_MS"), "{bad}: {e}");
    }
    let config = UpstreamConfig {
        outages: vec![o],
        ..Default::default()
    };
    assert!(config.in_outage(Duration::from_secs(1)));
    assert!(!config.in_outage(Duration::from_secs(2)));
}

#[test]
fn a_key_is_applied_once_and_repeats_get_the_first_receipt() {
    let mut s = Store::new(64, 7);
    let now = Instant::ZERO;
    let first = s.apply(now, &[tx("a"), tx("b")]).unwrap();
    assert_eq!((first.applied, first.duplicates), (2, 0));
    let again = s.apply(now, &[tx("b"), tx("c"), tx("c")]).unwrap();
    assert_eq!((again.applied, again.duplicates), (1, 2));
    assert!(again.receipts[0].duplicate);
    assert_eq!(again.receipts[0].receipt_id, first.receipts[1].receipt_id);
    assert!(!again.receipts[1].duplicate);
    assert!(
        again.receipts[2].duplicate,
        "a copy in the same batch is a duplicate"
    );
    assert_eq!(again.receipts[2].receipt_id, again.receipts[1].receipt_id);
    for r in first.receipts.iter().chain(&again.receipts) {
        assert!(r.committed && r.error.is_empty());
    }
    assert_eq!(
        (
            s.applies("a"),
            s.applies("b"),
            s.applies("c"),
            s.applies("z")
        ),
        (1, 1, 1, 0)
    );
    assert_eq!(s.distinct_keys(), 3);
    assert!(s.over_applied().is_empty());
    assert_eq!(
        s.receipt_of("a").as_deref(),
        Some(first.receipts[0].receipt_id.as_str())
    );
}

#[test]
fn a_full_table_refuses_the_whole_batch_and_forgets_nothing() {
    let mut s = Store::new(8, 1);
    assert_eq!(s.capacity(), 8);
    let now = Instant::ZERO;
    let mut applied = Vec::new();
    let mut n = 0;
    // Fill until refused: one key per batch, so the refusal is exactly at the limit.
    loop {
        let key = format!("k{n}");
        match s.apply(now, &[tx(&key)]) {
            Ok(_) => applied.push(key),
            Err(e) => {
                assert_eq!(e, StoreError::Full { index: 0 });
                break;
            }
        }
        n += 1;
        assert!(n <= 8, "a table of 8 slots took a 9th key");
    }
    assert!(!applied.is_empty());
    // A batch mixing known keys and a new one is refused whole, naming the first new key
    // that did not fit: the known ones are not answered, the new one is not applied.
    let before = s.distinct_keys();
    let mixed = [tx(&applied[0]), tx("new-1"), tx("new-2")];
    assert_eq!(
        s.apply(now, &mixed).unwrap_err(),
        StoreError::Full { index: 1 }
    );
    assert_eq!((s.distinct_keys(), s.applies("new-1")), (before, 0));
    // Known keys alone are still answered from the record.
    let again = s.apply(now, &[tx(&applied[0])]).unwrap();
    assert!(again.receipts[0].duplicate);
    assert!(applied.iter().all(|k| s.applies(k) == 1));
}

#[test]
fn the_failure_draw_is_seeded() {
    let config = UpstreamConfig {
        failure_rate_ppm: 200_000,
        seed: 42,
        ..Default::default()
    };
    let draws = |c: &UpstreamConfig| {
        let f = Faults::new(c);
        (0..10_000)
            .map(|_| f.decide(c, Duration::ZERO))
            .collect::<Vec<_>>()
    };
    let a = draws(&config);
    assert_eq!(a, draws(&config), "same seed, same failures");
    let failed = a.iter().filter(|d| **d == Some(Fault::Random)).count();
    assert!(
        (1_800..=2_200).contains(&failed),
        "{failed} of 10000 at 20 %"
    );
    let never = UpstreamConfig {
        failure_rate_ppm: 0,
        ..config.clone()
    };
    assert!(draws(&never).iter().all(Option::is_none));
    let always = UpstreamConfig {
        failure_rate_ppm: PPM,
        ..config
    };
    assert!(draws(&always).iter().all(|d| *d == Some(Fault::Random)));
}

#[test]
fn outages_and_the_down_switch_fail_calls() {
    let config = UpstreamConfig {
        outages: vec!["100..200".parse().unwrap()],
        ..Default::default()
    };
    let f = Faults::new(&config);
    assert_eq!(
        f.decide(&config, Duration::from_millis(150)),
        Some(Fault::Outage)
    );
    assert_eq!(f.decide(&config, Duration::from_millis(250)), None);
    f.set_down(true);
    assert_eq!(
        f.decide(&config, Duration::from_millis(250)),
        Some(Fault::Outage)
    );
    f.set_down(false);
    assert_eq!(f.decide(&config, Duration::from_millis(250)), None);
}

#[test]
fn lanes_queue_calls_behind_the_cost() {
    let config = UpstreamConfig {
        cost: Duration::from_millis(2),
        concurrency: 2,
        ..Default::default()
    };
    let lanes = Lanes::new(&config);
    let t0 = tokio::time::Instant::now() + Duration::from_secs(1);
    let done: Vec<_> = (0..5).map(|_| lanes.book(t0) - t0).collect();
    let ms = Duration::from_millis;
    assert_eq!(done, vec![ms(2), ms(2), ms(4), ms(4), ms(6)]);
    let free = Lanes::new(&UpstreamConfig::default());
    assert_eq!(free.book(t0), t0, "no cost: no wait");
}
