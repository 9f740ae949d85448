//! `visage eval lfw` and `visage eval pairs`: the k-fold verification protocol.

use crate::context::GlobalOpts;
use crate::inputs::progress;
use crate::Outcome;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::PathBuf;
use visage::Metric;
use visage_eval::embed::{EmbedOptions, EvalEmbedder};
use visage_eval::pairs::{parse_generic, parse_lfw, Pair};
use visage_eval::protocol::{evaluate, evaluate_per_fold, Scored};
use visage_eval::{plot, roc};

/// Evaluation commands.
#[derive(Subcommand)]
pub enum EvalCommand {
    /// Labeled Faces in the Wild: the 6000 pairs of pairs.txt in 10 folds.
    Lfw {
        /// The LFW image folder (<Name>/<Name>_<NNNN>.jpg).
        #[arg(long, value_name = "DIR")]
        images: PathBuf,
        /// LFW's pairs.txt (View 2: 10 folds).
        #[arg(long, value_name = "FILE")]
        pairs: PathBuf,
        #[command(flatten)]
        opts: EvalOpts,
        #[command(flatten)]
        out: PairOpts,
    },
    /// Open-set identification on a folder per person: people with 2+ photos are enrolled from
    /// their first photo and probed with the others; people with one photo are never enrolled.
    /// Reports rank-1 accuracy and the rejection rate of unknown faces at the threshold.
    Identify {
        /// Folder with one sub-folder of photos per person (e.g. LFW's images).
        #[arg(long, value_name = "DIR")]
        images: PathBuf,
        // Help: the identification threshold; by default the model's for the metric.
        #[arg(long, allow_negative_numbers = true, value_parser = crate::args::threshold,
              help = format!("Identification threshold: a face is named when its nearest enrolled person is closer [default: the model's threshold for the metric: {}]", crate::args::model_thresholds()))]
        threshold: Option<f64>,
        #[command(flatten)]
        opts: EvalOpts,
    },
    /// Any labelled pair list: pathA<TAB>pathB<TAB>1 (same) or 0 (different), paths relative to the file.
    Pairs {
        /// The pair list.
        #[arg(long, value_name = "FILE")]
        pairs: PathBuf,
        /// Folds (pairs are dealt into them class by class; each fold needs at least one
        /// same-person and one different-people pair).
        #[arg(long, default_value_t = 10)]
        folds: usize,
        #[command(flatten)]
        opts: EvalOpts,
        #[command(flatten)]
        out: PairOpts,
    },
}

impl EvalCommand {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match self {
            EvalCommand::Lfw { opts, .. } | EvalCommand::Identify { opts, .. } | EvalCommand::Pairs { opts, .. } => opts.json,
        }
    }
}

/// Options of the pair protocol (`eval lfw`, `eval pairs`).
#[derive(Args)]
pub struct PairOpts {
    /// The false-accept rate VAL (TAR) is reported at, in (0, 1).
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true, value_parser = crate::args::rate)]
    pub far: f64,
    /// Draw the ROC curve and the distance histograms (.png or .svg).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Write every pair's distance (TSV: a, b, same, fold, distance, a detected, b detected).
    #[arg(long, value_name = "FILE")]
    pub scores: Option<PathBuf>,
    /// Score pairs with a trained Siamese head (`visage train head`) instead of the metric's
    /// distance. A head trained on the people of these pairs scores them too well: for an
    /// honest figure use --train-head.
    #[arg(long, value_name = "FILE", conflicts_with = "train_head")]
    pub head: Option<PathBuf>,
    /// The head protocol: for each test fold, fit a Siamese head (abs or chi2) on the other
    /// folds' pairs, choose its threshold there, and test it on the fold (needs a build with
    /// `--features train`). Fitting options: --head-epochs, --head-lr.
    #[arg(long, value_name = "abs|chi2")]
    pub train_head: Option<visage_core::HeadKind>,
    /// Epochs of each fold's head fit (--train-head).
    #[arg(long, default_value_t = 60, requires = "train_head")]
    pub head_epochs: u32,
    /// Adam's learning rate of each fold's head fit (--train-head).
    #[arg(long, default_value_t = 0.05, requires = "train_head", value_parser = crate::args::rate)]
    pub head_lr: f64,
}

/// How the pairs of a protocol are scored.
enum Scoring {
    /// The metric's distance.
    Distance,
    /// A fixed trained head: the negated logit (lower = same).
    Head(visage_core::PairHead),
    /// A head fitted per test fold on the other folds.
    TrainedPerFold(visage_core::HeadKind),
}

impl Scoring {
    fn label(&self, metric: Metric) -> String {
        match self {
            Scoring::Distance => metric.name().to_string(),
            Scoring::Head(h) => format!("{} head (negated logit)", h.kind),
            Scoring::TrainedPerFold(k) => format!("{k} head fitted per fold (negated logit)"),
        }
    }
}

/// A Siamese head fitted on `pairs` of embeddings (the `train` feature).
#[cfg(feature = "train")]
fn fit_fold_head(pairs: &[(&[f32], &[f32], bool)], kind: visage_core::HeadKind, po: &PairOpts, model: &str) -> Result<visage_core::PairHead> {
    let fit = crate::cmd::train::FitOpts { kind, epochs: po.head_epochs, batch: 256, lr: po.head_lr, seed: 1 };
    Ok(crate::cmd::train::fit_head(pairs, &fit, model).head)
}

#[cfg(not(feature = "train"))]
fn fit_fold_head(_: &[(&[f32], &[f32], bool)], _: visage_core::HeadKind, _: &PairOpts, _: &str) -> Result<visage_core::PairHead> {
    bail!("--train-head needs a visage built with training: `cargo build --release -p visage-cli --features train`")
}

/// Options shared by the evaluations.
#[derive(Args)]
pub struct EvalOpts {
    /// Distance: l2 (dlib's), cosine or chi2.
    #[arg(long, default_value = "l2")]
    pub metric: Metric,
    /// Test-time augmentation: average each embedding with that of the mirrored chip.
    #[arg(long)]
    pub flip: bool,
    /// Test-time augmentation: average N jittered copies of each chip (dlib's 99.38% uses 100;
    /// at most 1000).
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = crate::args::jitter)]
    pub jitter: u32,
    /// Landmarks used for alignment: 5 (the default pipeline) or 68 (dlib's 68-point model,
    /// as dlib's own LFW tests used; `visage models fetch --all` installs it; its training
    /// data forbids commercial use).
    #[arg(long, default_value_t = 5, value_parser = parse_landmarks)]
    pub landmarks: u32,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Embedding cache folder [default: $XDG_CACHE_HOME/visage/eval].
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache: Option<PathBuf>,
    /// Do not read or write the embedding cache.
    #[arg(long)]
    pub no_cache: bool,
}

/// The pipeline the evaluation's options ask for.
fn eval_visage(g: &GlobalOpts, o: &EvalOpts) -> Result<visage::Visage> {
    if o.landmarks == 68 {
        g.visage_with(visage::LandmarkScheme::Dlib68).context("the 68-point model (install it with `visage models fetch --all`)")
    } else {
        g.visage()
    }
}

/// Embeds photos as the evaluations do by default (no flip, no jitter, 5 landmarks, the
/// default cache), for training commands that reuse the evaluations' embedding cache.
#[cfg(feature = "train")]
pub fn embed_default(
    g: &GlobalOpts,
    v: &visage::Visage,
    photos: &[PathBuf],
) -> Result<(std::collections::HashMap<PathBuf, visage_eval::embed::Embedded>, visage_eval::embed::EmbedStats)> {
    let o = EvalOpts { metric: Metric::L2, flip: false, jitter: 0, landmarks: 5, json: true, cache: None, no_cache: false };
    embed_photos(g, v, &o, photos)
}

/// Embeds photos with the evaluation's options (and cache).
fn embed_photos(
    g: &GlobalOpts,
    v: &visage::Visage,
    o: &EvalOpts,
    photos: &[PathBuf],
) -> Result<(std::collections::HashMap<PathBuf, visage_eval::embed::Embedded>, visage_eval::embed::EmbedStats)> {
    let options =
        EmbedOptions { upsample: g.upsample, flip: o.flip, jitter: o.jitter, landmarks: o.landmarks, detector: g.detector.name() };
    let cache_dir = if o.no_cache { None } else { o.cache.clone().or_else(|| dirs::cache_dir().map(|d| d.join("visage").join("eval"))) };
    let embedder = EvalEmbedder::new(v, options, cache_dir.as_deref());
    let bar = progress(photos.len(), "embedding", g.quiet || o.json);
    let r = embedder.embed_all(photos, &|| bar.inc(1)).context("embedding the evaluation photos")?;
    bar.finish_and_clear();
    Ok(r)
}

fn identify(g: &GlobalOpts, images: &std::path::Path, threshold: Option<f64>, o: EvalOpts) -> Result<Outcome> {
    let scan = crate::inputs::people(images)?;
    scan.warn_unused(images, false);
    let split = visage_eval::openset::split(&scan.people);
    if split.gallery.is_empty() || split.unknown.is_empty() {
        bail!("{}: need people with 2+ photos (enrolled) and people with 1 photo (never enrolled)", images.display());
    }
    let photos: Vec<PathBuf> = split
        .gallery
        .iter()
        .map(|x| x.1.clone())
        .chain(split.known.iter().map(|x| x.1.clone()))
        .chain(split.unknown.iter().cloned())
        .collect();
    let v = eval_visage(g, &o)?;
    let threshold = threshold.unwrap_or_else(|| crate::output::f32_as_decimal(v.descriptor().threshold(o.metric)));
    let (emb, stats) = embed_photos(g, &v, &o, &photos)?;
    let get = |p: &PathBuf| emb[p].embedding.clone();
    let gallery: Vec<(String, Vec<f32>)> = split.gallery.iter().map(|(n, p)| (n.clone(), get(p))).collect();
    let known: Vec<(String, Vec<f32>)> = split.known.iter().map(|(n, p)| (n.clone(), get(p))).collect();
    let unknown: Vec<Vec<f32>> = split.unknown.iter().map(get).collect();
    let r = visage_eval::openset::evaluate(o.metric, &gallery, &known, &unknown, threshold);
    if o.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(Outcome::Ok);
    }
    let rate = if stats.seconds > 0.0 { stats.computed as f64 / stats.seconds } else { 0.0 };
    println!("open-set identification on {}: {} people enrolled (1 photo each), {} photos of them to identify, {} photos of {} people never enrolled", images.display(), r.enrolled, r.known_probes, r.unknown_probes, r.unknown_probes);
    println!(
        "photos         {} ({} embedded in {:.1} s = {:.1} photos/s, {} from cache)",
        photos.len(),
        stats.computed,
        stats.seconds,
        rate,
        stats.cached
    );
    println!(
        "rank-1         {:.2}%   (nearest enrolled person is right, threshold ignored; rank-5 {:.2}%)",
        r.rank1 * 100.0,
        r.rank5 * 100.0
    );
    println!("{:>9}  {:>14}  {:>14}  {:>14}  {:>16}", "threshold", "named right", "known rejected", "named wrong", "unknown rejected");
    // The sweep is around the threshold, which it includes (marked).
    for p in &r.sweep {
        let mark = if p.threshold == threshold { " <" } else { "" };
        println!(
            "{:>9.3}  {:>13.2}%  {:>13.2}%  {:>13.2}%  {:>15.2}%{mark}",
            p.threshold,
            p.detection_identification_rate * 100.0,
            p.known_rejected * 100.0,
            p.known_misidentified * 100.0,
            p.unknown_rejection_rate * 100.0
        );
    }
    Ok(Outcome::Ok)
}

fn parse_landmarks(s: &str) -> Result<u32, String> {
    match s {
        "5" => Ok(5),
        "68" => Ok(68),
        _ => Err("landmark models: 5 or 68".into()),
    }
}

pub fn run(g: &GlobalOpts, c: EvalCommand) -> Result<Outcome> {
    let (label, pairs, folds, o, po) = match c {
        EvalCommand::Identify { images, threshold, opts } => return identify(g, &images, threshold, opts),
        EvalCommand::Lfw { images, pairs, opts, out } => {
            if !images.is_dir() {
                bail!("{}: not a folder (--images is LFW's image folder)", images.display());
            }
            crate::inputs::check_file_as(&pairs, "pair list")?;
            let mut p = parse_lfw(&pairs, &images)?;
            let mut folds = p.iter().map(|x| x.fold).max().unwrap_or(0) + 1;
            if folds == 1 {
                // View 1's pairsDevTest/pairsDevTrain are one list: dealt into 10 folds class by
                // class (as `eval pairs` does), so thresholds are still chosen on other pairs.
                folds = 10;
                let mut counter = [0usize; 2];
                for x in &mut p {
                    let c = &mut counter[x.same as usize];
                    x.fold = *c % folds;
                    *c += 1;
                }
                if !opts.json && !g.quiet {
                    eprintln!("{}: one list, dealt into 10 folds class by class", pairs.display());
                }
            }
            (format!("LFW {}", pairs.file_name().unwrap_or_default().to_string_lossy()), p, folds, opts, out)
        }
        EvalCommand::Pairs { pairs, folds, opts, out } => {
            if folds < 2 {
                bail!("--folds {folds}: the protocol needs at least 2 folds; thresholds are never chosen on the pairs they are tested on");
            }
            crate::inputs::check_file_as(&pairs, "pair list")?;
            (pairs.display().to_string(), parse_generic(&pairs, folds)?, folds, opts, out)
        }
    };
    // Refuse what would fail only after the (long) embedding: the plot's format, the folds,
    // an output in a folder that does not exist.
    if let Some(p) = &po.plot {
        plot::check_path(p).map_err(anyhow::Error::msg)?;
    }
    for out in [&po.plot, &po.scores].into_iter().flatten() {
        let dir = out.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            bail!(
                "{}: the folder {} does not exist (checked before the evaluation, so that nothing is computed in vain)",
                out.display(),
                dir.display()
            );
        }
    }
    if folds < 2 {
        bail!(
            "the protocol needs at least 2 folds (this pair file has {folds}); thresholds are never chosen on the pairs they are tested on"
        );
    }
    let (ng, ni) = (pairs.iter().filter(|p| p.same).count(), pairs.iter().filter(|p| !p.same).count());
    if ng == 0 || ni == 0 {
        bail!("need both same-person and different-people pairs ({ng} and {ni} found)");
    }
    visage_eval::pairs::check_folds(&pairs, folds)?;
    let photos: Vec<PathBuf> = pairs.iter().flat_map(|p| [p.a.clone(), p.b.clone()]).collect::<BTreeSet<_>>().into_iter().collect();
    let scoring = match (&po.head, po.train_head) {
        (Some(path), _) => Scoring::Head(visage_core::PairHead::load(path)?),
        (None, Some(kind)) => {
            if cfg!(not(feature = "train")) {
                fit_fold_head(&[], kind, &po, "")?;
            }
            Scoring::TrainedPerFold(kind)
        }
        (None, None) => Scoring::Distance,
    };
    let v = eval_visage(g, &o)?;
    if let Scoring::Head(h) = &scoring {
        h.check_model(&v.descriptor().id, v.descriptor().dim)?;
    }
    let (emb, stats) = embed_photos(g, &v, &o, &photos)?;

    let mut scored: Vec<Scored> = pairs
        .iter()
        .map(|Pair { a, b, same, fold }| Scored {
            // By the f32's shortest decimal: thresholds read off distances print as they do.
            distance: match &scoring {
                Scoring::Head(h) => -h.logit(&emb[a].embedding, &emb[b].embedding),
                _ => visage_gallery::calibrate::distance_as_decimal(o.metric.distance(&emb[a].embedding, &emb[b].embedding)),
            },
            same: *same,
            fold: *fold,
        })
        .collect();
    let protocol = match &scoring {
        Scoring::TrainedPerFold(kind) => {
            let bar = progress(folds, "fitting a head per fold", g.quiet || o.json);
            let mut failure = None;
            let model = v.descriptor().id.clone();
            let protocol = evaluate_per_fold(folds, po.far, |k| {
                let train: Vec<(&[f32], &[f32], bool)> = pairs
                    .iter()
                    .filter(|p| p.fold != k)
                    .map(|p| (emb[&p.a].embedding.as_slice(), emb[&p.b].embedding.as_slice(), p.same))
                    .collect();
                let head = match fit_fold_head(&train, *kind, &po, &model) {
                    Ok(h) => h,
                    Err(e) => {
                        failure = Some(e);
                        return (vec![(0.0, true)], vec![(0.0, true)]);
                    }
                };
                let train_scores = train.iter().map(|&(x, y, same)| (-head.logit(x, y), same)).collect();
                let mut test_scores = Vec::new();
                for (p, s) in pairs.iter().zip(scored.iter_mut()).filter(|(p, _)| p.fold == k) {
                    s.distance = -head.logit(&emb[&p.a].embedding, &emb[&p.b].embedding);
                    test_scores.push((s.distance, p.same));
                }
                bar.inc(1);
                (train_scores, test_scores)
            });
            bar.finish_and_clear();
            if let Some(e) = failure {
                return Err(e);
            }
            protocol
        }
        _ => evaluate(&scored, folds, po.far),
    };
    let score_label = scoring.label(o.metric);
    let is_head = !matches!(scoring, Scoring::Distance);
    if let Some(path) = &po.scores {
        use visage_eval::embed::FaceSource::Detected;
        let mut tsv = String::from("a\tb\tsame\tfold\tdistance\ta_detected\tb_detected\n");
        for (p, s) in pairs.iter().zip(&scored) {
            tsv.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                p.a.display(),
                p.b.display(),
                p.same as u8,
                p.fold,
                s.distance,
                (emb[&p.a].source == Detected) as u8,
                (emb[&p.b].source == Detected) as u8
            ));
        }
        std::fs::write(path, tsv).with_context(|| format!("writing {}", path.display()))?;
    }
    let all: Vec<(f64, bool)> = scored.iter().map(|s| (s.distance, s.same)).collect();
    let roc = roc::roc(&all).expect("both kinds of pairs");
    // Rates are fractions: keep rounding noise (an AUC of 1.0000000000000002) inside [0, 1].
    let (auc, eer) = (roc.auc.clamp(0.0, 1.0), roc.eer.clamp(0.0, 1.0));
    // VAL's threshold is read off each training split's impostors: fewer than 1/FAR of them
    // cannot resolve that rate (the threshold sits below the first impostor whatever FAR asked).
    let train_impostors = (0..folds).map(|k| pairs.iter().filter(|p| !p.same && p.fold != k).count()).min().unwrap_or(0);
    let needed = (1.0 / po.far).ceil() as usize;
    let val_resolved = train_impostors >= needed;
    let rate = if stats.seconds > 0.0 { stats.computed as f64 / stats.seconds } else { 0.0 };
    let setup = format!(
        "score {}, upsample {}, {} landmarks, flip {}, jitter {}",
        score_label,
        g.upsample,
        o.landmarks,
        if o.flip { "on" } else { "off" },
        o.jitter
    );

    if o.json {
        println!(
            "{}",
            json!({
                "dataset": label, "pairs": pairs.len(), "genuine": ng, "impostor": ni, "folds": folds,
                "metric": o.metric.name(), "score": score_label, "upsample": g.upsample, "landmarks": o.landmarks, "flip": o.flip, "jitter": o.jitter,
                "photos": photos.len(), "embedded": stats.computed, "from_cache": stats.cached, "weak_detection": stats.weak, "not_detected": stats.fallback,
                "seconds": stats.seconds, "photos_per_second": rate,
                "accuracy_mean": protocol.accuracy_mean, "accuracy_std": protocol.accuracy_std, "threshold_mean": protocol.threshold_mean,
                "auc": auc, "eer": eer, "eer_threshold": roc.eer_threshold,
                "target_far": po.far, "val_resolved": val_resolved, "training_impostors": train_impostors, "val_mean": protocol.val_mean, "val_std": protocol.val_std, "far_mean": protocol.far_mean,
                "per_fold": protocol.folds,
            })
        );
    } else {
        println!("{label}: {} pairs in {folds} folds ({ng} same / {ni} different); {setup}", pairs.len());
        println!(
            "photos         {} ({} embedded in {:.1} s = {:.1} photos/s, {} from cache); face found only with a lowered threshold in {}, not at all in {} (fixed centre box used)",
            photos.len(), stats.computed, stats.seconds, rate, stats.cached, stats.weak, stats.fallback
        );
        println!(
            "accuracy       {:.2}% +- {:.2}%   (each fold tested at the threshold best on the other {})",
            protocol.accuracy_mean * 100.0,
            protocol.accuracy_std * 100.0,
            folds - 1
        );
        if is_head {
            // The protocol's scores are negated logits: show the thresholds as probabilities.
            let p: f64 = protocol.folds.iter().map(|f| visage_core::pair_head::sigmoid(-f.threshold)).sum::<f64>() / folds as f64;
            println!("threshold      {p:.4}  (probability; mean of the {folds} chosen thresholds)");
        } else {
            println!("threshold      {:.4}  (mean of the {folds} chosen thresholds)", protocol.threshold_mean);
        }
        println!("AUC            {auc:.5}");
        let at = if is_head { "negated logit" } else { "distance" };
        println!("EER            {:.2}%  (at {at} {:.4})", eer * 100.0, roc.eer_threshold);
        if !val_resolved {
            println!(
                "VAL@FAR={:<6} not measurable: each training split has only {train_impostors} different-people pairs, fewer than the {needed} (1/FAR) needed to resolve that rate",
                po.far
            );
        } else {
            println!(
                "VAL@FAR={:<6} {:.2}% +- {:.2}%  (FAR reached on the test folds: {:.4})",
                po.far,
                protocol.val_mean * 100.0,
                protocol.val_std * 100.0,
                protocol.far_mean
            );
        }
    }
    if let Some(path) = &po.plot {
        let genuine: Vec<f64> = all.iter().filter(|p| p.1).map(|p| p.0).collect();
        let impostor: Vec<f64> = all.iter().filter(|p| !p.1).map(|p| p.0).collect();
        let fig = plot::Figure {
            title: format!("{label}: accuracy {:.2}% ± {:.2}%  ({setup})", protocol.accuracy_mean * 100.0, protocol.accuracy_std * 100.0),
            roc: &roc,
            genuine: &genuine,
            impostor: &impostor,
            threshold: protocol.threshold_mean,
            metric: if is_head { "negated logit" } else { o.metric.name() },
        };
        plot::write(path, &fig).map_err(|e| anyhow::anyhow!("writing the plot {}: {e}", path.display()))?;
        if !o.json {
            eprintln!("plot written to {}", path.display());
        }
    }
    Ok(Outcome::Ok)
}
