//! The Siamese binary head (DeepFace, Taigman et al. 2014): the probability that two
//! embeddings show the same person,
//!
//! - `Abs`: `sigmoid(sum_k w_k |f_ik - f_jk| + b)`,
//! - `Chi2`: `sigmoid(sum_k w_k (f_ik - f_jk)^2 / (|f_ik| + |f_jk| + eps) + b)`,
//!
//! trained with binary cross-entropy from logits on same / different pairs.
//!
//! Signed embeddings under chi-squared: the textbook `(f_i - f_j)^2 / (f_i + f_j)` assumes
//! non-negative features (DeepFace's are ReLU outputs); dlib's embeddings have negative
//! components, where `f_i + f_j` can be 0 or negative and the term explode or change sign.
//! The denominator here is `|f_ik| + |f_jk| + eps` (`eps` = [`CHI2_EPS`]), chosen because:
//! - for non-negative features it is the textbook form (plus `eps`), so a ReLU network's
//!   features need no special case;
//! - it needs no data-dependent constant (a shift by `c` must know a bound on the features);
//! - it equals the ReLU split (`f -> [relu(f), relu(-f)]`, chi-squared on both halves, one
//!   weight for both halves) everywhere, at half the width;
//! - each term is at most `|f_ik - f_jk|` (because `|f_ik - f_jk| <= |f_ik| + |f_jk|`), so it
//!   is bounded near zero and only `eps` keeps `0 / 0` away, with finite gradients.

use crate::losses::{binary_cross_entropy_with_logits, Reduction};
use crate::tensors::vector;
use burn::module::{Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

pub use visage_core::pair_head::{HeadKind, CHI2_EPS};

/// A Siamese binary head: one weight per embedding component and a bias.
#[derive(Module, Debug)]
pub struct SiameseHead {
    /// `w`, `[d]`.
    pub weight: Param<Tensor<1>>,
    /// `b`, `[1]`.
    pub bias: Param<Tensor<1>>,
    /// Which comparison the weights apply to.
    #[module(skip)]
    pub kind: HeadKind,
}

impl SiameseHead {
    /// A head on `dim`-d embeddings with all weights and the bias at 0 (probability 0.5 for
    /// every pair). On frozen embeddings the head is a logistic regression on fixed features,
    /// a convex problem, so a zero start loses nothing.
    pub fn new(kind: HeadKind, dim: usize, device: &Device) -> Self {
        Self::from_values(kind, &vec![0.0; dim], 0.0, device)
    }

    /// A head with the given weights and bias.
    pub fn from_values(kind: HeadKind, weight: &[f32], bias: f32, device: &Device) -> Self {
        SiameseHead { weight: Param::from_tensor(vector(weight, device)), bias: Param::from_tensor(vector(&[bias], device)), kind }
    }

    /// The embedding dimension.
    pub fn dim(&self) -> usize {
        self.weight.dims()[0]
    }

    /// The per-component features of pairs (`[n, d]` each -> `[n, d]`).
    pub fn features(kind: HeadKind, fi: Tensor<2>, fj: Tensor<2>) -> Tensor<2> {
        match kind {
            HeadKind::Abs => (fi - fj).abs(),
            HeadKind::Chi2 => {
                let den = (fi.clone().abs() + fj.clone().abs()).add_scalar(CHI2_EPS);
                (fi - fj).square() / den
            }
        }
    }

    /// The logits `sum_k w_k x_k + b` of precomputed features (`[n, d]` -> `[n]`).
    pub fn logits_of_features(&self, features: Tensor<2>) -> Tensor<1> {
        let [n, d] = features.dims();
        assert_eq!(d, self.dim(), "{d}-d features for a {}-d head", self.dim());
        features.matmul(self.weight.val().reshape([d, 1])).reshape([n]) + self.bias.val().expand([n])
    }

    /// The logits of pairs (`[n, d]` each -> `[n]`).
    pub fn logits(&self, fi: Tensor<2>, fj: Tensor<2>) -> Tensor<1> {
        self.logits_of_features(Self::features(self.kind, fi, fj))
    }

    /// The probability that each pair is one person (`[n]`).
    pub fn probability(&self, fi: Tensor<2>, fj: Tensor<2>) -> Tensor<1> {
        sigmoid(self.logits(fi, fj))
    }

    /// The head as visage runs it at inference (no burn): the same weights and bias, for the
    /// embeddings of `model` (a model descriptor's id), deciding "same" at `threshold`.
    pub fn to_pair_head(&self, model: &str, threshold: f64) -> visage_core::PairHead {
        let weights = crate::tensors::values(self.weight.val());
        let bias = crate::tensors::values(self.bias.val())[0];
        let mut h = visage_core::PairHead::new(self.kind, model, weights, bias);
        h.threshold = threshold;
        h
    }

    /// Binary cross-entropy from logits against `same` (1 same person, 0 not), reduced.
    pub fn loss(&self, fi: Tensor<2>, fj: Tensor<2>, same: Tensor<1>, reduction: Reduction) -> Tensor<1> {
        binary_cross_entropy_with_logits(self.logits(fi, fj), same, reduction)
    }
}
