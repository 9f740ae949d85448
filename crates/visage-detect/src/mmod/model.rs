//! `mmod_human_face_detector.dat`: dlib's CNN face detector (loss_mmod over a tiled image
//! pyramid), read into the engine's layer list. See `shared/reference/dlib-format.md` section 6.

use visage_engine::{Layer, Weights};
use visage_models::dnn::{read_layers, read_versions, Node, Parsed};
use visage_models::{DlibReader, FormatError};

/// One convolution's geometry, for mapping output cells back to the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Kernel side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Padding.
    pub pad: usize,
}

/// The parsed detector.
#[derive(Debug, Clone)]
pub struct MmodModel {
    /// The sliding window, width x height in pixels (80x80).
    pub window: (f64, f64),
    /// NMS: intersection over bounding box above which two detections overlap.
    pub nms_iou: f64,
    /// NMS: fraction of either box covered above which two detections overlap.
    pub nms_covered: f64,
    /// Per-channel means subtracted from RGB before dividing by 256.
    pub input_mean: [f32; 3],
    /// Rows/columns of zeros between pyramid levels in the tiled image.
    pub padding: usize,
    /// Rows/columns of zeros around the tiled image.
    pub outer_padding: usize,
    /// The convolutions in forward order.
    pub convs: Vec<ConvGeometry>,
    /// The network for the engine.
    pub layers: Vec<Layer>,
    /// Its parameters.
    pub weights: Weights,
}

/// dlib's MMOD face network: a downsampler of three 5x5 stride-2 convolutions (16, 32, 32
/// filters), three 5x5 convolutions of 45 filters, each followed by a batch norm and relu,
/// then the 9x9 scoring convolution.
fn recipe() -> Vec<Node> {
    let mut v = Vec::new();
    for filters in [16, 32, 32] {
        v.extend([Node::Conv { filters, kernel: 5, stride: 2 }, Node::Affine, Node::Relu]);
    }
    for _ in 0..3 {
        v.extend([Node::Conv { filters: 45, kernel: 5, stride: 1 }, Node::Affine, Node::Relu]);
    }
    v.push(Node::Conv { filters: 1, kernel: 9, stride: 1 });
    v
}

impl MmodModel {
    /// Parses `mmod_human_face_detector.dat`.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = DlibReader::new(bytes, "mmod_human_face_detector.dat");
        r.expect_int(1, "add_loss_layer version")?;
        r.expect_tag(&["loss_mmod_"])?;
        let version = r.int()?;
        let window = match version {
            1 => (r.size("window width", 1 << 16)? as f64, r.size("window height", 1 << 16)? as f64),
            2..=4 => {
                let n = r.size("detector windows", 64)?;
                if n != 1 {
                    return Err(r.error(format!("{n} detector windows; the face detector has one")));
                }
                let v = r.int()?;
                let w = (r.size("window width", 1 << 16)? as f64, r.size("window height", 1 << 16)? as f64);
                if v == 2 {
                    r.string()?; // label
                }
                w
            }
            v => return Err(r.error(format!("mmod_options version {v}"))),
        };
        let _loss_per_false_alarm = r.double()?;
        let _loss_per_missed_target = r.double()?;
        let _truth_match_iou = r.double()?;
        let nms_iou = r.double()?;
        let nms_covered = r.double()?;
        let _ignore_iou = r.double()?;
        let _ignore_covered = r.double()?;
        if version >= 3 {
            r.int()?; // assume_image_pyramid
        }
        if version >= 4 && r.boolean()? {
            return Err(r.error("bounding box regression is not supported"));
        }
        if version >= 4 {
            r.double()?; // bbr_lambda
        }
        for v in [window.0, window.1, nms_iou, nms_covered] {
            if !v.is_finite() || v <= 0.0 {
                return Err(r.error(format!("window {window:?} / overlap {nms_iou}, {nms_covered} are not valid")));
            }
        }

        let nodes = recipe();
        let versions = read_versions(&mut r, &nodes)?;
        let tag = r.expect_tag(&["input_rgb_image_pyramid", "input_rgb_image_pyramid2"])?;
        let input_mean = [r.float()?, r.float()?, r.float()?];
        let (padding, outer_padding) = if tag == "input_rgb_image_pyramid2" {
            (r.size("pyramid padding", 1 << 12)?, r.size("pyramid outer padding", 1 << 12)?)
        } else {
            (10, 11)
        };
        let parsed = read_layers(&mut r, &nodes, &versions, 3)?;
        r.expect_end()?;

        let mut weights = Weights::new();
        let mut layers = Vec::new();
        let mut convs = Vec::new();
        for p in parsed {
            match p {
                Parsed::Conv(c) => {
                    let name = format!("conv{}", convs.len());
                    weights.insert_conv(&name, &c);
                    layers.push(Layer::conv(name, c.stride, c.pad));
                    convs.push(ConvGeometry { kernel: c.kernel, stride: c.stride, pad: c.pad });
                }
                Parsed::Affine(a) => {
                    let name = format!("affine{}", convs.len() - 1);
                    weights.insert_affine(&name, &a);
                    layers.push(Layer::affine(name));
                }
                Parsed::Other => layers.push(Layer::Relu),
                Parsed::Fc { .. } => return Err(r.error("a fully connected layer in the MMOD network")),
            }
        }
        Ok(MmodModel { window, nms_iou, nms_covered, input_mean, padding, outer_padding, convs, layers, weights })
    }

    /// Where output cell `(x, y)` lies in the input tensor: back through every convolution,
    /// `p * stride - pad + kernel / 2` (dlib's `map_output_to_input`).
    pub fn output_to_input(&self, x: f64, y: f64) -> (f64, f64) {
        self.convs.iter().rev().fold((x, y), |(x, y), c| {
            let f = |v: f64| v * c.stride as f64 - c.pad as f64 + (c.kernel / 2) as f64;
            (f(x), f(y))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_bytes_are_errors() {
        assert!(MmodModel::parse(b"").is_err());
        assert!(MmodModel::parse(&[0x01, 0x01, 0x0a]).is_err());
        assert!(MmodModel::parse(&visage_models::DlibReader::new(&[], "x").remaining().to_le_bytes()).is_err());
    }
}
