//! The engine against a scripted fake upstream: receipts by position, reply checks, retries,
//! non-retryable failures, key validation, the in-flight bound and the shutdown flush.

use super::*;
use crate::proto::Receipt;
use crate::sidecar::upstream::CallFuture;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration as StdDuration;
use tokio::sync::Semaphore;
use tonic::Code;

/// What the fake does with its next `ApplyBatch`.
#[derive(Clone, Copy, Debug)]
enum Step {
    Ok,
    Fail(Code),
    /// Fails with RESOURCE_EXHAUSTED and this `heidi-reason`.
    Exhausted(&'static str),
    /// Answers one receipt short.
    Short,
    /// Answers with the first two receipts swapped.
    Swapped,
}

#[derive(Default)]
struct Fake {
    script: Mutex<VecDeque<Step>>,
    calls: AtomicUsize,
    running: AtomicUsize,
    most_running: AtomicUsize,
    /// When set, each call waits for a permit of its own (tests hold calls open).
    gate: Option<Arc<Semaphore>>,
    /// Keys refused like a full key table (RESOURCE_EXHAUSTED, `key_capacity`), the whole
    /// call with them, after the scripted step.
    refuse: Vec<&'static str>,
    /// Whether a refusal names the first refused key's position (`heidi-refused-index`).
    name_refused: bool,
    /// The keys of every call, in order.
    sent: Mutex<Vec<Vec<String>>>,
}

impl Fake {
    fn scripted(steps: &[Step]) -> Arc<Fake> {
        Arc::new(Fake {
            script: Mutex::new(steps.iter().copied().collect()),
            ..Fake::default()
        })
    }
}

fn receipt(key: &str) -> Receipt {
    Receipt {
        idempotency_key: key.to_owned(),
        committed: true,
        receipt_id: format!("r-{key}"),
        ..Receipt::default()
    }
}

impl UpstreamApi for Arc<Fake> {
    fn apply_batch(&self, batch: TransactionBatch, _: StdDuration) -> CallFuture<BatchReceipt> {
        let fake = Arc::clone(self);
        Box::pin(async move {
            fake.calls.fetch_add(1, Ordering::SeqCst);
            let now = fake.running.fetch_add(1, Ordering::SeqCst) + 1;
            fake.most_running.fetch_max(now, Ordering::SeqCst);
            if let Some(gate) = &fake.gate {
                // Each call takes one permit for good.
                gate.acquire().await.unwrap().forget();
            }
            fake.running.fetch_sub(1, Ordering::SeqCst);
            let keys: Vec<String> = batch
                .transactions
                .iter()
                .map(|t| t.idempotency_key.clone())
                .collect();
            fake.sent.lock().unwrap().push(keys.clone());
            let step = fake.script.lock().unwrap().pop_front().unwrap_or(Step::Ok);
            let refused = keys.iter().position(|k| fake.refuse.contains(&k.as_str()));
            if let (Step::Ok, Some(index)) = (step, refused) {
                let mut s = Status::resource_exhausted("scripted full key table");
                let key = heidi_core::upstream::REASON_METADATA;
                s.metadata_mut()
                    .insert(key, "key_capacity".parse().unwrap());
                if fake.name_refused {
                    let key = heidi_core::upstream::REFUSED_INDEX_METADATA;
                    s.metadata_mut().insert(key, index.into());
                }
                return Err(s);
            }
            let mut receipts: Vec<Receipt> = batch
                .transactions
                .iter()
                .map(|t| receipt(&t.idempotency_key))
                .collect();
            match step {
                Step::Ok => {}
                Step::Fail(code) => return Err(Status::new(code, "scripted failure")),
                Step::Exhausted(reason) => {
                    let mut s = Status::resource_exhausted("scripted exhaustion");
                    let key = heidi_core::upstream::REASON_METADATA;
                    s.metadata_mut().insert(key, reason.parse().unwrap());
                    return Err(s);
                }
                Step::Short => {
                    receipts.pop();
                }
                Step::Swapped => receipts.swap(0, 1),
            }
            Ok(BatchReceipt { receipts })
        })
    }

    fn query(&self, query: Query, _: StdDuration) -> CallFuture<QueryResponse> {
        Box::pin(async move {
            Ok(QueryResponse {
                success: true,
                result: query.text.into_bytes(),
                error: String::new(),
            })
        })
    }
}

fn settings(batch_size: usize, linger_ms: u64) -> EngineSettings {
    EngineSettings {
        batch_size,
        linger: heidi_core::Duration::from_millis(linger_ms),
        batch_max_bytes: crate::sidecar::config::DEFAULT_BATCH_MAX_BYTES,
        queue_capacity: 64,
        max_in_flight: 4,
        deadline: StdDuration::from_secs(5),
        retry: RetryPolicy {
            base_delay: heidi_core::Duration::from_millis(5),
            ..RetryPolicy::named("default").unwrap()
        }
        .with_jitter(heidi_core::retry::Jitter::None),
        budget: BudgetConfig::DEFAULT,
        breaker: BreakerConfig::DEFAULT,
        jitter_seed: 7,
    }
}

fn tx(key: &str) -> Transaction {
    Transaction {
        idempotency_key: key.to_owned(),
        ..Transaction::default()
    }
}

/// Submits `keys` at once and collects the answers in submission order.
async fn submit_all(client: &EngineClient, keys: &[&str]) -> Vec<TxResult> {
    let calls = keys.iter().map(|k| {
        let client = client.clone();
        let tx = tx(k);
        tokio::spawn(async move { client.submit(tx).await })
    });
    let mut out = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        out.push(call.await.unwrap());
    }
    out
}

fn start(s: EngineSettings, fake: &Arc<Fake>) -> (EngineClient, EngineTask, Arc<SidecarMetrics>) {
    let metrics = Arc::new(SidecarMetrics::new());
    let (client, task) = spawn(s, Arc::new(Arc::clone(fake)), Arc::clone(&metrics)).unwrap();
    (client, task, metrics)
}

#[tokio::test(start_paused = true)]
async fn each_caller_gets_the_receipt_at_its_own_position() {
    let fake = Fake::scripted(&[]);
    let (client, task, metrics) = start(settings(4, 10_000), &fake);
    let keys = ["a", "b", "c", "d"];
    let answers = submit_all(&client, &keys).await;
    for (key, answer) in keys.iter().zip(answers) {
        let r = answer.unwrap();
        assert_eq!(r.receipt.unwrap().idempotency_key, *key);
        assert_eq!((r.attempts, r.batch_size), (1, 4));
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    assert_eq!(metrics.flushes("size"), 1);
    task.shutdown().await;
}

/// A batch short of its size goes when the linger expires, on the dot of the virtual clock
/// (the end-to-end test on the real clock only bounds it from below).
#[tokio::test(start_paused = true)]
async fn a_short_batch_goes_when_the_linger_expires() {
    let fake = Fake::scripted(&[]);
    let (client, task, metrics) = start(settings(8, 100), &fake);
    let started = tokio::time::Instant::now();
    let answers = submit_all(&client, &["a", "b", "c"]).await;
    assert_eq!(started.elapsed(), StdDuration::from_millis(100));
    for answer in answers {
        assert_eq!(answer.unwrap().batch_size, 3);
    }
    assert_eq!(metrics.flushes("linger"), 1);
    assert_eq!(metrics.flushes("size"), 0);
    task.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_reply_that_does_not_match_fails_the_whole_batch_without_retry() {
    for step in [Step::Short, Step::Swapped] {
        let fake = Fake::scripted(&[step]);
        let (client, task, _) = start(settings(2, 10_000), &fake);
        for answer in submit_all(&client, &["x", "y"]).await {
            let s = answer.unwrap_err();
            assert_eq!(s.code(), Code::Internal, "{step:?}: {s:?}");
            assert!(s.message().contains("upstream"), "{}", s.message());
        }
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1, "{step:?}");
        task.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_are_retried_with_the_same_batch() {
    let fake = Fake::scripted(&[
        Step::Fail(Code::Unavailable),
        Step::Fail(Code::DeadlineExceeded),
    ]);
    let (client, task, metrics) = start(settings(1, 0), &fake);
    let r = client.submit(tx("k")).await.unwrap();
    assert_eq!(r.attempts, 3);
    assert_eq!(r.receipt.unwrap().idempotency_key, "k");
    assert_eq!(metrics.retries(), 2);
    task.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn attempts_stop_at_max_attempts() {
    let fake = Fake::scripted(&[Step::Fail(Code::Unavailable); 10]);
    let (client, task, metrics) = start(settings(1, 0), &fake);
    let s = client.submit(tx("k")).await.unwrap_err();
    assert_eq!(s.code(), Code::Unavailable);
    assert!(s.message().contains("3 attempt"), "{}", s.message());
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
    assert_eq!(metrics.retries(), 2);
    task.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn refusals_on_the_merits_are_not_retried_nor_held_against_the_upstream() {
    let fake = Fake::scripted(&[Step::Fail(Code::InvalidArgument); 8]);
    let (client, task, _) = start(settings(1, 0), &fake);
    for i in 0..8 {
        let s = client.submit(tx(&format!("k{i}"))).await.unwrap_err();
        assert_eq!(s.code(), Code::InvalidArgument);
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 8);
    assert_eq!(client.snapshot().breaker, State::Closed);
    task.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bad_keys_never_reach_the_upstream() {
    let fake = Fake::scripted(&[]);
    let (client, task, _) = start(settings(1, 0), &fake);
    let s = client.submit(tx("")).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument);
    let long = "k".repeat(129);
    assert_eq!(
        client.submit(tx(&long)).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert!(client.submit(tx(&"k".repeat(128))).await.is_ok());
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    task.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn no_more_than_max_in_flight_batches_are_upstream() {
    let gate = Arc::new(Semaphore::new(0));
    let fake = Arc::new(Fake {
        gate: Some(Arc::clone(&gate)),
        ..Fake::default()
    });
    let mut s = settings(1, 0);
    s.max_in_flight = 2;
    let (client, task, _) = start(s, &fake);
    let keys: Vec<String> = (0..6).map(|i| format!("k{i}")).collect();
    let submitted = {
        let client = client.clone();
        tokio::spawn(async move {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            submit_all(&client, &keys).await
        })
    };
    let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
    while fake.running.load(Ordering::SeqCst) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "two calls never started"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(client.snapshot().in_flight, 2);
    gate.add_permits(6);
    for answer in submitted.await.unwrap() {
        assert!(answer.is_ok());
    }
    assert_eq!(fake.most_running.load(Ordering::SeqCst), 2);
    task.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_flushes_the_pending_batch_and_answers_every_caller() {
    let fake = Fake::scripted(&[]);
    let (client, task, metrics) = start(settings(8, 60_000), &fake);
    let pending = {
        let client = client.clone();
        tokio::spawn(async move { submit_all(&client, &["p", "q", "r"]).await })
    };
    let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
    while client.queued().total() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "submissions never queued"
        );
        tokio::task::yield_now().await;
    }
    task.shutdown().await;
    for answer in pending.await.unwrap() {
        assert_eq!(answer.unwrap().batch_size, 3);
    }
    assert_eq!(metrics.flushes("shutdown"), 1);
    let s = client.submit(tx("late")).await.unwrap_err();
    assert_eq!(s.code(), Code::Unavailable);
}

#[tokio::test(start_paused = true)]
async fn queries_pass_through_the_breaker() {
    let fake = Fake::scripted(&[]);
    let (client, task, _) = start(settings(1, 0), &fake);
    let q = Query {
        kind: 1,
        text: "ask".into(),
    };
    assert_eq!(client.query(q).await.unwrap().result, b"ask");
    task.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn overload_is_retried_without_tripping_the_breaker() {
    let fake = Fake::scripted(&[Step::Exhausted("overloaded"), Step::Exhausted("overloaded")]);
    let mut s = settings(1, 0);
    s.breaker.failure_threshold = 1;
    let (client, task, metrics) = start(s, &fake);
    let r = client.submit(tx("busy")).await.unwrap();
    assert_eq!(r.attempts, 3);
    assert_eq!(metrics.retries(), 2);
    assert_eq!(client.snapshot().breaker, State::Closed);
    task.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_key_capacity_refusal_fails_at_once_and_keeps_the_breaker_closed() {
    let fake = Fake::scripted(&[Step::Exhausted("key_capacity"); 3]);
    let mut s = settings(1, 0);
    s.breaker.failure_threshold = 1;
    let (client, task, _) = start(s, &fake);
    for key in ["n1", "n2", "n3"] {
        let e = client.submit(tx(key)).await.unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted);
        assert!(e.message().contains("after 1 attempt"), "{}", e.message());
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3);
    assert_eq!(client.snapshot().breaker, State::Closed);
    assert!(client.submit(tx("known")).await.is_ok());
    task.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_byte_cap_splits_batches_and_refuses_a_transaction_above_it() {
    let fake = Fake::scripted(&[]);
    let mut s = settings(8, 10_000);
    s.batch_max_bytes = 100;
    let (client, task, metrics) = start(s, &fake);
    // Each transaction takes 2 + 2 + 1 + 2 + 40 = 47 bytes of a batch message: two fit.
    let keys = ["b1", "b2", "b3", "b4", "b5"];
    let submitted = keys.map(|k| {
        let client = client.clone();
        let t = Transaction {
            actor: "x".repeat(40),
            ..tx(k)
        };
        tokio::spawn(async move { client.submit(t).await })
    });
    let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
    while fake.calls.load(Ordering::SeqCst) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "two full batches never went"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(metrics.flushes("size"), 2);
    task.shutdown().await;
    for (key, answer) in keys.iter().zip(submitted) {
        let r = answer.await.unwrap().unwrap();
        assert_eq!(r.receipt.unwrap().idempotency_key, *key);
        assert!(r.batch_size <= 2, "{key}: {}", r.batch_size);
    }
    let too_big = Transaction {
        actor: "x".repeat(100),
        ..tx("big")
    };
    let e = client.submit(too_big).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test(start_paused = true)]
async fn while_the_probe_is_out_callers_are_told_half_open_and_the_time_left() {
    let gate = Arc::new(Semaphore::new(0));
    let fake = Arc::new(Fake {
        script: Mutex::new([Step::Fail(Code::Unavailable)].into_iter().collect()),
        gate: Some(Arc::clone(&gate)),
        ..Fake::default()
    });
    let mut s = settings(1, 0);
    s.retry.max_attempts = 1;
    s.breaker.failure_threshold = 1;
    s.breaker.reset_timeout = heidi_core::Duration::from_secs(30);
    s.breaker.probe_timeout = heidi_core::Duration::from_secs(600);
    let (client, task, _) = start(s, &fake);
    gate.add_permits(1);
    let e = client.submit(tx("trip")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(client.snapshot().breaker, State::Open);
    // The engine's clock is tokio's paused one: the reset timeout passes when the test says.
    tokio::time::advance(StdDuration::from_secs(29)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(client.snapshot().breaker, State::Open, "open for 30 s");
    tokio::time::advance(StdDuration::from_secs(1)).await;
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    while client.snapshot().breaker != State::HalfOpen {
        assert!(std::time::Instant::now() < deadline, "never half-open");
        tokio::task::yield_now().await;
    }
    let probe = {
        let client = client.clone();
        tokio::spawn(async move { client.submit(tx("probe")).await })
    };
    while fake.running.load(Ordering::SeqCst) != 1 {
        assert!(std::time::Instant::now() < deadline, "the probe never went");
        tokio::task::yield_now().await;
    }
    let e = client.submit(tx("during")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.message().contains("half_open"), "{}", e.message());
    let hint: u64 = e
        .metadata()
        .get("retry-after-ms")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // The probe's time left (its 600 s timeout, minus the virtual time since it went), not
    // the 30 s reset timeout an open breaker would name.
    assert!((30_001..=600_000).contains(&hint), "{hint}");
    gate.add_permits(1);
    assert!(probe.await.unwrap().is_ok());
    task.shutdown().await;
}

fn refusing(keys: &[&'static str], name_refused: bool, steps: &[Step]) -> Arc<Fake> {
    Arc::new(Fake {
        script: Mutex::new(steps.iter().copied().collect()),
        refuse: keys.to_vec(),
        name_refused,
        ..Fake::default()
    })
}

fn calls_of(fake: &Fake) -> Vec<Vec<String>> {
    fake.sent.lock().unwrap().clone()
}

fn strings(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

#[tokio::test(start_paused = true)]
async fn a_named_refusal_fails_its_transaction_and_resubmits_the_rest_in_order() {
    let fake = refusing(&["bad1", "bad2"], true, &[]);
    let mut s = settings(4, 10_000);
    s.breaker.failure_threshold = 1;
    let (client, task, metrics) = start(s, &fake);
    let keys = ["a", "bad1", "b", "bad2"];
    let answers = submit_all(&client, &keys).await;
    for (key, answer) in keys.iter().zip(answers) {
        match key.starts_with("bad") {
            true => {
                let e = answer.unwrap_err();
                assert_eq!(e.code(), Code::ResourceExhausted, "{key}");
                assert!(e.message().contains("after 1 attempt"), "{}", e.message());
                assert_eq!(e.metadata().get("heidi-reason").unwrap(), "key_capacity");
            }
            false => {
                let r = answer.unwrap();
                assert_eq!(r.receipt.unwrap().idempotency_key, *key);
                assert_eq!((r.attempts, r.batch_size), (1, 2), "{key}");
            }
        }
    }
    let want = [
        strings(&["a", "bad1", "b", "bad2"]),
        strings(&["a", "b", "bad2"]),
        strings(&["a", "b"]),
    ];
    assert_eq!(calls_of(&fake), want);
    assert_eq!((metrics.retries(), metrics.resubmissions()), (0, 2));
    assert_eq!(client.snapshot().breaker, State::Closed);
    task.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_unnamed_refusal_sends_each_transaction_alone_once() {
    let fake = refusing(&["bad1", "bad2"], false, &[]);
    let mut s = settings(4, 10_000);
    s.breaker.failure_threshold = 1;
    let (client, task, metrics) = start(s, &fake);
    let keys = ["a", "bad1", "b", "bad2"];
    let answers = submit_all(&client, &keys).await;
    for (key, answer) in keys.iter().zip(answers) {
        match key.starts_with("bad") {
            true => assert_eq!(answer.unwrap_err().code(), Code::ResourceExhausted),
            false => {
                let r = answer.unwrap();
                assert_eq!((r.attempts, r.batch_size), (1, 1), "{key}");
            }
        }
    }
    let mut want = vec![strings(&keys)];
    want.extend(keys.iter().map(|k| strings(&[k])));
    assert_eq!(calls_of(&fake), want);
    // The bound: one re-submission per transaction of the batch, no retries.
    assert_eq!((metrics.retries(), metrics.resubmissions()), (0, 4));
    assert_eq!(client.snapshot().breaker, State::Closed);
    task.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_resubmission_is_retried_as_an_attempt() {
    let fake = refusing(&["bad"], true, &[Step::Ok, Step::Fail(Code::Unavailable)]);
    let (client, task, metrics) = start(settings(2, 10_000), &fake);
    let answers = submit_all(&client, &["a", "bad"]).await;
    let r = answers[0].as_ref().unwrap();
    assert_eq!((r.attempts, r.batch_size), (2, 1));
    assert_eq!(
        answers[1].as_ref().unwrap_err().code(),
        Code::ResourceExhausted
    );
    let want = [strings(&["a", "bad"]), strings(&["a"]), strings(&["a"])];
    assert_eq!(calls_of(&fake), want);
    assert_eq!((metrics.retries(), metrics.resubmissions()), (1, 1));
    task.shutdown().await;
}

/// The engine runs on tokio's paused clock: a retry waits exactly the policy's delay in
/// virtual time, however long the delay.
#[tokio::test(start_paused = true)]
async fn retries_wait_the_policys_delays_on_the_virtual_clock() {
    let fake = Fake::scripted(&[Step::Fail(Code::Unavailable), Step::Fail(Code::Unavailable)]);
    let mut s = settings(1, 0);
    s.retry.base_delay = heidi_core::Duration::from_secs(60);
    s.retry.max_delay = heidi_core::Duration::from_secs(600);
    let (client, task, metrics) = start(s, &fake);
    let started = tokio::time::Instant::now();
    let r = client.submit(tx("slow")).await.unwrap();
    // 60 s, then 120 s (×2, no jitter); the fake answers at once.
    assert_eq!(started.elapsed(), StdDuration::from_secs(180));
    assert_eq!((r.attempts, metrics.retries()), (3, 2));
    task.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_retry_budget_ends_the_batch_with_its_last_failure() {
    let fake = Fake::scripted(&[Step::Fail(Code::Unavailable); 4]);
    let mut s = settings(1, 0);
    s.budget = BudgetConfig {
        ratio_permille: 0,
        min_retries_per_sec: 0,
        ..BudgetConfig::DEFAULT
    };
    let (client, task, metrics) = start(s, &fake);
    let e = client.submit(tx("k")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(
        e.message().contains("retry budget exhausted"),
        "{}",
        e.message()
    );
    assert!(e.message().contains("after 1 attempt"), "{}", e.message());
    assert_eq!(
        (fake.calls.load(Ordering::SeqCst), metrics.retries()),
        (1, 0)
    );
    task.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_breaker_that_opens_is_never_retried_into() {
    let fake = Fake::scripted(&[Step::Fail(Code::Unavailable); 4]);
    let mut s = settings(1, 0);
    s.breaker.failure_threshold = 1;
    s.breaker.reset_timeout = heidi_core::Duration::from_secs(30);
    let (client, task, _) = start(s, &fake);
    let e = client.submit(tx("k")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(
        e.message().contains("circuit breaker open"),
        "{}",
        e.message()
    );
    let hint = e
        .metadata()
        .get("retry-after-ms")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(
        hint, "30000",
        "the whole reset timeout: no virtual time passed"
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    task.shutdown().await;
}
