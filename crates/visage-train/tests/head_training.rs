//! Fitting the Siamese head on frozen embeddings, on synthetic data where the answer is known.

use visage_core::SeededRng;
use visage_train::head_training::same_probability;
use visage_train::tensors::values;
use visage_train::{train_device, HeadKind, HeadTraining, LabelledPair};

/// Pairs drawn from a known logistic model on `|a - b|`: the fit must recover its weights.
#[test]
fn recovers_the_weights_of_a_known_logistic_model() {
    let (w_true, b_true) = ([-8.0f64, -4.0, 0.0, 3.0], 1.5f64);
    let mut rng = SeededRng::new(5);
    let n = 20_000;
    let mut emb = Vec::with_capacity(n);
    for _ in 0..n {
        let a: Vec<f32> = (0..4).map(|_| rng.uniform() as f32).collect();
        let b: Vec<f32> = (0..4).map(|_| rng.uniform() as f32).collect();
        let z = b_true + (0..4).map(|k| w_true[k] * (a[k] - b[k]).abs() as f64).sum::<f64>();
        let same = rng.uniform() < 1.0 / (1.0 + (-z).exp());
        emb.push((a, b, same));
    }
    let pairs: Vec<LabelledPair> = emb.iter().map(|(a, b, s)| LabelledPair { a, b, same: *s }).collect();
    let cfg = HeadTraining { kind: HeadKind::Abs, epochs: 40, batch: 500, learning_rate: 0.05, seed: 2 };
    let fit = cfg.fit(&pairs, &train_device());
    let w = values(fit.head.weight.val());
    let b = values(fit.head.bias.val())[0];
    eprintln!("recovered w {w:?} b {b}, true w {w_true:?} b {b_true}");
    // The maximum-likelihood estimate's standard error here is about 0.1.
    for k in 0..4 {
        assert!((w[k] as f64 - w_true[k]).abs() < 0.3, "weights {w:?}, true {w_true:?}");
    }
    assert!((b as f64 - b_true).abs() < 0.3, "bias {b}, true {b_true}");
    assert!(fit.epoch_loss.last() < fit.epoch_loss.first(), "{:?}", fit.epoch_loss);
}

/// 128-d signed embeddings where only the first 16 components carry identity and the other
/// 112 are noise large enough to swamp the Euclidean distance.
struct Synthetic {
    centers: Vec<Vec<f32>>,
    rng: SeededRng,
}

const DIM: usize = 128;
const INFORMATIVE: usize = 16;

impl Synthetic {
    fn new(people: usize, seed: u64) -> Self {
        let mut rng = SeededRng::new(seed);
        let centers =
            (0..people).map(|_| (0..DIM).map(|k| if k < INFORMATIVE { 0.3 * rng.normal() as f32 } else { 0.0 }).collect()).collect();
        Synthetic { centers, rng }
    }

    fn photo(&mut self, person: usize) -> Vec<f32> {
        let rng = &mut self.rng;
        self.centers[person].iter().enumerate().map(|(k, c)| c + if k < INFORMATIVE { 0.05 } else { 0.3 } * rng.normal() as f32).collect()
    }

    /// `n` same-person and `n` different-person pairs.
    fn pairs(&mut self, n: usize) -> Vec<(Vec<f32>, Vec<f32>, bool)> {
        let people = self.centers.len();
        let mut out = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let p = self.rng.below(people);
            out.push((self.photo(p), self.photo(p), true));
            let q = (p + 1 + self.rng.below(people - 1)) % people;
            out.push((self.photo(p), self.photo(q), false));
        }
        out
    }
}

fn accuracy(prob: &[f32], pairs: &[(Vec<f32>, Vec<f32>, bool)]) -> f64 {
    prob.iter().zip(pairs).filter(|(p, t)| (**p > 0.5) == t.2).count() as f64 / pairs.len() as f64
}

/// The best accuracy any threshold on the Euclidean distance reaches (chosen on the test
/// pairs themselves: an upper bound for plain L2).
fn best_l2_accuracy(pairs: &[(Vec<f32>, Vec<f32>, bool)]) -> f64 {
    let mut d: Vec<(f32, bool)> =
        pairs.iter().map(|(a, b, s)| (a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>(), *s)).collect();
    d.sort_by(|x, y| x.0.total_cmp(&y.0));
    let total_diff = d.iter().filter(|x| !x.1).count();
    let (mut same_below, mut diff_below, mut best) = (0, 0, total_diff);
    for &(_, s) in &d {
        if s {
            same_below += 1;
        } else {
            diff_below += 1;
        }
        best = best.max(same_below + total_diff - diff_below);
    }
    best as f64 / d.len() as f64
}

#[test]
fn learns_which_components_carry_identity() {
    let mut data = Synthetic::new(300, 9);
    let train = data.pairs(2000);
    let test = data.pairs(1000);
    let pairs: Vec<LabelledPair> = train.iter().map(|(a, b, s)| LabelledPair { a, b, same: *s }).collect();
    let test_refs: Vec<(&[f32], &[f32])> = test.iter().map(|(a, b, _)| (a.as_slice(), b.as_slice())).collect();
    let dev = train_device();
    let l2 = best_l2_accuracy(&test);
    for kind in [HeadKind::Abs, HeadKind::Chi2] {
        let cfg = HeadTraining { kind, epochs: 60, batch: 200, learning_rate: 0.05, seed: 4 };
        let fit = cfg.fit(&pairs, &dev);
        let acc = accuracy(&same_probability(&fit.head, &test_refs), &test);
        let w = values(fit.head.weight.val());
        let informative = w[..INFORMATIVE].iter().sum::<f32>() / INFORMATIVE as f32;
        let noise = w[INFORMATIVE..].iter().map(|v| v.abs()).sum::<f32>() / (DIM - INFORMATIVE) as f32;
        eprintln!("{kind:?}: head {acc:.4}, best L2 threshold {l2:.4}, mean w informative {informative:.3}, mean |w| noise {noise:.3}");
        assert!(acc > 0.97, "{kind:?} accuracy {acc}");
        assert!(acc > l2 + 0.1, "{kind:?}: head {acc} vs L2 {l2}");
        assert!(informative < -1.0 && informative.abs() > 5.0 * noise, "{kind:?}: {informative} vs {noise}");
    }
}

#[test]
fn a_seed_repeats_exactly() {
    let mut data = Synthetic::new(50, 3);
    let train = data.pairs(300);
    let pairs: Vec<LabelledPair> = train.iter().map(|(a, b, s)| LabelledPair { a, b, same: *s }).collect();
    let cfg = HeadTraining { kind: HeadKind::Chi2, epochs: 3, batch: 64, learning_rate: 0.01, seed: 8 };
    let dev = train_device();
    let (a, b) = (cfg.fit(&pairs, &dev), cfg.fit(&pairs, &dev));
    assert_eq!(values(a.head.weight.val()), values(b.head.weight.val()));
    assert_eq!(a.epoch_loss, b.epoch_loss);
}
