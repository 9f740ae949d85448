//! dlib's `transform_image` with `interpolate_bilinear` for an affine map: bilinear sampling in
//! double with truncation, black where a sample's 2x2 neighbourhood leaves the image.

use crate::view::View;
use visage_core::{vectorised, RgbImage};

/// The map from an output pixel (col, row) to the source point
/// `(ax col + bx row + x0, ay col + by row + y0)`, evaluated in that order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Affine {
    pub ax: f64,
    pub bx: f64,
    pub x0: f64,
    pub ay: f64,
    pub by: f64,
    pub y0: f64,
}

/// The `size` x `size` image of `src` sampled at `map`.
///
/// dlib's arithmetic, value for value: per channel
/// `(1 - tb) ((1 - lr) a + lr b) + tb ((1 - lr) c + lr d)` in f64, truncated. Each row is done
/// in three passes so that the arithmetic vectorises: the sample points, their weights and
/// whether they are inside (vectorised); the two pixel pairs each reads (scalar loads); the
/// blend of each channel (vectorised).
pub(crate) fn sample_bilinear(src: View<'_>, size: usize, map: Affine) -> RgbImage {
    let mut out = vec![0u8; size * size * 3];
    let mut row = Row::new(size);
    for (r, o) in out.chunks_exact_mut(size * 3).enumerate() {
        points(src, &map, r as f64, &mut row.at, &mut row.lr, &mut row.tb);
        gather(src.data, src.stride, &row.at, &mut row.up, &mut row.down);
        blend(&row.up, &row.down, &row.lr, &row.tb, &row.at, &mut row.channels);
        for (c, px) in o.chunks_exact_mut(3).enumerate() {
            px.copy_from_slice(&[row.channels[0][c], row.channels[1][c], row.channels[2][c]]);
        }
    }
    RgbImage::from_raw(size as u32, size as u32, out).expect("buffer size")
}

/// The per-column values of one output row.
struct Row {
    /// Index of the top-left pixel's first value, or [`OUTSIDE`].
    at: Vec<usize>,
    /// Horizontal and vertical weights of the right and bottom pixels.
    lr: Vec<f64>,
    tb: Vec<f64>,
    /// The top and bottom pixel pairs, 6 bytes each (R G B R G B, little-endian).
    up: Vec<u64>,
    down: Vec<u64>,
    /// The blended row, per channel.
    channels: [Vec<u8>; 3],
}

/// The index of a sample whose neighbourhood leaves the image.
const OUTSIDE: usize = usize::MAX;

impl Row {
    fn new(size: usize) -> Self {
        Row {
            at: vec![0; size],
            lr: vec![0.0; size],
            tb: vec![0.0; size],
            up: vec![0; size],
            down: vec![0; size],
            channels: std::array::from_fn(|_| vec![0; size]),
        }
    }
}

vectorised! {
/// Where row `row`'s samples fall in `src`: the index of each top-left pixel in its data (or
/// [`OUTSIDE`]) and the weights. dlib floors the point and
/// needs the 2x2 neighbourhood inside; on a point too far out for an index (or NaN) it is
/// outside too, where dlib's integers would have overflowed (or read a NaN-weighted pixel,
/// which is black as well).
fn points(src: View<'_>, map: &Affine, row: f64, at: &mut [usize], lr: &mut [f64], tb: &mut [f64]) {
    let (w, h, stride) = (src.width as f64, src.height as f64, src.stride as f64);
    let n = at.len();
    let (lr, tb) = (&mut lr[..n], &mut tb[..n]);
    for c in 0..n {
        // Exact: chips are far smaller than 2^31 pixels (and i32 converts in vector registers).
        let col = c as i32 as f64;
        let (x, y) = (map.ax * col + map.bx * row + map.x0, map.ay * col + map.by * row + map.y0);
        let (left, top) = (x.floor(), y.floor());
        let inside = left >= 0.0 && top >= 0.0 && left + 1.0 < w && top + 1.0 < h;
        // An integer below the buffer's length when inside, so exact in f64; converted by
        // adding 2^52, whose low mantissa bits are then the integer (a saturating cast does
        // not vectorise).
        let index = ((top * stride + left * 3.0 + 4503599627370496.0).to_bits() & ((1 << 52) - 1)) as usize;
        at[c] = if inside { index } else { OUTSIDE };
        lr[c] = x - left;
        tb[c] = y - top;
    }
}
}

/// The two pixels at `at` and the two a `line` below, as 6-byte words.
#[inline]
fn gather(p: &[u8], line: usize, at: &[usize], up: &mut [u64], down: &mut [u64]) {
    // One 8-byte load where the buffer has 2 bytes more, else byte by byte.
    let pair = |i: usize| match p.get(i..i + 8) {
        Some(s) => u64::from_le_bytes(s.try_into().expect("8 bytes")) & 0xffff_ffff_ffff,
        None => {
            let s = &p[i..i + 6];
            u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], 0, 0])
        }
    };
    for ((&i, u), d) in at.iter().zip(up.iter_mut()).zip(down.iter_mut()) {
        (*u, *d) = if i == OUTSIDE { (0, 0) } else { (pair(i), pair(i + line)) };
    }
}

vectorised! {
/// Each channel of the samples: dlib's blend, truncated to a byte; black outside.
fn blend(up: &[u64], down: &[u64], lr: &[f64], tb: &[f64], at: &[usize], channels: &mut [Vec<u8>; 3]) {
    let n = up.len();
    let (down, lr, tb, at) = (&down[..n], &lr[..n], &tb[..n], &at[..n]);
    for (ch, out) in channels.iter_mut().enumerate() {
        let out = &mut out[..n];
        let shift = 8 * ch as u32;
        let byte = |word: u64, k: u32| ((word >> (shift + 8 * k)) & 0xff) as i32 as f64;
        for c in 0..n {
            let (a, b) = (byte(up[c], 0), byte(up[c], 3));
            let (cc, d) = (byte(down[c], 0), byte(down[c], 3));
            let v = (1.0 - tb[c]) * ((1.0 - lr[c]) * a + lr[c] * b) + tb[c] * ((1.0 - lr[c]) * cc + lr[c] * d);
            // `v as u8` (truncation, saturated) by adding 2^52 to the truncated, clamped
            // value: exact, and its low mantissa bits are the byte. It vectorises where the
            // saturating cast does not.
            let value = (v.trunc().clamp(0.0, 255.0) + 4503599627370496.0).to_bits() as u8;
            out[c] = if at[c] == OUTSIDE { 0 } else { value };
        }
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dlib's sampling one pixel at a time, as written before the passes.
    fn reference(src: &RgbImage, size: usize, m: Affine) -> RgbImage {
        let (w, h) = (src.width() as i64, src.height() as i64);
        let mut out = RgbImage::new(size as u32, size as u32);
        for row in 0..size {
            for col in 0..size {
                let (x, y) = (m.ax * col as f64 + m.bx * row as f64 + m.x0, m.ay * col as f64 + m.by * row as f64 + m.y0);
                let (left, top) = (x.floor() as i64, y.floor() as i64);
                if !(left >= 0 && top >= 0 && left + 1 < w && top + 1 < h) {
                    continue;
                }
                let (lr, tb) = (x - left as f64, y - top as f64);
                let at = |y: i64, x: i64, ch: usize| src.get_pixel(x as u32, y as u32).0[ch] as f64;
                for ch in 0..3 {
                    let v = (1.0 - tb) * ((1.0 - lr) * at(top, left, ch) + lr * at(top, left + 1, ch))
                        + tb * ((1.0 - lr) * at(top + 1, left, ch) + lr * at(top + 1, left + 1, ch));
                    out.get_pixel_mut(col as u32, row as u32).0[ch] = v as u8;
                }
            }
        }
        out
    }

    #[test]
    fn the_passes_agree_with_dlibs_arithmetic_at_every_level() {
        let mut rng = visage_core::SeededRng::new(11);
        // Flat areas (where truncation of a blend of equal values is most fragile), noise, and
        // maps that run off every border.
        let flat = RgbImage::from_fn(40, 30, |x, y| image::Rgb([if x < 20 { 200 } else { 7 }, 255, (y % 3) as u8 * 100]));
        let noise = RgbImage::from_fn(33, 47, |_, _| image::Rgb([rng.below(256) as u8, rng.below(256) as u8, rng.below(256) as u8]));
        let maps: Vec<Affine> = (0..40)
            .map(|_| {
                let (a, s) = (rng.uniform() * 6.3, 0.2 + rng.uniform() * 1.5);
                Affine {
                    ax: s * a.cos(),
                    bx: -s * a.sin(),
                    x0: rng.uniform() * 50.0 - 10.0,
                    ay: s * a.sin(),
                    by: s * a.cos(),
                    y0: rng.uniform() * 50.0 - 10.0,
                }
            })
            .chain([
                Affine { ax: 1.0, bx: 0.0, x0: 3.0, ay: 0.0, by: 1.0, y0: 2.0 },
                Affine { ax: 0.5, bx: 0.0, x0: 0.25, ay: 0.0, by: 0.5, y0: 0.75 },
            ])
            .collect();
        visage_core::vector::at_each_level(|level| {
            for src in [&flat, &noise] {
                for &m in &maps {
                    assert_eq!(sample_bilinear(View::of(src), 23, m), reference(src, 23, m), "{level:?} {m:?}");
                }
            }
        });
        // A rectangle read in place (rows further apart than its width) samples as its copy.
        let r = visage_core::Rect::new(5, 7, 27, 40);
        let copy = RgbImage::from_fn(23, 34, |x, y| *noise.get_pixel(x + 5, y + 7));
        for &m in &maps {
            assert_eq!(sample_bilinear(View::rect(&noise, r), 19, m), reference(&copy, 19, m), "{m:?}");
        }
        // A map that is not finite gives black, as dlib's NaN-weighted blend does.
        let nan = Affine { ax: f64::NAN, bx: 0.0, x0: 0.0, ay: 0.0, by: 1.0, y0: 1.0 };
        assert!(sample_bilinear(View::of(&noise), 5, nan).as_raw().iter().all(|&v| v == 0));
    }
}
