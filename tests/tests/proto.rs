//! Property tests of the protocol codec (`heidi_core::proto`) against simple whole-buffer
//! reference models, with `serde_json` as the independent JSON oracle.
//!
//! - Frames: any sequence of valid frames, split at random points, decodes to the same bodies;
//!   random bytes in random chunks never panic, always make progress, and yield exactly the
//!   frames and typed errors that a one-shot model decoder finds (oversize reported on the
//!   fourth prefix byte, nothing after it).
//! - Lines: random text split at random points gives the model's lines, `\r` stripped, over-long
//!   lines reported once and skipped through their `\n`.
//! - Error replies always parse to exactly `{error:true, code, message}` with the original
//!   strings (messages cut at 256 bytes on a character boundary).
//! - Requests encoded by `serde_json` (any method, nested params with escapes, a timestamp)
//!   parse back to the same method, a params span equal to the params, and the exact ms.

use heidi_core::proto::params::Members;
use heidi_core::proto::{
    ERROR_MESSAGE_MAX_BYTES, ERROR_REPLY_MAX_BYTES, ErrorCode, ErrorReply, FrameDecoder,
    FrameError, LineDecoder, LineTooLong, Method, Request, encode_frame,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const LIMIT: usize = 300;
const LINE_LIMIT: usize = 16;

#[derive(Debug, PartialEq)]
enum Event {
    Frame(String),
    Error(FrameError),
}

/// Splits `input` into pieces whose lengths cycle through `cuts` (each at least 1).
fn pieces<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let (mut out, mut rest, mut i) = (Vec::new(), input, 0);
    while !rest.is_empty() {
        let n = cuts[i % cuts.len()].clamp(1, rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    out
}

/// Runs the decoder over `input` fed in pieces; stops feeding after a fatal error.
fn decode(input: &[u8], cuts: &[usize]) -> (Vec<Event>, Result<(), FrameError>) {
    let mut d = FrameDecoder::<LIMIT>::new();
    let mut events = Vec::new();
    'feed: for mut piece in pieces(input, cuts) {
        while !piece.is_empty() {
            let step = d.feed(piece);
            assert!(step.consumed <= piece.len());
            piece = &piece[step.consumed..];
            match step.frame {
                Some(Ok(f)) => {
                    assert!(!f.is_empty() && f.len() <= LIMIT);
                    events.push(Event::Frame(f.to_owned()));
                }
                Some(Err(e)) => {
                    events.push(Event::Error(e));
                    if e.is_fatal() {
                        break 'feed;
                    }
                }
                None => assert!(piece.is_empty(), "no progress with input left"),
            }
        }
    }
    (events, d.finish())
}

/// The reference: reads the whole buffer front to back.
fn model(mut input: &[u8]) -> (Vec<Event>, Result<(), FrameError>) {
    let mut events = Vec::new();
    loop {
        if input.is_empty() {
            return (events, Ok(()));
        }
        if input.len() < 4 {
            let received_bytes = input.len() as u32;
            return (events, Err(FrameError::Truncated { received_bytes }));
        }
        let len = u32::from_be_bytes(input[..4].try_into().unwrap());
        if len as usize > LIMIT {
            let e = FrameError::TooLarge {
                len_bytes: len,
                limit_bytes: LIMIT as u32,
            };
            events.push(Event::Error(e));
            return (events, Err(e));
        }
        let Some(body) = input.get(4..4 + len as usize) else {
            let received_bytes = input.len() as u32;
            return (events, Err(FrameError::Truncated { received_bytes }));
        };
        events.push(match (len, std::str::from_utf8(body)) {
            (0, _) => Event::Error(FrameError::Empty),
            (_, Ok(s)) => Event::Frame(s.to_owned()),
            (_, Err(e)) => Event::Error(FrameError::InvalidUtf8 {
                at_byte: e.valid_up_to() as u32,
            }),
        });
        input = &input[4 + len as usize..];
    }
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..40, 1..8)
}

/// Random bytes biased toward short, plausible prefixes so that frames do complete.
fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
    let chunk = prop_oneof![
        4 => (0u32..40, prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(len, body)| {
            let mut v = len.to_be_bytes().to_vec();
            v.extend(body);
            v
        }),
        1 => prop::collection::vec(any::<u8>(), 0..12),
        1 => (LIMIT as u32 - 1..LIMIT as u32 + 2).prop_map(|len| len.to_be_bytes().to_vec()),
    ];
    prop::collection::vec(chunk, 0..8).prop_map(|v| v.concat())
}

/// A JSON value with nesting, escapes and non-ASCII text.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        "(?s).{0,12}".prop_map(Value::String),
        "[\"\\\\/\n\t\u{1}é😀a]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("(?s).{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn params() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("(?s).{0,8}", json_value(), 0..5)
        .prop_map(|m| m.into_iter().collect())
}

fn config() -> ProptestConfig {
    heidi_tests::proptest_config(512)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn valid_frames_split_anywhere_decode_to_the_same_bodies(
        bodies in prop::collection::vec("(?s).{1,60}", 0..10),
        cuts in cuts(),
    ) {
        let bodies: Vec<String> = bodies.into_iter().filter(|b| b.len() <= LIMIT).collect();
        let mut wire = Vec::new();
        for b in &bodies {
            let mut buf = vec![0u8; 4 + b.len()];
            let n = encode_frame(b.as_bytes(), LIMIT, &mut buf).unwrap();
            wire.extend_from_slice(&buf[..n]);
        }
        let (events, end) = decode(&wire, &cuts);
        let expected: Vec<Event> = bodies.into_iter().map(Event::Frame).collect();
        prop_assert_eq!(events, expected);
        prop_assert_eq!(end, Ok(()));
    }

    #[test]
    fn random_bytes_give_the_models_frames_and_typed_errors(
        wire in wire_bytes(),
        cuts in cuts(),
    ) {
        prop_assert_eq!(decode(&wire, &cuts), model(&wire));
    }

    #[test]
    fn lines_split_anywhere_match_the_model(
        text in prop::collection::vec(prop_oneof![
            4 => "[a-z ]{0,20}",
            1 => Just("\r".to_owned()),
            2 => Just("\n".to_owned()),
            1 => Just("\r\n".to_owned()),
        ], 0..12),
        cuts in cuts(),
    ) {
        let input = text.concat().into_bytes();
        let mut d = LineDecoder::<LINE_LIMIT>::new();
        let mut got: Vec<Result<Vec<u8>, LineTooLong>> = Vec::new();
        for mut piece in pieces(&input, &cuts) {
            while !piece.is_empty() {
                let step = d.feed(piece);
                piece = &piece[step.consumed..];
                match step.line {
                    Some(line) => got.push(line.map(<[u8]>::to_vec)),
                    None => prop_assert!(piece.is_empty()),
                }
            }
        }
        let tail = d.finish().map(<[u8]>::to_vec);

        let mut expected = Vec::new();
        let mut parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        let last = parts.pop().unwrap();
        let judge = |line: &[u8]| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > LINE_LIMIT {
                Err(LineTooLong { limit_bytes: LINE_LIMIT })
            } else {
                Ok(line.to_vec())
            }
        };
        expected.extend(parts.into_iter().map(judge));
        let expected_tail = match judge(last) {
            Err(e) => {
                expected.push(Err(e));
                None
            }
            Ok(_) if last.is_empty() => None,
            Ok(line) => Some(line),
        };
        prop_assert_eq!(got, expected);
        prop_assert_eq!(tail, expected_tail);
    }

    #[test]
    fn error_replies_parse_to_exactly_the_shape(
        code in prop::sample::select(ErrorCode::ALL.to_vec()),
        message in prop_oneof!["(?s).{0,80}", "(?s).{250,300}", "[\"\\\\\u{0}-\u{1f}\u{7f}]{0,300}"],
    ) {
        let mut buf = [0u8; ERROR_REPLY_MAX_BYTES];
        let n = ErrorReply::new(code, &message).encode(&mut buf).unwrap();
        let parsed: Value = serde_json::from_slice(&buf[..n]).unwrap();
        let mut sent = message.as_str();
        if sent.len() > ERROR_MESSAGE_MAX_BYTES {
            let mut end = ERROR_MESSAGE_MAX_BYTES;
            while !sent.is_char_boundary(end) {
                end -= 1;
            }
            sent = &sent[..end];
        }
        prop_assert_eq!(parsed, json!({"error": true, "code": code.as_str(), "message": sent}));
        // The keys come in the documented order.
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        let prefix = format!("{{\"error\":true,\"code\":\"{}\",\"message\":\"", code.as_str());
        prop_assert!(text.starts_with(&prefix));
    }

    #[test]
    fn requests_encoded_by_serde_json_parse_back(
        method in prop::sample::select(Method::ALL.to_vec()),
        params in params(),
        extra in json_value(),
        timestamp_ms in prop::option::of(0u64..4_000_000_000_000),
        order in 0usize..6,
        sub_ms_digits in "[0-9]{0,4}",
    ) {
        let text = |v: &Value| serde_json::to_string(v).unwrap();
        let mut fields = vec![
            ("method", text(&json!(method.as_str()))),
            ("params", text(&Value::Object(params.clone()))),
            ("zz_extra", text(&extra)),
        ];
        if let Some(ms) = timestamp_ms {
            // Seconds as float text, kept verbatim; digits past the millisecond are truncated.
            fields.push(("timestamp", format!("{}.{:03}{sub_ms_digits}", ms / 1000, ms % 1000)));
        }
        let shift = order % fields.len();
        fields.rotate_left(shift);
        let members: Vec<String> = fields.iter().map(|(k, v)| format!("{}:{v}", json!(k))).collect();
        let body = format!("{{{}}}", members.join(","));
        let req = match Request::parse(&body) {
            Ok(req) => req,
            Err(e) => {
                // Only the nesting limit may refuse a valid document.
                prop_assert!(matches!(e, heidi_core::proto::RequestError::TooDeep { .. }), "{e}: {body}");
                return Ok(());
            }
        };
        prop_assert_eq!(req.method, method);
        let span: Value = serde_json::from_str(req.params).unwrap();
        // Compared after the same text round trip: serde_json's float parsing is not exact.
        let sent: Value = serde_json::from_str(&serde_json::to_string(&params).unwrap()).unwrap();
        prop_assert_eq!(span, sent);
        prop_assert_eq!(req.timestamp_ms, timestamp_ms);
        // The members the parse recorded are what a second scan of the span finds.
        prop_assert!(req.members().eq(Members::new(req.params)));
        prop_assert_eq!(req.members().count(), params.len());
    }
}
