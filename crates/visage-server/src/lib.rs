//! `visage serve`: the HTTP API on axum and tokio.
//!
//! * Tenants and API keys ([`keys`]): `Authorization: Bearer KEY`; a key sees only its tenant
//!   (another tenant's gallery answers 404) and its scope (recognize < enroll < admin).
//! * Photo work on a bounded worker pool ([`pool`]): 503 with `Retry-After` when it is full.
//! * One error envelope ([`problem`]): `application/problem+json` with a stable `code` and the
//!   request id.
//! * Probes and metrics: `/healthz`, `/readyz`, `/metrics` (Prometheus text).

pub mod auth;
pub mod keys;
pub mod metrics;
pub mod photo;
pub mod pool;
pub mod problem;
pub mod routes;
pub mod state;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::Router;
use problem::{ApiError, REQUEST_ID};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use keys::{KeyStore, Scope};
pub use state::{AppState, ServerConfig};

/// How long a client may take to send its request body.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// An oversized body is still read (and dropped) up to this many more bytes before the 413 is
/// sent, so that a client that writes its whole body before reading the answer gets the answer
/// rather than a broken connection.
const DRAIN_MAX: usize = 64 << 20;

/// The body, whole, or how much there was when it was over `limit` (read on up to
/// [`DRAIN_MAX`] more bytes, then given up on).
async fn read_body(body: axum::body::Body, limit: usize) -> Result<axum::body::Bytes, Result<usize, ()>> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Err(()))?;
        total += chunk.len();
        if total <= limit {
            buf.extend_from_slice(&chunk);
        } else if total > limit + DRAIN_MAX {
            break;
        }
    }
    if total > limit {
        return Err(Ok(total));
    }
    Ok(buf.into())
}

/// Reads the whole body (at most the limit, within [`BODY_TIMEOUT`]) before the handler runs,
/// so that an answer that does not need the body (401, 404) never cuts off a client still
/// sending it, and a slow or oversized upload is refused with the envelope.
async fn buffered(st: &AppState, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let limit = st.config.max_body;
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, read_body(body, limit)).await {
        Ok(Ok(b)) => b,
        Ok(Err(Ok(_))) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body is over the limit of {limit} bytes"),
            )
            .into_response()
        }
        Ok(Err(Err(()))) => return ApiError::bad_request("the request body could not be read").into_response(),
        Err(_) => return ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", "the request body took too long to arrive").into_response(),
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

/// Gives every request an id (`X-Request-Id`, also in error bodies), reads its body, and
/// records its route, status and latency.
async fn request_id(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!("{:x}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let start = std::time::Instant::now();
    let mut resp = REQUEST_ID.scope(id.clone(), buffered(&st, req, next)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    st.metrics.record(&route, resp.status().as_u16(), start.elapsed().as_secs_f64());
    resp
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    // The models are loaded before the server listens; ready once the key store answers.
    match st.keys.list() {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e.to_string()).into_response(),
    }
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let mut gauges = vec![
        ("# TYPE visage_queue_depth gauge\nvisage_queue_depth".to_string(), st.pool.depth() as f64),
        ("# TYPE visage_queue_waiting gauge\nvisage_queue_waiting".to_string(), st.pool.waiting() as f64),
    ];
    let mut first = true;
    for ((tenant, name), g) in st.open_galleries() {
        if let Ok((subjects, templates)) = g.counts() {
            let t = if first { "# TYPE visage_gallery_templates gauge\n" } else { "" };
            first = false;
            gauges.push((format!("{t}visage_gallery_templates{{tenant=\"{tenant}\",gallery=\"{name}\"}}"), templates as f64));
            gauges.push((format!("visage_gallery_subjects{{tenant=\"{tenant}\",gallery=\"{name}\"}}"), subjects as f64));
        }
    }
    let mut r = st.metrics.render(&gauges).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
}

/// The application: every route, the request-id and metrics layer, the problem+json fallbacks.
pub fn router(state: Arc<AppState>) -> Router {
    use routes::*;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/galleries", get(list_galleries).post(create_gallery))
        .route("/v1/galleries/{g}", delete(delete_gallery))
        .route("/v1/galleries/{g}/subjects", get(list_subjects))
        .route("/v1/galleries/{g}/subjects/{s}", patch(rename_subject).delete(delete_subject))
        .route("/v1/galleries/{g}/faces", post(enroll_batch))
        .route("/v1/galleries/{g}/subjects/{s}/faces", get(list_faces).post(enroll))
        .route("/v1/galleries/{g}/subjects/{s}/faces/{face_id}", delete(delete_face))
        .route("/v1/galleries/{g}/subjects/{s}/verify", post(verify))
        .route("/v1/galleries/{g}/identify", post(identify))
        .route("/v1/compare", post(compare))
        .route("/v1/detect", post(detect))
        .route("/v1/liveness", post(liveness))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), request_id))
        // The body is read whole (and its size checked) by the middleware.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// Serves `state` on `listener` until SIGTERM or SIGINT; in-flight requests finish first.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        tracing::info!("shutting down: finishing the requests in flight");
    };
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
