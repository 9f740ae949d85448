//! A detector that asks a second one only when the first finds nothing.

use crate::{Detection, FaceDetector, StageError};
use visage_core::RgbImage;

/// Runs `first`; on a photo where it finds no face, runs `second` (`--detector auto`: the fast
/// HOG detector, and dlib's CNN detector for the photos HOG misses).
pub struct FallbackDetector<A, B> {
    first: A,
    second: B,
}

impl<A: FaceDetector, B: FaceDetector> FallbackDetector<A, B> {
    /// `first`, then `second` where `first` finds nothing.
    pub fn new(first: A, second: B) -> Self {
        FallbackDetector { first, second }
    }
}

impl<A: FaceDetector, B: FaceDetector> FaceDetector for FallbackDetector<A, B> {
    fn detect_adjusted(&self, img: &RgbImage, adjust: f64) -> Result<Vec<Detection>, StageError> {
        let found = self.first.detect_adjusted(img, adjust)?;
        if !found.is_empty() {
            return Ok(found);
        }
        self.second.detect_adjusted(img, adjust)
    }

    fn pixels_processed(&self, width: u32, height: u32) -> u64 {
        self.first.pixels_processed(width, height).max(self.second.pixels_processed(width, height))
    }

    fn name(&self) -> &'static str {
        "auto"
    }
}
