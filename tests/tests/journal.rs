//! Property tests of the journal (`heidi_core::journal`): encoder, chain, verifier and seals.
//!
//! - A journal of 10,000 events encoded by the core verifies, in one piece and in odd chunks.
//! - `serde_json` (the independent oracle) parses every encoded line, with exactly the 13
//!   keys in order and the same field values as the event, for random events of any text.
//! - For random sealed journals, a single-byte change, a line deletion, a swap of two lines or
//!   an inserted line is detected at the right line: the first line that differs from the
//!   original, or the one after it when that line is a valid successor whose content changed
//!   (only the next `prev_hash` can tell); a change the chain cannot see is caught by the
//!   last seal (which covers every line). A cut tail is detected by the seal.
//! - A journal split into segments verifies from the boundary seal like the whole, and damage
//!   in the later segment is found at the same line.

use heidi_core::WallTime;
use heidi_core::journal::{
    ChainWriter, EncodeError, Event, Fault, FaultKind, Level, MAX_LINE_BYTES, NameField,
    SEAL_MAX_BYTES, SealCheck, SealFault, SealKey, Verified, WeakSealKey, encode_line,
};
use proptest::prelude::*;
use serde_json::Value;

const KEY: &[u8] = b"seal key held by the host, 32+ bytes";

fn key() -> SealKey {
    SealKey::new(KEY).unwrap()
}
const RUN: &str = "run-42";
const KEYS: [&str; 13] = [
    "event_version",
    "ts",
    "run_id",
    "round",
    "stage",
    "level",
    "event_type",
    "message",
    "counters_delta",
    "usage_delta",
    "artifact_paths",
    "error",
    "prev_hash",
];

/// An owned event, for strategies.
#[derive(Clone, Debug)]
struct Ev {
    ts_ms: u64,
    round: u32,
    stage: String,
    level: Level,
    event_type: String,
    message: String,
    counters: Vec<(String, i64)>,
    usage: Vec<(String, i64)>,
    paths: Vec<String>,
    error: Option<String>,
}

impl Ev {
    fn with<R>(&self, f: impl FnOnce(&Event<'_>) -> R) -> R {
        let counters: Vec<(&str, i64)> = self
            .counters
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        let usage: Vec<(&str, i64)> = self.usage.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let paths: Vec<&str> = self.paths.iter().map(String::as_str).collect();
        f(&Event {
            ts: WallTime::from_unix_millis(self.ts_ms),
            round: self.round,
            stage: &self.stage,
            level: self.level,
            event_type: &self.event_type,
            message: &self.message,
            counters_delta: &counters,
            usage_delta: &usage,
            artifact_paths: &paths,
            error: self.error.as_deref(),
        })
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_ ]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(40).collect()),
        proptest::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\n'),
                Just('\u{1b}'),
                Just('é'),
                Just('🚀'),
                Just('\u{0}'),
                Just('a')
            ],
            0..12
        )
        .prop_map(|v| v.into_iter().collect()),
    ]
}

/// A valid name (`stage`, `event_type`, delta names): `[A-Za-z0-9_.:-]{1,64}`, and not one
/// the redactor takes for a secret (such a line is refused: `SecretName`, tested in the
/// core's unit tests).
fn name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z_]{1,16}", "[A-Za-z0-9_.:-]{1,64}"]
        .prop_filter("a name the redactor takes for a secret", |n| {
            !heidi_core::journal::redact::holds_secret(n)
        })
}

/// An artifact path: text, or a path holding a credential that must not reach the line.
fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        text(),
        "[a-z/]{0,20}"
            .prop_map(|p| format!("https://x:ghp_16C7e42F292c6912E7710c838347Ae178B4a@h/{p}")),
    ]
}

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![
        Just(Level::Debug),
        Just(Level::Info),
        Just(Level::Warning),
        Just(Level::Error)
    ]
}

fn ev() -> impl Strategy<Value = Ev> {
    (
        (
            0u64..253_402_300_800_000,
            any::<u32>(),
            name(),
            level(),
            name(),
        ),
        (
            text(),
            proptest::collection::vec((name(), any::<i64>()), 0..4),
        ),
        proptest::collection::vec((name(), any::<i64>()), 0..4),
        proptest::collection::vec(path(), 0..4),
        proptest::option::of(text()),
    )
        .prop_map(
            |(
                (ts_ms, round, stage, level, event_type),
                (message, counters),
                usage,
                paths,
                error,
            )| Ev {
                ts_ms,
                round,
                stage,
                level,
                event_type,
                message,
                counters,
                usage,
                paths,
                error,
            },
        )
}

/// A journal as lines (each with its `\n`) and the chain after them.
fn encode(events: &[Ev]) -> (Vec<Vec<u8>>, ChainWriter) {
    let mut chain = ChainWriter::new(RUN).unwrap();
    let mut buf = vec![0u8; MAX_LINE_BYTES];
    let lines = events
        .iter()
        .map(|e| e.with(|e| chain.append(e, &mut buf).unwrap().to_vec()))
        .collect();
    (lines, chain)
}

fn seal_record(chain: &ChainWriter) -> Vec<u8> {
    let mut buf = [0u8; SEAL_MAX_BYTES];
    let n = chain.seal(&key()).unwrap().encode(&mut buf).unwrap();
    buf[..n].to_vec()
}

/// Verifies `bytes` against `seals`, fed in chunks of `chunk` bytes.
fn verify(seals: &[Vec<u8>], bytes: &[u8], chunk: usize) -> (Result<Verified, Fault>, SealCheck) {
    let mut check = SealCheck::new(&key());
    for s in seals {
        check.add_record(s).unwrap();
    }
    let mut v = check.verifier();
    for part in bytes.chunks(chunk.max(1)) {
        if v.feed(part).is_err() {
            break;
        }
    }
    (v.finish(), check)
}

#[test]
fn ten_thousand_events_verify() {
    let mut chain = ChainWriter::new("test_cpp_run_123").unwrap();
    let mut journal = Vec::new();
    let mut buf = [0u8; MAX_LINE_BYTES];
    for i in 0..10_000u32 {
        let e = Event {
            level: if i % 7 == 0 {
                Level::Warning
            } else {
                Level::Info
            },
            usage_delta: &[("memory_mb_delta", i64::from(i % 300)), ("cpu_pct", 42)],
            counters_delta: &[("rows", i64::from(i))],
            artifact_paths: &["out/round_1/data.jsonl"],
            error: (i % 100 == 99).then_some("exit status 1: \"boom\"\n\ttrace"),
            ..Event::info(
                WallTime::from_unix_millis(1_771_573_538_307 + u64::from(i) * 13),
                i / 1000 + 1,
                "generate",
                "stage_end",
                "Stage finished: ümlaut ✓",
            )
        };
        journal.extend_from_slice(chain.append(&e, &mut buf).unwrap());
    }
    let seals = vec![seal_record(&chain)];
    for chunk in [journal.len(), 4096, 997] {
        let (verified, check) = verify(&seals, &journal, chunk);
        let verified = verified.unwrap();
        assert_eq!(
            (verified.lines, verified.last_hash),
            (10_000, chain.last_hash())
        );
        let report = check.check(&verified).unwrap();
        assert_eq!((report.sealed_lines, report.unsealed_lines), (10_000, 0));
    }
}

fn oracle_matches(e: &Ev, line: &[u8], prev_hash: &str) {
    let v: Value = serde_json::from_slice(line).expect("serde_json parses every line");
    let obj = v.as_object().unwrap();
    // serde_json keeps keys sorted unless preserve_order; check order on the raw text instead.
    assert_eq!(obj.len(), 13);
    let text = std::str::from_utf8(line).unwrap();
    let mut at = 0;
    for k in KEYS {
        let needle = format!("\"{k}\":");
        let pos = text[at..]
            .find(&needle)
            .unwrap_or_else(|| panic!("{k} in order in {text}"));
        at += pos + needle.len();
    }
    assert_eq!(v["event_version"], "1.0");
    assert_eq!(v["ts"], WallTime::from_unix_millis(e.ts_ms).to_string());
    assert_eq!(v["run_id"], RUN);
    assert_eq!(v["round"], e.round);
    assert_eq!(v["stage"], e.stage.as_str());
    assert_eq!(v["level"], e.level.as_str());
    assert_eq!(v["event_type"], e.event_type.as_str());
    assert_eq!(v["message"], redacted(&e.message).as_str());
    let map = |entries: &[(String, i64)]| {
        // Duplicate names: JSON objects keep the last one, as serde_json does.
        let mut m = serde_json::Map::new();
        for (k, val) in entries {
            m.insert(k.clone(), Value::from(*val));
        }
        Value::Object(m)
    };
    assert_eq!(v["counters_delta"], map(&e.counters));
    assert_eq!(v["usage_delta"], map(&e.usage));
    let paths: Vec<String> = e.paths.iter().map(|p| redacted(p)).collect();
    assert_eq!(v["artifact_paths"], Value::from(paths));
    assert!(!std::str::from_utf8(line).unwrap().contains("ghp_16C7"));
    assert_eq!(
        v["error"],
        e.error
            .as_deref()
            .map_or(Value::Null, |s| Value::from(redacted(s)))
    );
    assert_eq!(v["prev_hash"], prev_hash);
}

fn redacted(s: &str) -> String {
    let mut out = [0u8; heidi_core::journal::redact::REDACTED_MAX_BYTES];
    heidi_core::journal::redact::redact(s, &mut out).to_owned()
}

/// How to damage a journal.
#[derive(Clone, Debug)]
enum Damage {
    /// XOR a nonzero mask into the byte at this index (modulo the length).
    Byte(usize, u8),
    Delete(usize),
    Swap(usize, usize),
    /// Insert a copy of line `.0` before line `.1` (both modulo, `.1` up to the end).
    Insert(usize, usize),
    /// Drop the last `.0` lines (at least one).
    Cut(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(i, m)| Damage::Byte(i, m)),
        1 => any::<usize>().prop_map(Damage::Delete),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Damage::Swap(a, b)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Damage::Insert(a, b)),
        1 => (1usize..4).prop_map(Damage::Cut),
    ]
}

fn apply(lines: &[Vec<u8>], d: &Damage) -> Option<Vec<Vec<u8>>> {
    let n = lines.len();
    let mut out = lines.to_vec();
    match *d {
        Damage::Byte(i, mask) => {
            let total: usize = lines.iter().map(Vec::len).sum();
            let mut i = i % total;
            let line = out.iter_mut().find(|l| {
                let here = i < l.len();
                if !here {
                    i -= l.len();
                }
                here
            })?;
            line[i] ^= mask;
        }
        Damage::Delete(i) => {
            out.remove(i % n);
        }
        Damage::Swap(a, b) => {
            let (a, b) = (a % n, b % n);
            if a == b {
                return None;
            }
            out.swap(a, b);
        }
        Damage::Insert(src, at) => out.insert(at % (n + 1), lines[src % n].clone()),
        Damage::Cut(k) => out.truncate(n.saturating_sub(k)),
    }
    Some(out)
}

proptest! {
    #![proptest_config(heidi_tests::proptest_config(64))]

    #[test]
    fn serde_json_reads_every_line_back(events in proptest::collection::vec(ev(), 1..6)) {
        let (lines, _) = encode(&events);
        let mut prev = RUN.to_owned();
        for (e, line) in events.iter().zip(&lines) {
            prop_assert!(line.ends_with(b"\n"));
            oracle_matches(e, line, &prev);
            prev = format!("{:x}", sha256(line));
        }
        // And the core verifier accepts them, fed one byte at a time.
        let (v, _) = verify(&[], &lines.concat(), 1);
        prop_assert_eq!(v.unwrap().lines, lines.len() as u64);
    }

    /// A journal split into segments at any line boundary, the tail resumed from a boundary
    /// seal over the head (`SealCheck::verifier_after`), verifies exactly like the whole, and
    /// a damaged tail is found at the same (global) line number.
    #[test]
    fn a_segment_resumed_after_its_boundary_verifies_like_the_whole(
        events in proptest::collection::vec(ev(), 2..8),
        split in 1usize..7,
        d in damage(),
    ) {
        let split = split.min(events.len() - 1);
        let (lines, _) = encode(&events);
        let (_, head_chain) = encode(&events[..split]);
        let boundary = head_chain.seal(&key()).unwrap();
        let mut check = SealCheck::new(&key());
        check.add_record(&seal_record(&head_chain)).unwrap();
        let tail = &lines[split..];
        let mut v = check.verifier_after(&boundary).unwrap();
        v.feed(&tail.concat()).unwrap();
        let whole = verify(&[], &lines.concat(), usize::MAX).0.unwrap();
        let resumed = v.finish().unwrap();
        prop_assert_eq!(
            (resumed.lines, resumed.last_hash, resumed.run_id()),
            (whole.lines, whole.last_hash, whole.run_id())
        );
        prop_assert_eq!(check.check(&resumed).unwrap().sealed_lines, split as u64);
        // Damage in the tail: the same line as in the whole journal.
        let Some(damaged_tail) = apply(tail, &d) else { return Ok(()); };
        prop_assume!(damaged_tail != tail);
        let mut damaged = lines[..split].to_vec();
        damaged.extend(damaged_tail.iter().cloned());
        let whole = verify(&[], &damaged.concat(), usize::MAX).0;
        let mut v = check.verifier_after(&boundary).unwrap();
        let _ = v.feed(&damaged_tail.concat());
        let resumed = v.finish();
        match (whole, resumed) {
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (Ok(a), Ok(b)) => prop_assert_eq!((a.lines, a.last_hash), (b.lines, b.last_hash)),
            (a, b) => prop_assert!(false, "whole {:?} vs resumed {:?}", a, b),
        }
    }

    #[test]
    fn damage_is_found_at_the_right_line(
        events in proptest::collection::vec(ev(), 1..8),
        seal_every in 1usize..5,
        d in damage(),
        chunk in prop_oneof![Just(1usize), 2usize..64, Just(usize::MAX)],
    ) {
        let (lines, _) = encode(&events);
        // Seal every few lines, and always the whole journal last.
        let mut chain = ChainWriter::new(RUN).unwrap();
        let mut buf = vec![0u8; MAX_LINE_BYTES];
        let mut seals = Vec::new();
        for (i, e) in events.iter().enumerate() {
            e.with(|e| chain.append(e, &mut buf).map(|_| ()).unwrap());
            if (i + 1) % seal_every == 0 || i + 1 == events.len() {
                seals.push(seal_record(&chain));
            }
        }
        let Some(damaged) = apply(&lines, &d) else { return Ok(()); };
        prop_assume!(damaged != lines);
        let (result, check) = verify(&seals, &damaged.concat(), chunk);
        // The first line that differs (1-based), by bytes.
        let first_diff = (0..damaged.len().max(lines.len()))
            .find(|&i| damaged.get(i) != lines.get(i))
            .unwrap() as u64 + 1;
        match result {
            Err(Fault { line, kind }) => {
                if line == first_diff + 1 {
                    // Only when that line was a valid successor whose content changed.
                    prop_assert_eq!(kind, FaultKind::BrokenPrevHash);
                    let l = &damaged[first_diff as usize - 1];
                    let changed: Value = serde_json::from_slice(l).unwrap();
                    let orig: Value = serde_json::from_slice(&lines[first_diff as usize - 1]).unwrap();
                    prop_assert_eq!(&changed["prev_hash"], &orig["prev_hash"]);
                } else {
                    prop_assert_eq!(line, first_diff, "{:?}", kind);
                }
                if kind == FaultKind::Torn {
                    prop_assert_eq!(line as usize, damaged.len());
                }
            }
            Ok(verified) => {
                // The chain is intact: only the seal can tell, at the last sealed line.
                let fault = check.check(&verified).unwrap_err();
                match fault {
                    SealFault::CutTail { journal_lines, sealed_lines } => {
                        prop_assert_eq!(journal_lines, damaged.len() as u64);
                        prop_assert_eq!(sealed_lines, lines.len() as u64);
                        prop_assert_eq!(first_diff, journal_lines + 1);
                    }
                    SealFault::Rewritten { line } => {
                        prop_assert_eq!(line, lines.len() as u64);
                        prop_assert_eq!(first_diff, line);
                    }
                    other => prop_assert!(false, "unexpected {:?}", other),
                }
            }
        }
    }
}

fn sha256(bytes: &[u8]) -> Sha256Hex {
    use heidi_core::journal::LineHash;
    Sha256Hex(LineHash::of(bytes))
}

struct Sha256Hex(heidi_core::journal::LineHash);

impl std::fmt::LowerHex for Sha256Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.hex().as_str())
    }
}

#[test]
fn seed_line_through_the_public_api() {
    let e = Event::info(
        WallTime::from_unix_millis(1_771_573_538_307),
        1,
        "pipeline",
        "pipeline_start",
        "Starting training pipeline (C++)",
    );
    let mut buf = [0u8; 512];
    let n = encode_line(&e, "test_cpp_run_123", "test_cpp_run_123", &mut buf).unwrap();
    let want = r#"{"event_version":"1.0","ts":"2026-02-20T07:45:38.307Z","run_id":"test_cpp_run_123","round":1,"stage":"pipeline","level":"info","event_type":"pipeline_start","message":"Starting training pipeline (C++)","counters_delta":{},"usage_delta":{},"artifact_paths":[],"error":null,"prev_hash":"test_cpp_run_123"}"#;
    assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), format!("{want}\n"));
}

#[test]
fn free_text_is_redacted_and_names_are_identifiers() {
    let token = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
    let url = format!("https://x:{token}@github.com/o/r");
    let e = Event {
        artifact_paths: &[&url],
        ..Event::info(WallTime::from_unix_millis(0), 1, "pipeline", "tick", "m")
    };
    let mut buf = vec![0u8; MAX_LINE_BYTES];
    let n = encode_line(&e, RUN, RUN, &mut buf).unwrap();
    let line = std::str::from_utf8(&buf[..n]).unwrap();
    assert!(!line.contains(token), "{line}");
    let v: Value = serde_json::from_str(line).unwrap();
    // The password of a URL's userinfo goes whatever it is.
    assert_eq!(
        v["artifact_paths"][0],
        "https://x:[REDACTED]@github.com/o/r"
    );
    let secret_stage = Event { stage: &url, ..e };
    assert_eq!(
        encode_line(&secret_stage, RUN, RUN, &mut buf),
        Err(EncodeError::BadName {
            field: NameField::Stage
        })
    );
}

#[test]
fn seal_keys_must_be_strong() {
    assert_eq!(SealKey::new(b"").unwrap_err(), WeakSealKey { len_bytes: 0 });
    assert!(SealKey::new(&[0u8; 31]).is_err());
    assert!(SealKey::new(&[0u8; 32]).is_ok());
}
