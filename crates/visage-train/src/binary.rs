//! Training the small CNN ([`SmallCnn`]) as a two-class classifier: one output, the logit of
//! the positive class (for liveness: live), binary cross-entropy from logits, Adam with a
//! cosine learning rate, augmented chips in a seeded order.

use crate::augment::augment;
use crate::cnn::{chips_tensor, SmallCnn};
use crate::losses::{binary_cross_entropy_with_logits, Reduction};
use crate::tensors::{scalar, train_device, vector};
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use visage_core::{ModelDescriptor, SeededRng};
use visage_embed::CnnSpec;

/// How a classifier is trained.
#[derive(Debug, Clone)]
pub struct BinaryTraining {
    /// Passes over the training chips.
    pub epochs: usize,
    /// Chips per step.
    pub batch: usize,
    /// Adam's learning rate at the start; a cosine takes it to 1% of that by the last step.
    pub lr: f64,
    /// Adam's weight decay (an L2 penalty on the weights).
    pub weight_decay: f64,
    /// Seeds the initial weights, the order of the chips and the augmentation.
    pub seed: u64,
}

impl Default for BinaryTraining {
    fn default() -> Self {
        BinaryTraining { epochs: 30, batch: 32, lr: 3e-3, weight_decay: 5e-4, seed: 1 }
    }
}

/// What one epoch did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochLoss {
    /// The epoch, from 1.
    pub epoch: usize,
    /// The mean training loss over its steps.
    pub loss: f32,
}

/// `0..n` in an order drawn from `rng` (Fisher-Yates).
fn shuffled(n: usize, rng: &mut SeededRng) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}

/// Trains a fresh network of architecture `spec` (whose `dim` must be 1) on `chips` (row-major
/// RGB, the descriptor's chip size, normalised as the descriptor says) with `labels` (true =
/// the positive class). `after_epoch` sees each epoch's loss and the network (in inference
/// mode) so that the caller can score a validation set; returns the network after the last
/// epoch.
pub fn train_classifier(
    spec: &CnnSpec,
    descriptor: &ModelDescriptor,
    chips: &[Vec<u8>],
    labels: &[bool],
    options: &BinaryTraining,
    after_epoch: &mut dyn FnMut(EpochLoss, &SmallCnn),
) -> Result<SmallCnn, String> {
    if spec.dim != 1 {
        return Err(format!("a two-class network has one output, this architecture has {}", spec.dim));
    }
    if chips.len() != labels.len() || chips.is_empty() {
        return Err(format!("{} chips and {} labels", chips.len(), labels.len()));
    }
    if !labels.iter().any(|&l| l) || labels.iter().all(|&l| l) {
        return Err("training needs chips of both classes".into());
    }
    let size = descriptor.chip.size as usize;
    if let Some(i) = chips.iter().position(|c| c.len() != size * size * 3) {
        return Err(format!("chip {i} is not {size}x{size} RGB"));
    }
    let batch = options.batch.max(2).min(chips.len());
    let device = train_device();
    device.seed(options.seed);
    let mut net = SmallCnn::new(spec, &device);
    let mut optim = AdamConfig::new().with_weight_decay(Some(WeightDecayConfig::new(options.weight_decay as f32))).init();
    let mut order_rng = SeededRng::new(options.seed);
    let mut aug_rng = SeededRng::new(options.seed ^ 0x5eed);
    let per_epoch = chips.len() / batch;
    let steps = (options.epochs * per_epoch).max(1);
    let mut step = 0;
    for epoch in 1..=options.epochs {
        let order = shuffled(chips.len(), &mut order_rng);
        let mut total = 0.0;
        for rows in order.chunks_exact(batch) {
            let augmented: Vec<Vec<u8>> = rows.iter().map(|&i| augment(&chips[i], size, &mut aug_rng)).collect();
            let refs: Vec<&[u8]> = augmented.iter().map(Vec::as_slice).collect();
            let x = chips_tensor(&refs, size, descriptor, &device);
            let targets: Vec<f32> = rows.iter().map(|&i| if labels[i] { 1.0 } else { 0.0 }).collect();
            let logits = net.scores(x).reshape([rows.len()]);
            let loss = binary_cross_entropy_with_logits(logits, vector(&targets, &device), Reduction::Mean);
            total += scalar(loss.clone());
            let lr = crate::schedule::cosine_lr(options.lr, step, steps);
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(lr, net, grads);
            step += 1;
        }
        after_epoch(EpochLoss { epoch, loss: total / per_epoch.max(1) as f32 }, &net.valid());
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use visage_core::{ChipGeometry, InputNormalization, LandmarkScheme, Thresholds};

    fn descriptor(size: u32) -> ModelDescriptor {
        ModelDescriptor {
            id: "test-classifier".into(),
            dim: 1,
            chip: ChipGeometry { size, padding: 0.2 },
            landmarks: LandmarkScheme::Dlib5,
            input: InputNormalization { mean: [128.0; 3], scale: 1.0 / 64.0 },
            thresholds: Thresholds { l2: 1.0, cosine: 1.0, chi2: 1.0 },
        }
    }

    #[test]
    fn a_shuffle_is_a_permutation() {
        let mut rng = SeededRng::new(3);
        let mut v = shuffled(50, &mut rng);
        assert_ne!(v, (0..50).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn it_learns_to_tell_fine_stripes_from_flat_patches() {
        // Class 1: fine vertical stripes (a texture); class 0: flat grey of random level. A
        // network that learns nothing stays at log 2 = 0.693.
        let size = 16;
        let mut rng = SeededRng::new(5);
        let (mut chips, mut labels) = (Vec::new(), Vec::new());
        for i in 0..64 {
            let striped = i % 2 == 0;
            let level = 60 + rng.below(120) as u8;
            let chip: Vec<u8> = (0..size * size)
                .flat_map(|p| {
                    let v = if striped && (p % size) % 2 == 0 { level.saturating_add(60) } else { level };
                    [v, v, v]
                })
                .collect();
            chips.push(chip);
            labels.push(striped);
        }
        let spec = CnnSpec { channels: vec![8, 8], dim: 1 };
        let mut losses = Vec::new();
        let opts = BinaryTraining { epochs: 12, batch: 16, lr: 1e-2, weight_decay: 0.0, seed: 2 };
        train_classifier(&spec, &descriptor(size as u32), &chips, &labels, &opts, &mut |e, _| losses.push(e.loss)).unwrap();
        assert_eq!(losses.len(), 12);
        assert!(losses[0] > 0.3, "first epoch {}", losses[0]);
        let last = *losses.last().unwrap();
        assert!(last < 0.5 * losses[0] && last < 0.3, "losses {losses:?}");
    }

    #[test]
    fn bad_inputs_are_refused() {
        let d = descriptor(4);
        let spec = CnnSpec { channels: vec![4], dim: 2 };
        let chips = vec![vec![0u8; 48], vec![0u8; 48]];
        let opts = BinaryTraining::default();
        assert!(train_classifier(&spec, &d, &chips, &[true, false], &opts, &mut |_, _| {}).unwrap_err().contains("one output"));
        let spec = CnnSpec { channels: vec![4], dim: 1 };
        assert!(train_classifier(&spec, &d, &chips, &[true, true], &opts, &mut |_, _| {}).unwrap_err().contains("both classes"));
        assert!(train_classifier(&spec, &d, &[vec![0u8; 47], vec![0u8; 48]], &[true, false], &opts, &mut |_, _| {}).unwrap_err().contains("chip 0"));
    }
}
