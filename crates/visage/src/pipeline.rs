//! The photo pipeline: detect, trim, landmarks, chip, embed, over the stage traits.

use crate::choice::FaceChoice;
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;
use thiserror::Error;
use visage_align::{face_chip, AlignError};
use visage_core::image_io::load_rgb;
use visage_core::{
    AlignedChip, Detection, DetectorSource, FaceDetector, FaceEmbedder, ImageError, ImageLimits, LandmarkScheme, Landmarker,
    ModelDescriptor, Point, Rect, RgbImage, StageError,
};
use visage_detect::{FallbackDetector, HogDetector, MmodDetector, MmodError, ShapeError, ShapePredictor};
use visage_embed::{EmbedError, Embedder, EngineOptions};
use visage_models::{ModelFile, ModelStore};

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
    /// A trained model file (`--model`) could not be used.
    #[error(transparent)]
    Trained(#[from] visage_embed::TrainedError),
    /// The CNN detector could not be loaded.
    #[error("the CNN face detector: {0} (it is installed by `visage models fetch --all`)")]
    Cnn(#[from] MmodError),
    /// A stage failed.
    #[error(transparent)]
    Stage(#[from] StageError),
    /// A chip could not be cut from the landmarks.
    #[error(transparent)]
    Align(#[from] AlignError),
    /// The detector would scan more pixels than the limit allows.
    #[error(
        "a {width}x{height} photo means {pixels} pixels for the {detector} detector at this upsampling, over the limit of {limit} \
         (raise the pixel limit, e.g. --max-pixels, or upsample less)"
    )]
    TooMuchWork {
        /// Photo width.
        width: u32,
        /// Photo height.
        height: u32,
        /// Pixels the detector would process.
        pixels: u64,
        /// The limit.
        limit: u64,
        /// The detector's name.
        detector: &'static str,
    },
    /// The pipeline was assembled from stages that do not fit together.
    #[error("{0}")]
    Assembly(String),
}

/// A face found in a photo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Face {
    /// The detector's rectangle (inclusive corners, may extend past the border).
    pub detection: Rect,
    /// The same rectangle trimmed to the photo as face_recognition trims it; landmarks are
    /// computed in this rectangle.
    pub rect: Rect,
    /// Detection confidence (> 0 for detections; 0 for a box given by the caller).
    pub score: f64,
    /// Which detector found it (`"given"` for a box given by the caller).
    pub detector: DetectorSource,
    /// The landmarks (5-point: right eye outer/inner, left eye outer/inner (image sides),
    /// nose base).
    pub landmarks: Vec<Point>,
}

impl Face {
    /// Area of the trimmed rectangle (used to pick the largest face).
    pub fn area(&self) -> i64 {
        self.rect.area()
    }
}

/// A face and its embedding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaceEmbedding {
    /// Where the face is.
    pub face: Face,
    /// The embedding (the model descriptor's dimension).
    pub embedding: Vec<f32>,
}

/// A photo's faces and their chips, in the same order.
type FacesAndChips = (Vec<Face>, Vec<AlignedChip>);

/// Which face detector the dlib pipeline uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DetectorChoice {
    /// dlib's HOG frontal detector (fast; frontal faces).
    #[default]
    Hog,
    /// dlib's CNN (MMOD) detector, face_recognition's `model="cnn"` (profiles, small and
    /// rotated faces; slower).
    Cnn,
    /// HOG, and the CNN detector on photos where HOG finds no face.
    Auto,
}

impl DetectorChoice {
    /// `hog`, `cnn` or `auto`.
    pub fn name(self) -> &'static str {
        match self {
            DetectorChoice::Hog => "hog",
            DetectorChoice::Cnn => "cnn",
            DetectorChoice::Auto => "auto",
        }
    }
}

impl std::str::FromStr for DetectorChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "hog" => Ok(DetectorChoice::Hog),
            "cnn" | "mmod" => Ok(DetectorChoice::Cnn),
            "auto" => Ok(DetectorChoice::Auto),
            other => Err(format!("unknown detector {other:?} (expected hog, cnn or auto)")),
        }
    }
}

/// How the default (dlib) pipeline is configured. `Config::default()` is face_recognition's
/// behaviour on the best kernels of this CPU; [`Config::from_env`] applies the documented
/// environment overrides, for programs to call once at start.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Times photos are doubled before detection (0 finds faces of 80 px and more, 1 of 40 px,
    /// 2 of 20 px), at most [`HogDetector::MAX_UPSAMPLE`].
    pub upsample: u32,
    /// Landmarks to align on: dlib's 5-point model (default) or its 68-point model.
    pub landmarks: LandmarkScheme,
    /// The face detector.
    pub detector: DetectorChoice,
    /// Limits for loading photos and for the detector's work.
    pub limits: ImageLimits,
    /// How the networks are compiled.
    pub engine: EngineOptions,
    /// Whether the HOG detector may use its AVX2 paths (identical bits either way).
    pub hog_simd: bool,
    /// A model trained by visage (`visage train embedder`, a safetensors file) to embed with
    /// instead of dlib's ResNet.
    pub model: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            upsample: 1,
            landmarks: LandmarkScheme::Dlib5,
            detector: DetectorChoice::Hog,
            limits: ImageLimits::DEFAULT,
            engine: EngineOptions::default(),
            hog_simd: true,
            model: None,
        }
    }
}

impl Config {
    /// The defaults with `VISAGE_ISA`, `VISAGE_WINOGRAD=0` and `VISAGE_HOG_SCALAR=1` applied.
    pub fn from_env() -> Self {
        Config { engine: EngineOptions::from_env(), hog_simd: std::env::var_os("VISAGE_HOG_SCALAR").is_none(), ..Self::default() }
    }
}

/// Assembles a [`Visage`] from any detector, landmarker and embedder.
pub struct VisageBuilder {
    detector: Option<Box<dyn FaceDetector>>,
    landmarker: Option<Box<dyn Landmarker>>,
    embedder: Option<Box<dyn FaceEmbedder>>,
    limits: ImageLimits,
}

impl VisageBuilder {
    /// The face detector.
    pub fn detector(mut self, d: impl FaceDetector + 'static) -> Self {
        self.detector = Some(Box::new(d));
        self
    }

    /// The landmarker (unused for detections that carry their own landmarks).
    pub fn landmarker(mut self, l: impl Landmarker + 'static) -> Self {
        self.landmarker = Some(Box::new(l));
        self
    }

    /// The embedder; its descriptor decides the chip geometry.
    pub fn embedder(mut self, e: impl FaceEmbedder + 'static) -> Self {
        self.embedder = Some(Box::new(e));
        self
    }

    /// Limits for loading photos and for the detector's work.
    pub fn limits(mut self, limits: ImageLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The pipeline; every stage must have been given.
    pub fn build(self) -> Result<Visage, VisageError> {
        let missing = |what: &str| VisageError::Assembly(format!("a pipeline needs a {what}"));
        Ok(Visage {
            detector: self.detector.ok_or_else(|| missing("face detector"))?,
            landmarker: self.landmarker.ok_or_else(|| missing("landmarker"))?,
            embedder: self.embedder.ok_or_else(|| missing("face embedder"))?,
            limits: self.limits,
        })
    }
}

/// The stages and settings. Cheap to share between threads (`&Visage` is `Sync`).
pub struct Visage {
    detector: Box<dyn FaceDetector>,
    landmarker: Box<dyn Landmarker>,
    embedder: Box<dyn FaceEmbedder>,
    limits: ImageLimits,
}

impl Visage {
    /// A pipeline to assemble from stages of the caller's choice.
    pub fn builder() -> VisageBuilder {
        VisageBuilder { detector: None, landmarker: None, embedder: None, limits: ImageLimits::DEFAULT }
    }

    /// dlib's pipeline (HOG detector, 5-point landmarks, ResNet-29), models loaded and verified
    /// from `store`, with face_recognition's defaults.
    pub fn load(store: &ModelStore) -> Result<Self, VisageError> {
        Self::from_config(store, &Config::default())
    }

    /// dlib's pipeline configured by `config`.
    pub fn from_config(store: &ModelStore, config: &Config) -> Result<Self, VisageError> {
        let landmarks = match config.landmarks {
            LandmarkScheme::Dlib5 => ShapePredictor::from_store(store)?,
            LandmarkScheme::Dlib68 => ShapePredictor::parse(&store.read_verified(ModelFile::ShapePredictor68).map_err(ShapeError::from)?)
                .map_err(ShapeError::from)?,
        };
        let hog = || HogDetector::new().with_upsample(config.upsample).with_simd(config.hog_simd);
        let cnn = || MmodDetector::from_store(store, config.engine).map(|d| d.with_upsample(config.upsample));
        let b = Self::builder();
        let b = match config.detector {
            DetectorChoice::Hog => b.detector(hog()),
            DetectorChoice::Cnn => b.detector(cnn()?),
            DetectorChoice::Auto => b.detector(FallbackDetector::new(hog(), cnn()?)),
        };
        let embedder = match &config.model {
            Some(path) => Embedder::from_trained(&visage_embed::TrainedModel::load(path)?, config.engine)?,
            None => Embedder::from_store_with(store, config.engine)?,
        };
        b.landmarker(landmarks).embedder(embedder).limits(config.limits).build()
    }

    /// What the embedding model is: id, dimension, chip geometry, default thresholds.
    pub fn descriptor(&self) -> &ModelDescriptor {
        self.embedder.descriptor()
    }

    /// The embedder (for chips that are already aligned).
    pub fn embedder(&self) -> &dyn FaceEmbedder {
        self.embedder.as_ref()
    }

    /// The detector's name ("hog").
    pub fn detector_name(&self) -> &'static str {
        self.detector.name()
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

    /// Refuses photos whose detection would process more pixels than the limit.
    fn check_work(&self, img: &RgbImage) -> Result<(), VisageError> {
        let pixels = self.detector.pixels_processed(img.width(), img.height());
        if pixels > self.limits.max_pixels {
            return Err(VisageError::TooMuchWork {
                width: img.width(),
                height: img.height(),
                pixels,
                limit: self.limits.max_pixels,
                detector: self.detector.name(),
            });
        }
        Ok(())
    }

    /// Every face in a photo, most confident first, with its landmarks.
    pub fn find_faces(&self, img: &RgbImage) -> Result<Vec<Face>, VisageError> {
        self.find_faces_adjusted(img, 0.0)
    }

    /// Faces found with the detector's threshold shifted by `adjust` (negative finds weaker
    /// candidates); used as a second chance when the normal threshold finds nothing.
    pub fn find_faces_adjusted(&self, img: &RgbImage, adjust: f64) -> Result<Vec<Face>, VisageError> {
        self.check_work(img)?;
        let dets = self.detector.detect_adjusted(img, adjust)?;
        self.with_landmarks(img, dets)
    }

    /// Trims each detection to the photo (as face_recognition does) and puts landmarks on it.
    fn with_landmarks(&self, img: &RgbImage, dets: Vec<Detection>) -> Result<Vec<Face>, VisageError> {
        dets.into_par_iter()
            .map(|d| {
                let rect = d.rect.trimmed_to(img.width(), img.height());
                let landmarks = match d.landmarks {
                    Some(l) => l,
                    None => self.landmarker.landmarks(img, rect)?,
                };
                Ok(Face { detection: d.rect, rect, score: d.score, detector: d.source, landmarks })
            })
            .collect()
    }

    /// Landmarks for a face rectangle given by the caller (e.g. a fixed box when the detector
    /// misses a face).
    pub fn face_at(&self, img: &RgbImage, rect: Rect) -> Result<Face, VisageError> {
        let landmarks = self.landmarker.landmarks(img, rect)?;
        Ok(Face { detection: rect, rect, score: 0.0, detector: DetectorSource { name: "given", sub: None }, landmarks })
    }

    /// The aligned chip of a face, of the embedder's geometry.
    pub fn chip(&self, img: &RgbImage, face: &Face) -> Result<AlignedChip, VisageError> {
        Ok(face_chip(img, &face.landmarks, self.descriptor().chip)?)
    }

    /// Wraps an image that already is an aligned chip; an error unless it has the embedder's
    /// chip size.
    pub fn as_chip(&self, img: RgbImage) -> Result<AlignedChip, VisageError> {
        let g = self.descriptor().chip;
        let (w, h) = (img.width(), img.height());
        AlignedChip::new(img, g).ok_or_else(|| VisageError::Assembly(format!("a chip must be {}x{}, this is {w}x{h}", g.size, g.size)))
    }

    /// Embeddings of aligned chips, batched.
    pub fn embed_chips(&self, chips: &[AlignedChip]) -> Result<Vec<Vec<f32>>, VisageError> {
        Ok(self.embedder.embed(chips)?)
    }

    /// Every face in a photo with its embedding.
    pub fn analyze(&self, img: &RgbImage) -> Result<Vec<FaceEmbedding>, VisageError> {
        let faces = self.find_faces(img)?;
        self.embed_faces(img, faces)
    }

    /// Every face in each of several photos with its embedding: photos are detected in
    /// parallel and all their faces embedded in shared batches (the embedder's batch speed).
    /// One result per photo, in order; a photo's failure does not affect the others.
    pub fn analyze_many(&self, imgs: &[&RgbImage]) -> Vec<Result<Vec<FaceEmbedding>, VisageError>> {
        let found: Vec<Result<FacesAndChips, VisageError>> = imgs
            .par_iter()
            .map(|img| {
                let faces = self.find_faces(img)?;
                let chips = faces.par_iter().map(|f| self.chip(img, f)).collect::<Result<Vec<_>, _>>()?;
                Ok((faces, chips))
            })
            .collect();
        let all: Vec<AlignedChip> = found.iter().flat_map(|r| r.as_ref().map(|(_, c)| c.clone()).unwrap_or_default()).collect();
        let mut embeddings = match self.embed_chips(&all) {
            Ok(e) => e.into_iter(),
            Err(e) => {
                let msg = e.to_string();
                return found.into_iter().map(|_| Err(VisageError::Assembly(msg.clone()))).collect();
            }
        };
        found
            .into_iter()
            .map(|r| {
                let (faces, _) = r?;
                Ok(faces.into_iter().map(|face| FaceEmbedding { face, embedding: embeddings.next().expect("one per chip") }).collect())
            })
            .collect()
    }

    /// Embeddings for faces already found in `img`.
    pub fn embed_faces(&self, img: &RgbImage, faces: Vec<Face>) -> Result<Vec<FaceEmbedding>, VisageError> {
        let chips = faces.par_iter().map(|f| self.chip(img, f)).collect::<Result<Vec<_>, _>>()?;
        let embeddings = self.embed_chips(&chips)?;
        Ok(faces.into_iter().zip(embeddings).map(|(face, embedding)| FaceEmbedding { face, embedding }).collect())
    }

    /// The face `choice` picks among those found in `img` (see [`FaceChoice`]).
    pub fn choose<'f>(&self, img: &RgbImage, faces: &'f [Face], choice: FaceChoice) -> Option<&'f Face> {
        choice.pick(faces, img.width(), img.height()).map(|i| &faces[i])
    }
}

/// The index of the largest face (by trimmed area; ties go to the more confident one).
pub fn largest(faces: &[Face]) -> Option<usize> {
    FaceChoice::Largest.pick(faces, 0, 0)
}
