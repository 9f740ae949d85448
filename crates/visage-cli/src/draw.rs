//! Drawing detections on a photo and saving it.

use anyhow::{Context, Result};
use std::path::Path;
use visage::{Face, RgbImage};

const BOX: [u8; 3] = [0, 230, 64];
const MARK: [u8; 3] = [255, 40, 40];

fn put(img: &mut RgbImage, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && x < img.width() as i64 && y < img.height() as i64 {
        img.put_pixel(x as u32, y as u32, image::Rgb(c));
    }
}

/// Draws each face's rectangle and landmarks; line width scales with the photo.
pub fn draw_faces(img: &mut RgbImage, faces: &[Face]) {
    let t = ((img.width().max(img.height()) / 400) as i64).max(1);
    for f in faces {
        let r = f.detection;
        for k in 0..t {
            for x in r.left..=r.right {
                put(img, x, r.top + k, BOX);
                put(img, x, r.bottom - k, BOX);
            }
            for y in r.top..=r.bottom {
                put(img, r.left + k, y, BOX);
                put(img, r.right - k, y, BOX);
            }
        }
        for p in &f.landmarks {
            let rad = t + 1;
            for dy in -rad..=rad {
                for dx in -rad..=rad {
                    if dx * dx + dy * dy <= rad * rad {
                        put(img, p.x + dx, p.y + dy, MARK);
                    }
                }
            }
        }
    }
}

/// The formats a drawing can be written in, by file extension.
pub const DRAW_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// Checks that `path`'s extension names a format [`save`] writes (PNG, JPEG, lossless WebP).
pub fn check_format(path: &Path) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if DRAW_EXTENSIONS.contains(&ext.as_str()) {
        return Ok(());
    }
    let what = if ext.is_empty() { "has no extension".to_string() } else { format!("ends in .{ext}") };
    anyhow::bail!("{}: the drawing's name {what}; use .png, .jpg or .webp", path.display())
}

/// Saves in the format the extension names: PNG, JPEG (.jpg/.jpeg, quality 90) or lossless
/// WebP; any other name is refused ([`check_format`]).
pub fn save(img: &RgbImage, path: &Path) -> Result<()> {
    check_format(path)?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if ext == "webp" {
        let mut bytes = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut bytes)
            .encode(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8)
            .context("encoding WebP")?;
        return std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()));
    }
    if ext == "jpg" || ext == "jpeg" {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_size(img.width() as usize, img.height() as usize);
        c.set_quality(90.0);
        let mut s = c.start_compress(Vec::new()).context("starting JPEG encoder")?;
        s.write_scanlines(img.as_raw()).context("encoding JPEG")?;
        let bytes = s.finish().context("encoding JPEG")?;
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
    } else {
        img.save_with_format(path, image::ImageFormat::Png).with_context(|| format!("writing {}", path.display()))
    }
}
