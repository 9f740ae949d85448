//! Honest evaluation of face verification.
//!
//! * [`pairs`]: LFW's `pairs.txt` (View 2, and View 1's `pairsDev*.txt`) and generic labelled
//!   pair lists (`pathA<TAB>pathB<TAB>0|1`), with their folds.
//! * [`protocol`]: the standard 10-fold protocol: for each fold, the threshold with the best
//!   accuracy on the other nine folds is applied to it (never tuned on the fold being tested);
//!   VAL (TAR) at a target FAR is found the same way.
//! * [`roc`]: ROC curve, AUC and EER over all pairs.
//! * [`embed`]: embedding the photos of an evaluation (detector-miss policy, flip, jitter) with
//!   a cache keyed by model, options and image hash.
//! * [`plot`]: the ROC curve and the distance histograms as PNG or SVG.

#![warn(missing_docs)]

pub mod embed;
pub mod liveness;
pub mod openset;
pub mod pairs;
pub mod plot;

pub mod pad;
pub mod protocol;
pub mod roc;
