//! ROC curve, AUC and EER over scored pairs (smaller distance = more alike).

use serde::Serialize;

/// One point of the ROC curve (the gallery's type: one ROC and one EER for the whole project).
pub use visage_gallery::calibrate::RocPoint;

/// ROC summary.
#[derive(Debug, Clone, Serialize)]
pub struct Roc {
    /// Area under the curve: the probability that a genuine pair is closer than an impostor
    /// pair (ties count half).
    pub auc: f64,
    /// Equal error rate (FAR = FRR), linearly interpolated.
    pub eer: f64,
    /// Threshold at the EER.
    pub eer_threshold: f64,
    /// The curve, one point per distinct distance, FAR increasing.
    pub points: Vec<RocPoint>,
}

/// Computes the ROC of `(distance, same)` pairs. Needs both kinds of pairs. The curve and
/// the EER come from `visage_gallery::calibrate`, which `visage calibrate` uses too.
pub fn roc(pairs: &[(f64, bool)]) -> Option<Roc> {
    let genuine: Vec<f64> = pairs.iter().filter(|p| p.1).map(|p| p.0).collect();
    let impostor: Vec<f64> = pairs.iter().filter(|p| !p.1).map(|p| p.0).collect();
    let points = visage_gallery::calibrate::roc_curve(&genuine, &impostor);
    if points.is_empty() {
        return None;
    }
    // Trapezoids in (FAR, TAR); tied pairs move together, so ties count half.
    let auc = points.windows(2).map(|w| (w[1].far - w[0].far) * (w[0].tar + w[1].tar) / 2.0).sum();
    let (eer, eer_threshold) = visage_gallery::calibrate::eer(&points);
    Some(Roc { auc, eer, eer_threshold, points })
}

/// TAR at the largest threshold whose FAR is at most `far` (read off the curve).
pub fn tar_at_far(r: &Roc, far: f64) -> f64 {
    r.points.iter().filter(|p| p.far <= far).map(|p| p.tar).fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_hand_computed_curves() {
        let perfect = roc(&[(0.1, true), (0.2, true), (0.8, false), (0.9, false)]).unwrap();
        assert_eq!(perfect.auc, 1.0);
        assert_eq!(perfect.eer, 0.0);
        // Genuine 0.1, 0.5; impostor 0.3, 0.7. Pairs (g, i) with g < i: (0.1,0.3), (0.1,0.7),
        // (0.5,0.7) = 3 of 4 -> AUC 0.75.
        let r = roc(&[(0.1, true), (0.5, true), (0.3, false), (0.7, false)]).unwrap();
        assert!((r.auc - 0.75).abs() < 1e-12, "{}", r.auc);
        // FAR = FRR = 0.5 on the threshold interval (0.3, 0.5).
        assert!((r.eer - 0.5).abs() < 1e-12, "{}", r.eer);
        // Ties count half: one genuine and one impostor at the same distance.
        assert!((roc(&[(0.4, true), (0.4, false)]).unwrap().auc - 0.5).abs() < 1e-12);
        assert_eq!(tar_at_far(&r, 0.0), 0.5);
        assert!(roc(&[(0.1, true)]).is_none());
        // The same EER as `visage calibrate` on the same data (hand-computed: 1/3 at 0.4833).
        let pairs = [(0.1, true), (0.2, true), (0.6, true), (0.4, false), (0.5, false), (0.8, false), (0.9, false)];
        let r = roc(&pairs).unwrap();
        let c = visage_gallery::calibrate::calibrate(&[0.1, 0.2, 0.6], &[0.4, 0.5, 0.8, 0.9], 0.25).unwrap();
        assert!((r.eer - 1.0 / 3.0).abs() < 1e-12 && (r.eer_threshold - (0.45 + 0.1 / 3.0)).abs() < 1e-12, "{r:?}");
        assert_eq!((r.eer, r.eer_threshold), (c.eer, c.eer_threshold));
    }
}
