//! Finding faces and their landmarks.
//!
//! * [`HogDetector`]: dlib's default frontal face detector, reproduced bit for bit.
//! * [`ShapePredictor`]: dlib's 5-point landmark model (an ensemble of regression trees).
//!
//! Detectors implement [`FaceDetector`], so another detector (for profile, small or rotated
//! faces) can be added without touching alignment or embedding.

#![warn(missing_docs)]

pub mod hog;
pub mod shape_predictor;

pub use hog::HogDetector;
pub use shape_predictor::{ShapeError, ShapePredictor};

use visage_core::{Rect, RgbImage};

/// One detected face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// The face rectangle (inclusive corners; may extend past the image border).
    pub rect: Rect,
    /// Detection confidence (for HOG: the filter response minus its threshold; > 0 fires).
    pub score: f64,
    /// Which sub-detector fired (HOG: 0 front, 1 left, 2 right, 3/4 front rotated).
    pub weight_index: usize,
}

/// Anything that finds faces in an RGB photo.
pub trait FaceDetector: Send + Sync {
    /// All faces, most confident first.
    fn detect(&self, img: &RgbImage) -> Vec<Detection>;
    /// A short name for reports ("hog").
    fn name(&self) -> &'static str;
}
