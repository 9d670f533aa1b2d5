//! The `Sidecar` gRPC service: translates requests into engine calls and engine answers into
//! responses, one tracing span per request.

use super::engine::EngineClient;
use super::status::retry_after_ms;
use crate::proto::sidecar_server::Sidecar;
use crate::proto::{
    BreakerState, HealthCheckRequest, HealthCheckResponse, Query, QueryResponse, ServingStatus,
    Transaction, TransactionResponse,
};
use heidi_core::breaker::State;
use heidi_core::upstream::{Serving, serving};
use tonic::{Request, Response, Status};
use tracing::Instrument;

/// The service behind `heidi.sidecar.v1.Sidecar`.
#[derive(Clone, Debug)]
pub struct SidecarService {
    engine: EngineClient,
}

impl SidecarService {
    /// A service that hands work to `engine`.
    pub fn new(engine: EngineClient) -> SidecarService {
        SidecarService { engine }
    }

    /// The answer of `HealthCheck` now.
    pub fn health(&self) -> HealthCheckResponse {
        let snap = self.engine.snapshot();
        let now = self.engine.now();
        let retry_after = snap
            .open_until
            .map_or(0, |until| retry_after_ms(now, until));
        let queued = self.engine.queued().total();
        let status = match serving(snap.breaker, snap.closing) {
            Serving::Serving => ServingStatus::Serving,
            Serving::Degraded => ServingStatus::Degraded,
            Serving::NotServing => ServingStatus::NotServing,
        };
        HealthCheckResponse {
            status: status as i32,
            breaker: breaker_state(snap.breaker) as i32,
            breaker_retry_after_ms: retry_after,
            queued: u32::try_from(queued).unwrap_or(u32::MAX),
            message: format!(
                "breaker {}, {} batches upstream, {queued} transactions queued{}",
                snap.breaker,
                snap.in_flight,
                if snap.closing { ", shutting down" } else { "" }
            ),
        }
    }
}

fn breaker_state(state: State) -> BreakerState {
    match state {
        State::Closed | State::Disabled => BreakerState::Closed,
        State::Open | State::ForcedOpen => BreakerState::Open,
        State::HalfOpen => BreakerState::HalfOpen,
    }
}

#[tonic::async_trait]
impl Sidecar for SidecarService {
    async fn submit_transaction(
        &self,
        request: Request<Transaction>,
    ) -> Result<Response<TransactionResponse>, Status> {
        let tx = request.into_inner();
        let span = tracing::info_span!("submit_transaction", key = %tx.idempotency_key);
        let result = self.engine.submit(tx).instrument(span.clone()).await;
        if let Err(s) = &result {
            span.in_scope(|| tracing::debug!(code = ?s.code(), "refused: {}", s.message()));
        }
        result.map(Response::new)
    }

    async fn submit_query(
        &self,
        request: Request<Query>,
    ) -> Result<Response<QueryResponse>, Status> {
        let query = request.into_inner();
        let span = tracing::info_span!("submit_query", kind = query.kind);
        self.engine
            .query(query)
            .instrument(span)
            .await
            .map(Response::new)
    }

    async fn health_check(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(self.health()))
    }
}
