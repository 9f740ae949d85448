//! The public face embedder.

use crate::architecture::{parse_resnet, ResnetWeights};
use crate::kernels::Isa;
use crate::network::{FastResnet, Workspace};
use std::sync::Mutex;
use thiserror::Error;
use visage_models::{FormatError, ModelFile, ModelStore, StoreError};

/// Side of the square RGB chip the network takes.
pub const CHIP_SIZE: usize = 150;
/// Bytes in one chip (150 x 150 x RGB).
pub const CHIP_BYTES: usize = CHIP_SIZE * CHIP_SIZE * 3;
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
    /// A chip of the wrong size was given.
    #[error("chip {index} has {len} bytes; a chip is {CHIP_SIZE}x{CHIP_SIZE} RGB ({CHIP_BYTES} bytes)")]
    ChipSize {
        /// Position in the batch.
        index: usize,
        /// Its length.
        len: usize,
    },
}

/// Computes 128-d face descriptors from aligned 150x150 chips, as dlib's
/// `compute_face_descriptor` does (to within 1e-4; see the parity test).
///
/// Thread-safe: concurrent calls each take a workspace from an internal pool.
pub struct Embedder {
    net: FastResnet,
    threshold: f32,
    pool: Mutex<Vec<Workspace>>,
}

impl Embedder {
    /// Loads and verifies the ResNet model from `store`.
    pub fn from_store(store: &ModelStore) -> Result<Self, EmbedError> {
        let bytes = store.read_verified(ModelFile::ResnetV1)?;
        Self::from_bytes(&bytes)
    }

    /// Parses dlib model bytes, packing the weights for the best instruction set available.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EmbedError> {
        Ok(Self::from_weights(&parse_resnet(bytes)?, Isa::detect()))
    }

    /// Packs already parsed weights for `isa` (which must be supported by this CPU).
    pub fn from_weights(weights: &ResnetWeights, isa: Isa) -> Self {
        assert!(isa.is_supported(), "{} is not supported by this CPU", isa.name());
        Self { net: FastResnet::new(weights, isa), threshold: weights.distance_threshold, pool: Mutex::new(Vec::new()) }
    }

    /// The instruction set in use.
    pub fn isa(&self) -> Isa {
        self.net.isa
    }

    /// Descriptor dimension (128).
    pub fn dim(&self) -> usize {
        self.net.dim
    }

    /// The same-person distance threshold stored in the model (0.6).
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The descriptor of one chip.
    pub fn embed(&self, chip: &[u8]) -> Result<Vec<f32>, EmbedError> {
        Ok(self.embed_batch(&[chip])?.pop().expect("one chip in, one descriptor out"))
    }

    /// Descriptors of many chips, computed in batches of up to [`MAX_BATCH`].
    pub fn embed_batch(&self, chips: &[&[u8]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if let Some((index, c)) = chips.iter().enumerate().find(|(_, c)| c.len() != CHIP_BYTES) {
            return Err(EmbedError::ChipSize { index, len: c.len() });
        }
        let mut out = Vec::with_capacity(chips.len());
        for batch in chips.chunks(MAX_BATCH) {
            let mut ws = self.take_workspace(batch.len());
            out.extend(self.net.forward(batch, &mut ws));
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

    fn take_workspace(&self, batch: usize) -> Workspace {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = pool.iter().position(|w| w.batch == batch) {
            return pool.remove(i);
        }
        drop(pool);
        self.net.workspace(batch)
    }
}
