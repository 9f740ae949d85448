//! The gallery: who visage knows, and how it decides who a face is.
//!
//! * [`Gallery`]: enrolled subjects and their face templates in a SQLite file (WAL mode),
//!   which is the single source of truth. Every gallery is bound to one embedding contract
//!   (model, dimension, metric); embeddings that do not fit it are refused. The schema is
//!   versioned and upgraded in place by ordered migrations ([`schema`]).
//! * [`VectorIndex`]: what searches run on, kept apart from the store: templates by stable id
//!   (the SQLite row id), added and removed in place. Implemented by the exact scan
//!   ([`ExactIndex`], copy-on-write blocks on all cores) and the HNSW graph ([`HnswIndex`],
//!   usearch) above [`APPROX_THRESHOLD`] templates. The graph is cached beside the gallery file
//!   (`<gallery>.hnsw`), tagged with the gallery's generation counter, which every change
//!   increments: a stale cache is never used.
//! * Decision rule (identify and verify), above the index ([`SearchIndex`]): a subject's
//!   distance to a probe is the distance to its *nearest template*; the best subject is the one
//!   with the smallest such distance, and it is a match only when that distance is below the
//!   threshold. Otherwise the face is `unknown` (a name no one may be enrolled under).
//! * [`calibrate`]: genuine and impostor distance distributions, the threshold that meets a
//!   target false-accept rate, and the one EER computation the project uses.

#![warn(missing_docs)]

pub mod calibrate;
mod error;
pub mod exact;
mod hnsw;
mod index;
pub mod schema;
mod store;

pub use error::GalleryError;
pub use exact::ExactIndex;
pub use hnsw::{HnswIndex, HnswParams};
pub use index::{Candidate, Capabilities, Hit, SearchIndex, VectorIndex, APPROX_THRESHOLD};
pub use store::{
    Contract, EnrollOptions, EnrollOutcome, ForgetOutcome, Gallery, IndexFactory, IndexOrigin, Match, NewTemplate, OpenOptions,
    SubjectInfo, TemplateRecord, DLIB_MODEL_ID,
};

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
