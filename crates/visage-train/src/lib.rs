//! Learning face embeddings with burn on the CPU (the Flex backend with autodiff).
//!
//! The pieces a metric-learning run is made of, each tested on its own:
//!
//! - [`distance`]: pairwise distances of a batch of embeddings, squared or with an epsilon
//!   inside the square root, so that a zero distance never makes a NaN gradient;
//! - [`losses`]: the triplet hinge, softmax cross-entropy over identities, binary
//!   cross-entropy from logits.
//!
//! The crate is outside the quick start's build (`visage-cli` does not depend on it): burn
//! takes minutes to compile cold.

#![warn(missing_docs)]

pub mod distance;
pub mod losses;
pub mod tensors;

pub use burn;
pub use distance::Metric;
pub use losses::Reduction;
pub use tensors::train_device;
