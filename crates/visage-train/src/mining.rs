//! Online triplet mining inside a P x K mini-batch.
//!
//! Selection runs on the batch's detached distance matrix (plain `f32`, `n x n`, a few
//! thousand values): only the chosen `(anchor, positive, negative)` index triples enter the
//! autodiff graph (see [`crate::triplet`]), so no mask, and no infinity, ever reaches a
//! gradient. Ties go to the lowest index, so a batch always mines the same triplets.

/// Which triplets of a batch the loss is computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mining {
    /// For every anchor with a positive and a negative in the batch: its farthest positive and
    /// its closest negative (Hermans et al. 2017), one triplet per anchor, active or not.
    BatchHard,
    /// Every valid triplet whose loss is positive (`d(a,p) - d(a,n) + margin > 0`).
    BatchAll,
    /// FaceNet's semi-hard negatives (Schroff et al. 2015): every positive pair `(a, p)`, with
    /// the closest negative that is farther than the positive but inside the margin,
    /// `d(a,p) < d(a,n) < d(a,p) + margin`. A pair with no such negative is left out (it has
    /// either only easy negatives, loss 0, or only hard ones, which FaceNet avoids because
    /// they can collapse the model early in training).
    SemiHard,
}

/// One triplet, as row indices into the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Triplet {
    /// The anchor's row.
    pub anchor: usize,
    /// A row of the anchor's identity (never the anchor itself).
    pub positive: usize,
    /// A row of another identity.
    pub negative: usize,
}

impl Triplet {
    /// `(anchor, positive, negative)`.
    pub const fn new(anchor: usize, positive: usize, negative: usize) -> Self {
        Triplet { anchor, positive, negative }
    }
}

/// What mining chose from a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mined {
    /// The triplets the loss is computed on.
    pub triplets: Vec<Triplet>,
    /// How many the strategy considered: anchors with a positive and a negative (batch-hard),
    /// valid triplets (batch-all), positive pairs with a negative (semi-hard). The
    /// active-triplet fraction is measured against it.
    pub candidates: usize,
}

/// Mines `dist` (`n x n`, row-major, the batch's distances under the loss's metric) with
/// `labels` (one identity per row) and `margin`.
pub fn mine(dist: &[f32], labels: &[usize], margin: f32, mining: Mining) -> Mined {
    let n = labels.len();
    assert_eq!(dist.len(), n * n, "a {n} x {n} distance matrix, got {} values", dist.len());
    let d = |i: usize, j: usize| dist[i * n + j];
    let positives = |a: usize| (0..n).filter(move |&j| j != a && labels[j] == labels[a]);
    let negatives = |a: usize| (0..n).filter(move |&j| labels[j] != labels[a]);
    let mut triplets = Vec::new();
    let mut candidates = 0;
    for a in 0..n {
        match mining {
            Mining::BatchHard => {
                // Strict comparisons over ascending indices: ties keep the lowest index.
                let hardest_p = positives(a).fold(None, |best: Option<usize>, j| match best {
                    Some(b) if d(a, j) <= d(a, b) => Some(b),
                    _ => Some(j),
                });
                let hardest_n = negatives(a).fold(None, |best: Option<usize>, j| match best {
                    Some(b) if d(a, j) >= d(a, b) => Some(b),
                    _ => Some(j),
                });
                if let (Some(p), Some(ng)) = (hardest_p, hardest_n) {
                    candidates += 1;
                    triplets.push(Triplet::new(a, p, ng));
                }
            }
            Mining::BatchAll => {
                for p in positives(a) {
                    for ng in negatives(a) {
                        candidates += 1;
                        if d(a, p) - d(a, ng) + margin > 0.0 {
                            triplets.push(Triplet::new(a, p, ng));
                        }
                    }
                }
            }
            Mining::SemiHard => {
                if negatives(a).next().is_none() {
                    continue;
                }
                for p in positives(a) {
                    candidates += 1;
                    let dap = d(a, p);
                    let semi_hard = negatives(a).filter(|&j| dap < d(a, j) && d(a, j) < dap + margin);
                    let closest = semi_hard.fold(None, |best: Option<usize>, j| match best {
                        Some(b) if d(a, j) >= d(a, b) => Some(b),
                        _ => Some(j),
                    });
                    if let Some(ng) = closest {
                        triplets.push(Triplet::new(a, p, ng));
                    }
                }
            }
        }
    }
    Mined { triplets, candidates }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singletons_and_one_identity_mine_nothing() {
        // Rows 0 and 1 are one person, row 2 another with no positive: 2 is never an anchor.
        let dist = [0.0, 1.0, 4.0, 1.0, 0.0, 2.0, 4.0, 2.0, 0.0];
        let hard = mine(&dist, &[0, 0, 1], 0.5, Mining::BatchHard);
        assert_eq!(hard.triplets, vec![Triplet::new(0, 1, 2), Triplet::new(1, 0, 2)]);
        assert_eq!(hard.candidates, 2);
        for m in [Mining::BatchHard, Mining::BatchAll, Mining::SemiHard] {
            let one = mine(&dist, &[3, 3, 3], 0.5, m);
            assert!(one.triplets.is_empty() && one.candidates == 0, "{m:?}");
        }
    }
}
