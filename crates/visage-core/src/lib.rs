//! visage's shared vocabulary.
//!
//! * [`image_io`]: loading photos as RGB with clear errors: JPEG decoded exactly as
//!   libjpeg-turbo does (so results match dlib on the same files), PNG and WebP, EXIF
//!   orientation, and a pixel limit checked before decoding.
//! * [`geometry`]: dlib-style rectangles and points.
//! * [`similarity`]: least-squares similarity transforms between point sets.
//! * [`metric`]: distances between embeddings.
//! * [`descriptor`]: what an embedding model is (id, dimension, chip, thresholds).
//! * [`pair_head`]: a trained Siamese head, the probability that two embeddings are one person.
//! * [`rng`]: the one deterministic random generator (jitter, synthetic data, tests).
//! * [`stage`]: the pipeline's stages as traits (detector, landmarker, embedder).
//! * [`vector`]: loops compiled for the widest vector units the CPU has, chosen at run time.

#![warn(missing_docs)]

pub mod descriptor;
pub mod geometry;
pub mod image_io;
pub mod metric;
pub mod pair_head;
pub mod pyramid;
pub mod rng;
pub mod similarity;
pub mod stage;
pub mod vector;

pub use descriptor::{ChipGeometry, InputNormalization, LandmarkScheme, ModelDescriptor, Thresholds};
pub use geometry::{DPoint, DRect, Point, Rect};
pub use image::RgbImage;
pub use image_io::{ImageError, ImageLimits};
pub use metric::Metric;
pub use pair_head::{HeadError, HeadKind, PairHead};
pub use pyramid::PyramidDown;
pub use rng::SeededRng;
pub use stage::{AlignedChip, Detection, DetectorSource, FaceDetector, FaceEmbedder, Landmarker, StageError};
