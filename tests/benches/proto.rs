//! Request decoding benchmark, printed next to its peer measured in the same run:
//!
//! - `request_params`: the core's strict parse of a `RATE_LIMIT_CHECK` body
//!   (`Request::parse`, then the params read with `Request::members`, the members the parse
//!   recorded, so `params` is scanned once), the work `heidid` does
//!   per request before touching the limiter; next to `serde_json` deserializing the same
//!   body into typed, borrowed structs (a lenient parse that does not validate the nesting
//!   bound or keep the raw params).
//!
//! Run: `cargo bench -p heidi-tests --bench proto` (quick: add
//! `-- --warm-up-time 1 --measurement-time 3`).

use std::hint::black_box;

use criterion::Criterion;
use heidi_core::proto::Request;
use heidi_tests::bench::Recorder;
use serde::Deserialize;

const BODY: &str =
    r#"{"method":"RATE_LIMIT_CHECK","params":{"key":"k1","operation":"api_call","cost":1}}"#;

/// The core path: the request, then its params member by member.
fn core_parse(body: &str) -> (usize, u64) {
    let req = Request::parse(body).unwrap();
    let (mut len, mut cost) = (0, 0);
    for m in req.members() {
        let m = m.unwrap();
        match m.name() {
            Some("cost") => cost = m.as_u64().unwrap(),
            _ => len += m.as_plain_str().unwrap().len(),
        }
    }
    (len, cost)
}

#[derive(Deserialize)]
struct SerdeRequest<'a> {
    #[serde(borrow)]
    method: &'a str,
    #[serde(borrow)]
    params: SerdeParams<'a>,
}

#[derive(Deserialize)]
struct SerdeParams<'a> {
    key: &'a str,
    operation: &'a str,
    cost: u64,
}

fn serde_parse(body: &str) -> (usize, u64) {
    let r: SerdeRequest<'_> = serde_json::from_str(body).unwrap();
    (
        r.method.len() + r.params.key.len() + r.params.operation.len(),
        r.params.cost,
    )
}

fn main() {
    let rec = Recorder::default();
    assert_eq!(core_parse(BODY).1, serde_parse(BODY).1);
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("request_params");
    g.bench_function("core", |b| {
        b.iter_custom(|iters| {
            rec.time("proto/core", iters, || {
                black_box(core_parse(black_box(BODY)));
            })
        })
    });
    g.bench_function("serde_json", |b| {
        b.iter_custom(|iters| {
            rec.time("proto/serde", iters, || {
                black_box(serde_parse(black_box(BODY)));
            })
        })
    });
    g.finish();
    c.final_summary();
    println!("\n== proto summary (medians, same run) ==");
    rec.compare(
        "RATE_LIMIT_CHECK body: Request::parse + Request::members",
        "proto/core",
        "serde_json typed parse of the same body",
        "proto/serde",
    );
}
