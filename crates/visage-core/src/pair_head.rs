//! A trained Siamese binary head (DeepFace, Taigman et al. 2014) as it is used at inference:
//! the probability that two embeddings show one person,
//!
//! - [`HeadKind::Abs`]: `sigmoid(sum_k w_k |a_k - b_k| + bias)`,
//! - [`HeadKind::Chi2`]: `sigmoid(sum_k w_k (a_k - b_k)^2 / (|a_k| + |b_k| + eps) + bias)`,
//!
//! and the file that carries it (JSON, format [`PairHead::FORMAT`]): the weights, the
//! embedding model they were trained on (a head never scores another model's embeddings),
//! the decision threshold on the probability, and how it was made.
//!
//! The training side (visage-train, on burn) computes the same features; a parity test
//! checks the two within 1e-6.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Added to the chi-squared denominator `|a_k| + |b_k|` (signed embeddings: see
/// [`HeadKind::Chi2`]).
pub const CHI2_EPS: f64 = 1e-6;

/// The per-component comparison a head weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    /// `|a_k - b_k|`.
    Abs,
    /// `(a_k - b_k)^2 / (|a_k| + |b_k| + eps)`: the textbook `(a - b)^2 / (a + b)` for
    /// non-negative features; for signed ones (dlib's) the absolute values keep every term
    /// non-negative and at most `|a_k - b_k|`.
    Chi2,
}

impl HeadKind {
    /// `abs` or `chi2`.
    pub fn name(self) -> &'static str {
        match self {
            HeadKind::Abs => "abs",
            HeadKind::Chi2 => "chi2",
        }
    }

    /// The feature of one component pair.
    #[inline]
    pub fn feature(self, a: f32, b: f32) -> f32 {
        match self {
            HeadKind::Abs => (a - b).abs(),
            HeadKind::Chi2 => (a - b) * (a - b) / (a.abs() + b.abs() + CHI2_EPS as f32),
        }
    }
}

impl std::str::FromStr for HeadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "abs" => Ok(HeadKind::Abs),
            "chi2" => Ok(HeadKind::Chi2),
            _ => Err(format!("{s:?}: head kinds are abs and chi2")),
        }
    }
}

impl std::fmt::Display for HeadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A trained head and what it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairHead {
    /// Always [`PairHead::FORMAT`].
    pub format: String,
    /// Abs or chi-squared.
    pub kind: HeadKind,
    /// The id of the embedding model whose embeddings it compares (the model descriptor's).
    pub model: String,
    /// One weight per embedding component.
    pub weights: Vec<f32>,
    /// The bias.
    pub bias: f32,
    /// Pairs with a probability at or above this are declared the same person.
    pub threshold: f64,
    /// How it was made: the command, the data, the figures (free-form, for people).
    #[serde(default)]
    pub provenance: serde_json::Value,
}

/// A head file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a head file, or a damaged one.
    #[error("{path}: not a visage head file ({reason})")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Embeddings of another model, or of another size.
    #[error("the head was trained on {expected} embeddings, these are {found}")]
    Mismatch {
        /// What the head expects.
        expected: String,
        /// What it was given.
        found: String,
    },
}

impl PairHead {
    /// The file format's name and version.
    pub const FORMAT: &'static str = "visage-head/1";

    /// A head from its parts (threshold 0.5: the even-odds decision).
    pub fn new(kind: HeadKind, model: &str, weights: Vec<f32>, bias: f32) -> Self {
        PairHead { format: Self::FORMAT.into(), kind, model: model.into(), weights, bias, threshold: 0.5, provenance: serde_json::Value::Null }
    }

    /// The embedding dimension.
    pub fn dim(&self) -> usize {
        self.weights.len()
    }

    /// `sum_k w_k x_k + bias`, summed in f64 (the order of a dot product does not move it).
    pub fn logit(&self, a: &[f32], b: &[f32]) -> f64 {
        assert!(a.len() == self.dim() && b.len() == self.dim(), "{}-d head, {}-d and {}-d embeddings", self.dim(), a.len(), b.len());
        let s: f64 = self.weights.iter().zip(a.iter().zip(b)).map(|(&w, (&x, &y))| w as f64 * self.kind.feature(x, y) as f64).sum();
        s + self.bias as f64
    }

    /// The probability that `a` and `b` show the same person.
    pub fn probability(&self, a: &[f32], b: &[f32]) -> f64 {
        sigmoid(self.logit(a, b))
    }

    /// Whether the head's decision on `a`, `b` is "same person".
    pub fn same(&self, a: &[f32], b: &[f32]) -> bool {
        self.probability(a, b) >= self.threshold
    }

    /// Checks that the head compares embeddings of `model_id`, `dim`-d.
    pub fn check_model(&self, model_id: &str, dim: usize) -> Result<(), HeadError> {
        if self.model != model_id || self.dim() != dim {
            return Err(HeadError::Mismatch {
                expected: format!("{} ({}-d)", self.model, self.dim()),
                found: format!("{model_id} ({dim}-d)"),
            });
        }
        Ok(())
    }

    /// Parses a head file's text (`path` only names it in errors).
    pub fn from_json(text: &str, path: &str) -> Result<Self, HeadError> {
        let invalid = |reason: String| HeadError::Invalid { path: path.into(), reason };
        let head: PairHead = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if head.format != Self::FORMAT {
            return Err(invalid(format!("format {:?}, expected {:?}", head.format, Self::FORMAT)));
        }
        if head.weights.is_empty() {
            return Err(invalid("no weights".into()));
        }
        if !head.weights.iter().all(|w| w.is_finite()) || !head.bias.is_finite() {
            return Err(invalid("a weight or the bias is not a finite number".into()));
        }
        if !(head.threshold > 0.0 && head.threshold < 1.0) {
            return Err(invalid(format!("threshold {} is not a probability in (0, 1)", head.threshold)));
        }
        Ok(head)
    }

    /// Reads a head file.
    pub fn load(path: &Path) -> Result<Self, HeadError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| HeadError::Io { path: shown.clone(), source })?;
        Self::from_json(&text, &shown)
    }

    /// Writes the head file atomically (a temporary file beside it, then a rename), so a
    /// killed process leaves the old file or the new one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), HeadError> {
        let shown = path.display().to_string();
        let io = |source| HeadError::Io { path: shown.clone(), source };
        let text = serde_json::to_string_pretty(self).expect("a head serialises");
        let tmp = path.with_extension("json.partial");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// The logistic function, stable at both ends.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probability_by_hand() {
        // Abs: w = [1, -2], b = 0.5; a = [1, 0], b = [0, 0.25]: 1*1 - 2*0.25 + 0.5 = 1.
        let h = PairHead::new(HeadKind::Abs, "m", vec![1.0, -2.0], 0.5);
        assert!((h.logit(&[1.0, 0.0], &[0.0, 0.25]) - 1.0).abs() < 1e-12);
        assert!((h.probability(&[1.0, 0.0], &[0.0, 0.25]) - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-12);
        // Chi2: a = [1, -1], b = [3, 1]: (2^2)/(1+3) = 1 and (2^2)/(1+1) = 2 (signed: |.|).
        let c = PairHead::new(HeadKind::Chi2, "m", vec![1.0, 1.0], 0.0);
        assert!((c.logit(&[1.0, -1.0], &[3.0, 1.0]) - 3.0).abs() < 1e-5);
        // Identical embeddings, zero components included: every feature is 0, no NaN.
        assert_eq!(c.logit(&[0.0, 2.0], &[0.0, 2.0]), 0.0);
    }

    #[test]
    fn file_round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("head.json");
        let mut h = PairHead::new(HeadKind::Chi2, "dlib", vec![0.25, -1.5, 3.0], -0.75);
        h.threshold = 0.42;
        h.save(&p).unwrap();
        assert_eq!(PairHead::load(&p).unwrap(), h);
        assert!(h.check_model("dlib", 3).is_ok());
        assert!(h.check_model("other", 3).unwrap_err().to_string().contains("dlib (3-d)"));
        assert!(h.check_model("dlib", 128).is_err());
        for (text, why) in [
            ("{}", "missing field"),
            (r#"{"format":"visage-head/9","kind":"abs","model":"m","weights":[1],"bias":0,"threshold":0.5}"#, "format"),
            (r#"{"format":"visage-head/1","kind":"abs","model":"m","weights":[],"bias":0,"threshold":0.5}"#, "no weights"),
            (r#"{"format":"visage-head/1","kind":"abs","model":"m","weights":[1],"bias":0,"threshold":1.5}"#, "threshold"),
            (r#"{"format":"visage-head/1","kind":"cos","model":"m","weights":[1],"bias":0,"threshold":0.5}"#, "variant"),
        ] {
            let e = PairHead::from_json(text, "h.json").unwrap_err().to_string();
            assert!(e.contains(why) && e.starts_with("h.json: not a visage head file"), "{e}");
        }
    }

    #[test]
    fn sigmoid_is_stable() {
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-15);
    }
}
