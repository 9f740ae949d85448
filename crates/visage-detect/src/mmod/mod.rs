//! dlib's CNN face detector (`mmod_human_face_detector.dat`, face_recognition's `model="cnn"`),
//! run on visage's engine: the photo upsampled `upsample` times, its tiled `pyramid_down<6>`
//! pyramid, the network's score map, every cell above the threshold mapped back to a window in
//! the photo, then dlib's greedy non-maximum suppression.

pub mod model;
pub mod tiling;

use crate::hog::{overlaps, rect_down2, resize};
use crate::{Detection, DetectorSource, FaceDetector, StageError};
use model::MmodModel;
use std::sync::Mutex;
use tiling::{centered, TiledLayout};
use visage_core::{DPoint, Rect, RgbImage};
use visage_engine::{EngineError, EngineOptions, Network, Workspace};
use visage_models::{FormatError, ModelFile, ModelStore, StoreError};

/// Why the CNN detector could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MmodError {
    /// The model file is missing or damaged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file is not dlib's MMOD face detector.
    #[error("not dlib's MMOD face detector: {0}")]
    Format(#[from] FormatError),
    /// The network could not be built.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// dlib's CNN (MMOD) face detector.
pub struct MmodDetector {
    model: MmodModel,
    net: Network,
    upsample: u32,
    /// The last workspace, kept for photos of the same size (a video, a folder of one camera).
    spare: Mutex<Option<Workspace>>,
}

impl MmodDetector {
    /// The most upsampling steps accepted (as for the HOG detector).
    pub const MAX_UPSAMPLE: u32 = 8;

    /// Loads and verifies the model from `store` (`visage models fetch --all` installs it).
    pub fn from_store(store: &ModelStore, options: EngineOptions) -> Result<Self, MmodError> {
        Self::from_bytes(&store.read_verified(ModelFile::MmodDetector)?, options)
    }

    /// Parses the model bytes and compiles the network.
    pub fn from_bytes(bytes: &[u8], options: EngineOptions) -> Result<Self, MmodError> {
        let model = MmodModel::parse(bytes)?;
        let net = Network::new(3, &model.layers, &model.weights, options)?;
        Ok(MmodDetector { model, net, upsample: 1, spare: Mutex::new(None) })
    }

    /// Times the photo is doubled before detection (face_recognition's default is 1).
    pub fn with_upsample(mut self, upsample: u32) -> Self {
        self.upsample = upsample.min(Self::MAX_UPSAMPLE);
        self
    }

    /// The parsed model.
    pub fn model(&self) -> &MmodModel {
        &self.model
    }

    /// The score map of an image as it is (no upsampling): its layout and the scores,
    /// `rows x cols` of the network's output.
    fn scores(&self, img: &RgbImage) -> Result<(TiledLayout, Vec<f32>, usize, usize), StageError> {
        let m = &self.model;
        let layout = TiledLayout::new(img.height() as usize, img.width() as usize, m.padding, m.outer_padding);
        if layout.rects.is_empty() {
            return Ok((layout, Vec::new(), 0, 0));
        }
        let input = layout.tensor(img, m.input_mean);
        let mut ws = {
            let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
            match spare.take() {
                Some(ws) if (ws.input_shape().h, ws.input_shape().w) == (layout.rows, layout.cols) => ws,
                _ => {
                    drop(spare);
                    match self.net.workspace(1, layout.rows, layout.cols) {
                        Ok(ws) => ws,
                        // Too small for the network: no face can be found.
                        Err(EngineError::Input(_)) => return Ok((layout, Vec::new(), 0, 0)),
                        Err(e) => return Err(StageError::new(e)),
                    }
                }
            }
        };
        ws.input_mut().copy_from_slice(&input);
        let out = self.net.run(&mut ws).pop().unwrap_or_default();
        let os = ws.output_shape();
        *self.spare.lock().unwrap_or_else(|e| e.into_inner()) = Some(ws);
        Ok((layout, out, os.h, os.w))
    }

    /// dlib's `net(img, adjust)`: detections in the image as given, most confident first.
    pub fn run_on(&self, img: &RgbImage, adjust_threshold: f64) -> Result<Vec<Detection>, StageError> {
        let (layout, scores, rows, cols) = self.scores(img)?;
        let m = &self.model;
        let mut cand: Vec<(f64, Rect)> = Vec::new();
        for r in 0..rows {
            for c in 0..cols {
                let score = scores[r * cols + c] as f64;
                if score > adjust_threshold {
                    let (x, y) = m.output_to_input(c as f64, r as f64);
                    let window = centered(DPoint::new(x, y), m.window.0, m.window.1);
                    let d = layout.to_image(window);
                    let rect = Rect::new(d.left.round() as i64, d.top.round() as i64, d.right.round() as i64, d.bottom.round() as i64);
                    cand.push((score, rect));
                }
            }
        }
        // Highest first; dlib sorts with std::sort (ties in no particular order: equal float
        // scores are kept in scan order here).
        cand.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut kept: Vec<Detection> = Vec::new();
        for (score, rect) in cand {
            if kept.iter().any(|k| overlaps(&k.rect, &rect, m.nms_iou, m.nms_covered)) {
                continue;
            }
            kept.push(Detection { rect, score, landmarks: None, source: DetectorSource { name: "cnn", sub: None } });
        }
        Ok(kept)
    }

    /// face_recognition's `cnn_face_detector(img, upsample)`: the photo doubled `upsample`
    /// times with dlib's `pyramid_up`, detected, and the boxes mapped back.
    pub fn run(&self, img: &RgbImage, upsample: u32, adjust_threshold: f64) -> Result<Vec<Detection>, StageError> {
        let upsample = upsample.min(Self::MAX_UPSAMPLE);
        let mut work = std::borrow::Cow::Borrowed(img);
        for _ in 0..upsample {
            work = std::borrow::Cow::Owned(resize::pyramid_up(&work));
        }
        let mut dets = self.run_on(&work, adjust_threshold)?;
        for d in &mut dets {
            d.rect = rect_down2(d.rect, upsample);
        }
        Ok(dets)
    }
}

impl FaceDetector for MmodDetector {
    fn detect_adjusted(&self, img: &RgbImage, adjust: f64) -> Result<Vec<Detection>, StageError> {
        self.run(img, self.upsample, adjust)
    }

    fn pixels_processed(&self, width: u32, height: u32) -> u64 {
        // The tiled pyramid of the upsampled photo.
        let (mut w, mut h) = (width as u64, height as u64);
        for _ in 0..self.upsample {
            (w, h) = (2 * w + 2, 2 * h + 1);
        }
        if w > 1 << 20 || h > 1 << 20 {
            return u64::MAX;
        }
        let l = TiledLayout::new(h as usize, w as usize, self.model.padding, self.model.outer_padding);
        (l.rows as u64) * (l.cols as u64)
    }

    fn name(&self) -> &'static str {
        "cnn"
    }
}
