//! Loss functions: the triplet hinge, softmax cross-entropy over identities, and binary
//! cross-entropy from logits.

use crate::distance::{rowwise, Metric};
use crate::tensors::indices;
use burn::tensor::activation::{log_sigmoid, log_softmax, relu};
use burn::tensor::Tensor;

/// How per-example losses are combined into one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The mean over the examples (triplets, pairs, photos) that were used.
    #[default]
    Mean,
    /// Their sum.
    Sum,
}

impl Reduction {
    /// `losses` reduced to one element.
    pub fn apply(self, losses: Tensor<1>) -> Tensor<1> {
        match self {
            Reduction::Mean => losses.mean(),
            Reduction::Sum => losses.sum(),
        }
    }
}

/// The triplet hinge per triplet, `max(d(a,p) - d(a,n) + margin, 0)`, from the anchor-positive
/// and anchor-negative distances (`[t]` each).
pub fn triplet_hinge(d_ap: Tensor<1>, d_an: Tensor<1>, margin: f64) -> Tensor<1> {
    relu((d_ap - d_an).add_scalar(margin))
}

/// FaceNet's triplet loss on explicit triplets (rows of `anchor`, `positive`, `negative`, each
/// `[t, d]`): `max(|a-p|^2 - |a-n|^2 + margin, 0)` with [`Metric::SquaredL2`], reduced.
/// Its gradient with respect to an active anchor is `2 (n - p)` (squared distances).
pub fn triplet_loss(
    anchor: Tensor<2>,
    positive: Tensor<2>,
    negative: Tensor<2>,
    margin: f64,
    metric: Metric,
    reduction: Reduction,
) -> Tensor<1> {
    let d_ap = rowwise(anchor.clone(), positive, metric);
    let d_an = rowwise(anchor, negative, metric);
    reduction.apply(triplet_hinge(d_ap, d_an, margin))
}

/// Softmax cross-entropy over identities: `logits` `[b, classes]` (the classifier on top of the
/// embedding, DeepFace's F8 on F7), `labels` the identity of each row. Computed with
/// `log_softmax` (no overflow for large logits).
pub fn softmax_cross_entropy(logits: Tensor<2>, labels: &[usize], reduction: Reduction) -> Tensor<1> {
    let [b, classes] = logits.dims();
    assert_eq!(labels.len(), b, "{} labels for {b} rows", labels.len());
    assert!(labels.iter().all(|&l| l < classes), "a label outside 0..{classes}");
    let device = logits.device();
    let log_p = log_softmax(logits, 1);
    let picked = log_p.gather(1, indices(labels, &device).reshape([b, 1])).reshape([b]);
    reduction.apply(picked.neg())
}

/// Binary cross-entropy from logits: `-(y log sigmoid(z) + (1 - y) log sigmoid(-z))` per pair,
/// `targets` in `[0, 1]`. Through `log_sigmoid`, never through a clamped probability, so a
/// confident wrong answer costs `|z|` instead of a clamp's constant and its gradient never
/// vanishes.
pub fn binary_cross_entropy_with_logits(logits: Tensor<1>, targets: Tensor<1>, reduction: Reduction) -> Tensor<1> {
    let pos = log_sigmoid(logits.clone()) * targets.clone();
    let neg = log_sigmoid(logits.neg()) * targets.neg().add_scalar(1.0);
    reduction.apply((pos + neg).neg())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::{matrix, scalar, train_device, values, vector};

    fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
    }

    #[test]
    fn triplet_loss_hand_values_and_gradients() {
        let dev = train_device();
        // Triplet 1: a=(0,0) p=(1,0) n=(0,2): 1 - 4 + 0.5 < 0, inactive.
        // Triplet 2: a=(0,0) p=(2,1) n=(1,1): 5 - 2 + 0.5 = 3.5, active.
        let a = matrix(&[0.0, 0.0, 0.0, 0.0], 2, 2, &dev).require_grad();
        let p = matrix(&[1.0, 0.0, 2.0, 1.0], 2, 2, &dev).require_grad();
        let n = matrix(&[0.0, 2.0, 1.0, 1.0], 2, 2, &dev).require_grad();
        let sum = triplet_loss(a.clone(), p.clone(), n.clone(), 0.5, Metric::SquaredL2, Reduction::Sum);
        assert!((scalar(sum.clone()) - 3.5).abs() < 1e-6);
        let grads = sum.backward();
        // Active triplet: d/da = 2(n - p) = 2((1,1) - (2,1)) = (-2, 0); d/dp = 2(p - a) = (4, 2);
        // d/dn = 2(a - n) = (-2, -2). The inactive one has zero gradients.
        assert!(close(&values(a.grad(&grads).unwrap()), &[0.0, 0.0, -2.0, 0.0], 1e-6));
        assert!(close(&values(p.grad(&grads).unwrap()), &[0.0, 0.0, 4.0, 2.0], 1e-6));
        assert!(close(&values(n.grad(&grads).unwrap()), &[0.0, 0.0, -2.0, -2.0], 1e-6));
        let mean = triplet_loss(a.clone(), p.clone(), n.clone(), 0.5, Metric::SquaredL2, Reduction::Mean);
        assert!((scalar(mean) - 1.75).abs() < 1e-6);
        // Euclidean: 5^0.5 - 2^0.5 + 0.5 for the second, 1 - 2 + 0.5 < 0 for the first.
        let l2 = triplet_loss(a, p, n, 0.5, Metric::L2_EPS, Reduction::Sum);
        assert!((scalar(l2) - (5f32.sqrt() - 2f32.sqrt() + 0.5)).abs() < 1e-5);
    }

    #[test]
    fn softmax_cross_entropy_hand_values_and_gradient() {
        let dev = train_device();
        // Row 0: logits (0, ln 3): p = (1/4, 3/4), label 1 -> -ln(3/4).
        // Row 1: logits (2, 2): p = (1/2, 1/2), label 0 -> ln 2.
        let z = matrix(&[0.0, 3f32.ln(), 2.0, 2.0], 2, 2, &dev).require_grad();
        let loss = softmax_cross_entropy(z.clone(), &[1, 0], Reduction::Mean);
        let want = (-(0.75f32).ln() + 2f32.ln()) / 2.0;
        assert!((scalar(loss.clone()) - want).abs() < 1e-6);
        // Gradient (softmax - one_hot) / b.
        let g = values(z.grad(&loss.backward()).unwrap());
        assert!(close(&g, &[0.125, -0.125, -0.25, 0.25], 1e-6), "{g:?}");
        // Large logits do not overflow.
        let big = matrix(&[1000.0, 0.0], 1, 2, &dev);
        assert!((scalar(softmax_cross_entropy(big, &[1], Reduction::Sum)) - 1000.0).abs() < 1e-3);
    }

    #[test]
    fn bce_from_logits_hand_values_and_gradient() {
        let dev = train_device();
        let z = vector(&[0.0, 2.0, -3.0, 50.0], &dev).require_grad();
        let y = vector(&[1.0, 0.0, 0.0, 0.0], &dev);
        let loss = binary_cross_entropy_with_logits(z.clone(), y, Reduction::Sum);
        // ln 2, ln(1 + e^2), ln(1 + e^-3), and 50 (+ e^-50): a confident wrong answer costs |z|.
        let want = 2f32.ln() + (1.0 + 2f32.exp()).ln() + (1.0 + (-3f32).exp()).ln() + 50.0;
        assert!((scalar(loss.clone()) - want).abs() < 1e-4, "{}", scalar(loss.clone()));
        // d/dz = sigmoid(z) - y.
        let s = |x: f32| 1.0 / (1.0 + (-x).exp());
        let g = values(z.grad(&loss.backward()).unwrap());
        assert!(close(&g, &[s(0.0) - 1.0, s(2.0), s(-3.0), 1.0], 1e-5), "{g:?}");
    }
}
