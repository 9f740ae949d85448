//! A tenant's gallery: the embedded SQLite file under the data directory, or, in a build with
//! the `milvus` feature and a server configured (`visage serve --milvus HOST:PORT`), a gallery
//! kept in Milvus (crates/visage-gallery-milvus). Both answer the same calls with the same
//! errors; the decision rule (threshold, unknown, top-k) stays the handlers'.
//!
//! A Milvus gallery's calls block on the network: they run on the worker pool or a blocking
//! thread, never on the async executor.

use crate::problem::ApiError;
#[cfg(feature = "milvus")]
use axum::http::StatusCode;
use visage_gallery::{Contract, EnrollOutcome, FaceRecord, ForgetOutcome, Gallery, Match, NewTemplate, SubjectInfo};

/// An open gallery of a tenant.
pub enum TenantGallery {
    /// The embedded gallery, `DIR/tenants/TENANT/NAME.db`.
    Sqlite(Gallery),
    /// A gallery in Milvus.
    #[cfg(feature = "milvus")]
    Milvus(visage_gallery_milvus::MilvusGallery),
}

/// The same call on either kind of gallery, its error made an [`ApiError`].
macro_rules! each {
    ($s:expr, $g:ident => $e:expr) => {
        match $s {
            TenantGallery::Sqlite($g) => Ok($e?),
            #[cfg(feature = "milvus")]
            TenantGallery::Milvus($g) => Ok($e?),
        }
    };
}

impl TenantGallery {
    /// What embeddings it holds.
    pub fn contract(&self) -> &Contract {
        match self {
            TenantGallery::Sqlite(g) => g.contract(),
            #[cfg(feature = "milvus")]
            TenantGallery::Milvus(g) => g.contract(),
        }
    }

    /// The gallery's same-person threshold.
    pub fn threshold(&self) -> Result<f64, ApiError> {
        each!(self, g => g.threshold())
    }

    /// (subjects, templates).
    pub fn counts(&self) -> Result<(usize, usize), ApiError> {
        each!(self, g => g.counts())
    }

    /// Every subject with its template count, by name.
    pub fn subjects(&self) -> Result<Vec<SubjectInfo>, ApiError> {
        each!(self, g => g.subjects())
    }

    /// Whether `name` is enrolled.
    pub fn has_subject(&self, name: &str) -> Result<bool, ApiError> {
        match self {
            TenantGallery::Sqlite(g) => Ok(g.subjects()?.iter().any(|x| x.name == name)),
            #[cfg(feature = "milvus")]
            TenantGallery::Milvus(g) => Ok(g.has_subject(name)?),
        }
    }

    /// Renames a subject: 409 `subject_exists` when the new name is taken, 404 when the old
    /// one is unknown.
    pub fn rename(&self, old: &str, new: &str) -> Result<(), ApiError> {
        match self {
            TenantGallery::Sqlite(g) => Ok(g.rename(old, new)?),
            #[cfg(feature = "milvus")]
            TenantGallery::Milvus(g) => {
                if g.has_subject(new)? {
                    return Err(ApiError::new(StatusCode::CONFLICT, "subject_exists", format!("{new:?} is already enrolled")));
                }
                Ok(g.rename(old, new)?)
            }
        }
    }

    /// Forgets a subject and every template.
    pub fn forget(&self, name: &str) -> Result<ForgetOutcome, ApiError> {
        each!(self, g => g.forget(name))
    }

    /// Enrolls `templates` under `name` (created if new); idempotent by photo hash and box; a
    /// face enrolled under another name is refused (409 `duplicate_face`).
    pub fn enroll(&self, name: &str, templates: &[NewTemplate]) -> Result<EnrollOutcome, ApiError> {
        match self {
            TenantGallery::Sqlite(g) => Ok(g.enroll(name, None, templates)?),
            #[cfg(feature = "milvus")]
            TenantGallery::Milvus(g) => Ok(g.enroll(name, None, templates, false)?),
        }
    }

    /// The id under which `name`'s face `t` (enrolled) is listed.
    pub fn face_id(&self, name: &str, t: &NewTemplate) -> Result<Option<i64>, ApiError> {
        match self {
            TenantGallery::Sqlite(g) => {
                Ok(g.faces(name)?.into_iter().find(|x| x.photo_sha256 == t.photo_sha256 && x.face_box == t.face_box).map(|x| x.id))
            }
            // The id follows from the photo hash and box (the template's key): no query.
            #[cfg(feature = "milvus")]
            TenantGallery::Milvus(_) => Ok(Some(visage_gallery_milvus::face_id(&t.photo_sha256, &t.face_box))),
        }
    }

    /// A subject's faces; 404 `subject_not_found` for an unknown name.
    pub fn faces(&self, name: &str) -> Result<Vec<FaceRecord>, ApiError> {
        match self {
            TenantGallery::Sqlite(g) => Ok(g.faces(name)?),
            #[cfg(feature = "milvus")]
            TenantGallery::Milvus(g) => {
                let faces = g.faces(name)?;
                if faces.is_empty() && !g.has_subject(name)? {
                    return Err(ApiError::not_found("subject_not_found", format!("no one called {name:?} is enrolled")));
                }
                Ok(faces)
            }
        }
    }

    /// Forgets one face of `name`; `None` when `name` has no face of that id.
    pub fn forget_face(&self, name: &str, face_id: i64) -> Result<Option<ForgetOutcome>, ApiError> {
        each!(self, g => g.forget_face(name, face_id))
    }

    /// The `k` nearest subjects, each at its nearest template's distance.
    pub fn search(&self, probe: &[f32], k: usize) -> Result<Vec<Match>, ApiError> {
        each!(self, g => g.search(probe, k))
    }

    /// The distance from `probe` to `name`'s nearest template.
    pub fn distance_to(&self, name: &str, probe: &[f32]) -> Result<f32, ApiError> {
        each!(self, g => g.distance_to(name, probe))
    }
}

#[cfg(feature = "milvus")]
impl From<visage_gallery_milvus::MilvusError> for ApiError {
    fn from(e: visage_gallery_milvus::MilvusError) -> Self {
        use visage_gallery_milvus::MilvusError as M;
        let detail = e.to_string();
        match e {
            M::UnknownSubject { .. } => Self::not_found("subject_not_found", detail),
            M::Missing(_) => Self::not_found("gallery_not_found", "no such gallery"),
            M::Contract { .. } => Self::new(StatusCode::CONFLICT, "model_mismatch", detail),
            M::Duplicate { .. } => Self::new(StatusCode::CONFLICT, "duplicate_face", detail),
            // A name, metadata or metric that the gallery refuses is the client's mistake.
            M::Invalid(_) | M::Url(_) => Self::bad_request(detail),
            // Milvus not answering within the retry policy: the service is unavailable, not
            // broken; the address is logged, not sent.
            M::Unreachable { .. } => {
                tracing::error!("{detail}");
                ApiError {
                    retry_after: Some(5),
                    ..Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "gallery_unavailable",
                        "the gallery's store is not answering; retry shortly",
                    )
                }
            }
            other => Self::internal(other),
        }
    }
}
