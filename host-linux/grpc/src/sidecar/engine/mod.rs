//! The engine: one driver task owns the core's [`Batcher`], [`Breaker`] and [`RetryBudget`],
//! and one core [`Guard`] per batch or query upstream, and is fed through bounded channels.
//! It asks the core for every decision (when a batch is due; per call, whether it may go,
//! what its result means, when to retry, whether to give up: the guard's, see
//! `heidi_core::guard`) and only moves values: it hands upstream calls to short tasks that
//! report back with the result, and answers callers through one-shot channels.
//!
//! A batch's guard counts the batch in the retry budget, then per attempt takes a breaker
//! permit, has the call made, records its verdict with the breaker, and retries after a
//! jittered delay within the budget; a query's guard makes one attempt. The engine drives
//! each guard until it waits for the upstream (a spawned call) or a timer (a retry time).
//!
//! # The loop
//!
//! Each turn reads the monotonic clock once (as a core `Instant`), applies what is due (the
//! breaker's timeout, retry timers), sends every due batch while fewer than `max_in_flight`
//! batches are upstream, publishes a [`Snapshot`], then waits for the next input (a finished
//! call, a query, a submission, shutdown) or the earliest deadline. While the batcher is full
//! and `max_in_flight` batches are upstream, submissions are not read: they wait in the
//! bounded submission channel, and when that is full callers get RESOURCE_EXHAUSTED at once.
//!
//! # Shutdown
//!
//! Closing stops new submissions (UNAVAILABLE), flushes what is queued as batches (reason
//! `shutdown`), and ends once every caller has its answer.

mod batches;
mod client;
mod queries;
#[cfg(test)]
mod tests;

pub use client::{EngineClient, Queued};

use super::metrics::SidecarMetrics;
use super::status;
use super::upstream::UpstreamApi;
use crate::proto::{
    BatchReceipt, Query, QueryResponse, Transaction, TransactionBatch, TransactionResponse,
};
use heidi_common::clock::Clock;
use heidi_core::Instant;
use heidi_core::batcher::{Batcher, BatcherConfig, Full, PushSizedError};
use heidi_core::breaker::{Breaker, BreakerConfig, Permit, State};
use heidi_core::guard::{Action, Answer, Guard, local};
use heidi_core::retry::{BudgetConfig, RetryBudget, RetryPolicy};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tonic::Status;

/// What a caller of `SubmitTransaction` gets.
pub type TxResult = Result<TransactionResponse, Status>;
/// What a caller of `SubmitQuery` gets.
pub type QueryResult = Result<QueryResponse, Status>;

/// A transaction waiting for its receipt.
#[derive(Debug)]
pub(crate) struct Submission {
    pub(crate) tx: Transaction,
    /// The transaction's encoded size inside a batch message.
    pub(crate) bytes: usize,
    pub(crate) reply: oneshot::Sender<TxResult>,
}

/// A query waiting for its answer.
#[derive(Debug)]
pub(crate) struct QueryJob {
    pub(crate) query: Query,
    pub(crate) reply: oneshot::Sender<QueryResult>,
}

/// A finished upstream call, reported to the driver.
enum Done {
    Batch {
        id: u64,
        result: Result<BatchReceipt, Status>,
        took: std::time::Duration,
    },
    Query {
        id: u64,
        result: QueryResult,
        took: std::time::Duration,
    },
}

/// The engine's settings (from the validated configuration).
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// Transactions per upstream call, 1 ..= 8.
    pub batch_size: usize,
    /// Batch linger.
    pub linger: heidi_core::Duration,
    /// Largest encoded batch, in bytes (the batcher's byte cap).
    pub batch_max_bytes: usize,
    /// Submission channel capacity.
    pub queue_capacity: usize,
    /// Batches upstream at once (retry waits included).
    pub max_in_flight: usize,
    /// Deadline of every upstream call.
    pub deadline: std::time::Duration,
    /// Retry schedule.
    pub retry: RetryPolicy,
    /// Retry budget.
    pub budget: BudgetConfig,
    /// Breaker.
    pub breaker: BreakerConfig,
    /// Seed of the jitter generator.
    pub jitter_seed: u64,
}

/// The engine's state as of its last turn, for fast rejection and `HealthCheck`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The breaker's state.
    pub breaker: State,
    /// When an open breaker half-opens ([`Breaker::open_until`]).
    pub open_until: Option<Instant>,
    /// Transactions in the batcher.
    pub batched: usize,
    /// Batches upstream (or waiting to be retried).
    pub in_flight: usize,
    /// Shutting down.
    pub closing: bool,
}

/// The running engine: stop it with [`EngineTask::shutdown`].
#[derive(Debug)]
pub struct EngineTask {
    stop: watch::Sender<bool>,
    join: JoinHandle<()>,
}

impl EngineTask {
    /// Asks the engine to stop without waiting (idempotent).
    pub fn signal(&self) {
        self.stop.send_replace(true);
    }

    /// Stops the engine: flushes the pending batch, answers every caller, then returns.
    pub async fn shutdown(self) {
        self.signal();
        if let Err(e) = self.join.await {
            tracing::error!(error = %e, "sidecar engine task failed");
        }
    }
}

/// Starts the engine on the current tokio runtime.
pub fn spawn<U: UpstreamApi>(
    settings: EngineSettings,
    upstream: Arc<U>,
    metrics: Arc<SidecarMetrics>,
) -> Result<(EngineClient, EngineTask), String> {
    let breaker = Breaker::new(settings.breaker).map_err(|e| e.to_string())?;
    let budget = RetryBudget::new(settings.budget).map_err(|e| e.to_string())?;
    let linger = BatcherConfig {
        linger: settings.linger,
    };
    let batcher = Batcher::with_limit(linger, settings.batch_size)
        .map_err(|e| e.to_string())?
        .with_max_bytes(settings.batch_max_bytes);
    // tokio's clock: virtual under a paused test runtime, so the tests need no real time.
    let clock = Clock::start_tokio();
    let (submit_tx, submit_rx) = mpsc::channel(settings.queue_capacity.max(1));
    let (query_tx, query_rx) = mpsc::channel(settings.queue_capacity.max(1));
    // Each batch and each query has at most one call outstanding, so reports never wait.
    let (done_tx, done_rx) = mpsc::channel(settings.max_in_flight + settings.queue_capacity);
    let (stop, stop_rx) = watch::channel(false);
    let snapshot = Arc::new(Mutex::new(Snapshot {
        breaker: breaker.state(),
        open_until: None,
        batched: 0,
        in_flight: 0,
        closing: false,
    }));
    let client = EngineClient::new(
        submit_tx,
        query_tx,
        Arc::clone(&snapshot),
        clock,
        Arc::clone(&metrics),
        settings.batch_max_bytes,
    );
    let driver = Driver {
        rng: fastrand::Rng::with_seed(settings.jitter_seed),
        max_queries: settings.queue_capacity.max(1),
        settings,
        clock,
        batcher,
        breaker,
        budget,
        flights: HashMap::new(),
        queries: HashMap::new(),
        timers: BTreeSet::new(),
        held: None,
        next_id: 0,
        upstream,
        done_tx,
        metrics,
        snapshot,
        closing: false,
    };
    let join = tokio::spawn(driver.run(submit_rx, query_rx, done_rx, stop_rx));
    Ok((client, EngineTask { stop, join }))
}

/// A batch upstream or waiting to be retried.
struct Flight {
    /// The callers of the transactions not answered yet, in the order of `batch`.
    callers: Vec<oneshot::Sender<TxResult>>,
    /// The transactions not answered yet.
    batch: TransactionBatch,
    /// The core's decisions for this batch (attempts, retries, give-up).
    guard: Guard,
    /// The breaker permit of the call in progress, and how long the last call took.
    call: CallState,
    /// The last failure, for the callers' status when the guard gives up.
    last: Option<Status>,
    /// Each transaction goes alone: the upstream refused a call without naming which of its
    /// transactions the refusal was about.
    one_by_one: bool,
}

/// The breaker's side of one upstream call.
#[derive(Default)]
struct CallState {
    permit: Option<Permit>,
    took: std::time::Duration,
}

/// A query upstream.
struct QueryFlight {
    reply: oneshot::Sender<QueryResult>,
    guard: Guard,
    call: CallState,
}

struct Driver<U> {
    settings: EngineSettings,
    clock: Clock,
    batcher: Batcher<Submission>,
    breaker: Breaker,
    budget: RetryBudget,
    rng: fastrand::Rng,
    flights: HashMap<u64, Flight>,
    queries: HashMap<u64, QueryFlight>,
    max_queries: usize,
    /// Retry times of flights waiting between attempts.
    timers: BTreeSet<(Instant, u64)>,
    /// A submission read from the queue that did not fit in the bytes left of the batch: it
    /// goes first into the next one (no submission is read while it waits).
    held: Option<Submission>,
    next_id: u64,
    upstream: Arc<U>,
    done_tx: mpsc::Sender<Done>,
    metrics: Arc<SidecarMetrics>,
    snapshot: Arc<Mutex<Snapshot>>,
    closing: bool,
}

impl<U: UpstreamApi> Driver<U> {
    async fn run(
        mut self,
        mut submit_rx: mpsc::Receiver<Submission>,
        mut query_rx: mpsc::Receiver<QueryJob>,
        mut done_rx: mpsc::Receiver<Done>,
        mut stop_rx: watch::Receiver<bool>,
    ) {
        let (mut submissions_open, mut queries_open) = (true, true);
        loop {
            let now = self.clock.now();
            self.turn(now);
            let idle = self.flights.is_empty() && self.queries.is_empty();
            let drained = self.batcher.is_empty() && self.held.is_none();
            if self.closing && !submissions_open && !queries_open && drained && idle {
                break;
            }
            let wake = self.next_deadline().map(|at| wake_at(now, at));
            let read_submissions =
                submissions_open && !self.batcher.is_full() && self.held.is_none();
            let read_queries = queries_open && self.queries.len() < self.max_queries;
            tokio::select! {
                biased;
                Some(done) = done_rx.recv() => self.on_done(done),
                changed = stop_rx.changed(), if !self.closing => {
                    if changed.is_err() || *stop_rx.borrow() {
                        self.closing = true;
                        submit_rx.close();
                        query_rx.close();
                        self.publish();
                    }
                }
                job = query_rx.recv(), if read_queries => match job {
                    Some(job) => self.on_query(job),
                    None => queries_open = false,
                },
                sub = submit_rx.recv(), if read_submissions => match sub {
                    Some(sub) => self.on_submission(sub),
                    None => submissions_open = false,
                },
                () = sleep_until(wake), if wake.is_some() => {}
            }
        }
        self.publish();
        tracing::debug!("sidecar engine stopped");
    }

    fn on_done(&mut self, done: Done) {
        let now = self.clock.now();
        match done {
            Done::Batch { id, result, took } => self.on_batch_done(now, id, result, took),
            Done::Query { id, result, took } => self.on_query_done(now, id, result, took),
        }
    }

    fn on_submission(&mut self, sub: Submission) {
        let now = self.clock.now();
        let bytes = sub.bytes;
        match self.batcher.push_sized(now, sub, bytes) {
            Ok(()) => {}
            // The batch is due now; this one opens the next.
            Err(PushSizedError::Full(Full(sub))) => self.held = Some(sub),
            // Not reached: the client refuses such a transaction before queueing it.
            Err(PushSizedError::TooLarge { item, error }) => {
                let _ = item.reply.send(Err(status::too_large(error)));
            }
        }
    }

    /// Moves the held submission into the batcher if it has room now.
    fn push_held(&mut self, now: Instant) {
        if let Some(sub) = self.held.take() {
            let bytes = sub.bytes;
            if let Err(refused) = self.batcher.push_sized(now, sub, bytes) {
                self.held = Some(refused.into_inner());
            }
        }
    }

    /// Applies everything due at `now`, sends due batches, publishes the snapshot.
    fn turn(&mut self, now: Instant) {
        if self.breaker.poll_timeout().is_some_and(|t| t <= now) {
            self.breaker.handle_timeout(now);
        }
        self.drain_breaker_events();
        self.due_retries(now);
        self.dispatch(now);
        self.publish();
    }

    /// The earliest instant something is due: a batch (only while a flight slot is free), the
    /// breaker's timeout, a retry.
    fn next_deadline(&self) -> Option<Instant> {
        let batch = match self.flights.len() < self.settings.max_in_flight {
            true if self.closing && !self.batcher.is_empty() => Some(self.clock.now()),
            true => self.batcher.poll_timeout(),
            false => None,
        };
        let retry = self.timers.first().map(|&(at, _)| at);
        [batch, self.breaker.poll_timeout(), retry]
            .into_iter()
            .flatten()
            .min()
    }

    /// The answer to a guard's action that the engine serves at once from the core state it
    /// owns (budget, breaker); `None` for the actions that wait (an attempt, a retry time, the
    /// end of the call).
    fn serve(&mut self, now: Instant, action: Action, call: &mut CallState) -> Option<Answer> {
        let answer = match action {
            Action::CountRequest => {
                self.budget.record_request(now);
                Answer::Counted
            }
            // Not asked: the sidecar's guards have no rate limit.
            Action::Limit => Answer::Limit(heidi_core::guard::Permission::Granted),
            Action::Acquire => {
                let (permit, answer) = local::acquire(&mut self.breaker, now);
                call.permit = permit;
                self.drain_breaker_events();
                answer
            }
            Action::Record(input) => {
                let took = heidi_core::Duration::from_micros(call.took.as_micros() as u64);
                let answer = match call.permit.take() {
                    Some(permit) => local::record(&mut self.breaker, now, permit, input, took),
                    None => Answer::Recorded {
                        open_until: self.breaker.open_until(),
                    },
                };
                // Published before any caller is answered, so a caller that asks HealthCheck
                // next sees the breaker its answer came from.
                self.drain_breaker_events();
                answer
            }
            Action::TakeRetry => Answer::Budget(self.budget.try_retry(now)),
            Action::Attempt { .. } | Action::Wait(_) | Action::Done(_) => return None,
        };
        Some(answer)
    }

    fn drain_breaker_events(&mut self) {
        while let Some(t) = self.breaker.poll_event() {
            tracing::info!(from = %t.from, to = %t.to, "upstream circuit breaker");
        }
        self.metrics.breaker(self.breaker.state());
        // Published before any caller is answered, so a caller that asks HealthCheck next
        // sees the breaker its answer came from.
        self.publish();
    }

    fn publish(&self) {
        let snapshot = Snapshot {
            breaker: self.breaker.state(),
            open_until: self.breaker.open_until(),
            batched: self.batcher.len() + usize::from(self.held.is_some()),
            in_flight: self.flights.len(),
            closing: self.closing,
        };
        if let Ok(mut s) = self.snapshot.lock() {
            *s = snapshot;
        }
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// The tokio instant of the core instant `at`, read at `now`; waits are capped at a day so
/// that a far deadline cannot overflow the timer. tokio's clock, like the engine's, is
/// virtual under a paused test runtime.
fn wake_at(now: Instant, at: Instant) -> tokio::time::Instant {
    let wait = at.saturating_duration_since(now).as_micros();
    tokio::time::Instant::now() + std::time::Duration::from_micros(wait.min(86_400_000_000))
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
