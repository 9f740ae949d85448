//! Embedders trained by visage (`visage train embedder`), run on the engine.
//!
//! A trained model is one safetensors file: the weights under the engine's names
//! (`{layer}.weight` `[out, in, k, k]` for convolutions, `[in, out]` for the fully connected
//! layer, `{layer}.bias`), and in the header's metadata the format ([`TRAINED_FORMAT`]), the
//! model descriptor (id, dimension, chip, input normalisation, thresholds) and the
//! architecture. The training side (visage-train, on burn) writes it; this module reads it
//! and builds the same network from the same [`CnnSpec`], so both compute one function (the
//! parity test in visage-train checks them within 1e-4).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use crate::deepface::DeepFaceSpec;
use visage_core::ModelDescriptor;
use visage_engine::{Layer, Tensor, Weights};

/// The metadata value of key `format`.
pub const TRAINED_FORMAT: &str = "visage-model/1";

/// A small plain CNN: for each entry of `channels` a 3x3 convolution with stride 2 and
/// padding 1, a per-channel affine (batch normalisation folded at export), then ReLU; global average pooling; a fully connected layer to `dim`; the
/// output L2-normalised (the embedder normalises it, so triplet margins mean the same
/// thing at training and at inference).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CnnSpec {
    /// Output channels of each convolution.
    pub channels: Vec<usize>,
    /// The embedding dimension.
    pub dim: usize,
}

impl CnnSpec {
    /// The name of convolution `i`.
    pub fn conv_name(i: usize) -> String {
        format!("conv{i}")
    }

    /// The name of the affine (folded batch normalisation) after convolution `i`.
    pub fn norm_name(i: usize) -> String {
        format!("bn{i}")
    }

    /// The name of the final fully connected layer.
    pub const EMBED: &'static str = "embed";

    /// The network in the engine's vocabulary.
    pub fn layers(&self) -> Vec<Layer> {
        let mut v = Vec::new();
        for i in 0..self.channels.len() {
            v.push(Layer::conv(Self::conv_name(i), 2, 1));
            v.push(Layer::affine(Self::norm_name(i)));
            v.push(Layer::Relu);
        }
        v.push(Layer::GlobalAvgPool);
        v.push(Layer::fc(Self::EMBED));
        v
    }

    /// The parameter names and shapes the network needs, in order.
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut v = Vec::new();
        let mut cin = 3;
        for (i, &c) in self.channels.iter().enumerate() {
            v.push((format!("{}.weight", Self::conv_name(i)), vec![c, cin, 3, 3]));
            v.push((format!("{}.gamma", Self::norm_name(i)), vec![c]));
            v.push((format!("{}.beta", Self::norm_name(i)), vec![c]));
            cin = c;
        }
        v.push((format!("{}.weight", Self::EMBED), vec![cin, self.dim]));
        v.push((format!("{}.bias", Self::EMBED), vec![self.dim]));
        v
    }
}

/// What network a model file holds.
///
/// Stored as the metadata key `architecture`: a small CNN as its [`CnnSpec`]
/// (`{"channels": [...], "dim": D}`), the ResNet-29 as `{"resnet": "dlib-resnet29"}`, the
/// DeepFace-style network as `{"deepface": {"chip": S, "dim": D}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Architecture {
    /// A small CNN trained from scratch; its outputs are L2-normalised.
    SmallCnn(CnnSpec),
    /// dlib's ResNet-29 with weights fine-tuned by visage; its outputs are not normalised,
    /// as dlib's are not.
    Resnet {
        /// Which ResNet.
        resnet: ResnetKind,
    },
    /// A DeepFace-style network with locally connected layers, trained by visage; its
    /// outputs are L2-normalised.
    DeepFace {
        /// Its sizes.
        deepface: DeepFaceSpec,
    },
}

/// The ResNets a model file may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResnetKind {
    /// The layout of `dlib_face_recognition_resnet_model_v1.dat` (see
    /// [`crate::architecture::resnet29_layers`]).
    #[serde(rename = "dlib-resnet29")]
    DlibResnet29,
}

impl Architecture {
    /// The ResNet-29 fine-tuned.
    pub const RESNET29: Architecture = Architecture::Resnet { resnet: ResnetKind::DlibResnet29 };

    /// The network in the engine's vocabulary.
    pub fn layers(&self) -> Vec<Layer> {
        match self {
            Architecture::SmallCnn(s) => s.layers(),
            Architecture::Resnet { .. } => crate::architecture::resnet29_layers(),
            Architecture::DeepFace { deepface } => deepface.layers(),
        }
    }

    /// The parameter names and shapes the network needs, in order.
    pub fn parameter_shapes(&self) -> Vec<(String, Vec<usize>)> {
        match self {
            Architecture::SmallCnn(s) => s.parameter_shapes(),
            Architecture::Resnet { .. } => crate::architecture::resnet29_parameter_shapes(),
            Architecture::DeepFace { deepface } => deepface.parameter_shapes(),
        }
    }

    /// The embedding dimension.
    pub fn dim(&self) -> usize {
        match self {
            Architecture::SmallCnn(s) => s.dim,
            Architecture::Resnet { .. } => crate::descriptor::DLIB_RESNET_DIM,
            Architecture::DeepFace { deepface } => deepface.dim,
        }
    }

    /// Whether the embedder scales outputs to unit length (as the network was trained).
    pub fn normalized(&self) -> bool {
        matches!(self, Architecture::SmallCnn(_) | Architecture::DeepFace { .. })
    }

    /// The small CNN's spec, when it is one.
    pub fn small_cnn(&self) -> Option<&CnnSpec> {
        match self {
            Architecture::SmallCnn(s) => Some(s),
            _ => None,
        }
    }
}

/// A trained model file's contents.
#[derive(Debug, Clone)]
pub struct TrainedModel {
    /// What the model is.
    pub descriptor: ModelDescriptor,
    /// Its architecture.
    pub spec: Architecture,
    /// Its parameters by name: those the network needs, and any others the file carries
    /// (training state kept in checkpoints).
    pub tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    /// Free-form metadata (how it was trained).
    pub provenance: String,
    /// Further metadata a user of the network stores with it (for a liveness classifier: its
    /// thresholds and quality bounds), by key; the keys the format itself uses are refused.
    pub extra: std::collections::BTreeMap<String, String>,
}

/// The metadata keys the format itself uses.
const RESERVED: [&str; 4] = ["format", "descriptor", "architecture", "provenance"];

/// A trained model file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrainedError {
    /// The file could not be read or written.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// Not a visage model file, or a damaged one.
    #[error("{0}: not a visage trained model ({1})")]
    Invalid(String, String),
}

impl TrainedModel {
    /// Serialises to safetensors bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), TRAINED_FORMAT.to_string());
        meta.insert("descriptor".to_string(), serde_json::to_string(&self.descriptor).expect("descriptor"));
        meta.insert("architecture".to_string(), serde_json::to_string(&self.spec).expect("spec"));
        meta.insert("provenance".to_string(), self.provenance.clone());
        for (k, v) in &self.extra {
            assert!(!RESERVED.contains(&k.as_str()), "metadata key {k:?} is the format's own");
            meta.insert(k.clone(), v.clone());
        }
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(n, (shape, data))| (n.clone(), shape.clone(), data.iter().flat_map(|x| x.to_le_bytes()).collect()))
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
            .iter()
            .map(|(n, shape, b)| (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b).expect("view")))
            .collect();
        canonical_header(safetensors::serialize(views, Some(meta)).expect("safetensors serialise"))
    }

    /// Parses safetensors bytes (`path` only names the file in errors).
    pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Self, TrainedError> {
        let invalid = |why: String| TrainedError::Invalid(path.to_string(), why);
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| invalid(e.to_string()))?;
        let meta = header.metadata().clone().ok_or_else(|| invalid("no metadata".into()))?;
        let get = |k: &str| meta.get(k).cloned().ok_or_else(|| invalid(format!("metadata has no {k:?}")));
        let format = get("format")?;
        if format != TRAINED_FORMAT {
            return Err(invalid(format!("format {format:?}, expected {TRAINED_FORMAT:?}")));
        }
        let descriptor: ModelDescriptor = serde_json::from_str(&get("descriptor")?).map_err(|e| invalid(format!("descriptor: {e}")))?;
        let spec: Architecture = serde_json::from_str(&get("architecture")?).map_err(|e| invalid(format!("architecture: {e}")))?;
        if let Architecture::DeepFace { deepface } = &spec {
            deepface.check().map_err(|e| invalid(format!("architecture: {e}")))?;
        }
        let bad_cnn = spec.small_cnn().is_some_and(|s| s.channels.is_empty() || s.channels.iter().any(|&c| c == 0 || c > 4096));
        if spec.dim() != descriptor.dim || bad_cnn {
            return Err(invalid(format!("architecture {spec:?} does not fit the descriptor's {}-d embedding", descriptor.dim)));
        }
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| invalid(e.to_string()))?;
        let mut tensors = HashMap::new();
        for (name, t) in st.tensors() {
            if t.dtype() == safetensors::Dtype::F32 {
                let data: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                tensors.insert(name, (t.shape().to_vec(), data));
            }
        }
        for (name, shape) in spec.parameter_shapes() {
            let t = st.tensor(&name).map_err(|_| invalid(format!("no tensor {name:?}")))?;
            if t.dtype() != safetensors::Dtype::F32 || t.shape() != shape.as_slice() {
                return Err(invalid(format!("{name}: {:?} {:?}, expected F32 {shape:?}", t.dtype(), t.shape())));
            }
            let data: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if data.iter().any(|x| !x.is_finite()) {
                return Err(invalid(format!("{name} holds a value that is not finite")));
            }
            tensors.insert(name, (shape, data));
        }
        let extra = meta.iter().filter(|(k, _)| !RESERVED.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(TrainedModel { descriptor, spec, tensors, provenance: meta.get("provenance").cloned().unwrap_or_default(), extra })
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> Result<Self, TrainedError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| TrainedError::Io(shown.clone(), e))?;
        Self::from_bytes(&bytes, &shown)
    }

    /// Writes the model file atomically (a temporary file, then a rename).
    pub fn save(&self, path: &Path) -> Result<(), TrainedError> {
        let shown = path.display().to_string();
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, self.to_bytes()).map_err(|e| TrainedError::Io(shown.clone(), e))?;
        std::fs::rename(&tmp, path).map_err(|e| TrainedError::Io(shown, e))
    }

    /// The engine's weights.
    pub fn weights(&self) -> Weights {
        let mut w = Weights::new();
        for (name, _) in self.spec.parameter_shapes() {
            let (shape, data) = &self.tensors[&name];
            w.insert(name.clone(), Tensor::new(shape.clone(), data.clone()).expect("shape checked at load"));
        }
        w
    }
}

/// Rewrites a safetensors file's JSON header with its keys sorted, the metadata's too.
///
/// `safetensors::serialize` takes the metadata as a `HashMap`, whose order changes from one
/// process to the next; sorted keys make the same model the same bytes, so a training run
/// repeated from its seed can be compared byte for byte. Tensor offsets are unchanged.
fn canonical_header(bytes: Vec<u8>) -> Vec<u8> {
    use std::collections::BTreeMap;
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8-byte length")) as usize;
    let header: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).expect("our own header");
    let sorted: BTreeMap<String, serde_json::Value> = header
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::Object(m) => (k, serde_json::to_value(m.into_iter().collect::<BTreeMap<_, _>>()).expect("json")),
            v => (k, v),
        })
        .collect();
    let mut json = serde_json::to_vec(&sorted).expect("json");
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

