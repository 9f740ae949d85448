//! Distances between the embeddings of a batch.
//!
//! A batch's distance matrix has a zero diagonal, and two photos can have the same embedding
//! (the same photo drawn twice, or a collapsed network). The derivative of `sqrt` at 0 is
//! infinite, and an infinite factor times a zero gradient is NaN, which then poisons every
//! weight. So distances are either squared (FaceNet's choice, smooth everywhere) or computed as
//! `sqrt(d^2 + eps)` with `eps > 0`.

use burn::tensor::Tensor;

/// How the distance between two embeddings is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// `|x - y|^2` (FaceNet's triplet loss; gradient `2 (x - y)`).
    SquaredL2,
    /// `sqrt(|x - y|^2 + eps)`: Euclidean, with `eps > 0` keeping the gradient finite at 0.
    L2 {
        /// Added under the square root (1e-12 is enough in `f32`).
        eps: f64,
    },
}

impl Metric {
    /// Euclidean distance with the default epsilon, 1e-12.
    pub const L2_EPS: Metric = Metric::L2 { eps: 1e-12 };

    /// This metric applied to squared distances.
    pub fn from_squared<const D: usize>(self, d2: Tensor<D>) -> Tensor<D> {
        match self {
            Metric::SquaredL2 => d2,
            Metric::L2 { eps } => {
                assert!(eps > 0.0, "sqrt at a zero distance needs eps > 0 (a NaN gradient otherwise)");
                d2.add_scalar(eps).sqrt()
            }
        }
    }

    /// The same on one `f32` (for statistics and tests).
    pub fn from_squared_value(self, d2: f32) -> f32 {
        match self {
            Metric::SquaredL2 => d2,
            Metric::L2 { eps } => (d2 as f64 + eps).sqrt() as f32,
        }
    }
}

/// Squared Euclidean distances between every two rows of `x` (`[n, d]` -> `[n, n]`), from the
/// Gram matrix: `|x_i|^2 + |x_j|^2 - 2 x_i . x_j`, clamped at 0 (rounding can make it slightly
/// negative). Its gradient with respect to `x_i` is `2 (x_i - x_j)`, as for the direct form,
/// at `n^2` memory instead of the direct form's `n^2 d`.
pub fn pairwise_squared(x: Tensor<2>) -> Tensor<2> {
    let [n, _] = x.dims();
    let norms = x.clone().square().sum_dim(1); // [n, 1]
    let gram = x.clone().matmul(x.transpose()); // [n, n]
    let d2 = norms.clone().expand([n, n]) + norms.transpose().expand([n, n]) - gram.mul_scalar(2.0);
    d2.clamp_min(0.0)
}

/// Each row of `x` (`[n, d]`) divided by its length, `x / sqrt(|x|^2 + eps)`: FaceNet's
/// embeddings live on the unit sphere, where squared distances lie in `[0, 4]`. `eps > 0`
/// keeps a zero row (and its gradient) finite.
pub fn l2_normalize(x: Tensor<2>, eps: f64) -> Tensor<2> {
    let [n, d] = x.dims();
    let norm = x.clone().square().sum_dim(1).add_scalar(eps).sqrt();
    x / norm.expand([n, d])
}

/// Distances between every two rows of `x` under `metric` (`[n, d]` -> `[n, n]`).
pub fn pairwise(x: Tensor<2>, metric: Metric) -> Tensor<2> {
    metric.from_squared(pairwise_squared(x))
}

/// Distances between matching rows of `a` and `b` (`[n, d]`, `[n, d]` -> `[n]`).
pub fn rowwise(a: Tensor<2>, b: Tensor<2>, metric: Metric) -> Tensor<1> {
    let [n, _] = a.dims();
    metric.from_squared((a - b).square().sum_dim(1).reshape([n]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::{matrix, train_device, values};

    #[test]
    fn pairwise_matches_hand_values() {
        let dev = train_device();
        // (0,0), (3,4), (1,0): squared distances 25, 1, 20.
        let x = matrix(&[0.0, 0.0, 3.0, 4.0, 1.0, 0.0], 3, 2, &dev);
        let d2 = values(pairwise_squared(x.clone()));
        let want = [0.0, 25.0, 1.0, 25.0, 0.0, 20.0, 1.0, 20.0, 0.0];
        for (g, w) in d2.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{d2:?}");
        }
        let d = values(pairwise(x.clone(), Metric::L2_EPS));
        assert!((d[1] - 5.0).abs() < 1e-5 && d[0].abs() < 1e-5, "{d:?}");
        let r = values(rowwise(x.clone(), x.flip([0]), Metric::SquaredL2));
        assert_eq!(r, vec![1.0, 0.0, 1.0]);
    }

    #[test]
    fn normalized_rows_have_unit_length_and_a_zero_row_stays_finite() {
        let dev = train_device();
        let x = matrix(&[3.0, 4.0, 0.0, 0.0], 2, 2, &dev).require_grad();
        let y = l2_normalize(x.clone(), 1e-12);
        let v = values(y.clone());
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6 && v[2] == 0.0 && v[3] == 0.0, "{v:?}");
        let g = values(x.grad(&y.sum().backward()).unwrap());
        assert!(g.iter().all(|g| g.is_finite()), "{g:?}");
        // d/dx of (x1 + x2) / |x| at (3, 4): (|x|^2 - x.(1,1) x_i) / |x|^3 = (25 - 7*3, 25 - 7*4) / 125.
        assert!((g[0] - 4.0 / 125.0).abs() < 1e-6 && (g[1] + 3.0 / 125.0).abs() < 1e-6, "{g:?}");
    }
}
