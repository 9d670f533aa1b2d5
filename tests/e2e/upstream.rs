//! The reference upstream over real gRPC on loopback: dedupe and counters (through the Rust
//! handle and the `stats` query), the seeded failure rate, an outage window, a failed call
//! applying nothing, invalid input, the dedupe table's limit, TLS and mTLS (and a client
//! without a valid certificate refused), and the gRPC load generator in direct mode.

mod common;

use common::grpc::*;
use heidi_grpc::proto::Query;
use heidi_grpc::upstream::UpstreamConfig;
use heidi_loadgen::grpc::{GrpcLoadConfig, GrpcTarget};
use std::time::Duration;
use tonic::Code;

#[tokio::test]
async fn repeats_are_answered_from_the_first_receipt_and_counted() {
    let up = start_upstream(UpstreamConfig::default(), None).await;
    let mut c = upstream_client(&up);
    let first = c
        .apply_batch(batch(&["a", "b"]))
        .await
        .unwrap()
        .into_inner();
    let again = c
        .apply_batch(batch(&["b", "c", "c"]))
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<_> = again
        .receipts
        .iter()
        .map(|r| r.idempotency_key.as_str())
        .collect();
    assert_eq!(
        keys,
        ["b", "c", "c"],
        "one receipt per transaction, in order"
    );
    assert!(first.receipts.iter().all(|r| r.committed && !r.duplicate));
    assert!(again.receipts[0].duplicate);
    assert_eq!(again.receipts[0].receipt_id, first.receipts[1].receipt_id);
    assert!(!again.receipts[1].duplicate && again.receipts[2].duplicate);

    let handle = up.upstream();
    for key in ["a", "b", "c"] {
        assert_eq!(handle.applies(key), 1, "{key}");
    }
    assert_eq!(handle.applies("never"), 0);
    let stats = handle.stats();
    assert_eq!(
        (
            stats.calls,
            stats.batches,
            stats.transactions_applied,
            stats.duplicates
        ),
        (2, 2, 3, 2)
    );
    assert_eq!((stats.batch_sizes[2], stats.batch_sizes[3]), (1, 1));
    assert_eq!(
        (stats.distinct_keys, stats.keys_applied_more_than_once),
        (3, 0)
    );
    // The same figures from outside, through the `stats` query.
    let mut outside = query_stats(&mut c).await;
    assert_eq!(outside.queries, 1);
    outside.queries = 0;
    assert_eq!(outside, stats);
    up.stop().await.unwrap();
}

#[tokio::test]
async fn the_applied_query_reports_one_key_and_unknown_queries_fail() {
    let up = start_upstream(UpstreamConfig::default(), None).await;
    let mut c = upstream_client(&up);
    let r = c.apply_batch(batch(&["k1"])).await.unwrap().into_inner();
    let ask = |text: &str| Query {
        kind: 1,
        text: text.to_owned(),
    };
    let reply = c.query(ask("applied k1")).await.unwrap().into_inner();
    assert!(reply.success);
    let v: serde_json::Value = serde_json::from_slice(&reply.result).unwrap();
    assert_eq!(v["applies"], 1);
    assert_eq!(v["receipt_id"], r.receipts[0].receipt_id.as_str());
    let reply = c.query(ask("applied k2")).await.unwrap().into_inner();
    let v: serde_json::Value = serde_json::from_slice(&reply.result).unwrap();
    assert_eq!(
        (v["applies"].as_u64(), v["receipt_id"].is_null()),
        (Some(0), true)
    );
    let reply = c
        .query(ask("SELECT * WHERE {}"))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !reply.success && reply.error.contains("stats"),
        "{}",
        reply.error
    );
}

#[tokio::test]
async fn the_failure_rate_is_seeded_and_failed_calls_apply_nothing() {
    let config = UpstreamConfig {
        failure_rate_ppm: 200_000,
        seed: 7,
        ..Default::default()
    };
    let mut patterns = Vec::new();
    for _run in 0..2 {
        let up = start_upstream(config.clone(), None).await;
        let mut c = upstream_client(&up);
        let mut failed = Vec::new();
        for i in 0..1000 {
            let key = format!("t{i}");
            match c.apply_batch(batch(&[&key])).await {
                Ok(_) => assert_eq!(up.upstream().applies(&key), 1),
                Err(status) => {
                    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                    assert_eq!(
                        up.upstream().applies(&key),
                        0,
                        "a failed call applied {key}"
                    );
                    failed.push(i);
                }
            }
        }
        // 20 % of 1000: the binomial's standard deviation is ~12.6; allow ±5σ.
        assert!(
            (137..=263).contains(&failed.len()),
            "{} failures",
            failed.len()
        );
        let stats = up.upstream().stats();
        assert_eq!(stats.failures_injected, failed.len() as u64);
        assert_eq!(stats.transactions_applied, 1000 - failed.len() as u64);
        patterns.push(failed);
    }
    assert_eq!(
        patterns[0], patterns[1],
        "same seed and call order, same failures"
    );
}

#[tokio::test]
async fn an_outage_window_fails_every_call_until_it_ends() {
    let end = Duration::from_millis(800);
    let config = UpstreamConfig {
        outages: vec![format!("0..{}", end.as_millis()).parse().unwrap()],
        ..Default::default()
    };
    let up = start_upstream(config, None).await;
    let mut c = upstream_client(&up);
    let status = c.apply_batch(batch(&["o1", "o2"])).await.unwrap_err();
    assert!(up.upstream().uptime() > Duration::ZERO);
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("outage"), "{status:?}");
    assert_eq!(up.upstream().applies("o1") + up.upstream().applies("o2"), 0);
    // Retry the same batch until it goes through; it must not before the window ends.
    let handle = up.upstream().clone();
    wait_for("the outage to end", || {
        let mut c = c.clone();
        let handle = handle.clone();
        async move {
            match c.apply_batch(batch(&["o1", "o2"])).await {
                Ok(r) => {
                    assert!(handle.uptime() >= end, "succeeded inside the window");
                    assert!(r.into_inner().receipts.iter().all(|r| !r.duplicate));
                    true
                }
                Err(s) => {
                    assert_eq!(s.code(), Code::Unavailable);
                    false
                }
            }
        }
    })
    .await;
    let stats = up.upstream().stats();
    assert!(stats.outage_failures >= 1);
    assert_eq!(stats.outage_failures, stats.failures_injected);
    assert_eq!((stats.transactions_applied, stats.batches), (2, 1));
}

#[tokio::test]
async fn a_call_failed_while_down_applies_nothing_of_its_batch() {
    let up = start_upstream(UpstreamConfig::default(), None).await;
    let mut c = upstream_client(&up);
    let keys: Vec<String> = (0..8).map(|i| format!("d{i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    up.upstream().set_down(true);
    let status = c.apply_batch(batch(&keys)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(keys.iter().all(|k| up.upstream().applies(k) == 0));
    up.upstream().set_down(false);
    let r = c.apply_batch(batch(&keys)).await.unwrap().into_inner();
    assert!(
        r.receipts.iter().all(|r| r.committed && !r.duplicate),
        "first real apply"
    );
    assert!(keys.iter().all(|k| up.upstream().applies(k) == 1));
    let stats = up.upstream().stats();
    assert_eq!(
        (stats.failures_injected, stats.transactions_applied),
        (1, 8)
    );
    assert_eq!(stats.batch_sizes[8], 1);
}

#[tokio::test]
async fn invalid_batches_are_refused_and_the_server_keeps_serving() {
    let up = start_upstream(UpstreamConfig::default(), None).await;
    let mut c = upstream_client(&up);
    let nine: Vec<String> = (0..9).map(|i| format!("n{i}")).collect();
    let nine: Vec<&str> = nine.iter().map(String::as_str).collect();
    let long = "k".repeat(129);
    let cases = [
        (batch(&[]), "no transaction"),
        (batch(&nine), "9 transactions"),
        (
            batch(&["ok", ""]),
            "transaction 1: idempotency key is empty",
        ),
        (batch(&[&long]), "129 bytes"),
    ];
    for (b, why) in cases {
        let status = c.apply_batch(b).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{why}");
        assert!(status.message().contains(why), "{status:?}");
    }
    assert_eq!(up.upstream().applies("ok") + up.upstream().applies("n0"), 0);
    let edge = "k".repeat(128);
    c.apply_batch(batch(&[&edge])).await.unwrap();
    let stats = up.upstream().stats();
    assert_eq!((stats.invalid, stats.transactions_applied), (4, 1));
}

#[tokio::test]
async fn a_full_dedupe_table_refuses_new_keys_and_keeps_the_old() {
    let config = UpstreamConfig {
        capacity: 16,
        ..Default::default()
    };
    let up = start_upstream(config, None).await;
    let mut c = upstream_client(&up);
    let mut accepted = Vec::new();
    for i in 0.. {
        let key = format!("f{i}");
        match c.apply_batch(batch(&[&key])).await {
            Ok(_) => accepted.push(key),
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert_eq!(up.upstream().applies(&key), 0);
                break;
            }
        }
        assert!(i < 16, "a 16-key table took a 17th key");
    }
    assert!(accepted.len() >= 2, "refused too early: {}", accepted.len());
    // Known keys are still answered from the record: nothing was forgotten.
    for key in &accepted {
        let r = c.apply_batch(batch(&[key])).await.unwrap().into_inner();
        assert!(r.receipts[0].duplicate, "{key}");
    }
    let stats = up.upstream().stats();
    assert_eq!(stats.exhausted, 1);
    assert_eq!(stats.transactions_applied, accepted.len() as u64);
}

#[tokio::test]
async fn concurrent_repeats_of_the_same_keys_apply_each_once() {
    let up = start_upstream(UpstreamConfig::default(), None).await;
    let c = upstream_client(&up);
    let mut tasks = Vec::new();
    for caller in 0..32 {
        let mut c = c.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..20 {
                // Every caller sends the same 4 keys of this round, in its own order.
                let mut keys: Vec<String> = (0..4).map(|k| format!("r{round}-{k}")).collect();
                keys.rotate_left(caller % 4);
                let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                c.apply_batch(batch(&keys)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = up.upstream().stats();
    assert_eq!(stats.transactions_applied, 80);
    assert_eq!(stats.duplicates, 32 * 80 - 80);
    assert!(up.upstream().keys_applied_more_than_once().is_empty());
}

#[tokio::test]
async fn tls_works_and_plain_text_is_refused() {
    let pki = TestPki::new();
    let up = start_upstream(UpstreamConfig::default(), Some(pki.server_tls(false))).await;
    let uri = format!("https://{}", up.addr());
    let mut c = heidi_grpc::proto::upstream_client::UpstreamClient::new(channel(
        &uri,
        Some(pki.client_tls(None)),
    ));
    c.apply_batch(batch(&["tls-1"])).await.unwrap();
    let mut plain = upstream_client(&up);
    assert!(plain.apply_batch(batch(&["tls-2"])).await.is_err());
    assert_eq!(up.upstream().applies("tls-2"), 0);
}

#[tokio::test]
async fn mtls_requires_a_client_certificate_from_the_ca() {
    let pki = TestPki::new();
    let up = start_upstream(UpstreamConfig::default(), Some(pki.server_tls(true))).await;
    let uri = format!("https://{}", up.addr());
    let client =
        |tls| heidi_grpc::proto::upstream_client::UpstreamClient::new(channel(&uri, Some(tls)));
    let mut good = client(pki.client_tls(Some(&pki.client)));
    good.apply_batch(batch(&["m-good"])).await.unwrap();
    let mut anonymous = client(pki.client_tls(None));
    assert!(anonymous.apply_batch(batch(&["m-anon"])).await.is_err());
    let mut rogue = client(pki.client_tls(Some(&pki.rogue_client)));
    assert!(rogue.apply_batch(batch(&["m-rogue"])).await.is_err());
    let h = up.upstream();
    assert_eq!(
        (
            h.applies("m-good"),
            h.applies("m-anon"),
            h.applies("m-rogue")
        ),
        (1, 0, 0)
    );
    assert_eq!(
        h.stats().calls,
        1,
        "refused clients never reached the service"
    );
}

#[tokio::test]
async fn the_grpc_load_generator_drives_the_upstream_directly() {
    let config = UpstreamConfig {
        cost: Duration::from_millis(1),
        concurrency: 4,
        ..Default::default()
    };
    let up = start_upstream(config, None).await;
    let report = heidi_loadgen::grpc::run(&GrpcLoadConfig {
        endpoint: up.endpoint(),
        target: GrpcTarget::Upstream,
        callers: 8,
        duration: Duration::from_millis(300),
        tls: None,
        key_prefix: "lg".to_owned(),
    })
    .await
    .unwrap();
    let s = report.summary;
    assert!(s.requests > 0);
    assert_eq!(s.errors, 0, "{:?}", report.first_error);
    assert!(s.p50_ns > 0 && s.p99_ns >= s.p50_ns);
    let stats = up.upstream().stats();
    assert_eq!(
        stats.transactions_applied, s.requests,
        "one unique transaction per call"
    );
    assert_eq!(stats.batch_sizes[1], s.requests);
    assert_eq!(stats.duplicates, 0);
}

#[tokio::test]
async fn the_grpc_load_generator_counts_errors() {
    let up = start_upstream(UpstreamConfig::default(), None).await;
    up.upstream().set_down(true);
    let report = heidi_loadgen::grpc::run(&GrpcLoadConfig {
        endpoint: up.endpoint(),
        target: GrpcTarget::Upstream,
        callers: 2,
        duration: Duration::from_millis(100),
        tls: None,
        key_prefix: "err".to_owned(),
    })
    .await
    .unwrap();
    assert!(report.summary.requests > 0);
    assert_eq!(report.summary.errors, report.summary.requests);
    assert!(report.first_error.unwrap().contains("Unavailable"));
}

#[tokio::test]
async fn heidi_upstream_serves_until_sigterm_and_prints_its_counters() {
    let p = UpstreamProcess::spawn(&["--failure-rate", "100%", "--seed", "3"]);
    p.wait_listening().await;
    let mut c = heidi_grpc::proto::upstream_client::UpstreamClient::new(channel(
        &format!("http://{}", p.addr),
        None,
    ));
    let status = c.apply_batch(batch(&["cli-1"])).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let stats = query_stats(&mut c).await;
    assert_eq!((stats.calls, stats.failures_injected), (1, 1));
    // Stop from a blocking thread: the runtime keeps serving the client's connection.
    let (code, out, err) = tokio::task::spawn_blocking(move || p.stop()).await.unwrap();
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["failures_injected"], 1);
    assert!(err.contains("listening on http://127.0.0.1:"), "{err}");
}

#[tokio::test]
async fn heidi_upstream_serves_mtls_from_pem_files() {
    let pki = TestPki::new();
    let s = pki.server_files(true);
    let (cert, key) = (
        s.identity.cert.to_str().unwrap(),
        s.identity.key.to_str().unwrap(),
    );
    let ca = pki.ca.to_str().unwrap();
    let p = UpstreamProcess::spawn(&["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", ca]);
    p.wait_listening().await;
    let uri = format!("https://{}", p.addr);
    let mut good = heidi_grpc::proto::upstream_client::UpstreamClient::new(channel(
        &uri,
        Some(pki.client_tls(Some(&pki.client))),
    ));
    good.apply_batch(batch(&["cli-tls"])).await.unwrap();
    let mut anonymous = heidi_grpc::proto::upstream_client::UpstreamClient::new(channel(
        &uri,
        Some(pki.client_tls(None)),
    ));
    assert!(anonymous.apply_batch(batch(&["cli-anon"])).await.is_err());
    let (code, out, _) = tokio::task::spawn_blocking(move || p.stop()).await.unwrap();
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (v["calls"].as_u64(), v["transactions_applied"].as_u64()),
        (Some(1), Some(1))
    );
}

#[test]
fn heidi_upstream_refuses_bad_flags_and_files_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not pem").unwrap();
    let junk = junk.to_str().unwrap();
    let missing = dir.path().join("missing.key");
    let missing = missing.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--failure-rate", "1.5"], "expected 0 to 1"),
        (&["--outage", "9..3"], "START_MS..END_MS"),
        (&["--concurrency", "0"], "concurrency 0"),
        (&["--capacity", "0"], "capacity 0"),
        (
            &["--tls-cert", junk, "--tls-key", missing],
            "junk.pem: no CERTIFICATE",
        ),
        (&["--tls-key", missing], "--tls-cert"),
    ];
    for (args, want) in cases {
        let (code, _, err) = common::run_cmd(
            common::heidi_bare()
                .args(["upstream", "--listen", "127.0.0.1:0"])
                .args(args),
        );
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // A non-loopback address needs the same opt-in as the sidecar's.
    let (code, _, err) =
        common::run_cmd(common::heidi_bare().args(["upstream", "--listen", "0.0.0.0:0"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pass --allow-remote"), "{err}");
    let (code, out, _) = common::run_cmd(common::heidi_bare().args(["upstream", "--help"]));
    assert_eq!(code, 0);
    for flag in [
        "--listen",
        "--failure-rate",
        "--latency-ms",
        "--cost-ms",
        "--outage",
        "--seed",
        "--tls-client-ca",
        "--allow-remote",
        "127.0.0.1:50052",
        "stats",
    ] {
        assert!(out.contains(flag), "--help lacks {flag}");
    }
}

#[tokio::test]
async fn stopping_gives_calls_in_flight_a_bounded_grace() {
    use heidi_grpc::upstream::SHUTDOWN_GRACE;
    let config = UpstreamConfig {
        latency: Duration::from_secs(60),
        ..Default::default()
    };
    let up = start_upstream(config, None).await;
    let mut c = upstream_client(&up);
    let handle = up.upstream().clone();
    let call = tokio::spawn(async move { c.apply_batch(batch(&["slow"])).await });
    wait_for("the call to arrive", || {
        let handle = handle.clone();
        async move { handle.stats().calls == 1 }
    })
    .await;
    let t0 = std::time::Instant::now();
    up.stop().await.unwrap();
    // Bounded by the grace, not by the 60 s call (generous margin for a loaded machine).
    assert!(
        t0.elapsed() < SHUTDOWN_GRACE + Duration::from_secs(5),
        "{:?}",
        t0.elapsed()
    );
    assert!(call.await.unwrap().is_err(), "the cut call fails");
    assert_eq!(handle.applies("slow"), 0);
}
