//! Training and measuring a liveness model on a presentation-attack data set laid out as NUAA
//! is here: four lists, `train_live.txt`, `train_spoof.txt`, `test_live.txt`,
//! `test_spoof.txt`, one photo per line, relative to the lists' folder; the photo's folder
//! names its subject; an attack line may add a TAB and its attack type (`print` otherwise).
//!
//! Protocol (ISO/IEC 30107-3 figures, nothing chosen on the test list): the training subjects
//! are split by subject into folds; every hyper-parameter (feature recipe, penalty) and both
//! thresholds are chosen on the pooled out-of-fold scores; the final model is then fitted on
//! every training photo and measured once on the test list.

use crate::pad::{self, PadRates};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use visage::{FaceChoice, Rect, RgbImage, Visage};
use visage_gallery::calibrate::RocPoint;
use visage_liveness::model::{standardisation, standardise};
use visage_liveness::{logistic, FeatureSpec, LivenessCheck, LivenessModel, Provenance, Verdict};

/// A labelled photo of a presentation-attack data set.
#[derive(Debug, Clone, PartialEq)]
pub struct PadPhoto {
    /// Where it is.
    pub path: PathBuf,
    /// Bona fide (live) or an attack.
    pub live: bool,
    /// The subject (the photo's folder name).
    pub subject: String,
    /// The attack type (`live` for bona fide photos).
    pub attack: String,
}

/// A data set's two lists.
#[derive(Debug, Clone)]
pub struct PadDataset {
    /// The training photos.
    pub train: Vec<PadPhoto>,
    /// The test photos.
    pub test: Vec<PadPhoto>,
    /// The list files read, with their SHA-256.
    pub lists: Vec<String>,
}

/// What can go wrong reading a data set.
#[derive(Debug, thiserror::Error)]
pub enum PadDataError {
    /// A list cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The list.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A list names no photo.
    #[error("{0} lists no photo")]
    Empty(String),
}

fn read_list(dir: &Path, name: &str, live: bool, lists: &mut Vec<String>) -> Result<Vec<PadPhoto>, PadDataError> {
    use sha2::{Digest, Sha256};
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|source| PadDataError::Read { path: path.display().to_string(), source })?;
    lists.push(format!("{name} sha256:{:x}", Sha256::digest(text.as_bytes())));
    let photos: Vec<PadPhoto> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut fields = l.split('\t');
            let rel = fields.next().unwrap_or_default();
            let attack = if live { "live".to_string() } else { fields.next().unwrap_or("print").to_string() };
            let path = dir.join(rel);
            let subject = path.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            PadPhoto { path, live, subject, attack }
        })
        .collect();
    if photos.is_empty() {
        return Err(PadDataError::Empty(path.display().to_string()));
    }
    Ok(photos)
}

impl PadDataset {
    /// Reads the four lists in `dir`.
    pub fn open(dir: &Path) -> Result<Self, PadDataError> {
        let mut lists = Vec::new();
        let mut train = read_list(dir, "train_live.txt", true, &mut lists)?;
        train.extend(read_list(dir, "train_spoof.txt", false, &mut lists)?);
        let mut test = read_list(dir, "test_live.txt", true, &mut lists)?;
        test.extend(read_list(dir, "test_spoof.txt", false, &mut lists)?);
        Ok(PadDataset { train, test, lists })
    }
}

/// A photo with its face found, or why not.
pub struct Acquired<'a> {
    /// The photo.
    pub photo: &'a PadPhoto,
    /// The decoded image and the largest face's detector box and landmarks, or `None` when the
    /// photo has no face or cannot be read (a failure to acquire).
    pub face: Option<(RgbImage, Rect, Vec<visage::Point>)>,
}

/// Decodes every photo and finds its largest face, in parallel; `tick` is called per photo.
pub fn acquire<'a>(visage: &Visage, photos: &'a [PadPhoto], tick: &(dyn Fn() + Sync)) -> Vec<Acquired<'a>> {
    photos
        .par_iter()
        .map(|photo| {
            let face = visage.load_image(&photo.path).ok().and_then(|img| {
                let faces = visage.find_faces(&img).ok()?;
                let i = FaceChoice::Largest.pick(&faces, img.width(), img.height())?;
                let f = &faces[i];
                let (det, lm) = (f.detection, f.landmarks.clone());
                Some((img, det, lm))
            });
            tick();
            Acquired { photo, face }
        })
        .collect()
}

/// Counts per class (live, attack).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PerClass {
    /// Bona fide photos.
    pub live: usize,
    /// Attack photos.
    pub attack: usize,
}

impl PerClass {
    fn add(&mut self, live: bool) {
        if live {
            self.live += 1
        } else {
            self.attack += 1
        }
    }
}

/// The judgeable faces' features, their photos, and what was left out.
struct Described<'a> {
    rows: Vec<Vec<f32>>,
    photos: Vec<&'a PadPhoto>,
    no_face: PerClass,
    cannot_judge: PerClass,
}

/// Features of every judgeable face (the quality bounds of `LivenessModel`'s defaults).
fn describe<'a>(spec: &FeatureSpec, acquired: &[Acquired<'a>]) -> Described<'a> {
    let quality = visage_liveness::QualityBounds::default();
    let out: Vec<(bool, Option<Vec<f32>>, &PadPhoto)> = acquired
        .par_iter()
        .map(|a| match &a.face {
            None => (false, None, a.photo),
            Some((img, det, lm)) => {
                let row = spec.crops(img, lm).ok().and_then(|(face, ctx)| {
                    quality.check(img.width(), img.height(), *det, &face).is_none().then(|| spec.describe_crops(&face, ctx.as_ref()))
                });
                (true, row, a.photo)
            }
        })
        .collect();
    let mut d = Described { rows: Vec::new(), photos: Vec::new(), no_face: PerClass::default(), cannot_judge: PerClass::default() };
    for (found, row, photo) in out {
        match (found, row) {
            (false, _) => d.no_face.add(photo.live),
            (true, None) => d.cannot_judge.add(photo.live),
            (true, Some(r)) => {
                d.rows.push(r);
                d.photos.push(photo);
            }
        }
    }
    d
}

/// The hyper-parameters searched.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Feature recipes tried.
    pub specs: Vec<FeatureSpec>,
    /// L2 penalties tried.
    pub lambdas: Vec<f64>,
    /// Subject folds of the training list.
    pub folds: usize,
    /// Gradient steps per fit.
    pub iterations: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            // The face alone (Maatta et al.'s grey texture plus colour texture), with the colour
            // texture of a crop twice as wide (the print's edges), and with that crop's grey
            // texture too, at three tightnesses of the face crop.
            specs: vec![
                FeatureSpec { context_padding: None, ..FeatureSpec::default() },
                FeatureSpec { context_padding: Some(1.0), context_grey: false, ..FeatureSpec::default() },
                FeatureSpec { face_padding: 0.0, context_padding: Some(1.0), context_grey: true, ..FeatureSpec::default() },
                FeatureSpec { face_padding: 0.2, context_padding: Some(1.0), context_grey: true, ..FeatureSpec::default() },
                FeatureSpec { face_padding: 0.4, context_padding: Some(1.0), context_grey: true, ..FeatureSpec::default() },
            ],
            lambdas: vec![1e-3, 1e-2, 1e-1],
            folds: 9,
            iterations: 400,
        }
    }
}

/// One candidate's validation figures (pooled out-of-fold scores).
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// The feature recipe.
    pub spec: FeatureSpec,
    /// The penalty.
    pub lambda: f64,
    /// ACER at the validation's best threshold.
    pub acer: f64,
    /// EER of the validation scores.
    pub eer: f64,
    /// The validation's best-ACER threshold.
    pub threshold: f64,
    /// The validation's APCER <= 5% threshold.
    pub threshold_apcer5: f64,
}

/// What training did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Training photos judged, per class.
    pub judged: PerClass,
    /// No face found, per class.
    pub no_face: PerClass,
    /// Faces that could not be judged (quality bounds), per class.
    pub cannot_judge: PerClass,
    /// The training subjects in each fold.
    pub folds: Vec<Vec<String>>,
    /// Every candidate, in the order tried.
    pub candidates: Vec<Candidate>,
    /// The one kept (lowest validation ACER, then EER, then the larger penalty).
    pub chosen: Candidate,
    /// The kept candidate's out-of-fold scores: (subject, live, score).
    pub validation_scores: Vec<(String, bool, f64)>,
}

fn split_scores(scores: &[f64], photos: &[&PadPhoto]) -> (Vec<f64>, Vec<f64>) {
    let live = scores.iter().zip(photos).filter(|(_, p)| p.live).map(|(s, _)| *s).collect();
    let attack = scores.iter().zip(photos).filter(|(_, p)| !p.live).map(|(s, _)| *s).collect();
    (live, attack)
}

fn fit_model(spec: FeatureSpec, rows: &[Vec<f32>], labels: &[bool], lambda: f64, iterations: usize) -> LivenessModel {
    let (mean, inv) = standardisation(rows);
    let fit = logistic::fit(&standardise(rows, &mean, &inv), labels, lambda, iterations);
    LivenessModel::new(spec, mean, inv, fit, (0.5, 0.5), Provenance::default())
}

/// Trains a model on `data.train` by the protocol above; `command` is recorded in it.
pub fn train(
    visage: &Visage,
    data: &PadDataset,
    options: &TrainOptions,
    command: &str,
    tick: &(dyn Fn() + Sync),
) -> Result<(LivenessModel, TrainReport), String> {
    let acquired = acquire(visage, &data.train, tick);
    let subjects: Vec<String> = data.train.iter().map(|p| p.subject.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    if subjects.len() < options.folds || options.folds < 2 {
        return Err(format!("{} training subjects cannot make {} subject folds (at least 2)", subjects.len(), options.folds));
    }
    let fold_of = |s: &str| subjects.iter().position(|x| x == s).unwrap_or(0) % options.folds;
    let folds = (0..options.folds).map(|f| subjects.iter().filter(|s| fold_of(s) == f).cloned().collect()).collect();
    let mut candidates = Vec::new();
    let mut kept: Option<(Candidate, Described, Vec<f64>)> = None;
    for &spec in &options.specs {
        let d = describe(&spec, &acquired);
        let labels: Vec<bool> = d.photos.iter().map(|p| p.live).collect();
        if !labels.iter().any(|&l| l) || labels.iter().all(|&l| l) {
            return Err("the training list needs judgeable live and attack photos".into());
        }
        let fold: Vec<usize> = d.photos.iter().map(|p| fold_of(&p.subject)).collect();
        for &lambda in &options.lambdas {
            let per_fold: Vec<Vec<(usize, f64)>> = (0..options.folds)
                .into_par_iter()
                .map(|f| {
                    let train_idx: Vec<usize> = (0..d.rows.len()).filter(|&i| fold[i] != f).collect();
                    let rows: Vec<Vec<f32>> = train_idx.iter().map(|&i| d.rows[i].clone()).collect();
                    let y: Vec<bool> = train_idx.iter().map(|&i| labels[i]).collect();
                    let m = fit_model(spec, &rows, &y, lambda, options.iterations);
                    (0..d.rows.len()).filter(|&i| fold[i] == f).map(|i| (i, m.score(&d.rows[i]))).collect()
                })
                .collect();
            let mut scores = vec![0.0; d.rows.len()];
            for (i, s) in per_fold.into_iter().flatten() {
                scores[i] = s;
            }
            let (live, attack) = split_scores(&scores, &d.photos);
            let threshold = pad::min_acer_threshold(&live, &attack).ok_or("no validation scores")?;
            let acer = pad::rates(&live, &[("all".into(), attack.clone())], threshold).acer;
            let c = Candidate {
                spec,
                lambda,
                acer,
                eer: pad::equal_error(&live, &attack).0,
                threshold,
                threshold_apcer5: pad::threshold_at_apcer(&attack, 0.05),
            };
            tracing::info!(?spec, lambda, acer = c.acer, eer = c.eer, "liveness candidate");
            let better = kept.as_ref().is_none_or(|(k, _, _)| (c.acer, c.eer, -c.lambda) < (k.acer, k.eer, -k.lambda));
            candidates.push(c.clone());
            if better {
                kept = Some((
                    c,
                    Described { rows: d.rows.clone(), photos: d.photos.clone(), no_face: d.no_face, cannot_judge: d.cannot_judge },
                    scores,
                ));
            }
        }
    }
    let (chosen, d, oof) = kept.ok_or("no candidate to train")?;
    let validation_scores = d.photos.iter().zip(&oof).map(|(p, &s)| (p.subject.clone(), p.live, s)).collect();
    let labels: Vec<bool> = d.photos.iter().map(|p| p.live).collect();
    let mut model = fit_model(chosen.spec, &d.rows, &labels, chosen.lambda, options.iterations);
    model.threshold = chosen.threshold;
    model.threshold_apcer5 = chosen.threshold_apcer5;
    let mut judged = PerClass::default();
    labels.iter().for_each(|&l| judged.add(l));
    model.provenance = Provenance {
        command: command.to_string(),
        data: data.lists.clone(),
        samples: (judged.live, judged.attack),
        selection: format!(
            "{}-fold cross-validation by subject over the training list; kept lambda {} and context crop {:?} (validation ACER {:.4}, EER {:.4}); thresholds at the validation's lowest ACER and at APCER <= 5%",
            options.folds, chosen.lambda, chosen.spec.context_padding, chosen.acer, chosen.eer
        ),
    };
    Ok((model, TrainReport { judged, no_face: d.no_face, cannot_judge: d.cannot_judge, folds, candidates, chosen, validation_scores }))
}

/// The figures of a model on a test list.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Test photos per class.
    pub photos: PerClass,
    /// No face found (failure to acquire), per class.
    pub no_face: PerClass,
    /// Faces the model would not judge, per class.
    pub cannot_judge: PerClass,
    /// Rates at the model's threshold (its validation's lowest ACER).
    pub at_threshold: PadRates,
    /// Rates at the model's APCER <= 5% threshold (fixed on validation): `bpcer` is BPCER20.
    pub at_apcer5: PadRates,
    /// The test scores' equal error rate (threshold-free) and where it falls.
    pub eer: f64,
    /// Threshold at the EER (chosen on the test list: for comparison only).
    pub eer_threshold: f64,
    /// The ROC of the test scores (`far` = APCER, `1 - tar` = BPCER, live threshold `-threshold`).
    #[serde(skip)]
    pub roc: Vec<RocPoint>,
    /// The live and attack test scores.
    #[serde(skip)]
    pub scores: (Vec<f64>, Vec<f64>),
}

/// Measures `model` on `photos` (the test list).
pub fn evaluate(visage: &Visage, model: &dyn LivenessCheck, photos: &[PadPhoto], tick: &(dyn Fn() + Sync)) -> EvalReport {
    let acquired = acquire(visage, photos, tick);
    let judged: Vec<(Option<f64>, &PadPhoto)> = acquired
        .par_iter()
        .filter_map(|a| {
            let (img, det, lm) = a.face.as_ref()?;
            let j = model.judge(img, *det, lm, None);
            Some((if j.verdict == Verdict::CannotJudge { None } else { j.score }, a.photo))
        })
        .collect();
    let mut photos_n = PerClass::default();
    let mut no_face = PerClass::default();
    let mut cannot = PerClass::default();
    for a in &acquired {
        photos_n.add(a.photo.live);
        if a.face.is_none() {
            no_face.add(a.photo.live);
        }
    }
    let mut live = Vec::new();
    let mut attacks: Vec<(String, Vec<f64>)> = Vec::new();
    for (score, p) in judged {
        match score {
            None => cannot.add(p.live),
            Some(s) if p.live => live.push(s),
            Some(s) => match attacks.iter_mut().find(|(k, _)| *k == p.attack) {
                Some((_, v)) => v.push(s),
                None => attacks.push((p.attack.clone(), vec![s])),
            },
        }
    }
    let all_attacks: Vec<f64> = attacks.iter().flat_map(|(_, v)| v.iter().copied()).collect();
    let (eer, eer_threshold) = pad::equal_error(&live, &all_attacks);
    EvalReport {
        photos: photos_n,
        no_face,
        cannot_judge: cannot,
        at_threshold: pad::rates(&live, &attacks, model.threshold()),
        at_apcer5: pad::rates(&live, &attacks, model.threshold_apcer5()),
        eer,
        eer_threshold,
        roc: pad::roc(&live, &all_attacks),
        scores: (live, all_attacks),
    }
}
