//! Choosing the face of a photo to enroll or verify, and hashing photos.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::Path;
use visage::{AlignedChip, Face, FaceChoice, FaceEmbedding, RgbImage, Visage};

/// Which face of a photo a command uses: the library's [`FaceChoice`], or `None` for the
/// photo's only face (a photo with several is refused).
pub type Choice = Option<FaceChoice>;

/// The choice of the `--face N` / `--largest` options (`--face N` numbers faces as
/// `visage detect` does, from 0).
pub fn choice_from_args(face: Option<usize>, largest: bool) -> Choice {
    match (face, largest) {
        (Some(i), _) => Some(FaceChoice::Index(i)),
        (None, true) => Some(FaceChoice::Largest),
        (None, false) => None,
    }
}

/// Why a photo cannot give one face.
#[derive(Debug)]
pub enum Refusal {
    /// No face detected.
    NoFace,
    /// Several faces and no choice given.
    SeveralFaces(usize),
}

/// A photo read once: its bytes and their SHA-256 (hex), which identifies it in a gallery.
pub struct Photo {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
}

/// Reads a photo (within the file-size limit) and hashes it.
pub fn read_photo(v: &Visage, path: &Path) -> Result<Photo> {
    crate::inputs::check_file(path)?;
    let what = || format!("{}: cannot read", path.display());
    let size = std::fs::metadata(path).with_context(what)?.len();
    if size > v.limits().max_file_bytes {
        return Err(
            visage::ImageError::FileTooLarge { what: path.display().to_string(), bytes: size, limit: v.limits().max_file_bytes }.into()
        );
    }
    let bytes = std::fs::read(path).with_context(what)?;
    let sha256 = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    Ok(Photo { bytes, sha256 })
}

/// The chosen face of the photo at `path` and its embedding, or why there is none.
pub fn one_face(v: &Visage, path: &Path, choice: Choice) -> Result<std::result::Result<(Face, Vec<f32>), Refusal>> {
    crate::inputs::check_file(path)?;
    one_face_in(v, &v.load_image(path)?, path, choice)
}

/// The chosen face of a photo already decoded and its embedding, or why there is none.
pub fn one_face_in(
    v: &Visage,
    img: &visage::RgbImage,
    path: &Path,
    choice: Choice,
) -> Result<std::result::Result<(Face, Vec<f32>), Refusal>> {
    Ok(match choose_in(v, img, path, choice)? {
        Ok(c) => {
            let e = v.embed_chips(std::slice::from_ref(&c.chip))?.remove(0);
            Ok((c.face, e))
        }
        Err(r) => Err(r),
    })
}

/// The face chosen in a photo and its chip, not yet embedded (so that many photos' chips
/// are embedded in one batch), and how many faces the photo has.
pub struct Chosen {
    /// The face.
    pub face: Face,
    /// Its aligned chip.
    pub chip: AlignedChip,
    /// Faces in the photo.
    pub faces: usize,
}

/// The chosen face of a photo already read, with its chip (`path` names it in messages).
pub fn choose_of(v: &Visage, photo: &Photo, path: &Path, choice: Choice) -> Result<std::result::Result<Chosen, Refusal>> {
    choose_in(v, &v.decode_image(&photo.bytes, &path.display().to_string())?, path, choice)
}

/// The chosen face of the photo at `path`, with its chip.
pub fn choose(v: &Visage, path: &Path, choice: Choice) -> Result<std::result::Result<Chosen, Refusal>> {
    crate::inputs::check_file(path)?;
    choose_in(v, &v.load_image(path)?, path, choice)
}

fn choose_in(v: &Visage, img: &visage::RgbImage, path: &Path, choice: Choice) -> Result<std::result::Result<Chosen, Refusal>> {
    let mut faces = v.find_faces(img).with_context(|| path.display().to_string())?;
    let n = faces.len();
    if n == 0 {
        return Ok(Err(Refusal::NoFace));
    }
    let i = match choice {
        None if n > 1 => return Ok(Err(Refusal::SeveralFaces(n))),
        None => 0,
        Some(c) => match (c.pick(&faces, img.width(), img.height()), c) {
            (Some(i), _) => i,
            (None, FaceChoice::Index(i)) => {
                bail!("{}: --face {i} asked for, but the photo has {n} face(s) (numbered from 0)", path.display())
            }
            (None, c) => bail!("{}: no face chosen by {c:?} among {n}", path.display()),
        },
    };
    let face = faces.swap_remove(i);
    let chip = v.chip(img, &face)?;
    Ok(Ok(Chosen { face, chip, faces: n }))
}

/// Embeds the chosen faces of a batch of items in one call to the embedder (the speed of its
/// batches rather than one chip at a time); `chosen` finds an item's face, if it has one.
/// Returns one embedding per item, `None` where the item has no face.
pub fn embed_chosen<T>(v: &Visage, items: &[T], chosen: impl Fn(&T) -> Option<&Chosen>) -> Result<Vec<Option<Vec<f32>>>> {
    let chips: Vec<AlignedChip> = items.iter().filter_map(|i| chosen(i).map(|c| c.chip.clone())).collect();
    let mut embeddings = v.embed_chips(&chips)?.into_iter();
    Ok(items.iter().map(|i| chosen(i).map(|_| embeddings.next().expect("one embedding per chip"))).collect())
}

/// Every face of each loaded photo with its embedding: photos detected in parallel, all
/// their faces embedded in shared batches. A photo that failed to load keeps its error;
/// one refused by the pipeline is named (`paths`, one per photo) in its error.
pub fn analyze_loaded(v: &Visage, paths: &[std::path::PathBuf], loaded: Vec<Result<RgbImage>>) -> Vec<Result<Vec<FaceEmbedding>>> {
    let imgs: Vec<&RgbImage> = loaded.iter().filter_map(|r| r.as_ref().ok()).collect();
    let mut analysed = v.analyze_many(&imgs).into_iter();
    loaded
        .into_iter()
        .zip(paths)
        .map(|(r, p)| match r {
            Ok(_) => analysed.next().expect("one result per photo").with_context(|| p.display().to_string()),
            Err(e) => Err(e),
        })
        .collect()
}

/// The message for a refused photo.
pub fn refusal_message(path: &Path, r: &Refusal) -> String {
    match r {
        Refusal::NoFace => format!("{}: no face found", path.display()),
        Refusal::SeveralFaces(n) => {
            format!("{}: {n} faces found; choose one with --face N (numbering as in `visage detect`, from 0) or --largest", path.display())
        }
    }
}
