//! The public face embedder.

use crate::architecture::{parse_resnet, ResnetWeights};
use crate::descriptor::dlib_resnet_descriptor;
use std::sync::Mutex;
use thiserror::Error;
use visage_core::{AlignedChip, FaceEmbedder, ModelDescriptor, StageError};
use visage_engine::{EngineError, EngineOptions, Isa, Network, Workspace};
use visage_models::{FormatError, ModelFile, ModelStore, StoreError};

/// Chips per forward pass when a caller hands over more.
pub const MAX_BATCH: usize = 32;

/// Workspaces kept for reuse (the least recently returned ones are dropped first).
const MAX_POOLED_WORKSPACES: usize = 4;

/// Why an embedder could not be built or run.
#[derive(Debug, Error)]
pub enum EmbedError {
    /// The model file is missing or damaged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The model file is not the dlib face ResNet.
    #[error("not a dlib face ResNet model: {0}")]
    Format(#[from] FormatError),
    /// The network could not be built.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A chip of the wrong size was given.
    #[error("chip {index} has {len} bytes; a chip is {size}x{size} RGB ({} bytes)", size * size * 3)]
    ChipSize {
        /// Position in the batch.
        index: usize,
        /// Its length.
        len: usize,
        /// The chip side the model takes.
        size: usize,
    },
}

/// Computes face descriptors from aligned chips, as dlib's `compute_face_descriptor` does
/// (to within 1e-4; see the parity test), on the engine's network.
///
/// Thread-safe: concurrent calls each take a workspace from an internal pool.
pub struct Embedder {
    net: Network,
    descriptor: ModelDescriptor,
    /// Whether outputs are scaled to unit length (visage's trained models are).
    normalize: bool,
    pool: Mutex<Vec<Workspace>>,
}

impl Embedder {
    /// Loads and verifies the ResNet model from `store`, for the best kernels of this CPU.
    pub fn from_store(store: &ModelStore) -> Result<Self, EmbedError> {
        Self::from_store_with(store, EngineOptions::default())
    }

    /// Loads and verifies the ResNet model from `store`, compiled with `options`.
    pub fn from_store_with(store: &ModelStore, options: EngineOptions) -> Result<Self, EmbedError> {
        let bytes = store.read_verified(ModelFile::ResnetV1)?;
        Self::from_weights(&parse_resnet(&bytes)?, options)
    }

    /// Parses dlib model bytes, packing the weights for the best instruction set available.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EmbedError> {
        Self::from_weights(&parse_resnet(bytes)?, EngineOptions::default())
    }

    /// Compiles already parsed weights on the engine.
    pub fn from_weights(weights: &ResnetWeights, options: EngineOptions) -> Result<Self, EmbedError> {
        let net = Network::new(3, &weights.layers(), &weights.weights(), options)?;
        Ok(Self { net, descriptor: dlib_resnet_descriptor(weights.input_mean), normalize: false, pool: Mutex::new(Vec::new()) })
    }

    /// A model trained by visage (`visage train embedder`, `visage train finetune`), compiled
    /// on the engine; a small CNN's outputs are L2-normalised as at training, a fine-tuned
    /// ResNet's are not (as dlib's are not).
    pub fn from_trained(model: &crate::trained::TrainedModel, options: EngineOptions) -> Result<Self, EmbedError> {
        let net = Network::new(3, &model.spec.layers(), &model.weights(), options)?;
        Ok(Self { net, descriptor: model.descriptor.clone(), normalize: model.spec.normalized(), pool: Mutex::new(Vec::new()) })
    }

    /// A model trained by visage as a classifier (a liveness network), compiled on the
    /// engine: its outputs are the network's raw scores (logits), not normalised.
    pub fn scorer_from_trained(model: &crate::trained::TrainedModel, options: EngineOptions) -> Result<Self, EmbedError> {
        let net = Network::new(3, &model.spec.layers(), &model.weights(), options)?;
        Ok(Self { net, descriptor: model.descriptor.clone(), normalize: false, pool: Mutex::new(Vec::new()) })
    }

    /// The instruction set in use.
    pub fn isa(&self) -> Isa {
        self.net.options().isa
    }

    /// What this model is.
    pub fn descriptor(&self) -> &ModelDescriptor {
        &self.descriptor
    }

    /// Descriptor dimension.
    pub fn dim(&self) -> usize {
        self.descriptor.dim
    }

    /// The descriptor of one chip (row-major RGB bytes of the model's chip size).
    pub fn embed(&self, chip: &[u8]) -> Result<Vec<f32>, EmbedError> {
        Ok(self.embed_batch(&[chip])?.pop().expect("one chip in, one descriptor out"))
    }

    /// Descriptors of many chips, computed in batches of up to [`MAX_BATCH`].
    pub fn embed_batch(&self, chips: &[&[u8]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let size = self.descriptor.chip.size as usize;
        if let Some((index, c)) = chips.iter().enumerate().find(|(_, c)| c.len() != self.descriptor.chip.bytes()) {
            return Err(EmbedError::ChipSize { index, len: c.len(), size });
        }
        let norm = self.descriptor.input;
        let mut out = Vec::with_capacity(chips.len());
        for batch in chips.chunks(MAX_BATCH) {
            let mut ws = self.take_workspace(batch.len())?;
            ws.set_rgb_input(batch, norm.mean, norm.scale)?;
            let mut e = self.net.run(&mut ws);
            if self.normalize {
                for v in &mut e {
                    let n = visage_core::metric::norm(v).max(1e-12);
                    v.iter_mut().for_each(|x| *x /= n);
                }
            }
            out.extend(e);
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            pool.push(ws);
            // Workspaces are kept per batch size; a caller cycling through many sizes must
            // not make the pool grow without bound (one of batch 32 is about 40 MB).
            if pool.len() > MAX_POOLED_WORKSPACES {
                pool.remove(0);
            }
        }
        Ok(out)
    }

    fn take_workspace(&self, batch: usize) -> Result<Workspace, EmbedError> {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = pool.iter().position(|w| w.input_shape().n == batch) {
            return Ok(pool.remove(i));
        }
        drop(pool);
        let s = self.descriptor.chip.size as usize;
        Ok(self.net.workspace(batch, s, s)?)
    }
}

impl FaceEmbedder for Embedder {
    fn descriptor(&self) -> &ModelDescriptor {
        &self.descriptor
    }

    fn embed(&self, chips: &[AlignedChip]) -> Result<Vec<Vec<f32>>, StageError> {
        if let Some((i, c)) = chips.iter().enumerate().find(|(_, c)| c.geometry() != self.descriptor.chip) {
            return Err(StageError::new(format!(
                "chip {i} was cut as {}x{} with padding {}; {} takes {}x{} with padding {}",
                c.geometry().size,
                c.geometry().size,
                c.geometry().padding,
                self.descriptor.id,
                self.descriptor.chip.size,
                self.descriptor.chip.size,
                self.descriptor.chip.padding
            )));
        }
        let raw: Vec<&[u8]> = chips.iter().map(AlignedChip::as_bytes).collect();
        self.embed_batch(&raw).map_err(StageError::new)
    }
}
