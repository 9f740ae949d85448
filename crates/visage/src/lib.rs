//! visage: who is in this photo, and is it really them?
//!
//! [`Visage`] runs the whole path of a photo through three stages, each a trait of
//! `visage-core`: a [`FaceDetector`], a [`Landmarker`] and a [`FaceEmbedder`], with the aligned
//! chip cut between them to the embedder's [`ModelDescriptor`]. [`Visage::load`] assembles
//! dlib's pipeline (HOG detector, 5-point landmarks, the 128-d ResNet-29) with the same numbers
//! as dlib's `face_recognition`; [`Visage::builder`] takes any other stages. The pieces live in
//! their own crates: `visage-core` (images, geometry, metrics, descriptors, stage traits),
//! `visage-models` (model files), `visage-engine` (the inference engine), `visage-detect`,
//! `visage-align` and `visage-embed`.
//!
//! ```no_run
//! use visage::{FaceChoice, ModelStore, Visage, Metric};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Models from --models / VISAGE_MODELS / ~/.local/share/visage/models (`visage models fetch`).
//! let v = Visage::load(&ModelStore::resolve(None)?)?;
//! let a = v.analyze(&v.load_image("alice.jpg".as_ref())?)?;
//! let b = v.analyze(&v.load_image("door-camera.jpg".as_ref())?)?;
//! let (Some(a), Some(b)) = (a.first(), b.first()) else { return Err("no face".into()) };
//! let d = Metric::L2.distance(&a.embedding, &b.embedding);
//! let threshold = v.descriptor().threshold(Metric::L2);
//! println!("distance {d:.3}: {}", if d < threshold { "same person" } else { "different people" });
//! # let _ = FaceChoice::Largest;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod choice;
mod pipeline;

pub use choice::FaceChoice;
pub use pipeline::{largest, Config, DetectorChoice, Face, FaceEmbedding, Visage, VisageBuilder, VisageError};
pub use visage_core::{
    image_io, AlignedChip, ChipGeometry, DPoint, DRect, Detection, DetectorSource, FaceDetector, FaceEmbedder, ImageError, ImageLimits,
    InputNormalization, LandmarkScheme, Landmarker, Metric, ModelDescriptor, Point, Rect, RgbImage, StageError, Thresholds,
};
pub use visage_detect::{FallbackDetector, HogDetector, MmodDetector, ShapePredictor};
pub use visage_embed::{
    dlib_resnet_descriptor, Embedder, EngineOptions, DLIB_RESNET_CHIP, DLIB_RESNET_DIM, DLIB_RESNET_ID, DLIB_RESNET_THRESHOLDS,
};
pub use visage_models::{ModelFile, ModelStore};
