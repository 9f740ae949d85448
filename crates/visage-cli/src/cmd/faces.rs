//! Choosing the face of a photo to enroll or verify, and hashing photos.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::Path;
use visage::{largest, Face, Visage};

/// Which face of a multi-face photo to use.
#[derive(Debug, Clone, Copy)]
pub enum FaceChoice {
    /// Refuse photos with several faces.
    Only,
    /// The face at this index of `visage detect`'s output (from 0).
    Index(usize),
    /// The largest face.
    Largest,
}

impl FaceChoice {
    /// From the `--face N` / `--largest` options.
    pub fn from_args(face: Option<usize>, largest: bool) -> Self {
        match (face, largest) {
            (Some(i), _) => FaceChoice::Index(i),
            (None, true) => FaceChoice::Largest,
            (None, false) => FaceChoice::Only,
        }
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
pub fn one_face(v: &Visage, path: &Path, choice: FaceChoice) -> Result<std::result::Result<(Face, Vec<f32>), Refusal>> {
    crate::inputs::check_file(path)?;
    one_face_in(v, &v.load_image(path)?, path, choice)
}

/// The chosen face of a photo already read (`path` names it in messages).
pub fn one_face_of(v: &Visage, photo: &Photo, path: &Path, choice: FaceChoice) -> Result<std::result::Result<(Face, Vec<f32>), Refusal>> {
    one_face_in(v, &v.decode_image(&photo.bytes, &path.display().to_string())?, path, choice)
}

fn one_face_in(
    v: &Visage,
    img: &visage::RgbImage,
    path: &Path,
    choice: FaceChoice,
) -> Result<std::result::Result<(Face, Vec<f32>), Refusal>> {
    let mut faces = v.find_faces(img)?;
    let face = match (faces.len(), choice) {
        (0, _) => return Ok(Err(Refusal::NoFace)),
        (_, FaceChoice::Index(i)) => {
            if i >= faces.len() {
                bail!("{}: --face {i} asked for, but the photo has {} face(s) (numbered from 0)", path.display(), faces.len());
            }
            faces.swap_remove(i)
        }
        (1, _) => faces.remove(0),
        (n, FaceChoice::Only) => return Ok(Err(Refusal::SeveralFaces(n))),
        (_, FaceChoice::Largest) => {
            let i = largest(&faces).expect("at least one face");
            faces.swap_remove(i)
        }
    };
    let chip = v.chip(img, &face)?;
    let e = v.embed_chips(&[chip])?.remove(0);
    Ok(Ok((face, e)))
}

/// A photo's largest face, its embedding, and how many faces the photo has.
pub type LargestFace = (Face, Vec<f32>, usize);

/// The largest face of the photo at `path`, its embedding and how many faces the photo has
/// (so that callers can warn that the others were ignored), or why there is none.
pub fn largest_face(v: &Visage, path: &Path) -> Result<std::result::Result<LargestFace, Refusal>> {
    crate::inputs::check_file(path)?;
    let img = v.load_image(path)?;
    let mut faces = v.find_faces(&img)?;
    let n = faces.len();
    let Some(i) = largest(&faces) else { return Ok(Err(Refusal::NoFace)) };
    let face = faces.swap_remove(i);
    let e = v.embed_chips(&[v.chip(&img, &face)?])?.remove(0);
    Ok(Ok((face, e, n)))
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
