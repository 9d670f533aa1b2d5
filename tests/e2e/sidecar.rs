//! The sidecar over real gRPC on loopback, against the reference upstream: the
//! acceptance points 1–7 (batch at size and at linger; exactly-once under a 20 % failing
//! upstream with 64 callers; the breaker's open / half-open / close cycle; the retry budget;
//! a full queue; the deadline; TLS and mTLS), the metrics endpoint, and the binary's
//! environment guard and graceful stop on SIGTERM.

mod common;

use common::grpc::*;
use heidi_grpc::proto::sidecar_client::SidecarClient;
use heidi_grpc::proto::{BreakerState, HealthCheckRequest, Query, TransactionResponse};
use heidi_grpc::sidecar::{self, RunningSidecar, SidecarConfig};
use heidi_grpc::upstream::{Running, UpstreamConfig};
use std::io::BufRead;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// A sidecar configuration for tests: ephemeral loopback port, upstream at `up`.
fn config(up: &Running) -> SidecarConfig {
    let mut c = SidecarConfig::defaults();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.upstream = up.endpoint();
    c.jitter_seed = Some(42);
    c
}

async fn start(c: &SidecarConfig) -> RunningSidecar {
    sidecar::start(c).await.unwrap()
}

fn client(s: &RunningSidecar) -> SidecarClient<Channel> {
    SidecarClient::new(channel(&format!("http://{}", s.addr()), None))
}

async fn submit(c: &SidecarClient<Channel>, key: &str) -> Result<TransactionResponse, Status> {
    let mut c = c.clone();
    c.submit_transaction(txn(key)).await.map(|r| r.into_inner())
}

/// Submits every key at once, answers in key order.
async fn submit_many(
    c: &SidecarClient<Channel>,
    keys: &[String],
) -> Vec<Result<TransactionResponse, Status>> {
    let tasks: Vec<_> = keys
        .iter()
        .map(|k| {
            let (c, k) = (c.clone(), k.clone());
            tokio::spawn(async move { submit(&c, &k).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

async fn breaker_state(c: &SidecarClient<Channel>) -> BreakerState {
    let mut c = c.clone();
    let h = c
        .health_check(HealthCheckRequest {})
        .await
        .unwrap()
        .into_inner();
    BreakerState::try_from(h.breaker).unwrap()
}

// (1) A batch goes at 8 transactions, and at linger expiry with 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_goes_at_eight_and_at_linger_expiry_with_three() {
    const LINGER_MS: u64 = 1_000;
    let up = start_upstream(UpstreamConfig::default(), None).await;
    let mut c = config(&up);
    // Long enough that eight submissions arrive within it on a busy machine; the linger's
    // precision is the engine's virtual-clock test (`a_short_batch_goes_when_the_linger_expires`).
    c.batch_linger = heidi_core::Duration::from_millis(LINGER_MS);
    c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let s = start(&c).await;
    let cl = client(&s);
    // Warm the connections so that the timings below measure the batcher only.
    let _ = cl
        .clone()
        .health_check(HealthCheckRequest {})
        .await
        .unwrap();

    let eight = keys("eight", 8);
    let started = Instant::now();
    let answers = submit_many(&cl, &eight).await;
    let took = started.elapsed();
    for (key, a) in eight.iter().zip(&answers) {
        let r = a.as_ref().unwrap();
        assert_eq!(r.receipt.as_ref().unwrap().idempotency_key, *key);
        assert_eq!(r.batch_size, 8);
    }
    // Sent at size, not at linger (the metrics below say so too).
    assert!(
        took < Duration::from_millis(LINGER_MS),
        "8 transactions took {took:?}"
    );
    assert_eq!(up.upstream().stats().batch_sizes[8], 1);

    let three = keys("three", 3);
    let started = Instant::now();
    let answers = submit_many(&cl, &three).await;
    let took = started.elapsed();
    for a in &answers {
        assert_eq!(a.as_ref().unwrap().batch_size, 3);
    }
    // Linger starts when the first of the three reaches the engine, after `started`, so
    // `took` is at least the linger; the upper bound only catches a linger that never fires.
    assert!(
        took >= Duration::from_millis(LINGER_MS) && took < Duration::from_millis(LINGER_MS + 5_000),
        "3 transactions took {took:?}, linger {LINGER_MS} ms"
    );
    assert_eq!(up.upstream().stats().batch_sizes[3], 1);

    // The metrics endpoint names both flushes.
    let url = format!("http://{}/metrics", s.metrics_addr().unwrap());
    let text = tokio::task::spawn_blocking(move || {
        ureq::get(&url)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    })
    .await
    .unwrap();
    for needle in [
        "heidi_sidecar_batch_flush_count_total{reason=\"size\"} 1",
        "heidi_sidecar_batch_flush_count_total{reason=\"linger\"} 1",
        "heidi_sidecar_batch_size_count 2",
        "heidi_sidecar_circuit_breaker_state 0",
        "heidi_sidecar_retry_count_total 0",
        "heidi_sidecar_upstream_latency_seconds_count{method=\"apply_batch\",outcome=\"ok\"} 2",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    s.shutdown().await.unwrap();
    up.stop().await.unwrap();
}

// (2) 10,000 transactions from 64 callers, 20 % of upstream calls failing: each applied
// exactly once, each caller gets its own receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_transactions_through_a_failing_upstream_apply_exactly_once() {
    const CALLERS: usize = 64;
    const TOTAL: usize = 10_000;
    let upstream = UpstreamConfig {
        failure_rate_ppm: 200_000,
        seed: 7,
        concurrency: 16,
        ..UpstreamConfig::default()
    };
    let up = start_upstream(upstream, None).await;
    let mut c = config(&up);
    c.batch_linger = heidi_core::Duration::from_millis(5);
    c.retry.base_delay = heidi_core::Duration::from_millis(2);
    c.retry.max_attempts = 6;
    c.budget.ratio_permille = 1_000;
    c.breaker.reset_timeout = heidi_core::Duration::from_millis(50);
    let s = start(&c).await;
    let cl = client(&s);
    let tasks: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let cl = cl.clone();
            tokio::spawn(async move {
                let mut resubmits = 0;
                for i in (caller..TOTAL).step_by(CALLERS) {
                    let key = format!("tx-{i}");
                    // A caller whose batch ran out of attempts, or met the breaker, submits
                    // again with the same key (bounded): what a real client does.
                    let r = loop {
                        match submit(&cl, &key).await {
                            Ok(r) => break r,
                            Err(e) if resubmits < 200 => {
                                assert!(matches!(e.code(), Code::Unavailable), "{key}: {e:?}");
                                resubmits += 1;
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            Err(e) => panic!("{key}: too many resubmits, last {e:?}"),
                        }
                    };
                    let receipt = r.receipt.unwrap();
                    assert_eq!(
                        receipt.idempotency_key, key,
                        "a caller got another's receipt"
                    );
                    assert!(receipt.committed);
                }
                resubmits
            })
        })
        .collect();
    let mut resubmits = 0;
    for t in tasks {
        resubmits += t.await.unwrap();
    }
    let stats = up.upstream().stats();
    assert_eq!(stats.transactions_applied, TOTAL as u64);
    assert_eq!(stats.distinct_keys, TOTAL as u64);
    assert_eq!(stats.keys_applied_more_than_once, 0);
    for i in (0..TOTAL).step_by(97) {
        assert_eq!(up.upstream().applies(&format!("tx-{i}")), 1);
    }
    assert!(stats.failures_injected > 0, "the upstream failed no call");
    assert!(s.engine().metrics().retries() > 0);
    eprintln!(
        "calls {}, injected failures {}, retries {}, caller resubmits {resubmits}",
        stats.calls,
        stats.failures_injected,
        s.engine().metrics().retries()
    );
    s.shutdown().await.unwrap();
    up.stop().await.unwrap();
}

// (3) Upstream down: the breaker opens after 5 failures, rejects at once with a hint,
// half-opens on time, lets one probe through, closes when the upstream is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_rejects_at_once_half_opens_and_closes() {
    let up = start_upstream(UpstreamConfig::default(), None).await;
    up.upstream().set_down(true);
    let mut c = config(&up);
    c.batch_size = 1;
    c.retry.max_attempts = 1;
    // Long enough that the rejections below all fall in the open period on a busy machine.
    c.breaker.reset_timeout = heidi_core::Duration::from_millis(2_000);
    let s = start(&c).await;
    let cl = client(&s);
    for i in 0..5 {
        assert_eq!(
            breaker_state(&cl).await,
            BreakerState::Closed,
            "before failure {i}"
        );
        let e = submit(&cl, &format!("down-{i}")).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable);
    }
    assert_eq!(breaker_state(&cl).await, BreakerState::Open);
    let calls = up.upstream().stats().calls;
    assert_eq!(calls, 5);

    // Rejected at once: the fastest of 20 round trips over gRPC, and the engine's own answer.
    let mut fastest = Duration::MAX;
    for i in 0..20 {
        let started = Instant::now();
        let e = submit(&cl, &format!("open-{i}")).await.unwrap_err();
        fastest = fastest.min(started.elapsed());
        assert_eq!(e.code(), Code::Unavailable);
        assert!(e.message().contains("retry after"), "{}", e.message());
        let hint: u64 = e
            .metadata()
            .get("retry-after-ms")
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(hint <= 2_000, "hint {hint}");
    }
    let mut direct = Duration::MAX;
    for i in 0..20 {
        let started = Instant::now();
        let e = s
            .engine()
            .submit(txn(&format!("open-direct-{i}")))
            .await
            .unwrap_err();
        direct = direct.min(started.elapsed());
        assert_eq!(e.code(), Code::Unavailable);
    }
    // The acceptance bound (< 1 ms) on the fastest of 20 of the sidecar's own answers (one
    // answer alone may be preempted on a busy machine); the gRPC round trip (debug build,
    // loopback) gets a generous margin.
    assert!(
        direct < Duration::from_millis(1),
        "rejection took {direct:?}"
    );
    assert!(
        fastest < Duration::from_millis(5),
        "gRPC rejection took {fastest:?}"
    );
    assert_eq!(
        up.upstream().stats().calls,
        calls,
        "an open breaker let a call through"
    );

    // Half-opens on time, without traffic.
    wait_for("half-open", || async {
        breaker_state(&cl).await == BreakerState::HalfOpen
    })
    .await;
    // One probe only: three at once while the upstream is still down reach it once.
    for r in submit_many(&cl, &keys("probe", 3)).await {
        assert_eq!(r.unwrap_err().code(), Code::Unavailable);
    }
    assert_eq!(
        up.upstream().stats().calls,
        calls + 1,
        "more than one probe"
    );
    assert_eq!(
        breaker_state(&cl).await,
        BreakerState::Open,
        "a failed probe re-opens"
    );

    up.upstream().set_down(false);
    wait_for("half-open again", || async {
        breaker_state(&cl).await == BreakerState::HalfOpen
    })
    .await;
    let r = submit(&cl, "recovered").await.unwrap();
    assert!(r.receipt.unwrap().committed);
    assert_eq!(breaker_state(&cl).await, BreakerState::Closed);
    assert!(submit(&cl, "after").await.is_ok());
    s.shutdown().await.unwrap();
    up.stop().await.unwrap();
}

// (4) During an outage the retry budget caps retries at its ratio of requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_budget_caps_retries_during_an_outage() {
    const REQUESTS: usize = 100;
    let up = start_upstream(UpstreamConfig::default(), None).await;
    up.upstream().set_down(true);
    let mut c = config(&up);
    c.batch_size = 1;
    c.retry.max_attempts = 4;
    c.retry.base_delay = heidi_core::Duration::from_millis(1);
    c.breaker.failure_threshold = 10_000; // keep the breaker out of this test
    c.budget.ratio_permille = 100; // retries ≤ 10 % of requests
    c.budget.min_retries_per_sec = 0;
    let s = start(&c).await;
    let cl = client(&s);
    let answers = submit_many(&cl, &keys("outage", REQUESTS)).await;
    let mut budget_refusals = 0;
    for a in answers {
        let e = a.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable);
        if e.message().contains("retry budget exhausted") {
            budget_refusals += 1;
        }
    }
    let retries = s.engine().metrics().retries();
    let calls = up.upstream().stats().calls;
    // Without a budget: 3 retries per request, 300 in all. With it: at most 10 %.
    assert!(retries > 0, "the budget allowed no retry at all");
    assert!(
        retries <= (REQUESTS / 10) as u64,
        "{retries} retries for {REQUESTS} requests"
    );
    assert_eq!(calls, REQUESTS as u64 + retries);
    assert!(
        budget_refusals >= REQUESTS - 10,
        "{budget_refusals} refusals named the budget"
    );
    s.shutdown().await.unwrap();
    up.stop().await.unwrap();
}

// (5) A full queue answers RESOURCE_EXHAUSTED at once; what was accepted is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_resource_exhausted_at_once() {
    let slow = UpstreamConfig {
        latency: Duration::from_millis(400),
        ..UpstreamConfig::default()
    };
    let up = start_upstream(slow, None).await;
    let mut c = config(&up);
    c.batch_size = 1;
    c.max_in_flight = 1;
    c.queue_capacity = 4;
    let s = start(&c).await;
    let cl = client(&s);
    // One upstream, one in the batcher, four in the queue: six accepted, the rest refused.
    let first = {
        let cl = cl.clone();
        tokio::spawn(async move { submit(&cl, "first").await })
    };
    wait_for("the first call upstream", || async {
        s.engine().snapshot().in_flight == 1
    })
    .await;
    let started = Instant::now();
    let rest: Vec<_> = keys("q", 19)
        .into_iter()
        .map(|k| {
            let cl = cl.clone();
            tokio::spawn(async move {
                let r = submit(&cl, &k).await;
                (r, Instant::now())
            })
        })
        .collect();
    let (mut refused, mut served) = (0, 0);
    for t in rest {
        let (r, at) = t.await.unwrap();
        match r {
            Ok(_) => served += 1,
            Err(e) => {
                assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
                assert!(at - started < Duration::from_millis(300), "refused late");
                refused += 1;
            }
        }
    }
    assert!(first.await.unwrap().is_ok());
    assert_eq!((served, refused), (5, 14));
    assert_eq!(up.upstream().stats().transactions_applied, 6);
    s.shutdown().await.unwrap();
    up.stop().await.unwrap();
}

// (6) A slow upstream hits the deadline: DEADLINE_EXCEEDED long before it would answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_hits_the_deadline() {
    let slow = UpstreamConfig {
        latency: Duration::from_millis(1_000),
        ..UpstreamConfig::default()
    };
    let up = start_upstream(slow, None).await;
    let mut c = config(&up);
    c.batch_size = 1;
    c.upstream_deadline = Duration::from_millis(100);
    c.retry.max_attempts = 2;
    c.retry.base_delay = heidi_core::Duration::from_millis(10);
    let s = start(&c).await;
    let cl = client(&s);
    let started = Instant::now();
    let e = submit(&cl, "slow").await.unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(e.message().contains("2 attempt"), "{}", e.message());
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "took {:?}",
        started.elapsed()
    );
    let q = Query {
        kind: 1,
        text: "stats".into(),
    };
    let e = cl.clone().submit_query(q).await.unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded);
    s.shutdown().await.unwrap();
    up.stop().await.unwrap();
}

// (7) TLS and mTLS on both sides; a client without a valid certificate is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mtls_work_and_a_client_without_a_valid_certificate_is_refused() {
    let pki = TestPki::new();
    let up = start_upstream(UpstreamConfig::default(), Some(pki.server_tls(true))).await;
    let mut c = config(&up);
    c.upstream = format!("https://{SERVER_NAME}:{}", up.addr().port());
    c.upstream_tls = Some(pki.client_files(Some(&pki.client)));
    c.batch_size = 1;

    // TLS listener, no client certificate required.
    c.tls = Some(pki.server_files(false));
    let s = start(&c).await;
    let url = format!("https://{}", s.addr());
    let tls_client = SidecarClient::new(channel(&url, Some(pki.client_tls(None))));
    assert!(
        submit(&tls_client, "tls-1")
            .await
            .unwrap()
            .receipt
            .unwrap()
            .committed
    );
    let plain = SidecarClient::new(channel(&format!("http://{}", s.addr()), None));
    assert!(
        submit(&plain, "plain-1").await.is_err(),
        "plaintext accepted by a TLS listener"
    );
    s.shutdown().await.unwrap();

    // mTLS listener.
    c.tls = Some(pki.server_files(true));
    let s = start(&c).await;
    let url = format!("https://{}", s.addr());
    let good = SidecarClient::new(channel(&url, Some(pki.client_tls(Some(&pki.client)))));
    assert!(
        submit(&good, "mtls-1")
            .await
            .unwrap()
            .receipt
            .unwrap()
            .committed
    );
    let anonymous = SidecarClient::new(channel(&url, Some(pki.client_tls(None))));
    assert!(
        submit(&anonymous, "anon-1").await.is_err(),
        "no certificate accepted"
    );
    let rogue = SidecarClient::new(channel(&url, Some(pki.client_tls(Some(&pki.rogue_client)))));
    assert!(
        submit(&rogue, "rogue-1").await.is_err(),
        "foreign certificate accepted"
    );
    s.shutdown().await.unwrap();

    // An upstream client without a valid certificate is refused by the mTLS upstream.
    c.tls = None;
    c.upstream_tls = Some(pki.client_files(Some(&pki.rogue_client)));
    c.retry.max_attempts = 1;
    let s = start(&c).await;
    assert!(submit(&client(&s), "rogue-up").await.is_err());
    s.shutdown().await.unwrap();

    let applied = up.upstream();
    for (key, n) in [
        ("tls-1", 1),
        ("mtls-1", 1),
        ("plain-1", 0),
        ("anon-1", 0),
        ("rogue-1", 0),
        ("rogue-up", 0),
    ] {
        assert_eq!(applied.applies(key), n, "{key}");
    }
    up.stop().await.unwrap();
}

/// Starts the binary on an ephemeral loopback port with `env` and waits for its
/// `listening ADDR` line; returns the process and the address.
fn spawn_sidecar(env: &[(&str, &str)]) -> (std::process::Child, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_heidi-sidecar"))
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("HEIDI_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().strip_prefix("listening ").unwrap().to_owned();
    (child, addr)
}

/// The binary: a start-up guard on the seed's variables, and SIGTERM with a pending batch.
#[test]
fn the_binary_refuses_batch_size_nine_and_drains_on_sigterm() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_heidi-sidecar"))
        .env("BATCH_SIZE", "9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("BATCH_SIZE") && stderr.contains("guard"),
        "{stderr}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = rt.block_on(start_upstream(UpstreamConfig::default(), None));
    let (mut child, addr) = spawn_sidecar(&[
        ("WARM_ORCHESTRATOR_ENDPOINT", &up.endpoint()),
        ("BATCH_SIZE", "8"),
        ("BATCH_TIMEOUT_MS", "60000"),
    ]);
    let answers = rt.block_on(async {
        let cl = SidecarClient::new(channel(&format!("http://{addr}"), None));
        let pending = {
            let cl = cl.clone();
            tokio::spawn(async move { submit_many(&cl, &keys("term", 3)).await })
        };
        wait_for("three queued", || {
            let mut cl = cl.clone();
            async move {
                let h = cl
                    .health_check(HealthCheckRequest {})
                    .await
                    .unwrap()
                    .into_inner();
                h.queued == 3
            }
        })
        .await;
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::TERM,
        )
        .unwrap();
        pending.await.unwrap()
    });
    for a in answers {
        assert_eq!(
            a.unwrap().batch_size,
            3,
            "the pending batch was flushed at SIGTERM"
        );
    }
    let status = common::wait_exit(&mut child);
    assert_eq!(status.code(), Some(0));
    assert_eq!(up.upstream().stats().transactions_applied, 3);
    rt.block_on(up.stop()).unwrap();
}

/// A full dedupe table is a refusal of the new keys, not an upstream failure: each new key
/// fails once (no retries), the breaker stays closed, and known keys keep being answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_upstream_key_table_refuses_new_keys_without_retries_or_tripping_the_breaker() {
    let up = start_upstream(
        UpstreamConfig {
            capacity: 8,
            ..Default::default()
        },
        None,
    )
    .await;
    let mut c = config(&up);
    c.batch_size = 1;
    c.breaker.failure_threshold = 1;
    let s = start(&c).await;
    let cl = client(&s);
    let mut refused = 0u64;
    for key in keys("cap", 10) {
        match submit(&cl, &key).await {
            Ok(r) => assert_eq!(r.attempts, 1),
            Err(e) => {
                refused += 1;
                assert_eq!(e.code(), Code::ResourceExhausted, "{key}: {e:?}");
                assert!(e.message().contains("after 1 attempt"), "{}", e.message());
                assert_eq!(e.metadata().get("heidi-reason").unwrap(), "key_capacity");
            }
        }
        assert_eq!(breaker_state(&cl).await, BreakerState::Closed, "{key}");
    }
    assert!(
        refused >= 2,
        "a table of 8 took {} of 10 keys",
        10 - refused
    );
    let known = submit(&cl, "cap-0").await.unwrap();
    assert!(known.receipt.unwrap().duplicate);
    let stats = up.upstream().stats();
    assert_eq!(
        stats.exhausted, refused,
        "one call per refused key: no retries"
    );
    s.shutdown().await.unwrap();
    up.stop().await.unwrap();
}

/// With batches of 8, a full dedupe table refuses only the new keys that do not fit: the
/// upstream names the refused transaction, the sidecar fails it alone and sends the rest of
/// the batch again (not a retry). A known key is answered from its record and the one new
/// key with a slot is applied; nothing is retried and the breaker stays closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_key_table_fails_only_the_keys_that_do_not_fit_in_a_batch_of_eight() {
    use heidi_grpc::proto::TransactionBatch;
    use heidi_grpc::proto::upstream_client::UpstreamClient;
    let up = start_upstream(
        UpstreamConfig {
            capacity: 8,
            ..Default::default()
        },
        None,
    )
    .await;
    // Seven of the table's eight slots, taken directly upstream.
    let fill = keys("fill", 7);
    let mut direct = UpstreamClient::new(channel(&up.endpoint(), None));
    let batch = TransactionBatch {
        transactions: fill.iter().map(|k| txn(k)).collect(),
    };
    direct.apply_batch(batch).await.unwrap();
    assert_eq!(up.upstream().stats().distinct_keys, 7);
    let mut c = config(&up);
    c.batch_size = 8;
    // The batch goes at 8 transactions, never at linger, whatever the machine's load.
    c.batch_linger = heidi_core::Duration::from_millis(60_000);
    c.breaker.failure_threshold = 1;
    let s = start(&c).await;
    let cl = client(&s);
    // The known key and the new key that fits go first into the batch, then six that do not.
    let two = [fill[0].clone(), "fits".to_owned()];
    let first = tokio::spawn({
        let cl = cl.clone();
        async move { submit_many(&cl, &two).await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.engine().queued().total() < 2 {
        assert!(
            Instant::now() < deadline,
            "the first two never reached the batcher"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let over = keys("over", 6);
    let refused = submit_many(&cl, &over).await;
    let first = first.await.unwrap();
    let known = first[0].as_ref().unwrap();
    assert!(known.receipt.as_ref().unwrap().duplicate, "{known:?}");
    assert_eq!((known.attempts, known.batch_size), (1, 2));
    let fits = first[1].as_ref().unwrap();
    let receipt = fits.receipt.as_ref().unwrap();
    assert!(receipt.committed && !receipt.duplicate, "{fits:?}");
    assert_eq!((fits.attempts, fits.batch_size), (1, 2));
    for (key, answer) in over.iter().zip(&refused) {
        let e = answer.as_ref().unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "{key}: {e:?}");
        assert!(e.message().contains("after 1 attempt"), "{}", e.message());
        assert!(e.message().contains(key.as_str()), "{}", e.message());
        assert_eq!(e.metadata().get("heidi-reason").unwrap(), "key_capacity");
    }
    assert_eq!(breaker_state(&cl).await, BreakerState::Closed);
    let m = s.engine().metrics();
    assert_eq!(m.retries(), 0, "no retries");
    assert_eq!(m.resubmissions(), 6, "one call again per refused key");
    let stats = up.upstream().stats();
    assert_eq!(stats.exhausted, 6, "{stats:?}");
    assert_eq!(stats.transactions_applied, 8, "{stats:?}");
    assert_eq!(stats.keys_applied_more_than_once, 0);
    assert_eq!(up.upstream().applies("fits"), 1);
    assert!(over.iter().all(|k| up.upstream().applies(k) == 0));
    s.shutdown().await.unwrap();
    up.stop().await.unwrap();
}

fn big_txn(key: &str, bytes: usize) -> heidi_grpc::proto::Transaction {
    let mut t = txn(key);
    t.actor = "a".repeat(bytes);
    t
}

/// Four 1.1 MB transactions and four small ones submitted together: every batch stays under
/// the byte cap (so under the upstream's 4 MiB message limit) and all eight are applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_transactions_are_split_into_batches_under_the_byte_cap() {
    let up = start_upstream(UpstreamConfig::default(), None).await;
    let mut c = config(&up);
    c.batch_linger = heidi_core::Duration::from_millis(200);
    let s = start(&c).await;
    let cl = client(&s);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let mut cl = cl.clone();
            let size = if i % 2 == 0 { 1_100_000 } else { 10 };
            let t = big_txn(&format!("big-{i}"), size);
            tokio::spawn(async move { cl.submit_transaction(t).await })
        })
        .collect();
    let mut sizes = Vec::new();
    for t in tasks {
        let r = t.await.unwrap().unwrap().into_inner();
        assert!(r.receipt.unwrap().committed);
        sizes.push(r.batch_size);
    }
    assert!(
        sizes.iter().all(|&n| n < 8),
        "one batch of 8 would be 4.4 MB: {sizes:?}"
    );
    let stats = up.upstream().stats();
    assert_eq!(stats.transactions_applied, 8);
    assert!(stats.batches >= 2, "{stats:?}");
    s.shutdown().await.unwrap();
    up.stop().await.unwrap();
}

/// A transaction above the byte cap is refused alone, at once, saying why; the others pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_above_the_byte_cap_is_refused_alone() {
    let up = start_upstream(UpstreamConfig::default(), None).await;
    let mut c = config(&up);
    c.batch_size = 2;
    let s = start(&c).await;
    let cl = client(&s);
    let (mut a, mut b) = (cl.clone(), cl.clone());
    let huge = big_txn("huge", 4_150_000);
    let (huge, small) = tokio::join!(
        a.submit_transaction(huge),
        b.submit_transaction(txn("small"))
    );
    let e = huge.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("above the batch byte cap") && e.message().contains("BATCH_MAX_BYTES"),
        "{}",
        e.message()
    );
    assert!(small.unwrap().into_inner().receipt.unwrap().committed);
    assert_eq!(up.upstream().applies("huge"), 0);
    s.shutdown().await.unwrap();
    up.stop().await.unwrap();
}

/// A connection that never speaks HTTP/2 cannot hold a stopping sidecar: SIGTERM ends it
/// after the bounded grace, with exit 0 (before, it waited for that connection forever).
#[test]
fn sigterm_is_not_held_up_by_a_silent_connection() {
    let (mut child, addr) = spawn_sidecar(&[("WARM_ORCHESTRATOR_ENDPOINT", "http://127.0.0.1:1")]);
    let silent = std::net::TcpStream::connect(&addr).unwrap();
    // Connections are accepted in order: once a later one is served, the silent one is held.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut cl = SidecarClient::new(channel(&format!("http://{addr}"), None));
        cl.health_check(HealthCheckRequest {}).await.unwrap();
    });
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    // wait_exit fails the test if the process is still up after the harness deadline (20 s).
    let status = common::wait_exit(&mut child);
    assert_eq!(status.code(), Some(0));
    drop(silent);
}

/// Field 1 as raw bytes: neither a UTF-8 key (`Transaction`) nor a `Transaction` message
/// (`TransactionBatch`).
#[derive(Clone, PartialEq, prost::Message)]
struct Garbage {
    #[prost(bytes = "vec", tag = "1")]
    data: Vec<u8>,
}

/// Bytes that do not decode as the request are the caller's error: INVALID_ARGUMENT from the
/// sidecar and from the reference upstream, not INTERNAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_does_not_decode_is_invalid_argument() {
    use tonic::codegen::http::uri::PathAndQuery;
    let up = start_upstream(UpstreamConfig::default(), None).await;
    let s = start(&config(&up)).await;
    let garbage = Garbage {
        data: vec![0xff; 8],
    };
    for (uri, path) in [
        (
            format!("http://{}", s.addr()),
            "/heidi.sidecar.v1.Sidecar/SubmitTransaction",
        ),
        (up.endpoint(), "/heidi.sidecar.v1.Upstream/ApplyBatch"),
    ] {
        let mut grpc = tonic::client::Grpc::new(channel(&uri, None));
        grpc.ready().await.unwrap();
        let codec = tonic_prost::ProstCodec::<Garbage, Garbage>::default();
        let e = grpc
            .unary(
                tonic::Request::new(garbage.clone()),
                PathAndQuery::from_static(path),
                codec,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{path}: {e:?}");
        assert!(e.message().contains("does not decode"), "{}", e.message());
    }
    s.shutdown().await.unwrap();
    up.stop().await.unwrap();
}
