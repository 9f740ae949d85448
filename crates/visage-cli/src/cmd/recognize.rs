//! `visage recognize KNOWN_DIR UNKNOWN_DIR`: face_recognition's command, for users coming
//! from it. Known people are the photos in KNOWN_DIR (the file name is the name) or its
//! sub-folders (the folder name is the name); each face of each unknown photo prints as
//! `path,name` (`unknown_person` when nobody is close enough, `no_persons_found` for a photo
//! without faces). Unlike face_recognition, which prints every known person within the
//! tolerance, visage prints only the nearest one.

use super::faces::{analyze_loaded, choose, embed_chosen, refusal_message};
use crate::context::GlobalOpts;
use crate::inputs::{expand, in_parallel_chunks, progress};
use crate::Outcome;
use anyhow::{bail, Result};
use clap::Args;
use rayon::prelude::*;
use std::path::PathBuf;
use visage_gallery::SearchIndex;

/// The words recognize prints instead of a name, which no known person may be called.
const RESERVED: [&str; 2] = ["unknown_person", "no_persons_found"];

/// Arguments of `visage recognize`.
#[derive(Args)]
pub struct RecognizeArgs {
    /// Photos of known people: NAME.jpg files, or NAME/ folders of photos.
    pub known: PathBuf,
    /// Photos (or a folder) to recognise.
    pub unknown: Vec<PathBuf>,
    // Help: face_recognition's tolerance; by default the model's L2 threshold.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::args::threshold,
          help = format!("Distance below which a face is a known person (face_recognition's tolerance; the model's L2 threshold) [default: {}]", visage::DLIB_RESNET_THRESHOLDS.l2))]
    pub tolerance: Option<f64>,
    /// Append the distance to each line.
    #[arg(long)]
    pub show_distance: bool,
    #[command(flatten)]
    pub photo_opts: crate::context::PhotoOpts,
}

pub fn run(g: &GlobalOpts, a: RecognizeArgs) -> Result<Outcome> {
    if a.unknown.is_empty() {
        bail!("give photos or a folder to recognise after the known folder");
    }
    let mut known: Vec<(String, PathBuf)> = Vec::new();
    let scan = crate::inputs::people(&a.known)?;
    scan.warn_unused(&a.known, true);
    for p in &scan.loose {
        known.push((p.file_stem().unwrap_or_default().to_string_lossy().into_owned(), p.clone()));
    }
    for (name, photos) in &scan.people {
        known.extend(photos.iter().map(|p| (name.clone(), p.clone())));
    }
    if known.is_empty() {
        bail!("{}: no photos of known people", a.known.display());
    }
    // A known person called like one of the answers would be printed exactly as a stranger
    // (or a photo without faces) is: refused, so that every line means one thing.
    if let Some((name, p)) = known.iter().find(|(n, _)| RESERVED.contains(&n.as_str())) {
        bail!(
            "{}: the name {name:?} is reserved: recognize prints it for {}; rename this known person",
            p.display(),
            if name == "unknown_person" { "a face that matches nobody" } else { "a photo without faces" }
        );
    }
    let v = g.visage()?;
    let tolerance = a.tolerance.unwrap_or_else(|| crate::output::f32_as_decimal(v.descriptor().threshold(visage::Metric::L2)));
    let chosen: Vec<_> = known.par_iter().map(|(_, p)| choose(&v, p, Some(visage::FaceChoice::Largest))).collect();
    // Every known face embedded in one batch.
    let embeddings = embed_chosen(&v, &chosen, |r| r.as_ref().ok().and_then(|c| c.as_ref().ok()))?;
    let embedded: Vec<_> = known
        .iter()
        .zip(chosen)
        .zip(embeddings)
        .map(|(((n, p), r), e)| (n, p, r.map(|c| c.map(|c| (c.face, e.expect("a chosen face is embedded"), c.faces)))))
        .collect();
    let mut names: Vec<String> = Vec::new();
    let mut index = SearchIndex::new(visage::Metric::L2, v.descriptor().dim);
    for (name, p, r) in embedded {
        match r {
            Ok(Ok((_, e, faces))) => {
                if faces > 1 {
                    tracing::warn!("{}: {faces} faces found in this known photo; only the largest is used for {name}", p.display());
                }
                if names.last() != Some(name) {
                    names.push(name.clone());
                }
                index.push((names.len() - 1) as u32, &e);
            }
            Ok(Err(refusal)) => tracing::warn!("{}; ignoring this known photo", refusal_message(p, &refusal)),
            Err(e) => tracing::warn!("{}; ignoring this known photo", crate::output::error_text(&e)),
        }
    }
    let photos = expand(&a.unknown)?;
    let bar = progress(photos.len(), "recognising", g.quiet);
    let mut failed = false;
    let load = |p: &PathBuf| -> Result<_> {
        crate::inputs::check_file(p)?;
        Ok(v.load_image(p)?)
    };
    in_parallel_chunks(&photos, 32, &bar, load, |chunk, loaded| {
        // Detected in parallel, every face of the chunk embedded in shared batches.
        let results = analyze_loaded(&v, chunk, loaded);
        for (p, r) in chunk.iter().zip(results) {
            match r {
                Ok(faces) if faces.is_empty() => {
                    bar.suspend(|| println!("{},no_persons_found{}", p.display(), if a.show_distance { ",None" } else { "" }))
                }
                Ok(faces) => {
                    for f in faces {
                        let best = index.search(&f.embedding, 1)?;
                        let (name, d) = match best.first() {
                            Some(c) if (c.distance as f64) < tolerance => (names[c.subject as usize].as_str(), Some(c.distance)),
                            _ => ("unknown_person", None),
                        };
                        bar.suspend(|| {
                            if a.show_distance {
                                println!("{},{name},{}", p.display(), d.map_or("None".into(), |d| d.to_string()));
                            } else {
                                println!("{},{name}", p.display());
                            }
                        });
                    }
                }
                Err(e) => {
                    failed = true;
                    bar.suspend(|| eprintln!("visage: {}", crate::output::error_text(&e)));
                }
            }
        }
        Ok(())
    })?;
    Ok(if failed { Outcome::PartialFailure } else { Outcome::Ok })
}
