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
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d, unfold4d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions, UnfoldOptions};
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::HashMap;
use visage_core::SeededRng;
use visage_engine::{Layer, Tensor as EngineTensor, Weights};

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

    /// The network `layers` with freshly drawn parameters of `shapes` ([`initial_weights`]).
    pub fn initialised(layers: Vec<Layer>, shapes: &[(String, Vec<usize>)], seed: u64, device: &Device) -> Self {
        Self::new(layers, shapes, &initial_weights(shapes, seed), device).expect("initial weights have the shapes asked for")
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
            Layer::LocallyConnected { name, stride } => {
                let wname = format!("{name}.weight");
                let [oh, ow, k, _, ci, co]: [usize; 6] = self.names[self.index[&wname]].1.clone().try_into().expect("a locally connected weight of rank 6");
                let w: Tensor<6> = self.param(&wname).expect("locally connected weights");
                let t = x.map();
                let n = t.dims()[0];
                // Windows `[n, ci * k * k, positions]` (channel, then row, then column of the
                // window), one small product per position: `[positions, n, ci k k] x
                // [positions, ci k k, co]`.
                let cols = unfold4d(t, [k, k], UnfoldOptions::new([*stride, *stride], [0, 0], [1, 1]));
                let positions = cols.dims()[2];
                assert_eq!(positions, oh * ow, "{name}: the input gives {positions} positions, the weights are for {oh}x{ow}");
                let cols = cols.permute([2, 0, 1]);
                let w = w.reshape([positions, k, k, ci, co]).permute([0, 3, 1, 2, 4]).reshape([positions, ci * k * k, co]);
                let mut y = cols.matmul(w).permute([1, 2, 0]); // [n, co, positions]
                if let Some(b) = self.param::<3>(&format!("{name}.bias")) {
                    y = y + b.reshape([positions, co]).swap_dims(0, 1).reshape([1, co, positions]);
                }
                Act::Map(y.reshape([n, co, oh, ow]))
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
                Layer::FullyConnected { name } | Layer::LocallyConnected { name, .. } => {
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

/// Parameters of `shapes` for training from scratch, drawn from `seed`: weights He-uniform
/// (`U(-b, b)`, `b = sqrt(6 / fan_in)`, which keeps a relu network's activations at one
/// scale; fan-in is `in k k` for a convolution `[out, in, k, k]`, `k k in` for a locally
/// connected layer `[oh, ow, k, k, in, out]`, `in` for a fully connected one `[in, out]`),
/// biases and affine shifts zero, affine scales one.
pub fn initial_weights(shapes: &[(String, Vec<usize>)], seed: u64) -> Weights {
    let mut rng = SeededRng::new(seed);
    let mut w = Weights::new();
    for (name, shape) in shapes {
        let len: usize = shape.iter().product();
        let data = if name.ends_with(".weight") {
            let fan_in: usize = match shape.len() {
                4 => shape[1..].iter().product(),
                6 => shape[2..5].iter().product(),
                _ => shape[0],
            };
            let b = (6.0 / fan_in.max(1) as f64).sqrt();
            (0..len).map(|_| rng.range(-b, b) as f32).collect()
        } else if name.ends_with(".gamma") {
            vec![1.0; len]
        } else {
            vec![0.0; len]
        };
        w.insert(name.clone(), EngineTensor::new(shape.clone(), data).expect("data of the shape's size"));
    }
    w
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
