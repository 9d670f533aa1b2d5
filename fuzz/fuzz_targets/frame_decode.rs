//! Arbitrary bytes, split at arbitrary points, through the framed-JSON decoder, with each
//! frame parsed as a request and every error answered with an error reply. Invariants: no
//! panic; every `feed` makes progress; a fatal error repeats; every error reply fits the
//! documented maximum buffer.
#![no_main]

use heidi_core::proto::reply::{ERROR_REPLY_MAX_BYTES, ErrorReply};
use heidi_core::proto::request::Request;
use heidi_core::proto::{ErrorCode, RequestDecoder};
use libfuzzer_sys::fuzz_target;

fn answer(code: ErrorCode) {
    let mut out = [0u8; ERROR_REPLY_MAX_BYTES];
    let n = ErrorReply::new(code, "fuzz")
        .encode(&mut out)
        .expect("an error reply always fits");
    assert!(n <= ERROR_REPLY_MAX_BYTES);
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (bytes, cuts) = input;
    let mut decoder = RequestDecoder::new();
    let mut rest = bytes.as_slice();
    let mut cuts = cuts.iter();
    let mut fatal = None;
    let mut steps = 0;
    while !rest.is_empty() {
        steps += 1;
        assert!(steps <= 4 * bytes.len() + 8, "the decoder makes progress");
        let n = usize::from(cuts.next().copied().unwrap_or(200))
            .max(1)
            .min(rest.len());
        let step = decoder.feed(&rest[..n]);
        assert!(step.consumed <= n);
        assert!(
            step.consumed > 0 || step.frame.is_some(),
            "progress or a frame"
        );
        match step.frame {
            Some(Ok(frame)) => match Request::parse(frame) {
                Ok(req) => assert!(!req.method.as_str().is_empty()),
                Err(e) => answer(e.code()),
            },
            Some(Err(e)) => {
                if let Some(first) = fatal {
                    assert_eq!(e, first, "a fatal error repeats");
                }
                if e.is_fatal() {
                    fatal = Some(e);
                }
                answer(e.code());
            }
            None => {}
        }
        rest = &rest[step.consumed..];
    }
    let _ = decoder.finish();
});
