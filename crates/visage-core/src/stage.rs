//! The stages of the photo pipeline, as traits: a face detector, a landmarker and a face
//! embedder. `visage::Visage` is assembled from any implementations of them.

use crate::descriptor::{ChipGeometry, LandmarkScheme, ModelDescriptor};
use crate::{Point, Rect, RgbImage};
use std::fmt;

/// An error raised by a stage, with the stage's own error as its cause.
#[derive(Debug)]
pub struct StageError(Box<dyn std::error::Error + Send + Sync>);

impl StageError {
    /// Wraps a stage's error.
    pub fn new(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StageError(e.into())
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for StageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Which detector produced a detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct DetectorSource {
    /// The detector's short name ("hog", "mmod", "given" for a caller's box).
    pub name: &'static str,
    /// The sub-detector that fired, for detectors made of several (HOG: 0 front, 1 left,
    /// 2 right, 3/4 rotated).
    pub sub: Option<usize>,
}

/// One face found by a detector.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The face rectangle (inclusive corners; may extend past the image border).
    pub rect: Rect,
    /// Confidence; the detector's own scale (HOG and MMOD: above 0 fires).
    pub score: f64,
    /// Landmarks, for detectors that find them.
    pub landmarks: Option<Vec<Point>>,
    /// Who found it.
    pub source: DetectorSource,
}

/// Anything that finds faces in an RGB photo.
pub trait FaceDetector: Send + Sync {
    /// All faces with the detector's threshold shifted by `adjust` (negative finds weaker
    /// candidates), most confident first.
    fn detect_adjusted(&self, img: &RgbImage, adjust: f64) -> Result<Vec<Detection>, StageError>;

    /// All faces at the detector's own threshold, most confident first.
    fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>, StageError> {
        self.detect_adjusted(img, 0.0)
    }

    /// How many pixels the detector works on for a photo of this size (after any upsampling):
    /// what the pipeline's pixel limit is checked against.
    fn pixels_processed(&self, width: u32, height: u32) -> u64 {
        width as u64 * height as u64
    }

    /// A short name for reports ("hog").
    fn name(&self) -> &'static str;
}

/// Anything that puts landmarks on a face rectangle.
pub trait Landmarker: Send + Sync {
    /// The landmarks of the face in `rect` (in image coordinates).
    fn landmarks(&self, img: &RgbImage, rect: Rect) -> Result<Vec<Point>, StageError>;

    /// Which points it produces.
    fn scheme(&self) -> LandmarkScheme;
}

/// An aligned face chip, of the geometry it was cut for.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignedChip {
    image: RgbImage,
    geometry: ChipGeometry,
}

impl AlignedChip {
    /// A chip; `None` unless `image` is `geometry.size` pixels square.
    pub fn new(image: RgbImage, geometry: ChipGeometry) -> Option<Self> {
        (image.width() == geometry.size && image.height() == geometry.size).then_some(AlignedChip { image, geometry })
    }

    /// The pixels.
    pub fn image(&self) -> &RgbImage {
        &self.image
    }

    /// The geometry it was cut with.
    pub fn geometry(&self) -> ChipGeometry {
        self.geometry
    }

    /// Row-major RGB bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.image.as_raw()
    }

    /// The pixels, giving the chip up.
    pub fn into_image(self) -> RgbImage {
        self.image
    }
}

/// Anything that turns aligned chips into embeddings.
pub trait FaceEmbedder: Send + Sync {
    /// What model this is: id, dimension, chip geometry, thresholds.
    fn descriptor(&self) -> &ModelDescriptor;

    /// One embedding per chip, in order. Chips of another geometry than the descriptor's are
    /// an error.
    fn embed(&self, chips: &[AlignedChip]) -> Result<Vec<Vec<f32>>, StageError>;
}
