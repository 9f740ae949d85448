//! Embedding the photos of an evaluation, with a documented policy for every photo and a cache.
//!
//! Face policy (stated in `visage eval` output and the README):
//! * several faces: the one whose box centre is nearest the photo centre (LFW photos are
//!   centred on the person of interest);
//! * no face: the detector again with its threshold lowered by 1 (the candidate nearest the
//!   centre), and if still nothing, a fixed box around the centre, `[0.268, 0.320, 0.700, 0.748]` of the width and
//!   height (the median HOG box on LFW's 250x250 photos is (67, 80, 175, 187)), fed to the
//!   landmark model like a detection. Such photos are counted and reported; no pair is dropped.
//!
//! Test-time augmentation: `flip` averages the embeddings of the chip and its mirror image;
//! `jitter N` averages N randomly jittered copies of the chip (dlib's `jitter_image`: zoom
//! 0.97-1.0, shift up to 2%, rotation up to 3 degrees, mirrored half of the time), seeded by
//! the photo's hash so runs are repeatable.

use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use visage::{AlignedChip, DRect, Face, FaceChoice, Rect, RgbImage, Visage, VisageError};
use visage_align::{extract_chip, ChipDetails};
use visage_core::SeededRng;

/// The most jittered copies per photo supported ([`EmbedOptions::jitter`]). Photos are
/// embedded in batches sized so that a batch holds at most about 512 chips (one photo's copies
/// at least), so memory stays bounded: 1000 copies, or 2000 with `flip`, take about 135 MB.
pub const MAX_JITTER: u32 = 1000;

/// Chips held in memory at once, at most (unless one photo alone has more).
const CHIPS_PER_BATCH: usize = 512;

/// Options that change embeddings (and so key the cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedOptions {
    /// Detector upsampling.
    pub upsample: u32,
    /// Average with the mirrored chip.
    pub flip: bool,
    /// Number of jittered copies to average (0 or 1: none; at most [`MAX_JITTER`]).
    pub jitter: u32,
    /// Landmark model used for alignment: 5 (default) or 68 points.
    pub landmarks: u32,
    /// The face detector's name (`hog`, `cnn`, `auto`).
    pub detector: &'static str,
}

impl EmbedOptions {
    fn cache_name(&self, model: &str) -> String {
        // HOG keeps the name it always had, so existing caches stay valid.
        let det = if self.detector == "hog" { String::new() } else { format!("-{}", self.detector) };
        format!("{model}-up{}-flip{}-jitter{}-lm{}{det}-policy2.emb", self.upsample, self.flip as u8, self.jitter, self.landmarks)
    }
}

/// How a photo's face was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceSource {
    /// The detector found it.
    Detected,
    /// Found only with the detector's threshold lowered by 1.
    Weak,
    /// The detector found none; the fixed centre box was used.
    Fallback,
}

/// A photo's embedding.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// The embedding.
    pub embedding: Vec<f32>,
    /// Detected or fallback.
    pub source: FaceSource,
}

/// The fixed face box for a photo in which nothing is detected.
pub fn fallback_box(width: u32, height: u32) -> Rect {
    let (w, h) = (width as f64, height as f64);
    Rect::new((0.268 * w).round() as i64, (0.320 * h).round() as i64, (0.700 * w).round() as i64, (0.748 * h).round() as i64)
}

/// The face the policy picks: nearest the centre, or the fallback box.
pub fn pick_face(v: &Visage, img: &RgbImage) -> Result<(Face, FaceSource), VisageError> {
    let (w, h) = (img.width(), img.height());
    let faces = v.find_faces(img)?;
    if let Some(i) = FaceChoice::NearestCentre.pick(&faces, w, h) {
        return Ok((faces[i].clone(), FaceSource::Detected));
    }
    // Second chance: the detector's threshold lowered by 1, nearest the centre.
    let weak: Vec<Face> = v.find_faces_adjusted(img, -1.0)?.into_iter().filter(|f| f.rect.area() > 0).collect();
    match FaceChoice::NearestCentre.pick(&weak, w, h) {
        Some(i) => Ok((weak[i].clone(), FaceSource::Weak)),
        None => Ok((v.face_at(img, fallback_box(w, h))?, FaceSource::Fallback)),
    }
}

/// dlib's `jitter_image` on a square chip.
fn jitter(chip: &RgbImage, rng: &mut SeededRng) -> RgbImage {
    let n = chip.width() as f64;
    let (l, t, r, b) = (3.0, 3.0, n - 4.0, n - 4.0); // shrink_rect(get_rect(img), 3)
    let size = r - l + 1.0;
    let dx = (rng.range(-0.02, 0.02) * size).round();
    let dy = (rng.range(-0.02, 0.02) * size).round();
    let scale = rng.range(0.97, 0.99999);
    let bx = (size / scale).floor();
    let (cx, cy) = (((l + r + 1.0) / 2.0).floor() + dx, ((t + b + 1.0) / 2.0).floor() + dy);
    let (left, top) = (cx - (bx / 2.0).floor(), cy - (bx / 2.0).floor());
    let angle = rng.range(-3.0, 3.0).to_radians();
    // centered_rect(center + shift, bx, bx): inclusive integer corners.
    let d = ChipDetails { rect: DRect::new(left, top, left + bx - 1.0, top + bx - 1.0), angle, size: chip.width() as usize };
    let mut out = extract_chip(chip, &d);
    if rng.uniform() > 0.5 {
        image::imageops::flip_horizontal_in_place(&mut out);
    }
    out
}

/// Computes (or reads from the cache) the embedding of every photo.
pub struct EvalEmbedder<'a> {
    visage: &'a Visage,
    options: EmbedOptions,
    cache: Option<PathBuf>,
}

/// What [`EvalEmbedder::embed_all`] did.
#[derive(Debug, Clone, Default)]
pub struct EmbedStats {
    /// Photos embedded now.
    pub computed: usize,
    /// Photos read from the cache.
    pub cached: usize,
    /// Photos whose face was found only with a lowered threshold, cached or not.
    pub weak: usize,
    /// Photos whose face was not detected (fallback box), cached or not.
    pub fallback: usize,
    /// Seconds spent computing.
    pub seconds: f64,
}

/// A photo read for embedding: its path, hash, and (unless cached) its chips and face source.
type Prepared = (PathBuf, [u8; 32], Option<(Vec<AlignedChip>, FaceSource)>);

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl<'a> EvalEmbedder<'a> {
    /// An embedder; `cache_dir` (created if needed) keeps embeddings between runs, in a file
    /// named by the embedder's model id (its descriptor's) and the options.
    pub fn new(visage: &'a Visage, options: EmbedOptions, cache_dir: Option<&Path>) -> Self {
        let model = &visage.descriptor().id;
        Self { visage, options, cache: cache_dir.map(|d| d.join(options.cache_name(model))) }
    }

    /// The cache file in use.
    pub fn cache_file(&self) -> Option<&Path> {
        self.cache.as_deref()
    }

    fn load_cache(&self, dim: usize) -> HashMap<[u8; 32], Embedded> {
        let mut map = HashMap::new();
        let Some(bytes) = self.cache.as_ref().and_then(|p| std::fs::read(p).ok()) else { return map };
        let rec = 33 + 4 * dim;
        // A record cut short by an interrupted run is ignored.
        for r in bytes.chunks_exact(rec) {
            let key: [u8; 32] = r[..32].try_into().unwrap();
            let source = match r[32] {
                1 => FaceSource::Detected,
                2 => FaceSource::Weak,
                _ => FaceSource::Fallback,
            };
            let embedding = r[33..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            map.insert(key, Embedded { embedding, source });
        }
        map
    }

    fn append_cache(&self, items: &[([u8; 32], Embedded)]) {
        let Some(path) = &self.cache else { return };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) else { return };
        let mut buf = Vec::new();
        for (k, e) in items {
            buf.extend_from_slice(k);
            buf.push(match e.source {
                FaceSource::Detected => 1,
                FaceSource::Weak => 2,
                FaceSource::Fallback => 0,
            });
            for x in &e.embedding {
                buf.extend_from_slice(&x.to_le_bytes());
            }
        }
        let _ = f.write_all(&buf);
    }

    /// The chips a photo contributes (1, 2 with flip, N with jitter), and its face source.
    fn chips(&self, bytes: &[u8], key: &[u8; 32], path: &Path) -> Result<(Vec<AlignedChip>, FaceSource), VisageError> {
        let img = self.visage.decode_image(bytes, &path.display().to_string())?;
        let (face, source) = pick_face(self.visage, &img)?;
        let chip = self.visage.chip(&img, &face)?.into_image();
        let mut chips = Vec::new();
        if self.options.jitter > 1 {
            let mut rng = SeededRng::new(u64::from_le_bytes(key[..8].try_into().unwrap()) | 1);
            for _ in 0..self.options.jitter.min(MAX_JITTER) {
                chips.push(jitter(&chip, &mut rng));
            }
        } else {
            chips.push(chip.clone());
        }
        if self.options.flip {
            let mirrored: Vec<RgbImage> = chips.iter().map(image::imageops::flip_horizontal).collect();
            chips.extend(mirrored);
        }
        let chips = chips.into_iter().map(|c| self.visage.as_chip(c)).collect::<Result<_, _>>()?;
        Ok((chips, source))
    }

    /// Embeds `paths` (each photo once), calling `progress` after each photo. Returns the
    /// embeddings by path and the statistics; unreadable photos are errors naming the file.
    pub fn embed_all(
        &self,
        paths: &[PathBuf],
        progress: &(dyn Fn() + Sync),
    ) -> Result<(HashMap<PathBuf, Embedded>, EmbedStats), VisageError> {
        let dim = self.visage.descriptor().dim;
        let mut cache = self.load_cache(dim);
        let mut stats = EmbedStats::default();
        let mut out = HashMap::new();
        let start = std::time::Instant::now();
        let per_photo = self.options.jitter.clamp(1, MAX_JITTER) as usize * if self.options.flip { 2 } else { 1 };
        for chunk in paths.chunks((CHIPS_PER_BATCH / per_photo).clamp(1, 64)) {
            let prepared: Vec<Result<Prepared, VisageError>> = chunk
                .par_iter()
                .map(|p| {
                    // Only regular files: reading a FIFO named like a photo would block forever.
                    match std::fs::metadata(p) {
                        Ok(m) if !m.is_file() => {
                            return Err(visage::ImageError::Io {
                                what: p.display().to_string(),
                                source: std::io::Error::other("not a regular file"),
                            }
                            .into())
                        }
                        _ => {}
                    }
                    let bytes = std::fs::read(p).map_err(|source| visage::ImageError::Io { what: p.display().to_string(), source })?;
                    let key = sha256(&bytes);
                    let work = if cache.contains_key(&key) { None } else { Some(self.chips(&bytes, &key, p)?) };
                    progress();
                    Ok((p.clone(), key, work))
                })
                .collect();
            let prepared: Vec<_> = prepared.into_iter().collect::<Result<_, _>>()?;
            let all_chips: Vec<AlignedChip> =
                prepared.iter().filter_map(|(_, _, w)| w.as_ref()).flat_map(|(c, _)| c.iter().cloned()).collect();
            let mut embs = self.visage.embed_chips(&all_chips)?.into_iter();
            let mut fresh = Vec::new();
            for (path, key, work) in prepared {
                let e = match work {
                    Some((chips, source)) => {
                        let mut sum = vec![0f32; dim];
                        for _ in 0..chips.len() {
                            for (s, x) in sum.iter_mut().zip(embs.next().unwrap()) {
                                *s += x;
                            }
                        }
                        let e = Embedded { embedding: sum.into_iter().map(|s| s / chips.len() as f32).collect(), source };
                        fresh.push((key, e.clone()));
                        stats.computed += 1;
                        e
                    }
                    None => {
                        stats.cached += 1;
                        cache[&key].clone()
                    }
                };
                match e.source {
                    FaceSource::Fallback => stats.fallback += 1,
                    FaceSource::Weak => stats.weak += 1,
                    FaceSource::Detected => {}
                }
                out.insert(path, e);
            }
            self.append_cache(&fresh);
            for (k, e) in fresh {
                cache.insert(k, e);
            }
        }
        stats.seconds = start.elapsed().as_secs_f64();
        Ok((out, stats))
    }
}
