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
use visage_models::dnn::{read_layers, read_versions, Node, Parsed};
use visage_models::{DlibReader, FormatError};

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

/// The ResNet-29's layer list as [`ResnetWeights::layers`] gives it for dlib's file, without
/// the file: the structure is fixed (a 7x7 stride-2 stem without padding, 3x3 convolutions
/// with padding 1, down blocks' first convolution stride 2 without padding, as dlib pads only
/// stride-1 convolutions). A fine-tuned copy (visage-train) is stored as these names' tensors.
pub fn resnet29_layers() -> Vec<Layer> {
    let mut v = vec![Layer::conv("stem", 2, 0), Layer::affine("stem_affine"), Layer::Relu, Layer::MaxPool { size: 3, stride: 2, pad: 0 }];
    let mut i = 0;
    for (count, _, down) in STAGES {
        for j in 0..count {
            let is_down = down && j == 0;
            let main = vec![
                Layer::conv(format!("block{i}.conv1"), if is_down { 2 } else { 1 }, if is_down { 0 } else { 1 }),
                Layer::affine(format!("block{i}.affine1")),
                Layer::Relu,
                Layer::conv(format!("block{i}.conv2"), 1, 1),
                Layer::affine(format!("block{i}.affine2")),
            ];
            let skip = if is_down { vec![Layer::AvgPool { size: 2, stride: 2 }] } else { Vec::new() };
            v.push(Layer::Residual { main, skip });
            v.push(Layer::Relu);
            i += 1;
        }
    }
    v.push(Layer::GlobalAvgPool);
    v.push(Layer::fc("fc"));
    v
}

/// The parameter names and shapes of [`resnet29_layers`], in forward order.
pub fn resnet29_parameter_shapes() -> Vec<(String, Vec<usize>)> {
    let mut v = vec![
        ("stem.weight".to_string(), vec![32, 3, 7, 7]),
        ("stem.bias".to_string(), vec![32]),
        ("stem_affine.gamma".to_string(), vec![32]),
        ("stem_affine.beta".to_string(), vec![32]),
    ];
    let (mut i, mut cin) = (0, 32);
    for (count, ch, _) in STAGES {
        for _ in 0..count {
            for (conv, affine, inputs) in [("conv1", "affine1", cin), ("conv2", "affine2", ch)] {
                v.push((format!("block{i}.{conv}.weight"), vec![ch, inputs, 3, 3]));
                v.push((format!("block{i}.{conv}.bias"), vec![ch]));
                v.push((format!("block{i}.{affine}.gamma"), vec![ch]));
                v.push((format!("block{i}.{affine}.beta"), vec![ch]));
            }
            cin = ch;
            i += 1;
        }
    }
    v.push(("fc.weight".to_string(), vec![cin, DLIB_RESNET_DIM]));
    v
}

/// The residual stages: (number of blocks, channels, starts with a down block).
const STAGES: [(usize, usize, bool); 5] = [(3, 32, false), (4, 64, true), (3, 128, true), (3, 256, true), (1, 256, true)];

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

/// Parses `dlib_face_recognition_resnet_model_v1.dat`.
pub fn parse_resnet(bytes: &[u8]) -> Result<ResnetWeights, FormatError> {
    let mut r = DlibReader::new(bytes, "dlib_face_recognition_resnet_model_v1.dat");
    r.expect_int(1, "add_loss_layer version")?;
    r.expect_tag(&["loss_metric_", "loss_metric_2"])?;
    let loss_margin = r.float()?;
    let distance_threshold = r.float()?;

    let nodes = recipe();
    let versions = read_versions(&mut r, &nodes)?;

    r.expect_tag(&["input_rgb_image_sized"])?;
    let input_mean = [r.float()?, r.float()?, r.float()?];
    let nr = r.size("input rows", 4096)?;
    let nc = r.size("input cols", 4096)?;
    let side = DLIB_RESNET_CHIP.size as usize;
    if nr != side || nc != side {
        return Err(r.error(format!("input size {nr}x{nc}, expected {side}x{side}")));
    }

    let parsed = read_layers(&mut r, &nodes, &versions, 3)?;
    r.expect_end()?;
    assemble(parsed, input_mean, loss_margin, distance_threshold).map_err(|m| r.error(m))
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
