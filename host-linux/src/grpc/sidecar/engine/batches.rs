//! Batches: sending a due batch, retrying it as the core decides, and answering its callers
//! (each with the receipt at its own position).

use super::{Done, Driver, Flight, Submission};
use crate::grpc::proto::{BatchReceipt, TransactionBatch, TransactionResponse};
use crate::grpc::sidecar::status;
use crate::grpc::sidecar::upstream::{UpstreamApi, verdict, with_deadline};
use heidi_core::Instant;
use heidi_core::batcher::{Batch, MAX_BATCH_ITEMS};
use heidi_core::retry::RetryDecision;
use heidi_core::upstream::{BreakerInput, ReplyMismatch, check_reply};
use tonic::{Code, Status};
use tracing::Instrument;

impl<U: UpstreamApi> Driver<U> {
    /// Sends due batches while a flight slot is free (everything queued when closing).
    /// A submission held back by the byte cap goes into the batcher as soon as it has room.
    pub(super) fn dispatch(&mut self, now: Instant) {
        loop {
            self.push_held(now);
            if self.flights.len() >= self.settings.max_in_flight {
                break;
            }
            let taken = match self.closing {
                true => self.batcher.flush(now),
                false => self.batcher.poll_batch(now),
            };
            match taken {
                Some(taken) => self.start_batch(now, taken),
                None => break,
            }
        }
    }

    fn start_batch(&mut self, now: Instant, taken: Batch<Submission, MAX_BATCH_ITEMS>) {
        self.metrics.batch(taken.items.len(), taken.reason);
        let (callers, transactions) = taken.items.into_iter().map(|s| (s.reply, s.tx)).unzip();
        self.budget.record_request(now);
        let id = self.new_id();
        let flight = Flight {
            callers,
            batch: TransactionBatch { transactions },
            attempts: 0,
            permit: None,
        };
        self.flights.insert(id, flight);
        self.attempt(now, id);
    }

    /// Sends retries whose time has come.
    pub(super) fn due_retries(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.attempt(now, id);
        }
    }

    /// One upstream call of flight `id`, if the breaker lets it through.
    fn attempt(&mut self, now: Instant, id: u64) {
        let permit = match self.breaker.acquire(now) {
            Ok(permit) => permit,
            Err(rejected) => {
                self.drain_breaker_events();
                let state = self.breaker.state();
                return self.fail(id, status::breaker_refused(now, state, rejected.until));
            }
        };
        self.drain_breaker_events();
        let Some(flight) = self.flights.get_mut(&id) else {
            self.breaker.abandon(now, permit);
            return;
        };
        flight.permit = Some(permit);
        flight.attempts += 1;
        if flight.attempts > 1 {
            self.metrics.retry();
        }
        let span = tracing::debug_span!(
            "apply_batch",
            batch = id,
            size = flight.batch.transactions.len(),
            attempt = flight.attempts
        );
        let call = self
            .upstream
            .apply_batch(flight.batch.clone(), self.settings.deadline);
        let (deadline, done) = (self.settings.deadline, self.done_tx.clone());
        tokio::spawn(
            async move {
                let (result, took) = with_deadline(deadline, call).await;
                let _ = done.send(Done::Batch { id, result, took }).await;
            }
            .instrument(span),
        );
    }

    pub(super) fn on_batch_done(
        &mut self,
        now: Instant,
        id: u64,
        result: Result<BatchReceipt, Status>,
        took: std::time::Duration,
    ) {
        self.metrics
            .upstream_call("apply_batch", result.is_ok(), took);
        let Some(flight) = self.flights.get_mut(&id) else {
            return;
        };
        let checked = match result {
            Ok(reply) => {
                let sent = flight
                    .batch
                    .transactions
                    .iter()
                    .map(|t| t.idempotency_key.as_str());
                let got = reply.receipts.iter().map(|r| r.idempotency_key.as_str());
                match check_reply(sent, got) {
                    Ok(()) => Ok(reply),
                    Err(m) => Err((
                        Status::new(Code::from_i32(ReplyMismatch::CODE), m.to_string()),
                        ReplyMismatch::VERDICT,
                    )),
                }
            }
            Err(s) => {
                let verdict = verdict(&s);
                Err((s, verdict))
            }
        };
        let input = match &checked {
            Ok(_) => BreakerInput::Success,
            Err((_, v)) => v.breaker,
        };
        if let Some(permit) = flight.permit.take() {
            self.report(now, permit, input, took);
        }
        match checked {
            Ok(reply) => self.complete(id, reply),
            Err((last, v)) if v.retryable => self.retry_or_give_up(now, id, last),
            Err((last, _)) => {
                let attempts = self.flights.get(&id).map_or(1, |f| f.attempts);
                self.fail(id, status::not_retried(&last, attempts));
            }
        }
    }

    fn retry_or_give_up(&mut self, now: Instant, id: u64, last: Status) {
        let Some(flight) = self.flights.get(&id) else {
            return;
        };
        let attempts = flight.attempts;
        let random = self.rng.u64(..);
        let open_until = self.breaker.open_until();
        let decision = self.settings.retry.next_with_budget(
            now,
            attempts,
            random,
            open_until,
            &mut self.budget,
        );
        match decision {
            RetryDecision::RetryAt(at) => {
                tracing::debug!(batch = id, attempts, code = ?last.code(), "retrying upstream batch");
                self.timers.insert((at, id));
            }
            RetryDecision::GiveUp(reason) => {
                self.fail(id, status::gave_up(&last, reason, attempts, now));
            }
        }
    }

    /// Answers every caller of flight `id` with its own receipt (checked: one per
    /// transaction, same key at the same position).
    fn complete(&mut self, id: u64, reply: BatchReceipt) {
        let Some(flight) = self.flights.remove(&id) else {
            return;
        };
        let batch_size = flight.callers.len() as u32;
        for (caller, receipt) in flight.callers.into_iter().zip(reply.receipts) {
            let _ = caller.send(Ok(TransactionResponse {
                receipt: Some(receipt),
                attempts: flight.attempts,
                batch_size,
            }));
        }
    }

    /// Answers every caller of flight `id` with `status`.
    fn fail(&mut self, id: u64, status: Status) {
        let Some(flight) = self.flights.remove(&id) else {
            return;
        };
        tracing::debug!(batch = id, code = ?status.code(), "upstream batch failed: {}", status.message());
        for caller in flight.callers {
            let _ = caller.send(Err(status.clone()));
        }
    }
}
