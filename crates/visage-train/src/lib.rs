//! Learning face embeddings with burn on the CPU (the Flex backend with autodiff).
//!
//! The pieces a metric-learning run is made of, each tested on its own:
//!
//! - [`distance`]: pairwise distances of a batch of embeddings, squared or with an epsilon
//!   inside the square root, so that a zero distance never makes a NaN gradient;
//! - [`losses`]: the triplet hinge, softmax cross-entropy over identities, binary
//!   cross-entropy from logits;
//! - [`mining`]: online triplet mining in a P x K batch (batch-hard, batch-all, semi-hard);
//! - [`triplet`]: the batch triplet loss ([`TripletLoss`]) and [`stats`], the batch statistics
//!   to log ([`TripletStats`]: active-triplet fraction, mean positive and negative distances);
//! - [`head`]: the Siamese binary head on a pair of embeddings (weighted absolute difference
//!   or weighted chi-squared), and [`head_training`], fitting it on frozen embeddings;
//! - [`folders`] and [`people`]: a folder-per-person photo collection and LFW's people lists;
//! - [`augment`]: flips, shifts, contrast and brightness jitter of training chips;
//! - [`binary`]: training the small CNN as a two-class classifier (live or attack);
//! - [`cnn`]: the small CNN embedder as a trainable module, exported to the engine's model file;
//! - [`embedder_net`]: the embedders trained from scratch (the small CNN, the DeepFace-style
//!   network with locally connected layers) as one module type;
//! - [`layer_net`]: any network of the engine's layer vocabulary as a trainable module (dlib's
//!   ResNet-29 initialised from its weights, for fine-tuning);
//! - [`optimizer_state`]: Adam's moments kept across a checkpoint and a resume;
//! - [`sampler`]: the identity-balanced P x K batch sampler, seeded so a run repeats;
//! - [`schedule`]: the cosine learning-rate decay;
//! - [`softmax`]: softmax training over identities (a classifier on the embedding, DeepFace).
//!
//! The crate is outside the quick start's build (`visage-cli` does not depend on it): burn
//! takes minutes to compile cold.

#![warn(missing_docs)]

pub mod augment;
pub mod binary;
pub mod cnn;
pub mod distance;
pub mod embedder_net;
pub mod folders;
pub mod head;
pub mod head_training;
pub mod layer_net;
pub mod losses;
pub mod mining;
pub mod optimizer_state;
pub mod people;
pub mod sampler;
pub mod schedule;
pub mod softmax;
pub mod stats;
pub mod tensors;
pub mod triplet;

pub use burn;
pub use cnn::SmallCnn;
pub use distance::Metric;
pub use embedder_net::EmbedderNet;
pub use folders::{FaceFolders, Person};
pub use head::{HeadKind, SiameseHead};
pub use head_training::{HeadFit, HeadTraining, LabelledPair};
pub use layer_net::LayerNet;
pub use losses::Reduction;
pub use mining::{Mining, Triplet};
pub use people::PeopleList;
pub use sampler::{PkBatch, PkSampler, Shortfall};
pub use stats::TripletStats;
pub use tensors::train_device;
pub use triplet::{TripletLoss, TripletOutput};
