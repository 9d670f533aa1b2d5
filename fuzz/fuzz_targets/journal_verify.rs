//! Arbitrary bytes, fed in arbitrary chunks, to the streaming journal verifier and the seal
//! check. Invariants: no panic; the first fault, once reported, sticks; the verified prefix
//! never counts more lines than the input has newlines.
#![no_main]

use heidi_core::journal::{SealCheck, SealKey, Verifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Vec<u8>, Vec<u8>, Vec<u8>)| {
    let (journal, cuts, seals) = input;
    let key = SealKey::new(b"fuzz key of at least thirty-two bytes").expect("32+ bytes");
    let mut check = SealCheck::new(&key);
    for record in seals.split(|&b| b == b'\n').take(64) {
        let _ = check.add_record(record);
    }
    let mut verifier: Verifier = check.verifier();
    let mut rest = journal.as_slice();
    let mut cuts = cuts.iter();
    let mut first_fault = None;
    while !rest.is_empty() {
        let n = usize::from(cuts.next().copied().unwrap_or(255))
            .max(1)
            .min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        if let Err(fault) = verifier.feed(chunk) {
            match first_fault {
                None => first_fault = Some(fault),
                Some(first) => assert_eq!(fault, first, "the first fault sticks"),
            }
        }
    }
    let newlines = journal.iter().filter(|&&b| b == b'\n').count() as u64;
    match verifier.finish() {
        Ok(verified) => {
            assert!(first_fault.is_none());
            assert!(verified.lines <= newlines);
            let _ = check.check(&verified);
        }
        Err(fault) => {
            if let Some(first) = first_fault {
                assert_eq!(fault, first, "the first fault sticks");
            }
        }
    }
    assert!(verifier.verified().lines <= newlines);
});
