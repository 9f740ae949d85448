//! dlib's serialization format (`dlib/serialize.h`, `float_details.h`, `cuda/tensor.h`).
//!
//! Every read is bounds-checked: a truncated or foreign file yields a [`FormatError`] naming
//! the byte offset and what was being read, never a panic.

use thiserror::Error;

/// A malformed, truncated or foreign dlib stream.
#[derive(Debug, Error, Clone, PartialEq)]
#[error("{context}: {message} at byte {offset}")]
pub struct FormatError {
    /// What file or structure was being parsed (e.g. "dlib_face_recognition_resnet_model_v1.dat").
    pub context: String,
    /// Byte offset in the stream where the problem was found.
    pub offset: usize,
    /// What went wrong.
    pub message: String,
}

/// A dense float tensor as dlib stores it: NCHW dimensions and row-major data.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// (num_samples, k, nr, nc).
    pub dims: [usize; 4],
    /// `dims.iter().product()` values.
    pub data: Vec<f32>,
}

impl Tensor {
    /// Total number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// A cursor over the bytes of a dlib-serialized object.
pub struct DlibReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    context: String,
}

impl<'a> DlibReader<'a> {
    /// Starts reading `bytes`; `context` names the stream in error messages.
    pub fn new(bytes: &'a [u8], context: impl Into<String>) -> Self {
        Self { bytes, pos: 0, context: context.into() }
    }

    /// Current byte offset.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// An error at the current offset.
    pub fn error(&self, message: impl Into<String>) -> FormatError {
        FormatError { context: self.context.clone(), offset: self.pos, message: message.into() }
    }

    /// Fails unless every byte has been consumed (a parse that stops short means a foreign file).
    pub fn expect_end(&self) -> Result<(), FormatError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.error(format!("{} unexpected trailing bytes", self.remaining())))
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], FormatError> {
        if self.remaining() < n {
            return Err(self.error(format!("truncated while reading {what} (need {n} bytes, {} left)", self.remaining())));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A variable-length signed integer: a control byte (low nibble = byte count, bit 7 = sign)
    /// followed by the little-endian magnitude.
    pub fn int(&mut self) -> Result<i64, FormatError> {
        let start = self.pos;
        let control = self.take(1, "integer control byte")?[0];
        let n = (control & 0x0F) as usize;
        if n > 8 || control & 0x70 != 0 {
            self.pos = start;
            return Err(self.error(format!("invalid integer control byte 0x{control:02x}")));
        }
        let mag = self.take(n, "integer magnitude")?;
        let mut v: u64 = 0;
        for (i, b) in mag.iter().enumerate() {
            v |= (*b as u64) << (8 * i);
        }
        if v > i64::MAX as u64 {
            self.pos = start;
            return Err(self.error("integer out of range"));
        }
        Ok(if control & 0x80 != 0 { -(v as i64) } else { v as i64 })
    }

    /// A non-negative integer that must fit in `usize` and be at most `max` (guards allocations).
    pub fn size(&mut self, what: &str, max: usize) -> Result<usize, FormatError> {
        let start = self.pos;
        let v = self.int()?;
        if v < 0 || v as u64 > max as u64 {
            self.pos = start;
            return Err(self.error(format!("{what} = {v} is out of range 0..={max}")));
        }
        Ok(v as usize)
    }

    /// An integer that must equal `expected` (versions, fixed fields).
    pub fn expect_int(&mut self, expected: i64, what: &str) -> Result<(), FormatError> {
        let start = self.pos;
        let v = self.int()?;
        if v != expected {
            self.pos = start;
            return Err(self.error(format!("{what}: expected {expected}, found {v}")));
        }
        Ok(())
    }

    /// A `float_details` value (int64 mantissa, int16 exponent), exactly as a double.
    pub fn double(&mut self) -> Result<f64, FormatError> {
        let start = self.pos;
        if let Some(&b) = self.bytes.get(self.pos) {
            if b & 0x70 != 0 {
                return Err(self.error("float in the old ASCII format is not supported"));
            }
        }
        let mantissa = self.int()?;
        let exponent = self.int()?;
        match exponent {
            32000 => Ok(f64::INFINITY),
            32001 => Ok(f64::NEG_INFINITY),
            32002 => Ok(f64::NAN),
            e if (-1100..=1100).contains(&e) => Ok(ldexp(mantissa as f64, e as i32)),
            e => {
                self.pos = start;
                Err(self.error(format!("float exponent {e} out of range")))
            }
        }
    }

    /// A `float_details` value rounded to `f32` (dlib stores `float`s this way; exact for them).
    pub fn float(&mut self) -> Result<f32, FormatError> {
        Ok(self.double()? as f32)
    }

    /// A bool stored as the ASCII byte '1' or '0'.
    pub fn boolean(&mut self) -> Result<bool, FormatError> {
        let b = self.take(1, "bool")?[0];
        match b {
            b'1' => Ok(true),
            b'0' => Ok(false),
            other => {
                self.pos -= 1;
                Err(self.error(format!("invalid bool byte 0x{other:02x}")))
            }
        }
    }

    /// A length-prefixed string (at most 256 bytes: dlib only stores short tags).
    pub fn string(&mut self) -> Result<String, FormatError> {
        let n = self.size("string length", 256)?;
        let raw = self.take(n, "string")?;
        String::from_utf8(raw.to_vec()).map_err(|_| self.error("string is not UTF-8"))
    }

    /// A string that must equal one of `allowed`; returns which one.
    pub fn expect_tag(&mut self, allowed: &[&str]) -> Result<String, FormatError> {
        let start = self.pos;
        let s = self.string()?;
        if allowed.contains(&s.as_str()) {
            Ok(s)
        } else {
            self.pos = start;
            Err(self.error(format!("expected layer record {allowed:?}, found {s:?}")))
        }
    }

    /// A `resizable_tensor`: version 2, four dimensions, raw little-endian f32 data.
    pub fn tensor(&mut self) -> Result<Tensor, FormatError> {
        self.expect_int(2, "tensor version")?;
        let mut dims = [0usize; 4];
        for d in dims.iter_mut() {
            *d = self.size("tensor dimension", 1 << 28)?;
        }
        let n = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= self.remaining() / 4)
            .ok_or_else(|| self.error(format!("tensor {dims:?} larger than the rest of the file")))?;
        let raw = self.take(n * 4, "tensor data")?;
        let data = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Ok(Tensor { dims, data })
    }

    /// An `alias_tensor`: version 1 and four dimensions, no data. Returns the dimensions.
    pub fn alias_tensor(&mut self) -> Result<[usize; 4], FormatError> {
        self.expect_int(1, "alias_tensor version")?;
        let mut dims = [0usize; 4];
        for d in dims.iter_mut() {
            *d = self.size("alias_tensor dimension", 1 << 28)?;
        }
        Ok(dims)
    }

    /// A `dlib::matrix` whose elements are `float_details`: returns (rows, cols, row-major data).
    pub fn matrix(&mut self, max_elems: usize) -> Result<(usize, usize, Vec<f64>), FormatError> {
        let start = self.pos;
        let nr = -self.int()?;
        let nc = -self.int()?;
        if nr < 0 || nc < 0 || (nr as u64).saturating_mul(nc as u64) > max_elems as u64 {
            self.pos = start;
            return Err(self.error(format!("matrix of {nr}x{nc} is not a valid new-format matrix")));
        }
        let (nr, nc) = (nr as usize, nc as usize);
        let mut data = Vec::with_capacity(nr * nc);
        for _ in 0..nr * nc {
            data.push(self.double()?);
        }
        Ok((nr, nc, data))
    }
}

/// `x * 2^e`, exact for the ranges dlib writes.
fn ldexp(x: f64, e: i32) -> f64 {
    // Split the scaling so that neither factor overflows or underflows prematurely.
    let mut v = x;
    let mut e = e;
    while e > 1000 {
        v *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        v *= 2f64.powi(-1000);
        e += 1000;
    }
    v * 2f64.powi(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_the_documented_examples() {
        let bytes = [0x01, 0x02, 0x81, 0x1c, 0x01, 0x00, 0x02, 0xe8, 0x03, 0x82, 0x1d, 0x0c];
        let mut r = DlibReader::new(&bytes, "test");
        assert_eq!(r.int().unwrap(), 2);
        assert_eq!(r.int().unwrap(), -28);
        assert_eq!(r.int().unwrap(), 0);
        assert_eq!(r.int().unwrap(), 1000);
        assert_eq!(r.int().unwrap(), -3101);
        r.expect_end().unwrap();
    }

    #[test]
    fn float_details_decode_exactly() {
        // 0xa3d70a * 2^-28 = 0.04 (as a float).
        let bytes = [0x03, 0x0a, 0xd7, 0xa3, 0x81, 0x1c];
        let mut r = DlibReader::new(&bytes, "test");
        let v = r.float().unwrap();
        assert_eq!(v, 0.04f32);
    }

    #[test]
    fn truncation_is_an_error_with_an_offset() {
        let bytes = [0x02, 0xe8];
        let mut r = DlibReader::new(&bytes, "thing.dat");
        let e = r.int().unwrap_err();
        assert_eq!(e.offset, 1);
        assert!(e.to_string().contains("truncated"), "{e}");
        assert!(e.to_string().contains("thing.dat"), "{e}");
    }

    #[test]
    fn tensor_reads_raw_floats_and_rejects_oversized_claims() {
        let mut bytes = vec![0x01, 0x02, 0x01, 0x01, 0x01, 0x02, 0x01, 0x01, 0x01, 0x01];
        bytes.extend_from_slice(&1.5f32.to_le_bytes());
        bytes.extend_from_slice(&(-2.0f32).to_le_bytes());
        let mut r = DlibReader::new(&bytes, "t");
        let t = r.tensor().unwrap();
        assert_eq!(t.dims, [1, 2, 1, 1]);
        assert_eq!(t.data, vec![1.5, -2.0]);
        // A tensor claiming 2^40 elements in a tiny file must fail cleanly, not allocate.
        let bytes = [0x01, 0x02, 0x04, 0, 0, 0, 0x01, 0x04, 0, 0, 0, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01];
        let mut r = DlibReader::new(&bytes, "t");
        assert!(r.tensor().is_err());
    }

    #[test]
    fn bools_and_strings() {
        let bytes = [b'1', b'0', 0x01, 0x03, b'a', b'b', b'c', b'x'];
        let mut r = DlibReader::new(&bytes, "t");
        assert!(r.boolean().unwrap());
        assert!(!r.boolean().unwrap());
        assert_eq!(r.string().unwrap(), "abc");
        assert!(r.boolean().is_err());
    }
}
