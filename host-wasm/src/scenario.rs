//! The scenarios: one module each, all driven by [`crate::engine::Engine`].
//!
//! Each module has a `Params` struct (every field optional in the JSON config, unknown fields
//! refused), a `simulate` function returning a typed [`crate::trace::Trace`], and `run`, which
//! parses the parameters and serializes the trace.

pub mod batching;
pub mod breaker;
pub mod limiter;
pub mod pipeline;

use crate::error::SimError;
use crate::json::{FromJson, ToJson, Value};

/// Reads a scenario's parameters: missing fields take their defaults, unknown ones are an
/// error that names them.
pub(crate) fn parse<P: FromJson>(params: &Value) -> Result<P, SimError> {
    P::from_json(params, "params")
}

/// Writes a trace as JSON.
pub(crate) fn encode<T: ToJson>(trace: &T) -> Vec<u8> {
    crate::json::to_vec(trace)
}
