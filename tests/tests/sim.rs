//! The browser simulation (heidi-wasm), run natively: determinism, the retry storm that a
//! retry budget prevents, and a pipeline journal that heidi-core's verifier accepts.
//!
//! The same traces are compared with the wasm module's under node by
//! `host-wasm/tests/determinism.mjs` (run by `host-wasm/ci.sh`).

use heidi_core::journal::Verifier;
use serde_json::Value;

fn trace(scenario: &str, seed: u64, params: &str) -> Vec<u8> {
    let config = format!(r#"{{"scenario":"{scenario}","seed":{seed},"params":{params}}}"#);
    heidi_wasm::run_json(config.as_bytes())
        .unwrap_or_else(|e| panic!("{scenario} seed {seed}: {e}"))
}

fn parsed(scenario: &str, seed: u64, params: &str) -> Value {
    serde_json::from_slice(&trace(scenario, seed, params)).expect("a trace is JSON")
}

#[test]
fn same_seed_gives_identical_bytes_other_seed_differs() {
    for scenario in heidi_wasm::SCENARIOS {
        let a = trace(scenario, 42, "{}");
        let b = trace(scenario, 42, "{}");
        assert!(a == b, "{scenario}: two runs with seed 42 differ");
        let c = trace(scenario, 43, "{}");
        assert!(a != c, "{scenario}: seeds 42 and 43 gave the same trace");
    }
}

/// Configs beyond the defaults: many clients, outages shorter than a tick, pipeline timeouts,
/// a rising load with small batches, a service table full of keys. The same list is in
/// `host-wasm/tests/determinism.mjs`.
const CONFIGS: [(&str, &str); 6] = [
    (
        "limiter",
        r#"{"clients":[{"rate_per_sec":900},{"rate_per_sec":700},{"rate_per_sec":500},{"rate_per_sec":300},{"rate_per_sec":100},{"rate_per_sec":50},{"rate_per_sec":20},{"rate_per_sec":10},{"rate_per_sec":5},{"rate_per_sec":1},{"rate_per_sec":2000},{"rate_per_sec":3},{"rate_per_sec":4},{"rate_per_sec":6},{"rate_per_sec":7},{"rate_per_sec":8}],"duration_ms":3000}"#,
    ),
    (
        "breaker",
        r#"{"outages":[{"start_ms":5100,"end_ms":5200,"fail_permille":1000},{"start_ms":7010,"end_ms":7020,"fail_permille":1000},{"start_ms":20000,"end_ms":25000,"fail_permille":1000}]}"#,
    ),
    (
        "breaker",
        r#"{"budget":false,"rate_per_sec":5000,"duration_ms":5000,"outages":[{"start_ms":1000,"end_ms":3000,"fail_permille":700}]}"#,
    ),
    (
        "pipeline",
        r#"{"train_ms":290000,"jitter_permille":500,"stage_timeout_ms":300000,"restarts":5,"rounds":5}"#,
    ),
    (
        "batching",
        r#"{"batch_max":2,"linger_ms":3,"rate_start_per_sec":5000,"rate_end_per_sec":100}"#,
    ),
    (
        "service",
        r#"{"clients":[{"rate_per_sec":2000,"keys":1000},{"rate_per_sec":50}],"table_slots":8,"limit_capacity":2,"limit_window_ms":60000,"check_permille":300,"bad_permille":50,"latency_ms":20}"#,
    ),
];

#[test]
fn varied_configs_are_deterministic() {
    for (scenario, params) in CONFIGS {
        for seed in [1, 42] {
            let a = trace(scenario, seed, params);
            let b = trace(scenario, seed, params);
            assert!(a == b, "{scenario} {params} seed {seed}: two runs differ");
        }
    }
    // The pipeline config does time stages out, and the breaker's short outages mark ticks.
    let p = parsed("pipeline", 1, CONFIGS[3].1);
    assert!(
        p["summary"]["stage_timeouts"].as_u64().unwrap() > 0,
        "{}",
        p["summary"]
    );
    let b = parsed("breaker", 1, CONFIGS[1].1);
    let marked: Vec<u64> = b["ticks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["outage"] == true)
        .map(|k| k["t_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(&marked[..2], [5_000, 7_000]);
}

#[test]
fn traces_hold_integers_only() {
    // No float ever reaches a trace, so no platform formats one differently.
    fn walk(v: &Value, path: &str) {
        match v {
            Value::Number(n) => assert!(n.is_u64(), "{path}: {n} is not an unsigned integer"),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, &format!("{path}.{k}"))),
            _ => {}
        }
    }
    for scenario in heidi_wasm::SCENARIOS {
        walk(&parsed(scenario, 7, "{}"), scenario);
    }
}

#[test]
fn a_retry_budget_prevents_the_retry_storm() {
    for seed in 1..=5 {
        let with = parsed("breaker", seed, r#"{"budget":true}"#);
        let without = parsed("breaker", seed, r#"{"budget":false}"#);
        let calls = |t: &Value| t["summary"]["upstream_calls_in_outage"].as_u64().unwrap();
        let (w, wo) = (calls(&with), calls(&without));
        // Same arrivals in both runs (the arrival stream has its own PRNG stream).
        assert_eq!(with["summary"]["requests"], without["summary"]["requests"]);
        // A clear margin: with the budget at most 70 % of the calls made without it
        // (about 58 % on these seeds).
        assert!(
            w * 10 <= wo * 7,
            "seed {seed}: {w} upstream calls in the outage with a budget, {wo} without"
        );
        assert!(
            with["summary"]["gave_up_budget"].as_u64().unwrap() > 0,
            "seed {seed}"
        );
        // The breaker tripped in the hard outage in both runs and closed again afterwards.
        for t in [&with, &without] {
            assert!(t["summary"]["trips"].as_u64().unwrap() >= 1, "seed {seed}");
            assert_eq!(
                t["ticks"].as_array().unwrap().last().unwrap()["breaker"],
                "closed"
            );
        }
    }
}

#[test]
fn the_pipeline_journal_verifies_with_the_core_verifier() {
    for seed in 1..=5 {
        let t = parsed("pipeline", seed, r#"{"fail_permille":100,"restarts":3}"#);
        let lines = t["journal"]
            .as_array()
            .expect("a pipeline trace carries its journal");
        let summary = &t["summary"];
        assert_eq!(summary["journal_verified"], true, "seed {seed}: {summary}");
        assert_eq!(
            lines.len() as u64,
            summary["journal_lines"].as_u64().unwrap()
        );
        let mut journal = String::new();
        for line in lines {
            journal.push_str(line.as_str().unwrap());
            journal.push('\n');
        }
        let mut verifier = Verifier::new();
        let verified = verifier
            .feed(journal.as_bytes())
            .and_then(|()| verifier.finish());
        let verified = verified.unwrap_or_else(|f| panic!("seed {seed}: {f}"));
        assert_eq!(verified.lines, lines.len() as u64);
        assert_eq!(verified.run_id(), format!("sim-{seed}"));
        assert_eq!(
            verified.last_hash.map(|h| h.hex().as_str().to_owned()),
            summary["journal_last_hash"].as_str().map(str::to_owned)
        );
        // Tampering with any line is caught.
        let tampered = journal.replacen("\"round\":1", "\"round\":2", 1);
        let mut verifier = Verifier::new();
        assert!(
            verifier
                .feed(tampered.as_bytes())
                .and_then(|()| verifier.finish())
                .is_err()
        );
    }
}

#[test]
fn bad_configs_come_back_as_errors() {
    let e =
        heidi_wasm::run_json(br#"{"scenario":"breaker","params":{"max_attempts":0}}"#).unwrap_err();
    assert_eq!(e.code, "bad_params");
    assert!(e.message.starts_with("max_attempts"), "{e}");
    let json: Value = serde_json::from_slice(&e.to_json()).unwrap();
    assert_eq!(json["error"]["code"], "bad_params");
}
