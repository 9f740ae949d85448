//! The descriptor of dlib's face ResNet: the one place its numbers are written.

use visage_core::{ChipGeometry, InputNormalization, LandmarkScheme, ModelDescriptor, Thresholds};

/// The model id bound into galleries of its embeddings.
pub const DLIB_RESNET_ID: &str = "dlib_face_recognition_resnet_model_v1";
/// Embedding dimension.
pub const DLIB_RESNET_DIM: usize = 128;
/// The chip it takes: dlib's `get_face_chip_details(shape, 150, 0.25)`.
pub const DLIB_RESNET_CHIP: ChipGeometry = ChipGeometry { size: 150, padding: 0.25 };
/// Same-person thresholds. L2 0.6 is dlib's own (stored in the model file; LFW's 10-fold
/// protocol picks 0.615); cosine 0.093 and chi-squared 2.86 are the LFW protocol's mean
/// thresholds for those metrics on these embeddings (`visage eval lfw --metric ...`).
pub const DLIB_RESNET_THRESHOLDS: Thresholds = Thresholds { l2: 0.6, cosine: 0.093, chi2: 2.86 };

/// The descriptor of `dlib_face_recognition_resnet_model_v1.dat`, with the input means the
/// file stores.
pub fn dlib_resnet_descriptor(input_mean: [f32; 3]) -> ModelDescriptor {
    ModelDescriptor {
        id: DLIB_RESNET_ID.to_string(),
        dim: DLIB_RESNET_DIM,
        chip: DLIB_RESNET_CHIP,
        landmarks: LandmarkScheme::Dlib5,
        input: InputNormalization { mean: input_mean, scale: 1.0 / 256.0 },
        thresholds: DLIB_RESNET_THRESHOLDS,
    }
}
