//! Arbitrary event fields through the chain writer, then the verifier. Invariants: every line
//! the encoder accepts verifies (it refuses names that are not identifiers), with the chain
//! intact and the seal matching; no panic on any text (control characters, non-ASCII,
//! secrets, huge messages).
#![no_main]

use arbitrary::Arbitrary;
use heidi_core::WallTime;
use heidi_core::journal::{ChainWriter, Event, Level, MAX_LINE_BYTES, SealCheck, SealKey};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Fields<'a> {
    ts_ms: u64,
    round: u32,
    stage: &'a str,
    level: u8,
    event_type: &'a str,
    message: &'a str,
    counters: Vec<(&'a str, i64)>,
    artifacts: Vec<&'a str>,
    error: Option<&'a str>,
}

/// A valid journal name (`[A-Za-z0-9_.:-]`, 1..=64 bytes) from arbitrary text: the encoder
/// refuses anything else, and the target wants lines that reach the verifier.
fn name(text: &str, buf: &mut String) {
    buf.clear();
    buf.extend(
        text.chars()
            .filter(|c| c.is_ascii_alphanumeric() || "_.:-".contains(*c))
            .take(64),
    );
    if buf.is_empty() {
        buf.push('x');
    }
}

fuzz_target!(|events: Vec<Fields<'_>>| {
    let key = SealKey::new(b"fuzz seal key, at least 32 bytes").expect("32+ bytes");
    let mut chain = ChainWriter::new("fuzz-run").expect("valid run id");
    let mut journal = Vec::new();
    let mut line = vec![0u8; MAX_LINE_BYTES];
    let (mut stage, mut event_type) = (String::new(), String::new());
    let mut counter_names: Vec<String> = Vec::new();
    for f in events.iter().take(64) {
        name(f.stage, &mut stage);
        name(f.event_type, &mut event_type);
        counter_names.resize(f.counters.len(), String::new());
        for (buf, (text, _)) in counter_names.iter_mut().zip(&f.counters) {
            name(text, buf);
        }
        let counters: Vec<(&str, i64)> = counter_names
            .iter()
            .zip(&f.counters)
            .map(|(n, &(_, v))| (n.as_str(), v))
            .collect();
        let level = match f.level % 4 {
            0 => Level::Debug,
            1 => Level::Info,
            2 => Level::Warning,
            _ => Level::Error,
        };
        let event = Event {
            ts: WallTime::from_unix_millis(f.ts_ms % 253_402_300_800_000),
            round: f.round,
            stage: &stage,
            level,
            event_type: &event_type,
            message: f.message,
            counters_delta: &counters,
            usage_delta: &[],
            artifact_paths: &f.artifacts,
            error: f.error,
        };
        if let Ok(bytes) = chain.append(&event, &mut line) {
            journal.extend_from_slice(bytes);
        }
    }
    let mut check = SealCheck::new(&key);
    let mut seal = [0u8; heidi_core::journal::SEAL_MAX_BYTES];
    if let Some(s) = chain.seal(&key) {
        let n = s.encode(&mut seal).expect("a seal fits");
        check.add_record(&seal[..n]).expect("our own seal parses");
    }
    let mut verifier = check.verifier();
    verifier
        .feed(&journal)
        .expect("every encoded line verifies");
    let verified = verifier.finish().expect("no torn line");
    assert_eq!(verified.lines, chain.lines());
    let report = check.check(&verified).expect("the seal matches");
    assert_eq!(report.unsealed_lines, 0);
});
