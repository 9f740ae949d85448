//! The layer vocabulary networks are described in.

/// One layer of a network description. Parameters are looked up by name in
/// [`crate::Weights`]; activations are NHWC.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// A 2-D convolution with square kernel, stride and zero padding. Parameters:
    /// `{name}.weight` of shape `[out, in, kernel, kernel]` and, optionally, `{name}.bias` of
    /// shape `[out]` (zero when absent).
    Conv {
        /// Parameter name prefix.
        name: String,
        /// Stride in both directions.
        stride: usize,
        /// Zero padding on every side.
        pad: usize,
    },
    /// A per-channel affine transform (or batch normalisation folded into one at load):
    /// `{name}.gamma` and `{name}.beta`, each of shape `[channels]`. Directly after a
    /// convolution it is folded into the convolution's epilogue.
    Affine {
        /// Parameter name prefix.
        name: String,
    },
    /// `max(0, x)`; fused into a preceding convolution or residual add.
    Relu,
    /// Max pooling; positions outside the input are ignored.
    MaxPool {
        /// Window side.
        size: usize,
        /// Stride.
        stride: usize,
        /// Padding on every side.
        pad: usize,
    },
    /// Average pooling without padding.
    AvgPool {
        /// Window side.
        size: usize,
        /// Stride.
        stride: usize,
    },
    /// The mean over all rows and columns of each channel (output 1x1).
    GlobalAvgPool,
    /// A fully connected layer: `{name}.weight` of shape `[in, out]` and, optionally,
    /// `{name}.bias` of shape `[out]`. The input is flattened in channel-major (CHW) order,
    /// as dlib and burn flatten it.
    FullyConnected {
        /// Parameter name prefix.
        name: String,
    },
    /// A locally connected layer (DeepFace's): like a convolution without padding, but every
    /// output position has its own filters. Parameters: `{name}.weight` of shape
    /// `[out_h, out_w, kernel, kernel, in, out]` (the filters of each output position, in
    /// the input's row, column, channel order) and, optionally, `{name}.bias` of shape
    /// `[out_h, out_w, out]`. The weights fix the output extent, so the layer accepts only
    /// inputs of the one size that gives it.
    LocallyConnected {
        /// Parameter name prefix.
        name: String,
        /// Stride in both directions.
        stride: usize,
    },
    /// `main(x) (+) skip(x)`, where an empty `skip` is the identity and `(+)` is dlib's
    /// `add_prev`: the sum takes the larger extent on every axis and each operand is
    /// zero-padded at the end of every axis.
    Residual {
        /// The main branch.
        main: Vec<Layer>,
        /// The skip branch (empty: identity).
        skip: Vec<Layer>,
    },
}

impl Layer {
    /// A convolution layer.
    pub fn conv(name: impl Into<String>, stride: usize, pad: usize) -> Layer {
        Layer::Conv { name: name.into(), stride, pad }
    }

    /// An affine layer.
    pub fn affine(name: impl Into<String>) -> Layer {
        Layer::Affine { name: name.into() }
    }

    /// A locally connected layer.
    pub fn locally_connected(name: impl Into<String>, stride: usize) -> Layer {
        Layer::LocallyConnected { name: name.into(), stride }
    }

    /// A fully connected layer.
    pub fn fc(name: impl Into<String>) -> Layer {
        Layer::FullyConnected { name: name.into() }
    }
}
