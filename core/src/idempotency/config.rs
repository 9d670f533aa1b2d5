//! Configuration of the idempotency table and its validation.

use crate::time::Duration;
use core::fmt;

/// How long records live and which outcomes are remembered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IdempotencyConfig {
    /// How long a completed key answers `Done` (or `Failed`) before it is new again.
    /// Default [`IdempotencyConfig::DEFAULT_TTL`], 24 h.
    pub ttl: Duration,
    /// How long a key stays in progress without being completed. After it the owner is
    /// presumed crashed: the key may be begun again and the old owner can no longer complete
    /// it. Default [`IdempotencyConfig::DEFAULT_IN_PROGRESS_TIMEOUT`], 5 min.
    pub in_progress_timeout: Duration,
    /// Whether a failed run is remembered like a success (answering `Failed` until `ttl`).
    /// Default `false`: a failure frees the key so that a retry may run.
    pub remember_failures: bool,
}

impl IdempotencyConfig {
    /// Default time a completed key is remembered: 24 hours.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
    /// Default time a key may stay in progress: 5 minutes. Longer than the pipeline's default
    /// stage timeout (300 s) would be pointless for stages; a host running longer jobs under
    /// one key raises it.
    pub const DEFAULT_IN_PROGRESS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

    /// The defaults: 24 h TTL, 5 min in-progress timeout, successes only.
    pub const DEFAULT: IdempotencyConfig = IdempotencyConfig {
        ttl: Self::DEFAULT_TTL,
        in_progress_timeout: Self::DEFAULT_IN_PROGRESS_TIMEOUT,
        remember_failures: false,
    };

    /// Checks that both durations are non-zero.
    pub fn validate(&self) -> Result<(), IdempotencyConfigError> {
        if self.ttl.is_zero() {
            return Err(IdempotencyConfigError::Ttl);
        }
        if self.in_progress_timeout.is_zero() {
            return Err(IdempotencyConfigError::InProgressTimeout);
        }
        Ok(())
    }
}

impl Default for IdempotencyConfig {
    fn default() -> IdempotencyConfig {
        IdempotencyConfig::DEFAULT
    }
}

/// An invalid [`IdempotencyConfig`] field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IdempotencyConfigError {
    /// `ttl` is zero: nothing would ever be remembered.
    Ttl,
    /// `in_progress_timeout` is zero: every duplicate would run at once.
    InProgressTimeout,
}

impl fmt::Display for IdempotencyConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdempotencyConfigError::Ttl => f.write_str("ttl must be greater than zero"),
            IdempotencyConfigError::InProgressTimeout => {
                f.write_str("in_progress_timeout must be greater than zero")
            }
        }
    }
}

impl core::error::Error for IdempotencyConfigError {}
