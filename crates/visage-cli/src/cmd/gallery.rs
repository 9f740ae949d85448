//! Gallery commands: enroll, enroll-dir, subjects, forget, verify, identify, calibrate, info.

use super::faces::{
    analyze_loaded, choice_from_args, choose_of, embed_chosen, one_face, one_face_in, read_photo, refusal_message, Chosen, Refusal,
};
use crate::context::GlobalOpts;
use crate::inputs::{expand, in_parallel_chunks, progress};
use crate::output::{error_text, f32_as_decimal, json_line, path_text, report_error};
use crate::Outcome;
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use rayon::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use visage::{FaceChoice, Metric, ModelDescriptor, Thresholds};
use visage_gallery::{calibrate, Contract, EnrollOptions, NewTemplate};

mod store;
use store::{Location, Store};

/// Arguments of `visage enroll`.
#[derive(Args)]
pub struct EnrollArgs {
    /// The person's name (unique in the gallery).
    pub name: String,
    /// One or more photos of them (one is enough).
    #[arg(required = true)]
    pub photos: Vec<PathBuf>,
    /// In photos with several faces, use the face with this index (as numbered by `visage detect`, from 0).
    #[arg(long, value_name = "N")]
    pub face: Option<usize>,
    /// In photos with several faces, use the largest one.
    #[arg(long, conflicts_with = "face")]
    pub largest: bool,
    /// JSON metadata to store with the person.
    #[arg(long, value_name = "JSON")]
    pub meta: Option<String>,
    /// Metric of a gallery created by this command (l2, cosine, chi2) [default: l2]; an existing gallery's metric must match.
    #[arg(long)]
    pub metric: Option<Metric>,
    /// Enroll a face even when the same face of the same photo is already enrolled under another name.
    #[arg(long)]
    pub allow_duplicate: bool,
    #[command(flatten)]
    pub photo_opts: crate::context::PhotoOpts,
    #[command(flatten)]
    pub gallery_opt: crate::context::GalleryOpt,
}

/// Arguments of `visage enroll-dir`.
#[derive(Args)]
pub struct EnrollDirArgs {
    /// A folder with one sub-folder of photos per person (the sub-folder's name is the name).
    pub dir: PathBuf,
    /// In photos with several faces, use the largest one (otherwise they are skipped).
    #[arg(long)]
    pub largest: bool,
    /// Metric of a gallery created by this command (l2, cosine, chi2) [default: l2]; an existing gallery's metric must match.
    #[arg(long)]
    pub metric: Option<Metric>,
    /// Enroll a face even when the same face of the same photo is already enrolled under another name.
    #[arg(long)]
    pub allow_duplicate: bool,
    #[command(flatten)]
    pub photo_opts: crate::context::PhotoOpts,
    #[command(flatten)]
    pub gallery_opt: crate::context::GalleryOpt,
}

/// `visage subjects ...`.
#[derive(Subcommand)]
pub enum SubjectsCommand {
    /// List enrolled people and their template counts.
    List {
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Rename a person.
    Rename {
        /// Current name.
        old: String,
        /// New name.
        new: String,
    },
    /// Remove a person and all their templates (same as `visage forget`).
    Remove {
        /// The name.
        name: String,
    },
    /// Set a person's JSON metadata.
    Meta {
        /// The name.
        name: String,
        /// JSON value.
        json: String,
    },
}

/// Arguments of `visage verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// Who the person in the photo claims to be.
    pub name: String,
    /// The photo (its largest face is checked, unless --face N).
    pub photo: PathBuf,
    /// The face to check in a photo with several (from 0).
    #[arg(long, value_name = "N")]
    pub face: Option<usize>,
    /// Match when the distance is below this [default: the gallery's threshold]; with --head,
    /// when the probability is at or above it (in (0, 1)) [default: the head's threshold].
    #[arg(long, allow_negative_numbers = true, value_parser = crate::args::threshold)]
    pub threshold: Option<f64>,
    /// Decide with a trained Siamese head (`visage train head`): the highest probability
    /// that the face and one of the person's templates are one person.
    #[arg(long, value_name = "FILE")]
    pub head: Option<PathBuf>,
    /// Print JSON instead of a sentence.
    #[arg(long)]
    pub json: bool,
    /// Check liveness first: a face judged a spoof (or that cannot be judged) is refused,
    /// exit 3, whoever it resembles.
    #[arg(long)]
    pub liveness: bool,
    #[command(flatten)]
    pub liveness_model: super::liveness::ModelOpt,
    #[command(flatten)]
    pub photo_opts: crate::context::PhotoOpts,
    #[command(flatten)]
    pub gallery_opt: crate::context::GalleryOpt,
}

/// Arguments of `visage identify`.
#[derive(Args)]
pub struct IdentifyArgs {
    /// Photos or folders of photos.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Candidates to list per face, nearest first.
    #[arg(long, default_value_t = 1, value_name = "K", value_parser = crate::args::at_least_one)]
    pub top: usize,
    /// A face is recognised when its nearest person is closer than this [default: the gallery's
    /// threshold]; with --head, when the best probability is at or above it, in (0, 1).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::args::threshold)]
    pub threshold: Option<f64>,
    /// Decide with a trained Siamese head (`visage train head`): the nearest people by
    /// distance (at least 10) are re-ranked by the head's probability, and the best is named
    /// when it reaches the head's threshold.
    #[arg(long, value_name = "FILE")]
    pub head: Option<PathBuf>,
    /// JSON lines (one per photo) instead of sentences.
    #[arg(long)]
    pub json: bool,
    /// Check liveness first: a face judged a spoof (or that cannot be judged) gets the decision
    /// "spoof" or "cannot_judge" instead of a name, and the exit code is 3.
    #[arg(long)]
    pub liveness: bool,
    #[command(flatten)]
    pub liveness_model: super::liveness::ModelOpt,
    #[command(flatten)]
    pub photo_opts: crate::context::PhotoOpts,
    #[command(flatten)]
    pub gallery_opt: crate::context::GalleryOpt,
}

/// Arguments of `visage calibrate`.
#[derive(Args)]
pub struct CalibrateArgs {
    /// Target false-accept rate: the fraction of different-people pairs allowed to match, in (0, 1).
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true, value_parser = crate::args::rate)]
    pub far: f64,
    /// Also use a labelled pair list (pathA<TAB>pathB<TAB>1 same / 0 different; paths relative to the file).
    #[arg(long, value_name = "FILE")]
    pub pairs: Option<PathBuf>,
    /// Store the recommended threshold as the gallery's default.
    #[arg(long)]
    pub store: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub photo_opts: crate::context::PhotoOpts,
    #[command(flatten)]
    pub gallery_opt: crate::context::GalleryOpt,
}

/// Opens the gallery to enroll embeddings of the model `d` describes, which an existing
/// gallery's must be; a missing one is made for that model (its id, dimension and threshold
/// for `metric`), and an existing gallery's metric must equal `metric`.
fn open_to_enroll(g: &GlobalOpts, d: &ModelDescriptor, metric: Option<Metric>) -> Result<Store> {
    Store::open_to_enroll(&location(g)?, d, metric)
}

/// The gallery `--gallery` names: a file (which must not be a folder) or, in a build with the
/// `milvus` feature, `milvus://HOST:PORT/NAME`.
fn location(g: &GlobalOpts) -> Result<Location> {
    match &g.gallery {
        Some(p) if p.to_str().is_some_and(|s| s.starts_with("milvus://")) => Location::of(p),
        _ => Ok(Location::File(g.gallery_path()?)),
    }
}

/// The gallery of a command that needs one to exist (a file that exists, or a Milvus gallery,
/// which opening checks).
fn existing_location(g: &GlobalOpts) -> Result<Location> {
    match location(g)? {
        Location::File(_) => Ok(Location::File(g.existing_gallery_path()?)),
        m => Ok(m),
    }
}

/// Opens the gallery for writing what needs no embedder (names, metadata, forgetting, a
/// threshold), whatever model it was made for.
fn open(g: &GlobalOpts) -> Result<Store> {
    Store::open_existing(&existing_location(g)?, false)
}

/// Opens the gallery read-only, whatever model it was made for: no lock is taken, and a
/// read-only folder is fine. Commands that compare photos with it check their embedder with
/// [`Store::check_model`].
fn open_read(g: &GlobalOpts) -> Result<Store> {
    Store::open_existing(&existing_location(g)?, true)
}

/// The thresholds of the model a gallery holds, known without loading it: the model's own
/// descriptor, for the models this visage embeds with (dlib's ResNet).
fn model_thresholds(c: &Contract) -> Option<Thresholds> {
    (c.model == visage::DLIB_RESNET_ID && c.dim == visage::DLIB_RESNET_DIM).then_some(visage::DLIB_RESNET_THRESHOLDS)
}

pub fn info(g: &GlobalOpts) -> Result<Outcome> {
    let gal = open_read(g)?;
    let (s, t) = gal.counts()?;
    let c = gal.contract();
    println!("gallery   {}", gal.place());
    println!("contract  {c}");
    println!("threshold {:.4}", gal.threshold()?);
    println!("subjects  {s}");
    println!("templates {t}");
    Ok(Outcome::Ok)
}

pub fn enroll(g: &GlobalOpts, a: EnrollArgs) -> Result<Outcome> {
    // A gallery path that cannot be one is refused before the photo work.
    location(g)?;
    let v = g.visage()?;
    let choice = choice_from_args(a.face, a.largest);
    let photos = expand(&a.photos)?;
    let results: Vec<Result<_>> = photos
        .par_iter()
        .map(|p| {
            let photo = read_photo(&v, p)?;
            let face = choose_of(&v, &photo, p, choice)?;
            Ok((photo.sha256, face))
        })
        .collect();
    // The chosen faces of all the photos, embedded in one batch.
    let embeddings = embed_chosen(&v, &results, |r| r.as_ref().ok().and_then(|(_, c)| c.as_ref().ok()))?;
    // All or nothing: one unusable photo refuses the whole command.
    let mut templates = Vec::new();
    let mut refused = Vec::new();
    for ((p, r), embedding) in photos.iter().zip(results).zip(embeddings) {
        match r {
            Ok((sha, Ok(Chosen { face, .. }))) => {
                let embedding = embedding.expect("a chosen face is embedded");
                let b = face.rect;
                templates.push(NewTemplate {
                    embedding,
                    photo_sha256: sha,
                    face_box: [b.left, b.top, b.right, b.bottom],
                    source: Some(p.display().to_string()),
                });
            }
            Ok((_, Err(refusal))) => refused.push(refusal_message(p, &refusal)),
            Err(e) => refused.push(crate::output::error_text(&e)),
        }
    }
    if !refused.is_empty() {
        for r in &refused {
            eprintln!("visage: {r}");
        }
        bail!("nothing enrolled for \"{}\": {} of {} photo(s) refused", a.name, refused.len(), photos.len());
    }
    let gal = open_to_enroll(g, v.descriptor(), a.metric)?;
    let out = gal
        .enroll_with(&a.name, a.meta.as_deref(), &templates, EnrollOptions { allow_duplicate: a.allow_duplicate })
        .map_err(|e| duplicate_message(e, &templates))?;
    eprintln!(
        "enrolled \"{}\": {} new template(s){}",
        a.name,
        out.added,
        if out.already > 0 { format!(", {} already enrolled", out.already) } else { String::new() }
    );
    Ok(Outcome::Ok)
}

/// A refused duplicate as the command line says it: which photo, who has its face, and the
/// option that allows it. Other errors pass unchanged.
fn duplicate_message(e: anyhow::Error, templates: &[NewTemplate]) -> anyhow::Error {
    match store::duplicate_of(&e) {
        Some((existing, name, photo_sha256, face_box)) => {
            let photo = templates
                .iter()
                .find(|t| t.photo_sha256 == photo_sha256 && face_box_text(&t.face_box) == face_box)
                .and_then(|t| t.source.clone())
                .unwrap_or_else(|| format!("photo {}", &photo_sha256[..12.min(photo_sha256.len())]));
            anyhow::anyhow!(
                "{photo}: this face {face_box} is already enrolled as {}; pass --allow-duplicate to enroll it as {} too",
                visage_gallery::quoted_name(existing),
                visage_gallery::quoted_name(name)
            )
        }
        None => e,
    }
}

/// A face box as the gallery's messages print it: `[l,t,r,b]`.
fn face_box_text(b: &[i64; 4]) -> String {
    format!("[{},{},{},{}]", b[0], b[1], b[2], b[3])
}

pub fn enroll_dir(g: &GlobalOpts, a: EnrollDirArgs) -> Result<Outcome> {
    let mut jobs: Vec<(String, PathBuf)> = Vec::new();
    let scan = crate::inputs::people(&a.dir)?;
    scan.warn_unused(&a.dir, false);
    let people = &scan.people;
    if people.is_empty() {
        bail!("{}: no sub-folders with photos; enroll-dir expects one folder of photos per person", a.dir.display());
    }
    for (name, photos) in people {
        jobs.extend(photos.iter().map(|p| (name.clone(), p.clone())));
    }
    let v = g.visage()?;
    let gal = open_to_enroll(g, v.descriptor(), a.metric)?;
    let choice = a.largest.then_some(FaceChoice::Largest);
    let bar = progress(jobs.len(), "enrolling", g.quiet);
    let (mut added, mut already, mut no_face, mut several, mut failed) = (0usize, 0usize, Vec::new(), Vec::new(), Vec::new());
    // Photos are analysed in parallel; each is committed in its own transaction as soon as it
    // is ready, so an interrupted run keeps everything finished and a re-run resumes.
    let analyse = |(name, p): &(String, PathBuf)| -> Result<Option<_>> {
        let photo = read_photo(&v, p)?;
        if gal.has_photo(name, &photo.sha256)? {
            return Ok(None);
        }
        let face = choose_of(&v, &photo, p, choice)?;
        Ok(Some((photo.sha256, face)))
    };
    in_parallel_chunks(&jobs, 32, &bar, analyse, |chunk, results| {
        // The chunk's chosen faces, embedded in one batch.
        let embeddings = embed_chosen(&v, &results, |r| r.as_ref().ok().and_then(|o| o.as_ref()).and_then(|(_, c)| c.as_ref().ok()))?;
        for (((name, p), r), embedding) in chunk.iter().zip(results).zip(embeddings) {
            match r {
                Ok(None) => already += 1,
                Ok(Some((sha, Ok(Chosen { face, .. })))) => {
                    let embedding = embedding.expect("a chosen face is embedded");
                    let b = face.rect;
                    let t = NewTemplate {
                        embedding,
                        photo_sha256: sha,
                        face_box: [b.left, b.top, b.right, b.bottom],
                        source: Some(p.display().to_string()),
                    };
                    // A face enrolled under another name is refused by name; the run goes on.
                    match gal.enroll_with(name, None, std::slice::from_ref(&t), EnrollOptions { allow_duplicate: a.allow_duplicate }) {
                        Ok(o) => {
                            added += o.added;
                            already += o.already;
                        }
                        Err(e) if store::duplicate_of(&e).is_some() => failed.push(duplicate_message(e, &[t]).to_string()),
                        Err(e) => return Err(e),
                    }
                }
                Ok(Some((_, Err(Refusal::NoFace)))) => no_face.push(p.clone()),
                Ok(Some((_, Err(Refusal::SeveralFaces(_))))) => several.push(p.clone()),
                Err(e) => failed.push(crate::output::error_text(&e)),
            }
        }
        Ok(())
    })?;
    let (s, t) = gal.counts()?;
    eprintln!(
        "enrolled {added} new template(s) from {} photo(s) of {} people; the gallery now holds {s} people, {t} templates",
        jobs.len(),
        people.len()
    );
    if already > 0 {
        eprintln!("skipped {already} photo(s) already enrolled");
    }
    for (what, list) in [("no face found", &no_face), ("several faces (use --largest to take the largest)", &several)] {
        if !list.is_empty() {
            eprintln!("skipped {} photo(s), {what}:", list.len());
            for p in list.iter().take(20) {
                eprintln!("  {}", p.display());
            }
            if list.len() > 20 {
                eprintln!("  ... and {} more", list.len() - 20);
            }
        }
    }
    for f in &failed {
        eprintln!("visage: {f}");
    }
    Ok(if failed.is_empty() { Outcome::Ok } else { Outcome::PartialFailure })
}

pub fn subjects(g: &GlobalOpts, c: SubjectsCommand) -> Result<Outcome> {
    let gal = if matches!(c, SubjectsCommand::List { .. }) { open_read(g)? } else { open(g)? };
    match c {
        SubjectsCommand::List { json } => {
            let list = gal.subjects()?;
            if json {
                for s in &list {
                    json_line(
                        &json!({"name": s.name, "templates": s.templates, "metadata": s.metadata.as_deref().and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok()), "created_at": s.created_at}),
                    );
                }
            } else {
                println!("{:<32} {:>9}  metadata", "name", "templates");
                for s in &list {
                    println!("{:<32} {:>9}  {}", s.name, s.templates, s.metadata.as_deref().unwrap_or(""));
                }
                eprintln!("{} people", list.len());
            }
        }
        SubjectsCommand::Rename { old, new } => {
            gal.rename(&old, &new)?;
            eprintln!("renamed \"{old}\" to \"{new}\"");
        }
        SubjectsCommand::Remove { name } => return forget(g, &name),
        SubjectsCommand::Meta { name, json } => gal.set_metadata(&name, &json)?,
    }
    Ok(Outcome::Ok)
}

pub fn forget(g: &GlobalOpts, name: &str) -> Result<Outcome> {
    let gal = open(g)?;
    let out = gal.forget(name)?;
    let name = visage_gallery::quoted_name(&visage_gallery::normalize_name(name));
    if gal.is_milvus() {
        // Milvus deletes are logical until a compaction rewrites the segments.
        if out.erased {
            eprintln!(
                "forgot {name}: {} template(s) deleted; compaction confirmed: no copy left in {}'s stored segments",
                out.templates,
                gal.place()
            );
        } else {
            eprintln!(
                "forgot {name}: {} template(s) deleted (no search returns them); the compaction that removes them from {}'s stored segments was not confirmed in time",
                out.templates,
                gal.place()
            );
        }
    } else if out.erased {
        eprintln!("forgot {name}: {} template(s) deleted and overwritten", out.templates);
    } else {
        eprintln!(
            "forgot {name}: {} template(s) deleted; another process still reads the gallery, so their bytes are overwritten when it closes and the gallery is next opened for writing",
            out.templates
        );
    }
    Ok(Outcome::Ok)
}

pub fn verify(g: &GlobalOpts, a: VerifyArgs) -> Result<Outcome> {
    let gal = open_read(g)?;
    let threshold = match a.threshold {
        Some(t) => t,
        None => gal.threshold()?,
    };
    // Check the name before the (slower) photo work.
    // Names compare in NFC, as the gallery stores them ("Jose\u{301}" is "Jos\u{e9}").
    let name = visage_gallery::normalize_name(&a.name);
    gal.subjects()?.iter().find(|s| s.name == name).ok_or_else(|| match &gal {
        Store::Sqlite(s) => {
            anyhow::Error::from(visage_gallery::GalleryError::UnknownSubject { name: name.clone(), path: s.path().to_path_buf() })
        }
        #[allow(unreachable_patterns)]
        _ => anyhow::anyhow!("no one called {name:?} is enrolled in {}", gal.place()),
    })?;
    let liveness = if a.liveness { Some(a.liveness_model.load()?) } else { None };
    let v = g.visage()?;
    gal.check_model(v.descriptor())?;
    let choice = choice_from_args(a.face, true);
    crate::inputs::check_file(&a.photo)?;
    let img = v.load_image(&a.photo)?;
    let (face, e) = one_face_in(&v, &img, &a.photo, choice)?.map_err(|r| anyhow::anyhow!(refusal_message(&a.photo, &r)))?;
    if let Some(model) = &liveness {
        let j = model.judge(&img, face.detection, &face.landmarks, None);
        if j.verdict != visage_liveness::Verdict::Live {
            // Refused before any comparison: the answer says nothing about whom the photo resembles.
            if a.json {
                let mut out = json!({"name": a.name, "photo": path_text(&a.photo), "match": false, "refused": true});
                out.as_object_mut().unwrap().extend(super::liveness::judgement_json(&j).as_object().unwrap().clone());
                println!("{out}");
            } else {
                println!("refused: the face is not judged live ({})", super::liveness::judgement_text(&j));
            }
            return Ok(Outcome::Spoof);
        }
    }
    if let Some(path) = &a.head {
        let h = super::compare::load_head(path, &v, a.threshold)?;
        let p = best_probability(&h, &gal.templates_of(&a.name)?, &e);
        let matched = p >= h.threshold;
        if a.json {
            let mut out = json!({"name": a.name, "photo": path_text(&a.photo), "match": matched, "head": h.kind.name(), "probability": p, "threshold": h.threshold});
            if a.liveness {
                out["liveness"] = json!("live");
            }
            println!("{out}");
        } else if matched {
            println!("match: {name} ({} head probability {p:.4} >= threshold {:.4})", h.kind, h.threshold);
        } else {
            println!("no match: not {name} ({} head probability {p:.4} < threshold {:.4})", h.kind, h.threshold);
        }
        return Ok(if matched { Outcome::Ok } else { Outcome::No });
    }
    let d32 = gal.distance_to(&a.name, &e)?;
    // Decided on the exact distance; printed by its shortest decimal form.
    let matched = (d32 as f64) < threshold;
    let d = f32_as_decimal(d32);
    let metric = gal.contract().metric;
    if a.json {
        let mut out = json!({"name": a.name, "photo": path_text(&a.photo), "match": matched, "distance": d, "threshold": threshold, "metric": metric.name()});
        if a.liveness {
            out["liveness"] = json!("live");
        }
        println!("{out}");
    } else if matched {
        println!("match: {name} ({metric} distance {d:.4} < threshold {threshold:.4})");
    } else {
        println!("no match: not {name} ({metric} distance {d:.4} >= threshold {threshold:.4})");
    }
    Ok(if matched { Outcome::Ok } else { Outcome::No })
}

/// A head's highest probability between `probe` and any of `templates`.
fn best_probability(h: &visage_core::PairHead, templates: &[Vec<f32>], probe: &[f32]) -> f64 {
    templates.iter().map(|t| h.probability(t, probe)).fold(0.0, f64::max)
}

/// Candidates a head re-ranks in identify: the nearest people by distance, at least this many.
const HEAD_CANDIDATES: usize = 10;

pub fn identify(g: &GlobalOpts, a: IdentifyArgs) -> Result<Outcome> {
    let gal = open_read(g)?;
    let threshold = match a.threshold {
        Some(t) => t,
        None => gal.threshold()?,
    };
    let photos = expand(&a.paths)?;
    let liveness = if a.liveness { Some(a.liveness_model.load()?) } else { None };
    let v = g.visage()?;
    gal.check_model(v.descriptor())?;
    let head = a.head.as_deref().map(|p| super::compare::load_head(p, &v, a.threshold)).transpose()?;
    let threshold = head.as_ref().map_or(threshold, |h| h.threshold);
    let bar = progress(photos.len(), "identifying", g.quiet);
    let (mut failed, mut spoofed) = (false, false);
    let load = |p: &PathBuf| -> Result<_> {
        crate::inputs::check_file(p)?;
        Ok(v.load_image(p)?)
    };
    in_parallel_chunks(&photos, 32, &bar, load, |chunk, loaded| {
        // The decoded photos, kept for the liveness check.
        let images: Vec<Option<visage::RgbImage>> =
            if liveness.is_some() { loaded.iter().map(|r| r.as_ref().ok().cloned()).collect() } else { vec![None; loaded.len()] };
        // Detected in parallel, every face of the chunk embedded in shared batches.
        let analysed = analyze_loaded(&v, chunk, loaded);
        for ((p, r), img) in chunk.iter().zip(analysed).zip(&images) {
            match r.and_then(|faces| {
                faces
                    .into_iter()
                    .map(|f| {
                        let b = f.face.rect;
                        if let (Some(model), Some(img)) = (&liveness, img) {
                            let j = model.judge(img, f.face.detection, &f.face.landmarks, None);
                            if let Some(decision) = j.verdict.refusal() {
                                // Not searched: a refused face gets no name and no candidates.
                                let mut out = json!({
                                    "box": [b.left, b.top, b.right, b.bottom],
                                    "decision": decision,
                                    "name": null, "nearest": null, "distance": null, "threshold": threshold, "candidates": [],
                                });
                                out.as_object_mut().unwrap().extend(super::liveness::judgement_json(&j).as_object().unwrap().clone());
                                out["refusal"] = json!(super::liveness::judgement_text(&j));
                                return Ok(out);
                            }
                        }
                        if let Some(h) = &head {
                            // Candidates by distance, re-ranked by the head's probability.
                            let mut c: Vec<(String, f32, f64)> = Vec::new();
                            for m in gal.search(&f.embedding, a.top.max(HEAD_CANDIDATES))? {
                                let p = best_probability(h, &gal.templates_of(&m.name)?, &f.embedding);
                                c.push((m.name, m.distance, p));
                            }
                            c.sort_by(|x, y| y.2.total_cmp(&x.2));
                            let best = c.first().filter(|m| m.2 >= h.threshold);
                            return Ok(json!({
                                "box": [b.left, b.top, b.right, b.bottom],
                                "decision": if best.is_some() { "match" } else { "unknown" },
                                "name": best.map(|m| m.0.as_str()),
                                "nearest": c.first().map(|m| m.0.as_str()),
                                "distance": c.first().map(|m| f32_as_decimal(m.1)),
                                "head": h.kind.name(),
                                "probability": c.first().map(|m| m.2),
                                "threshold": h.threshold,
                                "candidates": c.iter().take(a.top).map(|m| json!({"name": m.0, "distance": f32_as_decimal(m.1), "probability": m.2})).collect::<Vec<_>>(),
                            }));
                        }
                        let c = gal.search(&f.embedding, a.top.max(1))?;
                        let best = c.first().filter(|m| (m.distance as f64) < threshold);
                        // "decision" says whether anyone matched; "name" is null for nobody, so
                        // no enrolled name (not even "unknown") can pass for a stranger.
                        Ok(json!({
                            "box": [b.left, b.top, b.right, b.bottom],
                            "decision": if best.is_some() { "match" } else { "unknown" },
                            "name": best.map(|m| m.name.as_str()),
                            "nearest": c.first().map(|m| m.name.as_str()),
                            "distance": c.first().map(|m| f32_as_decimal(m.distance)),
                            "threshold": threshold,
                            "candidates": c.iter().take(a.top).map(|m| json!({"name": m.name, "distance": f32_as_decimal(m.distance)})).collect::<Vec<_>>(),
                        }))
                    })
                    .collect::<Result<Vec<_>>>()
            }) {
                Ok(faces) => {
                    spoofed |= faces.iter().any(|f| matches!(f["decision"].as_str(), Some("spoof" | "cannot_judge")));
                    if a.json {
                        json_line(&json!({"path": path_text(p), "faces": faces}))
                    } else {
                        bar.suspend(|| print_identified(p, &faces, a.top))
                    }
                }
                Err(e) => {
                    failed = true;
                    bar.suspend(|| report_error(p, &error_text(&e), a.json));
                }
            }
        }
        Ok(())
    })?;
    Ok(if failed {
        Outcome::PartialFailure
    } else if spoofed {
        Outcome::Spoof
    } else {
        Outcome::Ok
    })
}

/// One sentence per face: `photo face i [l,t,r,b]: name (distance d < threshold)` or
/// `no match: nobody closer than threshold (nearest: name d)`; numbers are distances (lower is closer).
fn print_identified(path: &Path, faces: &[serde_json::Value], top: usize) {
    if faces.is_empty() {
        println!("{}: no face found", path.display());
    }
    for (i, f) in faces.iter().enumerate() {
        let b = &f["box"];
        let cands = f["candidates"].as_array().cloned().unwrap_or_default();
        let list = |c: &[serde_json::Value]| {
            c.iter()
                .map(|m| format!("{} {:.3}", m["name"].as_str().unwrap_or("?"), m["distance"].as_f64().unwrap_or(f64::NAN)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let threshold = f["threshold"].as_f64().unwrap_or(f64::NAN);
        if f["head"].is_string() {
            let list = |c: &[serde_json::Value]| {
                c.iter()
                    .map(|m| format!("{} p={:.3}", m["name"].as_str().unwrap_or("?"), m["probability"].as_f64().unwrap_or(f64::NAN)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let p = f["probability"].as_f64().unwrap_or(f64::NAN);
            let who = match (f["decision"].as_str(), f["name"].as_str()) {
                (Some("spoof" | "cannot_judge"), _) => format!("refused: not judged live ({})", f["refusal"].as_str().unwrap_or("?")),
                (Some("match"), Some(name)) => format!("{name} (head probability {p:.3} >= {threshold:.3})"),
                _ if f["nearest"].is_null() => "no match (the gallery is empty)".to_string(),
                _ => format!("no match: nobody at head probability {threshold:.3} or more (best: {})", list(&cands[..1])),
            };
            let more = if top > 1 && cands.len() > 1 { format!("  candidates by probability: {}", list(&cands)) } else { String::new() };
            println!("{} face {i} [{},{},{},{}]: {who}{more}", path.display(), b[0], b[1], b[2], b[3]);
            continue;
        }
        let who = match (f["decision"].as_str(), f["name"].as_str()) {
            (Some("spoof" | "cannot_judge"), _) => format!("refused: not judged live ({})", f["refusal"].as_str().unwrap_or("?")),
            (Some("match"), Some(name)) => format!("{name} (distance {:.3} < {threshold:.3})", f["distance"].as_f64().unwrap_or(f64::NAN)),
            _ if f["nearest"].is_null() => "no match (the gallery is empty)".to_string(),
            _ => format!("no match: nobody closer than {threshold:.3} (nearest: {})", list(&cands[..1])),
        };
        let more = if top > 1 && cands.len() > 1 { format!("  candidates by distance: {}", list(&cands)) } else { String::new() };
        println!("{} face {i} [{},{},{},{}]: {who}{more}", path.display(), b[0], b[1], b[2], b[3]);
    }
}

pub fn calibrate_cmd(g: &GlobalOpts, a: CalibrateArgs) -> Result<Outcome> {
    let gal = if a.store { open(g)? } else { open_read(g)? };
    let metric = gal.contract().metric;
    let templates = gal.templates()?;
    let mut ids = std::collections::HashMap::new();
    let items: Vec<(usize, &[f32])> = templates
        .iter()
        .map(|t| {
            let n = ids.len();
            (*ids.entry(t.name.clone()).or_insert(n), t.embedding.as_slice())
        })
        .collect();
    let (mut genuine, mut impostor) = calibrate::pair_distances(&items, metric, 2_000_000);
    let from_gallery = (genuine.len(), impostor.len());
    if let Some(file) = &a.pairs {
        let pairs: Vec<(PathBuf, PathBuf, bool)> = {
            crate::inputs::check_file_as(file, "pair list")?;
            visage_eval::pairs::parse_generic(file, 1)?
        }
        .into_iter()
        .map(|p| (p.a, p.b, p.same))
        .collect();
        let v = g.visage()?;
        gal.check_model(v.descriptor())?;
        let bar = progress(pairs.len(), "embedding pairs", g.quiet);
        let d: Vec<Result<(f64, bool)>> = pairs
            .par_iter()
            .map(|(x, y, same)| {
                let e = |p: &Path| {
                    one_face(&v, p, Some(FaceChoice::Largest))?.map(|(_, e)| e).map_err(|r| anyhow::anyhow!(refusal_message(p, &r)))
                };
                let r = (|| Ok((calibrate::distance_as_decimal(metric.distance(&e(x)?, &e(y)?)), *same)))();
                bar.inc(1);
                r
            })
            .collect();
        bar.finish_and_clear();
        let mut skipped = 0;
        for r in d {
            match r {
                Ok((d, true)) => genuine.push(d),
                Ok((d, false)) => impostor.push(d),
                Err(e) => {
                    skipped += 1;
                    tracing::warn!("{}", crate::output::error_text(&e));
                }
            }
        }
        if skipped > 0 {
            eprintln!("{skipped} pair(s) skipped (a photo without a face or unreadable; see -v)");
        }
    }
    let Some(c) = calibrate::calibrate(&genuine, &impostor, a.far) else {
        bail!(
            "not enough pairs to calibrate: {} genuine and {} impostor distances (the gallery needs people with 2 or more templates, or pass --pairs FILE)",
            genuine.len(),
            impostor.len()
        );
    };
    // A FAR of 1/N needs N impostor pairs to be seen at all: with fewer, the threshold is
    // simply below the closest impostor pair, whatever rate was asked for.
    let needed = (1.0 / a.far).ceil() as usize;
    if a.json {
        let mut v = serde_json::to_value(&c)?;
        v["far_resolved"] = json!(c.impostor >= needed);
        println!("{v}");
    } else {
        println!(
            "pairs          {} genuine, {} impostor ({} / {} from the gallery)",
            c.genuine, c.impostor, from_gallery.0, from_gallery.1
        );
        println!("metric         {metric}");
        let default = model_thresholds(gal.contract()).map_or(String::new(), |t| format!(", default {}", t.get(metric)));
        println!("threshold      {:.4}   for FAR <= {} (current {:.4}{default})", c.threshold, a.far, gal.threshold()?);
        println!("at threshold   FAR {:.5}, TAR {:.4}", c.far, c.tar);
        println!("EER            {:.4} at threshold {:.4}", c.eer, c.eer_threshold);
    }
    if c.impostor < needed {
        eprintln!(
            "warning: only {} impostor (different-people) pairs: too few to resolve FAR <= {} (that needs at least {needed}); the threshold is not reliable for that rate",
            c.impostor, a.far
        );
    }
    if a.store {
        gal.set_threshold(c.threshold)?;
        eprintln!("stored threshold {:.4} in {}", c.threshold, gal.place());
    }
    Ok(Outcome::Ok)
}
