//! The liveness stage behind one trait, whichever model implements it: the colour-texture
//! model ([`LivenessModel`], a JSON file) or the CNN ([`CnnLiveness`], a visage model file).

use crate::cnn::CnnLiveness;
use crate::judge::Judgement;
use crate::model::{LivenessModel, ModelError};
use image::RgbImage;
use std::path::Path;
use visage_core::{Point, Rect};

/// A passive single-image liveness check.
pub trait LivenessCheck: Send + Sync {
    /// Judges the face with detector box `detection` and `landmarks` in `img`; `threshold`
    /// overrides the model's own.
    fn judge(&self, img: &RgbImage, detection: Rect, landmarks: &[Point], threshold: Option<f64>) -> Judgement;
    /// The threshold of the validation's lowest ACER (live above it).
    fn threshold(&self) -> f64;
    /// The threshold of APCER <= 5% on validation.
    fn threshold_apcer5(&self) -> f64;
    /// What kind of model it is (`texture` or `cnn`).
    fn kind(&self) -> &'static str;
}

impl LivenessCheck for LivenessModel {
    fn judge(&self, img: &RgbImage, detection: Rect, landmarks: &[Point], threshold: Option<f64>) -> Judgement {
        LivenessModel::judge(self, img, detection, landmarks, threshold)
    }
    fn threshold(&self) -> f64 {
        self.threshold
    }
    fn threshold_apcer5(&self) -> f64 {
        self.threshold_apcer5
    }
    fn kind(&self) -> &'static str {
        "texture"
    }
}

impl LivenessCheck for CnnLiveness {
    fn judge(&self, img: &RgbImage, detection: Rect, landmarks: &[Point], threshold: Option<f64>) -> Judgement {
        CnnLiveness::judge(self, img, detection, landmarks, threshold)
    }
    fn threshold(&self) -> f64 {
        self.settings.threshold
    }
    fn threshold_apcer5(&self) -> f64 {
        self.settings.threshold_apcer5
    }
    fn kind(&self) -> &'static str {
        "cnn"
    }
}

/// The model in a file of either kind: a JSON text is a texture model, anything else is read
/// as a visage model file holding a CNN.
pub fn load(path: &Path) -> Result<Box<dyn LivenessCheck>, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Read { path: path.display().to_string(), source })?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        let text = String::from_utf8(bytes).map_err(|e| ModelError::Format { path: path.display().to_string(), why: e.to_string() })?;
        return Ok(Box::new(LivenessModel::from_json(&text, &path.display().to_string())?));
    }
    let shown = path.display().to_string();
    let model = visage_embed::TrainedModel::from_bytes(&bytes, &shown).map_err(|e| ModelError::Format { path: shown.clone(), why: e.to_string() })?;
    Ok(Box::new(CnnLiveness::from_model(&model, &shown)?))
}
