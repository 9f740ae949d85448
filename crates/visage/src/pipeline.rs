//! The photo pipeline: detect, trim, landmarks, chip, embed.

use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;
use thiserror::Error;
use visage_align::face_chip;
use visage_core::image_io::load_rgb;
use visage_core::{ImageError, ImageLimits, Point, Rect, RgbImage};
use visage_detect::{Detection, FaceDetector, HogDetector, ShapeError, ShapePredictor};
use visage_embed::{EmbedError, Embedder};
use visage_models::ModelStore;

/// Anything that can go wrong between a file name and its embeddings.
#[derive(Debug, Error)]
pub enum VisageError {
    /// The photo could not be read or decoded.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The embedder could not be loaded.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// The landmark model could not be loaded.
    #[error(transparent)]
    Shape(#[from] ShapeError),
}

/// A face found in a photo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Face {
    /// The detector's rectangle (inclusive corners, may extend past the border).
    pub detection: Rect,
    /// The same rectangle trimmed to the photo as face_recognition trims it; landmarks are
    /// computed in this rectangle.
    pub rect: Rect,
    /// Detection confidence (> 0).
    pub score: f64,
    /// Which HOG sub-detector fired (0 front, 1 left, 2 right, 3/4 rotated).
    pub detector: usize,
    /// The 5 landmarks: right eye outer/inner, left eye outer/inner (image sides), nose base.
    pub landmarks: Vec<Point>,
}

impl Face {
    /// Area of the trimmed rectangle (used to pick the largest face).
    pub fn area(&self) -> i64 {
        self.rect.area()
    }
}

/// A face and its descriptor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaceEmbedding {
    /// Where the face is.
    pub face: Face,
    /// The 128-d descriptor.
    pub embedding: Vec<f32>,
}

/// The loaded models and settings. Cheap to share between threads (`&Visage` is `Sync`).
pub struct Visage {
    detector: HogDetector,
    shapes: ShapePredictor,
    embedder: Embedder,
    limits: ImageLimits,
}

impl Visage {
    /// Loads (and verifies) the models from `store`, with face_recognition's defaults:
    /// upsample 1, image limits [`ImageLimits::DEFAULT`].
    pub fn load(store: &ModelStore) -> Result<Self, VisageError> {
        Ok(Self {
            detector: HogDetector::new(),
            shapes: ShapePredictor::from_store(store)?,
            embedder: Embedder::from_store(store)?,
            limits: ImageLimits::DEFAULT,
        })
    }

    /// Uses another landmark model (e.g. dlib's 68-point one, for evaluation); chips are then
    /// aligned on its points as dlib does for 68-point shapes.
    pub fn with_shape_predictor(mut self, shapes: ShapePredictor) -> Self {
        self.shapes = shapes;
        self
    }

    /// How many times photos are doubled before detection (0 is fastest and finds faces of
    /// 80 px and more; 1 finds 40 px faces; 2 finds 20 px faces).
    pub fn with_upsample(mut self, upsample: u32) -> Self {
        self.detector = self.detector.with_upsample(upsample);
        self
    }

    /// Limits applied when loading photos.
    pub fn with_limits(mut self, limits: ImageLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The embedder (for chips that are already aligned).
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// The limits in force.
    pub fn limits(&self) -> &ImageLimits {
        &self.limits
    }

    /// Loads a photo with this pipeline's limits.
    pub fn load_image(&self, path: &Path) -> Result<RgbImage, ImageError> {
        load_rgb(path, &self.limits)
    }

    /// Decodes a photo already in memory with this pipeline's limits; `name` labels errors.
    pub fn decode_image(&self, bytes: &[u8], name: &str) -> Result<RgbImage, ImageError> {
        visage_core::image_io::decode_rgb(bytes, name, &self.limits)
    }

    /// Every face in a photo, most confident first, with its landmarks.
    pub fn find_faces(&self, img: &RgbImage) -> Vec<Face> {
        self.with_landmarks(img, &self.detector.detect(img))
    }

    /// Faces found with the detector's threshold lowered by `adjust` (negative finds weaker
    /// candidates); used as a second chance when the normal threshold finds nothing.
    pub fn find_faces_adjusted(&self, img: &RgbImage, adjust: f64) -> Vec<Face> {
        self.with_landmarks(img, &self.detector.run(img, self.detector.upsample(), adjust))
    }

    /// Trims each detection to the photo (as face_recognition does) and puts landmarks on it.
    fn with_landmarks(&self, img: &RgbImage, dets: &[Detection]) -> Vec<Face> {
        dets.par_iter()
            .map(|d| {
                let rect = d.rect.trimmed_to(img.width(), img.height());
                Face { detection: d.rect, rect, score: d.score, detector: d.weight_index, landmarks: self.shapes.predict(img, rect) }
            })
            .collect()
    }

    /// Landmarks for a face rectangle given by the caller (e.g. a fixed box when the detector
    /// misses a face).
    pub fn face_at(&self, img: &RgbImage, rect: Rect) -> Face {
        Face { detection: rect, rect, score: 0.0, detector: usize::MAX, landmarks: self.shapes.predict(img, rect) }
    }

    /// The aligned 150x150 chip of a face.
    pub fn chip(&self, img: &RgbImage, face: &Face) -> RgbImage {
        face_chip(img, &face.landmarks)
    }

    /// Descriptors of aligned chips, batched.
    pub fn embed_chips(&self, chips: &[RgbImage]) -> Result<Vec<Vec<f32>>, VisageError> {
        let raw: Vec<&[u8]> = chips.iter().map(|c| c.as_raw().as_slice()).collect();
        Ok(self.embedder.embed_batch(&raw)?)
    }

    /// Every face in a photo with its descriptor.
    pub fn analyze(&self, img: &RgbImage) -> Result<Vec<FaceEmbedding>, VisageError> {
        let faces = self.find_faces(img);
        self.embed_faces(img, faces)
    }

    /// Descriptors for faces already found in `img`.
    pub fn embed_faces(&self, img: &RgbImage, faces: Vec<Face>) -> Result<Vec<FaceEmbedding>, VisageError> {
        let chips: Vec<RgbImage> = faces.par_iter().map(|f| self.chip(img, f)).collect();
        let embeddings = self.embed_chips(&chips)?;
        Ok(faces.into_iter().zip(embeddings).map(|(face, embedding)| FaceEmbedding { face, embedding }).collect())
    }
}

/// The index of the largest face (by trimmed area; ties go to the more confident one).
pub fn largest(faces: &[Face]) -> Option<usize> {
    faces.iter().enumerate().max_by(|a, b| a.1.area().cmp(&b.1.area()).then(b.0.cmp(&a.0))).map(|(i, _)| i)
}
