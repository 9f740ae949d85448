//! The caller: `Authorization: Bearer <key>`, checked against the key store, with its scope.

use crate::keys::{KeyInfo, Scope};
use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use std::sync::Arc;

/// An authenticated key.
pub struct Caller(pub KeyInfo);

impl Caller {
    /// 403 unless the key's scope includes `need`.
    pub fn require(&self, need: Scope) -> Result<(), ApiError> {
        if self.0.scope >= need {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this key's scope is {}; this needs {}", self.0.scope.name(), need.name()),
            ))
        }
    }

    /// The key's tenant.
    pub fn tenant(&self) -> &str {
        &self.0.tenant
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let unauthorized = |d: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", d);
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| unauthorized("send an API key as Authorization: Bearer KEY"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("the Authorization header must be Bearer KEY"))?;
        match state.keys.authenticate(token.trim()).map_err(ApiError::internal)? {
            Some(k) => Ok(Caller(k)),
            None => Err(unauthorized("unknown or revoked API key")),
        }
    }
}
