//! A request's `timestamp` (seconds since the Unix epoch as a JSON number, e.g.
//! `1700000000.123`) to whole milliseconds, exactly and without floating point.
//!
//! Clients send a float (Python's `time.time()`), but the core holds no floats. Instead of
//! parsing an `f64` and multiplying (which turns `1700000000.123` into `…122.99…` and truncates
//! to the wrong millisecond), the decimal text is shifted by three places and truncated toward
//! zero: `1700000000.1239` → `1700000000123`, `1.7e9` → `1700000000000`.

/// Milliseconds in the JSON number `text` of seconds, truncated toward zero.
///
/// `text` must be a valid JSON number (the scanner checked it). `None` when it is negative
/// (other than a zero) or the result does not fit in a `u64`.
pub(crate) fn seconds_to_millis(text: &[u8]) -> Option<u64> {
    let (mantissa, exponent) = match text.iter().position(|&b| b == b'e' || b == b'E') {
        Some(at) => (&text[..at], exponent(&text[at + 1..])),
        None => (text, 0),
    };
    let (negative, mantissa) = match mantissa.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, mantissa),
    };
    let int_digits = mantissa.iter().take_while(|b| b.is_ascii_digit()).count() as i64;
    let digits = || mantissa.iter().copied().filter(u8::is_ascii_digit);
    let total = digits().count() as i64;
    // Digits before the millisecond point: the decimal point moved right by `exponent + 3`.
    let whole = int_digits.saturating_add(exponent).saturating_add(3);
    let used = whole.clamp(0, total) as usize;
    let mut ms = 0u64;
    for d in digits().take(used) {
        ms = ms.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if ms == 0 {
        // Zero, or every significant digit is below a millisecond.
        return (!negative || digits().all(|d| d == b'0')).then_some(0);
    }
    if negative {
        return None;
    }
    let zeros = u32::try_from(whole - used as i64).ok()?;
    ms.checked_mul(10u64.checked_pow(zeros)?)
}

/// The exponent's value, saturated far beyond any useful range.
fn exponent(text: &[u8]) -> i64 {
    let (sign, digits) = match text.split_first() {
        Some((b'-', rest)) => (-1, rest),
        Some((b'+', rest)) => (1, rest),
        _ => (1, text),
    };
    let magnitude = digits.iter().fold(0i64, |acc, &d| {
        (acc * 10 + i64::from(d - b'0')).min(1 << 32)
    });
    sign * magnitude
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> Option<u64> {
        seconds_to_millis(s.as_bytes())
    }

    #[test]
    fn converts_exactly_and_truncates() {
        assert_eq!(ms("1700000000.123"), Some(1_700_000_000_123));
        assert_eq!(ms("1700000000.1239999"), Some(1_700_000_000_123));
        assert_eq!(ms("1700000000"), Some(1_700_000_000_000));
        assert_eq!(ms("1.7e9"), Some(1_700_000_000_000));
        assert_eq!(ms("17000000001234E-4"), Some(1_700_000_000_123));
        assert_eq!(ms("0.0005"), Some(0));
        assert_eq!(ms("0"), Some(0));
        assert_eq!(ms("-0.0"), Some(0));
        assert_eq!(ms("0e999999999999999999"), Some(0));
        assert_eq!(ms("1e-999999999999999999"), Some(0));
        assert_eq!(ms("0.001"), Some(1));
        assert_eq!(ms("12.5e-1"), Some(1250));
    }

    #[test]
    fn rejects_negative_and_overflowing() {
        assert_eq!(ms("-1"), None);
        assert_eq!(ms("-0.001"), None);
        assert_eq!(ms("1e17"), None);
        assert_eq!(ms("1e99999999999"), None);
        assert_eq!(ms("18446744073709551.615"), Some(u64::MAX));
        assert_eq!(ms("18446744073709551.616"), None);
    }
}
