//! `visage train head`: a Siamese head fitted on the frozen embeddings of the loaded model
//! (visage-train, on burn), and the fitting `visage eval lfw --train-head` runs per fold.
//!
//! Built only with the `train` feature (`cargo build --release -p visage-cli --features
//! train`): burn takes minutes to compile, so the quick start's build leaves it out.

use crate::context::GlobalOpts;
use crate::Outcome;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use visage_core::{HeadKind, PairHead, SeededRng};
use visage_train::{HeadTraining, LabelledPair};

/// Training commands.
#[derive(Subcommand)]
pub enum TrainCommand {
    /// A Siamese head on the frozen embeddings of the model: sigmoid(sum_k w_k |a_k - b_k| + b)
    /// (abs) or its chi-squared form, fitted with binary cross-entropy, its threshold chosen
    /// on the training pairs. Use it with `--head FILE` on compare, verify, identify and eval.
    Head(HeadArgs),
    /// A small CNN embedder trained from scratch with the triplet loss and online mining in
    /// identity-balanced P x K batches, on chips cut by visage's detector and aligner (cached).
    /// Writes a safetensors model that every command takes with `--model FILE`.
    Embedder(super::train_embedder::EmbedderArgs),
    /// Transfer learning: dlib's pretrained ResNet-29 with its last residual blocks and fully
    /// connected layer trained further with the triplet loss (the frozen layers run on the
    /// engine). Writes a model file of the whole network for `--model FILE`.
    Finetune(super::train_finetune::FinetuneArgs),
}

/// `visage train head`.
#[derive(Args)]
pub struct HeadArgs {
    /// A folder with one sub-folder of photos per person: same-person pairs are drawn within
    /// each person (at most --pairs-per-person), as many different-people pairs at random.
    #[arg(long, value_name = "DIR", required_unless_present = "pairs", conflicts_with = "pairs")]
    pub data: Option<PathBuf>,
    /// Or a labelled pair list: LFW's pairs.txt / pairsDevTrain.txt (with --images), or a
    /// generic list pathA<TAB>pathB<TAB>0|1.
    #[arg(long, value_name = "FILE")]
    pub pairs: Option<PathBuf>,
    /// LFW's image folder, for an LFW pair list.
    #[arg(long, value_name = "DIR", requires = "pairs")]
    pub images: Option<PathBuf>,
    /// At most this many same-person pairs per person (with --data).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub pairs_per_person: usize,
    /// The head file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub fit: FitOpts,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How a head is fitted (shared with `eval lfw --train-head`).
#[derive(Args, Clone, Copy)]
pub struct FitOpts {
    /// abs: weighted |a_k - b_k|; chi2: weighted (a_k - b_k)^2 / (|a_k| + |b_k|).
    #[arg(long, default_value = "abs", value_name = "abs|chi2")]
    pub kind: HeadKind,
    /// Passes over the training pairs.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub epochs: u32,
    /// Pairs per Adam step.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch: u32,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.05, value_parser = crate::args::rate)]
    pub lr: f64,
    /// Seeds the order of the mini-batches (and the pairs drawn with --data).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// A fitted head and its training loss per epoch.
pub struct FittedHead {
    /// The head, its threshold chosen on the training pairs.
    pub head: PairHead,
    /// The mean training loss of each epoch.
    pub epoch_loss: Vec<f32>,
    /// Training accuracy at the chosen threshold.
    pub train_accuracy: f64,
}

/// Fits a head on `pairs` of embeddings of `model`, and chooses its threshold: the one with
/// the best accuracy on those same pairs (as the LFW protocol chooses thresholds on the
/// training folds), computed on the logit and stored as a probability.
pub fn fit_head(pairs: &[(&[f32], &[f32], bool)], fit: &FitOpts, model: &str) -> FittedHead {
    let labelled: Vec<LabelledPair> = pairs.iter().map(|&(a, b, same)| LabelledPair { a, b, same }).collect();
    let cfg = HeadTraining {
        kind: fit.kind,
        epochs: fit.epochs as usize,
        batch: fit.batch as usize,
        learning_rate: fit.lr,
        seed: fit.seed,
    };
    let device = visage_train::train_device();
    let fitted = cfg.fit(&labelled, &device);
    let mut head = fitted.head.to_pair_head(model, 0.5);
    // The protocol's scores are distance-like (lower = same): the negated logit.
    let scores: Vec<(f64, bool)> = pairs.iter().map(|&(a, b, same)| (-head.logit(a, b), same)).collect();
    let t = visage_eval::protocol::best_threshold(&scores);
    head.threshold = visage_core::pair_head::sigmoid(-t).clamp(1e-12, 1.0 - 1e-12);
    let train_accuracy = scores.iter().filter(|(s, same)| (*s < t) == *same).count() as f64 / scores.len() as f64;
    FittedHead { head, epoch_loss: fitted.epoch_loss, train_accuracy }
}

/// Same-person pairs within each person (at most `per_person` each, drawn at random when a
/// person has more) and as many different-people pairs, drawn uniformly over people.
pub(crate) fn draw_pairs(people: &[(String, Vec<PathBuf>)], per_person: usize, seed: u64) -> Vec<(PathBuf, PathBuf, bool)> {
    let mut rng = SeededRng::new(seed);
    let mut out = Vec::new();
    for (_, photos) in people.iter().filter(|p| p.1.len() >= 2) {
        let mut all: Vec<(usize, usize)> = (0..photos.len()).flat_map(|i| (i + 1..photos.len()).map(move |j| (i, j))).collect();
        for i in (1..all.len()).rev() {
            all.swap(i, rng.below(i + 1));
        }
        out.extend(all.into_iter().take(per_person).map(|(i, j)| (photos[i].clone(), photos[j].clone(), true)));
    }
    let genuine = out.len();
    while out.len() < 2 * genuine {
        let (p, q) = (rng.below(people.len()), rng.below(people.len()));
        if p == q {
            continue;
        }
        let a = &people[p].1[rng.below(people[p].1.len())];
        let b = &people[q].1[rng.below(people[q].1.len())];
        out.push((a.clone(), b.clone(), false));
    }
    out
}

/// Runs a training command.
pub fn run(g: &GlobalOpts, c: TrainCommand) -> Result<Outcome> {
    let a = match c {
        TrainCommand::Head(a) => a,
        TrainCommand::Embedder(a) => return super::train_embedder::run(g, a),
        TrainCommand::Finetune(a) => return super::train_finetune::run(g, a),
    };
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            bail!("{}: the folder {} does not exist", a.out.display(), dir.display());
        }
    }
    let (source, pairs): (String, Vec<(PathBuf, PathBuf, bool)>) = match (&a.data, &a.pairs) {
        (Some(dir), _) => {
            let scan = crate::inputs::people(dir)?;
            scan.warn_unused(dir, g.quiet);
            let pairs = draw_pairs(&scan.people, a.pairs_per_person.max(1), a.fit.seed);
            (format!("folders of {}", dir.display()), pairs)
        }
        (None, Some(list)) => {
            crate::inputs::check_file_as(list, "pair list")?;
            let parsed = match &a.images {
                Some(images) => visage_eval::pairs::parse_lfw(list, images)?,
                None => visage_eval::pairs::parse_generic(list, 1)?,
            };
            (format!("pairs of {}", list.display()), parsed.into_iter().map(|p| (p.a, p.b, p.same)).collect())
        }
        (None, None) => unreachable!("clap requires --data or --pairs"),
    };
    let (ng, ni) = (pairs.iter().filter(|p| p.2).count(), pairs.iter().filter(|p| !p.2).count());
    if ng == 0 || ni == 0 {
        bail!("{source}: need both same-person and different-people pairs ({ng} and {ni}); a folder needs people with 2+ photos and at least two people");
    }
    let v = g.visage()?;
    let photos: Vec<PathBuf> =
        pairs.iter().flat_map(|p| [p.0.clone(), p.1.clone()]).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let (emb, _) = crate::cmd::eval::embed_default(g, &v, &photos)?;
    let refs: Vec<(&[f32], &[f32], bool)> =
        pairs.iter().map(|(x, y, s)| (emb[x].embedding.as_slice(), emb[y].embedding.as_slice(), *s)).collect();
    let started = std::time::Instant::now();
    let spinner = crate::inputs::progress(a.fit.epochs as usize, "fitting the head", g.quiet || a.json);
    let mut fitted = fit_head(&refs, &a.fit, &v.descriptor().id);
    spinner.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    fitted.head.provenance = json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "trained_on": source,
        "same_pairs": ng, "different_pairs": ni,
        "epochs": a.fit.epochs, "batch": a.fit.batch, "learning_rate": a.fit.lr, "seed": a.fit.seed,
        "final_loss": fitted.epoch_loss.last(),
        "training_accuracy": fitted.train_accuracy,
    });
    fitted.head.save(&a.out)?;
    if a.json {
        println!(
            "{}",
            json!({"out": a.out, "kind": fitted.head.kind.name(), "model": fitted.head.model, "same_pairs": ng, "different_pairs": ni,
                   "threshold": fitted.head.threshold, "training_accuracy": fitted.train_accuracy, "epoch_loss": fitted.epoch_loss, "seconds": seconds})
        );
    } else {
        let first = fitted.epoch_loss.first().copied().unwrap_or(f32::NAN);
        let last = fitted.epoch_loss.last().copied().unwrap_or(f32::NAN);
        println!(
            "{} head on {} embeddings: {ng} same + {ni} different pairs ({source}); loss {first:.4} -> {last:.4} in {} epochs, {seconds:.1} s",
            fitted.head.kind,
            fitted.head.model,
            a.fit.epochs
        );
        println!(
            "threshold {:.4} (probability; best training accuracy {:.2}%); written to {}",
            fitted.head.threshold,
            fitted.train_accuracy * 100.0,
            a.out.display()
        );
    }
    Ok(Outcome::Ok)
}
