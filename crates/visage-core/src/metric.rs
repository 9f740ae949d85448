//! Distances between face embeddings.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How two embeddings are compared. Smaller is more alike for every metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Euclidean distance (dlib's metric).
    #[default]
    L2,
    /// `1 - cos(a, b)`, in [0, 2].
    Cosine,
    /// Symmetric chi-squared, `sum (a_i - b_i)^2 / (|a_i| + |b_i|)` (terms with a zero
    /// denominator count 0). The absolute values make it defined for signed embeddings.
    Chi2,
}

impl Metric {
    /// All metrics.
    pub const ALL: [Metric; 3] = [Metric::L2, Metric::Cosine, Metric::Chi2];

    /// The distance between `a` and `b` (same length). The one implementation of every
    /// metric: the gallery's exact index runs the same reductions ([`sq_l2`], [`dot`],
    /// [`chi2`], [`cosine_distance`]), compiled there for the CPU's vector units.
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "embeddings of different dimensions");
        match self {
            Metric::L2 => sq_l2(a, b).sqrt(),
            Metric::Cosine => cosine_distance(dot(a, b), norm(a), norm(b)),
            Metric::Chi2 => chi2(a, b),
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Cosine => "cosine",
            Metric::Chi2 => "chi2",
        }
    }
}

/// Accumulator lanes of the reductions: sums are kept in 16 partial sums (element `i` goes to
/// lane `i % 16`, the tail after the last whole group of 16 is summed apart), so that the
/// compiler vectorises them. Every caller gets the same rounding.
const LANES: usize = 16;

/// `sum_i f(a_i, b_i)` over 16 lanes (see [`LANES`]).
#[inline(always)]
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let whole = a.len().min(b.len()) / LANES * LANES;
    let mut acc = [0f32; LANES];
    for (ac, bc) in a[..whole].chunks_exact(LANES).zip(b[..whole].chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += f(ac[l], bc[l]);
        }
    }
    let tail: f32 = a[whole..].iter().zip(&b[whole..]).map(|(&x, &y)| f(x, y)).sum();
    acc.iter().sum::<f32>() + tail
}

/// Squared Euclidean distance.
#[inline(always)]
pub fn sq_l2(a: &[f32], b: &[f32]) -> f32 {
    lane_sum(a, b, |x, y| (x - y) * (x - y))
}

/// Dot product.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    lane_sum(a, b, |x, y| x * y)
}

/// Euclidean norm.
#[inline(always)]
pub fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

/// Symmetric chi-squared (terms with a zero denominator count 0).
#[inline(always)]
pub fn chi2(a: &[f32], b: &[f32]) -> f32 {
    lane_sum(a, b, |x, y| {
        let s = x.abs() + y.abs();
        if s == 0.0 {
            0.0
        } else {
            (x - y) * (x - y) / s
        }
    })
}

/// `1 - cos` from the dot product and the two norms (1 when either vector is zero).
#[inline(always)]
pub fn cosine_distance(dot: f32, norm_a: f32, norm_b: f32) -> f32 {
    let denom = norm_a * norm_b;
    if denom == 0.0 {
        1.0
    } else {
        1.0 - dot / denom
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "l2" | "euclidean" => Ok(Metric::L2),
            "cosine" | "cos" => Ok(Metric::Cosine),
            "chi2" | "chi-squared" | "chisquared" => Ok(Metric::Chi2),
            other => Err(format!("unknown metric {other:?} (expected l2, cosine or chi2)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_distances() {
        let a = [1.0f32, 0.0, -2.0];
        let b = [0.0f32, 3.0, 2.0];
        assert!((Metric::L2.distance(&a, &b) - 26f32.sqrt()).abs() < 1e-6);
        // cos = (0 + 0 - 4) / (sqrt(5) * sqrt(13))
        let cos = -4.0 / (5f32.sqrt() * 13f32.sqrt());
        assert!((Metric::Cosine.distance(&a, &b) - (1.0 - cos)).abs() < 1e-6);
        // chi2 = 1/1 + 9/3 + 16/4 = 8
        assert!((Metric::Chi2.distance(&a, &b) - 8.0).abs() < 1e-6);
        for m in Metric::ALL {
            assert_eq!(m.distance(&a, &a), 0.0, "{m}");
            assert_eq!(m.name().parse::<Metric>().unwrap(), m);
        }
        assert!("manhattan".parse::<Metric>().is_err());
    }
}
