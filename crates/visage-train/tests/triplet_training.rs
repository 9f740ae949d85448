//! A small end-to-end run of the pieces together: a linear embedder trained with the P x K
//! sampler, batch-hard mining and Adam on synthetic identities, whose loss falls and whose
//! embedding then separates people it has not seen.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use visage_core::SeededRng;
use visage_train::burn;
use visage_train::distance::l2_normalize;
use visage_train::tensors::{matrix, values};
use visage_train::{train_device, Metric, Mining, PkSampler, Reduction, Shortfall, TripletLoss};

const RAW: usize = 32;
const IDENTITY: usize = 6;
const EMBED: usize = 8;

/// People whose raw 32-d "photos" hold identity in 6 components and strong nuisance in the
/// other 26: the embedder must learn to ignore the nuisance.
fn people(n: usize, photos: usize, rng: &mut SeededRng) -> Vec<Vec<Vec<f32>>> {
    (0..n)
        .map(|_| {
            let center: Vec<f32> = (0..IDENTITY).map(|_| rng.normal() as f32).collect();
            (0..photos)
                .map(|_| {
                    (0..RAW).map(|k| if k < IDENTITY { center[k] + 0.2 * rng.normal() as f32 } else { 2.0 * rng.normal() as f32 }).collect()
                })
                .collect()
        })
        .collect()
}

/// Nearest-neighbour identification of each photo among the others (leave one out).
fn nn_accuracy(embedder: &Linear, people: &[Vec<Vec<f32>>]) -> f64 {
    let rows: Vec<(usize, &Vec<f32>)> = people.iter().enumerate().flat_map(|(p, ph)| ph.iter().map(move |x| (p, x))).collect();
    let flat: Vec<f32> = rows.iter().flat_map(|r| r.1.iter().copied()).collect();
    let dev = train_device();
    let e = values(l2_normalize(embedder.forward(matrix(&flat, rows.len(), RAW, &dev)), 1e-12));
    let emb = |i: usize| &e[i * EMBED..(i + 1) * EMBED];
    let mut right = 0;
    for i in 0..rows.len() {
        let nearest = (0..rows.len())
            .filter(|&j| j != i)
            .min_by(|&a, &b| {
                let d = |j: usize| emb(i).iter().zip(emb(j)).map(|(x, y)| (x - y) * (x - y)).sum::<f32>();
                d(a).total_cmp(&d(b))
            })
            .unwrap();
        right += usize::from(rows[nearest].0 == rows[i].0);
    }
    right as f64 / rows.len() as f64
}

#[test]
fn batch_hard_training_lowers_the_loss_and_separates_unseen_people() {
    let mut rng = SeededRng::new(21);
    let train = people(60, 5, &mut rng);
    let unseen = people(20, 5, &mut rng);
    let dev = train_device();
    dev.seed(1);
    let mut embedder = LinearConfig::new(RAW, EMBED).init(&dev);
    let before = nn_accuracy(&embedder, &unseen);
    let counts: Vec<usize> = train.iter().map(|p| p.len()).collect();
    let mut sampler = PkSampler::new(&counts, 8, 4, Shortfall::Repeat, 3).unwrap();
    let loss_fn = TripletLoss { margin: 0.2, metric: Metric::SquaredL2, mining: Mining::BatchHard, reduction: Reduction::Mean };
    let mut optim = AdamConfig::new().init();
    let mut history = Vec::new();
    for _ in 0..300 {
        let batch = sampler.next_batch();
        let flat: Vec<f32> = batch.rows.iter().flat_map(|&(p, i)| train[p][i].iter().copied()).collect();
        let x = matrix(&flat, batch.rows.len(), RAW, &dev);
        let out = loss_fn.forward(l2_normalize(embedder.forward(x), 1e-12), &batch.labels());
        history.push(out.stats);
        let grads = GradientsParams::from_grads(out.loss.backward(), &embedder);
        embedder = optim.step(3e-3, embedder, grads);
    }
    let mean = |s: &[visage_train::TripletStats], f: fn(&visage_train::TripletStats) -> f32| s.iter().map(f).sum::<f32>() / s.len() as f32;
    let (first, last) = (&history[..20], &history[history.len() - 20..]);
    let after = nn_accuracy(&embedder.valid(), &unseen);
    eprintln!(
        "loss {:.3} -> {:.3}, active {:.2} -> {:.2}, pos {:.3} -> {:.3}, neg {:.3} -> {:.3}, unseen 1-NN {before:.2} -> {after:.2}",
        mean(first, |s| s.loss),
        mean(last, |s| s.loss),
        mean(first, |s| s.active_fraction()),
        mean(last, |s| s.active_fraction()),
        mean(first, |s| s.mean_positive),
        mean(last, |s| s.mean_positive),
        mean(first, |s| s.mean_negative),
        mean(last, |s| s.mean_negative),
    );
    assert!(mean(last, |s| s.loss) < 0.5 * mean(first, |s| s.loss));
    assert!(mean(last, |s| s.mean_negative) > 2.0 * mean(last, |s| s.mean_positive), "not collapsed");
    assert!(after > before + 0.2 && after > 0.8, "unseen people: 1-NN {before} -> {after}");
}
