use super::*;

const LOOPBACK: HttpGuard = HttpGuard {
    port: 8080,
    loopback: true,
};
const ELSEWHERE: HttpGuard = HttpGuard {
    port: 8080,
    loopback: false,
};

fn get(host: &[u8]) -> RequestHead<'_> {
    RequestHead {
        method: b"GET",
        host: Header::One(host),
        origin: Header::Absent,
        content_type: Header::Absent,
        has_body: false,
    }
}

fn post<'a>(origin: Header<'a>, content_type: Header<'a>, has_body: bool) -> RequestHead<'a> {
    RequestHead {
        method: b"POST",
        host: Header::One(b"127.0.0.1:8080"),
        origin,
        content_type,
        has_body,
    }
}

const JSON: Header<'static> = Header::One(b"application/json");

#[test]
fn loopback_names_with_the_listening_port_pass() {
    for host in [
        &b"127.0.0.1:8080"[..],
        b"127.1.2.3:8080",
        b"localhost:8080",
        b"LOCALHOST:8080",
        b"LocalHost:8080",
        b"[::1]:8080",
        b"[0:0:0:0:0:0:0:1]:8080",
        b"127.0.0.1:08080",
    ] {
        assert_eq!(LOOPBACK.admit(&get(host)), Ok(()), "{host:?}");
    }
}

#[test]
fn names_that_only_look_like_loopback_are_refused() {
    for host in [
        &b"evil.example:8080"[..],
        b"localhost.evil.com:8080",
        b"127.0.0.1.evil.com:8080",
        b"evil.localhost.com:8080",
        b"localhost.:8080",
        b"0.0.0.0:8080",
        b"10.0.0.1:8080",
        b"[::ffff:127.0.0.1]:8080",
        b"[::]:8080",
        b"127.1:8080",
        b"2130706433:8080",
        b"0x7f.0.0.1:8080",
    ] {
        assert_eq!(
            LOOPBACK.admit(&get(host)),
            Err(Refusal::HostNotLoopback),
            "{host:?}"
        );
    }
}

#[test]
fn malformed_hosts_are_refused() {
    for host in [
        &b""[..],
        b":8080",
        b"127.0.0.1:",
        b"127.0.0.1:+8080",
        b"127.0.0.1:65536",
        b"127.0.0.1:123456",
        b"127.0.0.1:80:80",
        b"127.0.0.1 :8080",
        b"user@127.0.0.1:8080",
        b"127.0.0.1:8080/path",
        b"::1",
        b"[::1",
        b"[::1]8080",
        b"[::1]:",
        b"[not an address]:8080",
        b"local%68ost:8080",
        b"l\xc3\xb6calhost:8080",
    ] {
        assert_eq!(
            LOOPBACK.admit(&get(host)),
            Err(Refusal::HostMalformed),
            "{:?}",
            core::str::from_utf8(host)
        );
    }
    let long = [b'a'; HOST_MAX_BYTES + 1];
    assert_eq!(ELSEWHERE.admit(&get(&long)), Err(Refusal::HostMalformed));
    assert_eq!(ELSEWHERE.admit(&get(&long[1..])), Ok(()));
}

#[test]
fn the_port_must_be_the_listeners() {
    assert_eq!(
        LOOPBACK.admit(&get(b"127.0.0.1:8081")),
        Err(Refusal::HostWrongPort)
    );
    // No port means 80.
    assert_eq!(
        LOOPBACK.admit(&get(b"127.0.0.1")),
        Err(Refusal::HostWrongPort)
    );
    assert_eq!(
        LOOPBACK.admit(&get(b"localhost")),
        Err(Refusal::HostWrongPort)
    );
    let on_80 = HttpGuard {
        port: 80,
        loopback: true,
    };
    assert_eq!(on_80.admit(&get(b"localhost")), Ok(()));
    assert_eq!(on_80.admit(&get(b"[::1]:80")), Ok(()));
}

#[test]
fn a_missing_or_repeated_host_is_refused_on_every_method() {
    for method in [&b"GET"[..], b"POST"] {
        let mut head = get(b"x");
        head.method = method;
        head.host = Header::Absent;
        assert_eq!(LOOPBACK.admit(&head), Err(Refusal::HostMissing));
        assert_eq!(ELSEWHERE.admit(&head), Err(Refusal::HostMissing));
        head.host = Header::Repeated;
        assert_eq!(LOOPBACK.admit(&head), Err(Refusal::HostRepeated));
    }
}

#[test]
fn a_non_loopback_listener_accepts_any_well_formed_host() {
    for host in [
        &b"evil.example:8080"[..],
        b"heidi.internal",
        b"10.0.0.1:9999",
        b"[2001:db8::1]:8080",
    ] {
        assert_eq!(ELSEWHERE.admit(&get(host)), Ok(()), "{host:?}");
    }
    assert_eq!(ELSEWHERE.admit(&get(b"a b")), Err(Refusal::HostMalformed));
}

#[test]
fn safe_methods_skip_the_origin_and_content_type_rules() {
    for method in [&b"GET"[..], b"HEAD", b"OPTIONS", b"TRACE"] {
        let head = RequestHead {
            method,
            host: Header::One(b"127.0.0.1:8080"),
            origin: Header::One(b"http://evil.example"),
            content_type: Header::One(b"text/plain"),
            has_body: true,
        };
        assert_eq!(LOOPBACK.admit(&head), Ok(()));
    }
    // Methods are case-sensitive: `get` is not GET.
    assert!(!is_safe_method(b"get"));
    for method in [&b"POST"[..], b"PUT", b"DELETE", b"PATCH", b"get"] {
        let head = RequestHead {
            method,
            host: Header::One(b"127.0.0.1:8080"),
            origin: Header::One(b"http://evil.example"),
            content_type: JSON,
            has_body: true,
        };
        assert_eq!(LOOPBACK.admit(&head), Err(Refusal::OriginForeign));
    }
}

#[test]
fn the_daemons_own_origin_passes_and_others_do_not() {
    for origin in [
        &b"http://127.0.0.1:8080"[..],
        b"http://localhost:8080",
        b"HTTP://LOCALHOST:8080",
        b"http://[::1]:8080",
    ] {
        assert_eq!(
            LOOPBACK.admit(&post(Header::One(origin), JSON, true)),
            Ok(()),
            "{origin:?}"
        );
    }
    assert_eq!(LOOPBACK.admit(&post(Header::Absent, JSON, true)), Ok(()));
    let refused = [
        (&b"http://evil.example"[..], Refusal::OriginForeign),
        (b"http://evil.example:8080", Refusal::OriginForeign),
        (b"http://localhost.evil.com:8080", Refusal::OriginForeign),
        (b"http://127.0.0.1:3000", Refusal::OriginForeign),
        (b"http://127.0.0.1", Refusal::OriginForeign),
        (b"https://127.0.0.1:8080", Refusal::OriginMalformed),
        (b"http://127.0.0.1:8080/", Refusal::OriginMalformed),
        (b"file://", Refusal::OriginMalformed),
        (b"", Refusal::OriginMalformed),
        (b"null", Refusal::OriginNull),
    ];
    for (origin, why) in refused {
        assert_eq!(
            LOOPBACK.admit(&post(Header::One(origin), JSON, true)),
            Err(why),
            "{origin:?}"
        );
    }
    assert_eq!(
        LOOPBACK.admit(&post(Header::Repeated, JSON, true)),
        Err(Refusal::OriginMalformed)
    );
}

#[test]
fn elsewhere_the_origin_must_match_the_host() {
    let mut head = post(Header::One(b"http://Heidi.Internal:8080"), JSON, true);
    head.host = Header::One(b"heidi.internal:8080");
    assert_eq!(ELSEWHERE.admit(&head), Ok(()));
    head.origin = Header::One(b"http://heidi.internal:8081");
    assert_eq!(ELSEWHERE.admit(&head), Err(Refusal::OriginForeign));
    head.origin = Header::One(b"http://evil.example:8080");
    assert_eq!(ELSEWHERE.admit(&head), Err(Refusal::OriginForeign));
    head.origin = Header::One(b"null");
    assert_eq!(ELSEWHERE.admit(&head), Err(Refusal::OriginNull));
}

#[test]
fn bodies_must_be_declared_json() {
    for ct in [
        &b"application/json"[..],
        b"application/json; charset=utf-8",
        b"Application/JSON;charset=UTF-8",
        b"application/json ; charset=\"utf-8\"",
    ] {
        assert_eq!(
            LOOPBACK.admit(&post(Header::Absent, Header::One(ct), true)),
            Ok(()),
            "{ct:?}"
        );
    }
    for ct in [
        &b"text/plain"[..],
        b"text/plain; charset=utf-8",
        b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=x",
        b"application/jsonx",
        b"application/json-patch+json",
        b"application/json, text/plain",
        b"application/json; charset=latin1",
        b"application/json; boundary=x",
        b"application/json; charset",
        b"",
    ] {
        assert_eq!(
            LOOPBACK.admit(&post(Header::Absent, Header::One(ct), true)),
            Err(Refusal::ContentTypeNotJson),
            "{ct:?}"
        );
    }
    assert_eq!(
        LOOPBACK.admit(&post(Header::Absent, Header::Absent, true)),
        Err(Refusal::ContentTypeMissing)
    );
    assert_eq!(
        LOOPBACK.admit(&post(Header::Absent, Header::Repeated, true)),
        Err(Refusal::ContentTypeNotJson)
    );
}

#[test]
fn a_bodiless_post_needs_no_content_type_but_may_not_declare_another() {
    // `curl -X POST` and Python's urllib (Content-Length: 0) on train_now.
    assert_eq!(
        LOOPBACK.admit(&post(Header::Absent, Header::Absent, false)),
        Ok(())
    );
    assert_eq!(LOOPBACK.admit(&post(Header::Absent, JSON, false)), Ok(()));
    // An empty HTML form: no body, but a form type.
    let form = Header::One(b"application/x-www-form-urlencoded");
    assert_eq!(
        LOOPBACK.admit(&post(Header::Absent, form, false)),
        Err(Refusal::ContentTypeNotJson)
    );
}

#[test]
fn the_reported_attack_is_refused_at_every_layer() {
    // Through a rebound name: refused by Host.
    let rebound = RequestHead {
        method: b"POST",
        host: Header::One(b"evil.example:80"),
        origin: Header::One(b"http://evil.example"),
        content_type: Header::One(b"text/plain"),
        has_body: true,
    };
    assert_eq!(LOOPBACK.admit(&rebound), Err(Refusal::HostNotLoopback));
    // Straight at 127.0.0.1 (CSRF): refused by Origin, and by Content-Type without one.
    let csrf = post(
        Header::One(b"http://evil.example"),
        Header::One(b"text/plain"),
        true,
    );
    assert_eq!(LOOPBACK.admit(&csrf), Err(Refusal::OriginForeign));
    let no_origin = post(Header::Absent, Header::One(b"text/plain"), true);
    assert_eq!(LOOPBACK.admit(&no_origin), Err(Refusal::ContentTypeNotJson));
}

#[test]
fn statuses_and_messages() {
    assert_eq!(Refusal::HostNotLoopback.status(), 421);
    assert_eq!(Refusal::HostMissing.status(), 421);
    assert_eq!(Refusal::OriginForeign.status(), 403);
    assert_eq!(Refusal::OriginNull.status(), 403);
    assert_eq!(Refusal::ContentTypeNotJson.status(), 415);
    assert_eq!(Refusal::ContentTypeMissing.status(), 415);
    assert_eq!(Refusal::ContentTypeMissing.code(), ErrorCode::BadRequest);
    assert_eq!(Refusal::ContentTypeNotJson.code(), ErrorCode::BadRequest);
    assert_eq!(Refusal::HostWrongPort.code(), ErrorCode::Refused);
    assert_eq!(Refusal::OriginNull.code(), ErrorCode::Refused);
    extern crate std;
    use std::string::ToString;
    assert_eq!(
        Refusal::OriginForeign.to_string(),
        "cross-origin requests are refused"
    );
}
