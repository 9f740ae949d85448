//! The judgement on one face: live, spoof, or cannot judge with the reason.

use crate::model::LivenessModel;
use crate::quality::Unjudgeable;
use image::RgbImage;
use serde::Serialize;
use visage_core::{Point, Rect};

/// What the check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A live face.
    Live,
    /// A presentation attack (a photo of a photo).
    Spoof,
    /// The face cannot be judged (see the reason).
    CannotJudge,
}

impl Verdict {
    /// The word printed for it.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Live => "live",
            Verdict::Spoof => "spoof",
            Verdict::CannotJudge => "cannot judge",
        }
    }

    /// The decision a recognition answer gives a face refused for this verdict (`spoof` or
    /// `cannot_judge`); `None` for a live face, which goes on to be recognised.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Verdict::Live => None,
            Verdict::Spoof => Some("spoof"),
            Verdict::CannotJudge => Some("cannot_judge"),
        }
    }
}

/// The judgement on one face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judgement {
    /// The decision.
    pub verdict: Verdict,
    /// The live-ness score in [0, 1] (`None` when the face cannot be judged).
    pub score: Option<f64>,
    /// The threshold the score was compared with (live when above it).
    pub threshold: f64,
    /// Why the face cannot be judged.
    pub reason: Option<Unjudgeable>,
}

impl LivenessModel {
    /// Judges the face with detector box `detection` and 5-point (or 68-point) `landmarks` in
    /// `img`. `threshold` overrides the model's own.
    pub fn judge(&self, img: &RgbImage, detection: Rect, landmarks: &[Point], threshold: Option<f64>) -> Judgement {
        let threshold = threshold.unwrap_or(self.threshold);
        let cannot = |reason| Judgement { verdict: Verdict::CannotJudge, score: None, threshold, reason: Some(reason) };
        let Ok((face, context)) = self.features.crops(img, landmarks) else {
            return cannot(Unjudgeable::TooSmall);
        };
        if let Some(reason) = self.quality.check(img.width(), img.height(), detection, &face) {
            return cannot(reason);
        }
        let score = self.score(&self.features.describe_crops(&face, context.as_ref()));
        let verdict = if score > threshold { Verdict::Live } else { Verdict::Spoof };
        Judgement { verdict, score: Some(score), threshold, reason: None }
    }
}
