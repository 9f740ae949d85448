//! `visage._native`: the Rust side of the `visage` Python package.
//!
//! The Python modules (`visage`, `visage.compat`) hold the public API; this module gives them
//! the pipeline's pieces on numpy arrays. Every call that does real work copies its input out
//! of the numpy array and then releases the GIL, so one loaded [`Engine`] serves several
//! Python threads at once (the pipeline is `Sync`, the gallery is behind a mutex).

use numpy::ndarray::{Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use visage::{Config, DetectorChoice, Face, FaceChoice, FaceEmbedding, Metric, ModelStore, Visage, VisageError};
use visage_align::{extract_chip, face_chip, ChipDetails};
use visage_core::{AlignedChip, DRect, ImageLimits, Point, Rect, RgbImage, SeededRng};
use visage_detect::{HogDetector, MmodDetector, ShapePredictor};
use visage_gallery::{calibrate, EnrollOptions, Gallery as Store, GalleryError as StoreError, NewTemplate, OpenOptions};
use visage_models::ModelFile;

create_exception!(_native, VisageError_, PyException, "Base class of every error visage raises.");
create_exception!(_native, BadPhotoError, VisageError_, "The photo cannot be read, decoded or processed (corrupt, not an image, too large).");
create_exception!(_native, NoFaceError, VisageError_, "No face was found where one face is needed.");
create_exception!(_native, SeveralFacesError, VisageError_, "Several faces were found where one face is needed and none was chosen.");
create_exception!(_native, UnknownPersonError, VisageError_, "No one of that name is enrolled in the gallery.");
create_exception!(_native, ModelMismatchError, VisageError_, "The gallery holds embeddings of another model, dimension or metric.");
create_exception!(_native, ModelsMissingError, VisageError_, "A model file is missing or damaged (run `visage.fetch_models()`).");
create_exception!(_native, GalleryError, VisageError_, "The gallery file cannot be used (busy, read-only, not a gallery, bad name).");

fn pipeline_err(e: VisageError) -> PyErr {
    let msg = e.to_string();
    match e {
        VisageError::Image(_) | VisageError::TooMuchWork { .. } => BadPhotoError::new_err(msg),
        VisageError::Embed(_) | VisageError::Shape(_) | VisageError::Cnn(_) | VisageError::Trained(_) => {
            ModelsMissingError::new_err(format!("{msg} (fetch the models with visage.fetch_models() or `visage models fetch`)"))
        }
        _ => VisageError_::new_err(msg),
    }
}

fn gallery_err(e: StoreError) -> PyErr {
    let msg = e.to_string();
    match e {
        StoreError::Contract { .. } => ModelMismatchError::new_err(msg),
        StoreError::UnknownSubject { .. } => UnknownPersonError::new_err(msg),
        _ => GalleryError::new_err(msg),
    }
}

fn models_err(e: impl std::fmt::Display) -> PyErr {
    ModelsMissingError::new_err(format!("{e} (fetch the models with visage.fetch_models() or `visage models fetch --all`)"))
}

/// A numpy image (H x W x 3 RGB, or H x W grey, uint8) copied into an RGB image.
fn to_rgb(img: &Bound<'_, PyAny>) -> PyResult<RgbImage> {
    let arr: PyReadonlyArrayDyn<'_, u8> = img
        .extract()
        .map_err(|_| PyTypeError::new_err("Unsupported image type, must be 8bit gray or RGB image (a numpy uint8 array)."))?;
    let shape = arr.shape().to_vec();
    let view = arr.as_array();
    let (h, w) = match shape.as_slice() {
        [h, w] | [h, w, 3] => (*h, *w),
        _ => return Err(PyTypeError::new_err(format!("Unsupported image type, must be 8bit gray or RGB image (shape {shape:?})."))),
    };
    let mut px = Vec::with_capacity(h * w * 3);
    if shape.len() == 2 {
        px.extend(view.iter().flat_map(|&g| [g, g, g]));
    } else if let Some(s) = view.as_slice() {
        px.extend_from_slice(s);
    } else {
        px.extend(view.iter().copied());
    }
    RgbImage::from_raw(w as u32, h as u32, px).ok_or_else(|| PyValueError::new_err("image dimensions too large"))
}

fn to_numpy<'py>(py: Python<'py>, img: RgbImage) -> Bound<'py, PyArray3<u8>> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    Array3::from_shape_vec((h, w, 3), img.into_raw()).expect("h*w*3 bytes").into_pyarray(py)
}

fn limits(max_pixels: Option<u64>) -> ImageLimits {
    ImageLimits { max_pixels: max_pixels.unwrap_or(ImageLimits::DEFAULT.max_pixels), ..ImageLimits::DEFAULT }
}

/// Decodes an in-memory photo (JPEG, PNG, WebP) into an H x W x 3 uint8 array; `orient`
/// applies its EXIF orientation (PIL and face_recognition do not).
#[pyfunction]
#[pyo3(signature = (data, name="photo", orient=true, max_pixels=None))]
fn decode<'py>(py: Python<'py>, data: Vec<u8>, name: &str, orient: bool, max_pixels: Option<u64>) -> PyResult<Bound<'py, PyArray3<u8>>> {
    let l = limits(max_pixels);
    let img = py
        .allow_threads(|| visage_core::image_io::decode_rgb_oriented(&data, name, &l, orient))
        .map_err(|e| BadPhotoError::new_err(e.to_string()))?;
    Ok(to_numpy(py, img))
}

/// Downloads (with `python -m pip download`, as `visage models fetch` does) and installs the
/// model files into `models` (default: VISAGE_MODELS or ~/.local/share/visage/models); returns
/// the installed paths. `all` adds the 68-point landmark model.
#[pyfunction]
#[pyo3(signature = (models=None, all=true, python="python3", force=false))]
fn fetch_models(py: Python<'_>, models: Option<PathBuf>, all: bool, python: &str, force: bool) -> PyResult<Vec<String>> {
    let store = ModelStore::resolve(models.as_deref()).map_err(models_err)?;
    let wanted: Vec<ModelFile> = if all { ModelFile::ALL.to_vec() } else { ModelFile::DEFAULT.to_vec() };
    py.allow_threads(|| {
        if !force && wanted.iter().all(|m| store.verify(*m).is_ok()) {
            return Ok(wanted.iter().map(|m| store.path_of(*m).display().to_string()).collect());
        }
        let tmp = std::env::temp_dir().join(format!("visage-fetch-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).map_err(models_err)?;
        let r = visage_models::fetch::pip_download(python, &tmp)
            .and_then(|tarball| visage_models::fetch::install_from_sdist(&tarball, &store, &wanted))
            .map(|paths| paths.iter().map(|p| p.display().to_string()).collect())
            .map_err(models_err);
        let _ = std::fs::remove_dir_all(&tmp);
        r
    })
}

/// SHA-256 (hex) of bytes, as the gallery identifies photos.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn ltrb(r: Rect) -> (i64, i64, i64, i64) {
    (r.left, r.top, r.right, r.bottom)
}

type FaceTuple = ((i64, i64, i64, i64), (i64, i64, i64, i64), f64, String, Vec<(i64, i64)>);

fn face_tuple(f: &Face) -> FaceTuple {
    let det = match f.detector.sub {
        Some(s) => format!("{}:{s}", f.detector.name),
        None => f.detector.name.to_string(),
    };
    (ltrb(f.detection), ltrb(f.rect), f.score, det, f.landmarks.iter().map(|p| (p.x, p.y)).collect())
}

/// The loaded models: the CLI's pipeline (for visage's own API and the gallery) and the
/// pieces face_recognition's functions are made of (detectors at any upsampling, both
/// landmark models, the embedder).
#[pyclass(frozen, module = "visage._native")]
struct Engine {
    visage: Visage,
    store: ModelStore,
    hog: HogDetector,
    cnn: OnceLock<Result<MmodDetector, String>>,
    sp5: ShapePredictor,
    sp68: OnceLock<Result<ShapePredictor, String>>,
    upsample: u32,
    detector: DetectorChoice,
}

impl Engine {
    fn cnn(&self) -> PyResult<&MmodDetector> {
        let r = self.cnn.get_or_init(|| {
            MmodDetector::from_store(&self.store, visage_embed::EngineOptions::from_env()).map_err(|e| e.to_string())
        });
        r.as_ref().map_err(models_err)
    }

    fn sp68(&self) -> PyResult<&ShapePredictor> {
        let r = self.sp68.get_or_init(|| {
            self.store
                .read_verified(ModelFile::ShapePredictor68)
                .map_err(|e| e.to_string())
                .and_then(|b| ShapePredictor::parse(&b).map_err(|e| e.to_string()))
        });
        r.as_ref().map_err(models_err)
    }

    fn raw_detect(&self, img: &RgbImage, upsample: u32, cnn: bool) -> PyResult<Vec<(i64, i64, i64, i64, f64)>> {
        let dets = if cnn {
            self.cnn()?.run(img, upsample, 0.0).map_err(|e| pipeline_err(e.into()))?
        } else {
            self.hog.run(img, upsample, 0.0)
        };
        Ok(dets.into_iter().map(|d| (d.rect.left, d.rect.top, d.rect.right, d.rect.bottom, d.score)).collect())
    }

    fn raw_landmarks(&self, img: &RgbImage, rects: &[(i64, i64, i64, i64)], large: bool) -> PyResult<Vec<Vec<Point>>> {
        let sp = if large { self.sp68()? } else { &self.sp5 };
        Ok(rects.par_iter().map(|&(l, t, r, b)| sp.predict(img, Rect::new(l, t, r, b))).collect())
    }

    fn pick(&self, img: &RgbImage, choice: Option<FaceChoice>) -> PyResult<(Face, Vec<f32>)> {
        let mut faces = self.visage.find_faces(img).map_err(pipeline_err)?;
        let n = faces.len();
        if n == 0 {
            return Err(NoFaceError::new_err("no face found"));
        }
        let i = match choice {
            None if n > 1 => {
                return Err(SeveralFacesError::new_err(format!(
                    "{n} faces found; choose one with face=N (numbered as visage.Visage.analyze returns them, from 0) or face=\"largest\""
                )))
            }
            None => 0,
            Some(c) => c
                .pick(&faces, img.width(), img.height())
                .ok_or_else(|| NoFaceError::new_err(format!("face {c:?} asked for, but the photo has {n} face(s) (numbered from 0)")))?,
        };
        let face = faces.swap_remove(i);
        let chip = self.visage.chip(img, &face).map_err(pipeline_err)?;
        let e = self.visage.embed_chips(std::slice::from_ref(&chip)).map_err(pipeline_err)?.remove(0);
        Ok((face, e))
    }
}

/// dlib's `jitter_image` on a square chip (zoom, shift, rotation, mirror), with visage's
/// seeded generator.
fn jitter(chip: &RgbImage, rng: &mut SeededRng) -> RgbImage {
    let n = chip.width() as f64;
    let (l, t, r, b) = (3.0, 3.0, n - 4.0, n - 4.0);
    let size = r - l + 1.0;
    let dx = (rng.range(-0.02, 0.02) * size).round();
    let dy = (rng.range(-0.02, 0.02) * size).round();
    let scale = rng.range(0.97, 0.99999);
    let bx = (size / scale).floor();
    let (cx, cy) = (((l + r + 1.0) / 2.0).floor() + dx, ((t + b + 1.0) / 2.0).floor() + dy);
    let (left, top) = (cx - (bx / 2.0).floor(), cy - (bx / 2.0).floor());
    let angle = rng.range(-3.0, 3.0).to_radians();
    let d = ChipDetails { rect: DRect::new(left, top, left + bx - 1.0, top + bx - 1.0), angle, size: chip.width() as usize };
    let mut out = extract_chip(chip, &d);
    if rng.uniform() > 0.5 {
        image::imageops::flip_horizontal_in_place(&mut out);
    }
    out
}

fn choice_of(face: Option<&Bound<'_, PyAny>>) -> PyResult<Option<FaceChoice>> {
    let Some(f) = face else { return Ok(None) };
    if f.is_none() {
        return Ok(None);
    }
    if let Ok(s) = f.extract::<String>() {
        return match s.as_str() {
            "largest" => Ok(Some(FaceChoice::Largest)),
            "centre" | "center" => Ok(Some(FaceChoice::NearestCentre)),
            _ => Err(PyValueError::new_err(format!("face must be None, an index, \"largest\" or \"centre\", not {s:?}"))),
        };
    }
    let i: usize = f.extract().map_err(|_| PyValueError::new_err("face must be None, an index >= 0, \"largest\" or \"centre\""))?;
    Ok(Some(FaceChoice::Index(i)))
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (models=None, upsample=1, detector="hog", max_pixels=None))]
    fn new(py: Python<'_>, models: Option<PathBuf>, upsample: u32, detector: &str, max_pixels: Option<u64>) -> PyResult<Self> {
        let store = ModelStore::resolve(models.as_deref()).map_err(models_err)?;
        let detector: DetectorChoice = detector.parse().map_err(PyValueError::new_err)?;
        if upsample > HogDetector::MAX_UPSAMPLE {
            return Err(PyValueError::new_err(format!("upsample must be at most {}", HogDetector::MAX_UPSAMPLE)));
        }
        py.allow_threads(|| {
            let config = Config { upsample, detector, limits: limits(max_pixels), ..Config::from_env() };
            let visage = Visage::from_config(&store, &config).map_err(pipeline_err)?;
            let sp5 = ShapePredictor::from_store(&store).map_err(models_err)?;
            let hog = HogDetector::new().with_simd(config.hog_simd);
            Ok(Engine { visage, store, hog, cnn: OnceLock::new(), sp5, sp68: OnceLock::new(), upsample, detector })
        })
    }

    /// The model directory.
    #[getter]
    fn models_dir(&self) -> String {
        self.store.dir().display().to_string()
    }

    /// The embedding model's id.
    #[getter]
    fn model_id(&self) -> String {
        self.visage.descriptor().id.clone()
    }

    /// The embedding's dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.visage.descriptor().dim
    }

    #[getter]
    fn upsample(&self) -> u32 {
        self.upsample
    }

    #[getter]
    fn detector(&self) -> &'static str {
        self.detector.name()
    }

    /// The model's default threshold for a metric (`l2`, `cosine`, `chi2`).
    #[pyo3(signature = (metric="l2"))]
    fn threshold(&self, metric: &str) -> PyResult<f64> {
        let m: Metric = metric.parse().map_err(|e| PyValueError::new_err(format!("{e}")))?;
        Ok(self.visage.descriptor().threshold(m) as f64)
    }

    /// Loads a photo file as visage does (EXIF orientation applied).
    fn load<'py>(&self, py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyArray3<u8>>> {
        let img = py.allow_threads(|| self.visage.load_image(&path)).map_err(|e| BadPhotoError::new_err(e.to_string()))?;
        Ok(to_numpy(py, img))
    }

    /// dlib's detector on an image: `(left, top, right, bottom, score)` per face, untrimmed,
    /// most confident first.
    #[pyo3(signature = (img, upsample=1, cnn=false))]
    fn detect_raw(&self, py: Python<'_>, img: &Bound<'_, PyAny>, upsample: u32, cnn: bool) -> PyResult<Vec<(i64, i64, i64, i64, f64)>> {
        let img = to_rgb(img)?;
        py.allow_threads(|| self.raw_detect(&img, upsample, cnn))
    }

    /// `detect_raw` on several images, in parallel.
    #[pyo3(signature = (imgs, upsample=1, cnn=true))]
    fn detect_raw_batch(
        &self,
        py: Python<'_>,
        imgs: &Bound<'_, PyList>,
        upsample: u32,
        cnn: bool,
    ) -> PyResult<Vec<Vec<(i64, i64, i64, i64, f64)>>> {
        let imgs: Vec<RgbImage> = imgs.iter().map(|i| to_rgb(&i)).collect::<PyResult<_>>()?;
        py.allow_threads(|| imgs.par_iter().map(|i| self.raw_detect(i, upsample, cnn)).collect())
    }

    /// dlib's shape predictor (68 points when `large`, else 5) on each rectangle
    /// `(left, top, right, bottom)`: a list of `(x, y)` points per rectangle.
    #[pyo3(signature = (img, rects, large=true))]
    fn landmarks_raw(&self, py: Python<'_>, img: &Bound<'_, PyAny>, rects: Vec<(i64, i64, i64, i64)>, large: bool) -> PyResult<Vec<Vec<(i64, i64)>>> {
        let img = to_rgb(img)?;
        let pts = py.allow_threads(|| self.raw_landmarks(&img, &rects, large))?;
        Ok(pts.into_iter().map(|p| p.into_iter().map(|q| (q.x, q.y)).collect()).collect())
    }

    /// The aligned chips dlib's `get_face_chip(img, shape, 150, 0.25)` cuts for each
    /// rectangle (landmarks: 68 points when `large`, else 5), as H x W x 3 arrays.
    #[pyo3(signature = (img, rects, large=false))]
    fn chips_raw<'py>(&self, py: Python<'py>, img: &Bound<'_, PyAny>, rects: Vec<(i64, i64, i64, i64)>, large: bool) -> PyResult<Vec<Bound<'py, PyArray3<u8>>>> {
        let img = to_rgb(img)?;
        let geometry = self.visage.descriptor().chip;
        let chips = py.allow_threads(|| -> PyResult<Vec<RgbImage>> {
            let shapes = self.raw_landmarks(&img, &rects, large)?;
            shapes.iter().map(|p| face_chip(&img, p, geometry).map(|c| c.into_image()).map_err(|e| pipeline_err(e.into()))).collect()
        })?;
        Ok(chips.into_iter().map(|c| to_numpy(py, c)).collect())
    }

    /// face_recognition's encodings: for each rectangle, landmarks (68 when `large`), the
    /// aligned chip, and the embedding (the mean over `num_jitters` jittered chips when it is
    /// above 1), as an `(n, dim)` float64 array.
    #[pyo3(signature = (img, rects, num_jitters=1, large=false, seed=0))]
    fn encode_raw<'py>(
        &self,
        py: Python<'py>,
        img: &Bound<'_, PyAny>,
        rects: Vec<(i64, i64, i64, i64)>,
        num_jitters: i64,
        large: bool,
        seed: u64,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let img = to_rgb(img)?;
        let dim = self.visage.descriptor().dim;
        let geometry = self.visage.descriptor().chip;
        let out: Vec<f64> = py.allow_threads(|| -> PyResult<Vec<f64>> {
            let shapes = self.raw_landmarks(&img, &rects, large)?;
            let chips: Vec<AlignedChip> = shapes
                .par_iter()
                .map(|p| face_chip(&img, p, geometry).map_err(|e| pipeline_err(e.into())))
                .collect::<PyResult<_>>()?;
            let jitters = num_jitters.max(1) as usize;
            let chips: Vec<AlignedChip> = if jitters <= 1 {
                chips
            } else {
                chips
                    .iter()
                    .enumerate()
                    .flat_map(|(i, c)| {
                        let mut rng = SeededRng::new(seed.wrapping_add(i as u64).wrapping_mul(0x9E37_79B9) ^ 0x5EED);
                        (0..jitters)
                            .map(|_| AlignedChip::new(jitter(c.image(), &mut rng), geometry).expect("chip size"))
                            .collect::<Vec<_>>()
                    })
                    .collect()
            };
            let embs = self.visage.embed_chips(&chips).map_err(pipeline_err)?;
            let mut out = Vec::with_capacity(rects.len() * dim);
            for group in embs.chunks(jitters) {
                if jitters == 1 {
                    out.extend(group[0].iter().map(|&x| x as f64));
                } else {
                    // dlib averages the float outputs, then converts to double.
                    let mut mean = vec![0f32; dim];
                    for e in group {
                        for (m, x) in mean.iter_mut().zip(e) {
                            *m += x;
                        }
                    }
                    out.extend(mean.iter().map(|&m| (m / jitters as f32) as f64));
                }
            }
            Ok(out)
        })?;
        Ok(Array2::from_shape_vec((rects.len(), dim), out).expect("n x dim").into_pyarray(py))
    }

    /// Every face of an image with visage's pipeline: `(detection, box, score, detector,
    /// landmarks, embedding)` per face, most confident first.
    fn analyze<'py>(&self, py: Python<'py>, img: &Bound<'_, PyAny>) -> PyResult<Vec<(FaceTuple, Bound<'py, PyArray1<f32>>)>> {
        let img = to_rgb(img)?;
        let faces = py.allow_threads(|| self.visage.analyze(&img)).map_err(pipeline_err)?;
        Ok(faces.into_iter().map(|f| (face_tuple(&f.face), f.embedding.into_pyarray(py))).collect())
    }

    /// `analyze` on several images (detected in parallel, embedded in shared batches); one
    /// list per image, or the exception its failure raised.
    fn analyze_many<'py>(&self, py: Python<'py>, imgs: &Bound<'_, PyList>) -> PyResult<Vec<PyObject>> {
        let imgs: Vec<RgbImage> = imgs.iter().map(|i| to_rgb(&i)).collect::<PyResult<_>>()?;
        let results: Vec<Result<Vec<FaceEmbedding>, VisageError>> = py.allow_threads(|| {
            let refs: Vec<&RgbImage> = imgs.iter().collect();
            self.visage.analyze_many(&refs)
        });
        results
            .into_iter()
            .map(|r| -> PyResult<PyObject> {
                Ok(match r {
                    Ok(faces) => faces
                        .into_iter()
                        .map(|f| (face_tuple(&f.face), f.embedding.into_pyarray(py)))
                        .collect::<Vec<_>>()
                        .into_pyobject(py)?
                        .into_any()
                        .unbind(),
                    Err(e) => pipeline_err(e).into_value(py).into_any(),
                })
            })
            .collect()
    }

    /// The one face a command uses (None: the only face, several is an error; an index;
    /// "largest"; "centre") and its embedding.
    #[pyo3(signature = (img, face=None))]
    fn one_face<'py>(&self, py: Python<'py>, img: &Bound<'_, PyAny>, face: Option<&Bound<'_, PyAny>>) -> PyResult<(FaceTuple, Bound<'py, PyArray1<f32>>)> {
        let choice = choice_of(face)?;
        let img = to_rgb(img)?;
        let (f, e) = py.allow_threads(|| self.pick(&img, choice))?;
        Ok((face_tuple(&f), e.into_pyarray(py)))
    }
}

/// A gallery file (the CLI's format), bound to the model of an [`Engine`].
#[pyclass(frozen, module = "visage._native")]
struct NativeGallery {
    store: Mutex<Store>,
    path: PathBuf,
}

fn photo_bytes(py: Python<'_>, engine: &Engine, photo: &Bound<'_, PyAny>) -> PyResult<(RgbImage, String, Option<String>)> {
    // A path: the file's bytes (hashed as the CLI hashes them). An array: its pixels.
    if let Ok(path) = photo.extract::<PathBuf>() {
        if !photo.is_instance_of::<pyo3::types::PyBytes>() {
            let max = engine.visage.limits().max_file_bytes;
            let (img, sha) = py.allow_threads(|| -> Result<(RgbImage, String), String> {
                let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                if !meta.is_file() {
                    return Err(format!("{}: not a regular file", path.display()));
                }
                if meta.len() > max {
                    return Err(format!("{}: {} bytes, over the limit of {max}", path.display(), meta.len()));
                }
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let img = engine.visage.decode_image(&bytes, &path.display().to_string()).map_err(|e| e.to_string())?;
                Ok((img, sha256_hex(&bytes)))
            })
            .map_err(BadPhotoError::new_err)?;
            return Ok((img, sha, Some(path.display().to_string())));
        }
    }
    if let Ok(bytes) = photo.extract::<Vec<u8>>() {
        if photo.is_instance_of::<pyo3::types::PyBytes>() {
            let img = py
                .allow_threads(|| engine.visage.decode_image(&bytes, "photo"))
                .map_err(|e| BadPhotoError::new_err(e.to_string()))?;
            return Ok((img, sha256_hex(&bytes), None));
        }
    }
    let img = to_rgb(photo)?;
    let sha = sha256_hex(&[format!("{}x{}:", img.width(), img.height()).as_bytes(), img.as_raw()].concat());
    Ok((img, sha, None))
}

#[pymethods]
impl NativeGallery {
    #[new]
    #[pyo3(signature = (path, engine=None, create=true, metric=None, read_only=false))]
    fn new(py: Python<'_>, path: PathBuf, engine: Option<&Engine>, create: bool, metric: Option<&str>, read_only: bool) -> PyResult<Self> {
        let metric: Option<Metric> = metric.map(|m| m.parse().map_err(|e| PyValueError::new_err(format!("{e}")))).transpose()?;
        if path.is_dir() {
            return Err(GalleryError::new_err(format!("{}: is a folder, not a gallery file", path.display())));
        }
        let opts = match engine {
            Some(e) if !read_only => OpenOptions::for_model(e.visage.descriptor()).create(create).metric(metric),
            _ => OpenOptions::any_model().read_only(read_only),
        };
        if !path.exists() && (read_only || !create || engine.is_none()) {
            return Err(GalleryError::new_err(format!("{}: no such gallery (enroll someone first to create it)", path.display())));
        }
        let store = py.allow_threads(|| opts.open(&path)).map_err(gallery_err)?;
        if let Some(e) = engine {
            store.check_model(e.visage.descriptor()).map_err(gallery_err)?;
        }
        Ok(NativeGallery { store: Mutex::new(store), path })
    }

    #[getter]
    fn path(&self) -> String {
        self.path.display().to_string()
    }

    /// The gallery's contract: `(model, dim, metric)`.
    #[getter]
    fn contract(&self) -> (String, usize, String) {
        let g = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let c = g.contract();
        (c.model.clone(), c.dim, c.metric.name().to_string())
    }

    /// The gallery's decision threshold.
    fn threshold(&self) -> PyResult<f64> {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).threshold().map_err(gallery_err)
    }

    fn set_threshold(&self, py: Python<'_>, t: f64) -> PyResult<()> {
        if !t.is_finite() || t < 0.0 {
            return Err(PyValueError::new_err("a threshold must be finite and >= 0"));
        }
        py.allow_threads(|| self.store.lock().unwrap_or_else(|e| e.into_inner()).set_threshold(t)).map_err(gallery_err)
    }

    /// Enrolls the chosen face of a photo (a path, the file's bytes or an image array):
    /// returns `(added, already, box)`.
    #[pyo3(signature = (engine, name, photo, face=None, metadata=None, allow_duplicate=false))]
    fn enroll(
        &self,
        py: Python<'_>,
        engine: &Engine,
        name: &str,
        photo: &Bound<'_, PyAny>,
        face: Option<&Bound<'_, PyAny>>,
        metadata: Option<&str>,
        allow_duplicate: bool,
    ) -> PyResult<(usize, usize, (i64, i64, i64, i64))> {
        let choice = choice_of(face)?;
        let (img, sha, source) = photo_bytes(py, engine, photo)?;
        py.allow_threads(|| {
            let (f, e) = engine.pick(&img, choice)?;
            let b = f.rect;
            let t = NewTemplate { embedding: e, photo_sha256: sha, face_box: [b.left, b.top, b.right, b.bottom], source };
            let g = self.store.lock().unwrap_or_else(|e| e.into_inner());
            let out = g.enroll_with(name, metadata, &[t], EnrollOptions { allow_duplicate }).map_err(gallery_err)?;
            Ok((out.added, out.already, ltrb(b)))
        })
    }

    /// `(name, templates, metadata, created_at)` per enrolled person.
    fn subjects(&self, py: Python<'_>) -> PyResult<Vec<(String, usize, Option<String>, i64)>> {
        let list = py.allow_threads(|| self.store.lock().unwrap_or_else(|e| e.into_inner()).subjects()).map_err(gallery_err)?;
        Ok(list.into_iter().map(|s| (s.name, s.templates, s.metadata, s.created_at)).collect())
    }

    /// The nearest `k` people to an embedding: `(name, distance)`, nearest first.
    #[pyo3(signature = (embedding, k=1))]
    fn search(&self, py: Python<'_>, embedding: Vec<f32>, k: usize) -> PyResult<Vec<(String, f64)>> {
        let m = py.allow_threads(|| self.store.lock().unwrap_or_else(|e| e.into_inner()).search(&embedding, k.max(1))).map_err(gallery_err)?;
        Ok(m.into_iter().map(|m| (m.name, calibrate::distance_as_decimal(m.distance))).collect())
    }

    /// The distance from an embedding to a person's nearest template.
    fn distance_to(&self, py: Python<'_>, name: &str, embedding: Vec<f32>) -> PyResult<f64> {
        let d = py
            .allow_threads(|| self.store.lock().unwrap_or_else(|e| e.into_inner()).distance_to(name, &embedding))
            .map_err(gallery_err)?;
        Ok(calibrate::distance_as_decimal(d))
    }

    /// Forgets a person: `(templates deleted, erased from the files)`.
    fn forget(&self, py: Python<'_>, name: &str) -> PyResult<(usize, bool)> {
        let o = py.allow_threads(|| self.store.lock().unwrap_or_else(|e| e.into_inner()).forget(name)).map_err(gallery_err)?;
        Ok((o.templates, o.erased))
    }

    fn rename(&self, py: Python<'_>, old: &str, new: &str) -> PyResult<()> {
        py.allow_threads(|| self.store.lock().unwrap_or_else(|e| e.into_inner()).rename(old, new)).map_err(gallery_err)
    }

    /// Calibration from the gallery's own people with 2 or more templates, as `visage
    /// calibrate` does: a dict, or None when there are too few pairs.
    #[pyo3(signature = (far=1e-3, store=false))]
    fn calibrate(&self, py: Python<'_>, far: f64, store: bool) -> PyResult<Option<(usize, usize, f64, f64, f64, f64, f64, f64)>> {
        if !(far > 0.0 && far < 1.0) {
            return Err(PyValueError::new_err("far must be in (0, 1)"));
        }
        py.allow_threads(|| {
            let g = self.store.lock().unwrap_or_else(|e| e.into_inner());
            let metric = g.contract().metric;
            let templates = g.templates().map_err(gallery_err)?;
            let mut ids = std::collections::HashMap::new();
            let items: Vec<(usize, &[f32])> = templates
                .iter()
                .map(|t| {
                    let n = ids.len();
                    (*ids.entry(t.name.clone()).or_insert(n), t.embedding.as_slice())
                })
                .collect();
            let (genuine, impostor) = calibrate::pair_distances(&items, metric, 2_000_000);
            let Some(c) = calibrate::calibrate(&genuine, &impostor, far) else { return Ok(None) };
            if store {
                g.set_threshold(c.threshold).map_err(gallery_err)?;
            }
            Ok(Some((c.genuine, c.impostor, c.target_far, c.threshold, c.far, c.tar, c.eer, c.eer_threshold)))
        })
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("VisageError", py.get_type::<VisageError_>())?;
    m.add("BadPhotoError", py.get_type::<BadPhotoError>())?;
    m.add("NoFaceError", py.get_type::<NoFaceError>())?;
    m.add("SeveralFacesError", py.get_type::<SeveralFacesError>())?;
    m.add("UnknownPersonError", py.get_type::<UnknownPersonError>())?;
    m.add("ModelMismatchError", py.get_type::<ModelMismatchError>())?;
    m.add("ModelsMissingError", py.get_type::<ModelsMissingError>())?;
    m.add("GalleryError", py.get_type::<GalleryError>())?;
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(fetch_models, m)?)?;
    m.add_class::<Engine>()?;
    m.add_class::<NativeGallery>()?;
    Ok(())
}
