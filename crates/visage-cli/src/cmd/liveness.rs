//! `visage liveness`: is each face live, or a photo of a photo? And `liveness train` /
//! `liveness eval` on a presentation-attack data set laid out as NUAA is.

use crate::context::GlobalOpts;
use crate::inputs::{expand, in_parallel_chunks, progress};
use crate::output::{error_text, json_line, path_text, report_error};
use crate::Outcome;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};
use visage_eval::liveness::{self, PadDataset, TrainOptions};
use visage_liveness::{Judgement, LivenessCheck, LivenessModel, Verdict};

/// Arguments of `visage liveness`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LivenessArgs {
    #[command(subcommand)]
    pub command: Option<LivenessCommand>,
    /// Photos or folders to check.
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelOpt,
    /// Live when the score is above this [default: the model's threshold].
    #[arg(long, value_parser = crate::args::rate)]
    pub threshold: Option<f64>,
    /// Print JSON lines instead of sentences.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub photo_opts: crate::context::PhotoOpts,
}

/// The liveness model option.
#[derive(Args, Clone, Default)]
pub struct ModelOpt {
    /// A liveness model file made by `visage liveness train` (a texture model's JSON or a CNN's
    /// model file) [default: the model shipped with visage].
    #[arg(long = "liveness-model", value_name = "FILE")]
    pub liveness_model: Option<PathBuf>,
}

impl ModelOpt {
    /// The chosen model.
    pub fn load(&self) -> Result<Box<dyn LivenessCheck>> {
        match &self.liveness_model {
            Some(p) => Ok(visage_liveness::load(p)?),
            None => Ok(Box::new(LivenessModel::shipped())),
        }
    }
}

/// `visage liveness train` and `visage liveness eval`.
#[derive(Subcommand)]
pub enum LivenessCommand {
    /// Train a model on the training lists of DIR (train_live.txt, train_spoof.txt; the
    /// photo's folder is its subject). Hyper-parameters and thresholds are chosen by
    /// cross-validation over the training subjects, never on the test lists.
    Train {
        /// The data set's folder (e.g. NUAA's).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Where to write the model.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The model: `texture` (colour LBP and a logistic classifier) or `cnn` (a small
        /// network on the face crop; needs a build with the `train` feature).
        #[arg(long, default_value = "texture", value_parser = ["texture", "cnn"])]
        kind: String,
        /// Subject folds for the cross-validation [default: 9 for texture (NUAA's 9 training
        /// subjects, leave one out), 3 for cnn].
        #[arg(long)]
        folds: Option<usize>,
        /// cnn: the most epochs tried (the validation picks how many the final network gets).
        #[arg(long, default_value_t = 20)]
        epochs: usize,
        /// cnn: side of the face crop in pixels.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(16..=256))]
        crop_size: u32,
        /// cnn: dlib chip padding of the face crop (0.25 is the embedding's chip; more shows the
        /// surroundings).
        #[arg(long, default_value_t = 0.4)]
        crop_padding: f64,
        /// cnn: output channels of each 3x3 stride-2 convolution.
        #[arg(long, value_delimiter = ',', default_value = "16,32,64,128")]
        channels: Vec<usize>,
        /// cnn: seeds the weights, the order of the photos and the augmentation.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// cnn: validation folds by `subject` (--folds of them) or by `session` (NUAA's file
        /// names; each training session held out in turn, as the test list's session is new).
        #[arg(long, default_value = "subject", value_parser = ["subject", "session"])]
        split: String,
        /// cnn: standardise each crop per channel (mean 128, deviation 40) before the network
        /// reads it, so that the light's brightness and colour cast do not reach it.
        #[arg(long)]
        standardize: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        photo_opts: crate::context::PhotoOpts,
    },
    /// Measure a model on the test lists of DIR (test_live.txt, test_spoof.txt): APCER per
    /// attack type, BPCER, ACER at the model's threshold, BPCER20, EER, failures to acquire.
    Eval {
        /// The data set's folder.
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        #[command(flatten)]
        model: ModelOpt,
        /// Also draw the ROC (APCER against BPCER) and the score histograms (.png or .svg).
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        photo_opts: crate::context::PhotoOpts,
    },
}

impl LivenessArgs {
    /// Whether the command prints JSON.
    pub fn json(&self) -> bool {
        match &self.command {
            None => self.json,
            Some(LivenessCommand::Train { json, .. }) | Some(LivenessCommand::Eval { json, .. }) => *json,
        }
    }

    /// The photo options of whichever form was given.
    pub fn photo_opts(&self) -> &crate::context::PhotoOpts {
        match &self.command {
            None => &self.photo_opts,
            Some(LivenessCommand::Train { photo_opts, .. }) | Some(LivenessCommand::Eval { photo_opts, .. }) => photo_opts,
        }
    }
}

/// The judgement as JSON fields.
pub fn judgement_json(j: &Judgement) -> serde_json::Value {
    json!({
        "liveness": j.verdict.word(),
        "score": j.score,
        "threshold": j.threshold,
        "reason": j.reason.map(|r| r.reason()),
    })
}

/// The judgement as words: `live (score 0.93 > 0.41)`.
pub fn judgement_text(j: &Judgement) -> String {
    match (j.verdict, j.score, j.reason) {
        (Verdict::Live, Some(s), _) => format!("live (score {s:.3} > {:.3})", j.threshold),
        (Verdict::Spoof, Some(s), _) => format!("spoof (score {s:.3} <= {:.3})", j.threshold),
        (_, _, Some(r)) => format!("cannot judge: {}", r.reason()),
        _ => j.verdict.word().to_string(),
    }
}

pub fn run(g: &GlobalOpts, a: LivenessArgs) -> Result<Outcome> {
    match a.command {
        Some(LivenessCommand::Train { data, out, kind, folds, epochs, crop_size, crop_padding, channels, seed, split, standardize, json, .. }) => {
            if kind == "cnn" {
                let c = CnnArgs { folds: folds.unwrap_or(3), epochs, size: crop_size, padding: crop_padding, channels, seed, by_session: split == "session", standardize };
                return train_cnn(g, &data, &out, c, json);
            }
            train(g, &data, &out, folds.unwrap_or(9), json)
        }
        Some(LivenessCommand::Eval { data, model, plot, json, .. }) => eval(g, &data, &model, plot.as_deref(), json),
        None => check(g, &a.paths, &a.model, a.threshold, a.json),
    }
}

fn check(g: &GlobalOpts, paths: &[PathBuf], model: &ModelOpt, threshold: Option<f64>, json: bool) -> Result<Outcome> {
    if paths.is_empty() {
        bail!("no photos to check: give photos or folders, or `visage liveness train|eval`");
    }
    let model = model.load()?;
    let photos = expand(paths)?;
    if photos.is_empty() {
        bail!("no photos to process");
    }
    let v = g.visage()?;
    let bar = progress(photos.len(), "checking", g.quiet);
    let (mut failed, mut all_live) = (false, true);
    let work = |p: &PathBuf| -> Result<_> {
        crate::inputs::check_file(p)?;
        let img = v.load_image(p)?;
        let faces = v.find_faces(&img).with_context(|| p.display().to_string())?;
        let judged: Vec<_> = faces
            .into_iter()
            .map(|f| {
                let j = model.judge(&img, f.detection, &f.landmarks, threshold);
                (f, j)
            })
            .collect();
        Ok(judged)
    };
    in_parallel_chunks(&photos, 64, &bar, work, |chunk, results| {
        for (p, r) in chunk.iter().zip(results) {
            match r {
                Ok(faces) => {
                    if faces.is_empty() {
                        failed = true;
                        bar.suspend(|| report_error(p, &format!("{}: no face found", path_text(p)), json));
                        continue;
                    }
                    all_live &= faces.iter().all(|(_, j)| j.verdict == Verdict::Live);
                    if json {
                        let faces: Vec<_> = faces
                            .iter()
                            .map(|(f, j)| {
                                let mut v = super::face_json(f);
                                v.as_object_mut().unwrap().extend(judgement_json(j).as_object().unwrap().clone());
                                v
                            })
                            .collect();
                        json_line(&json!({"path": path_text(p), "faces": faces}));
                    } else {
                        for (i, (f, j)) in faces.iter().enumerate() {
                            let r = f.rect;
                            println!("{} face {i} [{},{},{},{}]: {}", path_text(p), r.left, r.top, r.right, r.bottom, judgement_text(j));
                        }
                    }
                }
                Err(e) => {
                    failed = true;
                    bar.suspend(|| report_error(p, &error_text(&e), json));
                }
            }
        }
        Ok(())
    })?;
    Ok(if failed {
        Outcome::PartialFailure
    } else if all_live {
        Outcome::Ok
    } else {
        Outcome::Spoof
    })
}

fn dataset(dir: &Path) -> Result<PadDataset> {
    PadDataset::open(dir).with_context(|| {
        format!("{}: not a liveness data set (train_live.txt, train_spoof.txt, test_live.txt, test_spoof.txt)", dir.display())
    })
}

/// The CNN trainer's options as given.
#[cfg_attr(not(feature = "train"), allow(dead_code))]
struct CnnArgs {
    folds: usize,
    epochs: usize,
    size: u32,
    padding: f64,
    channels: Vec<usize>,
    seed: u64,
    by_session: bool,
    standardize: bool,
}

#[cfg(feature = "train")]
fn train_cnn(g: &GlobalOpts, dir: &Path, out: &Path, c: CnnArgs, json: bool) -> Result<Outcome> {
    let CnnArgs { folds, epochs, size, padding, channels, seed, by_session, standardize } = c;
    let data = dataset(dir)?;
    if out.is_dir() {
        bail!("{}: --out names the model file to write, not a folder", out.display());
    }
    if channels.is_empty() || channels.iter().any(|&c| c == 0 || c > 1024) || epochs == 0 || !(0.0..=2.0).contains(&padding) {
        bail!("--channels needs 1 to 1024 per layer, --epochs at least 1, --crop-padding within 0..=2");
    }
    let o = super::liveness_cnn::CnnOptions { size, padding, channels, folds, epochs, seed, split_by_session: by_session, standardize };
    super::liveness_cnn::train(g, &data, dir, out, &o, json)
}

#[cfg(not(feature = "train"))]
fn train_cnn(_: &GlobalOpts, _: &Path, _: &Path, _: CnnArgs, _: bool) -> Result<Outcome> {
    bail!("`--kind cnn` trains with burn, which this build leaves out: build with `cargo build --release -p visage-cli --features train`")
}

fn train(g: &GlobalOpts, dir: &Path, out: &Path, folds: usize, json: bool) -> Result<Outcome> {
    let data = dataset(dir)?;
    if out.is_dir() {
        bail!("{}: --out names the model file to write, not a folder", out.display());
    }
    let v = g.visage()?;
    let bar = progress(data.train.len(), "finding faces", g.quiet);
    let options = TrainOptions { folds, ..TrainOptions::default() };
    let command = format!("visage liveness train --data {} --out {} --folds {folds}", dir.display(), out.display());
    let (model, report) = liveness::train(&v, &data, &options, &command, &|| bar.inc(1)).map_err(anyhow::Error::msg)?;
    bar.finish_and_clear();
    // Written whole to a temporary file and renamed: a killed run leaves no half model.
    let tmp = out.with_extension("json.partial");
    std::fs::write(&tmp, model.to_json()).with_context(|| format!("{}: cannot write the model", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("{}: cannot write the model", out.display()))?;
    if json {
        json_line(&json!({"model": path_text(out), "report": report}));
        return Ok(Outcome::Ok);
    }
    println!(
        "training photos judged: {} live, {} spoof; no face: {} live, {} spoof; cannot judge: {} live, {} spoof",
        report.judged.live,
        report.judged.attack,
        report.no_face.live,
        report.no_face.attack,
        report.cannot_judge.live,
        report.cannot_judge.attack
    );
    println!("subject folds: {}", report.folds.iter().map(|f| f.join(",")).collect::<Vec<_>>().join(" | "));
    println!("{:<34} {:>8} {:>10} {:>10}", "features", "lambda", "val ACER", "val EER");
    for c in &report.candidates {
        println!("{:<34} {:>8} {:>9.2}% {:>9.2}%", spec_text(&c.spec), c.lambda, c.acer * 100.0, c.eer * 100.0);
    }
    let c = &report.chosen;
    println!(
        "kept: {} lambda {} (validation ACER {:.2}%); threshold {:.4}, APCER<=5% threshold {:.4}",
        spec_text(&c.spec),
        c.lambda,
        c.acer * 100.0,
        model.threshold,
        model.threshold_apcer5
    );
    println!("model written to {}", path_text(out));
    Ok(Outcome::Ok)
}

/// A feature recipe in a few words: `64px face 0.2 + ctx 1.0 grey+colour`.
fn spec_text(s: &visage_liveness::FeatureSpec) -> String {
    let ctx = match s.context_padding {
        Some(p) => format!(" + ctx {p} {}", if s.context_grey { "grey+colour" } else { "colour" }),
        None => String::new(),
    };
    format!("{}px face {}{ctx}", s.size, s.face_padding)
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

fn eval(g: &GlobalOpts, dir: &Path, model: &ModelOpt, plot: Option<&Path>, json: bool) -> Result<Outcome> {
    if let Some(p) = plot {
        visage_eval::plot::check_path(p).map_err(anyhow::Error::msg)?;
    }
    let data = dataset(dir)?;
    let model = model.load()?;
    let v = g.visage()?;
    let bar = progress(data.test.len(), "checking", g.quiet);
    let r = liveness::evaluate(&v, model.as_ref(), &data.test, &|| bar.inc(1));
    bar.finish_and_clear();
    if let Some(p) = plot {
        visage_eval::plot::write_pad(p, &r).map_err(|e| anyhow::anyhow!("{}: cannot draw the plot: {e}", p.display()))?;
    }
    if json {
        json_line(&json!({"data": path_text(dir), "report": r}));
        return Ok(Outcome::Ok);
    }
    println!(
        "test photos: {} live, {} spoof; no face (failure to acquire): {} live, {} spoof; cannot judge: {} live, {} spoof",
        r.photos.live, r.photos.attack, r.no_face.live, r.no_face.attack, r.cannot_judge.live, r.cannot_judge.attack
    );
    let t = &r.at_threshold;
    for a in &t.per_attack {
        println!("APCER ({}, {} photos): {}", a.attack, a.count, pct(a.apcer));
    }
    println!(
        "at the model's threshold {:.4} (chosen on validation): APCER {} BPCER {} ACER {}",
        t.threshold,
        pct(t.apcer),
        pct(t.bpcer),
        pct(t.acer)
    );
    let b = &r.at_apcer5;
    println!("BPCER20 (threshold {:.4}, APCER <= 5% on validation): BPCER {} (test APCER {})", b.threshold, pct(b.bpcer), pct(b.apcer));
    println!("EER on the test scores (threshold-free): {} at {:.4}", pct(r.eer), r.eer_threshold);
    Ok(Outcome::Ok)
}
