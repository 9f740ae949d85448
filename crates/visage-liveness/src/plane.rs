//! One channel of an image and the colour spaces the texture is read in.

use image::RgbImage;

/// A single-channel 8-bit image.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl Plane {
    /// A plane from row-major pixels; `None` when the length is not `width * height`.
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Option<Self> {
        (data.len() == width * height).then_some(Plane { width, height, data })
    }

    /// Columns.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixel at (x, y).
    pub fn get(&self, x: usize, y: usize) -> u8 {
        self.data[y * self.width + x]
    }

    /// The pixels, row-major.
    pub fn pixels(&self) -> &[u8] {
        &self.data
    }

    /// Bilinear sample at (x, y), inside the plane (clamped at its last row and column).
    pub fn sample(&self, x: f64, y: f64) -> f64 {
        let (x0, y0) = (x.floor().max(0.0) as usize, y.floor().max(0.0) as usize);
        let (fx, fy) = (x - x0 as f64, y - y0 as f64);
        let x1 = (x0 + 1).min(self.width - 1);
        let y1 = (y0 + 1).min(self.height - 1);
        let p = |x: usize, y: usize| self.get(x, y) as f64;
        let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
        let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
        // Exact grid samples stay exact: no blending with a zero weight's rounding.
        if fy == 0.0 {
            return top;
        }
        top * (1.0 - fy) + bottom * fy
    }
}

/// The planes of a colour space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColourSpace {
    /// Luma only (ITU-R BT.601 weights).
    Grey,
    /// Hue, saturation, value (hue scaled to 0..=255).
    Hsv,
    /// JPEG's full-range BT.601 Y, Cb, Cr.
    YCbCr,
}

fn to_u8(v: f64) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// BT.601 luma of one pixel.
pub fn luma(p: [u8; 3]) -> f64 {
    0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
}

fn hsv(p: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = p.map(|c| c as f32);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let h = if delta == 0.0 {
        0.0
    } else if max == r {
        ((g - b) / delta).rem_euclid(6.0)
    } else if max == g {
        (b - r) / delta + 2.0
    } else {
        (r - g) / delta + 4.0
    };
    let s = if max == 0.0 { 0.0 } else { delta / max };
    [to_u8((h / 6.0 * 255.0) as f64), to_u8((s * 255.0) as f64), max as u8]
}

fn ycbcr(p: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = p.map(|c| c as f64);
    [to_u8(luma(p)), to_u8(128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b), to_u8(128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b)]
}

/// The planes of `img` in `space` (one for grey, three otherwise).
pub fn planes(img: &RgbImage, space: ColourSpace) -> Vec<Plane> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let n = match space {
        ColourSpace::Grey => 1,
        _ => 3,
    };
    let mut out: Vec<Vec<u8>> = vec![Vec::with_capacity(w * h); n];
    for p in img.pixels() {
        let v = match space {
            ColourSpace::Grey => [to_u8(luma(p.0)), 0, 0],
            ColourSpace::Hsv => hsv(p.0),
            ColourSpace::YCbCr => ycbcr(p.0),
        };
        for (c, plane) in out.iter_mut().enumerate() {
            plane.push(v[c]);
        }
    }
    out.into_iter().map(|d| Plane { width: w, height: h, data: d }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_conversions_by_hand() {
        // Pure red: hue 0, full saturation and value; Y = 0.299 * 255 = 76.2; Cb = 128 - 43.0 = 85;
        // Cr = 128 + 127.5 = 255.5 -> 255.
        assert_eq!(hsv([255, 0, 0]), [0, 255, 255]);
        assert_eq!(ycbcr([255, 0, 0]), [76, 85, 255]);
        // Pure blue: hue 4/6 of the circle = 170; grey has no hue or saturation.
        assert_eq!(hsv([0, 0, 255]), [170, 255, 255]);
        assert_eq!(hsv([90, 90, 90]), [0, 0, 90]);
        assert_eq!(ycbcr([90, 90, 90]), [90, 128, 128]);
    }

    #[test]
    fn bilinear_sampling() {
        let p = Plane::new(2, 2, vec![0, 100, 200, 50]).unwrap();
        assert_eq!(p.sample(0.0, 0.0), 0.0);
        assert_eq!(p.sample(1.0, 1.0), 50.0);
        // Centre: mean of the four.
        assert!((p.sample(0.5, 0.5) - 87.5).abs() < 1e-12);
        // Along the top row a quarter of the way.
        assert!((p.sample(0.25, 0.0) - 25.0).abs() < 1e-12);
    }
}
