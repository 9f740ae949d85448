//! The ResNet-29 of `dlib_face_recognition_resnet_model_v1.dat`: its layer structure and the
//! parser that reads its weights from dlib's file.
//!
//! dlib files do not describe their own network type, so the reader walks a known structure.
//! Layers are serialized outermost first, each wrapper writing its sub-network before its own
//! details: the file holds one version integer per layer (outermost first), then the input
//! layer, then the details of each computational layer in forward order.
//! See `shared/reference/dlib-format.md` sections 1-3.

use crate::descriptor::{DLIB_RESNET_CHIP, DLIB_RESNET_DIM};
pub use visage_engine::{Affine, ConvWeights};
use visage_engine::{Layer, Weights};
use visage_models::{DlibReader, FormatError, Tensor};

/// One residual block: `relu(skip(x) + affine2(conv2(relu(affine1(conv1(x))))))`.
///
/// For a down block, conv1 has stride 2 without padding, the skip path is a 2x2 stride-2
/// average pool, and the sum zero-pads the smaller operand at the end of every axis.
#[derive(Debug, Clone)]
pub struct ResidualBlock {
    /// True for `ares_down` (stride 2, average-pooled skip).
    pub down: bool,
    /// First 3x3 convolution.
    pub conv1: ConvWeights,
    /// Affine after conv1 (followed by relu).
    pub affine1: Affine,
    /// Second 3x3 convolution (stride 1, pad 1).
    pub conv2: ConvWeights,
    /// Affine after conv2 (before the residual sum).
    pub affine2: Affine,
}

/// All the weights of the face ResNet, in forward order.
#[derive(Debug, Clone)]
pub struct ResnetWeights {
    /// Per-channel means subtracted from the RGB input before dividing by 256.
    pub input_mean: [f32; 3],
    /// Input chip side in pixels (150).
    pub input_size: usize,
    /// 7x7 stride-2 stem convolution.
    pub stem_conv: ConvWeights,
    /// Affine after the stem (followed by relu and a 3x3 stride-2 max pool).
    pub stem_affine: Affine,
    /// The 14 residual blocks.
    pub blocks: Vec<ResidualBlock>,
    /// The final fully connected layer, `[in][out]` row-major, no bias.
    pub fc: Vec<f32>,
    /// fc input width (256).
    pub fc_inputs: usize,
    /// fc output width: the embedding dimension (128).
    pub fc_outputs: usize,
    /// The training margin stored with the metric loss.
    pub loss_margin: f32,
    /// The distance threshold stored with the metric loss (0.6).
    pub distance_threshold: f32,
}

impl ResnetWeights {
    /// The network as the engine's layer list; parameters are named as [`Self::weights`]
    /// names them (`stem`, `block{i}.conv1`, `block{i}.affine1`, ..., `fc`).
    pub fn layers(&self) -> Vec<Layer> {
        let mut v = vec![
            Layer::conv("stem", self.stem_conv.stride, self.stem_conv.pad),
            Layer::affine("stem_affine"),
            Layer::Relu,
            Layer::MaxPool { size: 3, stride: 2, pad: 0 },
        ];
        for (i, b) in self.blocks.iter().enumerate() {
            let main = vec![
                Layer::conv(format!("block{i}.conv1"), b.conv1.stride, b.conv1.pad),
                Layer::affine(format!("block{i}.affine1")),
                Layer::Relu,
                Layer::conv(format!("block{i}.conv2"), b.conv2.stride, b.conv2.pad),
                Layer::affine(format!("block{i}.affine2")),
            ];
            let skip = if b.down { vec![Layer::AvgPool { size: 2, stride: 2 }] } else { Vec::new() };
            v.push(Layer::Residual { main, skip });
            v.push(Layer::Relu);
        }
        v.push(Layer::GlobalAvgPool);
        v.push(Layer::fc("fc"));
        v
    }

    /// Every parameter, by the names [`Self::layers`] uses.
    pub fn weights(&self) -> Weights {
        let mut w = Weights::new();
        w.insert_conv("stem", &self.stem_conv);
        w.insert_affine("stem_affine", &self.stem_affine);
        for (i, b) in self.blocks.iter().enumerate() {
            w.insert_conv(&format!("block{i}.conv1"), &b.conv1);
            w.insert_affine(&format!("block{i}.affine1"), &b.affine1);
            w.insert_conv(&format!("block{i}.conv2"), &b.conv2);
            w.insert_affine(&format!("block{i}.affine2"), &b.affine2);
        }
        let fc = visage_engine::Tensor::new(vec![self.fc_inputs, self.fc_outputs], self.fc.clone()).expect("fc_inputs x fc_outputs values");
        w.insert("fc.weight", fc);
        w
    }
}

/// The residual stages: (number of blocks, channels, starts with a down block).
const STAGES: [(usize, usize, bool); 5] = [(3, 32, false), (4, 64, true), (3, 128, true), (3, 256, true), (1, 256, true)];

/// A node of the network in forward order, as dlib serializes it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Node {
    Conv { filters: usize, kernel: usize, stride: usize },
    Affine,
    Relu,
    MaxPool { size: usize, stride: usize },
    AvgPool { size: usize, stride: usize },
    AvgPoolAll,
    AddPrev,
    Tag,
    Skip,
    Fc { outputs: usize },
}

impl Node {
    fn is_wrapper_only(self) -> bool {
        matches!(self, Node::Tag | Node::Skip)
    }
}

/// The forward sequence of the face ResNet (after the input layer).
fn recipe() -> Vec<Node> {
    let mut v = vec![Node::Conv { filters: 32, kernel: 7, stride: 2 }, Node::Affine, Node::Relu, Node::MaxPool { size: 3, stride: 2 }];
    for (count, ch, down) in STAGES {
        for i in 0..count {
            let is_down = down && i == 0;
            let stride = if is_down { 2 } else { 1 };
            v.extend([
                Node::Tag,
                Node::Conv { filters: ch, kernel: 3, stride },
                Node::Affine,
                Node::Relu,
                Node::Conv { filters: ch, kernel: 3, stride: 1 },
                Node::Affine,
            ]);
            if is_down {
                v.extend([Node::Tag, Node::Skip, Node::AvgPool { size: 2, stride: 2 }]);
            }
            v.extend([Node::AddPrev, Node::Relu]);
        }
    }
    v.extend([Node::AvgPoolAll, Node::Fc { outputs: DLIB_RESNET_DIM }]);
    v
}

/// What the parser produced for one computational node.
enum Parsed {
    Conv(ConvWeights),
    Affine(Affine),
    Fc { weights: Vec<f32>, inputs: usize, outputs: usize },
    Other,
}

/// Parses `dlib_face_recognition_resnet_model_v1.dat`.
pub fn parse_resnet(bytes: &[u8]) -> Result<ResnetWeights, FormatError> {
    let mut r = DlibReader::new(bytes, "dlib_face_recognition_resnet_model_v1.dat");
    r.expect_int(1, "add_loss_layer version")?;
    r.expect_tag(&["loss_metric_", "loss_metric_2"])?;
    let loss_margin = r.float()?;
    let distance_threshold = r.float()?;

    let nodes = recipe();
    // One version integer per layer, outermost first.
    let mut versions = vec![0i64; nodes.len()];
    for i in (0..nodes.len()).rev() {
        let v = r.int()?;
        let ok = match (nodes[i].is_wrapper_only(), i) {
            (true, _) => v == 1,
            (false, 0) => v == 2 || v == 3,
            (false, _) => v == 1 || v == 2,
        };
        if !ok {
            return Err(r.error(format!("layer {i} ({:?}) has version {v}: not the dlib face ResNet-29", nodes[i])));
        }
        versions[i] = v;
    }

    r.expect_tag(&["input_rgb_image_sized"])?;
    let input_mean = [r.float()?, r.float()?, r.float()?];
    let nr = r.size("input rows", 4096)?;
    let nc = r.size("input cols", 4096)?;
    let side = DLIB_RESNET_CHIP.size as usize;
    if nr != side || nc != side {
        return Err(r.error(format!("input size {nr}x{nc}, expected {side}x{side}")));
    }

    let mut parsed = Vec::new();
    let mut in_channels = 3usize;
    for (i, &node) in nodes.iter().enumerate() {
        if node.is_wrapper_only() {
            continue;
        }
        let p = parse_node(&mut r, node, &mut in_channels)?;
        // Per-layer bookkeeping written by add_layer after the details.
        for _ in 0..3 {
            r.boolean()?;
        }
        skip_empty_tensor(&mut r)?; // x_grad
        skip_empty_tensor(&mut r)?; // cached_output
        if i == 0 {
            skip_empty_tensor(&mut r)?; // grad_final
            if versions[0] >= 3 {
                r.int()?; // sample expansion factor
            }
        } else if versions[i] == 2 {
            skip_empty_tensor(&mut r)?; // params_grad
        }
        parsed.push(p);
    }
    r.expect_end()?;
    assemble(parsed, input_mean, loss_margin, distance_threshold).map_err(|m| r.error(m))
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

fn assemble(parsed: Vec<Parsed>, input_mean: [f32; 3], loss_margin: f32, distance_threshold: f32) -> Result<ResnetWeights, String> {
    let mut convs = Vec::new();
    let mut affines = Vec::new();
    let mut fc = None;
    for p in parsed {
        match p {
            Parsed::Conv(c) => convs.push(c),
            Parsed::Affine(a) => affines.push(a),
            Parsed::Fc { weights, inputs, outputs } => fc = Some((weights, inputs, outputs)),
            Parsed::Other => {}
        }
    }
    let (fc, fc_inputs, fc_outputs) = fc.ok_or("no fc layer")?;
    if convs.len() != 29 || affines.len() != 29 {
        return Err(format!("{} convolutions and {} affines, expected 29 each", convs.len(), affines.len()));
    }
    let mut convs = convs.into_iter();
    let mut affines = affines.into_iter();
    let stem_conv = convs.next().unwrap();
    let stem_affine = affines.next().unwrap();
    let mut blocks = Vec::new();
    for (count, _, down) in STAGES {
        for i in 0..count {
            blocks.push(ResidualBlock {
                down: down && i == 0,
                conv1: convs.next().unwrap(),
                affine1: affines.next().unwrap(),
                conv2: convs.next().unwrap(),
                affine2: affines.next().unwrap(),
            });
        }
    }
    Ok(ResnetWeights {
        input_mean,
        input_size: DLIB_RESNET_CHIP.size as usize,
        stem_conv,
        stem_affine,
        blocks,
        fc,
        fc_inputs,
        fc_outputs,
        loss_margin,
        distance_threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_has_the_documented_layer_counts() {
        let r = recipe();
        let count = |f: fn(&Node) -> bool| r.iter().filter(|n| f(n)).count();
        assert_eq!(count(|n| matches!(n, Node::Conv { .. })), 29);
        assert_eq!(count(|n| matches!(n, Node::Affine)), 29);
        assert_eq!(count(|n| matches!(n, Node::Relu)), 29);
        assert_eq!(count(|n| matches!(n, Node::AddPrev)), 14);
        assert_eq!(count(|n| matches!(n, Node::AvgPool { .. })), 4);
        assert_eq!(count(|n| matches!(n, Node::MaxPool { .. })), 1);
    }

    #[test]
    fn foreign_bytes_are_an_error_not_a_panic() {
        assert!(parse_resnet(b"").is_err());
        assert!(parse_resnet(b"\x01\x01\x01\x0dloss_metric_2").is_err());
        assert!(parse_resnet(&[0xffu8; 300]).is_err());
        // A shape predictor file starts with a version and a matrix: not a ResNet.
        assert!(parse_resnet(&[0x01, 0x01, 0x81, 0x0a, 0x81, 0x01]).is_err());
    }
}
