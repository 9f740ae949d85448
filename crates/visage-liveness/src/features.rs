//! The texture description of a face: multi-scale uniform LBP histograms of the aligned face
//! in grey (Maatta, Hadid, Pietikainen 2011: 833 values), per-channel LBP in HSV and YCbCr
//! (Boulkenafet, Komulainen, Hadid 2015), and optionally the same colour texture of a wider
//! crop that shows the surroundings of the face (a print's edges and the hand holding it).

use crate::lbp::Lbp;
use crate::plane::TexturePlanes;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use visage_align::{extract_chip, face_chip_details};
use visage_core::{ChipGeometry, Point};

/// How a face is cropped and described. Stored in every model, so that a model is always
/// fed the features it was trained on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Side of the aligned face crop in pixels.
    pub size: u32,
    /// Padding of the face crop around dlib's landmark template (dlib's chip padding).
    pub face_padding: f64,
    /// Padding of the wider context crop, or `None` for the face crop alone.
    pub context_padding: Option<f64>,
    /// Whether the context crop is described in grey as well as in colour.
    #[serde(default)]
    pub context_grey: bool,
}

impl Default for FeatureSpec {
    fn default() -> Self {
        FeatureSpec { size: 64, face_padding: 0.2, context_padding: Some(1.0), context_grey: true }
    }
}

/// The operators: (8, 1) on a 3x3 grid of blocks plus (8, 2) and (16, 2) over the whole grey
/// face; (8, 1) over each colour plane.
struct Operators {
    lbp8_1: Lbp,
    lbp8_2: Lbp,
    lbp16_2: Lbp,
}

impl Operators {
    fn get() -> &'static Operators {
        static OPS: std::sync::OnceLock<Operators> = std::sync::OnceLock::new();
        OPS.get_or_init(|| Operators { lbp8_1: Lbp::new(8, 1.0), lbp8_2: Lbp::new(8, 2.0), lbp16_2: Lbp::new(16, 2.0) })
    }
}

/// A histogram made square-root (Hellinger) so that a linear classifier on it behaves like a
/// kernel on histograms.
fn hellinger(h: Vec<f32>) -> Vec<f32> {
    h.into_iter().map(f32::sqrt).collect()
}

/// The texture of one crop, appended to `out`: with `grey`, LBP(8,1) on a 3x3 grid of the
/// luma, LBP(8,2) and LBP(16,2) of the whole luma; then LBP(8,1) of H, S, V, Y, Cb and Cr.
/// The luma is YCbCr's Y as well, so its LBP(8,1) labels are computed once for both.
fn crop_texture(img: &RgbImage, grey: bool, out: &mut Vec<f32>) {
    let ops = Operators::get();
    let planes = TexturePlanes::of(img);
    let luma = ops.lbp8_1.codes(&planes.luma);
    if grey {
        out.extend(hellinger(luma.grid(3)));
        out.extend(hellinger(ops.lbp8_2.codes(&planes.luma).whole()));
        out.extend(hellinger(ops.lbp16_2.codes(&planes.luma).whole()));
    }
    for p in &planes.hsv {
        out.extend(hellinger(ops.lbp8_1.codes(p).whole()));
    }
    out.extend(hellinger(luma.whole()));
    for p in &planes.chroma {
        out.extend(hellinger(ops.lbp8_1.codes(p).whole()));
    }
}

impl FeatureSpec {
    /// The face crop's geometry.
    pub fn face_geometry(&self) -> ChipGeometry {
        ChipGeometry { size: self.size, padding: self.face_padding }
    }

    /// Number of values [`describe`](Self::describe) returns.
    pub fn len(&self) -> usize {
        let (l8, l16) = (59, 243);
        let grey = 9 * l8 + l8 + l16;
        let colour = 6 * l8;
        grey + colour + self.context_padding.map_or(0, |_| colour + if self.context_grey { grey } else { 0 })
    }

    /// Always false: a description has values.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The aligned face crop (and the context crop) for a face's landmarks.
    pub fn crops(&self, img: &RgbImage, landmarks: &[Point]) -> Result<(RgbImage, Option<RgbImage>), visage_align::AlignError> {
        let face = extract_chip(img, &face_chip_details(landmarks, self.face_geometry())?);
        let context = match self.context_padding {
            Some(padding) => Some(extract_chip(img, &face_chip_details(landmarks, ChipGeometry { size: self.size, padding })?)),
            None => None,
        };
        Ok((face, context))
    }

    /// The feature vector of a face crop and its context crop ([`crops`](Self::crops)).
    pub fn describe_crops(&self, face: &RgbImage, context: Option<&RgbImage>) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.len());
        crop_texture(face, true, &mut out);
        if let Some(c) = context {
            crop_texture(c, self.context_grey, &mut out);
        }
        out
    }

    /// The feature vector of the face with these landmarks.
    pub fn describe(&self, img: &RgbImage, landmarks: &[Point]) -> Result<Vec<f32>, visage_align::AlignError> {
        let (face, context) = self.crops(img, landmarks)?;
        Ok(self.describe_crops(&face, context.as_ref()))
    }
}
