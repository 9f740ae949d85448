//! `visage train embedder`: an embedder trained from scratch (the small CNN or the
//! DeepFace-style network) with the triplet loss and online mining or with softmax over the
//! training people (visage-train on burn), exported to a model file the engine runs
//! (`--model FILE`).
//!
//! The run is made to be killed: every `--checkpoint-every` steps the weights, Adam's state
//! and the step are written beside `--out` ([`super::train_checkpoint`]), and `--resume`
//! continues from there (the batches replay from the seed, so a resumed run draws the
//! batches an uninterrupted one would, and takes the same steps).

use crate::context::GlobalOpts;
use crate::inputs::progress;
use crate::Outcome;
use anyhow::{bail, Context, Result};
use clap::Args;
use rayon::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use visage_core::{ChipGeometry, InputNormalization, LandmarkScheme, Metric, ModelDescriptor, SeededRng, Thresholds};
use visage_embed::{Architecture, CnnSpec, DeepFaceSpec, TrainedModel};
use visage_train::burn::module::Module;
use visage_train::augment::{augment, Augmentation};
use visage_train::burn::optim::{AdamConfig, GradientsParams};
use visage_train::cnn::chips_tensor;
use visage_train::softmax::IdentityClassifier;
use visage_train::{train_device, EmbedderNet, Mining, PkSampler, Reduction, Shortfall, TripletLoss};

/// `visage train embedder`.
#[derive(Args)]
pub struct EmbedderArgs {
    /// A folder with one sub-folder of photos per person (people with one photo are left out:
    /// a triplet needs two photos of its anchor's person).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Train only on the people of this list (LFW's peopleDevTrain.txt or people.txt format),
    /// so that a protocol's test people stay unseen.
    #[arg(long, value_name = "FILE")]
    pub people: Option<PathBuf>,
    /// With --people in LFW's View 2 format (people.txt, 10 folds): leave this fold's people
    /// out.
    #[arg(long, value_name = "K", requires = "people")]
    pub except_fold: Option<usize>,
    /// The model file to write (safetensors).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The network: `small` (3x3 stride-2 convolutions with batch normalisation, global
    /// pooling, a linear embedding) or `deepface` (DeepFace's layout sized for the chips: a
    /// convolution, max pooling, a convolution, three locally connected layers, a wide
    /// representation layer; best with `--loss softmax`, as DeepFace was trained).
    #[arg(long, default_value = "small", value_parser = ["small", "deepface"])]
    pub arch: String,
    /// Output channels of the small CNN's 3x3 stride-2 convolutions, comma-separated.
    #[arg(long, default_value = "16,32,64,128", value_delimiter = ',')]
    pub channels: Vec<usize>,
    /// Embedding dimension [default: 128 for the small CNN, 512 for the DeepFace-style
    /// network's representation layer].
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=4096))]
    pub dim: Option<u32>,
    /// Chip side in pixels (chips aligned as dlib's, padding 0.25).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(16..=300))]
    pub chip_size: u32,
    /// The loss: `triplet` (with --mining and --margin) or `softmax` (DeepFace's: a classifier
    /// over the training people on top of the embedding layer, cross-entropy; the classifier
    /// is dropped from the model file).
    #[arg(long, default_value = "triplet", value_parser = ["triplet", "softmax"])]
    pub loss: String,
    /// Start from this model file's weights (the same --arch, --channels, --dim and
    /// --chip-size, e.g. a network trained with `--loss softmax`, to fine-tune it with the
    /// triplet loss).
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
    /// Triplet mining in each batch: batch-all (every triplet still inside the margin; the
    /// default: from scratch, batch-hard's hardest triplets collapsed this network to one point
    /// in our runs), batch-hard or semi-hard.
    #[arg(long, default_value = "batch-all", value_parser = parse_mining)]
    pub mining: Mining,
    /// The triplet margin alpha (embeddings are unit length: squared distances lie in [0, 4]).
    #[arg(long, default_value_t = 0.2, value_parser = crate::args::rate)]
    pub margin: f64,
    /// People per batch.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub p: u32,
    /// Photos per person in a batch.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..=100))]
    pub k: u32,
    /// Optimiser steps (batches).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub steps: u32,
    /// Adam's learning rate at the start; it follows a cosine down to 1% of it by the last step.
    #[arg(long, default_value_t = 1e-3, value_parser = crate::args::rate)]
    pub lr: f64,
    /// Seeds the initial weights, the batches and the augmentation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write a checkpoint every N steps (and at the end).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub checkpoint_every: u32,
    /// Continue from the checkpoint beside --out (OUT.ckpt), if there is one.
    #[arg(long)]
    pub resume: bool,
    /// The chip cache [default: $XDG_CACHE_HOME/visage/chips].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Draw the loss and the active-triplet fraction per step (.png or .svg).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn parse_mining(s: &str) -> Result<Mining, String> {
    match s {
        "batch-hard" => Ok(Mining::BatchHard),
        "batch-all" => Ok(Mining::BatchAll),
        "semi-hard" => Ok(Mining::SemiHard),
        _ => Err(format!("{s:?}: mining strategies are batch-hard, batch-all and semi-hard")),
    }
}

/// The chip of the largest face of `photo`, from the cache or cut and cached; `None` when no
/// face is found.
fn chip_of(g: &GlobalOpts, v: &visage::Visage, photo: &Path, geometry: ChipGeometry, cache: &Path) -> Result<Option<Vec<u8>>> {
    let bytes = std::fs::read(photo).with_context(|| format!("reading {}", photo.display()))?;
    let key = format!("{:x}", Sha256::digest(&bytes));
    let file = cache.join(format!("{key}-{}-up{}-{}.rgb", geometry.size, g.upsample, g.detector.name()));
    let none = cache.join(format!("{key}-up{}-{}.noface", g.upsample, g.detector.name()));
    if let Ok(c) = std::fs::read(&file) {
        if c.len() == geometry.bytes() {
            return Ok(Some(c));
        }
    }
    if none.exists() {
        return Ok(None);
    }
    let img = v.load_image(photo)?;
    let faces = v.find_faces(&img)?;
    let Some(i) = visage::largest(&faces) else {
        let _ = std::fs::write(&none, b"");
        return Ok(None);
    };
    let chip = visage_align::face_chip(&img, &faces[i].landmarks, geometry)?;
    let c = chip.as_bytes().to_vec();
    // Written whole, then renamed: a killed run leaves no half chip behind.
    let tmp = file.with_extension(format!("partial{}", std::process::id()));
    if std::fs::write(&tmp, &c).is_ok() {
        let _ = std::fs::rename(&tmp, &file);
    }
    Ok(Some(c))
}

/// The chips of the largest face in each photo of a folder-per-person collection (cut in
/// parallel, cached in `cache`), per person, keeping people with two or more; with
/// `people_list` only its people (less fold `except_fold`). Also the count of photos without
/// a face.
pub(crate) fn training_chips(
    g: &GlobalOpts,
    data: &Path,
    people_list: Option<&Path>,
    except_fold: Option<usize>,
    geometry: ChipGeometry,
    cache: Option<&Path>,
    json: bool,
) -> Result<(Vec<Vec<Vec<u8>>>, usize)> {
    let mut scan = crate::inputs::people(data)?;
    scan.warn_unused(data, g.quiet);
    if let Some(list) = people_list {
        let l = visage_train::PeopleList::read(list).with_context(|| format!("reading the people list {}", list.display()))?;
        let names: std::collections::HashSet<String> =
            except_fold.map_or_else(|| l.names(), |k| l.names_except(k)).into_iter().collect();
        scan.people.retain(|p| names.contains(&p.0));
        if scan.people.is_empty() {
            bail!("{}: none of the listed people has a folder in {}", list.display(), data.display());
        }
    }
    let cache = match cache {
        Some(c) => c.to_path_buf(),
        None => dirs::cache_dir().context("no cache folder: pass --cache DIR")?.join("visage").join("chips"),
    };
    std::fs::create_dir_all(&cache).with_context(|| format!("creating the chip cache {}", cache.display()))?;

    // Chips, cut once (in parallel) and cached.
    let v = g.visage()?;
    let photos: Vec<(usize, &PathBuf)> = scan.people.iter().enumerate().flat_map(|(i, p)| p.1.iter().map(move |f| (i, f))).collect();
    let bar = progress(photos.len(), "cutting chips", g.quiet || json);
    let chips: Vec<(usize, Option<Vec<u8>>)> = photos
        .par_iter()
        .map(|&(i, f)| {
            let c = chip_of(g, &v, f, geometry, &cache).unwrap_or_else(|e| {
                bar.suspend(|| eprintln!("visage: {}: {e:#} (left out)", f.display()));
                None
            });
            bar.inc(1);
            (i, c)
        })
        .collect();
    bar.finish_and_clear();
    let no_face = chips.iter().filter(|c| c.1.is_none()).count();
    let mut people: Vec<Vec<Vec<u8>>> = vec![Vec::new(); scan.people.len()];
    for (i, c) in chips.into_iter() {
        if let Some(c) = c {
            people[i].push(c);
        }
    }
    Ok((people.into_iter().filter(|p| p.len() >= 2).collect(), no_face))
}

/// Each metric's threshold of best accuracy on balanced pairs of the training people: up to
/// 10,000 same-person pairs (two photos of a person drawn at random) and as many pairs of two
/// different people. (Pairs drawn uniformly from all photos would be nearly all of different
/// people, and the best threshold on them says "different" to everything.)
pub(crate) fn training_thresholds(person: &[usize], emb: &[Vec<f32>], seed: u64) -> Thresholds {
    let mut by_person: std::collections::BTreeMap<usize, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, &p) in person.iter().enumerate() {
        by_person.entry(p).or_default().push(i);
    }
    let multi: Vec<&Vec<usize>> = by_person.values().filter(|v| v.len() >= 2).collect();
    let mut rng = SeededRng::new(seed);
    let mut pairs = Vec::new();
    if !multi.is_empty() && by_person.len() >= 2 {
        for _ in 0..10_000 {
            let v = multi[rng.below(multi.len())];
            let (x, y) = (rng.below(v.len()), rng.below(v.len() - 1));
            pairs.push((v[x], v[if y >= x { y + 1 } else { y }], true));
        }
        while pairs.len() < 20_000 {
            let (x, y) = (rng.below(person.len()), rng.below(person.len()));
            if person[x] != person[y] {
                pairs.push((x, y, false));
            }
        }
    }
    let best = |m: Metric| {
        if pairs.is_empty() {
            return f32::NAN;
        }
        let s: Vec<(f64, bool)> = pairs.iter().map(|&(x, y, same)| (m.distance(&emb[x], &emb[y]) as f64, same)).collect();
        visage_eval::protocol::best_threshold(&s) as f32
    };
    Thresholds { l2: best(Metric::L2), cosine: best(Metric::Cosine), chi2: best(Metric::Chi2) }
}

/// The run's JSON-lines log beside `out` (`OUT.log.jsonl`): appended to on `--resume`,
/// started afresh otherwise.
pub(crate) fn open_log(out: &Path, resume: bool) -> Result<(PathBuf, std::fs::File)> {
    let path = out.with_extension("log.jsonl");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(resume)
        .write(true)
        .truncate(!resume)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    Ok((path, file))
}

/// A model id: `prefix` and the first 16 hex digits of the SHA-256 of the tensors' values,
/// taken in name order.
pub(crate) fn model_id(prefix: &str, tensors: &std::collections::HashMap<String, (Vec<usize>, Vec<f32>)>) -> String {
    let mut hasher = Sha256::new();
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for n in names {
        for x in &tensors[n].1 {
            hasher.update(x.to_le_bytes());
        }
    }
    format!("{prefix}-{}", &format!("{:x}", hasher.finalize())[..16])
}

/// Draws `history`'s two per-step curves (`(step, loss, second)`) to `path`, as running means
/// over 1% of the run (one batch per step is noisy); `labels` name them, `{w}` standing for
/// the window.
pub(crate) fn write_history_plot(path: &Path, title: &str, history: &[(usize, f32, f32)], labels: [&str; 2]) -> Result<()> {
    let w = (history.len() / 100).max(1);
    let smooth = |f: fn(&(usize, f32, f32)) -> f32| -> Vec<(f64, f64)> {
        history.windows(w).map(|win| (win[win.len() - 1].0 as f64, win.iter().map(|h| f(h) as f64).sum::<f64>() / w as f64)).collect()
    };
    let (loss, second) = (smooth(|h| h.1), smooth(|h| h.2));
    let (l, f) = (labels[0].replace("{w}", &w.to_string()), labels[1].replace("{w}", &w.to_string()));
    visage_eval::plot::write_curves(path, title, "step", &[(&l, &loss), (&f, &second)]).map_err(|e| anyhow::anyhow!("writing the plot {}: {e}", path.display()))
}

/// The first step's loss and the mean of the last ten.
pub(crate) fn loss_summary(history: &[(usize, f32, f32)]) -> (f32, f32) {
    let first = history.first().map(|h| h.1).unwrap_or(f32::NAN);
    let last10: Vec<f32> = history.iter().rev().take(10).map(|h| h.1).collect();
    (first, last10.iter().sum::<f32>() / last10.len().max(1) as f32)
}

/// Runs `visage train embedder`.
pub fn run(g: &GlobalOpts, a: EmbedderArgs) -> Result<Outcome> {
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            bail!("{}: the folder {} does not exist", a.out.display(), dir.display());
        }
    }
    if let Some(p) = &a.plot {
        visage_eval::plot::check_path(p).map_err(anyhow::Error::msg)?;
    }
    let arch = match a.arch.as_str() {
        "deepface" => {
            let deepface = DeepFaceSpec { chip: a.chip_size as usize, dim: a.dim.unwrap_or(512) as usize };
            deepface.check().map_err(|e| anyhow::anyhow!("--arch deepface: {e}"))?;
            Architecture::DeepFace { deepface }
        }
        _ => {
            if a.channels.is_empty() || a.channels.iter().any(|&c| c == 0 || c > 4096) {
                bail!("--channels {:?}: one to many convolutions of 1 to 4096 channels", a.channels);
            }
            Architecture::SmallCnn(CnnSpec { channels: a.channels.clone(), dim: a.dim.unwrap_or(128) as usize })
        }
    };
    let dim = arch.dim();
    let geometry = ChipGeometry { size: a.chip_size, padding: 0.25 };
    let (people, no_face) = training_chips(g, &a.data, a.people.as_deref(), a.except_fold, geometry, a.cache.as_deref(), a.json)?;
    if people.len() < a.p as usize {
        bail!("{}: {} people with 2+ usable photos, fewer than --p {}", a.data.display(), people.len(), a.p);
    }
    let counts: Vec<usize> = people.iter().map(|p| p.len()).collect();
    let chips_total: usize = counts.iter().sum();

    let input = InputNormalization { mean: [127.5, 127.5, 127.5], scale: 1.0 / 128.0 };
    let provisional = ModelDescriptor {
        id: "visage-cnn-training".into(),
        dim,
        chip: geometry,
        landmarks: LandmarkScheme::Dlib5,
        input,
        thresholds: Thresholds { l2: 1.0, cosine: 0.5, chi2: 1.0 },
    };
    let device = train_device();
    device.seed(a.seed);
    let checkpoint = super::train_checkpoint::Checkpoint::new(&a.out);
    let mut start = 0usize;
    let mut net = EmbedderNet::new(&arch, a.seed, &device).map_err(anyhow::Error::msg)?;
    if let Some(init) = &a.init {
        let m = TrainedModel::load(init)?;
        if m.spec != arch {
            bail!("{}: --init's architecture {:?} is not this run's {:?}", init.display(), m.spec, arch);
        }
        net = EmbedderNet::from_model(&m, &device).map_err(anyhow::Error::msg)?;
    }
    let softmax = a.loss == "softmax";
    let saved = if a.resume { checkpoint.load()? } else { None };
    if let Some(c) = &saved {
        if c.model.spec != arch {
            bail!("{}: the checkpoint's architecture {:?} is not this run's {:?}", checkpoint.state_path().display(), c.model.spec, arch);
        }
        net = EmbedderNet::from_model(&c.model, &device).map_err(anyhow::Error::msg)?;
        start = c.step;
    }
    let mut sampler = PkSampler::new(&counts, a.p as usize, a.k as usize, Shortfall::Repeat, a.seed).map_err(anyhow::Error::msg)?;
    let mut aug_rng = SeededRng::new(a.seed ^ 0x5eed);
    // Replays the batches (and augmentation draws) of the steps already done.
    for _ in 0..start {
        let b = sampler.next_batch();
        for _ in &b.rows {
            Augmentation::draw(&mut aug_rng);
        }
    }
    // The classifier over the training people (trained only with --loss softmax).
    let mut model = IdentityClassifier::new(net, dim, people.len(), &device);
    if let (true, Some(c)) = (softmax, &saved) {
        if !model.load_classifier(&c.model.tensors, &device) {
            bail!("{}: the checkpoint has no classifier over these {} people", checkpoint.state_path().display(), people.len());
        }
    }
    let loss_fn = TripletLoss { margin: a.margin, metric: visage_train::Metric::SquaredL2, mining: a.mining, reduction: Reduction::Mean };
    let mut optim = AdamConfig::new().init();
    if let Some(c) = &saved {
        (model, optim) = checkpoint.resume(c, model, optim, g.quiet || a.json)?;
    }
    let (log_path, mut log) = open_log(&a.out, a.resume)?;
    let steps = a.steps as usize;
    let bar = progress(steps, "training", g.quiet || a.json);
    bar.set_position(start as u64);
    let size = a.chip_size as usize;
    let started = std::time::Instant::now();
    let mut history: Vec<(usize, f32, f32)> = Vec::new();
    let save_checkpoint = |model: &IdentityClassifier, optim: &visage_train::burn::optim::ModuleOptimizer, step: usize| -> Result<()> {
        let mut m = model.net.valid().export(&arch, &provisional, "checkpoint");
        if softmax {
            m.tensors.extend(model.valid().classifier_tensors());
        }
        checkpoint.save(step, &m, model, optim, json!({"seed": a.seed}))
    };
    for step in start..steps {
        let b = sampler.next_batch();
        let batch: Vec<Vec<u8>> = b.rows.iter().map(|&(p, i)| augment(&people[p][i], size, &mut aug_rng)).collect();
        let refs: Vec<&[u8]> = batch.iter().map(|c| c.as_slice()).collect();
        let x = chips_tensor(&refs, size, &provisional, &device);
        let lr = visage_train::schedule::cosine_lr(a.lr, step, steps);
        let (loss, record, second) = if softmax {
            let out = model.forward(x, &b.labels());
            let r = json!({"step": step + 1, "loss": out.loss_value, "accuracy": out.accuracy, "lr": lr});
            (out.loss, r, (out.loss_value, out.accuracy))
        } else {
            let out = loss_fn.forward(model.net.forward(x), &b.labels());
            let st = out.stats;
            let r = json!({"step": step + 1, "loss": st.loss, "active_fraction": st.active_fraction(), "mean_positive": st.mean_positive, "mean_negative": st.mean_negative, "lr": lr});
            (out.loss, r, (st.loss, st.active_fraction()))
        };
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr, model, grads);
        writeln!(log, "{record}")?;
        history.push((step + 1, second.0, second.1));
        if softmax {
            bar.set_message(format!("training: loss {:.4}, batch accuracy {:.0}%", second.0, 100.0 * second.1));
        } else {
            bar.set_message(format!("training: loss {:.4}, active {:.0}%", second.0, 100.0 * second.1));
        }
        bar.inc(1);
        if (step + 1) % a.checkpoint_every as usize == 0 || step + 1 == steps {
            save_checkpoint(&model, &optim, step + 1)?;
        }
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let net = model.net.valid();

    // Thresholds: the best accuracy on pairs of the training people (the embedding's own
    // scale; `visage calibrate` or `eval` on your data gives better ones).
    let model0 = net.export(&arch, &provisional, "");
    let embedder = visage_embed::Embedder::from_trained(&model0, visage_embed::EngineOptions::default())?;
    let flat: Vec<(usize, &[u8])> = people.iter().enumerate().flat_map(|(i, p)| p.iter().map(move |c| (i, c.as_slice()))).collect();
    let emb = embedder.embed_batch(&flat.iter().map(|x| x.1).collect::<Vec<_>>())?;
    let thresholds = training_thresholds(&flat.iter().map(|x| x.0).collect::<Vec<_>>(), &emb, a.seed);
    let id = model_id(if a.arch == "deepface" { "visage-deepface" } else { "visage-cnn" }, &model0.tensors);
    let descriptor = ModelDescriptor { id: id.clone(), thresholds, ..provisional };
    let provenance = json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "data": a.data, "people_list": a.people, "except_fold": a.except_fold, "people": people.len(), "chips": chips_total, "photos_without_face": no_face,
        "arch": a.arch, "loss": a.loss, "init": a.init, "mining": format!("{:?}", a.mining), "margin": a.margin, "p": a.p, "k": a.k, "steps": a.steps, "lr": a.lr, "seed": a.seed,
    })
    .to_string();
    net.export(&arch, &descriptor, &provenance).save(&a.out)?;
    if let Some(p) = &a.plot {
        let labels = if softmax {
            ["softmax cross-entropy (mean of {w} steps)", "batch accuracy over the training people (mean of {w} steps)"]
        } else {
            ["triplet loss over active triplets (mean of {w} steps)", "active-triplet fraction (mean of {w} steps)"]
        };
        write_history_plot(p, &format!("visage train embedder: {}", a.out.display()), &history, labels)?;
    }
    let (first, last) = loss_summary(&history);
    if a.json {
        println!(
            "{}",
            json!({"out": a.out, "model": id, "people": people.len(), "chips": chips_total, "photos_without_face": no_face,
                   "steps": steps, "resumed_from": start, "first_loss": first, "last_loss_mean10": last, "seconds": seconds,
                   "thresholds": {"l2": thresholds.l2, "cosine": thresholds.cosine, "chi2": thresholds.chi2}, "log": log_path})
        );
    } else {
        println!(
            "{id}: {} people, {chips_total} chips ({no_face} photos without a face); {} steps from {start} in {seconds:.1} s; loss {first:.4} -> {last:.4} (mean of the last 10)",
            people.len(),
            steps
        );
        println!("L2 threshold {:.4} on the training people; written to {} (log {})", thresholds.l2, a.out.display(), log_path.display());
    }
    Ok(Outcome::Ok)
}
