//! Test support shared by the workspace's test suites.
//!
//! The shared folder (real face data and dlib's reference outputs) lives beside the checkout
//! at `../shared`; `VISAGE_SHARED` overrides it. Tests that need it call [`oracle_dir`] or
//! [`data_dir`], which print why and return `None` when it is absent, so the test can skip.
//! Models are not optional: [`model_store`] panics with the fetch instructions when missing.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use visage_models::{ModelFile, ModelStore};

/// The shared folder: `$VISAGE_SHARED`, else `<workspace>/../shared`.
pub fn shared_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("VISAGE_SHARED") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn existing(sub: &str, test: &str) -> Option<PathBuf> {
    let p = shared_dir().join(sub);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("SKIP {test}: {} is absent (set VISAGE_SHARED to the shared folder)", p.display());
        None
    }
}

/// `shared/oracle`, or `None` (with a printed reason) when absent.
pub fn oracle_dir(test: &str) -> Option<PathBuf> {
    existing("oracle", test)
}

/// `shared/data`, or `None` (with a printed reason) when absent.
pub fn data_dir(test: &str) -> Option<PathBuf> {
    existing("data", test)
}

/// The model store tests use (`VISAGE_MODELS` or the per-user default), with the required
/// files verified. Panics with instructions when they are missing.
pub fn model_store() -> ModelStore {
    let store = ModelStore::resolve(None).expect("a model directory");
    for m in ModelFile::REQUIRED {
        if let Err(e) = store.verify(m) {
            panic!("tests need the dlib models: {e}");
        }
    }
    store
}

/// One face as dlib / face_recognition saw it (see `shared/oracle/oracle_dump.py`).
#[derive(Debug, Clone, Deserialize)]
pub struct OracleFace {
    /// HOG rectangle (l, t, r, b) as detected.
    pub box_ltrb_raw: [i64; 4],
    /// The same after face_recognition's trim to the image.
    pub box_ltrb: [i64; 4],
    /// Detection confidence.
    pub hog_score: f64,
    /// Which of the 5 HOG filters fired.
    pub hog_weight_index: usize,
    /// 5 integer landmarks.
    pub landmarks5: Vec<[i64; 2]>,
    /// Chip rectangle and angle.
    pub chip_details: ChipDetails,
    /// File name of the 150x150 chip PNG.
    pub chip_png: String,
    /// face_recognition's encoding from the photo.
    pub encoding: Vec<f64>,
    /// compute_face_descriptor on the chip.
    pub encoding_from_chip: Vec<f64>,
}

/// dlib's chip_details.
#[derive(Debug, Clone, Deserialize)]
pub struct ChipDetails {
    /// (l, t, r, b) as doubles.
    pub rect: [f64; 4],
    /// Rotation in radians.
    pub angle: f64,
}

/// One oracle photo and its faces.
#[derive(Debug, Clone)]
pub struct OracleImage {
    /// Stem, e.g. "sample1".
    pub name: String,
    /// The photo.
    pub image_path: PathBuf,
    /// (rows, cols, channels).
    pub shape: [usize; 3],
    /// Faces in dlib's detection order.
    pub faces: Vec<OracleFace>,
    /// Folder of the chip PNGs.
    pub chip_dir: PathBuf,
}

#[derive(Deserialize)]
struct RawImage {
    shape: [usize; 3],
    faces: Vec<OracleFace>,
}

/// All oracle photos, sorted by name.
pub fn oracle_images(oracle: &Path) -> Vec<OracleImage> {
    let dir = oracle.join("dlib");
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir).expect("oracle/dlib").flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let raw: RawImage = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let name = p.file_stem().unwrap().to_str().unwrap().to_string();
        let image_path = ["jpg", "png"]
            .iter()
            .map(|e| oracle.join("images").join(format!("{name}.{e}")))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no image for {name}"));
        out.push(OracleImage { name, image_path, shape: raw.shape, faces: raw.faces, chip_dir: dir.clone() });
    }
    out
}
