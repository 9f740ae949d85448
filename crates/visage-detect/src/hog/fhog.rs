//! Felzenszwalb HOG features as dlib's `extract_fhog_features` computes them (cell 8, filter
//! padding 10x10), bit for bit. See `hog-detector.md` section 5.1.
//!
//! Pixels in 8-column "vector" blocks follow dlib's SIMD code (channel ties go to the later
//! channel, votes multiply as vy*(vx*v)); the remaining right-hand columns follow its scalar
//! code (ties to the earlier channel, votes (vy*vx)*v).
//!
//! Per row, phase A computes every pixel's orientation bin and its four vote weights; it is
//! lane-parallel and runs 16 pixels at a time with AVX-512, 8 with AVX2, when available.
//! Phase B adds the votes into the histogram in raster order, as dlib does: f32 sums depend
//! on their order. The normalisation and the 31 features are lane-parallel over the cells of
//! a row (16 at a time with AVX-512). Every vector path is tested bit-identical to the scalar
//! code ([`Simd`]).

use visage_core::RgbImage;

/// 31 feature planes of `rows x cols` f32 each, plane-major.
#[derive(Debug, Clone)]
pub struct FhogPlanes {
    /// Rows per plane (cells + 9 of padding).
    pub rows: usize,
    /// Columns per plane.
    pub cols: usize,
    /// `31 * rows * cols` values.
    pub data: Vec<f32>,
}

impl FhogPlanes {
    /// Plane `p` as a row-major slice.
    pub fn plane(&self, p: usize) -> &[f32] {
        &self.data[p * self.rows * self.cols..(p + 1) * self.rows * self.cols]
    }
}

const CELL: usize = 8;
const UX: [f32; 9] = [1.0000, 0.9397, 0.7660, 0.500, 0.1736, -0.1736, -0.5000, -0.7660, -0.9397];
const UY: [f32; 9] = [0.0000, 0.3420, 0.6428, 0.8660, 0.9848, 0.9848, 0.8660, 0.6428, 0.3420];

/// One pixel row split into planar channels (i32), the layout phase A reads.
struct PlanarRow {
    ch: [Vec<i32>; 3],
}

impl PlanarRow {
    fn new(w: usize) -> Self {
        Self { ch: [vec![0; w], vec![0; w], vec![0; w]] }
    }
    fn load(&mut self, img: &[u8], w: usize, y: usize, simd: Simd) {
        let row = &img[y * w * 3..(y + 1) * w * 3];
        let mut from = 0;
        #[cfg(target_arch = "x86_64")]
        if simd != Simd::Scalar {
            // SAFETY: the level was clamped to what this CPU runs (AVX2 at least).
            from = unsafe { avx2::deinterleave(row, &mut self.ch) };
        }
        let _ = simd;
        for (x, px) in row.chunks_exact(3).enumerate().skip(from) {
            self.ch[0][x] = px[0] as i32;
            self.ch[1][x] = px[1] as i32;
            self.ch[2][x] = px[2] as i32;
        }
    }
}

/// Phase A output for one row: per pixel, its bin and the votes for the four cells
/// (upper-left, lower-left, upper-right, lower-right).
struct Votes {
    bin: Vec<i32>,
    w11: Vec<f32>,
    w01: Vec<f32>,
    w10: Vec<f32>,
    w00: Vec<f32>,
}

/// Per-column vote geometry: histogram column of the left cell and the x fractions.
struct Columns {
    hx: Vec<usize>,
    vx0: Vec<f32>,
    vx1: Vec<f32>,
}

/// Extracts fHOG features (cell size 8) zero-padded by 4 cells top/left and 5 bottom/right.
/// Returns `None` when the image has fewer than 3 cells along a side (no features).
pub fn extract(img: &RgbImage) -> Option<FhogPlanes> {
    extract_with(img, avx2_available())
}

/// [`extract`], with the widest vector code this CPU runs when `simd` is set (every path
/// gives identical bits).
pub fn extract_with(img: &RgbImage, simd: bool) -> Option<FhogPlanes> {
    extract_at(img, Simd::from_flag(simd))
}

/// [`extract`] with the given vector code (lowered to what this CPU runs).
pub fn extract_at(img: &RgbImage, level: Simd) -> Option<FhogPlanes> {
    let simd = level.clamp();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let cells_nr = ((h as f32 / CELL as f32) as f64 + 0.5) as usize;
    let cells_nc = ((w as f32 / CELL as f32) as f64 + 0.5) as usize;
    if cells_nr < 3 || cells_nc < 3 {
        return None;
    }
    let visible_nr = (CELL * cells_nr).min(h) - 1;
    let visible_nc = (CELL * cells_nc).min(w) - 1;
    let hist = histogram(img.as_raw(), w, cells_nr, cells_nc, visible_nr, visible_nc, simd);
    Some(features(&hist, cells_nr, cells_nc, simd))
}

/// Which vector code the HOG detector runs. Every level gives identical bits: lanes never
/// mix pixels or columns, so only the width of the steps changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Simd {
    /// The plain Rust code.
    Scalar,
    /// 8 lanes.
    Avx2,
    /// 16 lanes where the step allows it, AVX2 elsewhere (AVX-512 F, BW and VL).
    Avx512,
}

impl Simd {
    /// The widest level this CPU runs.
    pub fn best() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl")
                && avx2_available()
            {
                return Simd::Avx512;
            }
        }
        if avx2_available() {
            Simd::Avx2
        } else {
            Simd::Scalar
        }
    }

    /// `best()` when `simd`, else `Scalar`.
    pub fn from_flag(simd: bool) -> Simd {
        if simd {
            Simd::best()
        } else {
            Simd::Scalar
        }
    }

    /// This level, lowered to what this CPU runs.
    pub fn clamp(self) -> Simd {
        self.min(Simd::best())
    }
}

/// Whether this CPU can run the AVX2 code paths.
pub fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The oriented-gradient histogram `[cells_nr + 2][cells_nc + 2][18]`.
fn histogram(p: &[u8], w: usize, cells_nr: usize, cells_nc: usize, visible_nr: usize, visible_nc: usize, simd: Simd) -> Vec<f32> {
    let hist_nc = cells_nc + 2;
    let hist_row = 18 * hist_nc;
    let mut hist = vec![0f32; (cells_nr + 2) * hist_row];
    // Vector columns are blocks of 8 starting at 1, 9, 17, ... while x0 < visible_nc - 7.
    let mut vector_end = 1usize;
    while vector_end + 7 < visible_nc {
        vector_end += 8;
    }
    let cols = Columns {
        hx: (0..visible_nc).map(|x| fraction(x).0).collect(),
        vx0: (0..visible_nc).map(|x| fraction(x).1).collect(),
        vx1: (0..visible_nc).map(|x| 1.0 - fraction(x).1).collect(),
    };
    assert!(cols.hx.iter().all(|&h| h + 2 <= hist_nc));
    let mut rows = [PlanarRow::new(w), PlanarRow::new(w), PlanarRow::new(w)];
    rows[0].load(p, w, 0, simd);
    rows[1].load(p, w, 1, simd);
    let mut votes = Votes {
        bin: vec![0; visible_nc],
        w11: vec![0.0; visible_nc],
        w01: vec![0.0; visible_nc],
        w10: vec![0.0; visible_nc],
        w00: vec![0.0; visible_nc],
    };
    for y in 1..visible_nr {
        rows[(y + 1) % 3].load(p, w, y + 1, simd);
        let (up, mid, down) = (&rows[(y + 2) % 3], &rows[y % 3], &rows[(y + 1) % 3]);
        let (hy, vy0) = fraction(y);
        let vy1 = 1.0 - vy0;
        let mut x = 1;
        #[cfg(target_arch = "x86_64")]
        match simd {
            // SAFETY: the level was clamped to what this CPU runs; every lane reads
            // x-1..x+8 < w within the rows.
            Simd::Avx2 => unsafe { avx2::phase_a(up, mid, down, &cols, vy0, vy1, vector_end, &mut votes) },
            // SAFETY: as above (16 lanes read x-1..x+16, masked to [1, visible_nc) + 1, and
            // visible_nc < w).
            Simd::Avx512 => unsafe {
                avx512::phase_a::<false>(up, mid, down, &cols, vy0, vy1, 1, vector_end, &mut votes);
                avx512::phase_a::<true>(up, mid, down, &cols, vy0, vy1, vector_end, visible_nc, &mut votes);
            },
            Simd::Scalar => {}
        }
        x = match simd {
            Simd::Scalar => x,
            Simd::Avx2 => vector_end,
            Simd::Avx512 => visible_nc,
        };
        for x in x..visible_nc {
            phase_a_scalar(up, mid, down, &cols, vy0, vy1, x, x < vector_end, &mut votes);
        }
        // Phase B: votes in raster order. Measured and not faster on Zen 4: keeping runs of
        // equal (cell, bin) in registers (branch mispredicts), visiting pixels so that
        // consecutive updates hit different cells, a [row][bin][column] layout with paired
        // 8-byte updates. Measured and not faster on a Xeon with AVX-512 either: the paired
        // layout (its 8-byte loads overlap the previous pixel's store half-way, which stalls
        // store forwarding) and a wavefront over 4 rows (row i voting cell column g - 2i,
        // which keeps every entry's order and makes the rows' updates independent): phase B
        // is bound by its 4 load-add-store updates per pixel, not by their latency. What did
        // help: no bounds checks and no branch on flat pixels.
        let (top, bot) = hist[hy * hist_row..(hy + 2) * hist_row].split_at_mut(hist_row);
        // SAFETY: the vote arrays and `cols.hx` are `visible_nc` long, and hx + 2 <= hist_nc
        // (checked before the loop).
        unsafe { vote_row(top, bot, &cols.hx, &votes, visible_nc) };
    }
    hist
}

/// Phase B for one pixel row: adds the votes of pixels [1, n) to the histogram rows above
/// (`top`) and below (`bot`) them, in raster order.
///
/// # Safety
/// Every vote array and `hx` hold at least `n` values, and `(hx[x] + 2) * 18 <= top.len()
/// == bot.len()` for every x < n.
#[inline(never)]
unsafe fn vote_row(top: &mut [f32], bot: &mut [f32], hx: &[usize], votes: &Votes, n: usize) {
    // Phase A only writes bins in 0..18; checked here since the indexing below relies on it.
    assert!(votes.bin[1..n].iter().all(|&b| (0..18).contains(&b)));
    let (t, b) = (top.as_mut_ptr(), bot.as_mut_ptr());
    for x in 1..n {
        // SAFETY: x < n (see the contract), and every histogram index hx*18 + bin + 18
        // (bin < 18) is below (hx + 2) * 18 <= top.len() == bot.len().
        unsafe {
            // A flat pixel votes +0.0, which leaves every (non-negative) bin unchanged, so
            // every pixel is added (no branch).
            let k = *hx.get_unchecked(x) * 18 + *votes.bin.get_unchecked(x) as usize;
            *t.add(k) += *votes.w11.get_unchecked(x);
            *b.add(k) += *votes.w01.get_unchecked(x);
            *t.add(k + 18) += *votes.w10.get_unchecked(x);
            *b.add(k + 18) += *votes.w00.get_unchecked(x);
        }
    }
}

/// Histogram index (cell + 1) and interpolation fraction of a pixel coordinate.
fn fraction(v: usize) -> (usize, f32) {
    let p = ((v as f32 as f64 + 0.5) / CELL as f32 as f64 - 0.5) as f32;
    let ip = p.floor();
    ((ip as i64 + 1) as usize, p - ip)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn phase_a_scalar(
    up: &PlanarRow,
    mid: &PlanarRow,
    down: &PlanarRow,
    cols: &Columns,
    vy0: f32,
    vy1: f32,
    x: usize,
    vector: bool,
    out: &mut Votes,
) {
    let g: [(i32, i32, i32); 3] = std::array::from_fn(|ch| {
        let gx = mid.ch[ch][x + 1] - mid.ch[ch][x - 1];
        let gy = down.ch[ch][x] - up.ch[ch][x];
        (gx, gy, gx * gx + gy * gy)
    });
    let best = if vector {
        let c = if g[0].2 > g[1].2 { 0 } else { 1 };
        if g[c].2 > g[2].2 {
            c
        } else {
            2
        }
    } else {
        let mut c = 0;
        if g[1].2 > g[c].2 {
            c = 1;
        }
        if g[2].2 > g[c].2 {
            c = 2;
        }
        c
    };
    let (gx, gy, len) = g[best];
    let (gx, gy) = (gx as f32, gy as f32);
    let v = (len as f32).sqrt();
    let mut best_dot = 0f32;
    let mut bin = 0;
    for o in 0..9 {
        let d = gx * UX[o] + gy * UY[o];
        if d > best_dot {
            best_dot = d;
            bin = o as i32;
        }
        if -d > best_dot {
            best_dot = -d;
            bin = o as i32 + 9;
        }
    }
    let (vx0, vx1) = (cols.vx0[x], cols.vx1[x]);
    out.bin[x] = bin;
    if vector {
        out.w11[x] = vy1 * (vx1 * v);
        out.w01[x] = vy0 * (vx1 * v);
        out.w10[x] = vy1 * (vx0 * v);
        out.w00[x] = vy0 * (vx0 * v);
    } else {
        out.w11[x] = (vy1 * vx1) * v;
        out.w01[x] = (vy0 * vx1) * v;
        out.w10[x] = (vy1 * vx0) * v;
        out.w00[x] = (vy0 * vx0) * v;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Columns, PlanarRow, Votes, UX, UY};
    use std::arch::x86_64::*;

    /// `pshufb` masks taking channel `ch` of 16 RGB pixels out of each of their three 16-byte
    /// thirds (-128: a zero byte).
    const fn channel_masks(ch: usize) -> [[i8; 16]; 3] {
        let mut m = [[-128i8; 16]; 3];
        let mut i = 0;
        while i < 16 {
            let src = 3 * i + ch;
            m[src / 16][i] = (src % 16) as i8;
            i += 1;
        }
        m
    }
    const MASKS: [[[i8; 16]; 3]; 3] = [channel_masks(0), channel_masks(1), channel_masks(2)];

    /// Splits a row of RGB bytes into the three i32 planes, 16 pixels at a time; returns how
    /// many pixels it did (the rest is left to the caller).
    ///
    /// # Safety
    /// AVX2 must be available; `ch` planes at least `row.len() / 3` long.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn deinterleave(row: &[u8], ch: &mut [Vec<i32>; 3]) -> usize {
        let n = row.len() / 3;
        assert!(ch.iter().all(|c| c.len() >= n));
        let masks: [[__m128i; 3]; 3] =
            std::array::from_fn(|c| std::array::from_fn(|v| _mm_loadu_si128(MASKS[c][v].as_ptr() as *const __m128i)));
        let mut x = 0;
        while x + 16 <= n {
            let src = row.as_ptr().add(3 * x);
            let v: [__m128i; 3] = std::array::from_fn(|k| _mm_loadu_si128(src.add(16 * k) as *const __m128i));
            for (c, plane) in ch.iter_mut().enumerate() {
                let m = &masks[c];
                let b =
                    _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(v[0], m[0]), _mm_shuffle_epi8(v[1], m[1])), _mm_shuffle_epi8(v[2], m[2]));
                let dst = plane.as_mut_ptr().add(x) as *mut __m256i;
                _mm256_storeu_si256(dst, _mm256_cvtepu8_epi32(b));
                _mm256_storeu_si256(dst.add(1), _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(b)));
            }
            x += 16;
        }
        x
    }

    /// Phase A for the vector columns [1, vector_end), 8 pixels at a time, with dlib's
    /// vector-column rules.
    ///
    /// # Safety
    /// AVX2 must be available; rows must be at least `vector_end + 1` long.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn phase_a(
        up: &PlanarRow,
        mid: &PlanarRow,
        down: &PlanarRow,
        cols: &Columns,
        vy0: f32,
        vy1: f32,
        vector_end: usize,
        out: &mut Votes,
    ) {
        let (vy0, vy1) = (_mm256_set1_ps(vy0), _mm256_set1_ps(vy1));
        let sign = _mm256_set1_ps(-0.0);
        let mut x = 1;
        while x < vector_end {
            let grad = |ch: usize| {
                let l = _mm256_loadu_si256(mid.ch[ch].as_ptr().add(x - 1) as *const __m256i);
                let r = _mm256_loadu_si256(mid.ch[ch].as_ptr().add(x + 1) as *const __m256i);
                let u = _mm256_loadu_si256(up.ch[ch].as_ptr().add(x) as *const __m256i);
                let d = _mm256_loadu_si256(down.ch[ch].as_ptr().add(x) as *const __m256i);
                let gx = _mm256_sub_epi32(r, l);
                let gy = _mm256_sub_epi32(d, u);
                (gx, gy, _mm256_add_epi32(_mm256_mullo_epi32(gx, gx), _mm256_mullo_epi32(gy, gy)))
            };
            let (rx, ry, rl) = grad(0);
            let (gx_, gy_, gl) = grad(1);
            let (bx, by, bl) = grad(2);
            // c = lenR > lenG ? R : G; c = len_c > lenB ? c : B
            let m = _mm256_cmpgt_epi32(rl, gl);
            let (cx, cy, cl) = (_mm256_blendv_epi8(gx_, rx, m), _mm256_blendv_epi8(gy_, ry, m), _mm256_blendv_epi8(gl, rl, m));
            let m = _mm256_cmpgt_epi32(cl, bl);
            let (gx, gy, len) = (_mm256_blendv_epi8(bx, cx, m), _mm256_blendv_epi8(by, cy, m), _mm256_blendv_epi8(bl, cl, m));
            let gxf = _mm256_cvtepi32_ps(gx);
            let gyf = _mm256_cvtepi32_ps(gy);
            let v = _mm256_sqrt_ps(_mm256_cvtepi32_ps(len));
            let mut best = _mm256_setzero_ps();
            let mut bin = _mm256_setzero_si256();
            for o in 0..9 {
                let d = _mm256_add_ps(_mm256_mul_ps(gxf, _mm256_set1_ps(UX[o])), _mm256_mul_ps(gyf, _mm256_set1_ps(UY[o])));
                let m = _mm256_cmp_ps::<_CMP_GT_OQ>(d, best);
                best = _mm256_blendv_ps(best, d, m);
                bin = _mm256_blendv_epi8(bin, _mm256_set1_epi32(o as i32), _mm256_castps_si256(m));
                let nd = _mm256_xor_ps(d, sign);
                let m = _mm256_cmp_ps::<_CMP_GT_OQ>(nd, best);
                best = _mm256_blendv_ps(best, nd, m);
                bin = _mm256_blendv_epi8(bin, _mm256_set1_epi32(o as i32 + 9), _mm256_castps_si256(m));
            }
            let vx0 = _mm256_loadu_ps(cols.vx0.as_ptr().add(x));
            let vx1 = _mm256_loadu_ps(cols.vx1.as_ptr().add(x));
            let a = _mm256_mul_ps(vx1, v);
            let b = _mm256_mul_ps(vx0, v);
            _mm256_storeu_si256(out.bin.as_mut_ptr().add(x) as *mut __m256i, bin);
            _mm256_storeu_ps(out.w11.as_mut_ptr().add(x), _mm256_mul_ps(vy1, a));
            _mm256_storeu_ps(out.w01.as_mut_ptr().add(x), _mm256_mul_ps(vy0, a));
            _mm256_storeu_ps(out.w10.as_mut_ptr().add(x), _mm256_mul_ps(vy1, b));
            _mm256_storeu_ps(out.w00.as_mut_ptr().add(x), _mm256_mul_ps(vy0, b));
            x += 8;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Columns, PlanarRow, Votes, UX, UY};
    use std::arch::x86_64::*;

    /// Phase A for the vector columns [1, vector_end), 16 pixels at a time (the last step
    /// masked), with dlib's vector-column rules: every lane computes what
    /// [`super::avx2::phase_a`] computes.
    ///
    /// The orientation search keeps the first of the 18 candidates (d0, -d0, d1, -d1, ...)
    /// strictly above the running best, which starts at 0: since at most one of d and -d
    /// can exceed a best >= 0, that is the first |d_o| above the best, with bin o when d_o > 0
    /// and o + 9 otherwise.
    ///
    /// With `SCALAR_RULES` it does the pixels [from, to) with the scalar code's rules
    /// instead (channel ties to the earlier channel, votes `(vy*vx)*v`), as
    /// [`super::phase_a_scalar`] does them.
    ///
    /// # Safety
    /// AVX-512F/BW must be available; rows must be at least `to + 1` long.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bw,avx2")]
    pub(super) unsafe fn phase_a<const SCALAR_RULES: bool>(
        up: &PlanarRow,
        mid: &PlanarRow,
        down: &PlanarRow,
        cols: &Columns,
        vy0: f32,
        vy1: f32,
        from: usize,
        to: usize,
        out: &mut Votes,
    ) {
        let (vy0, vy1) = (_mm512_set1_ps(vy0), _mm512_set1_ps(vy1));
        let ux: [__m512; 9] = std::array::from_fn(|o| _mm512_set1_ps(UX[o]));
        let uy: [__m512; 9] = std::array::from_fn(|o| _mm512_set1_ps(UY[o]));
        let mut x = from;
        while x < to {
            let m: __mmask16 = if x + 16 <= to { !0 } else { (1u32 << (to - x)) as u16 - 1 };
            let grad = |ch: usize| {
                let l = _mm512_maskz_loadu_epi32(m, mid.ch[ch].as_ptr().add(x - 1));
                let r = _mm512_maskz_loadu_epi32(m, mid.ch[ch].as_ptr().add(x + 1));
                let u = _mm512_maskz_loadu_epi32(m, up.ch[ch].as_ptr().add(x));
                let d = _mm512_maskz_loadu_epi32(m, down.ch[ch].as_ptr().add(x));
                let gx = _mm512_cvtepi32_ps(_mm512_sub_epi32(r, l));
                let gy = _mm512_cvtepi32_ps(_mm512_sub_epi32(d, u));
                // Integers below 2^24: exact in f32, so comparisons are the integers'.
                (gx, gy, _mm512_add_ps(_mm512_mul_ps(gx, gx), _mm512_mul_ps(gy, gy)))
            };
            let (rx, ry, rl) = grad(0);
            let (gx_, gy_, gl) = grad(1);
            let (bx, by, bl) = grad(2);
            let (gx, gy, len) = if SCALAR_RULES {
                // c = R; if lenG > len_c { c = G }; if lenB > len_c { c = B }
                let k = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(gl, rl);
                let (cx, cy, cl) = (_mm512_mask_blend_ps(k, rx, gx_), _mm512_mask_blend_ps(k, ry, gy_), _mm512_mask_blend_ps(k, rl, gl));
                let k = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(bl, cl);
                (_mm512_mask_blend_ps(k, cx, bx), _mm512_mask_blend_ps(k, cy, by), _mm512_mask_blend_ps(k, cl, bl))
            } else {
                // c = lenR > lenG ? R : G; c = len_c > lenB ? c : B
                let k = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(rl, gl);
                let (cx, cy, cl) = (_mm512_mask_blend_ps(k, gx_, rx), _mm512_mask_blend_ps(k, gy_, ry), _mm512_mask_blend_ps(k, gl, rl));
                let k = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(cl, bl);
                (_mm512_mask_blend_ps(k, bx, cx), _mm512_mask_blend_ps(k, by, cy), _mm512_mask_blend_ps(k, bl, cl))
            };
            let v = _mm512_sqrt_ps(len);
            let mut best = _mm512_setzero_ps();
            let mut best_d = _mm512_setzero_ps();
            let mut bin = _mm512_setzero_si512();
            for o in 0..9 {
                let d = _mm512_add_ps(_mm512_mul_ps(gx, ux[o]), _mm512_mul_ps(gy, uy[o]));
                let a = _mm512_abs_ps(d);
                let k = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, best);
                best = _mm512_mask_mov_ps(best, k, a);
                best_d = _mm512_mask_mov_ps(best_d, k, d);
                bin = _mm512_mask_mov_epi32(bin, k, _mm512_set1_epi32(o as i32));
            }
            let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(best_d, _mm512_setzero_ps());
            let bin = _mm512_mask_add_epi32(bin, neg, bin, _mm512_set1_epi32(9));
            let vx0 = _mm512_maskz_loadu_ps(m, cols.vx0.as_ptr().add(x));
            let vx1 = _mm512_maskz_loadu_ps(m, cols.vx1.as_ptr().add(x));
            _mm512_mask_storeu_epi32(out.bin.as_mut_ptr().add(x), m, bin);
            let w = if SCALAR_RULES {
                let v = |a: __m512, b: __m512| _mm512_mul_ps(_mm512_mul_ps(a, b), v);
                [v(vy1, vx1), v(vy0, vx1), v(vy1, vx0), v(vy0, vx0)]
            } else {
                let a = _mm512_mul_ps(vx1, v);
                let b = _mm512_mul_ps(vx0, v);
                [_mm512_mul_ps(vy1, a), _mm512_mul_ps(vy0, a), _mm512_mul_ps(vy1, b), _mm512_mul_ps(vy0, b)]
            };
            _mm512_mask_storeu_ps(out.w11.as_mut_ptr().add(x), m, w[0]);
            _mm512_mask_storeu_ps(out.w01.as_mut_ptr().add(x), m, w[1]);
            _mm512_mask_storeu_ps(out.w10.as_mut_ptr().add(x), m, w[2]);
            _mm512_mask_storeu_ps(out.w00.as_mut_ptr().add(x), m, w[3]);
            x += 16;
        }
    }

    /// [`super::features`] 16 cells of a row at a time (the last step masked): every lane
    /// does the scalar code's operations in its order. `data` must be zeroed, 31 planes of
    /// `(cells_nr + 7) x (cells_nc + 7)`.
    ///
    /// # Safety
    /// AVX-512F must be available; `hist` is `[cells_nr + 2][cells_nc + 2][18]`.
    #[target_feature(enable = "avx512f,avx2")]
    pub(super) unsafe fn features(hist: &[f32], cells_nr: usize, cells_nc: usize, data: &mut [f32]) {
        let hist_nc = cells_nc + 2;
        let (hog_nr, hog_nc) = (cells_nr - 2, cells_nc - 2);
        let (rows, cols) = (hog_nr + 9, hog_nc + 9);
        let plane = rows * cols;
        assert!(hist.len() == (cells_nr + 2) * hist_nc * 18 && data.len() == 31 * plane);
        let lanes = _mm512_setr_epi32(0, 18, 36, 54, 72, 90, 108, 126, 144, 162, 180, 198, 216, 234, 252, 270);
        let mask = |n: usize| -> __mmask16 {
            if n >= 16 {
                !0
            } else {
                ((1u32 << n) - 1) as u16
            }
        };
        // 16 cells' bin o from cell (r, c): stride 18 apart.
        let gather = |m: __mmask16, r: usize, c: usize, o: usize| {
            _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), m, lanes, hist.as_ptr().add((r * hist_nc + c) * 18 + o))
        };
        let mut norm = vec![0f32; cells_nr * cells_nc];
        for r in 0..cells_nr {
            let mut c = 0;
            while c < cells_nc {
                let m = mask(cells_nc - c);
                let mut n = _mm512_setzero_ps();
                for o in 0..9 {
                    let s = _mm512_add_ps(gather(m, r + 1, c + 1, o), gather(m, r + 1, c + 1, o + 9));
                    n = _mm512_add_ps(n, _mm512_mul_ps(s, s));
                }
                _mm512_mask_storeu_ps(norm.as_mut_ptr().add(r * cells_nc + c), m, n);
                c += 16;
            }
        }
        let eps = _mm512_set1_ps(0.0001f32);
        let (p2, p1) = (_mm512_set1_ps(0.2f32), _mm512_set1_ps(0.1f32));
        let texture_scale = _mm512_set1_ps((2.0 * 0.2357f64) as f32);
        let nrm = norm.as_ptr();
        let out = data.as_mut_ptr();
        let sum4 = |f: [__m512; 4]| _mm512_add_ps(_mm512_add_ps(f[0], f[1]), _mm512_add_ps(f[2], f[3]));
        for y in 0..hog_nr {
            let mut x = 0;
            while x < hog_nc {
                let m = mask(hog_nc - x);
                let n = |a: usize, b: usize| _mm512_maskz_loadu_ps(m, nrm.add(a * cells_nc + b + x));
                let origins = [(y + 1, 1), (y, 1), (y + 1, 0), (y, 0)];
                let mut nn = [_mm512_setzero_ps(); 4];
                let mut mk = [_mm512_setzero_ps(); 4];
                for (k, &(a, b)) in origins.iter().enumerate() {
                    let sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(n(a, b), n(a, b + 1)), n(a + 1, b)), n(a + 1, b + 1));
                    nn[k] = _mm512_mul_ps(p2, _mm512_sqrt_ps(_mm512_add_ps(sum, eps)));
                    // Masked-off lanes divide 0.1 by 0.2*sqrt(eps): finite, and never stored.
                    mk[k] = _mm512_div_ps(p1, nn[k]);
                }
                let base = (4 + y) * cols + 4 + x;
                let hc: [__m512; 18] = std::array::from_fn(|o| gather(m, y + 2, x + 2, o));
                let mut t = [_mm512_setzero_ps(); 4];
                let mut part = [_mm512_setzero_ps(); 4];
                for (o, &h) in hc.iter().enumerate() {
                    let f: [__m512; 4] = std::array::from_fn(|k| _mm512_mul_ps(_mm512_min_ps(h, nn[k]), mk[k]));
                    _mm512_mask_storeu_ps(out.add(o * plane + base), m, sum4(f));
                    for k in 0..4 {
                        // (hk[g] + hk[g+1]) + hk[g+2], added to t at the group's end.
                        part[k] = match o % 3 {
                            0 => f[k],
                            _ => _mm512_add_ps(part[k], f[k]),
                        };
                        if o % 3 == 2 {
                            t[k] = _mm512_add_ps(t[k], part[k]);
                        }
                    }
                }
                for o in 0..9 {
                    let s = _mm512_add_ps(hc[o], hc[o + 9]);
                    let f: [__m512; 4] = std::array::from_fn(|k| _mm512_mul_ps(_mm512_min_ps(s, nn[k]), mk[k]));
                    _mm512_mask_storeu_ps(out.add((18 + o) * plane + base), m, sum4(f));
                }
                for (k, &tk) in t.iter().enumerate() {
                    _mm512_mask_storeu_ps(out.add((27 + k) * plane + base), m, _mm512_mul_ps(tk, texture_scale));
                }
                x += 16;
            }
        }
    }
}

/// Normalisation and the 31 features per cell, from the histogram.
fn features(hist: &[f32], cells_nr: usize, cells_nc: usize, simd: Simd) -> FhogPlanes {
    let hist_nc = cells_nc + 2;
    let (hog_nr, hog_nc) = (cells_nr - 2, cells_nc - 2);
    let (rows, cols) = (hog_nr + 9, hog_nc + 9);
    let mut data = vec![0f32; 31 * rows * cols];
    assert_eq!(hist.len(), (cells_nr + 2) * hist_nc * 18);
    #[cfg(target_arch = "x86_64")]
    if simd == Simd::Avx512 {
        // SAFETY: the level was clamped to what this CPU runs; sizes checked above.
        unsafe { avx512::features(hist, cells_nr, cells_nc, &mut data) };
        return FhogPlanes { rows, cols, data };
    }
    let _ = simd;
    let cell = |r: usize, c: usize| -> &[f32] { &hist[(r * hist_nc + c) * 18..][..18] };
    let mut norm = vec![0f32; cells_nr * cells_nc];
    for r in 0..cells_nr {
        for c in 0..cells_nc {
            let hc = cell(r + 1, c + 1);
            let mut n = 0f32;
            for o in 0..9 {
                let s = hc[o] + hc[o + 9];
                n += s * s;
            }
            norm[r * cells_nc + c] = n;
        }
    }
    let plane = rows * cols;
    let eps = 0.0001f32;
    let texture_scale = (2.0 * 0.2357f64) as f32;
    let n = |r: usize, c: usize| norm[r * cells_nc + c];
    for y in 0..hog_nr {
        for x in 0..hog_nc {
            let hc = cell(y + 2, x + 2);
            let origins = [(y + 1, x + 1), (y, x + 1), (y + 1, x), (y, x)];
            let mut nn = [0f32; 4];
            let mut m = [0f32; 4];
            for (k, &(a, b)) in origins.iter().enumerate() {
                nn[k] = 0.2f32 * ((((n(a, b) + n(a, b + 1)) + n(a + 1, b)) + n(a + 1, b + 1)) + eps).sqrt();
                m[k] = 0.1f32 / nn[k];
            }
            let sum4 = |h: [f32; 4]| (h[0] + h[1]) + (h[2] + h[3]);
            let base = (4 + y) * cols + 4 + x;
            let mut hk = [[0f32; 18]; 4];
            for o in 0..18 {
                let f: [f32; 4] = std::array::from_fn(|k| hc[o].min(nn[k]) * m[k]);
                for k in 0..4 {
                    hk[k][o] = f[k];
                }
                data[o * plane + base] = sum4(f);
            }
            for o in 0..9 {
                let s = hc[o] + hc[o + 9];
                let f: [f32; 4] = std::array::from_fn(|k| s.min(nn[k]) * m[k]);
                data[(18 + o) * plane + base] = sum4(f);
            }
            for k in 0..4 {
                let mut t = 0f32;
                for g in [0, 3, 6, 9, 12, 15] {
                    t += (hk[k][g] + hk[k][g + 1]) + hk[k][g + 2];
                }
                data[(27 + k) * plane + base] = t * texture_scale;
            }
        }
    }
    FhogPlanes { rows, cols, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_and_scalar_histograms_are_bit_identical() {
        if !avx2_available() {
            eprintln!("SKIP: no AVX2 on this CPU");
            return;
        }
        // Random textures with many exact gradient-length ties (few grey levels).
        let mut seed = 1u32;
        for (w, h, levels) in [(37u32, 29u32, 3u32), (80, 64, 256), (121, 90, 5), (24, 24, 2)] {
            let img = RgbImage::from_fn(w, h, |_, _| {
                let mut c = [0u8; 3];
                for v in &mut c {
                    seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
                    *v = (((seed >> 16) % levels) * (255 / levels.max(2))) as u8;
                }
                image::Rgb(c)
            });
            let (wu, hu) = (w as usize, h as usize);
            let cells_nr = ((hu as f32 / 8.0) as f64 + 0.5) as usize;
            let cells_nc = ((wu as f32 / 8.0) as f64 + 0.5) as usize;
            let vnr = (8 * cells_nr).min(hu) - 1;
            let vnc = (8 * cells_nc).min(wu) - 1;
            let b = histogram(img.as_raw(), wu, cells_nr, cells_nc, vnr, vnc, Simd::Scalar);
            for level in [Simd::Avx2, Simd::Avx512] {
                let a = histogram(img.as_raw(), wu, cells_nr, cells_nc, vnr, vnc, level.clamp());
                let diff = a.iter().zip(&b).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
                assert_eq!(diff, 0, "{w}x{h} {level:?}");
                let (fa, fb) = (extract_at(&img, level).unwrap(), extract_at(&img, Simd::Scalar).unwrap());
                assert!(fa.data.iter().zip(&fb.data).all(|(x, y)| x.to_bits() == y.to_bits()), "features {w}x{h} {level:?}");
            }
        }
    }

    #[test]
    fn vector_and_scalar_features_are_bit_identical() {
        eprintln!("vector code on this CPU: {:?}", Simd::best());
        let mut seed = 5u32;
        for (cells_nr, cells_nc) in [(3usize, 3usize), (4, 17), (9, 16), (12, 19), (5, 40), (20, 33)] {
            // Non-negative bins, many zeros and repeated values (min() ties).
            let hist: Vec<f32> = (0..(cells_nr + 2) * (cells_nc + 2) * 18)
                .map(|_| {
                    seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
                    match (seed >> 16) % 4 {
                        0 => 0.0,
                        1 => 0.25,
                        _ => (seed >> 9) as f32 / (1u32 << 23) as f32 * 40.0,
                    }
                })
                .collect();
            let a = features(&hist, cells_nr, cells_nc, Simd::Scalar);
            let b = features(&hist, cells_nr, cells_nc, Simd::Avx512.clamp());
            assert!(a.data.iter().zip(&b.data).all(|(x, y)| x.to_bits() == y.to_bits()), "{cells_nr}x{cells_nc}");
        }
    }
}
