//! The line encoder: one event to one compact JSON line in the format `docs/JOURNAL.md`
//! specifies ("Journal line"), byte for byte.

use core::fmt;

use super::event::{
    ARTIFACT_PATH_MAX_BYTES, ARTIFACT_PATHS_MAX, DELTA_MAX_ENTRIES, Event, NAME_MAX_BYTES,
    is_valid_name,
};
use super::redact::{REDACTED_MAX_BYTES, holds_secret, is_inert, redact};
use crate::json::escape::quoted;
use crate::json::writer::Writer;
use crate::time::WallTime;

/// The longest journal line, in bytes, including its `\n`. The encoder refuses longer lines
/// and the verifier reports them as [`FaultKind::TooLong`](super::FaultKind::TooLong).
///
/// Sized for real events: the fixed keys and punctuation take 250 bytes; a redacted message
/// and error at most 2 × 3 006 escaped bytes (500 characters plus `…`, none over 6 bytes
/// escaped); run id and first `prev_hash` 2 × 128; 16 + 16 map entries with 64-byte names
/// and 20-digit values 2 816; 16 artifact paths of 256 bytes 4 144. Every event within those
/// bounds whose names and paths need no escaping fits (≈ 13.5 KiB), with room to spare.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// 9999-12-31T23:59:59.999Z, the last timestamp with a four-digit year.
const TS_MAX_UNIX_MILLIS: u64 = 253_402_300_799_999;

/// The fixed `event_version` this encoder writes and the verifier accepts.
pub const EVENT_VERSION: &str = "1.0";

/// The fields that hold names (identifiers) rather than free text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum NameField {
    /// `stage`.
    Stage,
    /// `event_type`.
    EventType,
    /// An entry name in `counters_delta`.
    CountersDelta,
    /// An entry name in `usage_delta`.
    UsageDelta,
}

impl NameField {
    /// The field's key in a journal line.
    pub const fn as_str(self) -> &'static str {
        match self {
            NameField::Stage => "stage",
            NameField::EventType => "event_type",
            NameField::CountersDelta => "counters_delta",
            NameField::UsageDelta => "usage_delta",
        }
    }
}

/// Why a line could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum EncodeError {
    /// The line needs `needed_bytes` (with its `\n`) but only `capacity_bytes` are available
    /// (the caller's buffer, or [`MAX_LINE_BYTES`] if smaller).
    LineTooLong {
        /// Bytes the whole line needs.
        needed_bytes: usize,
        /// Bytes that were available.
        capacity_bytes: usize,
    },
    /// `counters_delta` or `usage_delta` holds more than [`DELTA_MAX_ENTRIES`] entries.
    TooManyDeltas,
    /// `artifact_paths` holds more than [`ARTIFACT_PATHS_MAX`] paths.
    TooManyArtifacts,
    /// `ts` is after 9999-12-31T23:59:59.999Z and has no four-digit year.
    TsOutOfRange,
    /// A name in `field` is not 1 to [`NAME_MAX_BYTES`] bytes of `[A-Za-z0-9_.:-]`
    /// (see [`is_valid_name`](super::is_valid_name)).
    BadName {
        /// The field holding the bad name.
        field: NameField,
    },
    /// An artifact path is longer than [`ARTIFACT_PATH_MAX_BYTES`].
    ArtifactPathTooLong,
    /// A name in `field` is one the redactor takes for a secret
    /// ([`holds_secret`](super::redact::holds_secret)): names are written as given, never
    /// redacted, so the line is refused instead.
    SecretName {
        /// The field holding the name.
        field: NameField,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::LineTooLong {
                needed_bytes,
                capacity_bytes,
            } => write!(
                f,
                "journal line needs {needed_bytes} bytes, only {capacity_bytes} available"
            ),
            EncodeError::TooManyDeltas => {
                write!(f, "more than {DELTA_MAX_ENTRIES} entries in a delta map")
            }
            EncodeError::TooManyArtifacts => {
                write!(f, "more than {ARTIFACT_PATHS_MAX} artifact paths")
            }
            EncodeError::TsOutOfRange => f.write_str("timestamp after the year 9999"),
            EncodeError::BadName { field } => write!(
                f,
                "a name in {} is not 1 to {NAME_MAX_BYTES} bytes of [A-Za-z0-9_.:-]",
                field.as_str()
            ),
            EncodeError::SecretName { field } => write!(
                f,
                "a name in {} holds a secret (names are never redacted)",
                field.as_str()
            ),
            EncodeError::ArtifactPathTooLong => write!(
                f,
                "an artifact path is longer than {ARTIFACT_PATH_MAX_BYTES} bytes"
            ),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Encodes `event` of run `run_id` with the given `prev_hash` into `buf`, followed by `\n`,
/// and returns the number of bytes written. `message`, `error` and every artifact path are
/// redacted first; `stage`, `event_type` and delta names must be valid names in which the
/// redactor finds no secret ([`EncodeError::SecretName`]), so no free text reaches the line
/// (and its hash) unredacted.
///
/// On error nothing useful is in `buf`.
pub fn encode_line(
    event: &Event<'_>,
    run_id: &str,
    prev_hash: &str,
    buf: &mut [u8],
) -> Result<usize, EncodeError> {
    check_bounds(event)?;
    let capacity_bytes = buf.len().min(MAX_LINE_BYTES);
    let mut out = Writer::new(&mut buf[..capacity_bytes]);
    // One scratch buffer for every redacted field of the line, made only when a field needs
    // redacting (most lines have nothing to redact).
    let scratch = &mut None;
    out.bytes(b"{\"event_version\":\"1.0\",\"ts\":\"");
    write_ts(&mut out, event.ts);
    out.bytes(b"\",\"run_id\":");
    quoted(&mut out, run_id);
    out.bytes(b",\"round\":");
    out.u64(u64::from(event.round));
    out.bytes(b",\"stage\":");
    quoted(&mut out, event.stage);
    out.bytes(b",\"level\":\"");
    out.bytes(event.level.as_str().as_bytes());
    out.bytes(b"\",\"event_type\":");
    quoted(&mut out, event.event_type);
    out.bytes(b",\"message\":");
    write_redacted(&mut out, event.message, scratch);
    out.bytes(b",\"counters_delta\":");
    write_map(&mut out, event.counters_delta);
    out.bytes(b",\"usage_delta\":");
    write_map(&mut out, event.usage_delta);
    out.bytes(b",\"artifact_paths\":");
    write_redacted_list(&mut out, event.artifact_paths, scratch);
    out.bytes(b",\"error\":");
    match event.error {
        Some(e) => write_redacted(&mut out, e, scratch),
        None => out.bytes(b"null"),
    }
    out.bytes(b",\"prev_hash\":");
    quoted(&mut out, prev_hash);
    out.bytes(b"}\n");
    out.finish().map_err(|o| EncodeError::LineTooLong {
        needed_bytes: o.needed_bytes,
        capacity_bytes,
    })
}

fn check_bounds(event: &Event<'_>) -> Result<(), EncodeError> {
    if event.counters_delta.len() > DELTA_MAX_ENTRIES || event.usage_delta.len() > DELTA_MAX_ENTRIES
    {
        return Err(EncodeError::TooManyDeltas);
    }
    if event.artifact_paths.len() > ARTIFACT_PATHS_MAX {
        return Err(EncodeError::TooManyArtifacts);
    }
    if event
        .artifact_paths
        .iter()
        .any(|p| p.len() > ARTIFACT_PATH_MAX_BYTES)
    {
        return Err(EncodeError::ArtifactPathTooLong);
    }
    if event.ts.as_unix_millis() > TS_MAX_UNIX_MILLIS {
        return Err(EncodeError::TsOutOfRange);
    }
    check_names(event)
}

fn check_names(event: &Event<'_>) -> Result<(), EncodeError> {
    let check = |field, name: &str| {
        if !is_valid_name(name.as_bytes()) {
            Err(EncodeError::BadName { field })
        } else if holds_secret(name) {
            Err(EncodeError::SecretName { field })
        } else {
            Ok(())
        }
    };
    check(NameField::Stage, event.stage)?;
    check(NameField::EventType, event.event_type)?;
    for (name, _) in event.counters_delta {
        check(NameField::CountersDelta, name)?;
    }
    for (name, _) in event.usage_delta {
        check(NameField::UsageDelta, name)?;
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (the [`WallTime`] `Display` form, without `core::fmt`).
fn write_ts(out: &mut Writer<'_>, ts: WallTime) {
    let t = ts.to_utc();
    out.padded(t.year, 4);
    let two_digit = [
        (b'-', t.month),
        (b'-', t.day),
        (b'T', t.hour),
        (b':', t.minute),
        (b':', t.second),
    ];
    for (sep, n) in two_digit {
        out.byte(sep);
        out.padded(u32::from(n), 2);
    }
    out.byte(b'.');
    out.padded(u32::from(t.millis), 3);
    out.byte(b'Z');
}

/// The lazily made scratch buffer of [`write_redacted`].
type Scratch = Option<[u8; REDACTED_MAX_BYTES]>;

fn write_redacted(out: &mut Writer<'_>, text: &str, scratch: &mut Scratch) {
    if is_inert(text) {
        return quoted(out, text);
    }
    quoted(
        out,
        redact(text, scratch.get_or_insert([0; REDACTED_MAX_BYTES])),
    );
}

fn write_map(out: &mut Writer<'_>, entries: &[(&str, i64)]) {
    out.byte(b'{');
    for (i, (name, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.byte(b',');
        }
        quoted(out, name);
        out.byte(b':');
        out.i64(*value);
    }
    out.byte(b'}');
}

fn write_redacted_list(out: &mut Writer<'_>, items: &[&str], scratch: &mut Scratch) {
    out.byte(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.byte(b',');
        }
        write_redacted(out, item, scratch);
    }
    out.byte(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::event::Level;

    /// The original daemon's example line (`docs/JOURNAL.md`, "Journal line"), with its `\n`.
    const SEED_LINE: &[u8] = b"{\"event_version\":\"1.0\",\"ts\":\"2026-02-20T07:45:38.307Z\",\"run_id\":\"test_cpp_run_123\",\"round\":1,\"stage\":\"pipeline\",\"level\":\"info\",\"event_type\":\"pipeline_start\",\"message\":\"Starting training pipeline (C++)\",\"counters_delta\":{},\"usage_delta\":{},\"artifact_paths\":[],\"error\":null,\"prev_hash\":\"test_cpp_run_123\"}\n";

    #[test]
    fn seed_line_byte_exact() {
        let mut buf = [0u8; MAX_LINE_BYTES];
        let n = encode_line(
            &Event::seed(),
            "test_cpp_run_123",
            "test_cpp_run_123",
            &mut buf,
        );
        assert_eq!(&buf[..n.unwrap()], SEED_LINE);
    }

    #[test]
    fn all_fields_filled() {
        let event = Event {
            level: Level::Error,
            counters_delta: &[("rows", 12), ("bad", -3)],
            usage_delta: &[("memory_mb_delta", 512), ("cpu_pct", 87)],
            artifact_paths: &["out/a.jsonl", "dir \"q\"/b"],
            error: Some("exit 1\nboom"),
            ..Event::seed()
        };
        let mut buf = [0u8; 1024];
        let n = encode_line(&event, "r", "ab", &mut buf).unwrap();
        let want = concat!(
            r#"{"event_version":"1.0","ts":"2026-02-20T07:45:38.307Z","run_id":"r","round":1,"#,
            r#""stage":"pipeline","level":"error","event_type":"pipeline_start","#,
            r#""message":"Starting training pipeline (C++)","counters_delta":{"rows":12,"bad":-3},"#,
            r#""usage_delta":{"memory_mb_delta":512,"cpu_pct":87},"#,
            r#""artifact_paths":["out/a.jsonl","dir \"q\"/b"],"error":"exit 1\nboom","prev_hash":"ab"}"#,
            "\n"
        );
        assert_eq!(core::str::from_utf8(&buf[..n]).unwrap(), want);
    }

    #[test]
    fn the_last_four_digit_year_is_the_bound() {
        let mut buf = [0u8; 1024];
        let last = WallTime::from_unix_millis(TS_MAX_UNIX_MILLIS);
        assert_eq!(last.to_utc().year, 9999);
        let e = Event {
            ts: last,
            ..Event::seed()
        };
        let n = encode_line(&e, "r", "r", &mut buf).unwrap();
        let line = core::str::from_utf8(&buf[..n]).unwrap();
        assert!(
            line.contains("\"ts\":\"9999-12-31T23:59:59.999Z\""),
            "{line}"
        );
        let e = Event {
            ts: WallTime::from_unix_millis(TS_MAX_UNIX_MILLIS + 1),
            ..Event::seed()
        };
        assert_eq!(
            encode_line(&e, "r", "r", &mut buf),
            Err(EncodeError::TsOutOfRange)
        );
    }

    #[test]
    fn too_small_buffer_says_how_big() {
        let mut buf = [0u8; 100];
        let err = encode_line(
            &Event::seed(),
            "test_cpp_run_123",
            "test_cpp_run_123",
            &mut buf,
        );
        assert_eq!(
            err,
            Err(EncodeError::LineTooLong {
                needed_bytes: SEED_LINE.len(),
                capacity_bytes: 100
            })
        );
        let mut exact = [0u8; 320];
        let n = encode_line(
            &Event::seed(),
            "test_cpp_run_123",
            "test_cpp_run_123",
            &mut exact[..SEED_LINE.len()],
        );
        assert_eq!(n, Ok(SEED_LINE.len()));
    }

    #[test]
    fn bounds_are_enforced() {
        let mut buf = [0u8; MAX_LINE_BYTES + 1];
        let many = [("k", 1i64); DELTA_MAX_ENTRIES + 1];
        let e = Event {
            usage_delta: &many,
            ..Event::seed()
        };
        assert_eq!(
            encode_line(&e, "r", "r", &mut buf),
            Err(EncodeError::TooManyDeltas)
        );
        let paths = [""; ARTIFACT_PATHS_MAX + 1];
        let e = Event {
            artifact_paths: &paths,
            ..Event::seed()
        };
        assert_eq!(
            encode_line(&e, "r", "r", &mut buf),
            Err(EncodeError::TooManyArtifacts)
        );
        let e = Event {
            ts: WallTime::from_unix_millis(253_402_300_800_000),
            ..Event::seed()
        };
        assert_eq!(
            encode_line(&e, "r", "r", &mut buf),
            Err(EncodeError::TsOutOfRange)
        );
        let long = [b'p'; ARTIFACT_PATH_MAX_BYTES + 1];
        let e = Event {
            artifact_paths: &[core::str::from_utf8(&long).unwrap()],
            ..Event::seed()
        };
        assert_eq!(
            encode_line(&e, "r", "r", &mut buf),
            Err(EncodeError::ArtifactPathTooLong)
        );
        // A line over MAX_LINE_BYTES is refused even when the buffer is larger.
        let long = [[1u8; ARTIFACT_PATH_MAX_BYTES]; ARTIFACT_PATHS_MAX];
        let strs: [&str; ARTIFACT_PATHS_MAX] =
            core::array::from_fn(|i| core::str::from_utf8(&long[i]).unwrap());
        let e = Event {
            artifact_paths: &strs,
            ..Event::seed()
        };
        assert!(matches!(
            encode_line(&e, "r", "r", &mut buf),
            Err(EncodeError::LineTooLong {
                capacity_bytes: MAX_LINE_BYTES,
                ..
            })
        ));
    }

    #[test]
    fn worst_case_message_and_error_fit() {
        let ctrl = [1u8; 600];
        let text = core::str::from_utf8(&ctrl).unwrap();
        let e = Event {
            message: text,
            error: Some(text),
            ..Event::seed()
        };
        let mut buf = [0u8; MAX_LINE_BYTES];
        let n = encode_line(&e, "r", "r", &mut buf).unwrap();
        assert!(n < 7_000, "{n}");
    }

    #[test]
    fn artifact_paths_are_redacted() {
        let url = "https://x:ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com/o/r";
        let e = Event {
            artifact_paths: &["out/a.jsonl", url],
            ..Event::seed()
        };
        let mut buf = [0u8; 1024];
        let n = encode_line(&e, "r", "r", &mut buf).unwrap();
        let line = core::str::from_utf8(&buf[..n]).unwrap();
        assert!(!line.contains("ghp_16C7"), "{line}");
        assert!(
            line.contains("\"artifact_paths\":[\"out/a.jsonl\",\"https://x:"),
            "{line}"
        );
    }

    #[test]
    fn names_holding_a_secret_are_refused() {
        let mut buf = [0u8; 1024];
        let ok = Event::seed();
        for secret in [
            "hf_FakeTokenForTestsOnlyAbcdefghijklm9",
            "xoxb-0000000000-0000000000000-FAKEfakeFAKEfake",
            "sk_live_FAKE0123456789abcdefABCD",
            "AIzaFAKE_0123456789abcdefghijklmnopqrs",
            "npm_FAKE0123456789abcdefghijklmnopqrstuv",
            "ghp_FAKE0123456789abcdefABCDEF0123456789",
            "token:abc123",
            "x.sk-ant-api03-FAKEabc123def456ghi789jkl012",
        ] {
            let cases = [
                (
                    Event {
                        stage: secret,
                        ..ok
                    },
                    NameField::Stage,
                ),
                (
                    Event {
                        event_type: secret,
                        ..ok
                    },
                    NameField::EventType,
                ),
                (
                    Event {
                        counters_delta: &[("rows", 1), (secret, 2)],
                        ..ok
                    },
                    NameField::CountersDelta,
                ),
                (
                    Event {
                        usage_delta: &[(secret, 2)],
                        ..ok
                    },
                    NameField::UsageDelta,
                ),
            ];
            for (e, field) in cases {
                assert_eq!(
                    encode_line(&e, "r", "r", &mut buf),
                    Err(EncodeError::SecretName { field }),
                    "{secret:?}"
                );
            }
        }
        // Names that only look like secret names are fine.
        for name in [
            "api_key",
            "token",
            "stage_end",
            "hf_hub",
            "max_tokens",
            "sk-learn",
        ] {
            let e = Event {
                event_type: name,
                counters_delta: &[(name, 1)],
                ..ok
            };
            assert!(encode_line(&e, "r", "r", &mut buf).is_ok(), "{name}");
        }
    }

    #[test]
    fn names_must_be_identifiers() {
        let mut buf = [0u8; 1024];
        let long = [b'n'; NAME_MAX_BYTES + 1];
        let long = core::str::from_utf8(&long).unwrap();
        let ok = Event {
            stage: "a.B:c-d_9",
            counters_delta: &[("rows", 1)],
            usage_delta: &[(&long[..NAME_MAX_BYTES], 1)],
            ..Event::seed()
        };
        assert!(encode_line(&ok, "r", "r", &mut buf).is_ok());
        for bad in [
            "",
            "a b",
            "tok=ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "é",
            "a/b",
            long,
        ] {
            let cases = [
                (Event { stage: bad, ..ok }, NameField::Stage),
                (
                    Event {
                        event_type: bad,
                        ..ok
                    },
                    NameField::EventType,
                ),
                (
                    Event {
                        counters_delta: &[("rows", 1), (bad, 2)],
                        ..ok
                    },
                    NameField::CountersDelta,
                ),
                (
                    Event {
                        usage_delta: &[(bad, 2)],
                        ..ok
                    },
                    NameField::UsageDelta,
                ),
            ];
            for (e, field) in cases {
                assert_eq!(
                    encode_line(&e, "r", "r", &mut buf),
                    Err(EncodeError::BadName { field }),
                    "{bad:?}"
                );
            }
        }
    }
}
