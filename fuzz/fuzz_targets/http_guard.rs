//! Arbitrary request heads through the HTTP guard. Invariants: no panic; a refusal has a
//! 421, 403 or 415 status and a message; on a loopback listener an admitted request's `Host`
//! names loopback (`localhost`, `127.0.0.0/8` or `[::1]`, checked here with std's address
//! parsers) with the listener's port (80 when none is given); an admitted state-changing
//! request has no foreign `Origin` scheme and no body without a declared type.
#![no_main]

use arbitrary::Arbitrary;
use heidi_core::proto::http_guard::{Header, HttpGuard, RequestHead};
use libfuzzer_sys::fuzz_target;
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Arbitrary, Debug)]
enum H {
    Absent,
    One(Vec<u8>),
    Repeated,
}

impl H {
    fn header(&self) -> Header<'_> {
        match self {
            H::Absent => Header::Absent,
            H::One(v) => Header::One(v),
            H::Repeated => Header::Repeated,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    port: u16,
    loopback: bool,
    method: Vec<u8>,
    host: H,
    origin: H,
    content_type: H,
    has_body: bool,
}

/// The reference: whether `value` is `name[:port]` naming loopback with `port`.
fn names_loopback(value: &[u8], port: u16) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let (host, given) = if let Some(rest) = text.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return false;
        };
        if !inner.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback()) {
            return false;
        }
        ("::1", after)
    } else {
        match text.rfind(':') {
            Some(at) => text.split_at(at),
            None => (text, ""),
        }
    };
    let port_ok = match given {
        "" => port == 80,
        _ => given
            .strip_prefix(':')
            .is_some_and(|p| p.parse::<u16>() == Ok(port)),
    };
    let host_ok = host == "::1"
        || host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
    host_ok && port_ok
}

fuzz_target!(|input: Input| {
    let guard = HttpGuard {
        port: input.port,
        loopback: input.loopback,
    };
    let head = RequestHead {
        method: &input.method,
        host: input.host.header(),
        origin: input.origin.header(),
        content_type: input.content_type.header(),
        has_body: input.has_body,
    };
    match guard.admit(&head) {
        Err(refusal) => {
            assert!(matches!(refusal.status(), 421 | 403 | 415));
            assert!(!refusal.message().is_empty());
        }
        Ok(()) => {
            let H::One(host) = &input.host else {
                panic!("admitted without exactly one Host");
            };
            if input.loopback {
                assert!(names_loopback(host, input.port), "{host:?} is not loopback");
            }
            let safe = matches!(&input.method[..], b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE");
            if !safe {
                if let H::One(origin) = &input.origin {
                    assert!(origin.len() >= 7 && origin[..7].eq_ignore_ascii_case(b"http://"));
                    if input.loopback {
                        assert!(names_loopback(&origin[7..], input.port));
                    }
                }
                assert!(!matches!(input.origin, H::Repeated));
                if input.has_body {
                    assert!(matches!(input.content_type, H::One(_)));
                }
            }
        }
    }
});
