//! Singular value decomposition of a small square matrix by one-sided Jacobi rotations
//! (accurate to a few ulps, which is all the filter bank needs).

/// `a` (n x n, row-major) = U diag(s) V^T. Returns (U, s, V), U and V row-major n x n.
/// Singular values are non-negative and unsorted.
pub fn svd(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    assert_eq!(a.len(), n * n);
    let mut u = a.to_vec(); // columns are orthogonalised in place
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..60 {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let (mut alpha, mut beta, mut gamma) = (0.0, 0.0, 0.0);
                for i in 0..n {
                    let (up, uq) = (u[i * n + p], u[i * n + q]);
                    alpha += up * up;
                    beta += uq * uq;
                    gamma += up * uq;
                }
                if gamma == 0.0 || gamma.abs() <= 1e-17 * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let t = if zeta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for m in [&mut u, &mut v] {
                    for i in 0..n {
                        let (xp, xq) = (m[i * n + p], m[i * n + q]);
                        m[i * n + p] = c * xp - s * xq;
                        m[i * n + q] = s * xp + c * xq;
                    }
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let mut s = vec![0.0; n];
    for j in 0..n {
        let norm = (0..n).map(|i| u[i * n + j] * u[i * n + j]).sum::<f64>().sqrt();
        s[j] = norm;
        if norm > 0.0 {
            for i in 0..n {
                u[i * n + j] /= norm;
            }
        }
    }
    (u, s, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconstructs_the_matrix() {
        let n = 6;
        let a: Vec<f64> = (0..n * n).map(|i| ((i * 37 % 11) as f64 - 5.0) / 3.0).collect();
        let (u, s, v) = svd(&a, n);
        for r in 0..n {
            for c in 0..n {
                let x: f64 = (0..n).map(|j| u[r * n + j] * s[j] * v[c * n + j]).sum();
                assert!((x - a[r * n + c]).abs() < 1e-12, "({r},{c})");
            }
        }
        // V is orthogonal.
        for p in 0..n {
            for q in 0..n {
                let d: f64 = (0..n).map(|i| v[i * n + p] * v[i * n + q]).sum();
                assert!((d - if p == q { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
    }
}
