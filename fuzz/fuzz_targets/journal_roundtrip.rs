//! Arbitrary event fields through the chain writer, then the verifier. Invariants: every line
//! the encoder accepts verifies, with the chain intact and the seal matching; no panic on any
//! text (control characters, non-ASCII, secrets, huge messages).
#![no_main]

use arbitrary::Arbitrary;
use heidi_core::WallTime;
use heidi_core::journal::{ChainWriter, Event, Level, MAX_LINE_BYTES, SealCheck};
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

fuzz_target!(|events: Vec<Fields<'_>>| {
    let key = b"fuzz seal key";
    let mut chain = ChainWriter::new("fuzz-run").expect("valid run id");
    let mut journal = Vec::new();
    let mut line = vec![0u8; MAX_LINE_BYTES];
    for f in events.iter().take(64) {
        let level = match f.level % 4 {
            0 => Level::Debug,
            1 => Level::Info,
            2 => Level::Warning,
            _ => Level::Error,
        };
        let event = Event {
            ts: WallTime::from_unix_millis(f.ts_ms % 253_402_300_800_000),
            round: f.round,
            stage: f.stage,
            level,
            event_type: f.event_type,
            message: f.message,
            counters_delta: &f.counters,
            usage_delta: &[],
            artifact_paths: &f.artifacts,
            error: f.error,
        };
        if let Ok(bytes) = chain.append(&event, &mut line) {
            journal.extend_from_slice(bytes);
        }
    }
    let mut check = SealCheck::new(key);
    let mut seal = [0u8; heidi_core::journal::SEAL_MAX_BYTES];
    if let Some(s) = chain.seal(key) {
        let n = s.encode(&mut seal).expect("a seal fits");
        check.add_record(&seal[..n]).expect("our own seal parses");
    }
    let mut verifier = check.verifier();
    verifier.feed(&journal).expect("every encoded line verifies");
    let verified = verifier.finish().expect("no torn line");
    assert_eq!(verified.lines, chain.lines());
    let report = check.check(&verified).expect("the seal matches");
    assert_eq!(report.unsealed_lines, 0);
});
