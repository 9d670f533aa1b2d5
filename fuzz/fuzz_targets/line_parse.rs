//! Arbitrary bytes, split at arbitrary points, through the line decoder, the command parser
//! and the reply encoder. Invariants: no panic; every reply fits the documented maximum, ends
//! with exactly one `\n`, and is printable ASCII (no control bytes echoed back).
#![no_main]

use heidi_core::proto::line::LineDecoder;
use heidi_core::proto::{Command, DaemonStatus, LINE_REPLY_MAX_BYTES, LineReply};
use libfuzzer_sys::fuzz_target;

fn reply(reply: LineReply<'_>) {
    let mut out = [0u8; LINE_REPLY_MAX_BYTES];
    let n = reply.encode(&mut out).expect("a line reply always fits");
    assert_eq!(out[n - 1], b'\n');
    assert!(
        out[..n - 1].iter().all(|&b| (0x20..0x7f).contains(&b)),
        "printable reply"
    );
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (bytes, cuts) = input;
    let mut decoder: LineDecoder = LineDecoder::new();
    let mut rest = bytes.as_slice();
    let mut cuts = cuts.iter();
    while !rest.is_empty() {
        let n = usize::from(cuts.next().copied().unwrap_or(64))
            .max(1)
            .min(rest.len());
        let step = decoder.feed(&rest[..n]);
        assert!(step.consumed > 0 && step.consumed <= n, "progress");
        match step.line {
            Some(Ok(line)) => {
                let command = Command::parse(line);
                let status = || DaemonStatus {
                    version: "fuzz",
                    ..DaemonStatus::default()
                };
                if let Some(r) = LineReply::answer(command, "0.1.0", status) {
                    reply(r);
                }
            }
            Some(Err(_)) => reply(LineReply::LineTooLong),
            None => {}
        }
        rest = &rest[step.consumed..];
    }
    let _ = decoder.finish();
});
