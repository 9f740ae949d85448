//! dlib's default frontal face detector (`get_frontal_face_detector()`), bit-exact: the same
//! boxes, scores and filter indices as dlib on the same pixels.
//! The algorithm is specified in `shared/reference/hog-detector.md`.

pub mod fhog;
pub mod model;
pub mod resize;
pub mod scan;
mod svd;

use crate::{Detection, DetectorSource, FaceDetector, StageError};
use model::HogModel;
use rayon::prelude::*;
use std::borrow::Cow;
use visage_core::{DRect, PyramidDown, Rect, RgbImage};

/// The HOG detector with dlib's frontal face model.
#[derive(Debug, Clone)]
pub struct HogDetector {
    model: HogModel,
    upsample: u32,
    adjust_threshold: f64,
    simd: bool,
}

impl Default for HogDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl HogDetector {
    /// The most upsampling steps accepted (each doubles both sides: 4^8 = 65536 times the
    /// pixels); more is clamped to this.
    pub const MAX_UPSAMPLE: u32 = 8;

    /// dlib's frontal detector with face_recognition's defaults (upsample 1, threshold 0).
    pub fn new() -> Self {
        Self { model: HogModel::frontal(), upsample: 1, adjust_threshold: 0.0, simd: fhog::avx2_available() }
    }

    /// Whether the vector code paths (AVX-512, AVX2) may be used (each only where this CPU
    /// has it; every path gives identical bits). `VISAGE_HOG_SCALAR=1`, read by programs at
    /// start, turns them off (the pyramid resize then keeps dlib's own 4-lane SSE form).
    pub fn with_simd(mut self, simd: bool) -> Self {
        self.simd = simd && fhog::avx2_available();
        self
    }

    /// Sets how many times the photo is doubled before scanning (finds faces down to ~40 px
    /// at 1, ~20 px at 2; each step costs about 4x the time).
    pub fn with_upsample(mut self, upsample: u32) -> Self {
        self.upsample = upsample.min(Self::MAX_UPSAMPLE);
        self
    }

    /// Shifts the decision threshold (negative finds more, weaker faces).
    pub fn with_adjust_threshold(mut self, adjust: f64) -> Self {
        self.adjust_threshold = adjust;
        self
    }

    /// How many times photos are doubled before scanning.
    pub fn upsample(&self) -> u32 {
        self.upsample
    }

    /// The loaded model.
    pub fn model(&self) -> &HogModel {
        &self.model
    }

    /// dlib's `run(img, upsample, adjust_threshold)`: raw detections in descending confidence.
    pub fn run(&self, img: &RgbImage, upsample: u32, adjust_threshold: f64) -> Vec<Detection> {
        let upsample = upsample.min(Self::MAX_UPSAMPLE);
        let simd = self.simd;
        let mut work: Cow<RgbImage> = Cow::Borrowed(img);
        for _ in 0..upsample {
            work = Cow::Owned(resize::resize_exact_at(&work, 2 * work.width() + 2, 2 * work.height() + 1, fhog::Simd::from_flag(simd)));
        }
        let m = &self.model;
        let levels =
            resize::pyramid_levels(work.width(), work.height(), m.min_pyramid_layer.0, m.min_pyramid_layer.1, m.max_pyramid_levels);
        let nd = m.detectors.len();
        // Pipelined: while this thread shrinks the pyramid level by level, each finished level
        // is scanned (fHOG, then the 5 filters) by the other workers.
        let per_map: Vec<std::sync::Mutex<Vec<(f32, Rect)>>> = (0..nd * levels).map(|_| Default::default()).collect();
        rayon::scope(|scope| {
            let mut level: Cow<RgbImage> = work;
            for l in 0..levels {
                let next = (l + 1 < levels).then(|| {
                    resize::resize_exact_at(&level, (5 * level.width()) / 6, (5 * level.height()) / 6, fhog::Simd::from_flag(simd))
                });
                let this = std::mem::replace(&mut level, Cow::Owned(next.unwrap_or_default()));
                let per_map = &per_map;
                scope.spawn(move |_| {
                    let Some(f) = fhog::extract_with(&this, simd) else { return };
                    drop(this);
                    (0..nd).into_par_iter().for_each(|d| {
                        *per_map[d * levels + l].lock().unwrap() = scan_level(&f, &m.detectors[d], l, adjust_threshold, simd);
                    });
                });
            }
        });
        let per_map: Vec<Vec<(f32, Rect)>> = per_map.into_iter().map(|m| m.into_inner().unwrap()).collect();

        let mut all: Vec<Detection> = Vec::new();
        for d in 0..nd {
            let mut cand: Vec<(f32, Rect)> = (0..levels).flat_map(|l| per_map[d * levels + l].iter().copied()).collect();
            cand.sort_by(|a, b| b.0.total_cmp(&a.0));
            let bias = m.detectors[d].bias;
            all.extend(cand.into_iter().map(|(s, rect)| Detection {
                rect,
                score: s as f64 - bias,
                landmarks: None,
                source: DetectorSource { name: "hog", sub: Some(d) },
            }));
        }
        all.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut kept: Vec<Detection> = Vec::new();
        for x in all {
            if !kept.iter().any(|k| overlaps(&k.rect, &x.rect, m.iou_thresh, m.percent_covered_thresh)) {
                kept.push(x);
            }
        }
        if upsample > 0 {
            for k in &mut kept {
                k.rect = rect_down2(k.rect, upsample);
            }
        }
        kept
    }
}

impl FaceDetector for HogDetector {
    fn detect_adjusted(&self, img: &RgbImage, adjust: f64) -> Result<Vec<Detection>, StageError> {
        Ok(self.run(img, self.upsample, self.adjust_threshold + adjust))
    }

    fn pixels_processed(&self, width: u32, height: u32) -> u64 {
        (width as u64 * height as u64).saturating_mul(1u64 << (2 * self.upsample))
    }

    fn name(&self) -> &'static str {
        "hog"
    }
}

/// The windows of one level that fire for one detector, in (row, column) order.
fn scan_level(f: &fhog::FhogPlanes, det: &model::LinearDetector, level: usize, adjust_threshold: f64, simd: bool) -> Vec<(f32, Rect)> {
    let mut out = Vec::new();
    if f.rows < 10 || f.cols < 10 {
        return out;
    }
    let s = scan::saliency(f, det, simd);
    let thresh = det.bias + adjust_threshold;
    for r in 5..=f.rows - 5 {
        for c in 5..=f.cols - 5 {
            let v = s[r * f.cols + c];
            if v as f64 >= thresh {
                out.push((v, level_rect_to_image(scan::window_rect(r as i64, c as i64), level)));
            }
        }
    }
    out
}

/// Maps a window rectangle at pyramid level `l` to level 0 (`pyramid_down<6>::rect_up`,
/// `l` times), rounded.
fn level_rect_to_image(r: (i64, i64, i64, i64), l: usize) -> Rect {
    let up = PyramidDown::FIVE_SIXTHS.rect_up(DRect::new(r.0 as f64, r.1 as f64, r.2 as f64, r.3 as f64), l);
    Rect::new(resize::lround(up.left), resize::lround(up.top), resize::lround(up.right), resize::lround(up.bottom))
}

/// `pyramid_down<2>::rect_down` applied `times` times, then rounded.
pub(crate) fn rect_down2(r: Rect, times: u32) -> Rect {
    let mut d = DRect::new(r.left as f64, r.top as f64, r.right as f64, r.bottom as f64);
    for _ in 0..times {
        d = PyramidDown::HALF.rect_down(d);
    }
    Rect::new(resize::lround(d.left), resize::lround(d.top), resize::lround(d.right), resize::lround(d.bottom))
}

/// dlib's `test_box_overlap`: intersection over the *bounding box* of the pair, or either box
/// mostly covered.
pub fn overlaps(a: &Rect, b: &Rect, iou_thresh: f64, covered_thresh: f64) -> bool {
    let inner = a.intersect(b).area() as f64;
    if inner == 0.0 {
        return false;
    }
    let outer = a.union_box(b).area() as f64;
    inner / outer > iou_thresh || inner / a.area() as f64 > covered_thresh || inner / b.area() as f64 > covered_thresh
}
