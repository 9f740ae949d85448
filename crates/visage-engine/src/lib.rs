//! visage's inference engine: every network visage runs (dlib's face ResNet, dlib's MMOD
//! face detector, liveness nets, embedders trained by visage) is a [`Network`] compiled from a
//! list of [`Layer`]s and named [`Weights`].
//!
//! * The vocabulary: convolution of any square kernel, stride and padding; affine (batch
//!   normalisation folded at load); relu; max and average pooling; global average pooling;
//!   fully connected; locally connected (unshared filters, DeepFace's); the residual add with dlib's zero-padding rule.
//! * The compiler fuses what it can: a convolution's bias, the affine after it, a residual add
//!   and the relu after that run in the GEMM epilogue; a down block's pooled skip, add and
//!   relu run in one pass; global pooling and the projection run together.
//! * Convolutions are GEMMs over NHWC activations through an *indirection table* (no im2col
//!   copy), on hand-written AVX-512 (12x32), AVX2 (6x16) and portable micro-kernels chosen at
//!   run time. Batched 3x3 stride-1 layers go through Winograd F(2x2,3x3) where the GEMMs are
//!   big enough to win.
//! * A [`Workspace`] holds the buffers and tables of one input geometry, so running a network
//!   allocates nothing but its outputs.

#![warn(missing_docs)]

mod conv;
pub mod kernels;
mod layer;
mod locally_connected;
mod network;
mod ops;
mod tensor;
mod winograd;

pub use kernels::Isa;
pub use layer::Layer;
pub use network::{EngineOptions, Network, Workspace};
pub use tensor::{Affine, ConvWeights, Shape, Tensor, Weights};

/// Why a network could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A layer refers to a parameter that is not in the weights.
    #[error("the weights have no tensor {0:?}")]
    MissingWeight(String),
    /// A parameter has the wrong shape.
    #[error("tensor {name:?} has shape {got:?}, the network needs {want:?}")]
    WeightShape {
        /// The tensor.
        name: String,
        /// Its shape.
        got: Vec<usize>,
        /// The shape the layer needs (0 where any extent would do).
        want: Vec<usize>,
    },
    /// A parameter holds NaN or an infinity.
    #[error("tensor {name:?} holds a non-finite value ({value})")]
    NonFinite {
        /// The tensor.
        name: String,
        /// The first such value.
        value: f32,
    },
    /// A layer's settings are not valid.
    #[error("invalid layer: {0}")]
    Layer(String),
    /// The input does not fit the network.
    #[error("invalid input: {0}")]
    Input(String),
    /// The instruction set asked for is not available on this CPU.
    #[error("this CPU cannot run the {0} kernels")]
    Unsupported(&'static str),
}
