//! Fitting a [`SiameseHead`] on frozen embeddings: pairs of embeddings given as plain `f32`
//! slices, labelled same / different person, binary cross-entropy from logits, Adam.
//!
//! With the embeddings frozen, the head's per-component features are fixed, so they are
//! computed once and the fit is a logistic regression on them (convex: a zero start and
//! Adam reach the same optimum whatever the seed, which only orders the mini-batches).

use crate::head::{HeadKind, SiameseHead};
use crate::losses::{binary_cross_entropy_with_logits, Reduction};
use crate::tensors::{indices, matrix, scalar, values, vector};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use visage_core::SeededRng;

/// One labelled pair of embeddings.
#[derive(Debug, Clone, Copy)]
pub struct LabelledPair<'a> {
    /// The first embedding.
    pub a: &'a [f32],
    /// The second, of the same length.
    pub b: &'a [f32],
    /// Whether they show the same person.
    pub same: bool,
}

/// How a head is fitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadTraining {
    /// Abs or chi-squared.
    pub kind: HeadKind,
    /// Passes over the pairs.
    pub epochs: usize,
    /// Pairs per Adam step.
    pub batch: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Seeds the order of the mini-batches.
    pub seed: u64,
}

impl Default for HeadTraining {
    /// Abs, 30 epochs of 256 pairs, learning rate 0.01, seed 1.
    fn default() -> Self {
        HeadTraining { kind: HeadKind::Abs, epochs: 30, batch: 256, learning_rate: 0.01, seed: 1 }
    }
}

/// A fitted head and how its loss went.
#[derive(Debug)]
pub struct HeadFit {
    /// The head (without autodiff: ready for inference).
    pub head: SiameseHead,
    /// The mean training loss of each epoch.
    pub epoch_loss: Vec<f32>,
}

/// The head's features of `pairs`, `[n, d]`, computed once (no gradient).
fn pair_features(kind: HeadKind, pairs: &[LabelledPair], device: &Device) -> Tensor<2> {
    let d = pairs[0].a.len();
    let mut a = Vec::with_capacity(pairs.len() * d);
    let mut b = Vec::with_capacity(pairs.len() * d);
    for p in pairs {
        assert!(p.a.len() == d && p.b.len() == d, "every embedding must be {d}-d");
        a.extend_from_slice(p.a);
        b.extend_from_slice(p.b);
    }
    let n = pairs.len();
    SiameseHead::features(kind, matrix(&a, n, d, device), matrix(&b, n, d, device))
}

impl HeadTraining {
    /// Fits a head on `pairs` (at least one, all of one dimension) on `device` (an autodiff
    /// device, e.g. [`crate::train_device`]).
    pub fn fit(&self, pairs: &[LabelledPair], device: &Device) -> HeadFit {
        assert!(!pairs.is_empty(), "no pair to fit a head on");
        assert!(self.batch > 0 && self.epochs > 0);
        let n = pairs.len();
        let d = pairs[0].a.len();
        let features = pair_features(self.kind, pairs, device).detach();
        let targets: Vec<f32> = pairs.iter().map(|p| if p.same { 1.0 } else { 0.0 }).collect();
        let mut head = SiameseHead::new(self.kind, d, device);
        let mut optim = AdamConfig::new().init();
        let mut rng = SeededRng::new(self.seed);
        let mut order: Vec<usize> = (0..n).collect();
        let mut epoch_loss = Vec::with_capacity(self.epochs);
        for _ in 0..self.epochs {
            for i in (1..n).rev() {
                order.swap(i, rng.below(i + 1));
            }
            let mut total = 0.0f64;
            for chunk in order.chunks(self.batch) {
                let x = features.clone().select(0, indices(chunk, device));
                let y: Vec<f32> = chunk.iter().map(|&i| targets[i]).collect();
                let loss = binary_cross_entropy_with_logits(head.logits_of_features(x), vector(&y, device), Reduction::Mean);
                total += scalar(loss.clone().detach()) as f64 * chunk.len() as f64;
                let grads = GradientsParams::from_grads(loss.backward(), &head);
                head = optim.step(self.learning_rate, head, grads);
            }
            epoch_loss.push((total / n as f64) as f32);
        }
        HeadFit { head: head.valid(), epoch_loss }
    }
}

/// The head's probability that each pair `(a[i], b[i])` is one person (computed on the
/// head's device).
pub fn same_probability(head: &SiameseHead, pairs: &[(&[f32], &[f32])]) -> Vec<f32> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let device = head.weight.val().device();
    let labelled: Vec<LabelledPair> = pairs.iter().map(|&(a, b)| LabelledPair { a, b, same: false }).collect();
    let logits = head.logits_of_features(pair_features(head.kind, &labelled, &device));
    values(burn::tensor::activation::sigmoid(logits))
}
