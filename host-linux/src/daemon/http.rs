//! Loopback HTTP (DESIGN §6): axum routes served by hyper connections that are bounded in
//! count and closed when idle; a bearer token, when configured, guards every route.

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
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Semaphore, watch};

/// The routes. With a token configured, every route but the two probes (`/healthz`,
/// `/readyz`, which reveal nothing) requires `Authorization: Bearer <token>`.
pub fn router(shared: Arc<Shared>) -> Router {
    let guarded = Router::new()
        .route("/api/v1/status", get(pipeline_status))
        .route("/api/v1/action/train_now", post(train_now))
        .route("/api/call", post(api_call))
        .route(
            "/health",
            get(|| async { json_response(StatusCode::OK, br#"{"health":"ok"}"#.to_vec()) }),
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
            get(|| async { json_response(StatusCode::OK, br#"{"status":"ok"}"#.to_vec()) }),
        )
        .route("/readyz", get(readyz));
    guarded
        .merge(probes)
        .fallback(|| async {
            error_response(
                StatusCode::NOT_FOUND,
                ErrorCode::BadRequest,
                "no such route",
            )
        })
        .method_not_allowed_fallback(|| async {
            error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::BadRequest,
                "method not allowed on this route",
            )
        })
        .with_state(shared)
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let mut body = Vec::new();
    reply::error(code, message, &mut body);
    json_response(status, body)
}

async fn require_token(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let expected = shared.config.http_token.as_deref().unwrap_or_default();
    // The scheme name is case-insensitive (RFC 9110 §11.1); the token is not.
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim());
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        next.run(request).await
    } else {
        let mut response = error_response(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Refused,
            "missing or wrong bearer token",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        response
    }
}

/// Compares without an early exit, so the time taken does not reveal the matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn pipeline_status(State(shared): State<Arc<Shared>>) -> Response {
    let mut body = Vec::new();
    reply::json(&shared.pipeline_json(), &mut body);
    json_response(StatusCode::OK, body)
}

/// `POST /api/v1/action/train_now`: 202 with the status when accepted; 409 with the reason
/// when it does not apply now (503 while shutting down).
async fn train_now(
    State(shared): State<Arc<Shared>>,
    peer: axum::Extension<SocketAddr>,
) -> Response {
    let peer = Peer::Http(peer.0);
    shared
        .audit
        .call(heidi_core::proto::Method::PipelineTrainNow, &peer);
    match shared.pipeline_command(Command::TrainNow, &peer).await {
        Ok(()) => {
            let mut body = Vec::new();
            let accepted = serde_json::json!({"accepted": true, "status": shared.pipeline_json()});
            reply::json(&accepted, &mut body);
            json_response(StatusCode::ACCEPTED, body)
        }
        Err(refused) => {
            let status = match refused.code() {
                ErrorCode::Refused => StatusCode::CONFLICT,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            error_response(status, refused.code(), &refused.message())
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
        Err(_) => {
            let message = format!("request body exceeds the limit of {limit} bytes");
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::FrameTooLarge,
                &message,
            );
        }
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadFrame,
            "request body is not valid UTF-8",
        );
    };
    if text.is_empty() {
        return error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadFrame,
            "empty request body",
        );
    }
    let mut out = Vec::new();
    shared.call(text, &Peer::Http(peer.0), &mut out).await;
    json_response(StatusCode::OK, out)
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.ready.load(Ordering::Acquire) {
        json_response(StatusCode::OK, br#"{"ready":true}"#.to_vec())
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            br#"{"ready":false}"#.to_vec(),
        )
    }
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
    let app = router(shared.clone());
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
            shared.open_connections.fetch_add(1, Ordering::Relaxed);
            connection(stream, service, idle, shutdown).await;
            shared.open_connections.fetch_sub(1, Ordering::Relaxed);
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
    let mut body = Vec::new();
    reply::error(
        ErrorCode::Overloaded,
        "too many connections; retry shortly",
        &mut body,
    );
    let mut response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n",
        body.len()
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

#[cfg(test)]
mod tests {
    #[test]
    fn token_comparison() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
    }
}
