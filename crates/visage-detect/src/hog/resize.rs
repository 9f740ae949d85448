//! dlib's bilinear resize of RGB images (the SSE `resize_image`), reproduced bit for bit,
//! and the pyramid geometry built on it. See `hog-detector.md` sections 3.1, 3.3 and 4.
//!
//! The 4 column positions of the vector part are accumulated in float32 and drift, the row
//! position is accumulated in double, and values are truncated, not rounded: a textbook
//! bilinear resize changes pixels by one and moves detections. Column positions depend only
//! on the column, so they are computed once per image; rows are resized in parallel.

use super::fhog::Simd;
use rayon::prelude::*;
use visage_core::RgbImage;

/// Where the output columns sample a source row: dlib's 4-lane float part (left index and
/// f32 fractions), then the scalar tail (left, right, f64 fraction).
pub(crate) struct ColumnTable {
    pub left: Vec<usize>,
    pub lr: Vec<f32>,
    pub ilr: Vec<f32>,
    pub tail: Vec<(usize, usize, f64)>,
}

/// Where dlib's bilinear `resize_image` samples each output column of a row `w` wide
/// resized to `ow` (`x_scale = (w - 1) / (ow - 1)`).
pub(crate) fn column_table(w: usize, ow: usize, x_scale: f64) -> ColumnTable {
    let mut t = ColumnTable { left: Vec::new(), lr: Vec::new(), ilr: Vec::new(), tail: Vec::new() };
    let x = -4.0 * x_scale;
    let mut xs = [x as f32, (x + x_scale) as f32, (x + 2.0 * x_scale) as f32, (x + 3.0 * x_scale) as f32];
    let step = (4.0 * x_scale) as f32;
    let mut c = 0usize;
    loop {
        for v in xs.iter_mut() {
            *v += step;
        }
        let left = xs.map(|v| v as i32);
        if left[3] + 1 >= w as i32 || c + 3 >= ow {
            break;
        }
        for j in 0..4 {
            let lr = xs[j] - left[j] as f32;
            t.left.push(left[j] as usize);
            t.lr.push(lr);
            t.ilr.push(1.0 - lr);
        }
        c += 4;
    }
    let mut x = -x_scale + c as f64 * x_scale;
    for _ in c..ow {
        x += x_scale;
        let left = x.floor() as usize;
        t.tail.push((left, (left + 1).min(w - 1), x - left as f64));
    }
    t
}

/// Resizes `src` to `width` x `height` exactly as dlib does.
pub fn resize_exact(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    resize_exact_at(src, width, height, Simd::best())
}

/// [`resize_exact`] with the given vector code (lowered to what this CPU runs; every level
/// gives identical pixels). Below AVX-512 the vector part runs one pixel per SSE step.
pub fn resize_exact_at(src: &RgbImage, width: u32, height: u32, level: Simd) -> RgbImage {
    let level = level.clamp();
    let (w, h) = (src.width() as usize, src.height() as usize);
    let (ow, oh) = (width as usize, height as usize);
    let p = src.as_raw();
    let mut out = vec![0u8; ow * oh * 3];
    if ow == 0 || oh == 0 {
        return RgbImage::from_raw(width, height, out).expect("buffer size");
    }
    let x_scale = (w as f64 - 1.0) / ((ow as i64 - 1).max(1) as f64);
    let y_scale = (h as f64 - 1.0) / ((oh as i64 - 1).max(1) as f64);
    let cols = column_table(w, ow, x_scale);
    // Row positions accumulate in double, exactly as dlib's loop does.
    let mut rows = Vec::with_capacity(oh);
    let mut y = -y_scale;
    for _ in 0..oh {
        y += y_scale;
        let top = y.floor() as usize;
        rows.push((top, (top + 1).min(h - 1), y - top as f64));
    }
    let nvec = cols.left.len();
    #[cfg(target_arch = "x86_64")]
    let wide = (level == Simd::Avx512).then(|| avx512::Groups::new(&cols, w * 3 + 32));
    #[cfg(not(target_arch = "x86_64"))]
    let _ = level;
    let convert = |buf: &mut Vec<f32>, row: usize| {
        for (f, &b) in buf[..w * 3].iter_mut().zip(&p[row * w * 3..(row + 1) * w * 3]) {
            *f = b as f32;
        }
    };
    out.par_chunks_mut(ow * 3).zip(rows.par_iter()).with_min_len(32).for_each_init(
        // Two source rows as floats (one spare element so that a 4-lane load at the last
        // pixel stays in bounds), remembered across the output rows of this worker.
        // (32 spare elements for the 16-lane windows of the AVX-512 code.)
        || (vec![0f32; w * 3 + 32], vec![0f32; w * 3 + 32], usize::MAX, usize::MAX),
        |(tf, bf, have_t, have_b), (dst, &(top, bot, tb))| {
            if *have_t != top {
                if *have_b == top {
                    std::mem::swap(tf, bf);
                    *have_b = usize::MAX;
                } else {
                    convert(tf, top);
                }
                *have_t = top;
            }
            if *have_b != bot {
                convert(bf, bot);
                *have_b = bot;
            }
            let (tbf, itbf) = (tb as f32, (1.0 - tb) as f32);
            let (dv, dt) = dst.split_at_mut(nvec * 3);
            #[cfg(target_arch = "x86_64")]
            if let Some(g) = &wide {
                // SAFETY: `wide` is only built when AVX-512 was detected (level clamped).
                unsafe { avx512::vector_columns(tf, bf, &cols, g, tbf, itbf, dv) };
            } else {
                vector_columns(tf, bf, &cols, tbf, itbf, dv);
            }
            #[cfg(not(target_arch = "x86_64"))]
            vector_columns(tf, bf, &cols, tbf, itbf, dv);
            for (o, &(l, r, lr)) in dt.chunks_exact_mut(3).zip(&cols.tail) {
                for ch in 0..3 {
                    let (tl, tr) = (tf[l * 3 + ch] as f64, tf[r * 3 + ch] as f64);
                    let (bl, br) = (bf[l * 3 + ch] as f64, bf[r * 3 + ch] as f64);
                    let v = (1.0 - tb) * ((1.0 - lr) * tl + lr * tr) + tb * ((1.0 - lr) * bl + lr * br);
                    o[ch] = v as u8;
                }
            }
        },
    );
    RgbImage::from_raw(width, height, out).expect("buffer size")
}

/// The 4-lane float columns of one output row. Per channel:
/// `((tlf*TL + trf*TR) + blf*BL) + brf*BR` in f32, truncated; `tf`/`bf` are the top and
/// bottom source rows as floats with one spare element at the end.
#[inline]
fn vector_columns(tf: &[f32], bf: &[f32], cols: &ColumnTable, tbf: f32, itbf: f32, dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let n = cols.left.len();
        assert!(dst.len() >= n * 3 && cols.left.iter().all(|&l| l * 3 + 7 <= tf.len() && l * 3 + 7 <= bf.len()));
        // SAFETY: SSE2 is part of x86_64; the assert above bounds every 4-float load, and
        // the 4-byte store of pixel i ends inside pixel i+1 (or the spare tail, see below).
        unsafe {
            let (itb, tb) = (_mm_set1_ps(itbf), _mm_set1_ps(tbf));
            let mut last = [0u8; 4];
            for i in 0..n {
                let l = *cols.left.get_unchecked(i) * 3;
                let lr = _mm_set1_ps(*cols.lr.get_unchecked(i));
                let ilr = _mm_set1_ps(*cols.ilr.get_unchecked(i));
                let (tlf, trf, blf, brf) = (_mm_mul_ps(itb, ilr), _mm_mul_ps(itb, lr), _mm_mul_ps(tb, ilr), _mm_mul_ps(tb, lr));
                let tl = _mm_loadu_ps(tf.as_ptr().add(l));
                let tr = _mm_loadu_ps(tf.as_ptr().add(l + 3));
                let bl = _mm_loadu_ps(bf.as_ptr().add(l));
                let br = _mm_loadu_ps(bf.as_ptr().add(l + 3));
                let v =
                    _mm_add_ps(_mm_add_ps(_mm_add_ps(_mm_mul_ps(tlf, tl), _mm_mul_ps(trf, tr)), _mm_mul_ps(blf, bl)), _mm_mul_ps(brf, br));
                let q = _mm_cvttps_epi32(v);
                let q = _mm_packus_epi16(_mm_packs_epi32(q, q), q);
                let bytes = _mm_cvtsi128_si32(q).to_le_bytes();
                if i + 1 < n {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.as_mut_ptr().add(i * 3), 4);
                } else {
                    last = bytes;
                }
            }
            if n > 0 {
                dst[(n - 1) * 3..n * 3].copy_from_slice(&last[..3]);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (((o, &l), &lr), &ilr) in dst.chunks_exact_mut(3).zip(&cols.left).zip(&cols.lr).zip(&cols.ilr) {
        let (tlf, trf, blf, brf) = (itbf * ilr, itbf * lr, tbf * ilr, tbf * lr);
        for ch in 0..3 {
            let t = &tf[l * 3..];
            let b = &bf[l * 3..];
            o[ch] = (tlf * t[ch] + trf * t[3 + ch] + blf * b[ch] + brf * b[3 + ch]) as u8;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::ColumnTable;
    use std::arch::x86_64::*;

    /// The vector columns in groups of 4 output pixels (16 lanes: 4 pixels x RGB + a spare
    /// lane), each reading a window of 32 floats of the source rows from `base`.
    pub(super) struct Groups {
        /// Per group: the window start, or `None` when the 4 pixels span more than 32
        /// floats (upscaling by less than 1/3 never does; the group then runs 1 pixel a step).
        base: Vec<Option<usize>>,
        /// Per group, 16 lanes: where lane (pixel j, channel ch) reads its left sample.
        idx: Vec<[i32; 16]>,
        /// `lr` and `ilr` with each pixel's value repeated over its 4 lanes.
        lr: Vec<f32>,
        ilr: Vec<f32>,
        /// The length of the source row buffers every window and sample was checked against.
        buf_len: usize,
    }

    impl Groups {
        /// The groups of `t`, for source rows held in buffers of `buf_len` floats.
        pub(super) fn new(t: &ColumnTable, buf_len: usize) -> Self {
            let n = t.left.len() / 4;
            assert!(t.left.iter().all(|&l| l * 3 + 7 <= buf_len));
            let mut g = Groups { base: Vec::with_capacity(n), idx: Vec::with_capacity(n), lr: Vec::new(), ilr: Vec::new(), buf_len };
            for i in 0..n {
                let l = &t.left[4 * i..4 * i + 4];
                let base = l[0] * 3;
                // Right samples of the spare lane reach 3 * l + 6.
                let fits = l.iter().all(|&v| v >= l[0] && v * 3 + 6 - base < 32) && base + 32 <= buf_len;
                g.base.push(fits.then_some(base));
                g.idx.push(std::array::from_fn(|k| if fits { (l[k / 4] * 3 + k % 4 - base) as i32 } else { 0 }));
            }
            for i in 0..t.left.len() {
                for _ in 0..4 {
                    g.lr.push(t.lr[i]);
                    g.ilr.push(t.ilr[i]);
                }
            }
            g
        }
    }

    /// The vector columns of one output row, 4 pixels per step: per lane exactly what
    /// [`super::vector_columns`] computes per channel, `((tlf*TL + trf*TR) + blf*BL) + brf*BR`
    /// in f32, truncated, saturated to a byte as `packus` does.
    ///
    /// # Safety
    /// AVX-512F/BW/VL must be available; `g` must be built from `t`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
    pub(super) unsafe fn vector_columns(tf: &[f32], bf: &[f32], t: &ColumnTable, g: &Groups, tbf: f32, itbf: f32, dst: &mut [u8]) {
        let n = t.left.len();
        // Every window and sample position was checked against `buf_len` by `Groups::new`.
        assert!(dst.len() >= n * 3 && tf.len() >= g.buf_len && bf.len() >= g.buf_len && g.base.len() * 4 == n);
        let (itb, tb) = (_mm512_set1_ps(itbf), _mm512_set1_ps(tbf));
        let three = _mm512_set1_epi32(3);
        // Bytes 0-2, 4-6, 8-10, 12-14 of the 16 lanes' bytes: the pixels' RGB.
        let pick = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -128, -128, -128, -128);
        for (gi, base) in g.base.iter().enumerate() {
            let i = 4 * gi;
            let Some(base) = *base else {
                // One pixel a step, as the SSE code does.
                for j in i..i + 4 {
                    let l = t.left[j] * 3;
                    let (lr, ilr) = (_mm_set1_ps(t.lr[j]), _mm_set1_ps(t.ilr[j]));
                    let (itb, tb) = (_mm_set1_ps(itbf), _mm_set1_ps(tbf));
                    let (tlf, trf, blf, brf) = (_mm_mul_ps(itb, ilr), _mm_mul_ps(itb, lr), _mm_mul_ps(tb, ilr), _mm_mul_ps(tb, lr));
                    let v = _mm_add_ps(
                        _mm_add_ps(
                            _mm_add_ps(
                                _mm_mul_ps(tlf, _mm_loadu_ps(tf.as_ptr().add(l))),
                                _mm_mul_ps(trf, _mm_loadu_ps(tf.as_ptr().add(l + 3))),
                            ),
                            _mm_mul_ps(blf, _mm_loadu_ps(bf.as_ptr().add(l))),
                        ),
                        _mm_mul_ps(brf, _mm_loadu_ps(bf.as_ptr().add(l + 3))),
                    );
                    let q = _mm_cvttps_epi32(v);
                    let q = _mm_packus_epi16(_mm_packs_epi32(q, q), q);
                    _mm_mask_storeu_epi8(dst.as_mut_ptr().add(j * 3) as *mut i8, 0x7, q);
                }
                continue;
            };
            let idx = _mm512_loadu_si512(g.idx.as_ptr().add(gi) as *const __m512i);
            let idx_r = _mm512_add_epi32(idx, three);
            let lr = _mm512_loadu_ps(g.lr.as_ptr().add(4 * i));
            let ilr = _mm512_loadu_ps(g.ilr.as_ptr().add(4 * i));
            let (t0, t1) = (_mm512_loadu_ps(tf.as_ptr().add(base)), _mm512_loadu_ps(tf.as_ptr().add(base + 16)));
            let (b0, b1) = (_mm512_loadu_ps(bf.as_ptr().add(base)), _mm512_loadu_ps(bf.as_ptr().add(base + 16)));
            let tl = _mm512_permutex2var_ps(t0, idx, t1);
            let tr = _mm512_permutex2var_ps(t0, idx_r, t1);
            let bl = _mm512_permutex2var_ps(b0, idx, b1);
            let br = _mm512_permutex2var_ps(b0, idx_r, b1);
            let (tlf, trf, blf, brf) = (_mm512_mul_ps(itb, ilr), _mm512_mul_ps(itb, lr), _mm512_mul_ps(tb, ilr), _mm512_mul_ps(tb, lr));
            let v = _mm512_add_ps(
                _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(tlf, tl), _mm512_mul_ps(trf, tr)), _mm512_mul_ps(blf, bl)),
                _mm512_mul_ps(brf, br),
            );
            // packs_epi32 then packus_epi16 clamp a lane to [0, 255]; so does the unsigned
            // saturation of non-negative lanes (cvtt gives i32::MIN, negative, only for NaN
            // or out-of-range values, which a convex sum of bytes never is).
            let q = _mm512_cvttps_epi32(v);
            let q = _mm512_cvtusepi32_epi8(_mm512_max_epi32(q, _mm512_setzero_si512()));
            _mm_mask_storeu_epi8(dst.as_mut_ptr().add(i * 3) as *mut i8, 0x0fff, _mm_shuffle_epi8(q, pick));
        }
    }
}

/// dlib's `pyramid_up` (pyramid_down<2> geometry): (2H+1) rows x (2W+2) columns.
pub fn pyramid_up(src: &RgbImage) -> RgbImage {
    resize_exact(src, 2 * src.width() + 2, 2 * src.height() + 1)
}

/// C's `lround`: half away from zero.
pub fn lround(v: f64) -> i64 {
    v.round() as i64
}

/// Number of pyramid_down<6> levels for an image, counted on rectangles as dlib does.
pub fn pyramid_levels(width: u32, height: u32, min_w: usize, min_h: usize, max_levels: usize) -> usize {
    let ratio = 5.0 / 6.0;
    let (mut l, mut t, mut r, mut b) = (0i64, 0i64, width as i64 - 1, height as i64 - 1);
    let mut levels = 0;
    loop {
        let down = |v: i64| lround((v as f64 - 0.3) * ratio);
        (l, t, r, b) = (down(l), down(t), down(r), down(b));
        levels += 1;
        let (rw, rh) = ((r - l + 1).max(0), (b - t + 1).max(0));
        if !(rw >= min_w as i64 && rh >= min_h as i64 && levels < max_levels) {
            break;
        }
    }
    levels
}

/// The image pyramid: level 0 is `img`, level k is level k-1 resized to 5/6 of its size.
pub fn pyramid(img: &RgbImage, levels: usize) -> Vec<RgbImage> {
    let mut out = vec![img.clone()];
    for _ in 1..levels {
        let prev = out.last().unwrap();
        let (w, h) = ((5 * prev.width()) / 6, (5 * prev.height()) / 6);
        out.push(resize_exact(prev, w, h));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_counts_follow_the_reference_examples() {
        assert_eq!(pyramid_levels(226, 225, 64, 64, 1000), 7);
        assert_eq!(pyramid_levels(1280, 886, 64, 64, 1000), 15);
        assert_eq!(pyramid_levels(3842, 2561, 64, 64, 1000), 21);
    }

    #[test]
    fn pyramid_up_size() {
        let img = RgbImage::new(250, 250);
        let up = pyramid_up(&img);
        assert_eq!((up.width(), up.height()), (502, 501));
    }

    #[test]
    fn lround_is_half_away_from_zero() {
        assert_eq!((lround(2.5), lround(-2.5), lround(-0.25), lround(0.49)), (3, -3, 0, 0));
    }

    #[test]
    fn every_vector_level_resizes_to_identical_pixels() {
        eprintln!("vector code on this CPU: {:?}", Simd::best());
        let mut seed = 7u32;
        for (w, h) in [(250u32, 250u32), (37, 29), (640, 443), (9, 9), (101, 64)] {
            let img = RgbImage::from_fn(w, h, |_, _| {
                let mut c = [0u8; 3];
                for v in &mut c {
                    seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
                    *v = (seed >> 16) as u8;
                }
                image::Rgb(c)
            });
            // pyramid_down<6> levels, pyramid_up, and a few odd scales (up to 4x, down to 1/5).
            let sizes = [(5 * w / 6, 5 * h / 6), (2 * w + 2, 2 * h + 1), (w / 5 + 1, h / 3 + 1), (4 * w, 3 * h), (w + 7, h)];
            for (ow, oh) in sizes {
                let reference = resize_exact_at(&img, ow, oh, Simd::Avx2);
                let wide = resize_exact_at(&img, ow, oh, Simd::Avx512);
                assert!(reference == wide, "{w}x{h} -> {ow}x{oh}");
            }
        }
    }

    #[test]
    fn tiny_and_degenerate_sizes_do_not_panic() {
        let img = RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8 * 80, y as u8 * 100, 7]));
        for (w, h) in [(1, 1), (2, 5), (9, 9), (0, 3), (3, 0), (1, 7)] {
            let out = resize_exact(&img, w, h);
            assert_eq!((out.width(), out.height()), (w, h));
        }
    }
}
