//! The gallery: who visage knows, and how it decides who a face is.
//!
//! * [`Gallery`]: enrolled subjects and their face templates in a SQLite file (WAL mode),
//!   which is the single source of truth. Every gallery is bound to one embedding contract
//!   (model, dimension, metric), and starts with its model's threshold for the metric (from
//!   the model's descriptor: this crate holds no model's numbers); embeddings that do not fit
//!   the contract are refused. The schema is versioned and upgraded in place by ordered
//!   migrations ([`schema`]).
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

pub use error::{quoted_name, GalleryError};

/// A name as the gallery stores and compares it (Unicode NFC): `"Jose\u{301}"` and
/// `"Jos\u{e9}"` are one person. Use it to compare a name a user typed with
/// [`SubjectInfo::name`].
pub fn normalize_name(name: &str) -> String {
    store::nfc(name)
}
pub use exact::ExactIndex;
pub use hnsw::{HnswIndex, HnswParams};
pub use index::{Candidate, Capabilities, Hit, SearchIndex, VectorIndex, APPROX_THRESHOLD};
pub use store::{
    Contract, EnrollOptions, EnrollOutcome, FaceRecord, ForgetOutcome, Gallery, IndexFactory, IndexOrigin, Match, NewTemplate, OpenOptions,
    SubjectInfo, TemplateRecord,
};
