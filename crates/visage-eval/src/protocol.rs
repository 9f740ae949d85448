//! The k-fold verification protocol (LFW View 2: 10 folds of 300 genuine + 300 impostor pairs).
//!
//! A pair is declared "same person" when its distance is **strictly below** the threshold.

use serde::Serialize;

/// One scored pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Distance between the two faces.
    pub distance: f64,
    /// Ground truth: the same person?
    pub same: bool,
    /// Fold index.
    pub fold: usize,
}

/// Results on one test fold.
#[derive(Debug, Clone, Serialize)]
pub struct FoldResult {
    /// The threshold chosen on the other folds (best accuracy there).
    pub threshold: f64,
    /// Accuracy on this fold at that threshold.
    pub accuracy: f64,
    /// Threshold chosen on the other folds for the target FAR.
    pub val_threshold: f64,
    /// True-accept rate on this fold at `val_threshold`.
    pub val: f64,
    /// False-accept rate on this fold at `val_threshold`.
    pub far: f64,
}

/// Summary over the folds.
#[derive(Debug, Clone, Serialize)]
pub struct Protocol {
    /// Per fold.
    pub folds: Vec<FoldResult>,
    /// Mean accuracy.
    pub accuracy_mean: f64,
    /// Standard deviation of the accuracy over folds (population, as FaceNet and InsightFace report).
    pub accuracy_std: f64,
    /// Mean of the chosen thresholds.
    pub threshold_mean: f64,
    /// The FAR that VAL is measured at.
    pub target_far: f64,
    /// Mean VAL.
    pub val_mean: f64,
    /// Its standard deviation.
    pub val_std: f64,
    /// Mean FAR actually reached on the test folds.
    pub far_mean: f64,
}

fn accuracy(pairs: &[(f64, bool)], t: f64) -> f64 {
    let correct = pairs.iter().filter(|(d, same)| (*d < t) == *same).count();
    correct as f64 / pairs.len() as f64
}

/// The threshold with the best accuracy on `train`. Candidates are the midpoints between
/// consecutive distinct distances (plus one below and one above them all); among equally good
/// candidates the middle one is taken.
pub fn best_threshold(train: &[(f64, bool)]) -> f64 {
    assert!(!train.is_empty(), "no training pairs");
    let mut d: Vec<f64> = train.iter().map(|p| p.0).collect();
    d.sort_by(f64::total_cmp);
    d.dedup();
    let mut candidates = Vec::with_capacity(d.len() + 1);
    candidates.push(d[0] - 1.0);
    candidates.extend(d.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    candidates.push(d[d.len() - 1] + 1.0);
    // Sweep: counts of genuine below and impostors at or above each candidate.
    let mut sorted: Vec<(f64, bool)> = train.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let impostors = sorted.iter().filter(|p| !p.1).count();
    let (mut i, mut genuine_below, mut impostor_below) = (0usize, 0usize, 0usize);
    let mut best = (0usize, Vec::new());
    for &t in &candidates {
        while i < sorted.len() && sorted[i].0 < t {
            if sorted[i].1 {
                genuine_below += 1;
            } else {
                impostor_below += 1;
            }
            i += 1;
        }
        let correct = genuine_below + (impostors - impostor_below);
        if correct > best.0 {
            best = (correct, vec![t]);
        } else if correct == best.0 {
            best.1.push(t);
        }
    }
    best.1[best.1.len() / 2]
}

/// The largest threshold whose FAR on `impostor` distances is at most `target`: the
/// (k+1)-th smallest impostor distance, k = floor(target * count) (the gallery's calibration
/// computes it, so `visage calibrate` and `visage eval` agree).
pub use visage_gallery::calibrate::threshold_at_far;

/// Runs the protocol over `folds` folds: thresholds are always chosen on the other folds.
pub fn evaluate(pairs: &[Scored], folds: usize, target_far: f64) -> Protocol {
    evaluate_per_fold(folds, target_far, |k| {
        let split = |test: bool| pairs.iter().filter(|p| (p.fold == k) == test).map(|p| (p.distance, p.same)).collect();
        (split(false), split(true))
    })
}

/// The protocol when the scores themselves depend on the test fold, as when a model (a
/// Siamese head) is trained for each test fold on the other folds: `score_fold(k)` gives the
/// training pairs' and the test pairs' scores `(distance-like score, same)` for test fold `k`,
/// both computed by what was trained without fold `k`. The threshold is chosen on the
/// training scores, as in [`evaluate`].
pub fn evaluate_per_fold(
    folds: usize,
    target_far: f64,
    mut score_fold: impl FnMut(usize) -> (Vec<(f64, bool)>, Vec<(f64, bool)>),
) -> Protocol {
    assert!(folds >= 2, "need at least 2 folds");
    let mut results = Vec::with_capacity(folds);
    for k in 0..folds {
        let (train, test) = score_fold(k);
        assert!(!test.is_empty() && !train.is_empty(), "fold {k} is empty");
        let threshold = best_threshold(&train);
        let train_impostors: Vec<f64> = train.iter().filter(|p| !p.1).map(|p| p.0).collect();
        let val_threshold = threshold_at_far(&train_impostors, target_far);
        let rate = |same: bool| {
            let v: Vec<&(f64, bool)> = test.iter().filter(|p| p.1 == same).collect();
            if v.is_empty() {
                0.0
            } else {
                v.iter().filter(|p| p.0 < val_threshold).count() as f64 / v.len() as f64
            }
        };
        results.push(FoldResult { threshold, accuracy: accuracy(&test, threshold), val_threshold, val: rate(true), far: rate(false) });
    }
    let mean = |f: &dyn Fn(&FoldResult) -> f64| results.iter().map(f).sum::<f64>() / folds as f64;
    let std = |f: &dyn Fn(&FoldResult) -> f64, m: f64| (results.iter().map(|r| (f(r) - m).powi(2)).sum::<f64>() / folds as f64).sqrt();
    let accuracy_mean = mean(&|r| r.accuracy);
    let val_mean = mean(&|r| r.val);
    Protocol {
        accuracy_std: std(&|r| r.accuracy, accuracy_mean),
        threshold_mean: mean(&|r| r.threshold),
        val_std: std(&|r| r.val, val_mean),
        far_mean: mean(&|r| r.far),
        accuracy_mean,
        val_mean,
        target_far,
        folds: results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_threshold_by_hand() {
        // Genuine at 0.2, 0.4, 0.7; impostors at 0.5, 0.8, 0.9.
        // t in (0.4, 0.5): 2 + 3 = 5 correct; t in (0.7, 0.8): 3 + 2 = 5 correct; others fewer.
        // Candidates with 5: 0.45 and 0.75 -> the middle of [0.45, 0.75] is index 1 -> 0.75.
        let train = [(0.2, true), (0.4, true), (0.7, true), (0.5, false), (0.8, false), (0.9, false)];
        assert!((best_threshold(&train) - 0.75).abs() < 1e-12);
        // A perfectly separable set: the only best candidate is the gap midpoint.
        assert!((best_threshold(&[(0.1, true), (0.3, true), (0.6, false)]) - 0.45).abs() < 1e-12);
    }

    /// 10 folds of one genuine and one impostor pair. Folds 0-8 are separable at any threshold
    /// in (0.5, 0.7): genuine 0.3 + 0.02k, impostor 0.9 - 0.02k; fold 9 holds genuine 0.72 and
    /// impostor 0.55, both on the wrong side of that gap.
    fn ten_folds() -> Vec<Scored> {
        let mut v = Vec::new();
        for k in 0..9 {
            v.push(Scored { distance: 0.3 + 0.02 * k as f64, same: true, fold: k });
            v.push(Scored { distance: 0.9 - 0.02 * k as f64, same: false, fold: k });
        }
        v.push(Scored { distance: 0.72, same: true, fold: 9 });
        v.push(Scored { distance: 0.55, same: false, fold: 9 });
        v
    }

    #[test]
    fn the_threshold_comes_from_the_other_nine_folds() {
        let p = evaluate(&ten_folds(), 10, 0.1);
        // Testing fold 9: trained on folds 0-8 only: genuine max 0.46, impostor min 0.74; the
        // best training accuracy (100%) holds for every candidate in the gap, the only one
        // being the midpoint 0.60. On fold 9, 0.72 (genuine) is not below 0.60 and 0.55
        // (impostor) is: both wrong.
        assert!((p.folds[9].threshold - 0.60).abs() < 1e-12, "{}", p.folds[9].threshold);
        assert_eq!(p.folds[9].accuracy, 0.0);
        // Testing fold 0: training includes fold 9's pairs. Genuine: 0.32..0.46 and 0.72;
        // impostor: 0.55, 0.74..0.88. t in (0.46, 0.55): 8 + 9 = 17 of 18; t in (0.55, 0.72):
        // 8 + 8 = 16; t in (0.72, 0.74): 9 + 8 = 17. The tied best candidates are the midpoints
        // {0.505, 0.73}; the middle one (index 1) is 0.73. Fold 0 (0.30 genuine, 0.90
        // impostor) is then fully right.
        assert!((p.folds[0].threshold - 0.73).abs() < 1e-12, "{}", p.folds[0].threshold);
        assert_eq!(p.folds[0].accuracy, 1.0);
        // Mean accuracy: 9 folds right, fold 9 wrong.
        assert!((p.accuracy_mean - 0.9).abs() < 1e-12);
        assert!((p.accuracy_std - 0.3).abs() < 1e-12);
    }

    #[test]
    fn val_at_far_uses_the_training_impostors() {
        // 10 training impostors 0.1..1.0 (step 0.1): FAR <= 0.1 allows k = 1 below -> t = 0.2.
        let imp: Vec<f64> = (1..=10).map(|i| i as f64 / 10.0).collect();
        assert!((threshold_at_far(&imp, 0.1) - 0.2).abs() < 1e-12);
        assert!((threshold_at_far(&imp, 0.0) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn per_fold_scores_are_asked_for_each_test_fold_and_never_mixed() {
        // A scorer that depends on the test fold: for test fold k it scores every pair as
        // |k - fold| (training pairs) or by the pair's own truth (test pairs).
        let mut asked = Vec::new();
        let p = evaluate_per_fold(3, 0.5, |k| {
            asked.push(k);
            let train = vec![(0.1, true), (0.9, false), (0.2 + k as f64, true), (5.0, false)];
            let test = vec![(0.0, true), (10.0, false)];
            (train, test)
        });
        assert_eq!(asked, vec![0, 1, 2]);
        assert!(p.folds.iter().all(|f| f.accuracy == 1.0));
        // Fold 0's training distances: genuine 0.1, 0.2; impostor 0.9, 5.0 -> the only best
        // threshold is the gap's midpoint 0.55; fold 2's: genuine 0.1, 2.2; impostors 0.9, 5.0
        // -> best 3 of 4 at midpoints 0.5 (below 0.9) and 3.6 (between 2.2 and 5): tied; the
        // middle one (index 1) is 3.6.
        assert!((p.folds[0].threshold - 0.55).abs() < 1e-12);
        assert!((p.folds[2].threshold - 3.6).abs() < 1e-12, "{}", p.folds[2].threshold);
        // The fixed-score protocol is the per-fold one with fold-independent scores.
        let fixed = evaluate(&ten_folds(), 10, 0.1);
        let v = ten_folds();
        let per = evaluate_per_fold(10, 0.1, |k| {
            let s = |t: bool| v.iter().filter(|p| (p.fold == k) == t).map(|p| (p.distance, p.same)).collect();
            (s(false), s(true))
        });
        assert_eq!(format!("{:?}", fixed.folds), format!("{:?}", per.folds));
    }
}
