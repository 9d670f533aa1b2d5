//! parse_journal_append.

use heidi_core::journal::Level;
use heidi_core::proto::ErrorCode;

use crate::kernel::parse_journal_append;

#[test]
fn defaults_and_every_field() {
    let e = parse_journal_append(r#"{"event_type":"batch_done","message":"ok"}"#).unwrap();
    assert_eq!(
        (e.stage.as_str(), e.level, e.round),
        ("client", Level::Info, 1)
    );
    assert_eq!(
        (e.event_type.as_str(), e.message.as_str()),
        ("batch_done", "ok")
    );
    assert!(e.counters_delta.is_empty() && e.error.is_none());
    let e = parse_journal_append(
        r#"{"event_type":"x","stage":"trainer","level":"warning","message":"m",
            "counters_delta":{"rows":-3,"b":9007199254740993},"usage_delta":{"cpu_pct":5},
            "artifact_paths":["/tmp/a"],"error":"boom"}"#,
    )
    .unwrap();
    assert_eq!(e.level, Level::Warning);
    assert_eq!(
        e.counters_delta,
        vec![
            ("b".to_owned(), 9_007_199_254_740_993),
            ("rows".to_owned(), -3)
        ]
    );
    assert_eq!(e.usage_delta, vec![("cpu_pct".to_owned(), 5)]);
    assert_eq!(
        (e.artifact_paths.len(), e.error.as_deref()),
        (1, Some("boom"))
    );
    let e = parse_journal_append(r#"{"event_type":"x","message":"m","error":null}"#).unwrap();
    assert_eq!(e.error, None);
}

#[test]
fn refusals_name_the_param() {
    let many: String = (0..17)
        .map(|i| format!(r#""c{i}":1"#))
        .collect::<Vec<_>>()
        .join(",");
    let paths = vec![r#""p""#; 17].join(",");
    let cases = [
        (
            r#"{"message":"m"}"#.to_owned(),
            "params.event_type: is required",
        ),
        (
            r#"{"event_type":"x"}"#.to_owned(),
            "params.message: is required",
        ),
        (
            r#"{"event_type":"a b","message":"m"}"#.to_owned(),
            "params.event_type: must be a name",
        ),
        (
            r#"{"event_type":"x","message":"m","stage":"kernel"}"#.to_owned(),
            "params.stage: `kernel` is reserved",
        ),
        (
            r#"{"event_type":"x","message":"m","stage":"DAEMON"}"#.to_owned(),
            "params.stage: `DAEMON` is reserved",
        ),
        (
            r#"{"event_type":"x","message":"m","level":"fatal"}"#.to_owned(),
            "params.level:",
        ),
        (
            r#"{"event_type":"x","message":7}"#.to_owned(),
            "params.message: must be a string",
        ),
        (
            r#"{"event_type":"x","message":"m","counters_delta":{"a":1.5}}"#.to_owned(),
            "params.counters_delta.a:",
        ),
        (
            r#"{"event_type":"x","message":"m","counters_delta":{"a b":1}}"#.to_owned(),
            "params.counters_delta.a b:",
        ),
        (
            format!(r#"{{"event_type":"x","message":"m","counters_delta":{{{many}}}}}"#),
            "params.counters_delta: at most 16",
        ),
        (
            format!(r#"{{"event_type":"x","message":"m","artifact_paths":[{paths}]}}"#),
            "params.artifact_paths:",
        ),
        (
            r#"{"event_type":"x","message":"m","error":5}"#.to_owned(),
            "params.error:",
        ),
        (
            r#"{"event_type":"x","message":"m","round":2}"#.to_owned(),
            "params.round: unknown field",
        ),
        (
            r#"{"event_type":"x","message":"m","event_type":"y"}"#.to_owned(),
            "params.event_type: duplicate field",
        ),
        (
            r#"{"event_type":"x","message":"m","counters_delta":{"rows":1,"rows":2}}"#.to_owned(),
            "params.counters_delta.rows: duplicate field",
        ),
        ("[1]".to_owned(), "params: not a JSON object"),
        ("{".to_owned(), "params:"),
    ];
    for (params, prefix) in cases {
        let (code, message) = parse_journal_append(&params).unwrap_err();
        assert_eq!(code, ErrorCode::BadRequest);
        assert!(message.starts_with(prefix), "{params}: {message}");
    }
    // The limits themselves are accepted.
    let sixteen: String = (0..16)
        .map(|i| format!(r#""c{i}":1"#))
        .collect::<Vec<_>>()
        .join(",");
    let p = format!(r#"{{"event_type":"x","message":"m","counters_delta":{{{sixteen}}}}}"#);
    assert_eq!(parse_journal_append(&p).unwrap().counters_delta.len(), 16);
}

#[test]
fn names_holding_a_secret_are_refused_without_echoing_them() {
    let secret = "hf_FakeTokenForTestsOnlyAbcdefghijklm9";
    for (params, prefix) in [
        (
            format!(r#"{{"event_type":"{secret}","message":"m"}}"#),
            "params.event_type: holds a secret",
        ),
        (
            format!(r#"{{"event_type":"x","stage":"{secret}","message":"m"}}"#),
            "params.stage: holds a secret",
        ),
        (
            format!(r#"{{"event_type":"x","message":"m","counters_delta":{{"{secret}":1}}}}"#),
            "params.counters_delta: a name holds a secret",
        ),
        (
            r#"{"event_type":"x","message":"m","usage_delta":{"token:abc123":1}}"#.to_owned(),
            "params.usage_delta: a name holds a secret",
        ),
    ] {
        let (code, message) = parse_journal_append(&params).unwrap_err();
        assert_eq!(code, ErrorCode::BadRequest);
        assert!(message.starts_with(prefix), "{params}: {message}");
        assert!(
            !message.contains("Fake") && !message.contains("abc123"),
            "{message}"
        );
    }
}
