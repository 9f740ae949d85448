//! `visage compare A B`: are the largest faces of two photos the same person?

use super::embed::{prepare, Prepared};
use crate::context::GlobalOpts;
use crate::Outcome;
use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;
use std::path::{Path, PathBuf};
use visage::{largest, Metric, Visage, DEFAULT_THRESHOLD};

/// Arguments of `visage compare`.
#[derive(Args)]
pub struct CompareArgs {
    /// First photo (or aligned 150x150 chip).
    pub a: PathBuf,
    /// Second photo (or chip).
    pub b: PathBuf,
    /// Same person when the distance is below this.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD as f64)]
    pub threshold: f64,
    /// Distance: l2 (dlib's), cosine or chi2. Thresholds differ per metric.
    #[arg(long, default_value = "l2")]
    pub metric: Metric,
    /// Print JSON instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

fn largest_embedding(v: &Visage, path: &Path) -> Result<Vec<f32>> {
    match prepare(v, path, false, false)? {
        Prepared::Chip(c) => Ok(v.embed_chips(&[c])?.remove(0)),
        Prepared::Photo(faces, mut chips) => {
            let Some(i) = largest(&faces) else { bail!("{}: no face found", path.display()) };
            Ok(v.embed_chips(&[chips.swap_remove(i)])?.remove(0))
        }
    }
}

pub fn run(g: &GlobalOpts, a: CompareArgs) -> Result<Outcome> {
    let v = g.visage()?;
    let (ea, eb) = rayon::join(|| largest_embedding(&v, &a.a), || largest_embedding(&v, &a.b));
    let (ea, eb) = (ea?, eb?);
    let d = a.metric.distance(&ea, &eb) as f64;
    let same = d < a.threshold;
    if a.json {
        println!("{}", json!({"a": a.a, "b": a.b, "metric": a.metric.name(), "distance": d, "threshold": a.threshold, "same": same}));
    } else {
        let (word, op) = if same { ("same person", "<") } else { ("different people", ">=") };
        println!("{word}: {} distance {d:.4} {op} threshold {:.4}", a.metric, a.threshold);
    }
    Ok(if same { Outcome::Ok } else { Outcome::No })
}
