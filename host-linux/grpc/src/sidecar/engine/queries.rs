//! Queries: forwarded one by one (no batching, no retries) through the same breaker and
//! under the same deadline as batches, each by a core guard that makes one attempt.

use super::{CallState, Done, Driver, QueryFlight, QueryJob, QueryResult};
use crate::sidecar::status;
use crate::sidecar::upstream::{UpstreamApi, verdict, with_deadline};
use heidi_core::Instant;
use heidi_core::guard::{Action, Answer, GaveUp, Guard, GuardConfig};
use heidi_core::upstream::Refusal;
use tracing::Instrument;

impl<U: UpstreamApi> Driver<U> {
    pub(super) fn on_query(&mut self, job: QueryJob) {
        let now = self.clock.now();
        let flight = QueryFlight {
            reply: job.reply,
            guard: Guard::new(GuardConfig::once(self.settings.retry), None),
            call: CallState::default(),
        };
        let id = self.new_id();
        self.queries.insert(id, flight);
        self.drive_query(now, id, Some(job.query));
    }

    /// Serves query `id`'s guard until its call goes upstream or it is over.
    fn drive_query(&mut self, now: Instant, id: u64, mut query: Option<crate::proto::Query>) {
        loop {
            let Some(mut flight) = self.queries.remove(&id) else {
                return;
            };
            let action = flight.guard.poll(now);
            let answer = match self.serve(now, action, &mut flight.call) {
                Some(answer) => answer,
                None => return self.query_waits(now, id, flight, action, query.take()),
            };
            if let Err(e) = flight.guard.handle(now, answer) {
                tracing::error!(query = id, "sidecar engine: {e}");
                return;
            }
            self.queries.insert(id, flight);
        }
    }

    /// Sends the query upstream, or answers a query the breaker refused.
    fn query_waits(
        &mut self,
        now: Instant,
        id: u64,
        flight: QueryFlight,
        action: Action,
        query: Option<crate::proto::Query>,
    ) {
        match (action, query) {
            (Action::Attempt { .. }, Some(query)) => {
                self.queries.insert(id, flight);
                let call = self.upstream.query(query, self.settings.deadline);
                let (deadline, done) = (self.settings.deadline, self.done_tx.clone());
                tokio::spawn(
                    async move {
                        let (result, took) = with_deadline(deadline, call).await;
                        let _ = done.send(Done::Query { id, result, took }).await;
                    }
                    .instrument(tracing::debug_span!("upstream_query", query = id)),
                );
            }
            (Action::Done(finish), _) => {
                if let Err(GaveUp::BreakerRefused { until }) = finish.result {
                    self.metrics.rejected(Refusal::BreakerOpen.label());
                    let until = until.unwrap_or(Instant::MAX);
                    let refused = status::breaker_refused(now, self.breaker.state(), until);
                    let _ = flight.reply.send(Err(refused));
                }
            }
            // Not reached: a query's guard makes one attempt and never waits.
            _ => {
                let stopped = tonic::Status::internal("sidecar engine: query not sent");
                let _ = flight.reply.send(Err(stopped));
            }
        }
    }

    pub(super) fn on_query_done(
        &mut self,
        now: Instant,
        id: u64,
        result: QueryResult,
        took: std::time::Duration,
    ) {
        self.metrics.upstream_call("query", result.is_ok(), took);
        let Some(mut flight) = self.queries.remove(&id) else {
            return;
        };
        flight.call.took = took;
        let answer = match &result {
            Ok(_) => Answer::Succeeded,
            Err(s) => Answer::Failed {
                verdict: verdict(s),
                random: 0,
            },
        };
        // The guard records the verdict with the breaker; its end (success, or one attempt
        // spent) changes nothing for the caller, who gets the upstream's own answer.
        let _ = flight.guard.handle(now, answer);
        while let Some(answer) = {
            let action = flight.guard.poll(now);
            self.serve(now, action, &mut flight.call)
        } {
            if flight.guard.handle(now, answer).is_err() {
                break;
            }
        }
        let _ = flight.reply.send(result);
    }
}
