//! dlib's DNN serialization for sequential networks: the per-layer version integers, the
//! layer records (`con_`, `affine_` / `bn_con2`, `relu_`, pools, `add_prev_`, `fc_`) and the
//! bookkeeping dlib writes after each one. dlib files do not describe their own network type,
//! so a caller walks a known recipe of [`Node`]s. See `shared/reference/dlib-format.md`
//! sections 1-3 and 6.

use crate::{DlibReader, FormatError, Tensor};
use visage_engine::{Affine, ConvWeights};

/// A node of the network in forward order, as dlib serializes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Node {
    /// `con_`: `filters` outputs, a square `kernel`, `stride`; dlib's default padding
    /// (`stride != 1 ? 0 : kernel / 2`).
    Conv {
        /// Output channels.
        filters: usize,
        /// Kernel side.
        kernel: usize,
        /// Stride.
        stride: usize,
    },
    /// `affine_` or a batch norm (`bn_con2`) folded into one.
    Affine,
    /// `relu_`.
    Relu,
    /// `max_pool_2` without padding.
    MaxPool {
        /// Window side.
        size: usize,
        /// Stride.
        stride: usize,
    },
    /// `avg_pool_2` without padding.
    AvgPool {
        /// Window side.
        size: usize,
        /// Stride.
        stride: usize,
    },
    /// `avg_pool_2` over everything (a global mean).
    AvgPoolAll,
    /// `add_prev_`.
    AddPrev,
    /// `add_tag_layer` (a wrapper: no details).
    Tag,
    /// `add_skip_layer` (a wrapper: no details).
    Skip,
    /// `fc_` without bias.
    Fc {
        /// Outputs.
        outputs: usize,
    },
}

impl Node {
    /// Whether the node is a wrapper that stores a version but no details.
    pub fn is_wrapper_only(self) -> bool {
        matches!(self, Node::Tag | Node::Skip)
    }
}

/// What the parser produced for one computational node.
pub enum Parsed {
    /// A convolution's parameters.
    Conv(ConvWeights),
    /// An affine transform (or a folded batch norm).
    Affine(Affine),
    /// A fully connected layer, `[inputs][outputs]` row-major.
    Fc {
        /// The weights.
        weights: Vec<f32>,
        /// Input width.
        inputs: usize,
        /// Output width.
        outputs: usize,
    },
    /// A layer without parameters.
    Other,
}

/// Reads the version integer dlib writes for every node, outermost (last) first; the first
/// computational node's wrapper holds the input layer.
pub fn read_versions(r: &mut DlibReader, nodes: &[Node]) -> Result<Vec<i64>, FormatError> {
    let mut versions = vec![0i64; nodes.len()];
    for i in (0..nodes.len()).rev() {
        let v = r.int()?;
        let ok = match (nodes[i].is_wrapper_only(), i) {
            (true, _) => v == 1,
            (false, 0) => v == 2 || v == 3,
            (false, _) => v == 1 || v == 2,
        };
        if !ok {
            return Err(r.error(format!("layer {i} ({:?}) has version {v}: not the expected network", nodes[i])));
        }
        versions[i] = v;
    }
    Ok(versions)
}

/// Reads every node's details in forward order (after the input layer), starting from
/// `in_channels` input channels.
pub fn read_layers(r: &mut DlibReader, nodes: &[Node], versions: &[i64], mut in_channels: usize) -> Result<Vec<Parsed>, FormatError> {
    let mut parsed = Vec::new();
    for (i, &node) in nodes.iter().enumerate() {
        if node.is_wrapper_only() {
            continue;
        }
        let p = parse_node(r, node, &mut in_channels)?;
        // Per-layer bookkeeping written by add_layer after the details.
        for _ in 0..3 {
            r.boolean()?;
        }
        skip_empty_tensor(r)?; // x_grad
        skip_empty_tensor(r)?; // cached_output
        if i == 0 {
            skip_empty_tensor(r)?; // grad_final
            if versions[0] >= 3 {
                r.int()?; // sample expansion factor
            }
        } else if versions[i] == 2 {
            skip_empty_tensor(r)?; // params_grad
        }
        parsed.push(p);
    }
    Ok(parsed)
}

fn skip_empty_tensor(r: &mut DlibReader) -> Result<(), FormatError> {
    let t = r.tensor()?;
    if !t.is_empty() {
        // Gradients saved with the model are harmless but unexpected; accept them.
    }
    Ok(())
}

fn parse_node(r: &mut DlibReader, node: Node, in_channels: &mut usize) -> Result<Parsed, FormatError> {
    match node {
        Node::Conv { filters, kernel, stride } => {
            let tag = r.expect_tag(&["con_4", "con_5", "con_6"])?;
            let params = r.tensor()?;
            let n = r.size("num_filters", 1 << 16)?;
            let nr = r.size("filter rows", 64)?;
            let nc = r.size("filter cols", 64)?;
            let sy = r.size("stride_y", 64)?;
            let sx = r.size("stride_x", 64)?;
            let py = r.size("padding_y", 64)?;
            let px = r.size("padding_x", 64)?;
            let _filters_alias = r.alias_tensor()?;
            let _bias_alias = r.alias_tensor()?;
            for _ in 0..4 {
                r.float()?;
            }
            let mut use_bias = true;
            if tag != "con_4" {
                use_bias = r.boolean()?;
            }
            if tag == "con_6" {
                r.boolean()?; // use_relu: never set in this model
            }
            let pad = if stride != 1 { 0 } else { kernel / 2 };
            if (n, nr, nc, sy, sx, py, px) != (filters, kernel, kernel, stride, stride, pad, pad) {
                return Err(r.error(format!(
                    "convolution {n} {nr}x{nc} stride {sy}x{sx} pad {py}x{px}, expected {filters} {kernel}x{kernel} stride {stride} pad {pad}"
                )));
            }
            let nw = filters * *in_channels * kernel * kernel;
            let expected = nw + if use_bias { filters } else { 0 };
            if params.len() != expected {
                return Err(r.error(format!("convolution holds {} parameters, expected {expected}", params.len())));
            }
            let bias = if use_bias { params.data[nw..].to_vec() } else { vec![0.0; filters] };
            let w = ConvWeights {
                out_channels: filters,
                in_channels: *in_channels,
                kernel,
                stride,
                pad,
                filters: params.data[..nw].to_vec(),
                bias,
            };
            *in_channels = filters;
            Ok(Parsed::Conv(w))
        }
        Node::Affine => {
            let tag = r.expect_tag(&["affine_", "affine_2", "bn_con2"])?;
            let affine = if tag == "bn_con2" { parse_bn_as_affine(r)? } else { parse_affine(r, &tag)? };
            if affine.gamma.len() != *in_channels {
                return Err(r.error(format!("affine over {} channels, expected {in_channels}", affine.gamma.len())));
            }
            Ok(Parsed::Affine(affine))
        }
        Node::Relu => {
            let tag = r.expect_tag(&["relu_", "relu_2"])?;
            if tag == "relu_2" && r.boolean()? {
                return Err(r.error("disabled relu is not supported"));
            }
            Ok(Parsed::Other)
        }
        Node::MaxPool { size, stride } | Node::AvgPool { size, stride } => {
            let want = if matches!(node, Node::MaxPool { .. }) { "max_pool_2" } else { "avg_pool_2" };
            r.expect_tag(&[want])?;
            check_pool(r, size, stride, 0)?;
            Ok(Parsed::Other)
        }
        Node::AvgPoolAll => {
            r.expect_tag(&["avg_pool_2"])?;
            check_pool(r, 0, 1, 0)?;
            Ok(Parsed::Other)
        }
        Node::AddPrev => {
            r.expect_tag(&["add_prev_"])?;
            Ok(Parsed::Other)
        }
        Node::Fc { outputs } => {
            let tag = r.expect_tag(&["fc_2", "fc_3"])?;
            let n_out = r.size("fc outputs", 1 << 16)?;
            let n_in = r.size("fc inputs", 1 << 16)?;
            let params: Tensor = r.tensor()?;
            let _w = r.alias_tensor()?;
            let _b = r.alias_tensor()?;
            let bias_mode = r.int()?;
            for _ in 0..4 {
                r.float()?;
            }
            if tag == "fc_3" {
                r.boolean()?;
            }
            if n_out != outputs || n_in != *in_channels || bias_mode != 1 || params.len() != n_in * n_out {
                return Err(r.error(format!(
                    "fc {n_in}->{n_out} (bias mode {bias_mode}, {} params), expected {in_channels}->{outputs} without bias",
                    params.len()
                )));
            }
            Ok(Parsed::Fc { weights: params.data, inputs: n_in, outputs: n_out })
        }
        Node::Tag | Node::Skip => unreachable!("wrappers carry no details"),
    }
}

fn check_pool(r: &mut DlibReader, size: usize, stride: usize, pad: usize) -> Result<(), FormatError> {
    let vals = [
        r.size("pool rows", 1 << 16)?,
        r.size("pool cols", 1 << 16)?,
        r.size("pool stride_y", 1 << 16)?,
        r.size("pool stride_x", 1 << 16)?,
        r.size("pool padding_y", 1 << 16)?,
        r.size("pool padding_x", 1 << 16)?,
    ];
    if vals != [size, size, stride, stride, pad, pad] {
        return Err(r.error(format!("pool {vals:?}, expected {size}x{size} stride {stride} pad {pad}")));
    }
    Ok(())
}

fn parse_affine(r: &mut DlibReader, tag: &str) -> Result<Affine, FormatError> {
    let params = r.tensor()?;
    let g = r.alias_tensor()?;
    let _b = r.alias_tensor()?;
    let mode = r.int()?;
    if tag == "affine_2" && r.boolean()? {
        return Err(r.error("disabled affine layer is not supported"));
    }
    let k = g[1];
    if mode != 0 || params.len() != 2 * k {
        return Err(r.error(format!("affine mode {mode} with {} params for {k} channels", params.len())));
    }
    Ok(Affine { gamma: params.data[..k].to_vec(), beta: params.data[k..].to_vec() })
}

fn parse_bn_as_affine(r: &mut DlibReader) -> Result<Affine, FormatError> {
    let params = r.tensor()?;
    let _g = r.alias_tensor()?;
    let _b = r.alias_tensor()?;
    let _means = r.tensor()?;
    let _invstds = r.tensor()?;
    let running_means = r.tensor()?;
    let running_vars = r.tensor()?;
    r.int()?; // num_updates
    r.int()?; // running_stats_window_size
    for _ in 0..4 {
        r.float()?;
    }
    let eps = r.float()?;
    let k = running_means.len();
    if params.len() != 2 * k || running_vars.len() != k {
        return Err(r.error("batch-norm parameter sizes disagree"));
    }
    let mut gamma = Vec::with_capacity(k);
    let mut beta = Vec::with_capacity(k);
    for c in 0..k {
        let g = params.data[c] / (running_vars.data[c] + eps).sqrt();
        gamma.push(g);
        beta.push(params.data[k + c] - g * running_means.data[c]);
    }
    Ok(Affine { gamma, beta })
}
