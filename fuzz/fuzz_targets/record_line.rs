//! Arbitrary bytes as a line of `idempotency.jsonl` read back at start (a file anyone with
//! access to the output directory can corrupt). Invariants: no panic; a line read as a record
//! says the same thing written again: its key, its state, token, outcome and response, and
//! whether it is a release.
#![no_main]

use heidi_core::Instant;
use heidi_core::idempotency::{Outcome, Saved};
use heidi_core::service::{
    IdemRecord, LineScratch, LineState, RecordLine, WallAnchor, read_record_line, write_record_line,
};
use libfuzzer_sys::fuzz_target;

const ANCHOR: WallAnchor = WallAnchor {
    now: Instant::from_secs(1_000_000),
    wall_ms: 1_800_000_000_000,
};

/// The record a line holds, as the service would hand it to be written.
fn record<'a>(line: &RecordLine<'a>) -> IdemRecord<'a> {
    match (line.state, line.saved(ANCHOR)) {
        (LineState::Released, None) => IdemRecord::Released { key: line.key },
        (
            LineState::InProgress { token, .. },
            Some(Saved::InProgress {
                since, expires_at, ..
            }),
        ) => IdemRecord::Begun {
            key: line.key,
            token,
            since,
            expires_at,
        },
        (
            LineState::Done {
                token,
                outcome,
                response,
                ..
            },
            Some(Saved::Done {
                completed_at,
                expires_at,
                ..
            }),
        ) => IdemRecord::Done {
            key: line.key,
            token,
            digest: match outcome {
                Outcome::Success(d) => Some(d),
                Outcome::Failure => None,
            },
            response,
            completed_at,
            expires_at,
        },
        (state, saved) => {
            panic!("a line's state and its saved record disagree: {state:?} {saved:?}")
        }
    }
}

/// What must survive a write and a read: everything but the times (which the wall clock's
/// conversion may saturate).
fn shape(line: &RecordLine<'_>) -> (String, u8, Option<u64>, Option<Outcome>, Option<String>) {
    let (kind, token, outcome) = match line.state {
        LineState::InProgress { token, .. } => (0, Some(token.get()), None),
        LineState::Done { token, outcome, .. } => (1, Some(token.get()), Some(outcome)),
        LineState::Released => (2, None, None),
    };
    let response = line.response().map(str::to_owned);
    (line.key.to_owned(), kind, token, outcome, response)
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let mut scratch = Box::new(LineScratch::new());
    let Ok(line) = read_record_line(text, &mut scratch) else {
        return;
    };
    assert_eq!(line.life().is_release(), line.state == LineState::Released);
    let mut written = String::new();
    write_record_line(&record(&line), ANCHOR, &mut written).expect("a String takes any line");
    assert!(written.ends_with('\n') && written.matches('\n').count() == 1);
    let mut again = Box::new(LineScratch::new());
    let back = read_record_line(written.trim_end_matches('\n'), &mut again)
        .expect("a written line reads back");
    assert_eq!(shape(&back), shape(&line), "{written}");
});
