//! What an embedding model is: one description that every command and library default reads.

use crate::Metric;
use serde::Serialize;

/// The landmark points a chip is aligned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LandmarkScheme {
    /// dlib's 5-point model: outer and inner eye corners, nose base.
    Dlib5,
    /// dlib's (iBUG 300-W) 68-point model.
    Dlib68,
}

impl LandmarkScheme {
    /// How many points the scheme has.
    pub fn points(self) -> usize {
        match self {
            LandmarkScheme::Dlib5 => 5,
            LandmarkScheme::Dlib68 => 68,
        }
    }

    /// The scheme with `n` points, if there is one.
    pub fn from_points(n: usize) -> Option<Self> {
        match n {
            5 => Some(LandmarkScheme::Dlib5),
            68 => Some(LandmarkScheme::Dlib68),
            _ => None,
        }
    }
}

/// The aligned chip a model takes: `size` x `size` RGB, the face template placed with `padding`
/// (dlib's `get_face_chip_details(shape, size, padding)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct ChipGeometry {
    /// Side in pixels.
    pub size: u32,
    /// Border around the landmark template, as a fraction of the face.
    pub padding: f64,
}

impl ChipGeometry {
    /// Bytes of one RGB chip.
    pub fn bytes(&self) -> usize {
        self.size as usize * self.size as usize * 3
    }
}

/// How chip bytes become network inputs: `(pixel - mean[channel]) * scale`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct InputNormalization {
    /// Per-channel mean (R, G, B), in pixel units.
    pub mean: [f32; 3],
    /// Multiplier applied after the mean is subtracted.
    pub scale: f32,
}

/// A model's same-person threshold for each metric (a distance below it means "same person").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Thresholds {
    /// Euclidean distance.
    pub l2: f32,
    /// `1 - cos`.
    pub cosine: f32,
    /// Symmetric chi-squared.
    pub chi2: f32,
}

impl Thresholds {
    /// The threshold for `metric`.
    pub fn get(&self, metric: Metric) -> f32 {
        match metric {
            Metric::L2 => self.l2,
            Metric::Cosine => self.cosine,
            Metric::Chi2 => self.chi2,
        }
    }
}

/// Everything a caller needs to know about an embedding model.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ModelDescriptor {
    /// Stable identifier, bound into every gallery's contract.
    pub id: String,
    /// Embedding dimension.
    pub dim: usize,
    /// The chip it expects.
    pub chip: ChipGeometry,
    /// The landmarks its chips are aligned on by default.
    pub landmarks: LandmarkScheme,
    /// Input normalisation.
    pub input: InputNormalization,
    /// Default decision thresholds.
    pub thresholds: Thresholds,
}

impl ModelDescriptor {
    /// The default same-person threshold for `metric`.
    pub fn threshold(&self, metric: Metric) -> f32 {
        self.thresholds.get(metric)
    }
}
