//! Presentation-attack detection metrics as ISO/IEC 30107-3 defines them. Scores are
//! live-ness (higher = more live); a presentation is accepted as live when its score is
//! strictly above the threshold. The ROC, EER and threshold-at-rate come from
//! `visage_gallery::calibrate` (the project's one implementation), fed with distances
//! `-score`, so that "distance strictly below T" is "score strictly above -T".

use serde::Serialize;
use visage_gallery::calibrate::{eer, roc_curve, threshold_at_far, RocPoint};

/// The error rate of one attack type at a threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttackRate {
    /// The attack type (`print` on NUAA).
    pub attack: String,
    /// Attack presentations of this type judged.
    pub count: usize,
    /// Share of them accepted as live.
    pub apcer: f64,
}

/// Error rates at one threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PadRates {
    /// The threshold (live when the score is above it).
    pub threshold: f64,
    /// APCER per attack type.
    pub per_attack: Vec<AttackRate>,
    /// The worst attack type's APCER (the figure ISO/IEC 30107-3 reports).
    pub apcer: f64,
    /// Share of bona fide (live) presentations rejected.
    pub bpcer: f64,
    /// `(APCER + BPCER) / 2`.
    pub acer: f64,
}

/// Rates at `threshold` for bona fide scores `live` and attack scores by type.
pub fn rates(live: &[f64], attacks: &[(String, Vec<f64>)], threshold: f64) -> PadRates {
    let share =
        |v: &[f64], f: &dyn Fn(f64) -> bool| if v.is_empty() { 0.0 } else { v.iter().filter(|&&s| f(s)).count() as f64 / v.len() as f64 };
    let per_attack: Vec<AttackRate> =
        attacks.iter().map(|(name, s)| AttackRate { attack: name.clone(), count: s.len(), apcer: share(s, &|x| x > threshold) }).collect();
    let apcer = per_attack.iter().map(|a| a.apcer).fold(0.0, f64::max);
    let bpcer = share(live, &|x| x <= threshold);
    PadRates { threshold, per_attack, apcer, bpcer, acer: (apcer + bpcer) / 2.0 }
}

fn negated(v: &[f64]) -> Vec<f64> {
    v.iter().map(|s| -s).collect()
}

/// The ROC of live (genuine) against attack (impostor) scores, as distance `-score`: `far` is
/// APCER and `1 - tar` BPCER at live threshold `-threshold`.
pub fn roc(live: &[f64], attack: &[f64]) -> Vec<RocPoint> {
    roc_curve(&negated(live), &negated(attack))
}

/// The equal error rate (APCER = BPCER) and the live-score threshold where it falls.
pub fn equal_error(live: &[f64], attack: &[f64]) -> (f64, f64) {
    let (e, t) = eer(&roc(live, attack));
    (e, -t)
}

/// The lowest threshold whose APCER on `attack` scores is at most `target` (the operating
/// point of BPCER20 for target 0.05, BPCER100 for 0.01). `attack` must not be empty.
pub fn threshold_at_apcer(attack: &[f64], target: f64) -> f64 {
    -threshold_at_far(&negated(attack), target)
}

/// The threshold with the lowest ACER on these scores (ties: the first, lowest APCER), at
/// the midpoint between neighbouring scores. `None` without scores of both kinds.
pub fn min_acer_threshold(live: &[f64], attack: &[f64]) -> Option<f64> {
    let curve = roc(live, attack);
    curve.iter().map(|p| ((p.far + 1.0 - p.tar) / 2.0, -p.threshold)).min_by(|a, b| a.0.total_cmp(&b.0)).map(|(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_by_hand() {
        // 4 live scores, 2 attack types. Threshold 0.5: live 0.2 and 0.5 rejected (0.5 is not
        // above it) -> BPCER 2/4; print 0.7 accepted of 0.1, 0.3, 0.7, 0.4 -> 1/4; replay 0.9
        // and 0.6 accepted of three -> 2/3, the worst. ACER = (2/3 + 1/2) / 2 = 7/12.
        let live = [0.2, 0.5, 0.8, 0.95];
        let attacks = vec![("print".to_string(), vec![0.1, 0.3, 0.7, 0.4]), ("replay".to_string(), vec![0.9, 0.6, 0.05])];
        let r = rates(&live, &attacks, 0.5);
        assert_eq!(r.per_attack[0].apcer, 0.25);
        assert!((r.per_attack[1].apcer - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.apcer - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.bpcer, 0.5);
        assert!((r.acer - 7.0 / 12.0).abs() < 1e-12);
    }

    #[test]
    fn operating_points_by_hand() {
        let live = [0.6, 0.7, 0.8, 0.9];
        let attack = [0.1, 0.2, 0.3, 0.65];
        // APCER <= 25%: one of four attacks may pass; the threshold is the second-highest attack
        // score, 0.3 (0.65 passes, 0.3 does not: it is not above).
        let t = threshold_at_apcer(&attack, 0.25);
        assert_eq!(t, 0.3);
        assert_eq!(rates(&live, &[("print".into(), attack.to_vec())], t).apcer, 0.25);
        // APCER <= 0: above every attack.
        let t0 = threshold_at_apcer(&attack, 0.0);
        assert!(t0 >= 0.65 && rates(&live, &[("print".into(), attack.to_vec())], t0).apcer == 0.0);
        // The best ACER is 1/8, reached twice: between 0.65 and 0.7 (APCER 0, BPCER 1/4: the
        // 0.6) and between 0.3 and 0.6 (APCER 1/4, BPCER 0); the higher threshold (lower
        // APCER) comes first and wins.
        let best = min_acer_threshold(&live, &attack).unwrap();
        let r = rates(&live, &[("print".into(), attack.to_vec())], best);
        assert!((r.acer - 0.125).abs() < 1e-12, "{r:?}");
        assert!(best > 0.65 && best < 0.7 && r.apcer == 0.0, "{best}");
        // EER: APCER = BPCER = 1/4 between the crossing scores.
        let (e, _) = equal_error(&live, &attack);
        assert!((e - 0.25).abs() < 1e-12, "{e}");
        // Separable scores: no error.
        assert_eq!(equal_error(&[0.9, 0.8], &[0.1, 0.2]).0, 0.0);
    }
}
