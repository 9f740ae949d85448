//! The dlib ResNet-29 face embedder (128-d, LFW 99.38%) in pure Rust.
//!
//! * [`architecture`]: the network's structure and the parser of dlib's model file.
//! * [`reference`]: a plain, slow forward pass used to check the fast one.
//! * [`Embedder`]: the fast path: indirect convolution over hand-written AVX-512 / AVX2 /
//!   portable micro-kernels, batched, on all cores.

#![warn(missing_docs)]

pub mod architecture;
mod conv;
mod embedder;
pub mod kernels;
mod network;
mod ops;
pub mod reference;
mod winograd;

pub use architecture::{parse_resnet, ResnetWeights};
pub use embedder::{EmbedError, Embedder, CHIP_BYTES, CHIP_SIZE, MAX_BATCH};
pub use kernels::Isa;
