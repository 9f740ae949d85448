//! dlib's tiled image pyramid (`input_rgb_image_pyramid<pyramid_down<6>>`): every level of the
//! pyramid packed into one image, levels separated by zero padding, built in tensor space by
//! dlib's float bilinear resize. Reproduced exactly, so the network sees the same numbers.

use crate::hog::resize::column_table;
use visage_core::{DPoint, DRect, PyramidDown, Rect, RgbImage};

/// Where each pyramid level lies in the tiled image, and the tiled image's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TiledLayout {
    /// Level `i`'s rectangle (level 0 is the photo itself).
    pub rects: Vec<Rect>,
    /// Rows of the tiled image.
    pub rows: usize,
    /// Columns of the tiled image.
    pub cols: usize,
}

impl TiledLayout {
    /// dlib's `compute_tiled_image_pyramid_details` for an `nr` x `nc` image.
    pub fn new(nr: usize, nc: usize, padding: usize, outer_padding: usize) -> Self {
        let (padding, outer) = (padding as i64, outer_padding as i64);
        if nr * nc == 0 {
            return TiledLayout { rects: Vec::new(), rows: 0, cols: 0 };
        }
        let rate = (6.0 - 1.0) / 6.0;
        let (mut r, mut c) = (nr as i64, nc as i64);
        let mut rects = vec![Rect::new(0, 0, c - 1, r - 1)];
        loop {
            r = (rate * r as f64).floor() as i64;
            c = (rate * c as f64).floor() as i64;
            if r * c == 0 || r < 5 {
                break;
            }
            rects.push(Rect::new(0, 0, c - 1, r - 1));
        }
        let total_height: i64 = rects.iter().map(|x| x.height() + padding).sum::<i64>() - 2 * padding;
        let (w0, h0) = (rects[0].width(), rects[0].height());
        let mut height = 0;
        let mut prev_width = 0;
        for x in &rects {
            let (w, h) = (x.width(), x.height());
            if w <= w0 - prev_width - padding && (height - h0) * 2 >= total_height - h0 {
                break;
            }
            height += h + padding;
            prev_width = w;
        }
        height -= padding;
        let width = w0;
        let (rows, cols) = (height + outer * 2, width + outer * 2);
        let mut y = outer;
        let mut i = 0;
        while y < height + outer && i < rects.len() {
            let (w, h) = (rects[i].width(), rects[i].height());
            rects[i] = Rect::new(outer, y, outer + w - 1, y + h - 1);
            y += h + padding;
            i += 1;
        }
        y -= padding;
        while i < rects.len() {
            let (w, h) = (rects[i].width(), rects[i].height());
            // rectangle(p1, p1 - br) with p1 = (outer + width - 1, y - 1), br = (w - 1, h - 1).
            let (p1x, p1y) = (outer + width - 1, y - 1);
            let rect = Rect::new(p1x - (w - 1), p1y - (h - 1), p1x, p1y);
            if rects[0].intersect(&rect).area() > 0 {
                break;
            }
            rects[i] = rect;
            y -= h + padding;
            i += 1;
        }
        rects.truncate(i);
        TiledLayout { rects, rows: rows as usize, cols: cols as usize }
    }

    /// dlib's `tiled_pyramid_to_image`: a rectangle of the tiled image mapped back to the
    /// photo through the level nearest its centre.
    pub fn to_image(&self, r: DRect) -> DRect {
        let c = r.center();
        let p = (c.x + 0.5).floor() as i64;
        let q = (c.y + 0.5).floor() as i64;
        let mut best = (0usize, f64::INFINITY);
        for (i, rect) in self.rects.iter().enumerate() {
            if p >= rect.left && p <= rect.right && q >= rect.top && q <= rect.bottom {
                best = (i, 0.0);
                break;
            }
            let (nx, ny) = (p.clamp(rect.left, rect.right), q.clamp(rect.top, rect.bottom));
            let d = (((nx - p) * (nx - p) + (ny - q) * (ny - q)) as f64).sqrt();
            if d < best.1 {
                best = (i, d);
            }
        }
        let level = best.0;
        let o = &self.rects[level];
        let (ox, oy) = (o.left as f64, o.top as f64);
        let local = DRect::new(r.left - ox, r.top - oy, r.right - ox, r.bottom - oy);
        PyramidDown::FIVE_SIXTHS.rect_up(local, level)
    }

    /// The tiled tensor of `img`, NHWC (rows x cols x 3): level 0 is `(pixel - mean) / 256`,
    /// each further level dlib's float bilinear resize of the one before, zeros elsewhere.
    pub fn tensor(&self, img: &RgbImage, mean: [f32; 3]) -> Vec<f32> {
        let mut t = vec![0f32; self.rows * self.cols * 3];
        let Some(r0) = self.rects.first() else { return t };
        let (w, h) = (img.width() as usize, img.height() as usize);
        let px = img.as_raw();
        for y in 0..h {
            let row = &mut t[((r0.top as usize + y) * self.cols + r0.left as usize) * 3..][..w * 3];
            for (d, s) in row.chunks_exact_mut(3).zip(px[y * w * 3..(y + 1) * w * 3].chunks_exact(3)) {
                for ch in 0..3 {
                    d[ch] = (s[ch] as f32 - mean[ch]) / 256.0;
                }
            }
        }
        for i in 1..self.rects.len() {
            self.resize_level(&mut t, i);
        }
        t
    }

    /// Level `i` from level `i - 1`: dlib's `resize_image` for float planes (4 columns at a
    /// time in f32, the rest in double), channel by channel.
    fn resize_level(&self, t: &mut [f32], i: usize) {
        let (src, dst) = (self.rects[i - 1], self.rects[i]);
        let (sw, sh) = (src.width() as usize, src.height() as usize);
        let (dw, dh) = (dst.width() as usize, dst.height() as usize);
        let cols = self.cols;
        // The source level, copied out (the two regions share the tensor).
        let mut s = vec![0f32; sw * sh * 3];
        for y in 0..sh {
            s[y * sw * 3..(y + 1) * sw * 3].copy_from_slice(&t[((src.top as usize + y) * cols + src.left as usize) * 3..][..sw * 3]);
        }
        let x_scale = (sw as f64 - 1.0) / ((dw as i64 - 1).max(1) as f64);
        let y_scale = (sh as f64 - 1.0) / ((dh as i64 - 1).max(1) as f64);
        let table = column_table(sw, dw, x_scale);
        let nvec = table.left.len();
        let mut y = -y_scale;
        for r in 0..dh {
            y += y_scale;
            let top = y.floor() as usize;
            let bottom = (top + 1).min(sh - 1);
            let tb = y - top as f64;
            let (tbf, itbf) = (tb as f32, (1.0 - tb) as f32);
            let trow = &s[top * sw * 3..(top + 1) * sw * 3];
            let brow = &s[bottom * sw * 3..(bottom + 1) * sw * 3];
            let out = &mut t[((dst.top as usize + r) * cols + dst.left as usize) * 3..][..dw * 3];
            for j in 0..nvec {
                let (l, lr, ilr) = (table.left[j], table.lr[j], table.ilr[j]);
                let (tlf, trf, blf, brf) = (itbf * ilr, itbf * lr, tbf * ilr, tbf * lr);
                for ch in 0..3 {
                    let (tl, tr) = (trow[l * 3 + ch], trow[(l + 1) * 3 + ch]);
                    let (bl, br) = (brow[l * 3 + ch], brow[(l + 1) * 3 + ch]);
                    out[j * 3 + ch] = tlf * tl + trf * tr + blf * bl + brf * br;
                }
            }
            for (k, &(l, rr, frac)) in table.tail.iter().enumerate() {
                let lr = frac as f32;
                let j = nvec + k;
                for ch in 0..3 {
                    let (tl, tr) = (trow[l * 3 + ch], trow[rr * 3 + ch]);
                    let (bl, br) = (brow[l * 3 + ch], brow[rr * 3 + ch]);
                    let v = (1.0 - tb) * ((1.0 - lr) * tl + lr * tr) as f64 + tb * ((1.0 - lr) * bl + lr * br) as f64;
                    out[j * 3 + ch] = v as f32;
                }
            }
        }
    }
}

/// dlib's `centered_drect(p, width, height)`.
pub fn centered(p: DPoint, width: f64, height: f64) -> DRect {
    let (w, h) = (width - 1.0, height - 1.0);
    DRect::new(p.x - w / 2.0, p.y - h / 2.0, p.x + w / 2.0, p.y + h / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_follows_dlib() {
        // 100x80 (nr=80, nc=100): levels 100x80, 83x66, 69x55, 57x45, 47x37, 39x30, 32x25,
        // 26x20, 21x16, 17x13, 14x10, 11x8, 9x6, 7x5; the first column holds levels while
        // the next one does not fit beside the previous; the rest climb back up on the right.
        let t = TiledLayout::new(80, 100, 10, 11);
        assert_eq!(t.rects[0], Rect::new(11, 11, 110, 90));
        assert_eq!(t.cols, 100 + 22);
        for w in t.rects.windows(2) {
            let (a, b) = ((w[0].width(), w[0].height()), (w[1].width(), w[1].height()));
            assert_eq!(b.0, (5.0 / 6.0 * a.0 as f64).floor() as i64);
        }
        // No two levels overlap, all lie inside the image.
        for (i, a) in t.rects.iter().enumerate() {
            assert!(a.left >= 0 && a.top >= 0 && a.right < t.cols as i64 && a.bottom < t.rows as i64, "{a:?}");
            for b in &t.rects[i + 1..] {
                assert_eq!(a.intersect(b).area(), 0, "{a:?} {b:?}");
            }
        }
        // A point of level 0 maps back to itself; of level 1, up by 6/5.
        let r = t.to_image(DRect::new(20.0, 20.0, 30.0, 30.0));
        assert_eq!(r, DRect::new(9.0, 9.0, 19.0, 19.0));
        assert!(TiledLayout::new(0, 10, 10, 11).rects.is_empty());
    }

    #[test]
    fn a_constant_image_stays_constant_in_every_level() {
        let img = RgbImage::from_pixel(61, 47, image::Rgb([200, 100, 50]));
        let t = TiledLayout::new(47, 61, 10, 11);
        let x = t.tensor(&img, [100.0, 100.0, 100.0]);
        for r in &t.rects {
            for y in r.top..=r.bottom {
                for xx in r.left..=r.right {
                    let p = &x[((y as usize * t.cols) + xx as usize) * 3..][..3];
                    assert!((p[0] - 100.0 / 256.0).abs() < 1e-6 && p[1].abs() < 1e-6 && (p[2] + 50.0 / 256.0).abs() < 1e-6, "{r:?} {p:?}");
                }
            }
        }
        // Outside the levels: zeros.
        assert_eq!(&x[..3], &[0.0, 0.0, 0.0]);
    }
}
