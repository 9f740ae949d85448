//! ROC curve, AUC and EER over scored pairs (smaller distance = more alike).

use serde::Serialize;

/// One point of the ROC curve.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RocPoint {
    /// Threshold: pairs strictly below it are accepted.
    pub threshold: f64,
    /// False-accept rate.
    pub far: f64,
    /// True-accept rate.
    pub tar: f64,
}

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

/// Computes the ROC of `(distance, same)` pairs. Needs both kinds of pairs.
pub fn roc(pairs: &[(f64, bool)]) -> Option<Roc> {
    let g = pairs.iter().filter(|p| p.1).count() as f64;
    let i = pairs.len() as f64 - g;
    if g == 0.0 || i == 0.0 {
        return None;
    }
    let mut s = pairs.to_vec();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut points = vec![RocPoint { threshold: s[0].0, far: 0.0, tar: 0.0 }];
    let (mut tp, mut fp) = (0f64, 0f64);
    let mut auc = 0.0;
    let mut k = 0;
    while k < s.len() {
        // All pairs at this exact distance move together (ties).
        let d = s[k].0;
        let (mut dg, mut di) = (0f64, 0f64);
        while k < s.len() && s[k].0 == d {
            if s[k].1 {
                dg += 1.0;
            } else {
                di += 1.0;
            }
            k += 1;
        }
        // Trapezoid in (FAR, TAR): impostors accepted at this step times the mean TAR.
        auc += (di / i) * ((tp + tp + dg) / 2.0 / g);
        tp += dg;
        fp += di;
        let next = if k < s.len() { s[k].0 } else { d + 1e-9 };
        points.push(RocPoint { threshold: (d + next) / 2.0, far: fp / i, tar: tp / g });
    }
    // EER: first crossing of FAR and FRR = 1 - TAR, interpolated between points.
    let mut eer = (0.5, points[0].threshold);
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (fa, fb) = (a.far - (1.0 - a.tar), b.far - (1.0 - b.tar));
        if fa <= 0.0 && fb >= 0.0 {
            let t = if fb - fa == 0.0 { 0.0 } else { -fa / (fb - fa) };
            let far = a.far + t * (b.far - a.far);
            let frr = (1.0 - a.tar) + t * (a.tar - b.tar);
            eer = ((far + frr) / 2.0, a.threshold + t * (b.threshold - a.threshold));
            break;
        }
    }
    Some(Roc { auc, eer: eer.0, eer_threshold: eer.1, points })
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
    }
}
