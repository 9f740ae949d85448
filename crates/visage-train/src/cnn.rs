//! The small fast CNN embedder ([`visage_embed::CnnSpec`]) as a trainable burn module, and its
//! export to the safetensors model file visage's engine runs ([`visage_embed::TrainedModel`]).

use crate::distance::l2_normalize;
use crate::tensors::values;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::module::RunningState;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};
use std::collections::HashMap;
use visage_core::ModelDescriptor;
use visage_embed::{Architecture, CnnSpec, TrainedModel};

/// The trainable network: 3x3 stride-2 convolutions, each followed by batch normalisation
/// and ReLU, global average pooling, a fully connected layer, L2 normalisation. Batch
/// normalisation keeps the pooled features centred: without it a fresh network maps every
/// chip to nearly the same direction and the triplet loss sits at its margin.
#[derive(Module, Debug)]
pub struct SmallCnn {
    /// The convolutions, in order (no bias: the normalisation's shift replaces it).
    pub convs: Vec<Conv2d>,
    /// The batch normalisation after each convolution.
    pub norms: Vec<BatchNorm>,
    /// The embedding layer.
    pub embed: Linear,
}

impl SmallCnn {
    /// A freshly initialised network (burn's default Kaiming-uniform initialisation, seeded
    /// by the device's seed).
    pub fn new(spec: &CnnSpec, device: &Device) -> Self {
        let mut cin = 3;
        let (mut convs, mut norms) = (Vec::new(), Vec::new());
        for &c in &spec.channels {
            convs.push(
                Conv2dConfig::new([cin, c], [3, 3])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_bias(false)
                    .init(device),
            );
            norms.push(BatchNormConfig::new(c).init(device));
            cin = c;
        }
        SmallCnn { convs, norms, embed: LinearConfig::new(cin, spec.dim).init(device) }
    }

    /// Unit-length embeddings `[n, dim]` of normalised chips `[n, 3, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        l2_normalize(self.scores(x), 1e-12)
    }

    /// The last layer's raw outputs `[n, dim]` (logits, when the network is a classifier).
    pub fn scores(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = x;
        for (c, n) in self.convs.iter().zip(&self.norms) {
            x = relu(n.forward(c.forward(x)));
        }
        let [n, c, h, w] = x.dims();
        let pooled = x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c]);
        self.embed.forward(pooled)
    }

    /// The model file: these weights under the engine's names, with `descriptor` and `spec`.
    pub fn export(&self, spec: &CnnSpec, descriptor: &ModelDescriptor, provenance: &str) -> TrainedModel {
        let mut tensors = HashMap::new();
        let mut put = |name: String, t: Vec<f32>, shape: Vec<usize>| {
            tensors.insert(name, (shape, t));
        };
        for (i, c) in self.convs.iter().enumerate() {
            let w = c.weight.val();
            let shape = w.dims().to_vec();
            put(format!("{}.weight", CnnSpec::conv_name(i)), values(w), shape);
            // Inference-time normalisation folded into an affine: gamma / sqrt(var + eps) and
            // beta - mean * that; the raw state is kept too, for resuming.
            let n = &self.norms[i];
            let (g, b) = (values(n.gamma.val()), values(n.beta.val()));
            let (m, v) = (values(n.running_mean.value()), values(n.running_var.value()));
            let scale: Vec<f32> = g.iter().zip(&v).map(|(g, v)| (*g as f64 / (*v as f64 + n.epsilon).sqrt()) as f32).collect();
            let shift: Vec<f32> = b.iter().zip(m.iter().zip(&scale)).map(|(b, (m, s))| b - m * s).collect();
            let name = CnnSpec::norm_name(i);
            let c = g.len();
            put(format!("{name}.gamma"), scale, vec![c]);
            put(format!("{name}.beta"), shift, vec![c]);
            put(format!("{name}.train_gamma"), g, vec![c]);
            put(format!("{name}.train_beta"), b, vec![c]);
            put(format!("{name}.running_mean"), m, vec![c]);
            put(format!("{name}.running_var"), v, vec![c]);
        }
        let w = self.embed.weight.val();
        let shape = w.dims().to_vec();
        put(format!("{}.weight", CnnSpec::EMBED), values(w), shape);
        let b = self.embed.bias.as_ref().expect("the embedding layer has a bias").val();
        let shape = b.dims().to_vec();
        put(format!("{}.bias", CnnSpec::EMBED), values(b), shape);
        TrainedModel { descriptor: descriptor.clone(), spec: Architecture::SmallCnn(spec.clone()), tensors, provenance: provenance.to_string(), extra: Default::default() }
    }

    /// A network with the weights of a small CNN's model file (to resume training from a
    /// checkpoint); the caller has checked that the file holds one.
    pub fn from_model(model: &TrainedModel, device: &Device) -> Self {
        let mut net = Self::new(model.spec.small_cnn().expect("a small CNN's model file"), device);
        let tensor4 = |name: String| {
            let (shape, data) = &model.tensors[&name];
            Param::from_tensor(Tensor::<4>::from_data(TensorData::new(data.clone(), [shape[0], shape[1], shape[2], shape[3]]), device))
        };
        let tensor1 = |name: String| {
            let (shape, data) = &model.tensors[&name];
            Param::from_tensor(Tensor::<1>::from_data(TensorData::new(data.clone(), [shape[0]]), device))
        };
        let vector1 = |name: String| {
            let (shape, data) = &model.tensors[&name];
            Tensor::<1>::from_data(TensorData::new(data.clone(), [shape[0]]), device)
        };
        for (i, c) in net.convs.iter_mut().enumerate() {
            c.weight = tensor4(format!("{}.weight", CnnSpec::conv_name(i)));
            let name = CnnSpec::norm_name(i);
            let n = &mut net.norms[i];
            if model.tensors.contains_key(&format!("{name}.train_gamma")) {
                n.gamma = tensor1(format!("{name}.train_gamma"));
                n.beta = tensor1(format!("{name}.train_beta"));
                n.running_mean = RunningState::new(vector1(format!("{name}.running_mean")));
                n.running_var = RunningState::new(vector1(format!("{name}.running_var")));
            } else {
                // Only the folded affine: mean 0 and var 1 - eps give back exactly it.
                n.gamma = tensor1(format!("{name}.gamma"));
                n.beta = tensor1(format!("{name}.beta"));
                let c = model.tensors[&format!("{name}.gamma")].0[0];
                n.running_mean = RunningState::new(Tensor::zeros([c], device));
                n.running_var = RunningState::new(Tensor::ones([c], device).sub_scalar(n.epsilon));
            }
        }
        let (shape, data) = &model.tensors[&format!("{}.weight", CnnSpec::EMBED)];
        net.embed.weight = Param::from_tensor(Tensor::<2>::from_data(TensorData::new(data.clone(), [shape[0], shape[1]]), device));
        net.embed.bias = Some(tensor1(format!("{}.bias", CnnSpec::EMBED)));
        net
    }
}

/// Chips (row-major RGB bytes, `size` x `size`) as the network's input `[n, 3, size, size]`,
/// normalised as the descriptor says (`(x - mean) * scale`), as the engine does.
pub fn chips_tensor(chips: &[&[u8]], size: usize, descriptor: &ModelDescriptor, device: &Device) -> Tensor<4> {
    let (mean, scale) = (descriptor.input.mean, descriptor.input.scale);
    let plane = size * size;
    let mut v = vec![0f32; chips.len() * 3 * plane];
    for (n, chip) in chips.iter().enumerate() {
        assert_eq!(chip.len(), 3 * plane, "chip {n} is not {size}x{size} RGB");
        for p in 0..plane {
            for c in 0..3 {
                v[(n * 3 + c) * plane + p] = (chip[p * 3 + c] as f32 - mean[c]) * scale;
            }
        }
    }
    Tensor::from_data(TensorData::new(v, [chips.len(), 3, size, size]), device)
}
