//! `visage serve`: the HTTP API on axum and tokio.
//!
//! * Tenants and API keys ([`keys`]): `Authorization: Bearer KEY`; a key sees only its tenant
//!   (another tenant's gallery answers 404) and its scope (recognize < enroll < admin).
//! * Photo work on a bounded worker pool ([`pool`]): 503 with `Retry-After` when it is full.
//! * One error envelope ([`problem`]): `application/problem+json` with a stable `code` and the
//!   request id.
//! * Probes and metrics: `/healthz`, `/readyz`, `/metrics` (Prometheus text).

pub mod auth;
pub mod backend;
pub mod keys;
pub mod metrics;
pub mod openapi;
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
pub use state::{milvus_gallery_name, AppState, MilvusConfig, ServerConfig};

/// How long a client may take to send its request body, unless configured.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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
    let bytes = match tokio::time::timeout(st.config.body_timeout, read_body(body, limit)).await {
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

/// Liveness probe: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "ok", content_type = "text/plain", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness probe: models loaded, key store answering.
#[utoipa::path(get, path = "/readyz", tag = "service", responses((status = 200, description = "ready", content_type = "text/plain", body = String), (status = 503, description = "not ready", body = openapi::Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    // The models are loaded before the server listens; ready once the key store answers.
    match st.keys.list() {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e.to_string()).into_response(),
    }
}

/// Prometheus metrics: requests by route and status, latency sums, queue depth, gallery sizes.
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)))]
pub async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let mut gauges = vec![
        ("# TYPE visage_queue_depth gauge\nvisage_queue_depth".to_string(), st.pool.depth() as f64),
        ("# TYPE visage_queue_waiting gauge\nvisage_queue_waiting".to_string(), st.pool.waiting() as f64),
    ];
    let sizes = |st: Arc<AppState>| {
        let mut gauges = Vec::new();
        let mut first = true;
        for ((tenant, name), g) in st.open_galleries() {
            if let Ok((subjects, templates)) = g.counts() {
                let t = if first { "# TYPE visage_gallery_templates gauge\n" } else { "" };
                first = false;
                gauges.push((format!("{t}visage_gallery_templates{{tenant=\"{tenant}\",gallery=\"{name}\"}}"), templates as f64));
                gauges.push((format!("visage_gallery_subjects{{tenant=\"{tenant}\",gallery=\"{name}\"}}"), subjects as f64));
            }
        }
        gauges
    };
    // Counting a gallery in Milvus is a network call: not on the async executor.
    if st.uses_milvus() {
        let st2 = st.clone();
        gauges.extend(tokio::task::spawn_blocking(move || sizes(st2)).await.unwrap_or_default());
    } else {
        gauges.extend(sizes(st.clone()));
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

/// The web page (`/`): self-contained HTML and JavaScript, no external assets.
const INDEX_HTML: &str = include_str!("web/index.html");
/// The browsable API page (`/docs`), reading `/openapi.json`.
const DOCS_HTML: &str = include_str!("web/docs.html");

fn html(body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // Nothing from elsewhere: scripts and styles are inline, images are the user's own.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// The web page: paste a key, pick or create a gallery, enroll from a photo or the webcam,
/// identify a photo with boxes and names drawn, list and forget people.
#[utoipa::path(get, path = "/", tag = "service", responses((status = 200, description = "the web page", content_type = "text/html", body = String)))]
pub async fn page_index() -> Response {
    html(INDEX_HTML)
}

/// The browsable API reference, built in the page from `/openapi.json`.
#[utoipa::path(get, path = "/docs", tag = "service", responses((status = 200, description = "the API reference page", content_type = "text/html", body = String)))]
pub async fn page_docs() -> Response {
    html(DOCS_HTML)
}

/// This document (OpenAPI 3.1), generated from the code.
#[utoipa::path(get, path = "/openapi.json", tag = "service", responses((status = 200, description = "the OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let mut r = DOC.get_or_init(openapi::document).clone().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The routes as registered, with the methods each serves.
struct Table {
    router: Router<Arc<AppState>>,
    served: Vec<(&'static str, &'static str)>,
}

impl Table {
    fn at(mut self, path: &'static str, methods: &[&'static str], mr: axum::routing::MethodRouter<Arc<AppState>>) -> Self {
        self.router = self.router.route(path, mr);
        self.served.extend(methods.iter().map(|m| (*m, path)));
        self
    }
}

fn table() -> Table {
    use routes::*;
    Table { router: Router::new(), served: Vec::new() }
        .at("/", &["GET"], get(page_index))
        .at("/docs", &["GET"], get(page_docs))
        .at("/openapi.json", &["GET"], get(openapi_json))
        .at("/healthz", &["GET"], get(healthz))
        .at("/readyz", &["GET"], get(readyz))
        .at("/metrics", &["GET"], get(metrics))
        .at("/v1/galleries", &["GET", "POST"], get(list_galleries).post(create_gallery))
        .at("/v1/galleries/{g}", &["DELETE"], delete(delete_gallery))
        .at("/v1/galleries/{g}/subjects", &["GET"], get(list_subjects))
        .at("/v1/galleries/{g}/subjects/{s}", &["PATCH", "DELETE"], patch(rename_subject).delete(delete_subject))
        .at("/v1/galleries/{g}/faces", &["POST"], post(enroll_batch))
        .at("/v1/galleries/{g}/subjects/{s}/faces", &["GET", "POST"], get(list_faces).post(enroll))
        .at("/v1/galleries/{g}/subjects/{s}/faces/{face_id}", &["DELETE"], delete(delete_face))
        .at("/v1/galleries/{g}/subjects/{s}/verify", &["POST"], post(verify))
        .at("/v1/galleries/{g}/identify", &["POST"], post(identify))
        .at("/v1/compare", &["POST"], post(compare))
        .at("/v1/detect", &["POST"], post(detect))
        .at("/v1/liveness", &["POST"], post(liveness))
}

/// Every (method, path) the router serves, as it registers them (for the OpenAPI drift test,
/// which also probes the live server to check the methods listed are the ones served).
pub fn served_routes() -> Vec<(&'static str, &'static str)> {
    table().served
}

/// The application: every route, the request-id and metrics layer, the problem+json fallbacks.
pub fn router(state: Arc<AppState>) -> Router {
    table()
        .router
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
