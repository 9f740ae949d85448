//! Which face of a photo a one-face command uses.

use crate::Face;

/// The face a command that needs one face (compare, verify, enroll, evaluation) takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceChoice {
    /// The largest trimmed box; ties go to the more confident (earlier) face.
    Largest,
    /// The `n`-th face in detection order (most confident first), counted from 0.
    Index(usize),
    /// The face whose box centre is nearest the photo's centre; ties go to the earlier face.
    NearestCentre,
}

impl FaceChoice {
    /// The index of the chosen face among `faces` found in a `width` x `height` photo.
    pub fn pick(self, faces: &[Face], width: u32, height: u32) -> Option<usize> {
        match self {
            FaceChoice::Largest => faces.iter().enumerate().max_by(|a, b| a.1.area().cmp(&b.1.area()).then(b.0.cmp(&a.0))).map(|(i, _)| i),
            FaceChoice::Index(n) => (n < faces.len()).then_some(n),
            FaceChoice::NearestCentre => {
                let (cx, cy) = (width as f64 / 2.0, height as f64 / 2.0);
                let dist = |f: &Face| {
                    let c = f.rect.center();
                    (c.x - cx).powi(2) + (c.y - cy).powi(2)
                };
                faces.iter().enumerate().min_by(|a, b| dist(a.1).total_cmp(&dist(b.1)).then(a.0.cmp(&b.0))).map(|(i, _)| i)
            }
        }
    }
}
