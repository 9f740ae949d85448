//! dlib's shape predictor (Kazemi & Sullivan's ensemble of regression trees), as stored in
//! `shape_predictor_5_face_landmarks.dat`. See `shared/reference/dlib-format.md` section 4.
//!
//! Point order of the 5-point model: 0 image-right eye outer corner, 1 image-right eye inner,
//! 2 image-left eye outer, 3 image-left eye inner, 4 below the nose.

use thiserror::Error;
use visage_core::similarity::find_similarity_transform;
use visage_core::{DPoint, LandmarkScheme, Landmarker, Point, Rect, RgbImage, StageError};
use visage_models::{DlibReader, FormatError, ModelFile, ModelStore, StoreError};

/// Why a shape predictor could not be loaded.
#[derive(Debug, Error)]
pub enum ShapeError {
    /// The file is missing or damaged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file is not a shape predictor.
    #[error("not a dlib shape predictor: {0}")]
    Format(#[from] FormatError),
}

#[derive(Debug, Clone)]
struct Tree {
    /// (idx1, idx2, thresh) for the internal nodes in breadth-first order.
    splits: Vec<(u32, u32, f32)>,
    /// One shape update (2 * parts values) per leaf.
    leaves: Vec<Vec<f32>>,
}

#[derive(Debug, Clone)]
struct Cascade {
    trees: Vec<Tree>,
    anchors: Vec<usize>,
    deltas: Vec<[f32; 2]>,
}

/// A loaded landmark model.
#[derive(Debug, Clone)]
pub struct ShapePredictor {
    /// Mean shape in box-normalised coordinates: x0, y0, x1, y1, ...
    initial: Vec<f32>,
    cascades: Vec<Cascade>,
}

impl ShapePredictor {
    /// Loads and verifies the 5-point model from `store`.
    pub fn from_store(store: &ModelStore) -> Result<Self, ShapeError> {
        Ok(Self::parse(&store.read_verified(ModelFile::ShapePredictor5)?)?)
    }

    /// Parses a dlib `shape_predictor` file.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = DlibReader::new(bytes, "shape predictor");
        r.expect_int(1, "shape_predictor version")?;
        let (nr, nc, initial) = r.matrix(1 << 12)?;
        if nc != 1 || nr == 0 || nr % 2 != 0 {
            return Err(r.error(format!("initial shape is {nr}x{nc}, expected 2N x 1")));
        }
        let initial: Vec<f32> = initial.into_iter().map(|v| v as f32).collect();
        let n_cascades = r.size("number of cascades", 1000)?;
        let mut forests = Vec::with_capacity(n_cascades);
        for _ in 0..n_cascades {
            let n_trees = r.size("number of trees", 100_000)?;
            let mut trees = Vec::with_capacity(n_trees);
            for _ in 0..n_trees {
                let n_splits = r.size("number of splits", 1 << 16)?;
                let mut splits = Vec::with_capacity(n_splits);
                for _ in 0..n_splits {
                    let i1 = r.size("split index", u32::MAX as usize)? as u32;
                    let i2 = r.size("split index", u32::MAX as usize)? as u32;
                    splits.push((i1, i2, r.float()?));
                }
                let n_leaves = r.size("number of leaves", 1 << 17)?;
                if n_leaves != n_splits + 1 {
                    return Err(r.error(format!("{n_leaves} leaves for {n_splits} splits")));
                }
                let mut leaves = Vec::with_capacity(n_leaves);
                for _ in 0..n_leaves {
                    let (lr, lc, v) = r.matrix(1 << 12)?;
                    if lr != nr || lc != 1 {
                        return Err(r.error(format!("leaf of {lr}x{lc}, expected {nr}x1")));
                    }
                    leaves.push(v.into_iter().map(|x| x as f32).collect());
                }
                trees.push(Tree { splits, leaves });
            }
            forests.push(trees);
        }
        let n = r.size("anchor cascades", 1000)?;
        if n != n_cascades {
            return Err(r.error("anchor and forest counts differ"));
        }
        let parts = nr / 2;
        let mut anchors = Vec::with_capacity(n);
        for _ in 0..n {
            let k = r.size("feature count", 1 << 20)?;
            let mut a = Vec::with_capacity(k);
            for _ in 0..k {
                a.push(r.size("anchor index", parts - 1)?);
            }
            anchors.push(a);
        }
        let n = r.size("delta cascades", 1000)?;
        if n != n_cascades {
            return Err(r.error("delta and forest counts differ"));
        }
        let mut cascades = Vec::with_capacity(n);
        for (trees, anchors) in forests.into_iter().zip(anchors) {
            let k = r.size("delta count", 1 << 20)?;
            if k != anchors.len() {
                return Err(r.error("delta and anchor counts differ"));
            }
            let mut deltas = Vec::with_capacity(k);
            for _ in 0..k {
                deltas.push([r.float()?, r.float()?]);
            }
            for t in &trees {
                if t.splits.iter().any(|&(a, b, _)| a as usize >= k || b as usize >= k) {
                    return Err(r.error("split refers to a missing feature pixel"));
                }
            }
            cascades.push(Cascade { trees, anchors, deltas });
        }
        r.expect_end()?;
        let parts = initial.len() / 2;
        if LandmarkScheme::from_points(parts).is_none() {
            return Err(r.error(format!("the model puts {parts} landmarks; visage aligns faces on dlib's 5- or 68-point schemes")));
        }
        if let Some(v) = initial.iter().find(|v| !v.is_finite()) {
            return Err(r.error(format!("the mean shape holds a non-finite value ({v})")));
        }
        Ok(Self { initial, cascades })
    }

    /// Number of landmarks.
    pub fn parts(&self) -> usize {
        self.initial.len() / 2
    }

    /// The landmarks of the face in `rect` (integer pixels, rounded as dlib rounds them).
    pub fn predict(&self, img: &RgbImage, rect: Rect) -> Vec<Point> {
        let parts = self.parts();
        let mut shape = self.initial.clone();
        let (l, t) = (rect.left as f64, rect.top as f64);
        let (sx, sy) = ((rect.right - rect.left) as f64, (rect.bottom - rect.top) as f64);
        let to_img = |x: f32, y: f32| Point { x: (l + x as f64 * sx + 0.5).floor() as i64, y: (t + y as f64 * sy + 0.5).floor() as i64 };
        let (w, h) = (img.width() as i64, img.height() as i64);
        let px = img.as_raw();
        let from: Vec<DPoint> = (0..parts).map(|i| DPoint::new(self.initial[2 * i] as f64, self.initial[2 * i + 1] as f64)).collect();
        let mut feats = Vec::new();
        for c in &self.cascades {
            let cur: Vec<DPoint> = (0..parts).map(|i| DPoint::new(shape[2 * i] as f64, shape[2 * i + 1] as f64)).collect();
            let tf = find_similarity_transform(&from, &cur);
            let m = [[tf.m[0][0] as f32, tf.m[0][1] as f32], [tf.m[1][0] as f32, tf.m[1][1] as f32]];
            feats.clear();
            feats.extend(c.deltas.iter().zip(&c.anchors).map(|(d, &a)| {
                let qx = (m[0][0] * d[0] + m[0][1] * d[1]) + shape[2 * a];
                let qy = (m[1][0] * d[0] + m[1][1] * d[1]) + shape[2 * a + 1];
                let p = to_img(qx, qy);
                if p.x >= 0 && p.y >= 0 && p.x < w && p.y < h {
                    let i = ((p.y * w + p.x) * 3) as usize;
                    ((px[i] as u32 + px[i + 1] as u32 + px[i + 2] as u32) / 3) as f32
                } else {
                    0.0
                }
            }));
            for tree in &c.trees {
                let mut i = 0usize;
                while i < tree.splits.len() {
                    let (a, b, th) = tree.splits[i];
                    i = if feats[a as usize] - feats[b as usize] > th { 2 * i + 1 } else { 2 * i + 2 };
                }
                for (s, d) in shape.iter_mut().zip(&tree.leaves[i - tree.splits.len()]) {
                    *s += d;
                }
            }
        }
        (0..parts).map(|i| to_img(shape[2 * i], shape[2 * i + 1])).collect()
    }
}

impl Landmarker for ShapePredictor {
    fn landmarks(&self, img: &RgbImage, rect: Rect) -> Result<Vec<Point>, StageError> {
        Ok(self.predict(img, rect))
    }

    fn scheme(&self) -> LandmarkScheme {
        LandmarkScheme::from_points(self.parts()).expect("checked when parsed")
    }
}
