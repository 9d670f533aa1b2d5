//! Batches: sending a due batch, retrying it as the core decides, and answering its callers
//! (each with the receipt at its own position).
//!
//! A refusal fails only the transactions it is about ([`split_refusal`]): the one the
//! upstream names in `heidi-refused-index` fails, and the rest of the call goes again
//! without it; when the upstream names none, each transaction of the call goes alone. Such a
//! re-submission is not a retry: it uses no attempt and no retry budget (the transactions
//! were never judged), and the refusal told the breaker a success.

use super::{Done, Driver, Flight, Submission};
use crate::grpc::proto::{BatchReceipt, TransactionBatch, TransactionResponse};
use crate::grpc::sidecar::status;
use crate::grpc::sidecar::upstream::{UpstreamApi, verdict, with_deadline};
use heidi_core::Instant;
use heidi_core::batcher::{Batch, MAX_BATCH_ITEMS};
use heidi_core::retry::RetryDecision;
use heidi_core::upstream::{
    BreakerInput, Class, REFUSED_INDEX_METADATA, ReplyMismatch, Split, check_reply,
    parse_refused_index, split_refusal,
};
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
            one_by_one: false,
        };
        self.flights.insert(id, flight);
        self.attempt(now, id, false);
    }

    /// Sends retries whose time has come.
    pub(super) fn due_retries(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.attempt(now, id, false);
        }
    }

    /// One upstream call of flight `id`, if the breaker lets it through: an attempt, or a
    /// `resubmission` of transactions a refusal was not about (not counted as an attempt).
    fn attempt(&mut self, now: Instant, id: u64, resubmission: bool) {
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
        if resubmission {
            self.metrics.resubmission();
        } else {
            flight.attempts += 1;
            if flight.attempts > 1 {
                self.metrics.retry();
            }
        }
        let span = tracing::debug_span!(
            "apply_batch",
            batch = id,
            size = flight.sent(),
            attempt = flight.attempts,
            resubmission
        );
        let call = self
            .upstream
            .apply_batch(flight.call(), self.settings.deadline);
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
        let sent = flight.sent();
        let checked = match result {
            Ok(reply) => {
                let sent = flight.batch.transactions[..sent]
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
            Ok(reply) => self.complete(now, id, reply),
            Err((last, v)) if v.retryable => self.retry_or_give_up(now, id, last),
            Err((last, v)) if v.class == Class::Refusal => self.refused(now, id, &last),
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

    /// Answers the callers of the transactions flight `id` sent, each with its own receipt
    /// (checked: one per transaction, same key at the same position), then sends the rest of
    /// the flight, if any.
    fn complete(&mut self, now: Instant, id: u64, reply: BatchReceipt) {
        let Some(flight) = self.flights.get_mut(&id) else {
            return;
        };
        let sent = reply.receipts.len().min(flight.callers.len());
        flight.batch.transactions.drain(..sent);
        let batch_size = sent as u32;
        for (caller, receipt) in flight.callers.drain(..sent).zip(reply.receipts) {
            let _ = caller.send(Ok(TransactionResponse {
                receipt: Some(receipt),
                attempts: flight.attempts,
                batch_size,
            }));
        }
        self.go_on(now, id);
    }

    /// The upstream refused the call of flight `id` with `last`: fails the transactions the
    /// refusal is about, as the core decides, and sends the others again.
    fn refused(&mut self, now: Instant, id: u64, last: &Status) {
        let Some(flight) = self.flights.get_mut(&id) else {
            return;
        };
        let sent = flight.sent();
        let keys = flight.batch.transactions[..sent]
            .iter()
            .map(|t| t.idempotency_key.as_str());
        let named = last
            .metadata()
            .get(REFUSED_INDEX_METADATA)
            .and_then(|v| v.to_str().ok());
        let split = split_refusal(keys, parse_refused_index(named));
        tracing::debug!(batch = id, sent, ?split, code = ?last.code(), "upstream refused a call");
        let fails = |i: usize| match split {
            Split::FailAll => i < sent,
            Split::Resubmit { fail } => fail.contains(i),
            Split::OneByOne => false,
        };
        flight.one_by_one |= split == Split::OneByOne;
        let status = status::not_retried(last, flight.attempts);
        let callers = std::mem::take(&mut flight.callers);
        let transactions = std::mem::take(&mut flight.batch.transactions);
        for (i, (caller, tx)) in callers.into_iter().zip(transactions).enumerate() {
            if fails(i) {
                let _ = caller.send(Err(status.clone()));
            } else {
                flight.callers.push(caller);
                flight.batch.transactions.push(tx);
            }
        }
        self.go_on(now, id);
    }

    /// Sends what is left of flight `id` as a re-submission, or ends the flight when every
    /// caller has its answer.
    fn go_on(&mut self, now: Instant, id: u64) {
        match self.flights.get(&id) {
            Some(flight) if !flight.callers.is_empty() => self.attempt(now, id, true),
            Some(_) => {
                self.flights.remove(&id);
            }
            None => {}
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
