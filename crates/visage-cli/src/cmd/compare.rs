//! `visage compare A B`: are the largest faces of two photos the same person?

use super::embed::{prepare, Prepared};
use crate::context::GlobalOpts;
use crate::output::path_text;
use crate::Outcome;
use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;
use std::path::{Path, PathBuf};
use visage::{largest, Metric, Visage};

/// Arguments of `visage compare`.
#[derive(Args)]
pub struct CompareArgs {
    /// First photo (or an aligned chip of the model's chip size, with --chip).
    pub a: PathBuf,
    /// Second photo (or chip).
    pub b: PathBuf,
    // Help: same person below this; by default the model's threshold for the metric.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::args::threshold,
          help = format!("Same person when the distance is below this [default: the model's threshold for the metric: {}]", crate::args::model_thresholds()))]
    pub threshold: Option<f64>,
    /// Both inputs are aligned face chips, embedded as they are (no detection).
    #[arg(long)]
    pub chip: bool,
    /// Distance: l2 (dlib's), cosine or chi2. Thresholds differ per metric.
    #[arg(long, default_value = "l2")]
    pub metric: Metric,
    /// Print JSON instead of a sentence.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub photo_opts: crate::context::PhotoOpts,
}

fn largest_embedding(v: &Visage, path: &Path, chip: bool) -> Result<Vec<f32>> {
    match prepare(v, path, chip)? {
        Prepared::Chip(c) => Ok(v.embed_chips(&[c])?.remove(0)),
        Prepared::Photo(faces, mut chips) => {
            let Some(i) = largest(&faces) else { bail!("{}: no face found", path.display()) };
            Ok(v.embed_chips(&[chips.swap_remove(i)])?.remove(0))
        }
    }
}

pub fn run(g: &GlobalOpts, a: CompareArgs) -> Result<Outcome> {
    let v = g.visage()?;
    let threshold = a.threshold.unwrap_or_else(|| crate::output::f32_as_decimal(v.descriptor().threshold(a.metric)));
    let (ea, eb) = rayon::join(|| largest_embedding(&v, &a.a, a.chip), || largest_embedding(&v, &a.b, a.chip));
    let (ea, eb) = (ea?, eb?);
    let d = a.metric.distance(&ea, &eb);
    let same = (d as f64) < threshold;
    if a.json {
        println!(
            "{}",
            json!({"a": path_text(&a.a), "b": path_text(&a.b), "metric": a.metric.name(), "distance": crate::output::f32_as_decimal(d), "threshold": threshold, "same": same})
        );
    } else {
        let (word, op) = if same { ("same person", "<") } else { ("different people", ">=") };
        println!("{word}: {} distance {d:.4} {op} threshold {threshold:.4}", a.metric);
    }
    Ok(if same { Outcome::Ok } else { Outcome::No })
}
