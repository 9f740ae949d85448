//! Test support shared by the workspace's test suites.
//!
//! The shared folder (real face data and dlib's reference outputs) lives beside the checkout
//! at `../shared`; `VISAGE_SHARED` overrides it. Tests that need it call [`oracle_dir`] or
//! [`data_dir`], which print why and return `None` when it is absent, so the test can skip
//! in a user's clone. With `VISAGE_REQUIRE_DATA=1` (set by CI) a missing folder fails the test
//! instead (a panic naming what is missing), so no data test can pass without running.
//! Models are not optional: [`model_store`] panics with the fetch instructions when missing.

#![warn(missing_docs)]

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

/// Whether `VISAGE_REQUIRE_DATA` asks for missing test data to fail tests (`1`, `true` or
/// `yes`) rather than skip them.
pub fn data_required() -> bool {
    std::env::var("VISAGE_REQUIRE_DATA").is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

fn existing(sub: &str, test: &str) -> Option<PathBuf> {
    find_or_skip(&shared_dir().join(sub), test, data_required())
}

/// `path` if it is a folder; otherwise `None` with a printed `SKIP` line, or, when `required`,
/// a panic naming the test and the missing folder.
fn find_or_skip(path: &Path, test: &str, required: bool) -> Option<PathBuf> {
    if path.is_dir() {
        return Some(path.to_path_buf());
    }
    let why = format!("{test}: {} is absent (set VISAGE_SHARED to the shared folder)", path.display());
    if required {
        panic!("VISAGE_REQUIRE_DATA is set and test data is missing: {why}");
    }
    eprintln!("SKIP {why}");
    None
}

/// `shared/oracle`, or `None` (with a printed reason) when absent.
pub fn oracle_dir(test: &str) -> Option<PathBuf> {
    existing("oracle", test)
}

/// `shared/data`, or `None` (with a printed reason) when absent.
pub fn data_dir(test: &str) -> Option<PathBuf> {
    existing("data", test)
}

/// Photo `n` (numbered from 1) of `name` in LFW's images folder `lfw`.
pub fn lfw_photo(lfw: &Path, name: &str, n: usize) -> PathBuf {
    lfw.join(name).join(format!("{name}_{n:04}.jpg"))
}

/// A folder-per-person collection at `into`: for each of `people`, their LFW photos 1 to
/// `photos` copied in as `1.jpg`, `2.jpg`, ... Returns `into`.
pub fn lfw_people_folder(lfw: &Path, people: &[&str], photos: usize, into: &Path) -> PathBuf {
    for p in people {
        std::fs::create_dir_all(into.join(p)).unwrap();
        for n in 1..=photos {
            std::fs::copy(lfw_photo(lfw, p, n), into.join(p).join(format!("{n}.jpg"))).unwrap();
        }
    }
    into.to_path_buf()
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
    /// dlib's CNN detections at upsample 1, where the oracle ran it.
    pub cnn: Option<Vec<OracleCnnFace>>,
}

/// One of dlib's CNN (MMOD) detections.
#[derive(Debug, Clone, Deserialize)]
pub struct OracleCnnFace {
    /// `[left, top, right, bottom]` as `mmod_rect.rect`.
    pub box_ltrb: [i64; 4],
    /// The detection confidence.
    pub confidence: f64,
}

#[derive(Deserialize)]
struct RawImage {
    shape: [usize; 3],
    faces: Vec<OracleFace>,
    #[serde(default)]
    cnn: Option<Vec<OracleCnnFace>>,
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
        out.push(OracleImage { name, image_path, shape: raw.shape, faces: raw.faces, chip_dir: dir.clone(), cnn: raw.cnn });
    }
    out
}

/// One array from a numpy `.npz` file.
#[derive(Debug, Clone)]
pub struct NpyArray {
    /// numpy dtype string, e.g. `<f4`, `|u1`, `<f8`.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Raw little-endian data.
    pub data: Vec<u8>,
}

impl NpyArray {
    /// The data as f32 (dtype `<f4`).
    pub fn f32s(&self) -> Vec<f32> {
        assert_eq!(self.dtype, "<f4");
        self.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    }
    /// The data as f64 (dtype `<f8`).
    pub fn f64s(&self) -> Vec<f64> {
        assert_eq!(self.dtype, "<f8");
        self.data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
    }
}

/// Reads every array of an `.npz` (a zip of `.npy` files, stored or deflated).
pub fn read_npz(path: &Path) -> std::collections::BTreeMap<String, NpyArray> {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize;
    let mut out = std::collections::BTreeMap::new();
    let mut o = 0;
    while o + 30 <= bytes.len() && u32_at(o) == 0x0403_4b50 {
        let method = u16_at(o + 8);
        let mut csize = u32_at(o + 18);
        let name_len = u16_at(o + 26);
        let extra_len = u16_at(o + 28);
        let name = String::from_utf8(bytes[o + 30..o + 30 + name_len].to_vec()).unwrap();
        let start = o + 30 + name_len + extra_len;
        if csize == 0xFFFF_FFFF {
            // zip64: the real sizes are in extra field 0x0001 (uncompressed, then compressed).
            let mut e = o + 30 + name_len;
            while e + 4 <= start {
                let (id, len) = (u16_at(e), u16_at(e + 2));
                if id == 1 {
                    csize = u64::from_le_bytes(bytes[e + 12..e + 20].try_into().unwrap()) as usize;
                }
                e += 4 + len;
            }
        }
        let raw = &bytes[start..start + csize];
        let npy = match method {
            0 => raw.to_vec(),
            8 => {
                let mut v = Vec::new();
                flate2::read::DeflateDecoder::new(raw).read_to_end(&mut v).unwrap();
                v
            }
            m => panic!("zip method {m} not supported"),
        };
        out.insert(name.trim_end_matches(".npy").to_string(), parse_npy(&npy));
        o = start + csize;
    }
    out
}

fn parse_npy(b: &[u8]) -> NpyArray {
    assert_eq!(&b[..6], b"\x93NUMPY", "not an npy array");
    let (hlen, hstart) = if b[6] == 1 {
        (u16::from_le_bytes([b[8], b[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
    };
    let header = std::str::from_utf8(&b[hstart..hstart + hlen]).unwrap();
    let field = |key: &str| {
        let i = header.find(key).unwrap_or_else(|| panic!("npy header lacks {key}: {header}")) + key.len();
        header[i..].trim_start_matches([':', ' ', '\'']).to_string()
    };
    let dtype = field("'descr'").split('\'').next().unwrap().to_string();
    assert!(field("'fortran_order'").starts_with("False"), "fortran order not supported");
    let shape_txt = field("'shape'");
    let inner = &shape_txt[1..shape_txt.find(')').unwrap()];
    let shape = inner.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    NpyArray { dtype, shape, data: b[hstart + hlen..].to_vec() }
}

/// The Python interpreter of the dlib reference used by the benchmarks:
/// `$VISAGE_REFERENCE_PYTHON`, else `<workspace>/.bench-venv/bin/python` (made by
/// `scripts/reference-env.sh`), if it exists.
pub fn reference_python() -> Option<PathBuf> {
    let p = std::env::var_os("VISAGE_REFERENCE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.bench-venv/bin/python"));
    if p.exists() {
        Some(p)
    } else {
        eprintln!("dlib reference not installed ({}): run scripts/reference-env.sh to compare", p.display());
        None
    }
}

/// A script of `bench/reference/`.
pub fn reference_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/reference").join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_data_skips_unless_required() {
        let dir = std::env::temp_dir();
        assert_eq!(find_or_skip(&dir, "t", true), Some(dir.clone()));
        let missing = dir.join("visage-testdata-no-such-folder");
        assert_eq!(find_or_skip(&missing, "t", false), None);
        let panic = std::panic::catch_unwind(|| find_or_skip(&missing, "some_test", true)).unwrap_err();
        let msg = panic.downcast_ref::<String>().unwrap();
        assert!(msg.contains("some_test") && msg.contains("visage-testdata-no-such-folder"), "{msg}");
    }
}
