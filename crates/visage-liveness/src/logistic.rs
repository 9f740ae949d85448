//! L2-regularised logistic regression, fitted by accelerated gradient descent (Nesterov,
//! step 1/L with L bounded by power iteration): deterministic, no tuning of the step.

/// A fitted linear classifier `sigmoid(w . x + b)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    /// Weights, one per feature.
    pub weights: Vec<f32>,
    /// Bias.
    pub bias: f32,
}

/// `sigmoid(z)`, stable for large |z|.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `log(1 + exp(z))`, stable for large |z|.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

fn dot(a: &[f32], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(&x, &w)| x as f64 * w).sum()
}

/// The objective: mean log-loss of labels `y` (true = positive) plus `lambda / 2 |w|^2`
/// (the bias is not penalised). Each class weighs half, whatever the counts.
pub fn objective(x: &[Vec<f32>], y: &[bool], w: &[f64], b: f64, lambda: f64) -> f64 {
    let (wp, wn) = class_weights(y);
    let loss: f64 = x
        .iter()
        .zip(y)
        .map(|(xi, &yi)| {
            let z = dot(xi, w) + b;
            if yi {
                wp * softplus(-z)
            } else {
                wn * softplus(z)
            }
        })
        .sum();
    loss + lambda / 2.0 * w.iter().map(|v| v * v).sum::<f64>()
}

fn class_weights(y: &[bool]) -> (f64, f64) {
    let pos = y.iter().filter(|&&v| v).count().max(1) as f64;
    let neg = (y.len() as f64 - pos).max(1.0);
    (0.5 / pos, 0.5 / neg)
}

/// Gradient of [`objective`] in (w, b).
pub fn gradient(x: &[Vec<f32>], y: &[bool], w: &[f64], b: f64, lambda: f64) -> (Vec<f64>, f64) {
    let (wp, wn) = class_weights(y);
    let mut g: Vec<f64> = w.iter().map(|v| lambda * v).collect();
    let mut gb = 0.0;
    for (xi, &yi) in x.iter().zip(y) {
        let p = sigmoid(dot(xi, w) + b);
        let r = if yi { wp * (p - 1.0) } else { wn * p };
        gb += r;
        for (gj, &xj) in g.iter_mut().zip(xi) {
            *gj += r * xj as f64;
        }
    }
    (g, gb)
}

/// Largest eigenvalue of the weighted Gram matrix `sum_i c_i x_i x_i^T` (with the bias as a
/// constant feature), by power iteration from a fixed start.
fn gram_norm(x: &[Vec<f32>], y: &[bool]) -> f64 {
    let (wp, wn) = class_weights(y);
    let d = x.first().map_or(0, Vec::len) + 1;
    let mut v = vec![1.0 / (d as f64).sqrt(); d];
    let mut norm = 0.0;
    for _ in 0..60 {
        let mut out = vec![0.0; d];
        for (xi, &yi) in x.iter().zip(y) {
            let c = if yi { wp } else { wn };
            let s = (dot(xi, &v[..d - 1]) + v[d - 1]) * c;
            for (o, &xj) in out.iter_mut().zip(xi) {
                *o += s * xj as f64;
            }
            out[d - 1] += s;
        }
        norm = out.iter().map(|o| o * o).sum::<f64>().sqrt();
        if norm == 0.0 {
            break;
        }
        v = out.into_iter().map(|o| o / norm).collect();
    }
    norm
}

/// Fits the classifier to rows `x` with labels `y` (true = positive class), penalty `lambda`,
/// for `iterations` accelerated steps. Needs both classes.
pub fn fit(x: &[Vec<f32>], y: &[bool], lambda: f64, iterations: usize) -> Logistic {
    let d = x.first().map_or(0, Vec::len);
    // The log-loss's curvature is at most 1/4 of the Gram matrix's.
    let l = gram_norm(x, y) / 4.0 + lambda;
    let step = if l > 0.0 { 1.0 / l } else { 1.0 };
    let (mut w, mut b) = (vec![0.0; d], 0.0);
    let (mut w_prev, mut b_prev) = (w.clone(), b);
    for k in 0..iterations {
        let m = k as f64 / (k as f64 + 3.0);
        let v: Vec<f64> = w.iter().zip(&w_prev).map(|(a, p)| a + m * (a - p)).collect();
        let vb = b + m * (b - b_prev);
        let (g, gb) = gradient(x, y, &v, vb, lambda);
        w_prev = std::mem::replace(&mut w, v.iter().zip(&g).map(|(vi, gi)| vi - step * gi).collect());
        b_prev = std::mem::replace(&mut b, vb - step * gb);
    }
    Logistic { weights: w.into_iter().map(|v| v as f32).collect(), bias: b as f32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> (Vec<Vec<f32>>, Vec<bool>) {
        let x = vec![vec![1.0, 0.5], vec![0.8, -0.2], vec![-0.3, 0.9], vec![-1.0, -0.4], vec![0.1, 0.1]];
        let y = vec![true, true, false, false, true];
        (x, y)
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (x, y) = data();
        let (w, b, lambda) = (vec![0.3, -0.7], 0.2, 0.05);
        let (g, gb) = gradient(&x, &y, &w, b, lambda);
        let h = 1e-6;
        for j in 0..2 {
            let (mut up, mut down) = (w.clone(), w.clone());
            up[j] += h;
            down[j] -= h;
            let fd = (objective(&x, &y, &up, b, lambda) - objective(&x, &y, &down, b, lambda)) / (2.0 * h);
            assert!((fd - g[j]).abs() < 1e-8, "w{j}: {fd} vs {}", g[j]);
        }
        let fd = (objective(&x, &y, &w, b + h, lambda) - objective(&x, &y, &w, b - h, lambda)) / (2.0 * h);
        assert!((fd - gb).abs() < 1e-8, "b: {fd} vs {gb}");
    }

    #[test]
    fn fit_reaches_the_minimum() {
        let (x, y) = data();
        let lambda = 0.01;
        let m = fit(&x, &y, lambda, 3000);
        let w: Vec<f64> = m.weights.iter().map(|&v| v as f64).collect();
        let (g, gb) = gradient(&x, &y, &w, m.bias as f64, lambda);
        let norm = (g.iter().map(|v| v * v).sum::<f64>() + gb * gb).sqrt();
        assert!(norm < 1e-4, "gradient norm at the fit: {norm}");
        // The fitted model separates what is separable by a line through these points' signs.
        let score = |xi: &[f32]| sigmoid(dot(xi, &w) + m.bias as f64);
        assert!(score(&x[0]) > 0.5 && score(&x[3]) < 0.5);
    }

    #[test]
    fn stable_functions() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(-800.0) >= 0.0 && sigmoid(800.0) <= 1.0);
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-15);
        assert!((softplus(800.0) - 800.0).abs() < 1e-9 && softplus(-800.0) >= 0.0);
    }
}
