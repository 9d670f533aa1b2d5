//! Arbitrary text through the request parser. Invariants: no panic; a parsed request's params
//! span lies inside the input and starts with `{` (or is the `{}` default); the members the
//! parse recorded are exactly what a second scan of the params finds; an error has a wire
//! code.
#![no_main]

use heidi_core::proto::params::Members;
use heidi_core::proto::request::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match Request::parse(text) {
        Ok(req) => {
            let inside = text
                .as_bytes()
                .as_ptr_range()
                .contains(&req.params.as_ptr());
            assert!(req.params == "{}" || (inside && req.params.starts_with('{')));
            assert!(req.members().eq(Members::new(req.params)));
        }
        Err(e) => assert!(!e.code().as_str().is_empty()),
    }
});
