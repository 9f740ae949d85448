//! Photos in requests: multipart form fields, or JSON with base64 strings. Never URLs or
//! server paths.

use crate::problem::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};
use base64::Engine;
use std::collections::HashMap;

/// The fields of a request: photo bytes by field name, and the other (text) fields.
#[derive(Default)]
pub struct Form {
    /// Photo fields.
    pub photos: HashMap<String, Bytes>,
    /// Text fields (JSON values as text for a JSON body).
    pub fields: HashMap<String, String>,
}

impl Form {
    /// The photo in field `name`, or 400 naming it.
    pub fn photo(&self, name: &str) -> Result<Bytes, ApiError> {
        self.photos
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::bad_request(format!("the request has no photo field {name:?} (multipart, or JSON with base64)")))
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the request body is over the limit of {limit} bytes"))
}

/// Reads the request's photos: `multipart/form-data` (file fields are photos), or
/// `application/json` whose photo fields (`photo_fields`) are base64 strings.
pub async fn read(req: Request, photo_fields: &[&str], limit: usize) -> Result<Form, ApiError> {
    let ctype = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mut form = Form::default();
    if ctype.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &()).await.map_err(|e| ApiError::bad_request(format!("not a multipart form: {e}")))?;
        let mut total = 0usize;
        while let Some(field) = mp.next_field().await.map_err(|e| ApiError::bad_request(format!("malformed multipart form: {e}")))? {
            let name = field.name().unwrap_or("").to_string();
            let is_file = field.file_name().is_some() || photo_fields.contains(&name.as_str());
            let bytes = field.bytes().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large(limit)
                } else {
                    ApiError::bad_request(format!("malformed multipart form: {e}"))
                }
            })?;
            total += bytes.len();
            if total > limit {
                return Err(too_large(limit));
            }
            if is_file {
                form.photos.insert(name, bytes);
            } else {
                form.fields.insert(name, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        Ok(form)
    } else if ctype.starts_with("application/json") {
        let body = axum::body::to_bytes(req.into_body(), limit).await.map_err(|_| too_large(limit))?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("not JSON: {e}")))?;
        let obj = v.as_object().ok_or_else(|| ApiError::bad_request("the JSON body must be an object"))?;
        for (k, v) in obj {
            if photo_fields.contains(&k.as_str()) {
                let s = v.as_str().ok_or_else(|| ApiError::bad_request(format!("field {k:?} must be a base64 string")))?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .map_err(|e| ApiError::bad_request(format!("field {k:?} is not base64: {e}")))?;
                form.photos.insert(k.clone(), bytes.into());
            } else {
                form.fields.insert(k.clone(), v.as_str().map(String::from).unwrap_or_else(|| v.to_string()));
            }
        }
        Ok(form)
    } else if ctype.is_empty() {
        Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "send multipart/form-data or application/json"))
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("{ctype} is not accepted: send multipart/form-data or application/json"),
        ))
    }
}

/// One photo of a batch enrollment: whose it is, the photo, and which face (`None`: the only
/// one).
pub struct BatchItem {
    /// The person's name.
    pub subject: String,
    /// The photo.
    pub image: Bytes,
    /// The face index, for a photo of several faces.
    pub face: Option<String>,
}

/// Most photos in one batch.
pub const MAX_BATCH: usize = 100;

/// Reads a batch enrollment: JSON `{"faces": [{"subject", "image" (base64), "face"}]}`, or a
/// multipart form in which each file field `image` belongs to the `subject` field before it
/// (and takes the `face` field given since that subject, if any).
pub async fn read_batch(req: Request, limit: usize) -> Result<Vec<BatchItem>, ApiError> {
    let ctype = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mut items = Vec::new();
    if ctype.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &()).await.map_err(|e| ApiError::bad_request(format!("not a multipart form: {e}")))?;
        let (mut subject, mut face): (Option<String>, Option<String>) = (None, None);
        while let Some(field) = mp.next_field().await.map_err(|e| ApiError::bad_request(format!("malformed multipart form: {e}")))? {
            let name = field.name().unwrap_or("").to_string();
            let is_file = field.file_name().is_some() || name == "image";
            let bytes = field.bytes().await.map_err(|e| ApiError::bad_request(format!("malformed multipart form: {e}")))?;
            match (name.as_str(), is_file) {
                ("subject", false) => {
                    subject = Some(String::from_utf8_lossy(&bytes).into_owned());
                    face = None;
                }
                ("face", false) => face = Some(String::from_utf8_lossy(&bytes).into_owned()),
                (_, true) => {
                    let s = subject.clone().ok_or_else(|| {
                        ApiError::bad_request(format!("photo {} of the batch comes before any subject field", items.len()))
                    })?;
                    items.push(BatchItem { subject: s, image: bytes, face: face.clone() });
                }
                (other, false) => {
                    return Err(ApiError::bad_request(format!("unknown field {other:?}: send subject, face and image fields")))
                }
            }
        }
    } else if ctype.starts_with("application/json") {
        let body = axum::body::to_bytes(req.into_body(), limit).await.map_err(|_| too_large(limit))?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("not JSON: {e}")))?;
        let list = v
            .get("faces")
            .and_then(|f| f.as_array())
            .ok_or_else(|| ApiError::bad_request("the JSON body must be {\"faces\": [{\"subject\": ..., \"image\": base64}, ...]}"))?;
        for (i, it) in list.iter().enumerate() {
            let subject = it["subject"].as_str().ok_or_else(|| ApiError::bad_request(format!("faces[{i}] has no subject string")))?;
            let s = it["image"].as_str().ok_or_else(|| ApiError::bad_request(format!("faces[{i}] has no base64 image string")))?;
            let image = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| ApiError::bad_request(format!("faces[{i}].image is not base64: {e}")))?;
            let face = match &it["face"] {
                serde_json::Value::Null => None,
                f => Some(f.as_str().map(String::from).unwrap_or_else(|| f.to_string())),
            };
            items.push(BatchItem { subject: subject.to_string(), image: image.into(), face });
        }
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send multipart/form-data or application/json",
        ));
    }
    if items.is_empty() {
        return Err(ApiError::bad_request("the batch has no photo"));
    }
    if items.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!("the batch has {} photos; at most {MAX_BATCH} in one request", items.len())));
    }
    Ok(items)
}
