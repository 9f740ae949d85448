//! Passive liveness for visage: is the face in a photo a live person, or a photo of a photo?
//!
//! The check reads the texture of the aligned face: a printed photograph, photographed again,
//! loses fine detail, gains print and moire patterns, and shifts colour. Multi-scale uniform LBP
//! histograms of the face in grey and in HSV and YCbCr ([`FeatureSpec`]) go to a logistic
//! classifier ([`LivenessModel`]), trained by `visage liveness train`. Faces whose texture
//! cannot be read (too small, cut by the border, badly exposed, greyscale) are not judged
//! ([`Verdict::CannotJudge`]) rather than guessed.
//!
//! A small CNN trained by visage on the aligned face crop ([`CnnLiveness`]) is the other kind of
//! model; both are behind [`LivenessCheck`].
//!
//! The shipped model was trained on NUAA (printed photos, one webcam, 15 subjects): it has never
//! seen screens, replays or masks, and such models lose much of their accuracy on other cameras.
//! It lowers the risk of a printed-photo attack; it does not rule attacks out.

pub mod check;
pub mod cnn;
pub mod features;
pub mod judge;
pub mod lbp;
pub mod logistic;
pub mod model;
pub mod plane;
pub mod quality;

pub use check::{load, LivenessCheck};
pub use cnn::{standardize_crop, CnnLiveness, CnnSettings};
pub use features::FeatureSpec;
pub use judge::{Judgement, Verdict};
pub use model::{LivenessModel, ModelError, Provenance};
pub use quality::{QualityBounds, Unjudgeable};
