//! Filter responses (saliency) over the fHOG planes, and the windows they mark.
//! See `hog-detector.md` sections 5.2 and 6.1.
//!
//! Each rank-1 component is applied as a horizontal then a vertical 10-tap pass. In dlib's
//! 8-column SIMD blocks (starting at column 5) the 10 products are summed as
//! `(p0+p3+p6+p9) + ((p1+p4+p7) + (p2+p5+p8))`; in the remaining right-hand columns strictly
//! left to right. Keeping these orders makes the scores equal to dlib's bit for bit.

use super::fhog::{FhogPlanes, Simd};
use super::model::{LinearDetector, FILTER, PLANES};

/// The saliency map of one detector on one level (`rows x cols`, valid in [5, dim-5]).
///
/// `simd` asks for the widest vector code this CPU runs (AVX-512 or AVX2, checked here);
/// every path gives identical bits.
pub fn saliency(f: &FhogPlanes, det: &LinearDetector, simd: bool) -> Vec<f32> {
    saliency_at(f, det, Simd::from_flag(simd))
}

/// [`saliency`] with the given vector code (lowered to what this CPU runs).
pub fn saliency_at(f: &FhogPlanes, det: &LinearDetector, level: Simd) -> Vec<f32> {
    let level = level.clamp();
    let (rows, cols) = (f.rows, f.cols);
    if rows < FILTER || cols < FILTER {
        return vec![0f32; rows * cols];
    }
    let c_end = cols - 4; // columns [5, c_end)
    let r_end = rows - 4; // rows [5, r_end) of the vertical pass
                          // Vector blocks: c0 = 5, 13, ... while c0 < c_end - 7.
    let mut vec_end = 5;
    while vec_end + 7 < c_end {
        vec_end += 8;
    }
    // With AVX-512 the intermediate rows and the sums live in padded buffers whose column 5
    // is 64-byte aligned (the vertical pass then reads and writes whole cache lines); the
    // sums are copied out at the end.
    let wide = level == Simd::Avx512;
    let (stride, pad) = if wide { (cols.next_multiple_of(16) + 16, 16) } else { (cols, 0) };
    let mut tmp_buf = vec![0f32; rows * stride + pad];
    // The sums: rows x cols as returned, or padded like `tmp_buf` and copied out at the end.
    let mut s_buf = vec![0f32; rows * stride + pad];
    // Offsets that put column 5 on a 64-byte boundary (the buffers are 4-byte aligned).
    let align = |v: &Vec<f32>| if wide { (16 - (v.as_ptr() as usize / 4 + 5) % 16) % 16 } else { 0 };
    let (t_off, s_off) = (align(&tmp_buf), align(&s_buf));
    let geo = Geometry { rows, cols, r_end, c_end, vec_end, stride };
    let tmp = &mut tmp_buf[t_off..t_off + rows * stride];
    let sums = &mut s_buf[s_off..s_off + rows * stride];
    let mut first = true;
    for p in 0..PLANES {
        let plane = f.plane(p);
        for comp in &det.planes[p] {
            #[cfg(target_arch = "x86_64")]
            if level != Simd::Scalar {
                // SAFETY: `level` was clamped to what this CPU runs (above); the kernels'
                // indices stay inside the planes (rows x cols) and the buffers
                // (rows x stride).
                unsafe { avx2::component(plane, &comp.row, &comp.col, tmp, sums, &geo, first, wide) };
                first = false;
                continue;
            }
            component_scalar(plane, &comp.row, &comp.col, tmp, sums, &geo, first, 5);
            first = false;
        }
    }
    if !wide {
        return s_buf;
    }
    let mut out = vec![0f32; rows * cols];
    for (dst, src) in out.chunks_exact_mut(cols).zip(sums.chunks_exact(stride)) {
        dst.copy_from_slice(&src[..cols]);
    }
    out
}

/// Plane geometry of one scan.
pub(crate) struct Geometry {
    rows: usize,
    cols: usize,
    r_end: usize,
    c_end: usize,
    vec_end: usize,
    /// Row stride of the intermediate and sum buffers (the planes' is `cols`).
    stride: usize,
}

/// One rank-1 component over columns [from, c_end) (scalar code; `from` = 5 does them all).
#[allow(clippy::too_many_arguments)]
fn component_scalar(
    plane: &[f32],
    row: &[f32; FILTER],
    col: &[f32; FILTER],
    tmp: &mut [f32],
    s: &mut [f32],
    g: &Geometry,
    first: bool,
    from: usize,
) {
    let cols = g.cols;
    for r in 0..g.rows {
        for c in from..g.c_end {
            let prod: [f32; FILTER] = std::array::from_fn(|n| plane[r * cols + c - 5 + n] * row[n]);
            tmp[r * g.stride + c] = if c < g.vec_end { vector_sum(&prod) } else { scalar_sum(&prod) };
        }
    }
    for r in 5..g.r_end {
        for c in from..g.c_end {
            let prod: [f32; FILTER] = std::array::from_fn(|m| tmp[(r - 5 + m) * g.stride + c] * col[m]);
            let u = if c < g.vec_end { vector_sum(&prod) } else { scalar_sum(&prod) };
            let cell = &mut s[r * g.stride + c];
            *cell = if first { u } else { *cell + u };
        }
    }
}

#[inline(always)]
fn vector_sum(p: &[f32; FILTER]) -> f32 {
    let a = ((p[0] + p[3]) + p[6]) + p[9];
    let b = (p[1] + p[4]) + p[7];
    let c = (p[2] + p[5]) + p[8];
    a + (b + c)
}

#[inline(always)]
fn scalar_sum(p: &[f32; FILTER]) -> f32 {
    let mut s = p[0];
    for v in &p[1..] {
        s += *v;
    }
    s
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Geometry, FILTER};
    use std::arch::x86_64::*;

    /// dlib's 8-lane sum: (p0+p3+p6+p9) + ((p1+p4+p7) + (p2+p5+p8)).
    ///
    /// # Safety
    /// Only called from the `avx2`-enabled functions below, which run only where AVX2 was
    /// detected.
    #[inline(always)]
    unsafe fn sum(p: &[__m256; FILTER]) -> __m256 {
        let a = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(p[0], p[3]), p[6]), p[9]);
        let b = _mm256_add_ps(_mm256_add_ps(p[1], p[4]), p[7]);
        let c = _mm256_add_ps(_mm256_add_ps(p[2], p[5]), p[8]);
        _mm256_add_ps(a, _mm256_add_ps(b, c))
    }

    /// The scalar-class columns [vec_end, c_end) (fewer than 8), 8 lanes with a mask; each
    /// lane sums its 10 products strictly left to right, as dlib's scalar code does.
    ///
    /// # Safety
    /// As [`component`].
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn tail(
        plane: &[f32],
        row: &[f32; FILTER],
        col: &[f32; FILTER],
        tmp: &mut [f32],
        s: &mut [f32],
        g: &Geometry,
        first: bool,
    ) {
        let cols = g.cols;
        let width = g.c_end - g.vec_end;
        let lanes: [i32; 8] = std::array::from_fn(|i| if i < width { -1 } else { 0 });
        let mask = _mm256_loadu_si256(lanes.as_ptr() as *const __m256i);
        let c = g.vec_end;
        let seq = |p: [__m256; FILTER]| {
            let mut acc = p[0];
            for v in &p[1..] {
                acc = _mm256_add_ps(acc, *v);
            }
            acc
        };
        for r in 0..g.rows {
            let base = plane.as_ptr().add(r * cols + c - 5);
            let p: [__m256; FILTER] = std::array::from_fn(|n| _mm256_mul_ps(_mm256_maskload_ps(base.add(n), mask), _mm256_set1_ps(row[n])));
            _mm256_maskstore_ps(tmp.as_mut_ptr().add(r * g.stride + c), mask, seq(p));
        }
        for r in 5..g.r_end {
            let base = tmp.as_ptr().add((r - 5) * g.stride + c);
            let p: [__m256; FILTER] =
                std::array::from_fn(|m| _mm256_mul_ps(_mm256_maskload_ps(base.add(m * g.stride), mask), _mm256_set1_ps(col[m])));
            let u = seq(p);
            let o = s.as_mut_ptr().add(r * g.stride + c);
            let v = if first { u } else { _mm256_add_ps(_mm256_maskload_ps(o, mask), u) };
            _mm256_maskstore_ps(o, mask, v);
        }
    }

    /// The vector columns [5, vec_end), 8 at a time, with dlib's grouped summation.
    ///
    /// # Safety
    /// As [`component`].
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn blocks(
        plane: &[f32],
        row: &[f32; FILTER],
        col: &[f32; FILTER],
        tmp: &mut [f32],
        s: &mut [f32],
        g: &Geometry,
        first: bool,
    ) {
        let cols = g.cols;
        let rt: [__m256; FILTER] = std::array::from_fn(|n| _mm256_set1_ps(row[n]));
        let ct: [__m256; FILTER] = std::array::from_fn(|n| _mm256_set1_ps(col[n]));
        let (src, t, out) = (plane.as_ptr(), tmp.as_mut_ptr(), s.as_mut_ptr());
        for r in 0..g.rows {
            let mut c = 5;
            while c < g.vec_end {
                let base = src.add(r * cols + c - 5);
                let p: [__m256; FILTER] = std::array::from_fn(|n| _mm256_mul_ps(_mm256_loadu_ps(base.add(n)), rt[n]));
                _mm256_storeu_ps(t.add(r * g.stride + c), sum(&p));
                c += 8;
            }
        }
        for r in 5..g.r_end {
            let mut c = 5;
            while c < g.vec_end {
                let base = t.add((r - 5) * g.stride + c);
                let p: [__m256; FILTER] = std::array::from_fn(|m| _mm256_mul_ps(_mm256_loadu_ps(base.add(m * g.stride)), ct[m]));
                let u = sum(&p);
                let o = out.add(r * g.stride + c);
                _mm256_storeu_ps(o, if first { u } else { _mm256_add_ps(_mm256_loadu_ps(o), u) });
                c += 8;
            }
        }
    }

    /// One component: vector columns with AVX2 (with AVX-512 when `wide`), the scalar-class
    /// tail masked.
    ///
    /// # Safety
    /// AVX2 (and AVX-512F when `wide`) must be available and the buffers sized
    /// `g.rows * g.cols` (the plane) and `g.rows * g.stride` (the buffers).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn component(
        plane: &[f32],
        row: &[f32; FILTER],
        col: &[f32; FILTER],
        tmp: &mut [f32],
        s: &mut [f32],
        g: &Geometry,
        first: bool,
        wide: bool,
    ) {
        if wide {
            super::avx512::blocks(plane, row, col, tmp, s, g, first);
        } else {
            blocks(plane, row, col, tmp, s, g, first);
        }
        if g.vec_end < g.c_end {
            if wide {
                super::avx512::tail(plane, row, col, tmp, s, g, first);
            } else {
                tail(plane, row, col, tmp, s, g, first);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Geometry, FILTER};
    use std::arch::x86_64::*;

    /// dlib's 8-lane sum on 16 lanes (two of its blocks side by side).
    #[inline(always)]
    unsafe fn sum(p: &[__m512; FILTER]) -> __m512 {
        let a = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(p[0], p[3]), p[6]), p[9]);
        let b = _mm512_add_ps(_mm512_add_ps(p[1], p[4]), p[7]);
        let c = _mm512_add_ps(_mm512_add_ps(p[2], p[5]), p[8]);
        _mm512_add_ps(a, _mm512_add_ps(b, c))
    }

    /// [`super::avx2::tail`] with AVX-512VL's masked loads and stores (cheaper than AVX2's
    /// `vmaskmovps`): the same lanes, the same sums.
    ///
    /// # Safety
    /// As [`blocks`].
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512vl,avx2")]
    pub(super) unsafe fn tail(
        plane: &[f32],
        row: &[f32; FILTER],
        col: &[f32; FILTER],
        tmp: &mut [f32],
        s: &mut [f32],
        g: &Geometry,
        first: bool,
    ) {
        let cols = g.cols;
        let mask: __mmask8 = ((1u32 << (g.c_end - g.vec_end)) - 1) as u8;
        let c = g.vec_end;
        let rt: [__m256; FILTER] = std::array::from_fn(|n| _mm256_set1_ps(row[n]));
        let ct: [__m256; FILTER] = std::array::from_fn(|n| _mm256_set1_ps(col[n]));
        let seq = |p: [__m256; FILTER]| {
            let mut acc = p[0];
            for v in &p[1..] {
                acc = _mm256_add_ps(acc, *v);
            }
            acc
        };
        for r in 0..g.rows {
            let base = plane.as_ptr().add(r * cols + c - 5);
            let p: [__m256; FILTER] = std::array::from_fn(|n| _mm256_mul_ps(_mm256_maskz_loadu_ps(mask, base.add(n)), rt[n]));
            _mm256_mask_storeu_ps(tmp.as_mut_ptr().add(r * g.stride + c), mask, seq(p));
        }
        for r in 5..g.r_end {
            let base = tmp.as_ptr().add((r - 5) * g.stride + c);
            let p: [__m256; FILTER] = std::array::from_fn(|m| _mm256_mul_ps(_mm256_maskz_loadu_ps(mask, base.add(m * g.stride)), ct[m]));
            let u = seq(p);
            let o = s.as_mut_ptr().add(r * g.stride + c);
            let v = if first { u } else { _mm256_add_ps(_mm256_maskz_loadu_ps(mask, o), u) };
            _mm256_mask_storeu_ps(o, mask, v);
        }
    }

    /// The vector columns [5, vec_end): 16 at a time, then the last block of 8 (if any) with
    /// 8 lanes. Every lane computes exactly what [`super::avx2::blocks`] computes.
    ///
    /// # Safety
    /// AVX-512F must be available, the plane sized `g.rows * g.cols` and the buffers
    /// `g.rows * g.stride`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx2")]
    pub(super) unsafe fn blocks(
        plane: &[f32],
        row: &[f32; FILTER],
        col: &[f32; FILTER],
        tmp: &mut [f32],
        s: &mut [f32],
        g: &Geometry,
        first: bool,
    ) {
        let cols = g.cols;
        let rt: [__m512; FILTER] = std::array::from_fn(|n| _mm512_set1_ps(row[n]));
        let ct: [__m512; FILTER] = std::array::from_fn(|n| _mm512_set1_ps(col[n]));
        let (src, t, out) = (plane.as_ptr(), tmp.as_mut_ptr(), s.as_mut_ptr());
        // The last 8-column block, when the blocks are odd in number, runs with a half mask.
        let half: __mmask16 = 0x00ff;
        for r in 0..g.rows {
            let mut c = 5;
            while c < g.vec_end {
                let m = if c + 16 <= g.vec_end { !0 } else { half };
                let base = src.add(r * cols + c - 5);
                let p: [__m512; FILTER] = std::array::from_fn(|n| _mm512_mul_ps(_mm512_maskz_loadu_ps(m, base.add(n)), rt[n]));
                _mm512_mask_storeu_ps(t.add(r * g.stride + c), m, sum(&p));
                c += 16;
            }
        }
        for r in 5..g.r_end {
            let mut c = 5;
            while c < g.vec_end {
                let m = if c + 16 <= g.vec_end { !0 } else { half };
                let base = t.add((r - 5) * g.stride + c);
                let p: [__m512; FILTER] = std::array::from_fn(|k| _mm512_mul_ps(_mm512_maskz_loadu_ps(m, base.add(k * g.stride)), ct[k]));
                let u = sum(&p);
                let o = out.add(r * g.stride + c);
                _mm512_mask_storeu_ps(o, m, if first { u } else { _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), u) });
                c += 16;
            }
        }
    }
}

/// The image rectangle (at the level's scale) of the window centred on feature cell (r, c).
pub fn window_rect(r: i64, c: i64) -> (i64, i64, i64, i64) {
    let lo = |v: i64| if v >= 8 { 8 * v - 59 } else { 8 * v - 67 };
    (lo(c), lo(r), 8 * c + 13, 8 * r + 13)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hog::model::HogModel;

    #[test]
    fn simd_and_scalar_saliency_are_bit_identical() {
        eprintln!("vector code on this CPU: {:?}", Simd::best());
        if !crate::hog::fhog::avx2_available() {
            eprintln!("SKIP: no AVX2");
            return;
        }
        let model = HogModel::frontal();
        let mut seed = 3u32;
        for (rows, cols) in [(10usize, 10usize), (23, 31), (40, 17), (19, 60), (30, 50), (12, 46)] {
            let data: Vec<f32> = (0..31 * rows * cols)
                .map(|_| {
                    seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
                    ((seed >> 9) as f32 / (1u32 << 23) as f32) * 0.4
                })
                .collect();
            let f = FhogPlanes { rows, cols, data };
            for det in &model.detectors {
                let b = saliency_at(&f, det, Simd::Scalar);
                for level in [Simd::Avx2, Simd::Avx512] {
                    let a = saliency_at(&f, det, level);
                    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()), "{rows}x{cols} {level:?}");
                }
            }
        }
    }
}
