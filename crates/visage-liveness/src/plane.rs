//! One channel of an image and the colour spaces the texture is read in.

use image::RgbImage;
use visage_core::vectorised;

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

/// HSV of one pixel, each scaled to 0..=255 (hue: 0 red, 85 green, 170 blue).
pub fn hsv(p: [u8; 3]) -> [u8; 3] {
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

/// JPEG's full-range BT.601 YCbCr of one pixel.
pub fn ycbcr(p: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = p.map(|c| c as f64);
    [to_u8(luma(p)), to_u8(128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b), to_u8(128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b)]
}

/// Every plane the texture is read in, converted in one pass over the pixels: luma (which is
/// also YCbCr's Y, so it is converted once), H, S, V, and the chroma Cb and Cr.
#[derive(Debug, Clone, PartialEq)]
pub struct TexturePlanes {
    /// BT.601 luma: the grey plane and YCbCr's Y.
    pub luma: Plane,
    /// Hue, saturation, value.
    pub hsv: [Plane; 3],
    /// Cb, Cr.
    pub chroma: [Plane; 2],
}

impl TexturePlanes {
    /// The planes of `img`, the same pixel for pixel as [`luma`], [`hsv`](fn@hsv) and
    /// [`ycbcr`](fn@ycbcr) (checked on every colour in the tests), computed branch-free so
    /// that the loop vectorises.
    pub fn of(img: &RgbImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let n = w * h;
        let mut out: [Vec<u8>; 6] = std::array::from_fn(|_| vec![0u8; n]);
        let [y, hu, sa, va, cb, cr] = &mut out;
        convert(img.as_raw(), y, hu, sa, va, cb, cr);
        let [y, hu, sa, va, cb, cr] = out.map(|data| Plane { width: w, height: h, data });
        TexturePlanes { luma: y, hsv: [hu, sa, va], chroma: [cb, cr] }
    }
}

vectorised! {
/// The six planes of interleaved RGB pixels; the operations of [`luma`], [`hsv`](fn@hsv) and
/// [`ycbcr`](fn@ycbcr) in the same order on the same types, with selects for their branches.
fn convert(rgb: &[u8], y: &mut [u8], hu: &mut [u8], sa: &mut [u8], va: &mut [u8], cb: &mut [u8], cr: &mut [u8]) {
    let n = y.len();
    let (hu, sa, va, cb, cr) = (&mut hu[..n], &mut sa[..n], &mut va[..n], &mut cb[..n], &mut cr[..n]);
    // to_u8, with the cast done by adding 2^52 (2^23 in f32): the sum is exact, and its low
    // mantissa bits are the clamped integer. Unlike Rust's saturating `as` casts, this
    // vectorises. (Nothing here is NaN: the divisions by zero are selected away.)
    #[inline(always)]
    fn byte(v: f64) -> u8 {
        (v.round().clamp(0.0, 255.0) + 4503599627370496.0).to_bits() as u8
    }
    // The same on f32 (widening to f64 is exact, and rounding and clamping commute with it).
    #[inline(always)]
    fn byte_f32(v: f32) -> u8 {
        (v.round().clamp(0.0, 255.0) + 8388608.0).to_bits() as u8
    }
    for (i, p) in rgb[..3 * n].chunks_exact(3).enumerate() {
        let (r8, g8, b8) = (p[0], p[1], p[2]);
        let [r, g, b] = [r8, g8, b8].map(|c| c as f64);
        y[i] = byte(0.299 * r + 0.587 * g + 0.114 * b);
        cb[i] = byte(128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b);
        cr[i] = byte(128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b);
        let [r, g, b] = [r8, g8, b8].map(|c| c as f32);
        let max = r.max(g).max(b);
        let min = r.min(g).min(b);
        let delta = max - min;
        let (is_r, is_g) = (max == r, max == g);
        let num = if is_r { g - b } else if is_g { b - r } else { r - g };
        let q = num / delta;
        // rem_euclid(6) of a value in [-1, 1] adds 6 to a negative one; the other sectors add
        // their offset.
        let add = if is_r { if q < 0.0 { 6.0 } else { 0.0 } } else if is_g { 2.0 } else { 4.0 };
        let h = if delta == 0.0 { 0.0 } else { q + add };
        let s = if max == 0.0 { 0.0 } else { delta / max };
        hu[i] = byte_f32(h / 6.0 * 255.0);
        sa[i] = byte_f32(s * 255.0);
        va[i] = byte_f32(max);
    }
}
}

/// The planes of `img` in `space` (one for grey, three otherwise).
pub fn planes(img: &RgbImage, space: ColourSpace) -> Vec<Plane> {
    let TexturePlanes { luma, hsv, chroma: [cb, cr] } = TexturePlanes::of(img);
    match space {
        ColourSpace::Grey => vec![luma],
        ColourSpace::Hsv => hsv.into(),
        ColourSpace::YCbCr => vec![luma, cb, cr],
    }
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
    fn the_one_pass_conversion_agrees_with_the_definitions_on_every_colour() {
        // One 256 x 256 image per red value: every (r, g, b), with each vector unit.
        let images: Vec<RgbImage> = (0..=255u8).map(|r| RgbImage::from_fn(256, 256, |g, b| image::Rgb([r, g as u8, b as u8]))).collect();
        let want: Vec<[u8; 6]> = images
            .iter()
            .flat_map(|img| img.pixels())
            .map(|p| {
                let (hsv, ycc) = (hsv(p.0), ycbcr(p.0));
                assert_eq!(to_u8(luma(p.0)), ycc[0]);
                [ycc[0], hsv[0], hsv[1], hsv[2], ycc[1], ycc[2]]
            })
            .collect();
        visage_core::vector::at_each_level(|level| {
            for (img, want) in images.iter().zip(want.chunks(256 * 256)) {
                let t = TexturePlanes::of(img);
                for (i, (p, want)) in img.pixels().zip(want).enumerate() {
                    let got =
                        [t.luma.data[i], t.hsv[0].data[i], t.hsv[1].data[i], t.hsv[2].data[i], t.chroma[0].data[i], t.chroma[1].data[i]];
                    assert_eq!(&got, want, "{:?} at {level:?}", p.0);
                }
            }
        });
        // An empty image has empty planes.
        assert_eq!(planes(&RgbImage::new(0, 3), ColourSpace::Hsv)[2].pixels().len(), 0);
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
