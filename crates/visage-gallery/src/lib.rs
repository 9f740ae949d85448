//! The gallery: who visage knows, and how it decides who a face is.
//!
//! * [`Gallery`]: enrolled subjects and their face templates in a SQLite file (WAL mode),
//!   which is the single source of truth. Every gallery is bound to one embedding contract
//!   (model, dimension, metric); embeddings that do not fit it are refused.
//! * [`SearchIndex`]: the in-memory index searches run on, rebuilt from SQLite: an exact scan
//!   of a contiguous f32 matrix on all cores, and an HNSW graph (usearch) above
//!   [`APPROX_THRESHOLD`] templates. The graph is cached beside the gallery file
//!   (`<gallery>.hnsw`), tagged with the gallery's generation counter, which every change
//!   increments: a stale cache is never used, and SQLite stays the source of truth.
//! * Decision rule (identify and verify): a subject's distance to a probe is the distance to
//!   its *nearest template*; the best subject is the one with the smallest such distance, and
//!   it is a match only when that distance is below the threshold. Otherwise the face is
//!   `unknown`.
//! * [`calibrate`]: genuine and impostor distance distributions and the threshold that meets
//!   a target false-accept rate.

#![warn(missing_docs)]

pub mod calibrate;
mod error;
pub mod exact;
mod index;
mod schema;
mod store;

pub use error::GalleryError;
pub use index::{Candidate, HnswParams, SearchIndex, APPROX_THRESHOLD};
pub use store::{Contract, EnrollOutcome, Gallery, Match, NewTemplate, SubjectInfo, TemplateRecord, DLIB_MODEL_ID};

/// The default same-person threshold for a metric on dlib's embeddings. L2 0.6 is dlib's own
/// (LFW's 10-fold protocol picks 0.615); cosine 0.093 and chi-squared 2.86 are the LFW
/// protocol's mean thresholds for those metrics (`visage eval lfw --metric ...`).
pub fn default_threshold(metric: visage_core::Metric) -> f64 {
    match metric {
        visage_core::Metric::L2 => 0.6,
        visage_core::Metric::Cosine => 0.093,
        visage_core::Metric::Chi2 => 2.86,
    }
}
