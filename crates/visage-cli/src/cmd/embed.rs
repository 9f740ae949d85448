//! `visage embed PATH...`: embeddings of aligned chips, or of every face in photos.

use crate::context::GlobalOpts;
use crate::inputs::{expand, in_parallel_chunks, progress};
use crate::output::{error_text, f32s_as_decimal, json_line, path_text, report_error};
use crate::Outcome;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use visage::{AlignedChip, Face, Visage};

/// Arguments of `visage embed`.
#[derive(Args)]
pub struct EmbedArgs {
    /// Photos, aligned chips of the model's chip size (with --chip), or folders of them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The inputs are aligned face chips (of the model's chip size, as `visage` or dlib cut
    /// them): embed them as they are. Without it every input is a photo, whatever its size:
    /// faces are detected.
    #[arg(long)]
    pub chip: bool,
    #[command(flatten)]
    pub photo_opts: crate::context::PhotoOpts,
}

/// What one input became.
pub enum Prepared {
    /// An aligned chip.
    Chip(AlignedChip),
    /// A photo: its faces and their chips.
    Photo(Vec<Face>, Vec<AlignedChip>),
}

/// Loads an input: with `chip`, an aligned chip (which must have the embedder's chip size);
/// otherwise a photo, whose faces are found and cut into chips (a photo's size never makes it
/// a chip).
pub fn prepare(v: &Visage, path: &std::path::Path, chip: bool) -> Result<Prepared> {
    crate::inputs::check_file(path)?;
    let img = v.load_image(path)?;
    if chip {
        let size = v.descriptor().chip.size;
        if img.width() != size || img.height() != size {
            bail!("{}: a chip must be {size}x{size}, this is {}x{}", path.display(), img.width(), img.height());
        }
        return Ok(Prepared::Chip(v.as_chip(img)?));
    }
    // The photo named in every refusal (the pixel limit after upsampling, ...).
    let faces = v.find_faces(&img).with_context(|| path.display().to_string())?;
    let chips = faces.iter().map(|f| v.chip(&img, f)).collect::<Result<Vec<_>, _>>()?;
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
        |p| prepare(&v, p, a.chip),
        |chunk, prepared| {
            // One batched forward pass for all the chips of this chunk.
            let chips: Vec<AlignedChip> = prepared
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
                    Ok(Prepared::Chip(_)) => {
                        json_line(&json!({ "path": path_text(p), "embedding": f32s_as_decimal(&embeddings.next().unwrap()) }))
                    }
                    Ok(Prepared::Photo(faces, _)) => {
                        let faces: Vec<_> = faces
                            .iter()
                            .map(|f| {
                                let mut j = super::face_json(f);
                                j["embedding"] = json!(f32s_as_decimal(&embeddings.next().unwrap()));
                                j
                            })
                            .collect();
                        json_line(&json!({ "path": path_text(p), "faces": faces }))
                    }
                    Err(e) => {
                        failed = true;
                        bar.suspend(|| report_error(p, &error_text(&e), true));
                    }
                }
            }
            Ok(())
        },
    )?;
    Ok(if failed { Outcome::PartialFailure } else { Outcome::Ok })
}
