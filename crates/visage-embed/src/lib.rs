//! The dlib ResNet-29 face embedder (128-d, LFW 99.38%) in pure Rust, on visage's engine.
//!
//! * [`architecture`]: the network's structure, the parser of dlib's model file, and its
//!   description as the engine's layer list.
//! * [`descriptor`]: the model's descriptor (id, dimension, chip geometry, thresholds).
//! * [`reference`]: a plain, slow forward pass used to check the fast one.
//! * [`Embedder`]: the network compiled on `visage-engine`, batched, on all cores.

#![warn(missing_docs)]

pub mod architecture;
pub mod deepface;
pub mod descriptor;
mod embedder;
pub mod reference;
pub mod trained;

pub use architecture::{parse_resnet, ResnetWeights};
pub use deepface::{DeepFaceSpec, DEEPFACE_MIN_CHIP};
pub use descriptor::{dlib_resnet_descriptor, DLIB_RESNET_CHIP, DLIB_RESNET_DIM, DLIB_RESNET_ID, DLIB_RESNET_THRESHOLDS};
pub use embedder::{EmbedError, Embedder, MAX_BATCH};
pub use trained::{Architecture, CnnSpec, ResnetKind, TrainedError, TrainedModel, TRAINED_FORMAT};
pub use visage_engine::{EngineOptions, Isa};
