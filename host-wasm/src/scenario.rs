//! The scenarios: one module each, all driven by [`crate::driver::drive`].
//!
//! Each module has a `Params` struct (every field optional in the JSON config, unknown fields
//! refused), a `simulate` function returning a typed [`crate::trace::Trace`], and `run`, which
//! parses the parameters and serializes the trace. The limits they share live here.

pub mod batching;
pub mod breaker;
pub mod limiter;
pub mod pipeline;
pub mod service;

use crate::error::{SimError, check_range};
use crate::json::{FromJson, ToJson, Value};

/// Highest arrival rate of a client (limiter) or of the offered load (breaker, batching).
pub const MAX_RATE_PER_SEC: u32 = 100_000;

/// Most requests (limiter, breaker) or items (batching) in flight at once. An arrival that
/// finds this many in flight is shed: counted in `shed`, never sent. This bounds the event
/// queue, and with it the memory of a run, whatever the rates and latencies.
pub const MAX_IN_FLIGHT: u64 = 100_000;

/// Reads a scenario's parameters: missing fields take their defaults, unknown ones are an
/// error that names them.
pub(crate) fn parse<P: FromJson>(params: &Value) -> Result<P, SimError> {
    P::from_json(params, "params")
}

/// Writes a trace as JSON.
pub(crate) fn encode<T: ToJson>(trace: &T) -> Vec<u8> {
    crate::json::to_vec(trace)
}

/// Checks an arrival rate `field`: 1..=[`MAX_RATE_PER_SEC`].
pub(crate) fn check_rate(field: &str, per_sec: u32) -> Result<(), SimError> {
    check_range(field, per_sec.into(), 1, MAX_RATE_PER_SEC.into())
}

/// `v` as the narrower type a core config field has (whose largest value is `max`), or an
/// error naming `field`. Only the cast is checked here; the value's rules are core's.
pub(crate) fn narrow<T: TryFrom<u32>>(field: &str, v: u32, max: u32) -> Result<T, SimError> {
    T::try_from(v).map_err(|_| SimError::param(field, format!("{v} is out of range 0..={max}")))
}

/// Helpers of the scenarios' parameter tests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::SimError;

    /// Runs `scenario` with `params` and a step cap of 1000 (parameters are checked before
    /// the first step, so the cap only keeps accepted runs short).
    pub(crate) fn try_params(
        scenario: &str,
        params: &serde_json::Value,
    ) -> Result<Vec<u8>, SimError> {
        let params = crate::json::parse(params.to_string().as_bytes()).unwrap();
        crate::run(scenario, 1, 1_000, &params)
    }

    /// Each case is refused with `bad_params` and a message starting with its field.
    pub(crate) fn assert_refused(scenario: &str, cases: &[(serde_json::Value, &str)]) {
        for (params, field) in cases {
            let e = try_params(scenario, params).expect_err(&params.to_string());
            assert_eq!(e.code, "bad_params", "{params}: {e}");
            assert!(
                e.message.starts_with(field),
                "{params}: {e} does not name {field}"
            );
        }
    }

    /// Each `(accepted, refused, field)`: the largest accepted value runs, one more is
    /// refused naming the field.
    pub(crate) fn assert_limits(
        scenario: &str,
        cases: &[(serde_json::Value, serde_json::Value, &str)],
    ) {
        for (ok, bad, field) in cases {
            if let Err(e) = try_params(scenario, ok) {
                panic!("{scenario} {ok}: {e}");
            }
            assert_refused(scenario, &[(bad.clone(), field)]);
        }
    }
}
