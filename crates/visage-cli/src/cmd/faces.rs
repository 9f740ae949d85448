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

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// The chosen face of a photo and its embedding, or why there is none.
pub fn one_face(v: &Visage, path: &Path, choice: FaceChoice) -> Result<std::result::Result<(Face, Vec<f32>), Refusal>> {
    let img = v.load_image(path)?;
    let mut faces = v.find_faces(&img);
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
    let chip = v.chip(&img, &face);
    let e = v.embed_chips(&[chip])?.remove(0);
    Ok(Ok((face, e)))
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
