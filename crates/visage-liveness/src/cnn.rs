//! The CNN liveness check: a small network trained by visage (`visage liveness train --kind
//! cnn`) reads the aligned face crop and gives the logit of "live"; it runs on visage's
//! inference engine like every other network. The file is a visage model file (safetensors)
//! whose metadata key [`SETTINGS_KEY`] holds the thresholds, quality bounds and provenance.

use crate::judge::{Judgement, Verdict};
use crate::logistic::sigmoid;
use crate::model::{ModelError, Provenance};
use crate::quality::{QualityBounds, Unjudgeable};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::Path;
use visage_align::{extract_chip, face_chip_details};
use visage_core::{Point, Rect};
use visage_embed::{Embedder, EngineOptions, TrainedModel};

/// The metadata key of a CNN liveness model's settings.
pub const SETTINGS_KEY: &str = "visage-liveness";

/// What a CNN liveness model carries besides its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CnnSettings {
    /// Scores strictly above it are live (the validation's lowest ACER).
    pub threshold: f64,
    /// The validation's APCER <= 5% threshold (BPCER20's operating point).
    pub threshold_apcer5: f64,
    /// When a face is not judged.
    pub quality: QualityBounds,
    /// How it was made.
    pub provenance: Provenance,
    /// Whether each crop is standardised per channel before the network reads it
    /// ([`standardize_crop`]); absent in older files: false.
    #[serde(default)]
    pub standardize: bool,
}

/// Standardises an RGB crop in place, per channel, to mean 128 and standard deviation 40
/// (clamped to 0..=255): the network then sees the crop's texture and contrast pattern rather
/// than its overall brightness and colour cast, which change with the place and the light.
pub fn standardize_crop(rgb: &mut [u8]) {
    let n = (rgb.len() / 3).max(1) as f64;
    for c in 0..3 {
        let (mut sum, mut sq) = (0f64, 0f64);
        for p in rgb.chunks_exact(3) {
            let v = p[c] as f64;
            sum += v;
            sq += v * v;
        }
        let mean = sum / n;
        let std = (sq / n - mean * mean).max(0.0).sqrt().max(1.0);
        for p in rgb.chunks_exact_mut(3) {
            p[c] = (128.0 + 40.0 * (p[c] as f64 - mean) / std).round().clamp(0.0, 255.0) as u8;
        }
    }
}

/// A CNN liveness model, compiled on the engine.
pub struct CnnLiveness {
    scorer: Embedder,
    /// Its thresholds, quality bounds and provenance.
    pub settings: CnnSettings,
}

impl std::fmt::Debug for CnnLiveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CnnLiveness").field("descriptor", self.scorer.descriptor()).field("settings", &self.settings).finish()
    }
}

impl CnnLiveness {
    /// The model in a model file's contents (`what` names it in errors).
    pub fn from_model(model: &TrainedModel, what: &str) -> Result<Self, ModelError> {
        let format = |why: String| ModelError::Format { path: what.into(), why };
        if model.descriptor.dim != 1 {
            return Err(format(format!("a liveness network has one output, this one has {}", model.descriptor.dim)));
        }
        let text = model.extra.get(SETTINGS_KEY).ok_or_else(|| format(format!("no {SETTINGS_KEY:?} metadata: not a liveness model")))?;
        let settings: CnnSettings = serde_json::from_str(text).map_err(|e| format(format!("{SETTINGS_KEY}: {e}")))?;
        if !settings.threshold.is_finite() || !settings.threshold_apcer5.is_finite() {
            return Err(format("a threshold is not finite".into()));
        }
        let size = model.descriptor.chip.size;
        if !(16..=256).contains(&size) {
            return Err(format(format!("crop size {size} is outside 16..=256")));
        }
        let scorer = Embedder::scorer_from_trained(model, EngineOptions::default()).map_err(|e| format(e.to_string()))?;
        Ok(CnnLiveness { scorer, settings })
    }

    /// A model from its file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let shown = path.display().to_string();
        let model = TrainedModel::load(path).map_err(|e| ModelError::Format { path: shown.clone(), why: e.to_string() })?;
        Self::from_model(&model, &shown)
    }

    /// The aligned face crop the network reads (the descriptor's chip geometry), standardised
    /// when the model was trained so.
    pub fn crop(&self, img: &RgbImage, landmarks: &[Point]) -> Result<RgbImage, visage_align::AlignError> {
        let mut c = extract_chip(img, &face_chip_details(landmarks, self.scorer.descriptor().chip)?);
        if self.settings.standardize {
            standardize_crop(&mut c);
        }
        Ok(c)
    }

    /// The live-ness scores in [0, 1] of crops made by [`crop`](Self::crop).
    pub fn score_crops(&self, crops: &[&[u8]]) -> Result<Vec<f64>, visage_embed::EmbedError> {
        Ok(self.scorer.embed_batch(crops)?.into_iter().map(|v| sigmoid(v[0] as f64)).collect())
    }

    /// Judges one face, as [`LivenessModel::judge`](crate::LivenessModel::judge) does.
    pub fn judge(&self, img: &RgbImage, detection: Rect, landmarks: &[Point], threshold: Option<f64>) -> Judgement {
        let threshold = threshold.unwrap_or(self.settings.threshold);
        let cannot = |reason| Judgement { verdict: Verdict::CannotJudge, score: None, threshold, reason: Some(reason) };
        let Ok(face) = self.crop(img, landmarks) else {
            return cannot(Unjudgeable::TooSmall);
        };
        if let Some(reason) = self.settings.quality.check(img.width(), img.height(), detection, &face) {
            return cannot(reason);
        }
        let Ok(scores) = self.score_crops(&[face.as_raw()]) else {
            return cannot(Unjudgeable::TooSmall);
        };
        let score = scores[0];
        let verdict = if score > threshold { Verdict::Live } else { Verdict::Spoof };
        Judgement { verdict, score: Some(score), threshold, reason: None }
    }
}

#[cfg(test)]
mod tests {
    use super::standardize_crop;

    #[test]
    fn standardised_crops_have_mean_128_and_deviation_40_whatever_the_light() {
        // One pattern under two lights (dimmer with a colour cast, and bright): the same result.
        let pattern: Vec<f64> = (0..64).map(|i| ((i * 37) % 11) as f64).collect();
        let lit = |gain: [f64; 3], offset: [f64; 3]| -> Vec<u8> {
            pattern.iter().flat_map(|&v| (0..3).map(move |c| (offset[c] + gain[c] * v) as u8)).collect()
        };
        let mut a = lit([4.0, 3.0, 5.0], [20.0, 40.0, 10.0]);
        let mut b = lit([8.0, 6.0, 10.0], [90.0, 120.0, 100.0]);
        standardize_crop(&mut a);
        standardize_crop(&mut b);
        for c in 0..3 {
            let v: Vec<f64> = a.chunks(3).map(|p| p[c] as f64).collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            assert!((mean - 128.0).abs() < 1.0 && (sd - 40.0).abs() < 1.0, "channel {c}: mean {mean}, sd {sd}");
        }
        let worst = a.iter().zip(&b).map(|(x, y)| (*x as i32 - *y as i32).abs()).max().unwrap();
        assert!(worst <= 1, "the two lights differ by {worst} after standardising");
        // A flat crop stays flat (no division by zero).
        let mut flat = vec![77u8; 48];
        standardize_crop(&mut flat);
        assert!(flat.iter().all(|&v| v == 128));
    }
}
