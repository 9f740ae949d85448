//! The Siamese head: values by hand, gradients by finite differences, signed embeddings.

use visage_train::head::CHI2_EPS;
use visage_train::tensors::{matrix, scalar, train_device, values, vector};
use visage_train::{HeadKind, Reduction, SiameseHead};

const D: usize = 4;
// Three pairs of 4-d signed embeddings: same signs, opposite signs, a zero component, and a
// component equal in both (zero difference).
const FI: [f32; 12] = [0.3, -0.2, 0.5, 0.1, -0.4, 0.25, 0.0, 0.6, 0.15, -0.35, 0.2, -0.5];
const FJ: [f32; 12] = [0.1, -0.3, -0.2, 0.1, 0.3, 0.05, 0.45, -0.15, -0.25, -0.1, 0.2, 0.4];
const SAME: [f32; 3] = [1.0, 0.0, 1.0];
const W: [f32; D] = [-1.5, 0.7, -2.0, 0.4];
const B: f32 = 0.3;

fn feature(kind: HeadKind, a: f64, b: f64) -> f64 {
    match kind {
        HeadKind::Abs => (a - b).abs(),
        HeadKind::Chi2 => (a - b).powi(2) / (a.abs() + b.abs() + CHI2_EPS),
    }
}

/// The logits in f64, written out from the formula.
fn logits_by_hand(kind: HeadKind, w: &[f32], b: f32, fi: &[f32], fj: &[f32]) -> Vec<f64> {
    (0..fi.len() / D)
        .map(|r| b as f64 + (0..D).map(|k| w[k] as f64 * feature(kind, fi[r * D + k] as f64, fj[r * D + k] as f64)).sum::<f64>())
        .collect()
}

/// The mean binary cross-entropy through burn (f32), at the given parameters and inputs.
fn burn_loss(kind: HeadKind, w: &[f32], b: f32, fi: &[f32], fj: &[f32]) -> f64 {
    let dev = train_device();
    let head = SiameseHead::from_values(kind, w, b, &dev);
    let n = fi.len() / D;
    scalar(head.loss(matrix(fi, n, D, &dev), matrix(fj, n, D, &dev), vector(&SAME, &dev), Reduction::Mean)) as f64
}

/// Central differences of `f` at `x`, one coordinate at a time.
fn finite_differences(x: &[f32], h: f32, f: impl Fn(&[f32]) -> f64) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let mut up = x.to_vec();
            up[i] += h;
            let mut down = x.to_vec();
            down[i] -= h;
            (f(&up) - f(&down)) / (2.0 * h as f64)
        })
        .collect()
}

fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!((*g as f64 - w).abs() <= tol * (1.0 + w.abs()), "{what}: got {got:?}, want {want:?}");
    }
}

#[test]
fn logits_and_probabilities_match_the_formula() {
    let dev = train_device();
    for kind in [HeadKind::Abs, HeadKind::Chi2] {
        let head = SiameseHead::from_values(kind, &W, B, &dev);
        let (fi, fj) = (matrix(&FI, 3, D, &dev), matrix(&FJ, 3, D, &dev));
        let want = logits_by_hand(kind, &W, B, &FI, &FJ);
        assert_close(&values(head.logits(fi.clone(), fj.clone())), &want, 1e-5, "logits");
        let p: Vec<f64> = want.iter().map(|z| 1.0 / (1.0 + (-z).exp())).collect();
        assert_close(&values(head.probability(fi, fj)), &p, 1e-5, "probabilities");
    }
    // Pair 0 under Abs by hand: |0.2|, |0.1|, |0.7|, |0| -> -1.5*0.2 + 0.7*0.1 - 2*0.7 + 0.3.
    let z0 = logits_by_hand(HeadKind::Abs, &W, B, &FI[..D], &FJ[..D])[0];
    assert!((z0 - (-0.3 + 0.07 - 1.4 + 0.3)).abs() < 1e-6);
    // A fresh head says 0.5 to everything.
    let fresh = SiameseHead::new(HeadKind::Chi2, D, &dev);
    assert_close(&values(fresh.probability(matrix(&FI, 3, D, &dev), matrix(&FJ, 3, D, &dev))), &[0.5; 3], 1e-7, "fresh");
}

#[test]
fn gradients_agree_with_finite_differences() {
    let dev = train_device();
    let h = 1e-3;
    for kind in [HeadKind::Abs, HeadKind::Chi2] {
        let head = SiameseHead::from_values(kind, &W, B, &dev);
        let fi = matrix(&FI, 3, D, &dev).require_grad();
        let fj = matrix(&FJ, 3, D, &dev).require_grad();
        let loss = head.loss(fi.clone(), fj.clone(), vector(&SAME, &dev), Reduction::Mean);
        let grads = loss.backward();
        let gw = values(head.weight.val().grad(&grads).expect("weight gradient"));
        let gb = values(head.bias.val().grad(&grads).expect("bias gradient"));
        let gi = values(fi.grad(&grads).expect("fi gradient"));
        let gj = values(fj.grad(&grads).expect("fj gradient"));
        let fd_w = finite_differences(&W, h, |w| burn_loss(kind, w, B, &FI, &FJ));
        let fd_b = finite_differences(&[B], h, |b| burn_loss(kind, &W, b[0], &FI, &FJ));
        let fd_i = finite_differences(&FI, h, |x| burn_loss(kind, &W, B, x, &FJ));
        let fd_j = finite_differences(&FJ, h, |x| burn_loss(kind, &W, B, &FI, x));
        assert_close(&gw, &fd_w, 2e-3, &format!("{kind:?} d/dw"));
        assert_close(&gb, &fd_b, 2e-3, &format!("{kind:?} d/db"));
        assert_close(&gi, &fd_i, 2e-3, &format!("{kind:?} d/dfi"));
        assert_close(&gj, &fd_j, 2e-3, &format!("{kind:?} d/dfj"));
        assert!(gi.iter().chain(&gj).all(|g| g.is_finite()));
    }
}

#[test]
fn chi2_on_signed_embeddings_is_bounded_and_finite() {
    let dev = train_device();
    // Opposite signs: the term is |f_i - f_j| exactly (up to eps), the ReLU split's value;
    // same non-negative signs: the textbook chi-squared; both zero: 0, with finite gradients.
    let fi = [0.5f32, 0.2, 0.0, -0.3];
    let fj = [-0.5f32, 0.6, 0.0, -0.1];
    let x = values(SiameseHead::features(HeadKind::Chi2, matrix(&fi, 1, D, &dev), matrix(&fj, 1, D, &dev)));
    let want = [1.0, 0.16 / 0.8, 0.0, 0.04 / 0.4];
    assert_close(&x, &want, 1e-5, "chi2 features");
    for k in 0..D {
        assert!(x[k] <= (fi[k] - fj[k]).abs() + 1e-7, "bounded by |f_i - f_j|");
    }
    let a = matrix(&fi, 1, D, &dev).require_grad();
    let b = matrix(&fj, 1, D, &dev).require_grad();
    let head = SiameseHead::from_values(HeadKind::Chi2, &W, B, &dev);
    let grads = head.loss(a.clone(), b.clone(), vector(&[1.0], &dev), Reduction::Sum).backward();
    let g: Vec<f32> = values(a.grad(&grads).unwrap()).into_iter().chain(values(b.grad(&grads).unwrap())).collect();
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
}

#[test]
fn the_exported_head_gives_burn_s_probabilities_without_burn() {
    // What `visage train head` writes and every command reads: a visage_core::PairHead,
    // computed in plain Rust. Its probabilities must be burn's.
    let dev = train_device();
    for kind in [HeadKind::Abs, HeadKind::Chi2] {
        let head = SiameseHead::from_values(kind, &W, B, &dev);
        let burn_p = values(head.probability(matrix(&FI, 3, D, &dev), matrix(&FJ, 3, D, &dev)));
        let exported = head.to_pair_head("test-model", 0.5);
        assert_eq!((exported.kind, exported.dim(), exported.model.as_str()), (kind, D, "test-model"));
        for r in 0..3 {
            let p = exported.probability(&FI[r * D..(r + 1) * D], &FJ[r * D..(r + 1) * D]);
            assert!((p - burn_p[r] as f64).abs() < 1e-6, "{kind}: pair {r}: {p} vs burn {}", burn_p[r]);
        }
    }
}
