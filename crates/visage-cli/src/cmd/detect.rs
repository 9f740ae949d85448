//! `visage detect PHOTO...`: faces and landmarks as JSON lines, optionally drawn.

use crate::context::GlobalOpts;
use crate::draw;
use crate::inputs::{expand, in_parallel_chunks, progress};
use crate::output::{json_line, report_error};
use crate::Outcome;
use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

/// Arguments of `visage detect`.
#[derive(Args)]
pub struct DetectArgs {
    /// Photos or folders of photos.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Write the photo with boxes and landmarks drawn (PNG, or JPEG by extension). With
    /// several photos this is a folder, which receives <name>.faces.png per photo.
    #[arg(long, value_name = "OUT")]
    pub draw: Option<PathBuf>,
}

pub fn run(g: &GlobalOpts, a: DetectArgs) -> Result<Outcome> {
    let photos = expand(&a.paths)?;
    if photos.is_empty() {
        bail!("no photos to process");
    }
    let many = photos.len() > 1;
    if let Some(d) = &a.draw {
        if many {
            std::fs::create_dir_all(d).map_err(|e| anyhow::anyhow!("{}: {e}", d.display()))?;
        }
    }
    let v = g.visage()?;
    let bar = progress(photos.len(), "detecting", g.quiet);
    let mut failed = false;
    let detect = |p: &PathBuf| -> Result<_> {
        let img = v.load_image(p)?;
        let faces = v.find_faces(&img);
        if let Some(out) = &a.draw {
            let target =
                if many { out.join(format!("{}.faces.png", p.file_stem().unwrap_or_default().to_string_lossy())) } else { out.clone() };
            let mut canvas = img.clone();
            draw::draw_faces(&mut canvas, &faces);
            draw::save(&canvas, &target)?;
        }
        Ok((img.width(), img.height(), faces))
    };
    in_parallel_chunks(&photos, 64, &bar, detect, |chunk, results| {
        for (p, r) in chunk.iter().zip(results) {
            match r {
                Ok((w, h, faces)) => json_line(&json!({
                    "path": p, "width": w, "height": h,
                    "faces": faces.iter().map(super::face_json).collect::<Vec<_>>(),
                })),
                Err(e) => {
                    failed = true;
                    bar.suspend(|| report_error(p, &format!("{e:#}")));
                }
            }
        }
        Ok(())
    })?;
    Ok(if failed { Outcome::PartialFailure } else { Outcome::Ok })
}
