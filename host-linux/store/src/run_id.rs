//! Generated run ids.

use heidi_core::WallTime;

/// `run-YYYYMMDD-HHMMSS-xxxx` from the wall time and 4 random hex digits.
pub(super) fn generate(now: WallTime, random_hex: &str) -> String {
    let t = now.to_utc();
    format!(
        "run-{:04}{:02}{:02}-{:02}{:02}{:02}-{random_hex}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use heidi_core::journal::is_valid_run_id;

    #[test]
    fn generated_run_id_has_the_documented_form() {
        let id = generate(WallTime::from_unix_millis(1_771_573_538_307), "ab12");
        assert_eq!(id, "run-20260220-074538-ab12");
        assert!(is_valid_run_id(id.as_bytes()));
    }
}
