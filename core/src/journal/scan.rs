//! The journal's schema check: one line (without its `\n`) against the fixed key order and
//! value types, in one pass over the shared compact-mode JSON [`Scanner`], with no recursion
//! and no allocation. It never panics on any input.
//!
//! It accepts what the encoder writes and nothing else it could tell apart: the compact
//! scanner refuses escapes the encoder never writes, `level` is one of the four names,
//! `stage`, `event_type` and delta names are valid names, integers have no `-0`.

use super::chain::is_valid_run_id;
use super::event::{Level, is_valid_name};
use super::verify::FaultKind;
use crate::json::scan::{ScanError, Scanner};

/// The parts of a well-formed line the chain check and the readers of events need (raw
/// JSON string bodies, and `counters_delta`'s object as written).
pub(crate) struct Scanned<'l> {
    pub(crate) run_id: &'l [u8],
    pub(crate) prev_hash: &'l [u8],
    pub(crate) event_type: &'l [u8],
    pub(crate) counters: &'l [u8],
}

/// Checks `line` and returns its run id and `prev_hash`, or the first fault.
pub(crate) fn scan(line: &[u8]) -> Result<Scanned<'_>, FaultKind> {
    if core::str::from_utf8(line).is_err() {
        return Err(FaultKind::InvalidJson);
    }
    let c = &mut Scanner::compact(line);
    c.expect(b'{').map_err(invalid)?;
    key(c, b"event_version")?;
    typed(
        c,
        |c| (c.string().ok()? == b"1.0").then_some(()),
        FaultKind::WrongVersion,
    )?;
    next_key(c, b"ts")?;
    typed(
        c,
        |c| valid_ts(c.string().ok()?).then_some(()),
        FaultKind::BadTs,
    )?;
    next_key(c, b"run_id")?;
    let run_id = typed(
        c,
        |c| c.string().ok().filter(|s| is_valid_run_id(s)),
        FaultKind::BadField,
    )?;
    next_key(c, b"round")?;
    typed(
        c,
        |c| uint(c).filter(|&n| n <= u64::from(u32::MAX)),
        FaultKind::BadField,
    )?;
    next_key(c, b"stage")?;
    typed(c, name, FaultKind::BadField)?;
    next_key(c, b"level")?;
    typed(c, level, FaultKind::BadField)?;
    next_key(c, b"event_type")?;
    let event_type = typed(c, name, FaultKind::BadField)?;
    next_key(c, b"message")?;
    typed(c, |c| c.string().ok(), FaultKind::BadField)?;
    next_key(c, b"counters_delta")?;
    let from = c.pos();
    typed(c, int_map, FaultKind::BadField)?;
    let counters = &line[from..c.pos()];
    next_key(c, b"usage_delta")?;
    typed(c, int_map, FaultKind::BadField)?;
    next_key(c, b"artifact_paths")?;
    typed(c, string_list, FaultKind::BadField)?;
    next_key(c, b"error")?;
    typed(c, null_or_string, FaultKind::BadField)?;
    next_key(c, b"prev_hash")?;
    let prev_hash = typed(c, |c| c.string().ok(), FaultKind::BadField)?;
    if c.peek() == Some(b',') {
        return Err(FaultKind::WrongKeys);
    }
    c.expect(b'}').map_err(invalid)?;
    c.end().map_err(invalid)?;
    Ok(Scanned {
        run_id,
        prev_hash,
        event_type,
        counters,
    })
}

/// Any syntax error, or nesting deeper than the scanner's limit, is invalid JSON.
fn invalid(_: ScanError) -> FaultKind {
    FaultKind::InvalidJson
}

/// `"name":` where `name` must be `want`.
fn key(c: &mut Scanner<'_>, want: &[u8]) -> Result<(), FaultKind> {
    if c.peek() == Some(b'}') {
        return Err(FaultKind::WrongKeys);
    }
    let got = c.string().map_err(invalid)?;
    c.expect(b':').map_err(invalid)?;
    if got != want {
        return Err(FaultKind::WrongKeys);
    }
    Ok(())
}

/// `,"name":` after a value.
fn next_key(c: &mut Scanner<'_>, want: &[u8]) -> Result<(), FaultKind> {
    match c.peek() {
        Some(b',') => c.expect(b',').map_err(invalid)?,
        Some(b'}') => return Err(FaultKind::WrongKeys),
        _ => return Err(FaultKind::InvalidJson),
    }
    key(c, want)
}

/// Parses a value with `parse`; if that fails, the value is skipped as generic JSON and
/// is `wrong` (or invalid JSON if it is not JSON at all).
fn typed<'l, T>(
    c: &mut Scanner<'l>,
    parse: impl FnOnce(&mut Scanner<'l>) -> Option<T>,
    wrong: FaultKind,
) -> Result<T, FaultKind> {
    let start = *c;
    if let Some(v) = parse(c) {
        return Ok(v);
    }
    *c = start;
    c.value().map_err(invalid)?;
    Err(wrong)
}

/// A non-negative integer without leading zeros, fraction or exponent.
fn uint(c: &mut Scanner<'_>) -> Option<u64> {
    let text = c.digits();
    let n = text.len();
    if n == 0 || n > 20 || (n > 1 && text[0] == b'0') {
        return None;
    }
    if matches!(c.peek(), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    text.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// A valid name ([`is_valid_name`]): what the encoder writes for `stage`, `event_type` and
/// delta names.
fn name<'l>(c: &mut Scanner<'l>) -> Option<&'l [u8]> {
    c.string().ok().filter(|s| is_valid_name(s))
}

/// The non-negative counter `want` of a counters object [`scan`] accepted (`None` when
/// absent or negative).
pub(crate) fn counter(counters: &[u8], want: &[u8]) -> Option<u64> {
    let c = &mut Scanner::compact(counters);
    c.expect(b'{').ok()?;
    if c.eat(b'}') {
        return None;
    }
    loop {
        let key = c.string().ok()?;
        c.expect(b':').ok()?;
        let negative = c.eat(b'-');
        let value = uint(c)?;
        if key == want && !negative {
            return Some(value);
        }
        if !c.comma_or_close(b'}').ok()? {
            return None;
        }
    }
}

/// One of the four level names.
fn level(c: &mut Scanner<'_>) -> Option<()> {
    let got = c.string().ok()?;
    let all = [Level::Debug, Level::Info, Level::Warning, Level::Error];
    all.iter()
        .any(|l| l.as_str().as_bytes() == got)
        .then_some(())
}

/// An integer that fits in `i64`, as the encoder writes it (no `-0`).
fn int(c: &mut Scanner<'_>) -> Option<()> {
    let negative = c.eat(b'-');
    let magnitude = uint(c)?;
    if negative && magnitude == 0 {
        return None;
    }
    let limit = if negative {
        1u64 << 63
    } else {
        (1u64 << 63) - 1
    };
    (magnitude <= limit).then_some(())
}

/// `open item (, item)* close` or `open close`.
fn list(
    c: &mut Scanner<'_>,
    [open, close]: [u8; 2],
    mut item: impl FnMut(&mut Scanner<'_>) -> Option<()>,
) -> Option<()> {
    c.eat(open).then_some(())?;
    if c.eat(close) {
        return Some(());
    }
    loop {
        item(c)?;
        if c.eat(close) {
            return Some(());
        }
        c.eat(b',').then_some(())?;
    }
}

/// `{"name":integer,…}`.
fn int_map(c: &mut Scanner<'_>) -> Option<()> {
    list(c, *b"{}", |c| {
        name(c)?;
        c.eat(b':').then_some(())?;
        int(c)
    })
}

/// `["text",…]`.
fn string_list(c: &mut Scanner<'_>) -> Option<()> {
    list(c, *b"[]", |c| c.string().ok().map(drop))
}

fn null_or_string(c: &mut Scanner<'_>) -> Option<()> {
    if c.literal(b"null").is_ok() {
        return Some(());
    }
    c.string().ok().map(drop)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` with a real calendar date and time of day.
fn valid_ts(ts: &[u8]) -> bool {
    const SHAPE: &[u8; 24] = b"dddd-dd-ddTdd:dd:dd.dddZ";
    if ts.len() != 24
        || !ts
            .iter()
            .zip(SHAPE)
            .all(|(&b, &s)| (s == b'd' && b.is_ascii_digit()) || b == s)
    {
        return false;
    }
    let num = |from: usize, to: usize| {
        ts[from..to]
            .iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'))
    };
    let (year, month, day) = (num(0, 4), num(5, 7), num(8, 10));
    (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && num(11, 13) <= 23
        && num(14, 16) <= 59
        && num(17, 19) <= 59
}

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::scan::JSON_MAX_DEPTH;

    #[test]
    fn ts_rules() {
        assert!(valid_ts(b"2026-02-20T07:45:38.307Z"));
        assert!(valid_ts(b"2024-02-29T23:59:59.999Z"));
        for bad in [
            &b"2025-02-29T00:00:00.000Z"[..],
            b"2026-13-01T00:00:00.000Z",
            b"2026-00-01T00:00:00.000Z",
            b"2026-04-31T00:00:00.000Z",
            b"2026-01-01T24:00:00.000Z",
            b"2026-01-01T00:60:00.000Z",
            b"2026-01-01T00:00:60.000Z",
            b"2026-01-01T00:00:00.000",
            b"2026-01-01 00:00:00.000Z",
            b"2026-01-01T00:00:00Z",
        ] {
            assert!(!valid_ts(bad), "{:?}", core::str::from_utf8(bad));
        }
    }

    /// A well-formed line whose `artifact_paths` value is `paths`, and what it scans to.
    fn scan_with_paths(paths: &[u8]) -> Result<(), FaultKind> {
        let mut line = heapless::Vec::<u8, 512>::new();
        for part in [
            &br#"{"event_version":"1.0","ts":"2026-02-20T07:45:38.307Z","run_id":"r","round":1,"#[..],
            br#""stage":"s","level":"info","event_type":"e","message":"m","counters_delta":{},"#,
            br#""usage_delta":{},"artifact_paths":"#,
            paths,
            br#","error":null,"prev_hash":"r"}"#,
        ] {
            line.extend_from_slice(part).unwrap();
        }
        scan(&line).map(|s| assert_eq!((s.run_id, s.prev_hash), (&b"r"[..], &b"r"[..])))
    }

    #[test]
    fn skipped_values_are_compact_and_depth_limited() {
        assert_eq!(scan_with_paths(br#"["a","b"]"#), Ok(()));
        assert_eq!(scan_with_paths(b"[1]"), Err(FaultKind::BadField));
        assert_eq!(
            scan_with_paths(br#"["a", "b"]"#),
            Err(FaultKind::InvalidJson)
        );
        let mut nested = [0u8; 2 * (JSON_MAX_DEPTH + 1)];
        let (open, close) = nested.split_at_mut(JSON_MAX_DEPTH + 1);
        open.fill(b'[');
        close.fill(b']');
        let at_limit = &nested[1..nested.len() - 1];
        assert_eq!(scan_with_paths(at_limit), Err(FaultKind::BadField));
        assert_eq!(scan_with_paths(&nested), Err(FaultKind::InvalidJson));
    }
}
