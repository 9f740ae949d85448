//! `visage recognize KNOWN_DIR UNKNOWN_DIR`: face_recognition's command, for users coming
//! from it. Known people are the photos in KNOWN_DIR (the file name is the name) or its
//! sub-folders (the folder name is the name); each face of each unknown photo prints as
//! `path,name` (`unknown_person` when nobody is close enough, `no_persons_found` for a photo
//! without faces). Unlike face_recognition, which prints every known person within the
//! tolerance, visage prints only the nearest one.

use super::faces::{one_face, refusal_message, FaceChoice};
use crate::context::GlobalOpts;
use crate::inputs::{expand, in_parallel_chunks, is_photo, progress};
use crate::Outcome;
use anyhow::{bail, Result};
use clap::Args;
use rayon::prelude::*;
use std::path::PathBuf;
use visage_gallery::SearchIndex;

/// Arguments of `visage recognize`.
#[derive(Args)]
pub struct RecognizeArgs {
    /// Photos of known people: NAME.jpg files, or NAME/ folders of photos.
    pub known: PathBuf,
    /// Photos (or a folder) to recognise.
    pub unknown: Vec<PathBuf>,
    /// Distance below which a face is a known person (face_recognition's tolerance).
    #[arg(long, default_value_t = 0.6)]
    pub tolerance: f32,
    /// Append the distance to each line.
    #[arg(long)]
    pub show_distance: bool,
}

pub fn run(g: &GlobalOpts, a: RecognizeArgs) -> Result<Outcome> {
    if a.unknown.is_empty() {
        bail!("give photos or a folder to recognise after the known folder");
    }
    let mut known: Vec<(String, PathBuf)> = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&a.known)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.known.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            let name = e.file_name().unwrap().to_string_lossy().into_owned();
            for p in expand(&[e])? {
                known.push((name.clone(), p));
            }
        } else if is_photo(&e) {
            known.push((e.file_stem().unwrap().to_string_lossy().into_owned(), e));
        }
    }
    if known.is_empty() {
        bail!("{}: no photos of known people", a.known.display());
    }
    let v = g.visage()?;
    let embedded: Vec<_> = known.par_iter().map(|(n, p)| (n, p, one_face(&v, p, FaceChoice::Largest))).collect();
    let mut names: Vec<String> = Vec::new();
    let mut index = SearchIndex::new(visage::Metric::L2, 128);
    for (name, p, r) in embedded {
        match r {
            Ok(Ok((_, e))) => {
                if names.last() != Some(name) {
                    names.push(name.clone());
                }
                index.push((names.len() - 1) as u32, &e);
            }
            Ok(Err(refusal)) => eprintln!("WARNING: {} -- ignoring this known photo", refusal_message(p, &refusal)),
            Err(e) => eprintln!("WARNING: {e:#} -- ignoring this known photo"),
        }
    }
    let photos = expand(&a.unknown)?;
    let bar = progress(photos.len(), "recognising", g.quiet);
    let mut failed = false;
    let analyse = |p: &PathBuf| -> Result<_> { Ok(v.analyze(&v.load_image(p)?)?) };
    in_parallel_chunks(&photos, 32, &bar, analyse, |chunk, results| {
        for (p, r) in chunk.iter().zip(results) {
            match r {
                Ok(faces) if faces.is_empty() => {
                    bar.suspend(|| println!("{},no_persons_found{}", p.display(), if a.show_distance { ",None" } else { "" }))
                }
                Ok(faces) => {
                    for f in faces {
                        let best = index.search_exact(&f.embedding, 1);
                        let (name, d) = match best.first() {
                            Some(c) if c.distance < a.tolerance => (names[c.subject as usize].as_str(), Some(c.distance)),
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
                    bar.suspend(|| eprintln!("visage: {e:#}"));
                }
            }
        }
        Ok(())
    })?;
    Ok(if failed { Outcome::PartialFailure } else { Outcome::Ok })
}
