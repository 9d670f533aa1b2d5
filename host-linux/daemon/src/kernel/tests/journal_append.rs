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
fn free_text_is_decoded_and_refusals_are_bad_requests() {
    let e = parse_journal_append(
        r#"{"event_type":"x","message":"a\nb \u00e9","error":"\"boom\"","artifact_paths":["\/tmp"]}"#,
    )
    .unwrap();
    assert_eq!(
        (e.message.as_str(), e.error.as_deref()),
        ("a\nb é", Some("\"boom\""))
    );
    assert_eq!(e.artifact_paths, ["/tmp"]);
    // The rules themselves are the core's (`heidi_core::service::parse_journal_append`).
    let (code, message) = parse_journal_append(r#"{"event_type":"x"}"#).unwrap_err();
    assert_eq!(
        (code, message.as_str()),
        (ErrorCode::BadRequest, "params.message: is required")
    );
}
