//! Batches: sending a due batch, driving its core guard (attempts, retries, give-up), and
//! answering its callers (each with the receipt at its own position).
//!
//! A refusal fails only the transactions it is about ([`split_refusal`]): the one the
//! upstream names in `heidi-refused-index` fails, and the rest of the call goes again
//! without it; when the upstream names none, each transaction of the call goes alone. Such a
//! re-submission is not a retry: it uses no attempt and no retry budget (the transactions
//! were never judged), and the refusal told the breaker a success. The guard hears it as a
//! partial answer ([`Answer::Partial`]).

use super::{CallState, Done, Driver, Flight, Submission};
use crate::proto::{BatchReceipt, TransactionBatch, TransactionResponse};
use crate::sidecar::status;
use crate::sidecar::upstream::{UpstreamApi, verdict, with_deadline};
use heidi_core::Instant;
use heidi_core::batcher::{Batch, MAX_BATCH_ITEMS};
use heidi_core::guard::{Action, Answer, Finish, GaveUp, Guard, GuardConfig};
use heidi_core::upstream::{
    CallOutcome, Class, REFUSED_INDEX_METADATA, ReplyMismatch, Split, check_reply, judge_call,
    parse_refused_index, split_refusal,
};
use tonic::{Code, Status};
use tracing::Instrument;

/// What a finished call does to its flight's callers, once the breaker has heard of it.
enum Settle {
    /// Answer the first callers with the reply's receipts.
    Receipts(BatchReceipt),
    /// Fail the callers a refusal is about (with the split), keep the others.
    Refused(Split, Status),
    /// Nothing now: the guard decides (a retry, or giving up with the last failure).
    Nothing,
}

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
        let config = GuardConfig::new(self.settings.retry).with_budget(true);
        let id = self.new_id();
        let flight = Flight {
            callers,
            batch: TransactionBatch { transactions },
            guard: Guard::new(config, None),
            call: CallState::default(),
            last: None,
            one_by_one: false,
        };
        self.flights.insert(id, flight);
        self.drive(now, id);
    }

    /// Sends retries whose time has come.
    pub(super) fn due_retries(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.drive(now, id);
        }
    }

    /// Serves flight `id`'s guard until it waits for the upstream or a retry time, or ends.
    fn drive(&mut self, now: Instant, id: u64) {
        loop {
            let Some(mut flight) = self.flights.remove(&id) else {
                return;
            };
            let action = flight.guard.poll(now);
            let Some(answer) = self.serve(now, action, &mut flight.call) else {
                self.flights.insert(id, flight);
                return match action {
                    Action::Attempt { resubmission, .. } => self.call(id, resubmission),
                    Action::Wait(at) => {
                        self.timers.insert((at, id));
                    }
                    Action::Done(finish) => self.finish(now, id, finish),
                    _ => {}
                };
            };
            if let Err(e) = flight.guard.handle(now, answer) {
                // Not reached: every answer above fits its action.
                tracing::error!(batch = id, "sidecar engine: {e}");
            }
            self.flights.insert(id, flight);
        }
    }

    /// One upstream call of flight `id`: an attempt, or a `resubmission` of transactions a
    /// refusal was not about (not counted as an attempt).
    fn call(&mut self, id: u64, resubmission: bool) {
        let Some(flight) = self.flights.get(&id) else {
            return;
        };
        let attempt = flight.guard.attempts();
        if resubmission {
            self.metrics.resubmission();
        } else if attempt > 1 {
            self.metrics.retry();
        }
        let span = tracing::debug_span!(
            "apply_batch",
            batch = id,
            size = flight.sent(),
            attempt,
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
        let random = self.rng.u64(..);
        let Some(flight) = self.flights.get_mut(&id) else {
            return;
        };
        flight.call.took = took;
        let (answer, settle) = flight.judge(result, random);
        if let Err(e) = flight.guard.handle(now, answer) {
            tracing::error!(batch = id, "sidecar engine: {e}");
            return;
        }
        // The breaker hears of the call before any caller is answered.
        if let Some(mut flight) = self.flights.remove(&id) {
            let action = flight.guard.poll(now);
            if let Some(answer) = self.serve(now, action, &mut flight.call) {
                let _ = flight.guard.handle(now, answer);
            }
            self.flights.insert(id, flight);
        }
        if let Some(flight) = self.flights.get_mut(&id) {
            match settle {
                Settle::Receipts(reply) => flight.complete(reply),
                Settle::Refused(split, last) => flight.refused(split, &last),
                Settle::Nothing => {}
            }
        }
        self.drive(now, id);
    }

    /// Answers whoever flight `id` has not answered yet, as the guard's end says, and ends
    /// the flight.
    fn finish(&mut self, now: Instant, id: u64, finish: Finish) {
        let Some(flight) = self.flights.remove(&id) else {
            return;
        };
        let last = flight
            .last
            .unwrap_or_else(|| Status::unknown("no upstream answer"));
        let status = match finish.result {
            Ok(()) => None,
            Err(GaveUp::BreakerRefused { until }) => {
                let until = until.unwrap_or(Instant::MAX);
                Some(status::breaker_refused(now, self.breaker.state(), until))
            }
            Err(GaveUp::Retry(reason)) => {
                Some(status::gave_up(&last, reason, finish.attempts, now))
            }
            Err(GaveUp::NotRetryable(_)) => Some(status::not_retried(&last, finish.attempts)),
            // Not reached: the sidecar's guards have no rate limit, remote parts or deadline.
            Err(other) => Some(Status::unavailable(other.to_string())),
        };
        let Some(status) = status else {
            return;
        };
        tracing::debug!(batch = id, code = ?status.code(), "upstream batch failed: {}", status.message());
        for caller in flight.callers {
            let _ = caller.send(Err(status.clone()));
        }
    }
}

impl Flight {
    /// How many transactions (the first ones of `batch`) each call carries.
    fn sent(&self) -> usize {
        match self.one_by_one {
            true => self.batch.transactions.len().min(1),
            false => self.batch.transactions.len(),
        }
    }

    /// The message of the next call.
    fn call(&self) -> TransactionBatch {
        TransactionBatch {
            transactions: self.batch.transactions[..self.sent()].to_vec(),
        }
    }

    /// What the call's `result` means: the guard's answer (the core's [`judge_call`]) and
    /// what it does to the callers.
    fn judge(&mut self, result: Result<BatchReceipt, Status>, random: u64) -> (Answer, Settle) {
        let sent = self.sent();
        let waiting = self.callers.len();
        let (last, verdict) = match result {
            Ok(reply) => {
                let keys = self.batch.transactions[..sent]
                    .iter()
                    .map(|t| t.idempotency_key.as_str());
                let got = reply.receipts.iter().map(|r| r.idempotency_key.as_str());
                match check_reply(keys, got) {
                    Ok(()) => {
                        let answered = reply.receipts.len();
                        let answer = judge_call(waiting, answered, CallOutcome::Receipts, random);
                        return (answer, Settle::Receipts(reply));
                    }
                    Err(m) => {
                        let code = Code::from_i32(ReplyMismatch::CODE);
                        (Status::new(code, m.to_string()), ReplyMismatch::VERDICT)
                    }
                }
            }
            Err(s) => {
                let v = verdict(&s);
                (s, v)
            }
        };
        let split = (verdict.class == Class::Refusal).then(|| {
            let keys = self.batch.transactions[..sent]
                .iter()
                .map(|t| t.idempotency_key.as_str());
            let named = last
                .metadata()
                .get(REFUSED_INDEX_METADATA)
                .and_then(|v| v.to_str().ok());
            split_refusal(keys, parse_refused_index(named))
        });
        let answer = judge_call(
            waiting,
            sent,
            CallOutcome::Failed { verdict, split },
            random,
        );
        let settle = match split {
            Some(split) => {
                tracing::debug!(sent, ?split, code = ?last.code(), "upstream refused a call");
                Settle::Refused(split, last.clone())
            }
            None => Settle::Nothing,
        };
        self.last = Some(last);
        (answer, settle)
    }

    /// Answers the callers of the transactions the last call sent, each with its own receipt
    /// (checked: one per transaction, same key at the same position).
    fn complete(&mut self, reply: BatchReceipt) {
        let sent = reply.receipts.len().min(self.callers.len());
        self.batch.transactions.drain(..sent);
        let batch_size = sent as u32;
        let attempts = self.guard.attempts();
        for (caller, receipt) in self.callers.drain(..sent).zip(reply.receipts) {
            let _ = caller.send(Ok(TransactionResponse {
                receipt: Some(receipt),
                attempts,
                batch_size,
            }));
        }
    }

    /// Fails the transactions the refusal `last` is about, as the core's `split` decides,
    /// and keeps the others for the next call.
    fn refused(&mut self, split: Split, last: &Status) {
        let sent = self.sent();
        self.one_by_one |= split == Split::OneByOne;
        let status = status::not_retried(last, self.guard.attempts());
        let callers = std::mem::take(&mut self.callers);
        let transactions = std::mem::take(&mut self.batch.transactions);
        for (i, (caller, tx)) in callers.into_iter().zip(transactions).enumerate() {
            if split.fails(i, sent) {
                let _ = caller.send(Err(status.clone()));
            } else {
                self.callers.push(caller);
                self.batch.transactions.push(tx);
            }
        }
    }
}
