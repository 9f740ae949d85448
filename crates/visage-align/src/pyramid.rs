//! dlib's `pyramid_down<2>`: a 5x5 binomial blur and a factor-2 decimation, in integers.

use crate::view::View;
use visage_core::{vectorised, DRect, PyramidDown, RgbImage};

/// Halves an RGB image as dlib does: rows are filtered with [1 4 6 4 1] at columns 2c..2c+4,
/// then columns at rows r-2..r+2 for r = 2, 4, ...; the sum is divided by 256 (truncating).
/// The result is ((H-3)/2) x ((W-3)/2); images of 8 pixels or less on a side give an empty one.
///
/// The sums are exact integers (at most 255 * 256, so u16), which makes the order of the two
/// passes free: here the columns are filtered first, five whole rows at a time, then the rows
/// at every column, then every other column is kept. Each loop runs over contiguous values,
/// so it vectorises.
pub fn pyramid_down2(img: &RgbImage) -> RgbImage {
    down2(View::of(img))
}

/// [`pyramid_down2`] of a view.
pub(crate) fn down2(src: View<'_>) -> RgbImage {
    let (w, h) = (src.width, src.height);
    if w <= 8 || h <= 8 {
        return RgbImage::new(0, 0);
    }
    let (tw, oh) = ((w - 3) / 2, (h - 3) / 2);
    let mut out = vec![0u8; oh * tw * 3];
    filter(src, &mut out);
    RgbImage::from_raw(tw as u32, oh as u32, out).expect("buffer size")
}

vectorised! {
/// The filtered rows of `src` (at least 9 x 9) into `out`, ((W-3)/2) * 3 values a row.
fn filter(src: View<'_>, out: &mut [u8]) {
    let w = src.width;
    let tw = (w - 3) / 2;
    let mut down = vec![0u16; w * 3];
    let mut across = vec![0u16; (w - 4) * 3];
    for (dr, o) in out.chunks_exact_mut(tw * 3).enumerate() {
        let r = 2 + 2 * dr;
        let (a, b, c, d, e) = (src.row(r - 2), src.row(r - 1), src.row(r), src.row(r + 1), src.row(r + 2));
        for (i, v) in down.iter_mut().enumerate() {
            *v = a[i] as u16 + 4 * b[i] as u16 + 6 * c[i] as u16 + 4 * d[i] as u16 + e[i] as u16;
        }
        // Neighbouring pixels are 3 values apart.
        let n = across.len();
        let (d0, d1, d2, d3, d4) = (&down[..n], &down[3..n + 3], &down[6..n + 6], &down[9..n + 9], &down[12..n + 12]);
        for (i, v) in across.iter_mut().enumerate() {
            *v = d0[i] + 4 * d1[i] + 6 * d2[i] + 4 * d3[i] + d4[i];
        }
        for (px, sum) in o.chunks_exact_mut(3).zip(across.chunks(6)) {
            for ch in 0..3 {
                px[ch] = (sum[ch] >> 8) as u8;
            }
        }
    }
}
}

/// `pyramid_down<2>::rect_down` (the geometry lives in `visage_core::PyramidDown`).
pub fn rect_down(r: DRect) -> DRect {
    PyramidDown::HALF.rect_down(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_image_stays_constant_and_sizes_follow_dlib() {
        let img = RgbImage::from_pixel(21, 14, image::Rgb([200, 7, 255]));
        let d = pyramid_down2(&img);
        assert_eq!((d.width(), d.height()), (9, 5));
        // 16 * 16 * v / 256 = v exactly.
        assert!(d.pixels().all(|p| p.0 == [200, 7, 255]));
        assert_eq!(pyramid_down2(&RgbImage::new(8, 100)).width(), 0);
    }

    #[test]
    fn the_passes_agree_with_the_direct_5x5_sum() {
        // dlib's definition, one output value at a time: the [1 4 6 4 1] x [1 4 6 4 1] window at
        // rows 2r..2r+4 and columns 2c..2c+4, divided by 256.
        let k = [1u32, 4, 6, 4, 1];
        let mut rng = visage_core::SeededRng::new(5);
        let images: Vec<RgbImage> = [(9, 9), (10, 9), (9, 12), (37, 20), (64, 51)]
            .into_iter()
            .map(|(w, h)| RgbImage::from_fn(w, h, |_, _| image::Rgb([255, rng.below(256) as u8, rng.below(2) as u8 * 255])))
            .collect();
        visage_core::vector::at_each_level(|_| {
            for img in &images {
                let (w, h) = img.dimensions();
                let d = pyramid_down2(img);
                assert_eq!((d.width(), d.height()), ((w - 3) / 2, (h - 3) / 2));
                for (c, r, px) in d.enumerate_pixels() {
                    for ch in 0..3 {
                        let mut sum = 0;
                        for (i, ki) in k.iter().enumerate() {
                            for (j, kj) in k.iter().enumerate() {
                                sum += ki * kj * img.get_pixel(2 * c + j as u32, 2 * r + i as u32).0[ch] as u32;
                            }
                        }
                        assert_eq!(px.0[ch] as u32, sum / 256, "{w}x{h} at ({c}, {r}) channel {ch}");
                    }
                }
            }
        });
        // A rectangle read in place halves as its copy.
        let big = &images[4];
        let copy = RgbImage::from_fn(30, 20, |x, y| *big.get_pixel(x + 3, y + 4));
        assert_eq!(down2(View::rect(big, visage_core::Rect::new(3, 4, 32, 23))), pyramid_down2(&copy));
    }

    #[test]
    fn filter_weights_are_binomial() {
        // A single bright pixel at (row 4, col 4) spreads as (1 4 6 4 1)^2 / 256.
        let mut img = RgbImage::new(11, 11);
        img.put_pixel(4, 4, image::Rgb([255, 255, 255]));
        let d = pyramid_down2(&img);
        // Output (1,1) samples rows 2..6 and columns 2..6 centred on (4,4): weight 36/256.
        assert_eq!(d.get_pixel(1, 1).0[0], (255 * 36 / 256) as u8);
        assert_eq!(d.get_pixel(0, 1).0[0], (255 * 6 / 256) as u8); // columns 0..4: weight 1*6
    }
}
