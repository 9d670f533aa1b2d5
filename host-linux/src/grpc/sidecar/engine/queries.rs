//! Queries: forwarded one by one (no batching, no retries) through the same breaker and
//! under the same deadline as batches.

use super::{Done, Driver, QueryFlight, QueryJob, QueryResult};
use crate::grpc::sidecar::status;
use crate::grpc::sidecar::upstream::{UpstreamApi, verdict, with_deadline};
use heidi_core::Instant;
use heidi_core::upstream::BreakerInput;
use tracing::Instrument;

impl<U: UpstreamApi> Driver<U> {
    pub(super) fn on_query(&mut self, job: QueryJob) {
        let now = self.clock.now();
        let acquired = self.breaker.acquire(now);
        self.drain_breaker_events();
        let permit = match acquired {
            Ok(permit) => permit,
            Err(rejected) => {
                self.metrics.rejected("breaker_open");
                let state = self.breaker.state();
                let refused = status::breaker_refused(now, state, rejected.until);
                let _ = job.reply.send(Err(refused));
                return;
            }
        };
        let id = self.new_id();
        self.queries.insert(
            id,
            QueryFlight {
                reply: job.reply,
                permit,
            },
        );
        let call = self.upstream.query(job.query, self.settings.deadline);
        let (deadline, done) = (self.settings.deadline, self.done_tx.clone());
        tokio::spawn(
            async move {
                let (result, took) = with_deadline(deadline, call).await;
                let _ = done.send(Done::Query { id, result, took }).await;
            }
            .instrument(tracing::debug_span!("upstream_query", query = id)),
        );
    }

    pub(super) fn on_query_done(
        &mut self,
        now: Instant,
        id: u64,
        result: QueryResult,
        took: std::time::Duration,
    ) {
        self.metrics.upstream_call("query", result.is_ok(), took);
        let Some(flight) = self.queries.remove(&id) else {
            return;
        };
        let input = match &result {
            Ok(_) => BreakerInput::Success,
            Err(s) => verdict(s).breaker,
        };
        self.report(now, flight.permit, input, took);
        let _ = flight.reply.send(result);
    }
}
