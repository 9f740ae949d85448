//! Distances between face embeddings.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How two embeddings are compared. Smaller is more alike for every metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Euclidean distance (dlib's metric; same person below 0.6).
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

    /// The distance between `a` and `b` (same length).
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "embeddings of different dimensions");
        match self {
            Metric::L2 => a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt(),
            Metric::Cosine => {
                let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
                for (x, y) in a.iter().zip(b) {
                    dot += x * y;
                    na += x * x;
                    nb += y * y;
                }
                let denom = (na * nb).sqrt();
                if denom == 0.0 {
                    1.0
                } else {
                    1.0 - dot / denom
                }
            }
            Metric::Chi2 => a
                .iter()
                .zip(b)
                .map(|(x, y)| {
                    let d = x.abs() + y.abs();
                    if d == 0.0 {
                        0.0
                    } else {
                        (x - y) * (x - y) / d
                    }
                })
                .sum(),
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
