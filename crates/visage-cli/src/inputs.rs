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

/// Why an input path is not a `what` file ("photo", "pair list"), or `None` when it is a
/// regular file (symbolic links are followed). Reading a FIFO or a device would block or
/// never end, so only regular files are read.
fn not_a(path: &Path, what: &str) -> Option<String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("no such file or folder".into()),
        Err(e) => Some(format!("cannot read: {e}")),
        Ok(m) if m.is_file() => None,
        Ok(m) if m.is_dir() => Some(format!("is a folder, not a {what}")),
        Ok(m) => Some(format!("is {}, not a {what} (only regular files are read)", special_kind(&m))),
    }
}

/// An error unless `path` is a regular file (see [`not_a`]).
pub fn check_file(path: &Path) -> Result<()> {
    check_file_as(path, "photo")
}

/// [`check_file`] for a file that is `what` ("pair list"), as messages name it.
pub fn check_file_as(path: &Path, what: &str) -> Result<()> {
    match not_a(path, what) {
        None => Ok(()),
        Some(why) => bail!("{}: {why}", path.display()),
    }
}

fn special_kind(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "a special file"
    }
}

/// One folder's entries, sorted by name: the photos (entries named like photos that are not
/// folders) and the sub-folders. Symbolic links are followed; files with other names are
/// ignored without a word. A FIFO, socket, device or broken link named like a photo is listed
/// as a photo, so that reading it fails with a message naming it ([`check_file`] refuses it
/// before anything opens it) and the rest goes on.
#[derive(Debug, Default)]
pub struct Listing {
    /// Photos directly in the folder.
    pub photos: Vec<PathBuf>,
    /// Sub-folders (including links to folders).
    pub folders: Vec<PathBuf>,
}

/// Lists one folder (not recursively); see [`Listing`].
pub fn list_dir(dir: &Path) -> Result<Listing> {
    let rd = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: cannot read the folder: {e}", dir.display()))?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    let mut out = Listing::default();
    for e in entries {
        match std::fs::metadata(&e) {
            Ok(m) if m.is_dir() => out.folders.push(e),
            _ if is_photo(&e) => out.photos.push(e),
            _ => {}
        }
    }
    Ok(out)
}

/// Expands files and folders (recursively, sorted) into a list of photos. Folders are walked
/// once each: a symbolic link back to a folder already walked (a loop such as `A/up -> ..`) is
/// skipped with a warning. A path given explicitly must exist and be a regular file or a
/// folder; inside folders, what is named like a photo is listed (see [`Listing`]).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut walked = std::collections::HashSet::new();
    for p in paths {
        if p.is_dir() {
            let before = out.len();
            walk(p, &mut walked, &mut out)?;
            if out.len() == before {
                tracing::warn!("{}: no photos (.jpg, .png, .webp) in this folder", p.display());
            }
        } else {
            check_file(p)?;
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, walked: &mut std::collections::HashSet<(u64, u64)>, out: &mut Vec<PathBuf>) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir).map_err(|e| anyhow::anyhow!("{}: cannot read the folder: {e}", dir.display()))?;
    if !walked.insert((m.dev(), m.ino())) {
        tracing::warn!("{}: skipped, a link to a folder already walked (a loop, or a second link to it)", dir.display());
        return Ok(());
    }
    let listing = list_dir(dir)?;
    out.extend(listing.photos);
    for f in &listing.folders {
        // An unreadable sub-folder is skipped with a warning; the rest of the walk goes on.
        if let Err(e) = walk(f, walked, out) {
            tracing::warn!("{}; skipped", crate::output::error_text(&e));
        }
    }
    Ok(())
}

/// A folder with one sub-folder of photos per person (the sub-folder's name is the name), as
/// `enroll-dir`, `recognize` and `eval identify` read it.
#[derive(Debug, Default)]
pub struct People {
    /// (name, photos directly in the person's folder), sorted by name; folders without photos
    /// are left out.
    pub people: Vec<(String, Vec<PathBuf>)>,
    /// Photos directly in the top folder (not in a person's folder).
    pub loose: Vec<PathBuf>,
    /// Folders inside a person's folder (not read).
    pub nested: Vec<PathBuf>,
    /// Person folders without any photo.
    pub empty: Vec<PathBuf>,
}

/// Scans a folder-per-person tree one level deep: `<dir>/<name>/<photo>`.
pub fn people(dir: &Path) -> Result<People> {
    let top = list_dir(dir)?;
    let mut out = People { loose: top.photos, ..People::default() };
    for f in top.folders {
        let l = list_dir(&f)?;
        out.nested.extend(l.folders);
        if l.photos.is_empty() {
            out.empty.push(f);
        } else {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            out.people.push((name, l.photos));
        }
    }
    Ok(out)
}

impl People {
    /// Warns (on stderr) about the nested folders and empty person folders, which are not read,
    /// and, unless `loose_are_people`, about the photos directly in the top folder.
    pub fn warn_unused(&self, dir: &Path, loose_are_people: bool) {
        let list = |what: String, paths: &[PathBuf]| {
            if paths.is_empty() {
                return;
            }
            let mut s = format!("{what}:");
            for p in paths.iter().take(10) {
                s.push_str(&format!("\n  {}", p.display()));
            }
            if paths.len() > 10 {
                s.push_str(&format!("\n  ... and {} more", paths.len() - 10));
            }
            tracing::warn!("{s}");
        };
        list(
            format!("{} nested folder(s) skipped: only the photos directly in each person's folder are read", self.nested.len()),
            &self.nested,
        );
        list(format!("{} person folder(s) without photos skipped", self.empty.len()), &self.empty);
        if !loose_are_people {
            list(
                format!(
                    "{} photo(s) directly in {} skipped: put each person's photos in a folder named after them",
                    self.loose.len(),
                    dir.display()
                ),
                &self.loose,
            );
        }
    }
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
