//! A trained liveness model: the feature recipe, the standardisation, the classifier, the
//! decision threshold, and where they came from. Stored as one JSON file.

use crate::features::FeatureSpec;
use crate::logistic::{sigmoid, Logistic};
use crate::quality::QualityBounds;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The format tag every model file carries.
pub const FORMAT: &str = "visage-liveness/1";

/// The model shipped with visage (trained by `visage liveness train` on NUAA; see
/// `provenance` inside it for the command and the data).
const SHIPPED: &str = include_str!("../model/nuaa-lbp.json");

/// What went wrong loading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be read.
    #[error("cannot read liveness model {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a liveness model.
    #[error("{path} is not a visage liveness model: {why}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
}

/// How a model was made: enough to make it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Provenance {
    /// The command that trained it.
    pub command: String,
    /// The data it was trained on (e.g. list files and their SHA-256).
    pub data: Vec<String>,
    /// Photos per class used (live, spoof), after failures to acquire.
    pub samples: (usize, usize),
    /// How the hyper-parameters and threshold were chosen, with the validation figures.
    pub selection: String,
}

/// A liveness model: `score = sigmoid(w . ((x - mean) * inv_std) + b)`, live when `score > threshold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LivenessModel {
    /// [`FORMAT`].
    pub format: String,
    /// How faces are cropped and described.
    pub features: FeatureSpec,
    /// When a face is not judged.
    pub quality: QualityBounds,
    /// Per-feature mean of the training data.
    pub mean: Vec<f32>,
    /// Per-feature 1 / standard deviation of the training data.
    pub inv_std: Vec<f32>,
    /// Classifier weights.
    pub weights: Vec<f32>,
    /// Classifier bias.
    pub bias: f32,
    /// Scores strictly above it are live: the threshold of the lowest ACER on the validation
    /// scores.
    pub threshold: f64,
    /// The threshold of APCER <= 5% on the validation scores (the operating point of BPCER20).
    pub threshold_apcer5: f64,
    /// Where it came from.
    pub provenance: Provenance,
}

impl LivenessModel {
    /// The model that ships with visage.
    pub fn shipped() -> Self {
        Self::from_json(SHIPPED, "the shipped liveness model").expect("the shipped liveness model is valid (tested)")
    }

    /// A model from its JSON text; `what` names it in errors.
    pub fn from_json(text: &str, what: &str) -> Result<Self, ModelError> {
        let m: LivenessModel = serde_json::from_str(text).map_err(|e| ModelError::Format { path: what.into(), why: e.to_string() })?;
        m.validate().map_err(|why| ModelError::Format { path: what.into(), why })?;
        Ok(m)
    }

    /// A model from a file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Read { path: path.display().to_string(), source })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// The model as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a model serialises")
    }

    fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("format {:?}, expected {FORMAT:?}", self.format));
        }
        let d = self.features.len();
        for (name, v) in [("mean", &self.mean), ("inv_std", &self.inv_std), ("weights", &self.weights)] {
            if v.len() != d {
                return Err(format!("{name} has {} values, the features have {d}", v.len()));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(format!("{name} holds a value that is not finite"));
            }
        }
        if !self.bias.is_finite() || !self.threshold.is_finite() || !self.threshold_apcer5.is_finite() {
            return Err("bias or threshold is not finite".into());
        }
        if self.features.size < 16 || self.features.size > 512 {
            return Err(format!("crop size {} is outside 16..=512", self.features.size));
        }
        Ok(())
    }

    /// A model from a fitted classifier on standardised features.
    pub fn new(
        features: FeatureSpec,
        mean: Vec<f32>,
        inv_std: Vec<f32>,
        fit: Logistic,
        thresholds: (f64, f64),
        provenance: Provenance,
    ) -> Self {
        LivenessModel {
            format: FORMAT.into(),
            features,
            quality: QualityBounds::default(),
            mean,
            inv_std,
            weights: fit.weights,
            bias: fit.bias,
            threshold: thresholds.0,
            threshold_apcer5: thresholds.1,
            provenance,
        }
    }

    /// The live-ness score of a feature vector, in [0, 1].
    pub fn score(&self, x: &[f32]) -> f64 {
        let z: f64 = x
            .iter()
            .zip(&self.mean)
            .zip(&self.inv_std)
            .zip(&self.weights)
            .map(|(((&x, &m), &s), &w)| ((x - m) * s) as f64 * w as f64)
            .sum::<f64>()
            + self.bias as f64;
        sigmoid(z)
    }
}

/// Per-feature mean and 1 / standard deviation of `rows` (1 for a constant feature).
pub fn standardisation(rows: &[Vec<f32>]) -> (Vec<f32>, Vec<f32>) {
    let d = rows.first().map_or(0, Vec::len);
    let n = rows.len().max(1) as f64;
    let mut mean = vec![0f64; d];
    for r in rows {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += v as f64 / n;
        }
    }
    let mut var = vec![0f64; d];
    for r in rows {
        for ((s, &v), &m) in var.iter_mut().zip(r).zip(&mean) {
            *s += (v as f64 - m).powi(2) / n;
        }
    }
    let inv = var.iter().map(|&v| if v > 1e-12 { (1.0 / v.sqrt()) as f32 } else { 1.0 }).collect();
    (mean.into_iter().map(|m| m as f32).collect(), inv)
}

/// `rows` standardised with `mean` and `inv_std`.
pub fn standardise(rows: &[Vec<f32>], mean: &[f32], inv_std: &[f32]) -> Vec<Vec<f32>> {
    rows.iter().map(|r| r.iter().zip(mean).zip(inv_std).map(|((&v, &m), &s)| (v - m) * s).collect()).collect()
}
