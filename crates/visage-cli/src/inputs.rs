//! Turning path arguments into photos, and progress bars over them.

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

/// File extensions taken from folders (files named explicitly are tried whatever their name).
pub const PHOTO_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "jfif"];

/// Whether a path names a photo by its extension.
pub fn is_photo(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| PHOTO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Expands files and folders (recursively, sorted) into a list of photos.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let before = out.len();
            walk(p, &mut out)?;
            if out.len() == before {
                tracing::warn!("{}: no photos (.jpg, .png, .webp) in this folder", p.display());
            }
        } else if p.exists() {
            out.push(p.clone());
        } else {
            bail!("{}: no such file or folder", p.display());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            walk(&e, out)?;
        } else if is_photo(&e) {
            out.push(e);
        }
    }
    Ok(())
}

/// A progress bar on stderr for `n` items (hidden for a single item, with --quiet, or when
/// stderr is not a terminal).
pub fn progress(n: usize, what: &str, quiet: bool) -> ProgressBar {
    if quiet || n < 2 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})").unwrap().progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Runs `work` on every item on all cores, a chunk of `chunk` items at a time, ticking `bar`
/// per item, and hands each chunk's results to `each_chunk` in input order: output follows the
/// order of the inputs, and memory stays bounded however big the folder.
pub fn in_parallel_chunks<T: Sync, R: Send>(
    items: &[T],
    chunk: usize,
    bar: &ProgressBar,
    work: impl Fn(&T) -> R + Sync + Send,
    mut each_chunk: impl FnMut(&[T], Vec<R>) -> Result<()>,
) -> Result<()> {
    use rayon::prelude::*;
    for c in items.chunks(chunk.max(1)) {
        let results: Vec<R> = c
            .par_iter()
            .map(|x| {
                let r = work(x);
                bar.inc(1);
                r
            })
            .collect();
        each_chunk(c, results)?;
    }
    bar.finish_and_clear();
    Ok(())
}
