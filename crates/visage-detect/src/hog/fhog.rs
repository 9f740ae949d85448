//! Felzenszwalb HOG features as dlib's `extract_fhog_features` computes them (cell 8, filter
//! padding 10x10), bit for bit. See `hog-detector.md` section 5.1.
//!
//! Pixels in 8-column "vector" blocks follow dlib's SIMD code (channel ties go to the later
//! channel, votes multiply as vy*(vx*v)); the remaining right-hand columns follow its scalar
//! code (ties to the earlier channel, votes (vy*vx)*v).
//!
//! Per row, phase A computes every pixel's orientation bin and its four vote weights; it is
//! lane-parallel and runs 8 pixels at a time with AVX2 when available. Phase B adds the votes
//! into the histogram in raster order, as dlib does: f32 sums depend on their order.

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
    fn load(&mut self, img: &[u8], w: usize, y: usize) {
        let row = &img[y * w * 3..(y + 1) * w * 3];
        for (x, px) in row.chunks_exact(3).enumerate() {
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

/// [`extract`], with the AVX2 histogram when `simd` is set and this CPU has AVX2 (both
/// paths give identical bits).
pub fn extract_with(img: &RgbImage, simd: bool) -> Option<FhogPlanes> {
    let simd = simd && avx2_available();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let cells_nr = ((h as f32 / CELL as f32) as f64 + 0.5) as usize;
    let cells_nc = ((w as f32 / CELL as f32) as f64 + 0.5) as usize;
    if cells_nr < 3 || cells_nc < 3 {
        return None;
    }
    let visible_nr = (CELL * cells_nr).min(h) - 1;
    let visible_nc = (CELL * cells_nc).min(w) - 1;
    let hist = histogram(img.as_raw(), w, cells_nr, cells_nc, visible_nr, visible_nc, simd);
    Some(features(&hist, cells_nr, cells_nc))
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
fn histogram(p: &[u8], w: usize, cells_nr: usize, cells_nc: usize, visible_nr: usize, visible_nc: usize, simd: bool) -> Vec<f32> {
    let hist_nc = cells_nc + 2;
    let mut hist = vec![0f32; (cells_nr + 2) * hist_nc * 18];
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
    let mut rows = [PlanarRow::new(w), PlanarRow::new(w), PlanarRow::new(w)];
    rows[0].load(p, w, 0);
    rows[1].load(p, w, 1);
    let mut votes = Votes {
        bin: vec![0; visible_nc],
        w11: vec![0.0; visible_nc],
        w01: vec![0.0; visible_nc],
        w10: vec![0.0; visible_nc],
        w00: vec![0.0; visible_nc],
    };
    for y in 1..visible_nr {
        rows[(y + 1) % 3].load(p, w, y + 1);
        let (up, mid, down) = (&rows[(y + 2) % 3], &rows[y % 3], &rows[(y + 1) % 3]);
        let (hy, vy0) = fraction(y);
        let vy1 = 1.0 - vy0;
        let mut x = 1;
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: AVX2 was detected; every lane reads x-1..x+8 < w within the rows.
            unsafe { avx2::phase_a(up, mid, down, &cols, vy0, vy1, vector_end, &mut votes) };
            x = vector_end;
        }
        let _ = simd;
        for x in x..visible_nc {
            phase_a_scalar(up, mid, down, &cols, vy0, vy1, x, x < vector_end, &mut votes);
        }
        // Phase B: votes in raster order. Measured and not faster on Zen 4: keeping runs of
        // equal (cell, bin) in registers (branch mispredicts), visiting pixels so that
        // consecutive updates hit different cells, a [row][bin][column] layout with paired
        // 8-byte updates, and a 16-lane AVX-512 phase A.
        let top = hy * hist_nc * 18;
        let bot = (hy + 1) * hist_nc * 18;
        for x in 1..visible_nc {
            // A flat pixel votes +0.0, which leaves every (non-negative) bin unchanged.
            if votes.w11[x] == 0.0 && votes.w10[x] == 0.0 {
                continue;
            }
            let k = cols.hx[x] * 18 + votes.bin[x] as usize;
            hist[top + k] += votes.w11[x];
            hist[bot + k] += votes.w01[x];
            hist[top + k + 18] += votes.w10[x];
            hist[bot + k + 18] += votes.w00[x];
        }
    }
    hist
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

/// Normalisation and the 31 features per cell, from the histogram.
fn features(hist: &[f32], cells_nr: usize, cells_nc: usize) -> FhogPlanes {
    let hist_nc = cells_nc + 2;
    let (hog_nr, hog_nc) = (cells_nr - 2, cells_nc - 2);
    let mut norm = vec![0f32; cells_nr * cells_nc];
    for r in 0..cells_nr {
        for c in 0..cells_nc {
            let hc = &hist[((r + 1) * hist_nc + c + 1) * 18..][..18];
            let mut n = 0f32;
            for o in 0..9 {
                let s = hc[o] + hc[o + 9];
                n += s * s;
            }
            norm[r * cells_nc + c] = n;
        }
    }
    let (rows, cols) = (hog_nr + 9, hog_nc + 9);
    let plane = rows * cols;
    let mut data = vec![0f32; 31 * plane];
    let eps = 0.0001f32;
    let texture_scale = (2.0 * 0.2357f64) as f32;
    let n = |r: usize, c: usize| norm[r * cells_nc + c];
    for y in 0..hog_nr {
        for x in 0..hog_nc {
            let hc = &hist[((y + 2) * hist_nc + x + 2) * 18..][..18];
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
            let a = histogram(img.as_raw(), wu, cells_nr, cells_nc, vnr, vnc, true);
            let b = histogram(img.as_raw(), wu, cells_nr, cells_nc, vnr, vnc, false);
            let diff = a.iter().zip(&b).filter(|(x, y)| x.to_bits() != y.to_bits()).count();
            assert_eq!(diff, 0, "{w}x{h}");
        }
    }
}
