//! `visage train finetune`: transfer learning from dlib's pretrained ResNet-29. The first
//! layers stay frozen and run once per chip on visage's engine; the last `--train-blocks`
//! residual blocks and the fully connected layer are trained on burn ([`LayerNet`]) with the
//! triplet loss and online mining in identity-balanced P x K batches, on the network's own
//! (unnormalised, dlib-scale) distances. The result is a model file holding the whole
//! ResNet (`--model FILE` on every command).
//!
//! Augmentation is the horizontal flip: each chip's frozen features are computed for it and
//! for its mirror image, and every batch row draws one of the two. Checkpoints and `--resume`
//! work as in `visage train embedder` (batches replay from the seed; Adam restarts).

use crate::context::GlobalOpts;
use crate::inputs::progress;
use crate::Outcome;
use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use visage_core::{ModelDescriptor, SeededRng};
use visage_embed::architecture::{resnet29_layers, resnet29_parameter_shapes};
use visage_embed::{dlib_resnet_descriptor, parse_resnet, Architecture, TrainedModel, DLIB_RESNET_CHIP};
use visage_models::ModelFile;
use visage_train::augment::Augmentation;
use visage_train::burn::module::Module;
use visage_train::burn::optim::{AdamConfig, GradientsParams};
use visage_train::layer_net::{features_tensor, parameters_of, FrozenPrefix};
use visage_train::{train_device, LayerNet, Mining, PkSampler, Reduction, Shortfall, TripletLoss};

/// Residual blocks of the ResNet-29.
const BLOCKS: usize = 14;

/// `visage train finetune`.
#[derive(Args)]
pub struct FinetuneArgs {
    /// A folder with one sub-folder of photos per person (people with one photo are left out).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Train only on the people of this list (LFW's peopleDevTrain.txt or people.txt format).
    #[arg(long, value_name = "FILE")]
    pub people: Option<PathBuf>,
    /// With --people in LFW's View 2 format: leave this fold's people out.
    #[arg(long, value_name = "K", requires = "people")]
    pub except_fold: Option<usize>,
    /// The model file to write (safetensors, the whole ResNet).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// How many of the last residual blocks are trained, with the fully connected layer
    /// (0: the fully connected layer alone, a new projection; 14: every layer but the stem).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=14))]
    pub train_blocks: u32,
    /// Triplet mining in each batch: semi-hard, batch-all or batch-hard.
    #[arg(long, default_value = "semi-hard", value_parser = super::train_embedder::parse_mining)]
    pub mining: Mining,
    /// The triplet margin on Euclidean distances (dlib's own training used 0.04 around its
    /// 0.6 threshold).
    #[arg(long, default_value_t = 0.1, value_parser = crate::args::rate)]
    pub margin: f64,
    /// People per batch.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub p: u32,
    /// Photos per person in a batch.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..=100))]
    pub k: u32,
    /// Optimiser steps (batches).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub steps: u32,
    /// Adam's learning rate at the start; a cosine takes it to 1% of that by the last step.
    #[arg(long, default_value_t = 1e-5, value_parser = crate::args::rate)]
    pub lr: f64,
    /// Seeds the batches and the flips.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write a checkpoint every N steps (and at the end).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub checkpoint_every: u32,
    /// Continue from the checkpoint beside --out, if there is one.
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

/// Runs `visage train finetune`.
pub fn run(g: &GlobalOpts, a: FinetuneArgs) -> Result<Outcome> {
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            bail!("{}: the folder {} does not exist", a.out.display(), dir.display());
        }
    }
    if let Some(p) = &a.plot {
        visage_eval::plot::check_path(p).map_err(anyhow::Error::msg)?;
    }
    if g.model.is_some() {
        bail!("--model: fine-tuning starts from dlib's pretrained ResNet-29, not from another model file");
    }
    let dlib = parse_resnet(&g.store()?.read_verified(ModelFile::ResnetV1)?)?;
    let pretrained = dlib_resnet_descriptor(dlib.input_mean);
    let (people, no_face) = super::train_embedder::training_chips(g, &a.data, a.people.as_deref(), a.except_fold, DLIB_RESNET_CHIP, a.cache.as_deref(), a.json)?;
    if people.len() < a.p as usize {
        bail!("{}: {} people with 2+ usable photos, fewer than --p {}", a.data.display(), people.len(), a.p);
    }
    let counts: Vec<usize> = people.iter().map(|p| p.len()).collect();
    let chips_total: usize = counts.iter().sum();

    // Frozen layers on the engine, once per chip and per mirror image.
    let layers = resnet29_layers();
    let weights = dlib.weights();
    let cut = layers.len() - 2 - 2 * a.train_blocks as usize;
    debug_assert_eq!(layers.len(), 4 + 2 * BLOCKS + 2);
    let size = DLIB_RESNET_CHIP.size as usize;
    let prefix = FrozenPrefix::new(&layers[..cut], &weights, size, pretrained.input.mean, pretrained.input.scale).map_err(anyhow::Error::msg)?;
    let bar = progress(chips_total, "frozen layers", g.quiet || a.json);
    let mut feats: Vec<Vec<[Vec<f32>; 2]>> = Vec::with_capacity(people.len());
    let mut shape = [0; 3];
    for p in &people {
        let mirrors: Vec<Vec<u8>> = p.iter().map(|c| Augmentation::MIRROR.apply(c, size)).collect();
        let refs: Vec<&[u8]> = p.iter().chain(&mirrors).map(|c| c.as_slice()).collect();
        let (f, s) = prefix.features(&refs).map_err(anyhow::Error::msg)?;
        shape = s;
        let (plain, flipped) = f.split_at(p.len());
        feats.push(plain.iter().cloned().zip(flipped.iter().cloned()).map(|(x, y)| [x, y]).collect());
        bar.inc(p.len() as u64);
    }
    bar.finish_and_clear();

    let device = train_device();
    let tail = layers[cut..].to_vec();
    let tail_params = parameters_of(&tail, &weights);
    let checkpoint = super::train_checkpoint::Checkpoint::new(&a.out);
    let mut start = 0usize;
    let mut init = weights.clone();
    let saved = if a.resume { checkpoint.load()? } else { None };
    if let Some(c) = &saved {
        let shown = checkpoint.state_path();
        if c.state["train_blocks"].as_u64() != Some(a.train_blocks as u64) {
            bail!("{}: the checkpoint trained {} blocks, this run --train-blocks {}", shown.display(), c.state["train_blocks"], a.train_blocks);
        }
        if c.model.spec != Architecture::RESNET29 {
            bail!("{}: the checkpoint is not a fine-tuned ResNet-29", shown.display());
        }
        init = c.model.weights();
        start = c.step;
    }
    let mut net = LayerNet::new(tail.clone(), &tail_params, &init, &device).map_err(anyhow::Error::msg)?;
    let mut sampler = PkSampler::new(&counts, a.p as usize, a.k as usize, Shortfall::Repeat, a.seed).map_err(anyhow::Error::msg)?;
    let mut flip_rng = SeededRng::new(a.seed ^ 0xf11b);
    for _ in 0..start {
        for _ in &sampler.next_batch().rows {
            flip_rng.below(2);
        }
    }
    let loss_fn = TripletLoss { margin: a.margin, metric: visage_train::Metric::L2_EPS, mining: a.mining, reduction: Reduction::Mean };
    let mut optim = AdamConfig::new().init();
    if let Some(c) = &saved {
        (net, optim) = checkpoint.resume(c, net, optim, g.quiet || a.json)?;
    }
    let (log_path, mut log) = super::train_embedder::open_log(&a.out, a.resume)?;
    // The whole network's tensors: dlib's, with the trained tail's in their place.
    let whole = |net: &LayerNet| -> HashMap<String, (Vec<usize>, Vec<f32>)> {
        let mut t: HashMap<String, (Vec<usize>, Vec<f32>)> = resnet29_parameter_shapes()
            .into_iter()
            .map(|(n, _)| {
                let w = weights.get(&n).expect("dlib's file has every parameter");
                (n, (w.shape.clone(), w.data.clone()))
            })
            .collect();
        t.extend(net.valid().tensors());
        t
    };
    let save_checkpoint = |net: &LayerNet, optim: &visage_train::burn::optim::ModuleOptimizer, step: usize| -> Result<()> {
        let m = TrainedModel { descriptor: pretrained.clone(), spec: Architecture::RESNET29, tensors: whole(net), provenance: "checkpoint".into(), extra: Default::default() };
        checkpoint.save(step, &m, net, optim, json!({"seed": a.seed, "train_blocks": a.train_blocks}))
    };
    let steps = a.steps as usize;
    let bar = progress(steps, "fine-tuning", g.quiet || a.json);
    bar.set_position(start as u64);
    let started = std::time::Instant::now();
    let mut history: Vec<(usize, f32, f32)> = Vec::new();
    for step in start..steps {
        let b = sampler.next_batch();
        let rows: Vec<&[f32]> = b.rows.iter().map(|&(p, i)| feats[p][i][flip_rng.below(2)].as_slice()).collect();
        let out = loss_fn.forward(net.forward(features_tensor(&rows, shape, &device)), &b.labels());
        let st = out.stats;
        let lr = visage_train::schedule::cosine_lr(a.lr, step, steps);
        let grads = GradientsParams::from_grads(out.loss.backward(), &net);
        net = optim.step(lr, net, grads);
        writeln!(
            log,
            "{}",
            json!({"step": step + 1, "loss": st.loss, "active_fraction": st.active_fraction(), "mean_positive": st.mean_positive, "mean_negative": st.mean_negative, "lr": lr})
        )?;
        history.push((step + 1, st.loss, st.active_fraction()));
        bar.set_message(format!("fine-tuning: loss {:.4}, active {:.0}%", st.loss, 100.0 * st.active_fraction()));
        bar.inc(1);
        if (step + 1) % a.checkpoint_every as usize == 0 || step + 1 == steps {
            save_checkpoint(&net, &optim, step + 1)?;
        }
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    // The distance thresholds: the best accuracy on balanced pairs of the training people
    // (each photo once, unflipped), on the whole network as the engine runs it.
    let tensors = whole(&net);
    let model0 = TrainedModel { descriptor: pretrained.clone(), spec: Architecture::RESNET29, tensors: tensors.clone(), provenance: String::new(), extra: Default::default() };
    let embedder = visage_embed::Embedder::from_trained(&model0, visage_embed::EngineOptions::default())?;
    let flat: Vec<(usize, &[u8])> = people.iter().enumerate().flat_map(|(i, p)| p.iter().map(move |c| (i, c.as_slice()))).collect();
    let emb = embedder.embed_batch(&flat.iter().map(|x| x.1).collect::<Vec<_>>())?;
    let thresholds = super::train_embedder::training_thresholds(&flat.iter().map(|x| x.0).collect::<Vec<_>>(), &emb, a.seed);
    let id = super::train_embedder::model_id("visage-resnet29-ft", &tensors);
    let descriptor = ModelDescriptor { id: id.clone(), thresholds, ..pretrained };
    let provenance = json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "from": "dlib_face_recognition_resnet_model_v1.dat", "train_blocks": a.train_blocks,
        "data": a.data, "people_list": a.people, "except_fold": a.except_fold, "people": people.len(), "chips": chips_total, "photos_without_face": no_face,
        "mining": format!("{:?}", a.mining), "margin": a.margin, "p": a.p, "k": a.k, "steps": a.steps, "lr": a.lr, "seed": a.seed,
    })
    .to_string();
    TrainedModel { descriptor, spec: Architecture::RESNET29, tensors, provenance, extra: Default::default() }.save(&a.out)?;
    if let Some(p) = &a.plot {
        let labels = ["triplet loss over active triplets (mean of {w} steps)", "active-triplet fraction (mean of {w} steps)"];
        super::train_embedder::write_history_plot(p, &format!("visage train finetune: {}", a.out.display()), &history, labels)?;
    }
    let (first, last) = super::train_embedder::loss_summary(&history);
    if a.json {
        println!(
            "{}",
            json!({"out": a.out, "model": id, "train_blocks": a.train_blocks, "people": people.len(), "chips": chips_total, "photos_without_face": no_face,
                   "steps": steps, "resumed_from": start, "first_loss": first, "last_loss_mean10": last, "seconds": seconds,
                   "thresholds": {"l2": thresholds.l2, "cosine": thresholds.cosine, "chi2": thresholds.chi2}, "log": log_path})
        );
    } else {
        println!(
            "{id}: the last {} blocks and the fc of dlib's ResNet-29 on {} people, {chips_total} chips ({no_face} photos without a face); {steps} steps from {start} in {seconds:.1} s; loss {first:.4} -> {last:.4} (mean of the last 10)",
            a.train_blocks,
            people.len()
        );
        println!("L2 threshold {:.4} on the training people; written to {} (log {})", thresholds.l2, a.out.display(), log_path.display());
    }
    Ok(Outcome::Ok)
}
