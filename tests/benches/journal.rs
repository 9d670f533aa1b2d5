//! Journal benchmarks, each printed next to its ceiling measured in the same run:
//!
//! - `encode_hash`: encode a typical stage event into a line and hash it (one
//!   `ChainWriter::append`; target ≤ 3× the SHA-256), next to a bare SHA-256 of the same line
//!   bytes; `redact_only` is the redaction of the event's message and artifact path alone.
//! - `verify`: the streaming verifier over a 2,000-line journal (target ≥ 300 MB/s), next to
//!   raw `sha2` SHA-256 over the same bytes, line by line, which every verifier must do.
//!
//! Run: `cargo bench -p heidi-tests --bench journal` (quick: add
//! `-- --warm-up-time 1 --measurement-time 3`).

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use heidi_core::WallTime;
use heidi_core::journal::redact::{REDACTED_MAX_BYTES, redact};
use heidi_core::journal::{ChainWriter, Event, LineHash, MAX_LINE_BYTES, Verifier};
use heidi_tests::bench::{Recorder, fixed3};
use sha2_peer::sha256_lines;

const LINES: u32 = 2_000;

fn typical(i: u32) -> Event<'static> {
    Event {
        usage_delta: &[("memory_mb_delta", 312), ("cpu_pct", 87)],
        counters_delta: &[("rows", 1_024)],
        artifact_paths: &["out/round_1/teacher.jsonl"],
        ..Event::info(
            WallTime::from_unix_millis(1_771_573_538_307 + u64::from(i)),
            1,
            "generate",
            "stage_end",
            "Stage generate finished: 1024 rows written",
        )
    }
}

fn journal() -> Vec<u8> {
    let mut chain = ChainWriter::new("bench_run_1").unwrap();
    let mut buf = [0u8; MAX_LINE_BYTES];
    let mut out = Vec::new();
    for i in 0..LINES {
        out.extend_from_slice(chain.append(&typical(i), &mut buf).unwrap());
    }
    out
}

fn bench_encode(c: &mut Criterion, rec: &Recorder) {
    let mut g = c.benchmark_group("encode_hash");
    let mut chain = ChainWriter::new("bench_run_1").unwrap();
    let mut buf = [0u8; MAX_LINE_BYTES];
    let event = typical(0);
    let line = chain.append(&event, &mut buf).unwrap().to_vec();
    println!("typical line: {} bytes", line.len());
    g.bench_function("append", |b| {
        b.iter_custom(|iters| {
            rec.time("encode/append", iters, || {
                black_box(chain.append(black_box(&event), &mut buf).unwrap());
            })
        })
    });
    let mut scratch = [0u8; REDACTED_MAX_BYTES];
    g.bench_function("redact_only", |b| {
        b.iter_custom(|iters| {
            rec.time("encode/redact", iters, || {
                black_box(redact(black_box(event.message), &mut scratch).len());
                black_box(redact(black_box(event.artifact_paths[0]), &mut scratch).len());
            })
        })
    });
    g.bench_function("sha256_only", |b| {
        b.iter_custom(|iters| {
            rec.time("encode/sha256", iters, || {
                black_box(LineHash::of(black_box(&line)));
            })
        })
    });
    g.finish();
}

fn bench_verify(c: &mut Criterion, rec: &Recorder, bytes: &[u8]) {
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    let mut v = Box::new(Verifier::new());
    g.bench_function("verifier", |b| {
        b.iter_custom(|iters| {
            rec.time("verify/verifier", iters, || {
                *v = Verifier::new();
                v.feed(black_box(bytes)).unwrap();
                black_box(v.finish().unwrap());
            })
        })
    });
    g.bench_function("sha256_lines", |b| {
        b.iter_custom(|iters| {
            rec.time("verify/sha256", iters, || {
                black_box(sha256_lines(black_box(bytes)));
            })
        })
    });
    g.finish();
}

/// The ceiling: SHA-256 of every line (found by its `\n`), nothing else.
mod sha2_peer {
    use heidi_core::journal::LineHash;

    pub(crate) fn sha256_lines(bytes: &[u8]) -> LineHash {
        let mut last = LineHash([0; 32]);
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            last = LineHash::of(line);
        }
        last
    }
}

/// MB/s (10⁶ bytes) for `bytes` processed in `ps` picoseconds, to three decimals.
fn mb_per_s(bytes: usize, ps: u128) -> String {
    fixed3(bytes as u128 * 1_000_000, ps)
}

fn main() {
    let rec = Recorder::default();
    let bytes = journal();
    let mut c = Criterion::default().configure_from_args();
    bench_encode(&mut c, &rec);
    bench_verify(&mut c, &rec, &bytes);
    c.final_summary();

    println!("\n== journal summary (medians, same run) ==");
    rec.compare(
        "encode+hash of a typical event (target <= 3x the sha256)",
        "encode/append",
        "sha256 of the line alone",
        "encode/sha256",
    );
    match (
        rec.median_ps("verify/verifier"),
        rec.median_ps("verify/sha256"),
    ) {
        (Some(ours), Some(peer)) => println!(
            "verifier over {} lines, {} bytes: ours {} MB/s, sha2 SHA-256 ceiling {} MB/s, ratio ours/ceiling {} (target >= 300 MB/s)",
            LINES,
            bytes.len(),
            mb_per_s(bytes.len(), ours),
            mb_per_s(bytes.len(), peer),
            fixed3(peer, ours),
        ),
        _ => println!("verifier: not measured in this run (filtered out)"),
    }
}
