//! Validation rules of the sidecar wire contract (`heidi.sidecar.v1`): what makes an
//! idempotency key and a transaction batch acceptable. The sidecar and its reference upstream
//! both check with these functions, so they refuse exactly the same inputs.
//!
//! - An idempotency key is 1 to [`MAX_IDEMPOTENCY_KEY_BYTES`] bytes (any bytes: the key is
//!   compared, never interpreted).
//! - A batch holds 1 to [`MAX_BATCH_ITEMS`] transactions: the batcher's guard, so a batch
//!   larger than any sidecar may send is refused rather than applied.
//!
//! ```
//! use heidi_core::txn_check::{check_batch_len, check_idempotency_key, KeyError};
//! assert_eq!(check_idempotency_key(b""), Err(KeyError::Empty));
//! assert!(check_idempotency_key(b"order-17").is_ok());
//! assert!(check_batch_len(8).is_ok());
//! assert!(check_batch_len(9).is_err());
//! ```

use crate::batcher::MAX_BATCH_ITEMS;
use core::fmt;

/// The longest idempotency key accepted, in bytes (the proto's documented limit).
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;

/// Why an idempotency key is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KeyError {
    /// The key is empty: retries could not be recognised.
    Empty,
    /// The key is longer than [`MAX_IDEMPOTENCY_KEY_BYTES`].
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => f.write_str("idempotency key is empty"),
            KeyError::TooLong { len } => write!(
                f,
                "idempotency key is {len} bytes, more than {MAX_IDEMPOTENCY_KEY_BYTES}"
            ),
        }
    }
}

impl core::error::Error for KeyError {}

/// Why a batch's length is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BatchLenError {
    /// The batch holds no transaction.
    Empty,
    /// The batch holds more than [`MAX_BATCH_ITEMS`] transactions.
    TooLarge {
        /// How many it holds.
        len: usize,
    },
}

impl fmt::Display for BatchLenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchLenError::Empty => f.write_str("batch holds no transaction"),
            BatchLenError::TooLarge { len } => write!(
                f,
                "batch holds {len} transactions, more than {MAX_BATCH_ITEMS}"
            ),
        }
    }
}

impl core::error::Error for BatchLenError {}

/// Checks an idempotency key: 1 to [`MAX_IDEMPOTENCY_KEY_BYTES`] bytes.
pub fn check_idempotency_key(key: &[u8]) -> Result<(), KeyError> {
    match key.len() {
        0 => Err(KeyError::Empty),
        len if len > MAX_IDEMPOTENCY_KEY_BYTES => Err(KeyError::TooLong { len }),
        _ => Ok(()),
    }
}

/// Checks a batch's length: 1 to [`MAX_BATCH_ITEMS`] transactions.
pub fn check_batch_len(len: usize) -> Result<(), BatchLenError> {
    match len {
        0 => Err(BatchLenError::Empty),
        len if len > MAX_BATCH_ITEMS => Err(BatchLenError::TooLarge { len }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_limits_are_reached() {
        assert_eq!(check_idempotency_key(b""), Err(KeyError::Empty));
        assert_eq!(check_idempotency_key(b"k"), Ok(()));
        let long = [b'k'; MAX_IDEMPOTENCY_KEY_BYTES + 1];
        assert_eq!(
            check_idempotency_key(&long[..MAX_IDEMPOTENCY_KEY_BYTES]),
            Ok(())
        );
        assert_eq!(
            check_idempotency_key(&long),
            Err(KeyError::TooLong { len: 129 })
        );
    }

    #[test]
    fn batch_limits_are_reached() {
        assert_eq!(check_batch_len(0), Err(BatchLenError::Empty));
        assert_eq!(check_batch_len(1), Ok(()));
        assert_eq!(check_batch_len(MAX_BATCH_ITEMS), Ok(()));
        assert_eq!(
            check_batch_len(MAX_BATCH_ITEMS + 1),
            Err(BatchLenError::TooLarge { len: 9 })
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(KeyError::Empty.to_string(), "idempotency key is empty");
        assert!(
            KeyError::TooLong { len: 200 }
                .to_string()
                .contains("200 bytes")
        );
        assert!(
            BatchLenError::TooLarge { len: 9 }
                .to_string()
                .contains("more than 8")
        );
        assert_eq!(
            BatchLenError::Empty.to_string(),
            "batch holds no transaction"
        );
    }
}
