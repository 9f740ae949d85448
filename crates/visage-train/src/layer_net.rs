//! Any network in the engine's layer vocabulary ([`visage_engine::Layer`]) as a trainable
//! burn module: the same layer list the engine compiles, the same parameter names, so a
//! network is initialised from the engine's weights (dlib's ResNet-29, for fine-tuning),
//! trained on burn, and exported back to the engine unchanged in form.
//!
//! Every parameter is held flat (`Param<Tensor<1>>`) and reshaped where it is used, which
//! keeps one module type for every architecture. Affine layers stay fixed per-channel scale
//! and shift, as dlib's are at inference (not batch normalisation in training mode); the
//! residual sum zero-pads the smaller operand at the end of every axis, as dlib's `add_prev`
//! and the engine do.

use crate::tensors::values;
use burn::module::{Module, Param};
use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::HashMap;
use visage_engine::{Layer, Weights};

/// A trainable network: parameters (flat) and the layer list that uses them.
#[derive(Module, Debug)]
pub struct LayerNet {
    /// The parameters, in the order of `names`.
    pub params: Vec<Param<Tensor<1>>>,
    /// What the network computes (not trained).
    #[module(skip)]
    pub layers: Vec<Layer>,
    /// Each parameter's name and shape, in the order of `params`.
    #[module(skip)]
    pub names: Vec<(String, Vec<usize>)>,
    /// Parameter index by name.
    #[module(skip)]
    index: HashMap<String, usize>,
}

impl LayerNet {
    /// The network `layers` with the parameters `shapes` (name, shape) taken from `weights`;
    /// an error names a parameter that is missing or misshapen.
    pub fn new(layers: Vec<Layer>, shapes: &[(String, Vec<usize>)], weights: &Weights, device: &Device) -> Result<Self, String> {
        let mut params = Vec::new();
        for (name, shape) in shapes {
            let t = weights.get(name).ok_or_else(|| format!("no parameter {name:?}"))?;
            if t.shape != *shape {
                return Err(format!("{name}: shape {:?}, expected {shape:?}", t.shape));
            }
            params.push(Param::from_tensor(Tensor::<1>::from_data(TensorData::new(t.data.clone(), [t.data.len()]), device)));
        }
        let index = shapes.iter().enumerate().map(|(i, (n, _))| (n.clone(), i)).collect();
        Ok(LayerNet { params, layers, names: shapes.to_vec(), index })
    }

    /// The parameter `name`, reshaped to its shape (`D` its rank).
    fn param<const D: usize>(&self, name: &str) -> Option<Tensor<D>> {
        let i = *self.index.get(name)?;
        let shape: [usize; D] = self.names[i].1.clone().try_into().ok()?;
        Some(self.params[i].val().reshape(shape))
    }

    /// The network's output for a batch `[n, c, h, w]`: `[n, outputs]` after a fully
    /// connected layer, else the last activation flattened per image in CHW order.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self.run(&self.layers, Act::Map(x)) {
            Act::Flat(y) => y,
            Act::Map(y) => {
                let [n, c, h, w] = y.dims();
                y.reshape([n, c * h * w])
            }
        }
    }

    fn run(&self, layers: &[Layer], mut x: Act) -> Act {
        for l in layers {
            x = self.layer(l, x);
        }
        x
    }

    fn layer(&self, l: &Layer, x: Act) -> Act {
        match l {
            Layer::Conv { name, stride, pad } => {
                let w: Tensor<4> = self.param(&format!("{name}.weight")).expect("convolution weights (checked at construction)");
                let b: Option<Tensor<1>> = self.param(&format!("{name}.bias"));
                Act::Map(conv2d(x.map(), w, b, ConvOptions::new([*stride, *stride], [*pad, *pad], [1, 1], 1)))
            }
            Layer::Affine { name } => {
                let g: Tensor<1> = self.param(&format!("{name}.gamma")).expect("affine gamma");
                let b: Tensor<1> = self.param(&format!("{name}.beta")).expect("affine beta");
                let c = g.dims()[0];
                Act::Map(x.map() * g.reshape([1, c, 1, 1]) + b.reshape([1, c, 1, 1]))
            }
            Layer::Relu => match x {
                Act::Map(t) => Act::Map(relu(t)),
                Act::Flat(t) => Act::Flat(relu(t)),
            },
            // Padded positions are ignored by the engine; burn's max pool pads with -inf, the same.
            Layer::MaxPool { size, stride, pad } => {
                Act::Map(max_pool2d(x.map(), MaxPoolOptions::new([*size, *size]).with_stride([*stride, *stride]).with_padding([*pad, *pad])))
            }
            Layer::AvgPool { size, stride } => Act::Map(avg_pool2d(x.map(), AvgPoolOptions::new([*size, *size]).with_stride([*stride, *stride]))),
            Layer::GlobalAvgPool => {
                let t = x.map();
                let [n, c, h, w] = t.dims();
                Act::Flat(t.reshape([n, c, h * w]).mean_dim(2).reshape([n, c]))
            }
            Layer::FullyConnected { name } => {
                let w: Tensor<2> = self.param(&format!("{name}.weight")).expect("fully connected weights");
                let flat = match x {
                    Act::Flat(t) => t,
                    Act::Map(t) => {
                        let [n, c, h, ww] = t.dims();
                        t.reshape([n, c * h * ww])
                    }
                };
                let y = flat.matmul(w);
                Act::Flat(match self.param::<1>(&format!("{name}.bias")) {
                    Some(b) => {
                        let k = b.dims()[0];
                        y + b.reshape([1, k])
                    }
                    None => y,
                })
            }
            Layer::Residual { main, skip } => {
                let t = x.map();
                let m = self.run(main, Act::Map(t.clone())).map();
                let s = self.run(skip, Act::Map(t)).map();
                let (dm, ds) = (m.dims(), s.dims());
                let big = [dm[0], dm[1].max(ds[1]), dm[2].max(ds[2]), dm[3].max(ds[3])];
                Act::Map(zero_pad(m, big) + zero_pad(s, big))
            }
        }
    }

    /// The trained parameters under their names, for the engine ([`Weights`]) or a model
    /// file.
    pub fn tensors(&self) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
        self.names.iter().zip(&self.params).map(|((n, shape), p)| (n.clone(), (shape.clone(), values(p.val())))).collect()
    }
}

/// An activation: a feature map `[n, c, h, w]` or, after pooling everything, `[n, c]`.
enum Act {
    Map(Tensor<4>),
    Flat(Tensor<2>),
}

impl Act {
    fn map(self) -> Tensor<4> {
        match self {
            Act::Map(t) => t,
            Act::Flat(t) => {
                let [n, c] = t.dims();
                t.reshape([n, c, 1, 1])
            }
        }
    }
}

/// `x` zero-padded at the end of every axis to `dims`.
fn zero_pad(x: Tensor<4>, dims: [usize; 4]) -> Tensor<4> {
    let d = x.dims();
    if d == dims {
        return x;
    }
    Tensor::<4>::zeros(dims, &x.device()).slice_assign([0..d[0], 0..d[1], 0..d[2], 0..d[3]], x)
}

/// The parameter names `layers` use, in forward order (`{conv}.bias` and `{fc}.bias` only
/// where `weights` holds them), with their shapes in `weights`.
pub fn parameters_of(layers: &[Layer], weights: &Weights) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    let mut push = |name: String, optional: bool| match weights.get(&name) {
        Some(t) => out.push((name, t.shape.clone())),
        None if optional => {}
        // Missing required parameters are reported by `LayerNet::new`.
        None => out.push((name, Vec::new())),
    };
    fn walk(layers: &[Layer], push: &mut dyn FnMut(String, bool)) {
        for l in layers {
            match l {
                Layer::Conv { name, .. } => {
                    push(format!("{name}.weight"), false);
                    push(format!("{name}.bias"), true);
                }
                Layer::Affine { name } => {
                    push(format!("{name}.gamma"), false);
                    push(format!("{name}.beta"), false);
                }
                Layer::FullyConnected { name } => {
                    push(format!("{name}.weight"), false);
                    push(format!("{name}.bias"), true);
                }
                Layer::Residual { main, skip } => {
                    walk(main, push);
                    walk(skip, push);
                }
                Layer::Relu | Layer::MaxPool { .. } | Layer::AvgPool { .. } | Layer::GlobalAvgPool => {}
            }
        }
    }
    walk(layers, &mut push);
    out
}

/// The first layers of a network, frozen and run on visage's engine: their outputs are the
/// inputs of the layers that are trained, computed once per chip (the engine is several
/// times faster than burn's forward, and a frozen layer needs no gradient).
pub struct FrozenPrefix {
    net: visage_engine::Network,
    size: usize,
    mean: [f32; 3],
    scale: f32,
}

impl FrozenPrefix {
    /// `layers` (the frozen ones, from the input on) with `weights`, for `size` x `size` chips
    /// normalised as `(pixel - mean) * scale`.
    pub fn new(layers: &[Layer], weights: &Weights, size: usize, mean: [f32; 3], scale: f32) -> Result<Self, String> {
        let net = visage_engine::Network::new(3, layers, weights, visage_engine::EngineOptions::default()).map_err(|e| e.to_string())?;
        Ok(FrozenPrefix { net, size, mean, scale })
    }

    /// The activations after the frozen layers, one per chip, flattened in CHW order (burn's
    /// NCHW), and their shape `[c, h, w]`.
    pub fn features(&self, chips: &[&[u8]]) -> Result<(Vec<Vec<f32>>, [usize; 3]), String> {
        let mut out = Vec::with_capacity(chips.len());
        let mut shape = [0; 3];
        for batch in chips.chunks(32) {
            let mut ws = self.net.workspace(batch.len(), self.size, self.size).map_err(|e| e.to_string())?;
            ws.set_rgb_input(batch, self.mean, self.scale).map_err(|e| e.to_string())?;
            let s = ws.output_shape();
            shape = [s.c, s.h, s.w];
            for nhwc in self.net.run(&mut ws) {
                let mut chw = vec![0f32; nhwc.len()];
                for y in 0..s.h {
                    for x in 0..s.w {
                        for c in 0..s.c {
                            chw[(c * s.h + y) * s.w + x] = nhwc[(y * s.w + x) * s.c + c];
                        }
                    }
                }
                out.push(chw);
            }
        }
        Ok((out, shape))
    }
}

/// A batch `[n, c, h, w]` from activations flattened in CHW order.
pub fn features_tensor(rows: &[&[f32]], shape: [usize; 3], device: &Device) -> Tensor<4> {
    let data: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Tensor::from_data(TensorData::new(data, [rows.len(), shape[0], shape[1], shape[2]]), device)
}
