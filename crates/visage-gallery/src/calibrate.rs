//! Threshold calibration from genuine (same person) and impostor (different people) distances.

use serde::Serialize;

/// What the distributions say about a threshold.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// Genuine pairs measured.
    pub genuine: usize,
    /// Impostor pairs measured.
    pub impostor: usize,
    /// The false-accept rate aimed at.
    pub target_far: f64,
    /// The largest threshold whose false-accept rate is at most the target (a pair matches
    /// when its distance is strictly below the threshold).
    pub threshold: f64,
    /// False-accept rate at that threshold (impostor pairs below it).
    pub far: f64,
    /// True-accept rate at that threshold (genuine pairs below it).
    pub tar: f64,
    /// Equal error rate, and the threshold where FAR and FRR cross.
    pub eer: f64,
    /// Threshold at the EER.
    pub eer_threshold: f64,
}

/// Fraction of `sorted` strictly below `t`.
fn below(sorted: &[f64], t: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted.partition_point(|&d| d < t) as f64 / sorted.len() as f64
}

/// One point of the ROC curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RocPoint {
    /// Threshold: pairs strictly below it are accepted.
    pub threshold: f64,
    /// False-accept rate.
    pub far: f64,
    /// True-accept rate.
    pub tar: f64,
}

/// The ROC curve of genuine and impostor distances (smaller = more alike): a first point
/// accepting nothing, then one point per distinct distance, at the midpoint to the next one,
/// with every pair at or below that distance accepted (tied pairs move together). Empty
/// without pairs of both kinds.
pub fn roc_curve(genuine: &[f64], impostor: &[f64]) -> Vec<RocPoint> {
    if genuine.is_empty() || impostor.is_empty() {
        return Vec::new();
    }
    let (g, i) = (genuine.len() as f64, impostor.len() as f64);
    let mut s: Vec<(f64, bool)> = genuine.iter().map(|&d| (d, true)).chain(impostor.iter().map(|&d| (d, false))).collect();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut points = vec![RocPoint { threshold: s[0].0, far: 0.0, tar: 0.0 }];
    let (mut tp, mut fp) = (0f64, 0f64);
    let mut k = 0;
    while k < s.len() {
        let d = s[k].0;
        while k < s.len() && s[k].0 == d {
            if s[k].1 {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            k += 1;
        }
        let next = if k < s.len() { s[k].0 } else { d + 1e-9 };
        points.push(RocPoint { threshold: (d + next) / 2.0, far: fp / i, tar: tp / g });
    }
    points
}

/// The equal error rate of a ROC curve and its threshold: the first point where FAR reaches
/// FRR (= 1 - TAR), linearly interpolated between the two curve points around it. This is the
/// one EER of the project (`visage calibrate` and `visage eval` both report it).
pub fn eer(curve: &[RocPoint]) -> (f64, f64) {
    let mut out = (0.5, curve.first().map_or(0.0, |p| p.threshold));
    for w in curve.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (fa, fb) = (a.far - (1.0 - a.tar), b.far - (1.0 - b.tar));
        if fa <= 0.0 && fb >= 0.0 {
            let t = if fb - fa == 0.0 { 0.0 } else { -fa / (fb - fa) };
            let far = a.far + t * (b.far - a.far);
            let frr = (1.0 - a.tar) + t * (a.tar - b.tar);
            out = ((far + frr) / 2.0, a.threshold + t * (b.threshold - a.threshold));
            break;
        }
    }
    out
}

/// The largest threshold whose false-accept rate on `impostor` distances is at most `target`
/// (a pair matches when its distance is strictly below the threshold): the (k+1)-th smallest
/// impostor distance, k = floor(target * count); just above the largest when every impostor
/// may match. `impostor` must not be empty.
pub fn threshold_at_far(impostor: &[f64], target: f64) -> f64 {
    let mut i = impostor.to_vec();
    i.sort_by(f64::total_cmp);
    let k = (target * i.len() as f64).floor() as usize;
    if k >= i.len() {
        let max = i[i.len() - 1];
        // The next representable value above the largest distance (distances are >= 0).
        f64::from_bits(max.max(0.0).to_bits() + 1)
    } else {
        i[k]
    }
}

/// Recommends the threshold for `target_far` ([`threshold_at_far`]) and reports the rates
/// there and the EER ([`eer`]). Returns `None` without pairs of both kinds.
pub fn calibrate(genuine: &[f64], impostor: &[f64], target_far: f64) -> Option<Calibration> {
    if genuine.is_empty() || impostor.is_empty() || !(0.0..1.0).contains(&target_far) {
        return None;
    }
    let mut g: Vec<f64> = genuine.to_vec();
    let mut i: Vec<f64> = impostor.to_vec();
    g.sort_by(f64::total_cmp);
    i.sort_by(f64::total_cmp);
    let threshold = threshold_at_far(&i, target_far);
    let (eer, eer_threshold) = eer(&roc_curve(&g, &i));
    Some(Calibration {
        genuine: g.len(),
        impostor: i.len(),
        target_far,
        threshold,
        far: below(&i, threshold),
        tar: below(&g, threshold),
        eer,
        eer_threshold,
    })
}

/// An `f32` distance as the `f64` with its shortest decimal form (`0.1f32` is `0.1`, not
/// `0.10000000149011612`): thresholds read off these distances then print as the distances
/// do. The mapping keeps the order of distinct `f32`s, so no comparison changes.
pub fn distance_as_decimal(d: f32) -> f64 {
    d.to_string().parse().unwrap_or(d as f64)
}

/// Genuine and impostor distances among labelled embeddings: all same-label pairs, and
/// different-label pairs (every one, or an even sample of `max_impostors` of them), each by
/// its shortest decimal form ([`distance_as_decimal`]).
pub fn pair_distances(items: &[(usize, &[f32])], metric: visage_core::Metric, max_impostors: usize) -> (Vec<f64>, Vec<f64>) {
    let n = items.len();
    let mut genuine = Vec::new();
    let total_pairs = n * n.saturating_sub(1) / 2;
    let step = (total_pairs / max_impostors.max(1)).max(1);
    let mut impostor = Vec::new();
    let mut p = 0usize;
    for a in 0..n {
        for b in a + 1..n {
            let same = items[a].0 == items[b].0;
            if same {
                genuine.push(distance_as_decimal(metric.distance(items[a].1, items[b].1)));
            } else {
                if p.is_multiple_of(step) {
                    impostor.push(distance_as_decimal(metric.distance(items[a].1, items[b].1)));
                }
                p += 1;
            }
        }
    }
    (genuine, impostor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_for_a_known_distribution() {
        // Impostors uniform on (0, 1]: 1000 values 0.001, 0.002, ..., 1.000.
        let impostor: Vec<f64> = (1..=1000).map(|i| i as f64 / 1000.0).collect();
        // Genuine uniform on [0, 0.5): 0.0, 0.005, ..., 0.495.
        let genuine: Vec<f64> = (0..100).map(|i| i as f64 / 200.0).collect();
        let c = calibrate(&genuine, &impostor, 0.01).unwrap();
        // 10 impostors (0.001..0.010) may fall below the threshold: t = 0.011.
        assert!((c.threshold - 0.011).abs() < 1e-12, "{}", c.threshold);
        assert!((c.far - 0.010).abs() < 1e-12);
        // Genuine below 0.011: 0.000, 0.005 and 0.010 -> 3 of 100.
        assert!((c.tar - 0.03).abs() < 1e-12);
        // FAR(t) = t, FRR(t) = 1 - 2t: equal at t = 1/3, EER = 1/3.
        assert!((c.eer - 1.0 / 3.0).abs() < 0.01, "{}", c.eer);
        assert!((c.eer_threshold - 1.0 / 3.0).abs() < 0.01);
        assert!(calibrate(&genuine, &impostor, 1.0).is_none());
        // A looser target never gives a stricter threshold.
        assert!(calibrate(&genuine, &impostor, 0.1).unwrap().threshold > c.threshold);
        assert!(calibrate(&[], &impostor, 0.1).is_none());
    }

    #[test]
    fn eer_and_threshold_at_far_by_hand() {
        // Genuine 0.1 0.2 0.6, impostor 0.4 0.5 0.8 0.9. Curve (threshold, FAR, TAR):
        // (0.1, 0, 0) (0.15, 0, 1/3) (0.3, 0, 2/3) (0.45, 1/4, 2/3) (0.55, 1/2, 2/3) ...
        // FAR - FRR goes from 1/4 - 1/3 = -1/12 at 0.45 to 1/2 - 1/3 = 1/6 at 0.55: it is 0 a
        // third of the way, at threshold 0.48333, where FAR = 1/4 + 1/12 = 1/3 = FRR.
        let (g, i) = ([0.1, 0.2, 0.6], [0.4, 0.5, 0.8, 0.9]);
        let curve = roc_curve(&g, &i);
        assert_eq!(curve.len(), 8);
        assert_eq!((curve[3].far, curve[3].tar), (0.25, 2.0 / 3.0));
        let (e, t) = eer(&curve);
        assert!((e - 1.0 / 3.0).abs() < 1e-12, "{e}");
        assert!((t - (0.45 + 0.1 / 3.0)).abs() < 1e-12, "{t}");
        let c = calibrate(&g, &i, 0.25).unwrap();
        assert_eq!((c.eer, c.eer_threshold), (e, t));
        // FAR <= 0.25 of 4 impostors: one may match, so the threshold is the second, 0.5.
        assert_eq!(c.threshold, 0.5);
        assert_eq!((c.far, c.tar), (0.25, 2.0 / 3.0));
        assert_eq!(threshold_at_far(&i, 0.0), 0.4);
        assert!(threshold_at_far(&i, 1.0) > 0.9 && threshold_at_far(&i, 1.0) < 0.9 + 1e-12);
        // Perfect separation: EER 0.
        assert_eq!(eer(&roc_curve(&[0.1, 0.2], &[0.8, 0.9])).0, 0.0);
    }

    #[test]
    fn pairs_split_by_label() {
        let a = [0.0f32, 0.0];
        let b = [3.0f32, 4.0];
        let c = [0.0f32, 1.0];
        let items = [(0usize, &a[..]), (0, &c[..]), (1, &b[..])];
        let (g, i) = pair_distances(&items, visage_core::Metric::L2, 100);
        assert_eq!(g, vec![1.0]);
        let mut i = i;
        i.sort_by(f64::total_cmp);
        assert_eq!(i.len(), 2);
        assert!((i[0] - 18f64.sqrt()).abs() < 1e-6 && (i[1] - 5.0).abs() < 1e-6);
        // Distances are the f32's decimal, so a threshold read off them is too.
        let (x, y) = ([0.0f32], [0.1f32]);
        let (g, _) = pair_distances(&[(0, &x[..]), (0, &y[..])], visage_core::Metric::L2, 100);
        assert_eq!(g, vec![0.1]);
        assert_eq!(threshold_at_far(&[distance_as_decimal(0.622_486_5)], 0.0).to_string(), "0.6224865");
    }

    #[test]
    fn decimals_keep_the_order_of_f32s() {
        let mut x = 0.6224f32;
        for _ in 0..10_000 {
            let next = f32::from_bits(x.to_bits() + 1);
            assert!(distance_as_decimal(x) < distance_as_decimal(next), "{x} {next}");
            assert!((x as f64) < distance_as_decimal(next) && distance_as_decimal(x) < next as f64);
            x = next;
        }
    }
}
