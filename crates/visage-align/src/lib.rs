//! Face alignment: from 5 (or 68) landmarks to the canonical chip an embedder expects (its
//! descriptor's `ChipGeometry`), exactly as dlib's `get_face_chip_details(shape, size, padding)`
//! and `extract_image_chip` make it (see `shared/reference/dlib-format.md` section 5).
//!
//! Large faces are first reduced with dlib's 5-tap `pyramid_down<2>` so that bilinear
//! sampling never skips pixels; without it big faces embed up to 0.07 (L2) away from dlib.

#![warn(missing_docs)]

mod bilinear;
pub mod chip;
pub mod pyramid;
mod view;

pub use chip::{extract_chip, face_chip, face_chip_details, AlignError, ChipDetails};
