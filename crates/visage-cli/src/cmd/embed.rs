//! `visage embed PATH...`: embeddings of aligned chips, or of every face in photos.

use crate::context::GlobalOpts;
use crate::inputs::{expand, in_parallel_chunks, progress};
use crate::output::{json_line, report_error};
use crate::Outcome;
use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use visage::{Face, RgbImage, Visage};

/// Arguments of `visage embed`.
#[derive(Args)]
pub struct EmbedArgs {
    /// Aligned 150x150 chips, photos, or folders of them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Treat every input as an aligned chip (default: exactly 150x150 images are chips).
    #[arg(long, conflicts_with = "detect")]
    pub chip: bool,
    /// Detect faces even in 150x150 images.
    #[arg(long)]
    pub detect: bool,
}

/// What one input became.
pub enum Prepared {
    /// An aligned chip.
    Chip(RgbImage),
    /// A photo: its faces and their chips.
    Photo(Vec<Face>, Vec<RgbImage>),
}

/// Loads an input and, for photos, finds faces and cuts their chips.
pub fn prepare(v: &Visage, path: &std::path::Path, force_chip: bool, force_detect: bool) -> Result<Prepared> {
    let img = v.load_image(path)?;
    let is_chip = force_chip || (!force_detect && img.width() == 150 && img.height() == 150);
    if is_chip {
        if img.width() != 150 || img.height() != 150 {
            bail!("{}: a chip must be 150x150, this is {}x{}", path.display(), img.width(), img.height());
        }
        return Ok(Prepared::Chip(img));
    }
    let faces = v.find_faces(&img);
    let chips = faces.iter().map(|f| v.chip(&img, f)).collect();
    Ok(Prepared::Photo(faces, chips))
}

pub fn run(g: &GlobalOpts, a: EmbedArgs) -> Result<Outcome> {
    let inputs = expand(&a.paths)?;
    if inputs.is_empty() {
        bail!("no images to process");
    }
    let v = g.visage()?;
    let bar = progress(inputs.len(), "embedding", g.quiet);
    let mut failed = false;
    in_parallel_chunks(
        &inputs,
        64,
        &bar,
        |p| prepare(&v, p, a.chip, a.detect),
        |chunk, prepared| {
            // One batched forward pass for all the chips of this chunk.
            let chips: Vec<RgbImage> = prepared
                .iter()
                .flat_map(|r| match r {
                    Ok(Prepared::Chip(c)) => vec![c.clone()],
                    Ok(Prepared::Photo(_, cs)) => cs.clone(),
                    Err(_) => vec![],
                })
                .collect();
            let mut embeddings = v.embed_chips(&chips)?.into_iter();
            for (p, r) in chunk.iter().zip(prepared) {
                match r {
                    Ok(Prepared::Chip(_)) => json_line(&json!({ "path": p, "embedding": embeddings.next().unwrap() })),
                    Ok(Prepared::Photo(faces, _)) => {
                        let faces: Vec<_> = faces
                            .iter()
                            .map(|f| {
                                let mut j = super::face_json(f);
                                j["embedding"] = json!(embeddings.next().unwrap());
                                j
                            })
                            .collect();
                        json_line(&json!({ "path": p, "faces": faces }))
                    }
                    Err(e) => {
                        failed = true;
                        bar.suspend(|| report_error(p, &format!("{e:#}")));
                    }
                }
            }
            Ok(())
        },
    )?;
    Ok(if failed { Outcome::PartialFailure } else { Outcome::Ok })
}
