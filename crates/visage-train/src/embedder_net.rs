//! The embedders `visage train embedder` trains from scratch, as one module type: the small
//! CNN (batch normalisation in training) or a network of the engine's layer vocabulary (the
//! DeepFace-style one, with locally connected layers), each exported to a model file the
//! engine runs.

use crate::cnn::SmallCnn;
use crate::distance::l2_normalize;
use crate::layer_net::LayerNet;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use visage_core::ModelDescriptor;
use visage_embed::{Architecture, TrainedModel};

/// A trainable embedder.
#[derive(Module, Debug)]
pub enum EmbedderNet {
    /// The small CNN.
    Small(SmallCnn),
    /// A network of engine layers (the DeepFace-style one).
    Layers(LayerNet),
}

impl EmbedderNet {
    /// A freshly initialised network of `arch` (the small CNN with burn's initialisation
    /// seeded by the device, the others He-uniform from `seed`); an error for the ResNet-29,
    /// which is fine-tuned (`visage train finetune`), not trained from scratch.
    pub fn new(arch: &Architecture, seed: u64, device: &Device) -> Result<Self, String> {
        match arch {
            Architecture::SmallCnn(spec) => Ok(EmbedderNet::Small(SmallCnn::new(spec, device))),
            Architecture::DeepFace { deepface } => {
                deepface.check()?;
                Ok(EmbedderNet::Layers(LayerNet::initialised(deepface.layers(), &deepface.parameter_shapes(), seed, device)))
            }
            Architecture::Resnet { .. } => Err("the ResNet-29 is fine-tuned from dlib's weights (visage train finetune)".into()),
        }
    }

    /// The network a model file holds (its architecture must be one this type trains).
    pub fn from_model(model: &TrainedModel, device: &Device) -> Result<Self, String> {
        match &model.spec {
            Architecture::SmallCnn(_) => Ok(EmbedderNet::Small(SmallCnn::from_model(model, device))),
            Architecture::DeepFace { .. } => {
                let w = model.weights();
                Ok(EmbedderNet::Layers(LayerNet::new(model.spec.layers(), &model.spec.parameter_shapes(), &w, device)?))
            }
            Architecture::Resnet { .. } => Err("a ResNet-29 model file: continue it with visage train finetune".into()),
        }
    }

    /// The last layer's outputs `[n, dim]` (before normalisation; the classifier's input
    /// with softmax training).
    pub fn scores(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            EmbedderNet::Small(n) => n.scores(x),
            EmbedderNet::Layers(n) => n.forward(x),
        }
    }

    /// Unit-length embeddings `[n, dim]` of normalised chips `[n, 3, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        l2_normalize(self.scores(x), 1e-12)
    }

    /// The model file of these weights as `arch` (the architecture the network was made
    /// for), with `descriptor`.
    pub fn export(&self, arch: &Architecture, descriptor: &ModelDescriptor, provenance: &str) -> TrainedModel {
        match (self, arch) {
            (EmbedderNet::Small(n), Architecture::SmallCnn(spec)) => n.export(spec, descriptor, provenance),
            (EmbedderNet::Layers(n), _) => TrainedModel {
                descriptor: descriptor.clone(),
                spec: arch.clone(),
                tensors: n.tensors(),
                provenance: provenance.to_string(),
                extra: Default::default(),
            },
            (EmbedderNet::Small(_), other) => panic!("a small CNN exported as {other:?}"),
        }
    }
}
