//! Loopback HTTP: axum routes served by hyper connections that are bounded in count and
//! closed when idle. Every request first passes the core's [`HttpGuard`] (`Host`, `Origin`,
//! `Content-Type`: docs/DAEMON.md, "Browsers"); a bearer token, when configured, then guards
//! every route but the probes.

use super::audit::Outcome;
use super::idle_io::IdleIo;
use super::pipeline::Command;
use super::reply;
use super::state::{Peer, Shared};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use heidi_core::proto::ErrorCode;
use heidi_core::proto::http_answers::{
    HEALTH_BODY, HttpAnswer, LIVE_BODY, bearer_matches, command_refused_status, write_readyz,
    write_train_accepted,
};
use heidi_core::proto::http_guard::{Header, HttpGuard, RequestHead};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// The routes of a listener bound to `bound`. Every request, whatever its route, first passes
/// [`HttpGuard::admit`] for that address. With a token configured, every route but the two
/// probes (`/healthz`, `/readyz`) requires `Authorization: Bearer <token>`.
pub fn router(shared: Arc<Shared>, bound: SocketAddr) -> Router {
    let guarded = Router::new()
        .route("/api/v1/status", get(pipeline_status))
        .route("/api/v1/action/train_now", post(train_now))
        .route("/api/call", post(api_call))
        .route(
            "/health",
            get(|| async { json_response(StatusCode::OK, HEALTH_BODY.as_bytes().to_vec()) }),
        )
        .route("/metrics", get(metrics));
    let guarded = if shared.config.http_token.is_some() {
        guarded.layer(middleware::from_fn_with_state(
            shared.clone(),
            require_token,
        ))
    } else {
        guarded
    };
    let probes = Router::new()
        .route(
            "/healthz",
            get(|| async { json_response(StatusCode::OK, LIVE_BODY.as_bytes().to_vec()) }),
        )
        .route("/readyz", get(readyz));
    guarded
        .merge(probes)
        .fallback(|| async { answer(HttpAnswer::NoSuchRoute) })
        .method_not_allowed_fallback(|| async { answer(HttpAnswer::MethodNotAllowed) })
        .layer(middleware::from_fn_with_state(
            HttpGuard {
                port: bound.port(),
                loopback: bound.ip().is_loopback(),
            },
            guard,
        ))
        .with_state(shared)
}

/// The head of `request` as the core's guard reads it.
fn head_of<'a>(request: &'a Request, headers: &'a HeaderMap) -> RequestHead<'a> {
    let one = |name| one_header(headers, name);
    // An absolute-form target (`POST http://host/...`) names the host; `Host` is then ignored.
    let host = match request.uri().authority() {
        Some(authority) => Header::One(authority.as_str().as_bytes()),
        None => one(header::HOST),
    };
    let has_body = axum::body::HttpBody::size_hint(request.body()).exact() != Some(0);
    RequestHead {
        method: request.method().as_str().as_bytes(),
        host,
        origin: one(header::ORIGIN),
        content_type: one(header::CONTENT_TYPE),
        has_body,
    }
}

/// The value of header `name`, as the core reads headers: absent, once, or repeated.
fn one_header(headers: &HeaderMap, name: header::HeaderName) -> Header<'_> {
    let mut values = headers.get_all(name).into_iter();
    match (values.next(), values.next()) {
        (None, _) => Header::Absent,
        (Some(v), None) => Header::One(v.as_bytes()),
        (Some(_), Some(_)) => Header::Repeated,
    }
}

/// Refuses what [`HttpGuard::admit`] refuses, with its status and the error shape.
async fn guard(State(guard): State<HttpGuard>, request: Request, next: Next) -> Response {
    let verdict = guard.admit(&head_of(&request, request.headers()));
    match verdict {
        Ok(()) => next.run(request).await,
        Err(refusal) => error_response(
            status_of(refusal.status()),
            refusal.code(),
            refusal.message(),
        ),
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A status the core names (always a valid one).
fn status_of(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let mut body = Vec::new();
    reply::error(code, message, &mut body);
    json_response(status, body)
}

/// One of the core's own answers: its status, the error reply, and the challenge it names.
fn answer(answer: HttpAnswer) -> Response {
    let status = status_of(answer.status());
    let mut response = error_response(status, answer.code(), &answer.to_string());
    if let Some(challenge) = answer.challenge() {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static(challenge),
        );
    }
    response
}

async fn require_token(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let expected = shared.config.http_token.as_deref().unwrap_or_default();
    let given = one_header(request.headers(), header::AUTHORIZATION);
    if bearer_matches(given, expected.as_bytes()) {
        next.run(request).await
    } else {
        answer(HttpAnswer::Unauthorized)
    }
}

async fn pipeline_status(State(shared): State<Arc<Shared>>) -> Response {
    let body = shared.pipeline_status().text().as_bytes().to_vec();
    json_response(StatusCode::OK, body)
}

/// `POST /api/v1/action/train_now`: 200 `{"status":"train initiated","accepted":true,
/// "pipeline":{…}}` when accepted (the original `heidid` answered 200 with that `status`, and
/// its clients check for 200); 409 with the reason when it does not apply now (503 while
/// shutting down). A body, if any, is not read. An accepted command is journaled and audited
/// with the HTTP peer; a refused one is counted (docs/DAEMON.md, "Security").
async fn train_now(
    State(shared): State<Arc<Shared>>,
    peer: axum::Extension<SocketAddr>,
) -> Response {
    let peer = Peer::Http(peer.0);
    let method = heidi_core::proto::Method::PipelineTrainNow;
    let answer = shared.pipeline_command(Command::TrainNow, &peer).await;
    let outcome = match answer {
        Ok(()) => Outcome::CarriedOut,
        Err(_) => Outcome::Refused,
    };
    shared.audit_admin(method, &peer, outcome);
    match answer {
        Ok(()) => {
            let pipeline = shared.pipeline_status();
            let mut body = String::new();
            // Writing into a String cannot fail.
            let _ = write_train_accepted(pipeline.text(), &mut body);
            json_response(StatusCode::OK, body.into_bytes())
        }
        Err(refused) => {
            let refusal = refused.refusal();
            let status = status_of(command_refused_status(refusal.code()));
            error_response(status, refusal.code(), &refusal.to_string())
        }
    }
}

/// `POST /api/call`: the body is a framed request's JSON; the reply is the same JSON the
/// socket would send (HTTP 200 for error replies too, like the socket).
async fn api_call(
    State(shared): State<Arc<Shared>>,
    peer: axum::Extension<SocketAddr>,
    body: Body,
) -> Response {
    let limit = shared.config.limits.request_max_bytes;
    let bytes: Bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => return answer(HttpAnswer::BodyTooLarge { limit_bytes: limit }),
    };
    let text = match heidi_core::proto::frame::body_text(&bytes) {
        Ok(text) => text,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
    };
    let mut out = Vec::new();
    shared.call(text, &Peer::Http(peer.0), &mut out).await;
    json_response(StatusCode::OK, out)
}

/// `GET /readyz`: 200 `{"ready":true}` while serving and every health check the policy's
/// `readiness.checks` names is healthy; else 503 with `reason` (`stopping`, or `checks` with
/// the failing checks and their status).
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let stopping = !shared.ready.load(Ordering::Acquire);
    let failing = if stopping {
        Vec::new()
    } else {
        let kernel = shared.kernel.lock().unwrap_or_else(|p| p.into_inner());
        kernel.not_ready(shared.clock.now())
    };
    let mut body = String::new();
    let failing = failing.iter().map(|c| (c.name.as_str(), c.status));
    // Writing into a String cannot fail.
    let status = write_readyz(stopping, failing, &mut body).unwrap_or(500);
    json_response(status_of(status), body.into_bytes())
}

async fn metrics(State(shared): State<Arc<Shared>>, _headers: HeaderMap) -> Response {
    let body = shared.metrics.encode();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Accepts connections until `shutdown`; each is served by hyper (HTTP/1.1 keep-alive) and
/// closed after `idle_timeout` without traffic.
pub async fn serve(
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    connections: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(bound) = listener.local_addr() else {
        tracing::error!("the HTTP listener has no local address; HTTP is not served");
        return;
    };
    let app = router(shared.clone(), bound);
    let gauge = shared.metrics.connections("http");
    let idle = shared.config.limits.idle_timeout;
    let refusers = Arc::new(Semaphore::new(32));
    let mut last_warning = None;
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    super::unix::accept_failed(&mut last_warning, "http", &e).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            shared.metrics.rejected("http");
            if let Ok(refuser) = refusers.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(refuser);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone().layer(axum::Extension(addr)));
        let (shared, shutdown, gauge) = (shared.clone(), shutdown.clone(), gauge.clone());
        tokio::spawn(async move {
            gauge.inc();
            shared.connections.opened();
            connection(stream, service, idle, shutdown).await;
            shared.connections.closed();
            gauge.dec();
            drop(permit);
        });
    }
}

/// Answers a connection over the limit with `503` and the error shape, then closes it. The
/// request head is read first (up to 1 s), so the client sees the answer, not a reset.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let wait = Duration::from_secs(1);
    let mut head = [0u8; 4096];
    let _ = tokio::time::timeout(wait, stream.read(&mut head)).await;
    let refusal = HttpAnswer::TooManyConnections;
    let mut body = Vec::new();
    reply::error(refusal.code(), &refusal.to_string(), &mut body);
    let status = status_of(refusal.status());
    let mut response = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: {}\r\nConnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        body.len(),
        refusal.retry_after_s().unwrap_or(1),
    )
    .into_bytes();
    response.extend_from_slice(&body);
    let _ = tokio::time::timeout(wait, stream.write_all(&response)).await;
    let _ = stream.shutdown().await;
}

async fn connection(
    stream: tokio::net::TcpStream,
    service: TowerToHyperService<Router>,
    idle: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let (io, activity) = IdleIo::new(stream);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = false;
    let tick = (idle / 4).max(Duration::from_millis(5));
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = tokio::time::sleep(tick) => {
                let quiet = activity.quiet_for();
                if quiet >= idle * 2 {
                    return; // graceful close did not finish: drop the connection
                }
                if quiet >= idle && !closing {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = shutdown.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
