//! Finding faces and their landmarks.
//!
//! * [`HogDetector`]: dlib's default frontal face detector, reproduced bit for bit.
//! * [`MmodDetector`]: dlib's CNN face detector (`model="cnn"`) on visage's engine.
//! * [`ShapePredictor`]: dlib's 5-point landmark model (an ensemble of regression trees).
//!
//! They implement visage-core's stage traits ([`FaceDetector`], [`Landmarker`]), so another
//! detector (for profile, small or rotated faces) plugs in without touching alignment or
//! embedding.

#![warn(missing_docs)]

mod fallback;
pub mod hog;
pub mod mmod;
pub mod shape_predictor;

pub use fallback::FallbackDetector;
pub use hog::HogDetector;
pub use mmod::{MmodDetector, MmodError};
pub use shape_predictor::{ShapeError, ShapePredictor};

pub use visage_core::{Detection, DetectorSource, FaceDetector, Landmarker, StageError};
