//! The saved detector (`frontal_face_detector.svm`) and its separable filter bank.
//! See `shared/reference/hog-detector.md` sections 1 and 2.

use super::svd::svd;
use visage_models::{DlibReader, FormatError};

/// The model bytes shipped with visage (see `assets/NOTICE.md`).
pub const FRONTAL_FACE_DETECTOR: &[u8] = include_bytes!("../../assets/frontal_face_detector.svm");

/// fHOG planes per cell.
pub const PLANES: usize = 31;
/// Filter side in cells.
pub const FILTER: usize = 10;

/// One rank-1 component of a plane's filter: `F ~ sum_j col_j * row_j^T`.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// Vertical taps (applied along a column of the feature plane).
    pub col: [f32; FILTER],
    /// Horizontal taps.
    pub row: [f32; FILTER],
}

/// One of the 5 linear detectors.
#[derive(Debug, Clone)]
pub struct LinearDetector {
    /// Components per plane, in application order.
    pub planes: Vec<Vec<Component>>,
    /// Detection threshold: a window fires when its saliency is >= bias.
    pub bias: f64,
}

/// The whole saved object detector.
#[derive(Debug, Clone)]
pub struct HogModel {
    /// Cell size in pixels (8).
    pub cell_size: usize,
    /// Detection window in pixels (80x80).
    pub window: (usize, usize),
    /// Upper bound on pyramid levels (1000).
    pub max_pyramid_levels: usize,
    /// Smallest pyramid level side (64).
    pub min_pyramid_layer: (usize, usize),
    /// NMS: intersection over bounding box above which two boxes overlap.
    pub iou_thresh: f64,
    /// NMS: fraction of either box covered above which two boxes overlap.
    pub percent_covered_thresh: f64,
    /// The 5 detectors (front, left, right, front rotated left, front rotated right).
    pub detectors: Vec<LinearDetector>,
}

impl HogModel {
    /// The detector shipped with visage.
    pub fn frontal() -> HogModel {
        Self::parse(FRONTAL_FACE_DETECTOR).expect("the shipped detector parses")
    }

    /// Parses a saved `object_detector<scan_fhog_pyramid<pyramid_down<6>>>`.
    pub fn parse(bytes: &[u8]) -> Result<HogModel, FormatError> {
        let mut r = DlibReader::new(bytes, "frontal_face_detector.svm");
        r.expect_int(2, "object_detector version")?;
        r.expect_int(1, "scan_fhog_pyramid version")?;
        r.expect_int(0, "cached feature pyramid max_size")?;
        r.expect_int(0, "cached feature pyramid size")?;
        let cell_size = r.size("cell_size", 64)?;
        let padding = r.size("padding", 64)?;
        let ww = r.size("window_width", 4096)?;
        let wh = r.size("window_height", 4096)?;
        let max_pyramid_levels = r.size("max_pyramid_levels", 100_000)?;
        let min_w = r.size("min_pyramid_layer_width", 1 << 20)?;
        let min_h = r.size("min_pyramid_layer_height", 1 << 20)?;
        let _nuclear_norm = r.double()?;
        let dims = r.size("num_dimensions", 1 << 20)?;
        if (cell_size, padding, ww, wh) != (8, 0, 80, 80) || dims != PLANES * FILTER * FILTER {
            return Err(r.error(format!(
                "scanner cell {cell_size} padding {padding} window {ww}x{wh} dims {dims}: only dlib's frontal detector layout is supported"
            )));
        }
        let iou_thresh = r.double()?;
        let percent_covered_thresh = r.double()?;
        if !(iou_thresh.is_finite() && percent_covered_thresh.is_finite()) {
            return Err(r.error(format!("overlap thresholds {iou_thresh} and {percent_covered_thresh} are not finite")));
        }
        let n = r.size("number of detectors", 64)?;
        if n == 0 {
            return Err(r.error("the file holds no detector"));
        }
        let mut detectors = Vec::with_capacity(n);
        for _ in 0..n {
            let (nr, nc, w) = r.matrix(dims + 1)?;
            if nr != dims + 1 || nc != 1 {
                return Err(r.error(format!("weight vector {nr}x{nc}, expected {}x1", dims + 1)));
            }
            if let Some(v) = w.iter().find(|v| !v.is_finite()) {
                return Err(r.error(format!("detector {} holds a non-finite weight ({v})", detectors.len())));
            }
            detectors.push(filter_bank(&w));
        }
        r.expect_end()?;
        Ok(HogModel {
            cell_size,
            window: (ww, wh),
            max_pyramid_levels,
            min_pyramid_layer: (min_w, min_h),
            iou_thresh,
            percent_covered_thresh,
            detectors,
        })
    }
}

/// dlib's `build_fhog_filterbank`: each plane's 10x10 filter split into rank-1 components by
/// SVD, keeping those with singular value >= max(1e-4, 0.001 * largest), largest first.
fn filter_bank(w: &[f64]) -> LinearDetector {
    let planes = (0..PLANES)
        .map(|p| {
            let f: Vec<f64> = w[p * FILTER * FILTER..(p + 1) * FILTER * FILTER].to_vec();
            let (u, s, v) = svd(&f, FILTER);
            let mut order: Vec<usize> = (0..FILTER).collect();
            order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
            let smax = s[order[0]];
            let thresh = (smax * 0.001).max(1e-4);
            order
                .into_iter()
                .filter(|&j| s[j].abs() >= thresh)
                .map(|j| {
                    let root = s[j].sqrt();
                    Component {
                        col: std::array::from_fn(|i| (u[i * FILTER + j] * root) as f32),
                        row: std::array::from_fn(|i| (v[i * FILTER + j] * root) as f32),
                    }
                })
                .collect()
        })
        .collect();
    LinearDetector { planes, bias: w[PLANES * FILTER * FILTER] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_model_parses_with_the_documented_values() {
        let m = HogModel::frontal();
        assert_eq!(m.detectors.len(), 5);
        assert_eq!(m.iou_thresh, 0.33008212188056446);
        assert_eq!(m.percent_covered_thresh, 0.7885714285714286);
        let biases: Vec<f64> = m.detectors.iter().map(|d| d.bias).collect();
        assert_eq!(biases, [3.2744957766996508, 3.986821636074024, 3.8959356750348184, 3.5148690352596796, 3.558029025830369]);
        let kept: Vec<usize> = m.detectors.iter().map(|d| d.planes.iter().map(Vec::len).sum()).collect();
        assert_eq!(kept, [61, 58, 54, 66, 66], "rank-1 components per detector");
    }

    #[test]
    fn truncated_or_foreign_models_are_errors() {
        assert!(HogModel::parse(&FRONTAL_FACE_DETECTOR[..1000]).is_err());
        assert!(HogModel::parse(b"\x01\x01").is_err());
        // A NaN weight (here the last detector's bias, the file's last value: its exponent
        // rewritten to dlib's NaN code 32002) is refused with a message, not a panic.
        let f = FRONTAL_FACE_DETECTOR;
        let exp_at = (1..=2).map(|n| f.len() - 1 - n).find(|&i| (f[i] & 0x0F) as usize == f.len() - 1 - i).expect("exponent");
        let mut nan = f[..exp_at].to_vec();
        nan.extend([0x02, 0x02, 0x7D]);
        let err = HogModel::parse(&nan).expect_err("NaN weight");
        assert!(err.to_string().contains("non-finite"), "{err}");
        let mut trailing = FRONTAL_FACE_DETECTOR.to_vec();
        trailing.push(0);
        assert!(HogModel::parse(&trailing).is_err());
    }
}
