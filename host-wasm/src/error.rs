//! [`SimError`]: why a run was refused, as the JSON object the page shows.

use core::fmt;
use core::ops::Deref;

/// A refused run: a stable `code` and a message that names the offending field.
///
/// Codes: `bad_json` (not JSON, wrong type, unknown field), `bad_params` (a value out of
/// range), `input_too_large` (the config exceeds [`crate::MAX_INPUT_BYTES`]) and `internal`
/// (heidi-core refused something the simulator should never ask: a simulator bug, reported
/// rather than hidden).
///
/// Its fields are [`ErrorInfo`]'s, reached through `Deref` (`e.code`, `e.message`). The
/// error is one pointer: every step of a run returns `Result<_, SimError>` through a `?`,
/// and with the 20-byte struct inline each `?` copied it, 8 KB of the wasm module in all.
#[derive(Clone, PartialEq, Eq)]
pub struct SimError(Box<ErrorInfo>);

/// What a [`SimError`] says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorInfo {
    /// Machine-readable kind.
    pub code: &'static str,
    /// Human-readable explanation, naming the field.
    pub message: String,
}

impl Deref for SimError {
    type Target = ErrorInfo;

    fn deref(&self) -> &ErrorInfo {
        &self.0
    }
}

impl fmt::Debug for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl SimError {
    /// An error with `code` and `message`.
    pub fn new(code: &'static str, message: String) -> SimError {
        SimError(Box::new(ErrorInfo { code, message }))
    }

    /// A `bad_params` error: `field` must satisfy `rule`.
    pub fn param(field: &str, rule: impl fmt::Display) -> SimError {
        SimError::labelled("bad_params", field, &rule)
    }

    /// An `internal` error: heidi-core refused `what` although the simulator guarantees it.
    pub fn internal(what: impl fmt::Display) -> SimError {
        SimError::labelled("internal", "simulator bug", &what)
    }

    /// `code` with the message `{label}: {rest}`: the one formatting site of [`param`] and
    /// [`internal`], which are generic over their argument and would each copy it.
    ///
    /// [`param`]: SimError::param
    /// [`internal`]: SimError::internal
    #[inline(never)]
    fn labelled(code: &'static str, label: &str, rest: &dyn fmt::Display) -> SimError {
        SimError::new(code, format!("{label}: {rest}"))
    }

    /// `{"error":{"code":…,"message":…}}`, the form the wasm export returns.
    pub fn to_json(&self) -> Vec<u8> {
        let mut w = crate::json::Writer::default();
        w.begin_object();
        w.field("error", self);
        w.end_object();
        w.into_bytes()
    }
}

crate::json_fields!(SimError { code, message });

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for SimError {}

/// Checks `lo <= value <= hi` for the parameter `field`.
pub fn check_range(field: &str, value: u64, lo: u64, hi: u64) -> Result<(), SimError> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(SimError::param(
            field,
            format!("{value} is out of range {lo}..={hi}"),
        ))
    }
}
