//! Activations' geometry and the parameters layers are built from.

use std::collections::HashMap;

/// Geometry of an NHWC activation.
#[allow(clippy::len_without_is_empty)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Images.
    pub n: usize,
    /// Rows.
    pub h: usize,
    /// Columns.
    pub w: usize,
    /// Channels.
    pub c: usize,
}

impl Shape {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }

    /// Values per image.
    pub fn per_image(&self) -> usize {
        self.h * self.w * self.c
    }
}

/// One convolution's parameters: OIHW filters and a bias per output channel.
#[derive(Debug, Clone)]
pub struct ConvWeights {
    /// Output channels.
    pub out_channels: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Kernel height and width (square).
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding in both directions.
    pub pad: usize,
    /// `out_channels * in_channels * kernel * kernel` weights, OIHW.
    pub filters: Vec<f32>,
    /// `out_channels` biases.
    pub bias: Vec<f32>,
}

/// A per-channel affine transform `y = gamma[c] * x + beta[c]` (dlib's `affine_` layer, or a
/// batch normalisation folded into one).
#[derive(Debug, Clone)]
pub struct Affine {
    /// Scale per channel.
    pub gamma: Vec<f32>,
    /// Shift per channel.
    pub beta: Vec<f32>,
}

impl Affine {
    /// The identity on `channels` channels.
    pub fn identity(channels: usize) -> Self {
        Affine { gamma: vec![1.0; channels], beta: vec![0.0; channels] }
    }

    /// A batch normalisation in inference form, `gamma * (x - mean) / sqrt(var + eps) + beta`,
    /// folded into one affine transform.
    pub fn from_batch_norm(gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32], eps: f32) -> Self {
        let scale: Vec<f32> = gamma.iter().zip(var).map(|(g, v)| g / (v + eps).sqrt()).collect();
        let shift = beta.iter().zip(mean).zip(&scale).map(|((b, m), s)| b - m * s).collect();
        Affine { gamma: scale, beta: shift }
    }
}

/// A named parameter tensor: its shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Extent of each axis.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor; `None` when the data does not fill the shape.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Option<Self> {
        (shape.iter().product::<usize>() == data.len()).then_some(Tensor { shape, data })
    }
}

/// A network's parameters, addressed by name (`"conv1.weight"`, `"conv1.bias"`,
/// `"bn1.gamma"`, ...): what [`crate::Layer`]s refer to.
#[derive(Debug, Clone, Default)]
pub struct Weights {
    tensors: HashMap<String, Tensor>,
}

impl Weights {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a tensor.
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor) {
        self.tensors.insert(name.into(), tensor);
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// Every name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Adds a convolution's filters (`{name}.weight`, OIHW) and bias (`{name}.bias`).
    pub fn insert_conv(&mut self, name: &str, c: &ConvWeights) {
        let k = c.kernel;
        self.insert(format!("{name}.weight"), Tensor { shape: vec![c.out_channels, c.in_channels, k, k], data: c.filters.clone() });
        self.insert(format!("{name}.bias"), Tensor { shape: vec![c.out_channels], data: c.bias.clone() });
    }

    /// Adds an affine transform's `{name}.gamma` and `{name}.beta`.
    pub fn insert_affine(&mut self, name: &str, a: &Affine) {
        self.insert(format!("{name}.gamma"), Tensor { shape: vec![a.gamma.len()], data: a.gamma.clone() });
        self.insert(format!("{name}.beta"), Tensor { shape: vec![a.beta.len()], data: a.beta.clone() });
    }
}
