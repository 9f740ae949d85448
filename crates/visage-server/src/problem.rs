//! One envelope for every failure: `application/problem+json` (RFC 9457) with a stable machine
//! `code` and the request id. Never a traceback; never a 500 for a client's mistake.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

tokio::task_local! {
    /// The id of the request being served (set by the request-id middleware).
    pub static REQUEST_ID: String;
}

/// A failed request.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine code (`no_face`, `subject_not_found`, ...).
    pub code: &'static str,
    /// A sentence for people.
    pub detail: String,
    /// Seconds to wait before retrying (503).
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with `status`, `code` and `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError { status, code, detail: detail.into(), retry_after: None }
    }

    /// 400 `bad_request`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 404 for a resource the caller's tenant does not have (another tenant's looks the same).
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    /// 503 `overloaded` with `Retry-After`.
    pub fn overloaded() -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "every worker is busy and the queue is full; retry shortly")
        }
    }

    /// 500 for a fault of the server itself (the detail is logged, not sent).
    pub fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {what}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server failed to answer; the fault is logged")
    }
}

fn title(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let id = REQUEST_ID.try_with(|id| id.clone()).unwrap_or_default();
        let body = json!({
            "type": format!("https://visage.invalid/problems/{}", self.code),
            "title": title(self.status),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
            "request_id": id,
        });
        let mut r = (self.status, body.to_string()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

impl From<visage_gallery::GalleryError> for ApiError {
    fn from(e: visage_gallery::GalleryError) -> Self {
        use visage_gallery::GalleryError as G;
        let detail = e.to_string();
        match e {
            G::UnknownSubject { .. } => Self::not_found("subject_not_found", detail),
            G::Contract { .. } => Self::new(StatusCode::CONFLICT, "model_mismatch", detail),
            G::NameTaken { .. } => Self::new(StatusCode::CONFLICT, "subject_exists", detail),
            G::Duplicate { .. } => Self::new(StatusCode::CONFLICT, "duplicate_face", detail),
            // A name or metadata that the gallery refuses is the client's mistake.
            G::Invalid(_) => Self::bad_request(detail),
            G::Busy { .. } => ApiError { retry_after: Some(1), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "gallery_busy", detail) },
            other => Self::internal(other),
        }
    }
}

impl From<visage::VisageError> for ApiError {
    fn from(e: visage::VisageError) -> Self {
        use visage::{ImageError, VisageError as V};
        let detail = e.to_string();
        match e {
            V::Image(ImageError::TooManyPixels { .. } | ImageError::FileTooLarge { .. }) | V::TooMuchWork { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "photo_too_large", detail)
            }
            V::Image(_) => Self::new(StatusCode::BAD_REQUEST, "bad_photo", detail),
            other => Self::internal(other),
        }
    }
}
