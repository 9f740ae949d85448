//! Online mining on a hand-made P x K batch: which triplets each strategy picks, the loss,
//! the gradients through burn's autodiff, and finite gradients at zero distance.

use visage_train::distance::pairwise_squared;
use visage_train::tensors::{indices, matrix, scalar, train_device, values};
use visage_train::{Metric, Mining, Reduction, Triplet, TripletLoss};

/// Two people, three photos each, in 2-d (integer coordinates: squared distances by hand).
///   person 0: x0 = (0,0), x1 = (1,0), x2 = (0,2)
///   person 1: x3 = (2,1), x4 = (3,0), x5 = (3,3)
/// Squared distances:
///        x0  x1  x2  x3  x4  x5
///   x0 [  0,  1,  4,  5,  9, 18]
///   x1 [  1,  0,  5,  2,  4, 13]
///   x2 [  4,  5,  0,  5, 13, 10]
///   x3 [  5,  2,  5,  0,  2,  5]
///   x4 [  9,  4, 13,  2,  0,  9]
///   x5 [ 18, 13, 10,  5,  9,  0]
const X: [f32; 12] = [0.0, 0.0, 1.0, 0.0, 0.0, 2.0, 2.0, 1.0, 3.0, 0.0, 3.0, 3.0];
const LABELS: [usize; 6] = [0, 0, 0, 1, 1, 1];
const MARGIN: f64 = 2.0;

fn t(a: usize, p: usize, n: usize) -> Triplet {
    Triplet::new(a, p, n)
}

fn point(i: usize) -> [f32; 2] {
    [X[2 * i], X[2 * i + 1]]
}

/// The gradient the derivation gives for the mean (or sum) hinge over active `triplets`:
/// anchor `2 (n - p)`, positive `2 (p - a)`, negative `2 (a - n)`, each times the weight.
fn derived_gradient(triplets: &[Triplet], weight: f32) -> Vec<f32> {
    let mut g = vec![0.0; X.len()];
    for tr in triplets {
        let (a, p, n) = (point(tr.anchor), point(tr.positive), point(tr.negative));
        for c in 0..2 {
            g[2 * tr.anchor + c] += weight * 2.0 * (n[c] - p[c]);
            g[2 * tr.positive + c] += weight * 2.0 * (p[c] - a[c]);
            g[2 * tr.negative + c] += weight * 2.0 * (a[c] - n[c]);
        }
    }
    g
}

fn run(mining: Mining, reduction: Reduction) -> (visage_train::TripletOutput, Vec<f32>) {
    let dev = train_device();
    let x = matrix(&X, 6, 2, &dev).require_grad();
    let loss = TripletLoss { margin: MARGIN, metric: Metric::SquaredL2, mining, reduction };
    let out = loss.forward(x.clone(), &LABELS);
    let grad = values(x.grad(&out.loss.backward()).expect("a gradient for the embeddings"));
    (out, grad)
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "{what}: got {got:?}, want {want:?}");
    }
}

#[test]
fn distances_of_the_hand_made_batch() {
    let d = values(pairwise_squared(matrix(&X, 6, 2, &train_device())));
    let want = [
        0., 1., 4., 5., 9., 18., 1., 0., 5., 2., 4., 13., 4., 5., 0., 5., 13., 10., 5., 2., 5., 0., 2., 5., 9., 4., 13., 2., 0., 9., 18.,
        13., 10., 5., 9., 0.,
    ];
    assert_close(&d, &want, "distance matrix");
}

#[test]
fn batch_hard_picks_farthest_positive_and_closest_negative() {
    let (out, grad) = run(Mining::BatchHard, Reduction::Mean);
    // x0: positives x1 (1), x2 (4) -> x2; negatives 5, 9, 18 -> x3: 4 - 5 + 2 = 1.
    // x1: positives 1, 5 -> x2; negatives 2, 4, 13 -> x3: 5 - 2 + 2 = 5.
    // x2: positives 4, 5 -> x1; negatives 5, 13, 10 -> x3: 5 - 5 + 2 = 2.
    // x3: positives 2, 5 -> x5; negatives 5, 2, 5 -> x1: 5 - 2 + 2 = 5.
    // x4: positives 2, 9 -> x5; negatives 9, 4, 13 -> x1: 9 - 4 + 2 = 7.
    // x5: positives 5, 9 -> x4; negatives 18, 13, 10 -> x2: 9 - 10 + 2 = 1.
    let want = [t(0, 2, 3), t(1, 2, 3), t(2, 1, 3), t(3, 5, 1), t(4, 5, 1), t(5, 4, 2)];
    assert_eq!(out.triplets, want);
    assert!((scalar(out.loss) - 21.0 / 6.0).abs() < 1e-5);
    assert_eq!((out.stats.candidates, out.stats.triplets, out.stats.active), (6, 6, 6));
    assert_close(&grad, &derived_gradient(&want, 1.0 / 6.0), "batch-hard gradient");
}

#[test]
fn batch_all_picks_every_triplet_with_positive_loss() {
    let (out, grad) = run(Mining::BatchAll, Reduction::Sum);
    // 3 anchors x 2 positives x 3 negatives per person = 36 valid triplets; these 13 have
    // d(a,p) - d(a,n) + 2 > 0 (loss in brackets).
    let want = [
        t(0, 2, 3), // 4 - 5 + 2 = [1]
        t(1, 0, 3), // 1 - 2 + 2 = [1]
        t(1, 2, 3), // 5 - 2 + 2 = [5]
        t(1, 2, 4), // 5 - 4 + 2 = [3]
        t(2, 0, 3), // 4 - 5 + 2 = [1]
        t(2, 1, 3), // 5 - 5 + 2 = [2]
        t(3, 4, 1), // 2 - 2 + 2 = [2]
        t(3, 5, 0), // 5 - 5 + 2 = [2]
        t(3, 5, 1), // 5 - 2 + 2 = [5]
        t(3, 5, 2), // 5 - 5 + 2 = [2]
        t(4, 5, 0), // 9 - 9 + 2 = [2]
        t(4, 5, 1), // 9 - 4 + 2 = [7]
        t(5, 4, 2), // 9 - 10 + 2 = [1]
    ];
    assert_eq!(out.triplets, want);
    assert!((scalar(out.loss.clone()) - 34.0).abs() < 1e-4);
    assert_eq!((out.stats.candidates, out.stats.active), (36, 13));
    assert!((out.stats.active_fraction() - 13.0 / 36.0).abs() < 1e-6);
    assert_close(&grad, &derived_gradient(&want, 1.0), "batch-all gradient");
    let (mean, _) = run(Mining::BatchAll, Reduction::Mean);
    assert!((scalar(mean.loss) - 34.0 / 13.0).abs() < 1e-5, "mean over the active triplets");
}

#[test]
fn semi_hard_picks_negatives_inside_the_margin() {
    let (out, grad) = run(Mining::SemiHard, Reduction::Mean);
    // Per positive pair, negatives with d(a,p) < d(a,n) < d(a,p) + 2:
    //   (0,1) 1: (1,3) none of 5, 9, 18     (0,2) 4: (4,6) holds x3 (5)
    //   (1,0) 1: (1,3) holds x3 (2)         (1,2) 5: (5,7) none of 2, 4, 13
    //   (2,0) 4: (4,6) holds x3 (5)         (2,1) 5: (5,7) none of 5, 13, 10 (5 is not > 5)
    //   (3,4) 2: (2,4) none of 5, 2, 5      (3,5) 5: (5,7) none
    //   (4,3) 2: (2,4) none of 9, 4, 13     (4,5) 9: (9,11) none
    //   (5,3) 5: (5,7) none of 18, 13, 10   (5,4) 9: (9,11) holds x2 (10)
    let want = [t(0, 2, 3), t(1, 0, 3), t(2, 0, 3), t(5, 4, 2)];
    assert_eq!(out.triplets, want);
    assert!((scalar(out.loss) - 1.0).abs() < 1e-5, "each has loss 1");
    assert_eq!((out.stats.candidates, out.stats.triplets, out.stats.active), (12, 4, 4));
    assert_close(&grad, &derived_gradient(&want, 0.25), "semi-hard gradient");
    // x5 is only the anchor of (5, 4, 2), and x1 only of (1, 0, 3): their gradient is the
    // derivation's 2 (f(N) - f(P)), times 1/4 for the mean.
    let g5 = [grad[10], grad[11]];
    let (n, p) = (point(2), point(4));
    assert_close(&g5, &[0.25 * 2.0 * (n[0] - p[0]), 0.25 * 2.0 * (n[1] - p[1])], "anchor x5");
    let g1 = [grad[2], grad[3]];
    let (n, p) = (point(3), point(0));
    assert_close(&g1, &[0.25 * 2.0 * (n[0] - p[0]), 0.25 * 2.0 * (n[1] - p[1])], "anchor x1");
}

#[test]
fn batch_statistics() {
    let (out, _) = run(Mining::BatchHard, Reduction::Mean);
    // Positive pairs: 1, 4, 5 and 2, 5, 9 (mean 26/6); negative pairs: 5+9+18 + 2+4+13 +
    // 5+13+10 = 79 over 9.
    assert!((out.stats.mean_positive - 26.0 / 6.0).abs() < 1e-5);
    assert!((out.stats.mean_negative - 79.0 / 9.0).abs() < 1e-5);
    assert!((out.stats.loss - 3.5).abs() < 1e-5);
    assert!((out.stats.active_fraction() - 1.0).abs() < 1e-6);
}

/// Anchor == positive (the same photo drawn twice) and a collapsed batch: zero distances
/// everywhere the derivative of `sqrt` is infinite.
#[test]
fn zero_distances_give_finite_gradients() {
    let dev = train_device();
    // x0 == x1 (person 0), x2 == x0 as well (person 1), x3 apart.
    let dup = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0, 2.0];
    let collapsed = [0.5; 8];
    for data in [dup, collapsed] {
        for metric in [Metric::SquaredL2, Metric::L2_EPS] {
            for mining in [Mining::BatchHard, Mining::BatchAll, Mining::SemiHard] {
                let x = matrix(&data, 4, 2, &dev).require_grad();
                let loss = TripletLoss { margin: 0.2, metric, mining, reduction: Reduction::Mean };
                let out = loss.forward(x.clone(), &[0, 0, 1, 1]);
                let l = scalar(out.loss.clone());
                let g = values(x.grad(&out.loss.backward()).expect("gradient"));
                assert!(l.is_finite() && g.iter().all(|v| v.is_finite()), "{metric:?} {mining:?}: loss {l}, grad {g:?}");
            }
        }
    }
    // A collapsed batch: batch-hard's loss is exactly the margin and both mean distances are
    // 0, the signal to log.
    let x = matrix(&collapsed, 4, 2, &dev).require_grad();
    let loss = TripletLoss { margin: 0.2, metric: Metric::L2_EPS, mining: Mining::BatchHard, reduction: Reduction::Mean };
    let out = loss.forward(x, &[0, 0, 1, 1]);
    assert!((out.stats.loss - 0.2).abs() < 1e-5 && out.stats.mean_positive < 1e-5 && out.stats.mean_negative < 1e-5);
}

/// The hazard the epsilon is for: without it, burn's `sqrt` at a zero distance makes the
/// gradient NaN even though the loss is finite (so the test above does reach that case).
#[test]
fn sqrt_without_epsilon_is_nan_at_zero_distance() {
    let dev = train_device();
    let x = matrix(&[1.0, 1.0, 1.0, 1.0], 2, 2, &dev).require_grad();
    let d = pairwise_squared(x.clone()).sqrt().reshape([4]).select(0, indices(&[1], &dev));
    let loss = d.sum();
    assert!(scalar(loss.clone()).abs() < 1e-6);
    let g = values(x.grad(&loss.backward()).unwrap());
    assert!(g.iter().any(|v| v.is_nan()), "expected NaN without eps, got {g:?}");
}
