extern crate std;

use super::*;
use std::format;
use std::string::String;

const WALL: u64 = 1_800_000_000_000;
const ANCHOR: WallAnchor = WallAnchor {
    now: Instant::from_secs(10),
    wall_ms: WALL,
};

fn line_of(record: &IdemRecord<'_>) -> String {
    let mut line = String::new();
    write_record_line(record, ANCHOR, &mut line).unwrap();
    line
}

fn read(line: &str) -> Result<(String, LineState<'static>, Option<String>), BadLine> {
    let mut scratch = LineScratch::new();
    let r = read_record_line(line, &mut scratch)?;
    let state = match r.state {
        LineState::Done {
            token,
            outcome,
            completed_at_ms,
            expires_at_ms,
            ..
        } => LineState::Done {
            token,
            outcome,
            response: None,
            completed_at_ms,
            expires_at_ms,
        },
        LineState::InProgress {
            token,
            since_ms,
            expires_at_ms,
        } => LineState::InProgress {
            token,
            since_ms,
            expires_at_ms,
        },
        LineState::Released => LineState::Released,
    };
    Ok((r.key.into(), state, r.response().map(String::from)))
}

#[test]
fn every_record_goes_to_a_line_and_back() {
    let digest = [0xab; 32];
    let records = [
        IdemRecord::Begun {
            key: "k",
            token: Token::from_raw(7),
            since: Instant::from_secs(10),
            expires_at: Instant::from_secs(310),
        },
        IdemRecord::Done {
            key: "a \"quoted\"\nkey ✓",
            token: Token::from_raw(u64::MAX),
            digest: Some(digest),
            response: Some("{\"rows\":3}\t\u{1}"),
            completed_at: Instant::from_secs(12),
            expires_at: Instant::from_secs(86_412),
        },
        IdemRecord::Done {
            key: "f",
            token: Token::from_raw(9),
            digest: None,
            response: None,
            completed_at: Instant::from_secs(3),
            expires_at: Instant::from_secs(4),
        },
        IdemRecord::Released { key: "r" },
    ];
    for record in &records {
        let line = line_of(record);
        assert!(
            line.ends_with("}\n") && line.matches('\n').count() == 1,
            "{line}"
        );
        let mut scratch = LineScratch::new();
        let back = read_record_line(line.trim_end_matches('\n'), &mut scratch).unwrap();
        assert_eq!(back.life(), LineLife::of(record, ANCHOR), "{line}");
        match *record {
            IdemRecord::Begun {
                key,
                token,
                since,
                expires_at,
            } => {
                assert_eq!(back.key, key);
                let saved = Saved::InProgress {
                    token,
                    since,
                    expires_at,
                };
                assert_eq!(back.saved(ANCHOR), Some(saved));
            }
            IdemRecord::Done {
                key,
                token,
                digest,
                response,
                completed_at,
                expires_at,
            } => {
                assert_eq!((back.key, back.response()), (key, response));
                let outcome = digest.map_or(Outcome::Failure, Outcome::Success);
                let saved = Saved::Done {
                    token,
                    outcome,
                    completed_at,
                    expires_at,
                };
                assert_eq!(back.saved(ANCHOR), Some(saved));
            }
            IdemRecord::Released { key } => {
                assert_eq!(back.key, key);
                assert!(back.life().is_release() && back.saved(ANCHOR).is_none());
            }
        }
    }
    assert_eq!(
        line_of(&records[3]),
        "{\"state\":\"released\",\"key\":\"r\"}\n"
    );
    assert_eq!(
        line_of(&records[2]),
        format!(
            "{{\"state\":\"done\",\"key\":\"f\",\"token\":\"9\",\"completed_at_ms\":{},\"expires_at_ms\":{}}}\n",
            WALL - 7_000,
            WALL - 6_000
        )
    );
}

#[test]
fn lines_the_earlier_writer_wrote_are_read() {
    // serde_json's output of the record type this module replaced: nulls, escapes, a token
    // as a string, the members in any order.
    let hex = "cd".repeat(32);
    let done = format!(
        r#"{{"expires_at_ms":5,"state":"done","key":"\u00e9\"k","token":"12","digest":"{hex}","response":"a\nb\u0001","completed_at_ms":4}}"#
    );
    let (key, state, response) = read(&done).unwrap();
    assert_eq!(key, "é\"k");
    assert_eq!(response.as_deref(), Some("a\nb\u{1}"));
    assert_eq!(
        state,
        LineState::Done {
            token: Token::from_raw(12),
            outcome: Outcome::Success([0xcd; 32]),
            response: None,
            completed_at_ms: 4,
            expires_at_ms: 5
        }
    );
    let failure = r#"{"state":"done","key":"k","token":"3","digest":null,"response":null,"completed_at_ms":1,"expires_at_ms":2}"#;
    assert!(matches!(
        read(failure).unwrap().1,
        LineState::Done {
            outcome: Outcome::Failure,
            ..
        }
    ));
    let begun = r#"{"state":"in_progress","key":"k","token":"3","since_ms":1,"expires_at_ms":2}"#;
    assert!(read(begun).is_ok());
    assert!(read(r#"{"key":"k","state":"released"}"#).is_ok());
    // An empty response is a response.
    let empty = r#"{"state":"done","key":"k","token":"3","response":"","completed_at_ms":1,"expires_at_ms":2}"#;
    assert_eq!(read(empty).unwrap().2.as_deref(), Some(""));
}

#[test]
fn what_is_not_a_record_is_refused() {
    let long_key = "k".repeat(KEY_MAX_BYTES + 1);
    let long_response = "r".repeat(IDEMPOTENCY_RESPONSE_MAX_BYTES + 1);
    let bad = [
        String::new(),
        "not json".into(),
        "[1]".into(),
        r#"{"state":"released"}"#.into(),
        r#"{"state":"gone","key":"k"}"#.into(),
        r#"{"state":"released","key":""}"#.into(),
        r#"{"state":"released","key":"k","token":"1"}"#.into(),
        r#"{"state":"released","key":"k","extra":1}"#.into(),
        r#"{"state":"released","key":"k","key":"j"}"#.into(),
        r#"{"state":"released","key":"k\x"}"#.into(),
        r#"{"state":"in_progress","key":"k","token":"0","since_ms":1,"expires_at_ms":2}"#.into(),
        r#"{"state":"in_progress","key":"k","token":"x","since_ms":1,"expires_at_ms":2}"#.into(),
        r#"{"state":"in_progress","key":"k","token":"3","since_ms":-1,"expires_at_ms":2}"#.into(),
        r#"{"state":"in_progress","key":"k","token":"3","expires_at_ms":2}"#.into(),
        r#"{"state":"in_progress","key":"k","token":"3","since_ms":1,"expires_at_ms":2,"digest":"ab"}"#.into(),
        r#"{"state":"done","key":"k","token":"3","digest":"abc","completed_at_ms":1,"expires_at_ms":2}"#.into(),
        r#"{"state":"done","key":"k","token":"3","response":7,"completed_at_ms":1,"expires_at_ms":2}"#.into(),
        r#"{"state":"done","key":"k","token":"3","since_ms":1,"completed_at_ms":1,"expires_at_ms":2}"#.into(),
        format!(r#"{{"state":"released","key":"{long_key}"}}"#),
        format!(
            r#"{{"state":"done","key":"k","token":"3","response":"{long_response}","completed_at_ms":1,"expires_at_ms":2}}"#
        ),
    ];
    for line in &bad {
        assert_eq!(read(line).map(|_| ()), Err(BadLine), "{line}");
    }
    let longest = format!(r#"{{"state":"released","key":"{}"}}"#, &long_key[1..]);
    assert!(read(&longest).is_ok());
}

#[test]
fn wall_times_convert_both_ways_around_now() {
    for t in [
        Instant::from_secs(3),
        ANCHOR.now,
        Instant::from_secs(86_410),
    ] {
        assert_eq!(ANCHOR.instant(ANCHOR.wall_ms(t)), t);
    }
    let late = WallAnchor {
        now: ANCHOR.now,
        wall_ms: u64::MAX - 5,
    };
    assert_eq!(late.wall_ms(Instant::MAX), u64::MAX, "saturates");
    // Before the clock's start: its start.
    assert_eq!(ANCHOR.instant(WALL - 60_000), Instant::ZERO);
}

#[test]
fn liveness_and_the_file_bounds() {
    let mut scratch = LineScratch::new();
    let line = r#"{"state":"in_progress","key":"k","token":"3","since_ms":1,"expires_at_ms":20}"#;
    let r = read_record_line(line, &mut scratch).unwrap();
    assert!(r.life().is_live_at(19) && !r.life().is_live_at(20));
    assert_eq!(r.life().expires_at_ms(), Some(20));
    let b = FileBounds::new(0);
    assert_eq!(
        (b.keep(), b.load_prune_above(), b.prune_above(0)),
        (1, 2, 2)
    );
    let b = FileBounds::new(100);
    assert_eq!((b.keep(), b.load_prune_above()), (100, 200));
    assert_eq!((b.prune_above(50), b.prune_above(300)), (200, 600));
    assert!(!b.compact(COMPACT_MIN_LINES - 1, 10, 200));
    assert!(b.compact(COMPACT_MIN_LINES, 10, 200));
    assert!(!b.compact(COMPACT_MIN_LINES, 1_025, 2_050));
    assert!(b.compact(4_100, 1_025, 2_050));
    assert!(b.compact(10, 201, 200));
}
