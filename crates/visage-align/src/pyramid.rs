//! dlib's `pyramid_down<2>`: a 5x5 binomial blur and a factor-2 decimation, in integers.

use visage_core::{DRect, PyramidDown, RgbImage};

/// Halves an RGB image as dlib does: rows are filtered with [1 4 6 4 1] at columns 2c..2c+4,
/// then columns at rows r-2..r+2 for r = 2, 4, ...; the sum is divided by 256 (truncating).
/// The result is ((H-3)/2) x ((W-3)/2); images of 8 pixels or less on a side give an empty one.
pub fn pyramid_down2(img: &RgbImage) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w <= 8 || h <= 8 {
        return RgbImage::new(0, 0);
    }
    let tw = (w - 3) / 2;
    let p = img.as_raw();
    let mut temp = vec![0u32; h * tw * 3];
    for r in 0..h {
        let row = &p[r * w * 3..(r + 1) * w * 3];
        for c in 0..tw {
            let oc = 2 * c;
            for ch in 0..3 {
                let at = |k: usize| row[(oc + k) * 3 + ch] as u32;
                temp[(r * tw + c) * 3 + ch] = at(0) + 4 * at(1) + 6 * at(2) + 4 * at(3) + at(4);
            }
        }
    }
    let oh = (h - 3) / 2;
    let mut out = vec![0u8; oh * tw * 3];
    for dr in 0..oh {
        let r = 2 + 2 * dr;
        for i in 0..tw * 3 {
            let t = |k: usize| temp[k * tw * 3 + i];
            let v = t(r - 2) + 4 * t(r - 1) + 6 * t(r) + 4 * t(r + 1) + t(r + 2);
            out[dr * tw * 3 + i] = (v / 256) as u8;
        }
    }
    RgbImage::from_raw(tw as u32, oh as u32, out).expect("buffer size")
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
