//! When a face cannot be judged: the texture a liveness model reads is not there.

use crate::plane::luma;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use visage_core::Rect;

/// Why a face cannot be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unjudgeable {
    /// The face is smaller than the crop the model reads: its texture would be interpolated.
    TooSmall,
    /// The face runs off the photo's border.
    CutByBorder,
    /// The face is too dark to read its texture.
    TooDark,
    /// The face is too bright (washed out) to read its texture.
    TooBright,
    /// The photo has no colour, and the model reads colour texture.
    NoColour,
}

impl Unjudgeable {
    /// A sentence for people.
    pub fn reason(self) -> &'static str {
        match self {
            Unjudgeable::TooSmall => "face too small",
            Unjudgeable::CutByBorder => "face cut by the photo's border",
            Unjudgeable::TooDark => "face too dark",
            Unjudgeable::TooBright => "face over-exposed",
            Unjudgeable::NoColour => "greyscale photo (the check reads colour)",
        }
    }
}

/// The bounds a face must meet to be judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QualityBounds {
    /// Smallest face side in pixels (the detector's box).
    pub min_face: i64,
    /// Largest share of the detector's box that may lie outside the photo.
    pub max_outside: f64,
    /// Mean luma of the face crop must lie in this range.
    pub luma_range: (f64, f64),
    /// Largest share of the face crop's pixels that may be clipped (luma <= 8 or >= 247).
    pub max_clipped: f64,
    /// Smallest mean chroma (max - min of R, G, B) of the face crop.
    pub min_chroma: f64,
}

impl Default for QualityBounds {
    fn default() -> Self {
        QualityBounds { min_face: 40, max_outside: 0.10, luma_range: (30.0, 235.0), max_clipped: 0.5, min_chroma: 2.0 }
    }
}

impl QualityBounds {
    /// The first reason the face with detector box `detection` in a `width` x `height` photo,
    /// cropped to `face`, cannot be judged; `None` when it can.
    pub fn check(&self, width: u32, height: u32, detection: Rect, face: &RgbImage) -> Option<Unjudgeable> {
        if detection.width().min(detection.height()) < self.min_face {
            return Some(Unjudgeable::TooSmall);
        }
        let inside = detection.trimmed_to(width, height).area() as f64;
        let area = detection.area().max(1) as f64;
        if 1.0 - inside / area > self.max_outside {
            return Some(Unjudgeable::CutByBorder);
        }
        let n = (face.width() * face.height()).max(1) as f64;
        let (mut sum, mut clipped, mut chroma) = (0.0, 0usize, 0.0);
        for p in face.pixels() {
            let y = luma(p.0);
            sum += y;
            if !(8.0..247.0).contains(&y) {
                clipped += 1;
            }
            let max = p.0.iter().max().copied().unwrap_or(0);
            let min = p.0.iter().min().copied().unwrap_or(0);
            chroma += (max - min) as f64;
        }
        let mean = sum / n;
        if chroma / n < self.min_chroma {
            return Some(Unjudgeable::NoColour);
        }
        if mean < self.luma_range.0 || (clipped as f64 / n > self.max_clipped && mean < 128.0) {
            return Some(Unjudgeable::TooDark);
        }
        if mean > self.luma_range.1 || clipped as f64 / n > self.max_clipped {
            return Some(Unjudgeable::TooBright);
        }
        None
    }
}
