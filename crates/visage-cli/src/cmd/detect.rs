//! `visage detect PHOTO...`: faces and landmarks as JSON lines, optionally drawn.

use crate::context::GlobalOpts;
use crate::draw;
use crate::inputs::{expand, in_parallel_chunks, progress};
use crate::output::{error_text, json_line, path_text, report_error};
use crate::Outcome;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Arguments of `visage detect`.
#[derive(Args)]
pub struct DetectArgs {
    /// Photos or folders of photos.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Write the photo with boxes and landmarks drawn, in the format the name ends with
    /// (.png, .jpg or .webp). With several photos, or when OUT is an existing folder, OUT is a
    /// folder receiving <name>.faces.png per photo (<name>-2.faces.png ... when names repeat).
    /// An input photo is never overwritten.
    #[arg(long, value_name = "OUT")]
    pub draw: Option<PathBuf>,
    #[command(flatten)]
    pub photo_opts: crate::context::PhotoOpts,
}

/// Whether two paths name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Where each photo's drawing goes, decided before any photo is processed: one file, or
/// unique names in a folder; never one of the inputs.
fn draw_targets(out: &Path, photos: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let is_input = |t: &Path| photos.iter().any(|p| same_file(p, t));
    if photos.len() == 1 && !out.is_dir() {
        draw::check_format(out)?;
        if is_input(out) {
            bail!("{}: --draw would overwrite the input photo; choose another name", out.display());
        }
        return Ok(vec![out.to_path_buf()]);
    }
    if !out.is_dir() {
        if out.extension().is_some_and(|e| draw::DRAW_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str())) {
            bail!("{}: with {} photos --draw names a folder (one drawing per photo), not an image file", out.display(), photos.len());
        }
        std::fs::create_dir_all(out).map_err(|e| anyhow::anyhow!("{}: cannot create the folder: {e}", out.display()))?;
    }
    let mut used = std::collections::HashSet::new();
    let mut targets = Vec::with_capacity(photos.len());
    for p in photos {
        let stem = p.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        let mut k = 1;
        let target = loop {
            let name = if k == 1 { format!("{stem}.faces.png") } else { format!("{stem}-{k}.faces.png") };
            let t = out.join(&name);
            if !used.contains(&name) && !is_input(&t) {
                used.insert(name);
                break t;
            }
            k += 1;
        };
        targets.push(target);
    }
    Ok(targets)
}

pub fn run(g: &GlobalOpts, a: DetectArgs) -> Result<Outcome> {
    let photos = expand(&a.paths)?;
    if photos.is_empty() {
        bail!("no photos to process");
    }
    // Each photo with where its drawing goes (if --draw).
    let jobs: Vec<(PathBuf, Option<PathBuf>)> = match &a.draw {
        Some(out) => photos.iter().cloned().zip(draw_targets(out, &photos)?.into_iter().map(Some)).collect(),
        None => photos.iter().map(|p| (p.clone(), None)).collect(),
    };
    let v = g.visage()?;
    let bar = progress(photos.len(), "detecting", g.quiet);
    let mut failed = false;
    let detect = |(p, target): &(PathBuf, Option<PathBuf>)| -> Result<_> {
        crate::inputs::check_file(p)?;
        let img = v.load_image(p)?;
        let faces = v.find_faces(&img).with_context(|| p.display().to_string())?;
        if let Some(target) = target {
            let mut canvas = img.clone();
            draw::draw_faces(&mut canvas, &faces);
            draw::save(&canvas, target)?;
        }
        Ok((img.width(), img.height(), faces))
    };
    in_parallel_chunks(&jobs, 64, &bar, detect, |chunk, results| {
        for ((p, _), r) in chunk.iter().zip(results) {
            match r {
                Ok((w, h, faces)) => json_line(&json!({
                    "path": path_text(p), "width": w, "height": h,
                    "faces": faces.iter().map(super::face_json).collect::<Vec<_>>(),
                })),
                Err(e) => {
                    failed = true;
                    bar.suspend(|| report_error(p, &error_text(&e), true));
                }
            }
        }
        Ok(())
    })?;
    Ok(if failed { Outcome::PartialFailure } else { Outcome::Ok })
}
