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

/// Recommends the threshold for `target_far`: the largest `t` such that at most
/// `floor(target_far * impostors)` impostor distances are strictly below it, i.e. the
/// (k+1)-th smallest impostor distance. Returns `None` without pairs of both kinds.
pub fn calibrate(genuine: &[f64], impostor: &[f64], target_far: f64) -> Option<Calibration> {
    if genuine.is_empty() || impostor.is_empty() || !(0.0..1.0).contains(&target_far) {
        return None;
    }
    let mut g: Vec<f64> = genuine.to_vec();
    let mut i: Vec<f64> = impostor.to_vec();
    g.sort_by(f64::total_cmp);
    i.sort_by(f64::total_cmp);
    let k = (target_far * i.len() as f64).floor() as usize;
    let threshold = if k >= i.len() { i[i.len() - 1] + f64::EPSILON } else { i[k] };
    // Equal error rate: scan the candidate thresholds (every observed distance).
    let mut best = (f64::INFINITY, 0.0, 0.0);
    for &t in g.iter().chain(&i) {
        let far = below(&i, t);
        let frr = 1.0 - below(&g, t);
        let gap = (far - frr).abs();
        if gap < best.0 {
            best = (gap, (far + frr) / 2.0, t);
        }
    }
    Some(Calibration {
        genuine: g.len(),
        impostor: i.len(),
        target_far,
        threshold,
        far: below(&i, threshold),
        tar: below(&g, threshold),
        eer: best.1,
        eer_threshold: best.2,
    })
}

/// Genuine and impostor distances among labelled embeddings: all same-label pairs, and
/// different-label pairs (every one, or an even sample of `max_impostors` of them).
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
                genuine.push(metric.distance(items[a].1, items[b].1) as f64);
            } else {
                if p.is_multiple_of(step) {
                    impostor.push(metric.distance(items[a].1, items[b].1) as f64);
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
        // A looser target never gives a stricter threshold.
        assert!(calibrate(&genuine, &impostor, 0.1).unwrap().threshold > c.threshold);
        assert!(calibrate(&[], &impostor, 0.1).is_none());
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
    }
}
