//! The triplet loss of a whole P x K batch: distances, online mining, hinge, statistics.

use crate::distance::{pairwise, Metric};
use crate::losses::{triplet_hinge, Reduction};
use crate::mining::{mine, Mining, Triplet};
use crate::stats::{pair_means, TripletStats};
use crate::tensors::{indices, values};
use burn::tensor::Tensor;

/// Triplet loss with online mining, `max(d(a,p) - d(a,n) + margin, 0)` over the mined
/// triplets of each batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TripletLoss {
    /// Alpha. With L2-normalised embeddings squared distances lie in `[0, 4]` and 0.2 fits
    /// (FaceNet); unnormalised embeddings need a margin on their own scale.
    pub margin: f64,
    /// The distance the hinge is on.
    pub metric: Metric,
    /// Which triplets the loss uses.
    pub mining: Mining,
    /// Mean over the mined triplets, or their sum.
    pub reduction: Reduction,
}

impl Default for TripletLoss {
    /// FaceNet's: squared distances, margin 0.2, semi-hard negatives, mean.
    fn default() -> Self {
        TripletLoss { margin: 0.2, metric: Metric::SquaredL2, mining: Mining::SemiHard, reduction: Reduction::Mean }
    }
}

/// One batch's triplet loss, with what was mined and the statistics to log.
#[derive(Debug)]
pub struct TripletOutput {
    /// The loss, one element, differentiable with respect to the embeddings.
    pub loss: Tensor<1>,
    /// The triplets it was computed on.
    pub triplets: Vec<Triplet>,
    /// The batch's statistics.
    pub stats: TripletStats,
}

impl TripletLoss {
    /// The loss on `embeddings` (`[n, d]`) whose rows have identities `labels`.
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[usize]) -> TripletOutput {
        let [n, _] = embeddings.dims();
        assert_eq!(labels.len(), n, "{} labels for {n} embeddings", labels.len());
        let device = embeddings.device();
        let dist = pairwise(embeddings, self.metric);
        let dist_values = values(dist.clone().detach());
        let mined = mine(&dist_values, labels, self.margin as f32, self.mining);
        let (mean_positive, mean_negative) = pair_means(&dist_values, labels);
        let margin = self.margin as f32;
        let hinge_value = |t: &Triplet| dist_values[t.anchor * n + t.positive] - dist_values[t.anchor * n + t.negative] + margin;
        let active = mined.triplets.iter().filter(|t| hinge_value(t) > 0.0).count();
        let loss = if mined.triplets.is_empty() {
            // Still connected to the graph: backward works and gives zero gradients.
            dist.sum().mul_scalar(0.0)
        } else {
            let flat = dist.reshape([n * n]);
            let ap: Vec<usize> = mined.triplets.iter().map(|t| t.anchor * n + t.positive).collect();
            let an: Vec<usize> = mined.triplets.iter().map(|t| t.anchor * n + t.negative).collect();
            let d_ap = flat.clone().select(0, indices(&ap, &device));
            let d_an = flat.select(0, indices(&an, &device));
            self.reduction.apply(triplet_hinge(d_ap, d_an, self.margin))
        };
        let stats = TripletStats {
            loss: values(loss.clone().detach())[0],
            candidates: mined.candidates,
            triplets: mined.triplets.len(),
            active,
            mean_positive,
            mean_negative,
        };
        TripletOutput { loss, triplets: mined.triplets, stats }
    }
}
