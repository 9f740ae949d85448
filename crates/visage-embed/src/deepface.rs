//! A DeepFace-style network sized for visage's chips (Taigman et al., 2014): a convolution,
//! max pooling after the first layer only, a second convolution, three locally connected
//! layers (filters not shared across positions: each region of an aligned face learns its
//! own features), and a wide fully connected representation layer. DeepFace's 152x152
//! input and kernels of 11, 9, 9, 7 and 5 become, for chips of about 64 pixels, kernels
//! of 5 and 3. At training a softmax over the training people sits on the representation;
//! the embedder's output is the representation after relu, L2-normalised (non-negative, so
//! the chi-squared distance applies as DeepFace used it).

use serde::{Deserialize, Serialize};
use visage_engine::Layer;

/// The network for `chip` x `chip` inputs with a `dim`-wide representation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeepFaceSpec {
    /// The input side in pixels (the locally connected layers' sizes follow from it).
    pub chip: usize,
    /// The representation's width (the embedding dimension).
    pub dim: usize,
}

/// Channels of the first convolution (DeepFace's C1).
const C1: usize = 32;
/// Channels of the second convolution and of each locally connected layer.
const C: usize = 16;
/// The smallest chip the layers fit.
pub const DEEPFACE_MIN_CHIP: usize = 32;

impl DeepFaceSpec {
    /// The first convolution: 5x5, stride 1, no padding, bias.
    pub const CONV1: &'static str = "c1";
    /// The second convolution (after the pool): 3x3.
    pub const CONV2: &'static str = "c2";
    /// The locally connected layers: 3x3 windows, strides 1, 2 and 1.
    pub const LOCAL: [&'static str; 3] = ["l3", "l4", "l5"];
    /// Strides of the locally connected layers.
    const LOCAL_STRIDES: [usize; 3] = [1, 2, 1];
    /// The representation layer.
    pub const REPRESENTATION: &'static str = "rep";

    /// Why this spec cannot be built, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.chip < DEEPFACE_MIN_CHIP || self.chip > 1024 {
            return Err(format!("a DeepFace-style network needs chips of {DEEPFACE_MIN_CHIP} to 1024 pixels, not {}", self.chip));
        }
        if !(2..=4096).contains(&self.dim) {
            return Err(format!("representation width {} is outside 2..=4096", self.dim));
        }
        Ok(())
    }

    /// The side after each stage: the first convolution, the pool, the second convolution,
    /// then each locally connected layer.
    fn sides(&self) -> [usize; 6] {
        let a = self.chip - 4;
        let b = (a - 3) / 2 + 1;
        let c = b - 2;
        let d = c - 2;
        let e = (d - 3) / 2 + 1;
        [a, b, c, d, e, e - 2]
    }

    /// The network in the engine's vocabulary.
    pub fn layers(&self) -> Vec<Layer> {
        let mut v = vec![Layer::conv(Self::CONV1, 1, 0), Layer::Relu, Layer::MaxPool { size: 3, stride: 2, pad: 0 }, Layer::conv(Self::CONV2, 1, 0), Layer::Relu];
        for (name, stride) in Self::LOCAL.iter().zip(Self::LOCAL_STRIDES) {
            v.push(Layer::locally_connected(*name, stride));
            v.push(Layer::Relu);
        }
        v.push(Layer::fc(Self::REPRESENTATION));
        v.push(Layer::Relu);
        v
    }

    /// The parameter names and shapes the network needs, in order (call [`Self::check`] first).
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let s = self.sides();
        let mut v = vec![
            (format!("{}.weight", Self::CONV1), vec![C1, 3, 5, 5]),
            (format!("{}.bias", Self::CONV1), vec![C1]),
            (format!("{}.weight", Self::CONV2), vec![C, C1, 3, 3]),
            (format!("{}.bias", Self::CONV2), vec![C]),
        ];
        for (i, name) in Self::LOCAL.iter().enumerate() {
            let side = s[3 + i];
            v.push((format!("{name}.weight"), vec![side, side, 3, 3, C, C]));
            v.push((format!("{name}.bias"), vec![side, side, C]));
        }
        v.push((format!("{}.weight", Self::REPRESENTATION), vec![s[5] * s[5] * C, self.dim]));
        v.push((format!("{}.bias", Self::REPRESENTATION), vec![self.dim]));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_64_pixel_chip_gives_the_layer_sizes_worked_out_by_hand() {
        // 64 -5x5-> 60 -pool 3/2-> 29 -3x3-> 27 -lc-> 25 -lc/2-> 12 -lc-> 10; 10*10*16 = 1600.
        let s = DeepFaceSpec { chip: 64, dim: 256 };
        assert_eq!(s.sides(), [60, 29, 27, 25, 12, 10]);
        let shapes = s.parameter_shapes();
        assert_eq!(shapes[4], ("l3.weight".into(), vec![25, 25, 3, 3, 16, 16]));
        assert_eq!(shapes.last().unwrap(), &("rep.bias".into(), vec![256]));
        assert_eq!(shapes[shapes.len() - 2].1, vec![1600, 256]);
        assert!(s.check().is_ok());
        assert!(DeepFaceSpec { chip: 31, dim: 256 }.check().is_err());
        assert!(DeepFaceSpec { chip: 32, dim: 1 }.check().is_err());
        // The smallest chip still leaves the last layer a position.
        assert!(DeepFaceSpec { chip: DEEPFACE_MIN_CHIP, dim: 8 }.sides()[5] >= 1);
    }
}
