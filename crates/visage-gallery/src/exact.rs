//! Exact distances from one probe to every row of a contiguous f32 matrix, vectorised for the
//! CPU at hand (AVX-512 / AVX2 versions of the same code, chosen at run time).

use rayon::prelude::*;
use visage_core::Metric;

/// Rows per parallel task.
const CHUNK_ROWS: usize = 8192;

/// `out[i] = metric(q, rows[i])` for the `rows.len() / q.len()` rows, on all cores.
/// `norms[i]` must hold `|rows[i]|` when the metric is cosine (it is ignored otherwise).
pub fn distances(metric: Metric, q: &[f32], rows: &[f32], norms: &[f32], out: &mut [f32]) {
    let dim = q.len();
    assert_eq!(rows.len(), out.len() * dim, "matrix and output sizes");
    let qn = q.iter().map(|v| v * v).sum::<f32>().sqrt();
    out.par_chunks_mut(CHUNK_ROWS).enumerate().for_each(|(c, o)| {
        let start = c * CHUNK_ROWS;
        let m = &rows[start * dim..(start + o.len()) * dim];
        let n = if metric == Metric::Cosine { &norms[start..start + o.len()] } else { &[][..] };
        dispatch(metric, q, qn, m, n, o);
    });
}

fn dispatch(metric: Metric, q: &[f32], qn: f32, m: &[f32], n: &[f32], o: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was just detected.
            return unsafe { kernel_avx512(metric, q, qn, m, n, o) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the features were just detected.
            return unsafe { kernel_avx2(metric, q, qn, m, n, o) };
        }
    }
    kernel(metric, q, qn, m, n, o)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn kernel_avx512(metric: Metric, q: &[f32], qn: f32, m: &[f32], n: &[f32], o: &mut [f32]) {
    kernel(metric, q, qn, m, n, o)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_avx2(metric: Metric, q: &[f32], qn: f32, m: &[f32], n: &[f32], o: &mut [f32]) {
    kernel(metric, q, qn, m, n, o)
}

/// Lane-parallel accumulators so the compiler can vectorise the reductions.
const LANES: usize = 16;

#[inline(always)]
fn kernel(metric: Metric, q: &[f32], qn: f32, m: &[f32], n: &[f32], o: &mut [f32]) {
    let dim = q.len();
    let whole = dim / LANES * LANES;
    for (i, (row, out)) in m.chunks_exact(dim).zip(o.iter_mut()).enumerate() {
        let mut acc = [0f32; LANES];
        match metric {
            Metric::L2 => {
                for (qc, rc) in q[..whole].chunks_exact(LANES).zip(row[..whole].chunks_exact(LANES)) {
                    for l in 0..LANES {
                        let d = qc[l] - rc[l];
                        acc[l] += d * d;
                    }
                }
                let tail: f32 = q[whole..].iter().zip(&row[whole..]).map(|(a, b)| (a - b) * (a - b)).sum();
                *out = (acc.iter().sum::<f32>() + tail).sqrt();
            }
            Metric::Cosine => {
                for (qc, rc) in q[..whole].chunks_exact(LANES).zip(row[..whole].chunks_exact(LANES)) {
                    for l in 0..LANES {
                        acc[l] += qc[l] * rc[l];
                    }
                }
                let dot = acc.iter().sum::<f32>() + q[whole..].iter().zip(&row[whole..]).map(|(a, b)| a * b).sum::<f32>();
                let denom = qn * n[i];
                *out = if denom == 0.0 { 1.0 } else { 1.0 - dot / denom };
            }
            Metric::Chi2 => {
                for (qc, rc) in q[..whole].chunks_exact(LANES).zip(row[..whole].chunks_exact(LANES)) {
                    for l in 0..LANES {
                        let d = qc[l] - rc[l];
                        let s = qc[l].abs() + rc[l].abs();
                        acc[l] += if s == 0.0 { 0.0 } else { d * d / s };
                    }
                }
                let tail: f32 = q[whole..].iter().zip(&row[whole..]).map(|(a, b)| Metric::Chi2.distance(&[*a], &[*b])).sum();
                *out = acc.iter().sum::<f32>() + tail;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_metric_for_odd_dimensions() {
        for dim in [1usize, 15, 16, 17, 128, 130] {
            let rows: Vec<f32> = (0..dim * 50).map(|i| ((i * 7919 % 113) as f32 - 56.0) / 40.0).collect();
            let q: Vec<f32> = (0..dim).map(|i| ((i * 31 % 17) as f32 - 8.0) / 9.0).collect();
            let norms: Vec<f32> = rows.chunks(dim).map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt()).collect();
            for metric in Metric::ALL {
                let mut out = vec![0f32; 50];
                distances(metric, &q, &rows, &norms, &mut out);
                for (r, d) in rows.chunks(dim).zip(&out) {
                    let want = metric.distance(&q, r);
                    assert!((d - want).abs() <= 1e-4 * want.abs().max(1.0), "{metric} dim {dim}: {d} vs {want}");
                }
            }
        }
    }
}
