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
    /// Decide with a trained Siamese head (`visage train head`): the probability that the two
    /// faces are one person, same at the head's threshold (--threshold then overrides it, as a
    /// probability in (0, 1)).
    #[arg(long, value_name = "FILE")]
    pub head: Option<PathBuf>,
    /// Print JSON instead of a sentence.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub photo_opts: crate::context::PhotoOpts,
}

/// Loads a head for `v`'s embeddings, with `threshold` (a probability) overriding its own.
pub fn load_head(path: &Path, v: &Visage, threshold: Option<f64>) -> Result<visage_core::PairHead> {
    let mut head = visage_core::PairHead::load(path)?;
    head.check_model(&v.descriptor().id, v.descriptor().dim)?;
    if let Some(t) = threshold {
        if !(t > 0.0 && t < 1.0) {
            bail!("--threshold {t}: with --head the threshold is a probability in (0, 1)");
        }
        head.threshold = t;
    }
    Ok(head)
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
    let head = a.head.as_deref().map(|p| load_head(p, &v, a.threshold)).transpose()?;
    let threshold = a.threshold.unwrap_or_else(|| crate::output::f32_as_decimal(v.descriptor().threshold(a.metric)));
    let (ea, eb) = rayon::join(|| largest_embedding(&v, &a.a, a.chip), || largest_embedding(&v, &a.b, a.chip));
    let (ea, eb) = (ea?, eb?);
    if let Some(h) = head {
        let p = h.probability(&ea, &eb);
        let same = p >= h.threshold;
        if a.json {
            println!(
                "{}",
                json!({"a": path_text(&a.a), "b": path_text(&a.b), "head": h.kind.name(), "probability": p, "threshold": h.threshold, "same": same})
            );
        } else {
            let (word, op) = if same { ("same person", ">=") } else { ("different people", "<") };
            println!("{word}: {} head probability {p:.4} {op} threshold {:.4}", h.kind, h.threshold);
        }
        return Ok(if same { Outcome::Ok } else { Outcome::No });
    }
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
