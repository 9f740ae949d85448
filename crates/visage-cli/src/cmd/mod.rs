//! One module per command.

pub mod compare;
pub mod detect;
pub mod embed;
pub mod eval;
pub mod faces;
pub mod gallery;
pub mod liveness;
pub mod models;
pub mod recognize;
pub mod serve;
#[cfg(feature = "train")]
pub mod liveness_cnn;
#[cfg(feature = "train")]
pub mod train;
#[cfg(feature = "train")]
mod train_checkpoint;
#[cfg(feature = "train")]
pub mod train_embedder;
#[cfg(feature = "train")]
pub mod train_finetune;

use serde_json::{json, Value};
use visage::Face;

/// A face as JSON: `box` is the rectangle the landmarks were computed in (trimmed to the
/// photo), `detection` the detector's raw rectangle; both `[left, top, right, bottom]`,
/// inclusive. `detector` names the detector that found the face (`hog` or `cnn`; with
/// `--detector auto` either), `filter` which of HOG's five filters fired.
pub fn face_json(f: &Face) -> Value {
    let r = |r: visage::Rect| json!([r.left, r.top, r.right, r.bottom]);
    let mut v = json!({
        "box": r(f.rect),
        "detection": r(f.detection),
        "landmarks": f.landmarks.iter().map(|p| json!([p.x, p.y])).collect::<Vec<_>>(),
    });
    if f.detector.name != "given" {
        v["score"] = json!(f.score);
        v["detector"] = json!(f.detector.name);
        if let Some(sub) = f.detector.sub {
            v["filter"] = json!(sub);
        }
    }
    v
}
