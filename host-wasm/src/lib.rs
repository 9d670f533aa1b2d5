//! heidi-wasm: a deterministic discrete-event simulation of heidi-core, natively and in the
//! browser.
//!
//! The simulator lets a user see what their limits, retries and breakers will do before they
//! deploy them. Every decision is heidi-core's (the keyed limiter, the breaker, the retry
//! policy and budget, the batcher, the pipeline machine, the journal chain and verifier); this
//! crate only supplies what a host supplies: a clock, randomness, clients and an upstream.
//!
//! - **Virtual clock** ([`engine`]): events wait in a queue ordered by time; the clock jumps
//!   to the next one, so a simulated hour of idle time costs nothing.
//! - **Seeded PRNG** ([`rng`]): xoshiro256** seeded through SplitMix64, integer-only draws.
//! - **Hard step cap**: every run processes at most `max_steps` events; a run that hits it
//!   ends early and says so in its trace (`step_cap_reached`).
//! - **Scenarios** ([`scenario`]): `limiter`, `breaker`, `batching`, `pipeline`, `service`.
//! - **Trace** ([`trace`]): per-tick aggregates, events and a summary, as JSON with integers
//!   only, byte-identical for the same seed, scenario and parameters on every target.
//!
//! The same code builds natively (tests, the `trace` and `bench` examples) and for
//! `wasm32-unknown-unknown`, where `exports` (wasm32 only) wraps [`run_json`] in plain
//! `extern "C"` functions over static buffers. The module uses `std` on wasm32 (the traces are
//! variable-sized; std's allocator on wasm32-unknown-unknown imports nothing), so it has no
//! imports at all; `host-wasm/ci.sh` checks that and its size. See `host-wasm/README.md` for
//! the config and trace formats.
//!
//! ```
//! let trace = heidi_wasm::run_json(br#"{"scenario":"limiter","seed":7}"#).unwrap();
//! let again = heidi_wasm::run_json(br#"{"scenario":"limiter","seed":7}"#).unwrap();
//! assert_eq!(trace, again);
//! let err = heidi_wasm::run_json(br#"{"scenario":"limiter","params":{"nope":1}}"#).unwrap_err();
//! assert_eq!(err.code, "bad_json");
//! ```

#[forbid(unsafe_code)]
pub mod driver;
#[forbid(unsafe_code)]
pub mod engine;
#[forbid(unsafe_code)]
pub mod error;
#[forbid(unsafe_code)]
pub mod json;
#[forbid(unsafe_code)]
pub mod latency;
#[forbid(unsafe_code)]
pub mod rng;
#[forbid(unsafe_code)]
pub mod scenario;
#[forbid(unsafe_code)]
pub mod trace;
#[forbid(unsafe_code)]
pub mod upstream;

#[cfg(target_arch = "wasm32")]
pub mod exports;

pub use error::{ErrorInfo, SimError};

use json::{FromJson, Value};

/// Largest config accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
/// Largest seed: 2⁵³ − 1, so that JavaScript numbers hold every seed exactly.
pub const MAX_SEED: u64 = (1 << 53) - 1;
/// The step cap when the config gives none.
pub const DEFAULT_MAX_STEPS: u64 = 5_000_000;
/// The largest step cap a config may ask for. It bounds a run's time only: memory is bounded
/// by the in-flight caps (16 clients at 100 000/s against a 60 s + 60 s upstream for 100 M
/// steps peaks at 9.4 MiB of wasm memory, in about 36 s under node).
pub const MAX_MAX_STEPS: u64 = 100_000_000;
/// The scenario names.
pub const SCENARIOS: [&str; 5] = ["limiter", "breaker", "batching", "pipeline", "service"];

/// The fields of a config.
const CONFIG_FIELDS: &[&str] = &["scenario", "seed", "max_steps", "params"];

/// Runs the scenario a JSON config names and returns its trace as JSON.
///
/// # Errors
/// [`SimError`] when the config is not valid JSON, has unknown fields or wrong types
/// (`bad_json`), values out of range (`bad_params`) or is too large (`input_too_large`).
pub fn run_json(input: &[u8]) -> Result<Vec<u8>, SimError> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(SimError::new(
            "input_too_large",
            format!("config is {} bytes, at most {MAX_INPUT_BYTES}", input.len()),
        ));
    }
    let config = json::parse(input)?;
    let members = json::members(&config, "config", CONFIG_FIELDS)?;
    let scenario = match json::member(members, "scenario") {
        Some(v) => String::from_json(v, "config.scenario")?,
        None => return Err(json::missing("config", "scenario")),
    };
    let number = |name: &str, default: u64| match json::member(members, name) {
        Some(v) => u64::from_json(v, &format!("config.{name}")),
        None => Ok(default),
    };
    let seed = number("seed", 1)?;
    let max_steps = number("max_steps", DEFAULT_MAX_STEPS)?;
    let empty = Value::Obj(Vec::new());
    let params = json::member(members, "params").unwrap_or(&empty);
    run(&scenario, seed, max_steps, params)
}

/// Runs `scenario` with `params` (a JSON object; missing fields take their defaults) and
/// returns its trace as JSON.
///
/// # Errors
/// As [`run_json`].
pub fn run(scenario: &str, seed: u64, max_steps: u64, params: &Value) -> Result<Vec<u8>, SimError> {
    error::check_range("seed", seed, 0, MAX_SEED)?;
    error::check_range("max_steps", max_steps, 1, MAX_MAX_STEPS)?;
    match scenario {
        "limiter" => scenario::limiter::run(seed, max_steps, params),
        "breaker" => scenario::breaker::run(seed, max_steps, params),
        "batching" => scenario::batching::run(seed, max_steps, params),
        "pipeline" => scenario::pipeline::run(seed, max_steps, params),
        "service" => scenario::service::run(seed, max_steps, params),
        other => Err(SimError::param(
            "scenario",
            format!("unknown scenario {other:?}, expected one of {SCENARIOS:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_runs_with_its_defaults() {
        for s in SCENARIOS {
            let input = format!(r#"{{"scenario":"{s}","seed":3}}"#);
            let out = run_json(input.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"));
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["scenario"], s);
            assert_eq!(v["format"], trace::TRACE_FORMAT);
            assert_eq!(v["step_cap_reached"], false, "{s}");
            assert!(!v["ticks"].as_array().unwrap().is_empty(), "{s}");
        }
    }

    #[test]
    fn bad_configs_are_errors_not_panics() {
        let cases: [(&[u8], &str, &str); 9] = [
            (b"", "bad_json", "config"),
            (b"[1,2]", "bad_json", "config"),
            (b"{}", "bad_json", "missing field `scenario`"),
            (
                br#"{"scenario":"limiter","colour":1}"#,
                "bad_json",
                "unknown field `colour`",
            ),
            (br#"{"scenario":"warp"}"#, "bad_params", "unknown scenario"),
            (br#"{"scenario":"limiter","seed":-1}"#, "bad_json", "config"),
            (
                br#"{"scenario":"limiter","seed":9007199254740992}"#,
                "bad_params",
                "seed",
            ),
            (
                br#"{"scenario":"limiter","max_steps":0}"#,
                "bad_params",
                "max_steps",
            ),
            (
                br#"{"scenario":"limiter","params":{"fail_permille":0.5}}"#,
                "bad_json",
                "integers",
            ),
        ];
        for (input, code, needle) in cases {
            let e = run_json(input).unwrap_err();
            assert_eq!(e.code, code, "{e}");
            assert!(e.message.contains(needle), "{e} lacks {needle:?}");
            let json: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
            assert_eq!(json["error"]["code"], code);
        }
    }

    #[test]
    fn the_input_size_limit_is_enforced() {
        let mut big = br#"{"scenario":"limiter","params":{}}"#.to_vec();
        big.resize(MAX_INPUT_BYTES, b' ');
        assert!(run_json(&big).is_ok());
        big.push(b' ');
        assert_eq!(run_json(&big).unwrap_err().code, "input_too_large");
    }

    #[test]
    fn the_largest_seed_and_step_cap_are_accepted() {
        let input =
            format!(r#"{{"scenario":"limiter","seed":{MAX_SEED},"max_steps":{MAX_MAX_STEPS}}}"#);
        assert!(run_json(input.as_bytes()).is_ok());
        let input = format!(
            r#"{{"scenario":"limiter","max_steps":{}}}"#,
            MAX_MAX_STEPS + 1
        );
        assert_eq!(run_json(input.as_bytes()).unwrap_err().code, "bad_params");
    }

    #[test]
    fn a_small_step_cap_is_reached_and_reported() {
        for s in SCENARIOS {
            let input = format!(r#"{{"scenario":"{s}","max_steps":50}}"#);
            let v: serde_json::Value =
                serde_json::from_slice(&run_json(input.as_bytes()).unwrap()).unwrap();
            assert_eq!(v["step_cap_reached"], true, "{s}");
            assert_eq!(v["steps"], 50, "{s}");
            let events = v["events"].as_array().unwrap();
            let last = events.last().unwrap_or_else(|| panic!("{s}: no events"));
            assert_eq!(last["kind"], "step_cap", "{s}");
        }
    }
}
