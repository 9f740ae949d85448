//! visage: who is in this photo, and is it really them?
//!
//! [`Visage`] runs the whole path of a photo: the HOG face detector, the 5-point landmarks,
//! the aligned 150x150 chip and the 128-d ResNet embedding, with the same numbers as dlib's
//! `face_recognition`. The pieces live in their own crates:
//! `visage-core` (images, geometry, metrics), `visage-models` (model files), `visage-detect`,
//! `visage-align` and `visage-embed`.
//!
//! ```no_run
//! use visage::{ModelStore, Visage, Metric, DEFAULT_THRESHOLD};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Models from --models / VISAGE_MODELS / ~/.local/share/visage/models (`visage models fetch`).
//! let v = Visage::load(&ModelStore::resolve(None)?)?;
//! let a = v.analyze(&v.load_image("alice.jpg".as_ref())?)?;
//! let b = v.analyze(&v.load_image("door-camera.jpg".as_ref())?)?;
//! let (Some(a), Some(b)) = (a.first(), b.first()) else { return Err("no face".into()) };
//! let d = Metric::L2.distance(&a.embedding, &b.embedding);
//! println!("distance {d:.3}: {}", if d < DEFAULT_THRESHOLD { "same person" } else { "different people" });
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod pipeline;

pub use pipeline::{largest, Face, FaceEmbedding, Visage, VisageError};
pub use visage_core::{image_io, DPoint, DRect, ImageError, ImageLimits, Metric, Point, Rect, RgbImage};
pub use visage_detect::ShapePredictor;
pub use visage_models::{ModelFile, ModelStore};

/// dlib's same-person threshold for L2 distances between its embeddings.
pub const DEFAULT_THRESHOLD: f32 = 0.6;
