//! Batch statistics to log during triplet training.
//!
//! The signal that training has collapsed to a constant embedding: the mean positive and
//! negative distances both fall towards 0 and the loss sticks at the margin. The active-triplet
//! fraction says how much of the batch still teaches anything.

/// What one batch of triplet training looked like.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TripletStats {
    /// The loss (reduced as configured).
    pub loss: f32,
    /// Triplets (or anchors, or pairs) the mining strategy considered.
    pub candidates: usize,
    /// Triplets the loss was computed on.
    pub triplets: usize,
    /// Of those, the ones with a positive loss.
    pub active: usize,
    /// Mean distance over every positive pair of the batch (same identity, distinct rows).
    pub mean_positive: f32,
    /// Mean distance over every negative pair of the batch.
    pub mean_negative: f32,
}

impl TripletStats {
    /// `active / candidates` (0 for an empty batch).
    pub fn active_fraction(&self) -> f32 {
        if self.candidates == 0 {
            0.0
        } else {
            self.active as f32 / self.candidates as f32
        }
    }
}

/// Mean positive-pair and negative-pair distances of a batch (`dist` `n x n`, row-major).
pub fn pair_means(dist: &[f32], labels: &[usize]) -> (f32, f32) {
    let n = labels.len();
    let (mut pos, mut npos, mut neg, mut nneg) = (0f64, 0usize, 0f64, 0usize);
    for i in 0..n {
        for j in 0..n {
            if i == j {
                continue;
            }
            if labels[i] == labels[j] {
                pos += dist[i * n + j] as f64;
                npos += 1;
            } else {
                neg += dist[i * n + j] as f64;
                nneg += 1;
            }
        }
    }
    let mean = |s: f64, c: usize| if c == 0 { 0.0 } else { (s / c as f64) as f32 };
    (mean(pos, npos), mean(neg, nneg))
}
