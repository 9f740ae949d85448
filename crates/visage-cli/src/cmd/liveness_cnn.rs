//! `visage liveness train --kind cnn`: the small CNN trained on the aligned face crops of a
//! presentation-attack data set (NUAA's layout), by the same protocol as the texture model:
//! the training subjects are split into folds by subject; the number of epochs and both
//! thresholds are chosen on the pooled out-of-fold scores (scored on the engine, as the
//! shipped model will be); the final network is then trained on every training photo. The
//! test lists are never read.

use crate::context::GlobalOpts;
use crate::inputs::progress;
use crate::output::{json_line, path_text};
use crate::Outcome;
use anyhow::{bail, Result};
use rayon::prelude::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use visage_align::{extract_chip, face_chip_details};
use visage_core::{ChipGeometry, InputNormalization, LandmarkScheme, ModelDescriptor, Thresholds};
use visage_embed::{CnnSpec, Embedder, EngineOptions, TrainedModel};
use visage_eval::liveness::{acquire, PadDataset};
use visage_eval::pad;
use visage_liveness::{CnnSettings, Provenance, QualityBounds};
use visage_train::binary::{train_classifier, BinaryTraining};
use visage_train::burn::module::Module;
use visage_train::SmallCnn;

/// The CNN's settings on the command line.
pub struct CnnOptions {
    /// Side of the face crop.
    pub size: u32,
    /// dlib chip padding of the face crop (0.25 is the embedding's; more shows the print's edges).
    pub padding: f64,
    /// Output channels of each convolution.
    pub channels: Vec<usize>,
    /// Subject folds of the validation.
    pub folds: usize,
    /// The most epochs tried.
    pub epochs: usize,
    /// Seeds everything.
    pub seed: u64,
    /// Validation folds by subject, or by session (NUAA's file names,
    /// `SUBJECT_GLASSES_POSITION_SESSION_PICTURE.jpg`; each training session held out in turn).
    pub split_by_session: bool,
    /// Standardise each crop per channel before the network reads it.
    pub standardize: bool,
}

/// The session of a photo named as NUAA names them (`ID_glasses_position_session_picture`,
/// `0010_01_05_03_115.jpg`: the fourth field).
fn session_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let f: Vec<&str> = name.split('_').collect();
    (f.len() >= 5 && f[..4].iter().all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))).then(|| f[3].to_string())
}

fn descriptor(o: &CnnOptions) -> ModelDescriptor {
    ModelDescriptor {
        id: format!("visage-liveness-cnn-{}px", o.size),
        dim: 1,
        chip: ChipGeometry { size: o.size, padding: o.padding },
        landmarks: LandmarkScheme::Dlib5,
        input: InputNormalization { mean: [127.5; 3], scale: 1.0 / 128.0 },
        // Unused: a liveness network gives a score, not an embedding to compare.
        thresholds: Thresholds { l2: 0.0, cosine: 0.0, chi2: 0.0 },
    }
}

/// Live-ness scores of `chips` by `net`, computed on the engine from the exported model.
fn engine_scores(net: &SmallCnn, spec: &CnnSpec, d: &ModelDescriptor, chips: &[&[u8]]) -> Result<Vec<f64>> {
    let scorer = Embedder::scorer_from_trained(&net.export(spec, d, ""), EngineOptions::default())?;
    Ok(scorer.embed_batch(chips)?.into_iter().map(|v| visage_liveness::logistic::sigmoid(v[0] as f64)).collect())
}

/// Trains, validates and writes a CNN liveness model.
pub fn train(g: &GlobalOpts, data: &PadDataset, dir: &Path, out: &Path, o: &CnnOptions, json: bool) -> Result<Outcome> {
    let v = g.visage()?;
    let d = descriptor(o);
    let spec = CnnSpec { channels: o.channels.clone(), dim: 1 };
    let bar = progress(data.train.len(), "finding faces", g.quiet);
    let acquired = acquire(&v, &data.train, &|| bar.inc(1));
    bar.finish_and_clear();
    let quality = QualityBounds::default();
    if o.split_by_session {
        if let Some(p) = data.train.iter().find(|p| session_of(&p.path).is_none()) {
            bail!("{}: --split session needs NUAA's file names (ID_GLASSES_POSITION_SESSION_PICTURE.jpg)", p.path.display());
        }
    }
    // (chip, live, validation group); faces not found or not judgeable are left out, as at
    // inference.
    let rows: Vec<Option<(Vec<u8>, bool, String)>> = acquired
        .par_iter()
        .map(|a| {
            let (img, det, lm) = a.face.as_ref()?;
            let crop = extract_chip(img, &face_chip_details(lm, d.chip).ok()?);
            let group = if o.split_by_session { session_of(&a.photo.path)? } else { a.photo.subject.clone() };
            quality.check(img.width(), img.height(), *det, &crop).is_none().then(|| {
                let mut c = crop.into_raw();
                if o.standardize {
                    visage_liveness::standardize_crop(&mut c);
                }
                (c, a.photo.live, group)
            })
        })
        .collect();
    let left_out = rows.iter().filter(|r| r.is_none()).count();
    let rows: Vec<(Vec<u8>, bool, String)> = rows.into_iter().flatten().collect();
    let subjects: Vec<String> = rows.iter().map(|r| r.2.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    // By session: one fold per session.
    let folds = if o.split_by_session { subjects.len() } else { o.folds };
    if subjects.len() < folds || folds < 2 {
        bail!("{} training {} cannot make {folds} folds (at least 2)", subjects.len(), if o.split_by_session { "sessions" } else { "subjects" });
    }
    let o = &CnnOptions { folds, channels: o.channels.clone(), ..*o };
    let fold_of = |s: &str| subjects.iter().position(|x| x == s).unwrap_or(0) % o.folds;
    let chips: Vec<Vec<u8>> = rows.iter().map(|r| r.0.clone()).collect();
    let labels: Vec<bool> = rows.iter().map(|r| r.1).collect();
    let fold: Vec<usize> = rows.iter().map(|r| fold_of(&r.2)).collect();
    let training = BinaryTraining { epochs: o.epochs, seed: o.seed, ..BinaryTraining::default() };
    let started = std::time::Instant::now();

    // scores[epoch][i]: photo i's out-of-fold score after `epoch + 1` epochs.
    let mut scores = vec![vec![0.0f64; rows.len()]; o.epochs];
    let bar = progress((o.folds + 1) * o.epochs, "training (validation folds, then all)", g.quiet || json);
    for f in 0..o.folds {
        let train_idx: Vec<usize> = (0..rows.len()).filter(|&i| fold[i] != f).collect();
        let held: Vec<usize> = (0..rows.len()).filter(|&i| fold[i] == f).collect();
        let tr_chips: Vec<Vec<u8>> = train_idx.iter().map(|&i| chips[i].clone()).collect();
        let tr_labels: Vec<bool> = train_idx.iter().map(|&i| labels[i]).collect();
        let held_chips: Vec<&[u8]> = held.iter().map(|&i| chips[i].as_slice()).collect();
        let mut failure = None;
        train_classifier(&spec, &d, &tr_chips, &tr_labels, &training, &mut |e, net| {
            match engine_scores(net, &spec, &d, &held_chips) {
                Ok(s) => held.iter().zip(s).for_each(|(&i, s)| scores[e.epoch - 1][i] = s),
                Err(err) => failure = Some(err),
            }
            bar.set_message(format!("fold {} epoch {}: loss {:.4}", f + 1, e.epoch, e.loss));
            bar.inc(1);
        })
        .map_err(anyhow::Error::msg)?;
        if let Some(e) = failure {
            return Err(e);
        }
    }
    // The epoch count of the lowest pooled validation ACER (then EER, then fewer epochs).
    let split = |s: &[f64]| -> (Vec<f64>, Vec<f64>) {
        let live = s.iter().zip(&labels).filter(|(_, &l)| l).map(|(s, _)| *s).collect();
        let attack = s.iter().zip(&labels).filter(|(_, &l)| !l).map(|(s, _)| *s).collect();
        (live, attack)
    };
    let mut per_epoch = Vec::new();
    for (e, s) in scores.iter().enumerate() {
        let (live, attack) = split(s);
        let t = pad::min_acer_threshold(&live, &attack).unwrap_or(0.5);
        let acer = pad::rates(&live, &[("all".into(), attack.clone())], t).acer;
        per_epoch.push((e + 1, acer, pad::equal_error(&live, &attack).0, t, pad::threshold_at_apcer(&attack, 0.05)));
    }
    let best = *per_epoch
        .iter()
        .min_by(|a, b| (a.1, a.2, a.0).partial_cmp(&(b.1, b.2, b.0)).expect("finite rates"))
        .expect("at least one epoch");
    let (epochs, val_acer, val_eer, threshold, threshold_apcer5) = best;

    let final_training = BinaryTraining { epochs, ..training.clone() };
    let net = train_classifier(&spec, &d, &chips, &labels, &final_training, &mut |e, _| {
        bar.set_message(format!("all subjects, epoch {}: loss {:.4}", e.epoch, e.loss));
        bar.inc(1);
    })
    .map_err(anyhow::Error::msg)?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let command = format!(
        "visage liveness train --kind cnn --data {} --out {} --folds {} --epochs {} --crop-size {} --crop-padding {} --channels {} --seed {}{}{}",
        dir.display(),
        out.display(),
        o.folds,
        o.epochs,
        o.size,
        o.padding,
        o.channels.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","),
        o.seed,
        if o.split_by_session { " --split session" } else { "" },
        if o.standardize { " --standardize" } else { "" }
    );
    let (live_n, attack_n) = (labels.iter().filter(|&&l| l).count(), labels.iter().filter(|&&l| !l).count());
    let settings = CnnSettings {
        threshold,
        threshold_apcer5,
        quality,
        provenance: Provenance {
            command: command.clone(),
            data: data.lists.clone(),
            samples: (live_n, attack_n),
            selection: format!(
                "{}-fold cross-validation by {} over the training list, scored on the engine; kept {epochs} epochs (validation ACER {val_acer:.4}, EER {val_eer:.4}); thresholds at the validation's lowest ACER and at APCER <= 5%",
                o.folds,
                if o.split_by_session { "session" } else { "subject" }
            ),
        },
        standardize: o.standardize,
    };
    let mut model: TrainedModel = net.valid().export(&spec, &d, &command);
    model.extra.insert(visage_liveness::cnn::SETTINGS_KEY.into(), serde_json::to_string(&settings)?);
    model.save(out)?;
    if json {
        json_line(&json!({
            "model": path_text(out), "epochs": epochs, "validation_acer": val_acer, "validation_eer": val_eer,
            "threshold": threshold, "threshold_apcer5": threshold_apcer5, "photos": {"live": live_n, "attack": attack_n, "left_out": left_out},
            "per_epoch": per_epoch.iter().map(|p| json!({"epochs": p.0, "acer": p.1, "eer": p.2})).collect::<Vec<_>>(),
            "seconds": seconds,
        }));
        return Ok(Outcome::Ok);
    }
    println!("training crops: {live_n} live, {attack_n} spoof ({left_out} photos without a judgeable face)");
    println!("{:>6} {:>10} {:>10}", "epochs", "val ACER", "val EER");
    for p in &per_epoch {
        println!("{:>6} {:>9.2}% {:>9.2}%", p.0, p.1 * 100.0, p.2 * 100.0);
    }
    println!("kept {epochs} epochs (validation ACER {:.2}%); threshold {threshold:.4}, APCER<=5% threshold {threshold_apcer5:.4}", val_acer * 100.0);
    println!("trained in {seconds:.0} s; model written to {}", path_text(out));
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::session_of;
    use std::path::Path;

    #[test]
    fn the_session_is_the_fourth_field_of_nuaa_s_names() {
        // NUAA's readme: ID_glasses_position_session_picNo, e.g. 0010_01_05_03_115.jpg.
        assert_eq!(session_of(Path::new("test/spoof/0010/0010_01_05_03_115.jpg")).as_deref(), Some("03"));
        assert_eq!(session_of(Path::new("0001_00_00_01_249.jpg")).as_deref(), Some("01"));
        for other in ["photo.jpg", "0001_00_01.jpg", "a_b_c_d_e.jpg", "0001__00_01_2.jpg"] {
            assert_eq!(session_of(Path::new(other)), None, "{other}");
        }
    }
}
