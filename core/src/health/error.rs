//! Errors of the health set.

use core::fmt;

/// Why [`Health::register`](super::Health::register) refused a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RegisterError {
    /// The set already holds its capacity of checks.
    Full,
    /// The name is longer than [`NAME_MAX_BYTES`](super::NAME_MAX_BYTES).
    NameTooLong,
    /// A check of that name is already registered (one entry per name).
    AlreadyRegistered,
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::Full => f.write_str("health check set is full"),
            RegisterError::NameTooLong => write!(
                f,
                "health check name is longer than {} bytes",
                super::NAME_MAX_BYTES
            ),
            RegisterError::AlreadyRegistered => f.write_str("health check is already registered"),
        }
    }
}

impl core::error::Error for RegisterError {}

/// No check of that name is registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownCheck;

impl fmt::Display for UnknownCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no health check of that name is registered")
    }
}

impl core::error::Error for UnknownCheck {}
