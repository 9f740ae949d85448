//! Loading photos as 8-bit RGB, with limits and clear errors.
//!
//! * JPEG goes through libjpeg-turbo's decoder (via mozjpeg) with its defaults (ISLOW IDCT,
//!   fancy upsampling), so the pixels equal what Pillow, and therefore dlib's
//!   `face_recognition`, sees: detections and embeddings can then match dlib exactly.
//! * PNG (8/16-bit, grey, alpha) and WebP go through the `image` crate. Grey is expanded to
//!   RGB, alpha is dropped, 16-bit samples are scaled to 8 bits.
//! * EXIF orientation is applied, so a portrait photo from a phone comes out upright.
//! * The pixel count is checked from the header, before any pixel is decoded, so a
//!   decompression bomb is refused without allocating its pixels.
//! * Truncated, corrupt, empty and non-image input is an [`ImageError`], never a panic.

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};
use std::io::Cursor;
use std::path::Path;
use thiserror::Error;

/// Bounds on what will be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest accepted `width * height`.
    pub max_pixels: u64,
    /// Largest accepted file size in bytes.
    pub max_file_bytes: u64,
}

impl ImageLimits {
    /// 50 megapixels (an 8K frame is 33 MP) and 256 MiB per file.
    pub const DEFAULT: ImageLimits = ImageLimits { max_pixels: 50_000_000, max_file_bytes: 256 << 20 };
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a photo could not be loaded. `what` names the file.
#[derive(Debug, Error)]
pub enum ImageError {
    /// The file could not be read.
    #[error("{what}: cannot read: {source}")]
    Io {
        /// The file.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a JPEG, PNG or WebP file.
    #[error("{what}: not a supported image (JPEG, PNG or WebP)")]
    NotAnImage {
        /// The file.
        what: String,
    },
    /// The data ends early.
    #[error("{what}: the image file is truncated")]
    Truncated {
        /// The file.
        what: String,
    },
    /// The data is damaged.
    #[error("{what}: corrupt image: {reason}")]
    Corrupt {
        /// The file.
        what: String,
        /// The decoder's message.
        reason: String,
    },
    /// Width or height is zero.
    #[error("{what}: the image has no pixels ({width}x{height})")]
    Empty {
        /// The file.
        what: String,
        /// Width.
        width: u64,
        /// Height.
        height: u64,
    },
    /// More pixels than the limit allows.
    #[error("{what}: {width}x{height} is {pixels} pixels, over the limit of {limit} (raise it with --max-pixels)")]
    TooManyPixels {
        /// The file.
        what: String,
        /// Width.
        width: u64,
        /// Height.
        height: u64,
        /// width * height.
        pixels: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is larger than the limit allows.
    #[error("{what}: {bytes} bytes, over the limit of {limit}")]
    FileTooLarge {
        /// The file.
        what: String,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
}

/// Reads and decodes the photo at `path`.
pub fn load_rgb(path: &Path, limits: &ImageLimits) -> Result<RgbImage, ImageError> {
    let what = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| ImageError::Io { what: what.clone(), source })?;
    if meta.is_dir() {
        return Err(ImageError::Io { what, source: std::io::Error::other("is a directory") });
    }
    if meta.len() > limits.max_file_bytes {
        return Err(ImageError::FileTooLarge { what, bytes: meta.len(), limit: limits.max_file_bytes });
    }
    let bytes = std::fs::read(path).map_err(|source| ImageError::Io { what: what.clone(), source })?;
    decode_rgb(&bytes, &what, limits)
}

/// Decodes an in-memory photo; `what` names it in errors.
pub fn decode_rgb(bytes: &[u8], what: &str, limits: &ImageLimits) -> Result<RgbImage, ImageError> {
    decode_rgb_oriented(bytes, what, limits, true)
}

/// Decodes an in-memory photo, applying its EXIF orientation only when `orient` is true
/// (`false` gives the pixels as stored, as PIL's `Image.open` and face_recognition's
/// `load_image_file` do).
pub fn decode_rgb_oriented(bytes: &[u8], what: &str, limits: &ImageLimits, orient: bool) -> Result<RgbImage, ImageError> {
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(ImageError::FileTooLarge { what: what.into(), bytes: bytes.len() as u64, limit: limits.max_file_bytes });
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let img = decode_jpeg(bytes, what, limits)?;
        return Ok(if orient { apply_orientation(img, jpeg_exif_orientation(bytes)) } else { img });
    }
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Png | ImageFormat::WebP)) => f,
        _ => return Err(ImageError::NotAnImage { what: what.into() }),
    };
    let corrupt = |e: image::ImageError| classify_image_error(what, e);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format).into_decoder().map_err(corrupt)?;
    let (w, h) = reader.dimensions();
    check_size(what, w as u64, h as u64, limits)?;
    let orientation = if orient { reader.orientation().ok() } else { None };
    let mut lim = image::Limits::default();
    lim.max_image_width = Some(w);
    lim.max_image_height = Some(h);
    lim.max_alloc = Some(limits.max_pixels.saturating_mul(8).max(1 << 20));
    reader.set_limits(lim).map_err(corrupt)?;
    let dynamic = DynamicImage::from_decoder(reader).map_err(corrupt)?;
    let mut dynamic = dynamic;
    if let Some(o) = orientation {
        dynamic.apply_orientation(o);
    }
    Ok(dynamic.to_rgb8())
}

/// The decoder's message as a sentence: the png crate names chunks by their Debug form
/// (`ChunkType { type: IHDR, critical: true, ... }`), which becomes the chunk's name.
fn readable_reason(reason: &str) -> String {
    let mut s =
        reason.replace("Format error decoding Png: ", "invalid PNG data: ").replace("Format error decoding WebP: ", "invalid WebP data: ");
    while let Some(start) = s.find("ChunkType {") {
        let end = s[start..].find('}').map_or(s.len(), |e| start + e + 1);
        let name = s[start..end].split("type:").nth(1).and_then(|t| t.split(',').next()).map_or("a", str::trim).to_string();
        s.replace_range(start..end, &name);
    }
    s.trim_end_matches('.').to_string()
}

fn classify_image_error(what: &str, e: image::ImageError) -> ImageError {
    let reason = readable_reason(&e.to_string());
    let lower = reason.to_ascii_lowercase();
    if lower.contains("eof") || lower.contains("end of file") || lower.contains("unexpected end") || lower.contains("truncat") {
        ImageError::Truncated { what: what.into() }
    } else {
        ImageError::Corrupt { what: what.into(), reason }
    }
}

fn check_size(what: &str, width: u64, height: u64, limits: &ImageLimits) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::Empty { what: what.into(), width, height });
    }
    let pixels = width.saturating_mul(height);
    if pixels > limits.max_pixels {
        return Err(ImageError::TooManyPixels { what: what.into(), width, height, pixels, limit: limits.max_pixels });
    }
    Ok(())
}

/// libjpeg-turbo decoding. libjpeg reports fatal errors by unwinding (mozjpeg turns them into
/// a Rust unwind without calling the panic hook); they are caught here and become errors.
fn decode_jpeg(bytes: &[u8], what: &str, limits: &ImageLimits) -> Result<RgbImage, ImageError> {
    if !jpeg_is_complete(bytes) {
        return Err(ImageError::Truncated { what: what.into() });
    }
    let result = std::panic::catch_unwind(|| -> Result<RgbImage, ImageError> {
        let corrupt = |e: std::io::Error| ImageError::Corrupt { what: what.into(), reason: e.to_string() };
        let d = mozjpeg::Decompress::new_mem(bytes).map_err(corrupt)?;
        let (w, h) = (d.width() as u64, d.height() as u64);
        check_size(what, w, h, limits)?;
        let cmyk = matches!(d.color_space(), mozjpeg::ColorSpace::JCS_CMYK | mozjpeg::ColorSpace::JCS_YCCK);
        let pixels: Vec<u8> = if cmyk {
            let mut s = d.to_colorspace(mozjpeg::ColorSpace::JCS_CMYK).map_err(corrupt)?;
            let raw: Vec<u8> = s.read_scanlines().map_err(corrupt)?;
            s.finish().map_err(corrupt)?;
            // Adobe writes inverted CMYK: each byte already holds 255 - ink.
            raw.chunks_exact(4)
                .flat_map(|p| {
                    let k = p[3] as u32;
                    [(p[0] as u32 * k / 255) as u8, (p[1] as u32 * k / 255) as u8, (p[2] as u32 * k / 255) as u8]
                })
                .collect()
        } else {
            let mut s = d.rgb().map_err(corrupt)?;
            let raw: Vec<u8> = s.read_scanlines().map_err(corrupt)?;
            s.finish().map_err(corrupt)?;
            raw
        };
        RgbImage::from_raw(w as u32, h as u32, pixels)
            .ok_or_else(|| ImageError::Corrupt { what: what.into(), reason: "short pixel data".into() })
    });
    match result {
        Ok(r) => r,
        Err(payload) => {
            let reason = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "libjpeg error".into());
            Err(ImageError::Corrupt { what: what.into(), reason })
        }
    }
}

/// True when an end-of-image marker follows the first scan. libjpeg silently pads a
/// truncated stream with grey; Pillow refuses it, and so does visage. (FF D9 cannot occur
/// inside entropy-coded data, where every FF byte is followed by 00 or a restart marker.)
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let Some(sos) = bytes.windows(2).position(|w| w == [0xFF, 0xDA]) else { return false };
    bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

/// The EXIF orientation (1..=8) of a JPEG, if it has one.
fn jpeg_exif_orientation(bytes: &[u8]) -> Option<image::metadata::Orientation> {
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        let seg = bytes.get(i + 4..i + 2 + len)?;
        if marker == 0xE1 && seg.starts_with(b"Exif\0\0") {
            return exif_orientation(&seg[6..]).and_then(image::metadata::Orientation::from_exif);
        }
        i += 2 + len;
    }
    None
}

/// Reads tag 0x0112 from IFD0 of a TIFF-structured EXIF block.
fn exif_orientation(tiff: &[u8]) -> Option<u8> {
    let le = match tiff.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at =
        |o: usize| tiff.get(o..o + 2).map(|b| if le { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) });
    let u32_at = |o: usize| {
        tiff.get(o..o + 4).map(|b| {
            let a = [b[0], b[1], b[2], b[3]];
            if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    for e in 0..count.min(512) {
        let entry = ifd + 2 + 12 * e;
        if u16_at(entry)? == 0x0112 {
            let v = u16_at(entry + 8)?;
            return u8::try_from(v).ok().filter(|v| (1..=8).contains(v));
        }
    }
    None
}

fn apply_orientation(img: RgbImage, o: Option<image::metadata::Orientation>) -> RgbImage {
    match o {
        None | Some(image::metadata::Orientation::NoTransforms) => img,
        Some(o) => {
            let mut d = DynamicImage::ImageRgb8(img);
            d.apply_orientation(o);
            d.into_rgb8()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_messages_lose_their_debug_text() {
        let r = readable_reason(
            "Format error decoding Png: CRC error: expected 0xda0be689 have 0x250be689 while decoding ChunkType { type: IHDR, critical: true, private: false, reserved: false, safecopy: false } chunk.",
        );
        assert_eq!(r, "invalid PNG data: CRC error: expected 0xda0be689 have 0x250be689 while decoding IHDR chunk");
    }

    #[test]
    fn exif_orientation_is_read_in_both_byte_orders() {
        // IFD0 with one entry: tag 0x0112, type SHORT, count 1, value 6.
        let le = [b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(exif_orientation(&le), Some(6));
        let be = [b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0];
        assert_eq!(exif_orientation(&be), Some(8));
        assert_eq!(exif_orientation(b"XX"), None);
        assert_eq!(exif_orientation(&le[..12]), None, "truncated EXIF is ignored, not a panic");
    }

    #[test]
    fn non_images_and_empty_input_are_errors() {
        let l = ImageLimits::default();
        assert!(matches!(decode_rgb(b"hello world", "t", &l), Err(ImageError::NotAnImage { .. })));
        assert!(matches!(decode_rgb(b"", "t", &l), Err(ImageError::NotAnImage { .. })));
        assert!(matches!(decode_rgb(&[0xFF, 0xD8, 0xFF], "t", &l), Err(ImageError::Truncated { .. })));
    }
}
