//! Winograd F(2x2, 3x3) convolution for the 3x3, stride-1, padding-1 layers (86% of the
//! network's multiply-adds): 16 multiplications per 2x2 output tile and channel pair instead
//! of 36.
//!
//! `Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A` per 4x4 input tile `d` and 3x3 filter `g`. The filters
//! are transformed once, at load, into 16 `Cin x Cout` matrices packed for the same
//! micro-kernels as the direct convolution. At run time, blocks of tiles small enough to stay
//! in cache go through the input transform, 16 GEMMs and the output transform, which also
//! applies the folded bias/affine, the residual add and relu. Blocks run on all cores.
//! The transforms only add, subtract and halve, so results differ from the direct convolution
//! by float rounding alone (well inside the 1e-4 parity bound; see the tests).

use crate::conv::ConvLayer;
use crate::kernels::{run_tile, Isa, Tile, ZERO_ROW};
use crate::tensor::Shape;
#[cfg(test)]
use crate::tensor::{Affine, ConvWeights};
use rayon::prelude::*;

/// The output of [`WinogradConv::run`], written by blocks of disjoint tiles in parallel.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: an `OutPtr` lives only inside `WinogradConv::run`, which holds the `&mut [f32]` it
// comes from for the whole parallel loop; blocks write disjoint pixels through it (see
// `output_transform`), so sharing it between threads races on nothing.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

/// Floats per block of V (or M) aimed at: a quarter of a 1 MB L2.
const BLOCK_FLOATS: usize = 64 * 1024;

/// A 3x3 stride-1 pad-1 convolution + affine (+ residual) (+ relu), computed by Winograd.
pub(crate) struct WinogradConv {
    isa: Isa,
    cin: usize,
    cout: usize,
    relu: bool,
    /// 16 matrices `G g Gᵀ`, each packed as `[panel][cin][NR]`.
    packed: Vec<f32>,
    panel_stride: usize,
    scale: Vec<f32>,
    shift: Vec<f32>,
    ones: Vec<f32>,
    zeros: Vec<f32>,
}

/// Whether a convolution of `kernel`, `stride`, `pad` can run through [`WinogradConv`] on an
/// input of `h x w`.
pub(crate) fn applies((kernel, stride, pad): (usize, usize, usize), h: usize, w: usize) -> bool {
    kernel == 3 && stride == 1 && pad == 1 && h >= 3 && w >= 3
}

impl WinogradConv {
    /// Transforms and packs the filters of `conv` followed by `affine` for `isa`.
    #[cfg(test)]
    pub fn new(isa: Isa, conv: &ConvWeights, affine: &Affine, relu: bool) -> Self {
        assert!(applies((conv.kernel, conv.stride, conv.pad), 3, 3));
        let (cin, cout) = (conv.in_channels, conv.out_channels);
        let scale = affine.gamma.clone();
        let shift: Vec<f32> = (0..cout).map(|o| affine.gamma[o] * conv.bias[o] + affine.beta[o]).collect();
        Self::from_parts(isa, cin, cout, relu, |o, ci, ky, kx| conv.filters[((o * cin + ci) * 3 + ky) * 3 + kx], &scale, &shift)
    }

    /// The Winograd form of a direct layer (same filters, folded affine and relu).
    pub fn from_direct(d: &ConvLayer) -> Self {
        assert!(applies(d.geometry(), 3, 3));
        let (scale, shift) = d.scale_shift();
        Self::from_parts(d.isa(), d.in_channels, d.out_channels, d.relu(), |o, ci, ky, kx| d.filter(o, ci, ky, kx), scale, shift)
    }

    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        isa: Isa,
        cin: usize,
        cout: usize,
        relu: bool,
        tap: impl Fn(usize, usize, usize, usize) -> f32,
        sc: &[f32],
        sh: &[f32],
    ) -> Self {
        let nr = isa.nr();
        let panels = cout.div_ceil(nr);
        let panel_stride = cin * nr;
        let mut packed = vec![0f32; 16 * panels * panel_stride];
        const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];
        for o in 0..cout {
            for ci in 0..cin {
                let g = |r: usize, c: usize| tap(o, ci, r, c) as f64;
                for xi in 0..4 {
                    for nu in 0..4 {
                        let u: f64 = G[xi]
                            .iter()
                            .enumerate()
                            .map(|(r, gr)| G[nu].iter().enumerate().map(|(c, gc)| gr * g(r, c) * gc).sum::<f64>())
                            .sum();
                        let (panel, j) = (o / nr, o % nr);
                        packed[((xi * 4 + nu) * panels + panel) * panel_stride + ci * nr + j] = u as f32;
                    }
                }
            }
        }
        let mut scale = vec![0f32; panels * nr];
        let mut shift = vec![0f32; panels * nr];
        scale[..cout].copy_from_slice(&sc[..cout]);
        shift[..cout].copy_from_slice(&sh[..cout]);
        Self { isa, cin, cout, relu, packed, panel_stride, scale, shift, ones: vec![1.0; panels * nr], zeros: vec![0.0; panels * nr] }
    }

    /// Tiles per block: a multiple of the micro-kernel's rows, sized so that one block of
    /// transformed inputs or products stays in cache.
    fn block_tiles(&self) -> usize {
        let mr = self.isa.mr();
        let t = BLOCK_FLOATS / (16 * self.cin.max(self.cout));
        (t / mr).max(1) * mr
    }

    /// Computes the layer on an NHWC input of geometry `s`, writing `out` (same geometry but
    /// `cout` channels).
    pub fn run(&self, s: Shape, input: &[f32], residual: Option<&[f32]>, out: &mut [f32]) {
        assert_eq!(s.c, self.cin);
        let tiles = s.n * s.h.div_ceil(2) * s.w.div_ceil(2);
        // Blocks small enough for the cache, and at least 4 per thread when the layer allows.
        let mr = self.isa.mr();
        let threads = rayon::current_num_threads().max(1);
        let bt = self.block_tiles().min((tiles.div_ceil(4 * threads)).div_ceil(mr) * mr).max(mr);
        let blocks = tiles.div_ceil(bt);
        let out_len = s.n * s.h * s.w * self.cout;
        assert!(input.len() >= s.len() && out.len() >= out_len);
        if let Some(r) = residual {
            assert!(r.len() >= out_len);
        }
        let out = OutPtr(out.as_mut_ptr());
        let (vlen, mlen) = (16 * bt * self.cin, 16 * bt * self.cout);
        (0..blocks).into_par_iter().for_each_init(
            || (vec![0f32; vlen], vec![0f32; mlen]),
            |(v, m), b| {
                let t0 = b * bt;
                let n = bt.min(tiles - t0);
                self.input_transform(s, input, t0, n, v);
                self.products(v, n, m);
                // SAFETY: `out` holds `out_len` values (asserted above) and stays borrowed
                // for the whole loop; this block writes only the pixels of its own tiles,
                // which no other block writes.
                unsafe { self.output_transform(s, t0, n, m, residual, out) };
            },
        );
    }

    /// `V[xi nu][t][ci] = (Bᵀ d B)` for tiles `t0..t0+n`, `d` the 4x4 input patch around the
    /// tile (rows 2ty-1..2ty+2, columns 2tx-1..2tx+2, zero outside the image).
    fn input_transform(&self, s: Shape, input: &[f32], t0: usize, n: usize, v: &mut [f32]) {
        let (th, tw) = (s.h.div_ceil(2), s.w.div_ceil(2));
        let c = self.cin;
        let bt = v.len() / (16 * c);
        let zero = vec![0f32; c];
        let mut d: [&[f32]; 16] = [&zero; 16];
        let mut tmp = vec![0f32; 16 * c];
        for t in 0..n {
            let g = t0 + t;
            let (img, ty, tx) = (g / (th * tw), (g / tw) % th, g % tw);
            for (k, slot) in d.iter_mut().enumerate() {
                let (y, x) = ((2 * ty + k / 4) as isize - 1, (2 * tx + k % 4) as isize - 1);
                *slot = if y >= 0 && x >= 0 && (y as usize) < s.h && (x as usize) < s.w {
                    let o = ((img * s.h + y as usize) * s.w + x as usize) * c;
                    &input[o..o + c]
                } else {
                    &zero
                };
            }
            // Bᵀ d: rows r0 = d0 - d2, r1 = d1 + d2, r2 = d2 - d1, r3 = d1 - d3 (per column).
            for col in 0..4 {
                let (d0, d1, d2, d3) = (d[col], d[4 + col], d[8 + col], d[12 + col]);
                let (t0, rest) = tmp[col * c..].split_at_mut(c);
                let t1 = &mut rest[3 * c..4 * c];
                for ((o, &a), &b) in t0.iter_mut().zip(d0).zip(d2) {
                    *o = a - b;
                }
                for ((o, &a), &b) in t1.iter_mut().zip(d1).zip(d2) {
                    *o = a + b;
                }
                for ((o, &a), &b) in tmp[(8 + col) * c..(9 + col) * c].iter_mut().zip(d2).zip(d1) {
                    *o = a - b;
                }
                for ((o, &a), &b) in tmp[(12 + col) * c..(13 + col) * c].iter_mut().zip(d1).zip(d3) {
                    *o = a - b;
                }
            }
            // (Bᵀ d) B: the same combination along each row.
            for r in 0..4 {
                let e = |k: usize| &tmp[(4 * r + k) * c..(4 * r + k + 1) * c];
                let (e0, e1, e2, e3) = (e(0), e(1), e(2), e(3));
                let out = |k: usize| (4 * r + k) * bt * c + t * c..(4 * r + k) * bt * c + t * c + c;
                let r0 = out(0);
                for ((o, &a), &b) in v[r0].iter_mut().zip(e0).zip(e2) {
                    *o = a - b;
                }
                let r1 = out(1);
                for ((o, &a), &b) in v[r1].iter_mut().zip(e1).zip(e2) {
                    *o = a + b;
                }
                let r2 = out(2);
                for ((o, &a), &b) in v[r2].iter_mut().zip(e2).zip(e1) {
                    *o = a - b;
                }
                let r3 = out(3);
                for ((o, &a), &b) in v[r3].iter_mut().zip(e1).zip(e3) {
                    *o = a - b;
                }
            }
        }
    }

    /// `M[xi nu] = V[xi nu] x U[xi nu]` for the 16 (xi, nu), through the micro-kernels.
    fn products(&self, v: &[f32], n: usize, m: &mut [f32]) {
        let bt = v.len() / (16 * self.cin);
        for (k, mk) in m.chunks_mut(bt * self.cout).enumerate() {
            self.product(k, v, n, mk);
        }
    }

    /// One of the 16 products: `c = V[k] x U[k]` for the first `n` tiles of the block.
    fn product(&self, k: usize, v: &[f32], n: usize, c: &mut [f32]) {
        let (mr, nr) = (self.isa.mr(), self.isa.nr());
        let bt = v.len() / (16 * self.cin);
        let panels = self.cout.div_ceil(nr);
        // Row r of a V matrix starts at r * cin; rows past n read zeros.
        let zero = vec![0f32; self.cin];
        let mut offs = vec![ZERO_ROW; mr];
        {
            let a = &v[k * bt * self.cin..(k + 1) * bt * self.cin];
            for r0 in (0..n).step_by(mr) {
                let rows = mr.min(n - r0);
                for (i, o) in offs.iter_mut().enumerate() {
                    *o = if i < rows { ((r0 + i) * self.cin) as u32 } else { ZERO_ROW };
                }
                for p in 0..panels {
                    let n0 = p * nr;
                    // SAFETY: offsets index rows of `a` (or the zero row), `b` is the packed
                    // panel of K = cin rows, and the output block lies inside `c`.
                    unsafe {
                        let t = Tile {
                            nseg: 1,
                            seg_len: self.cin,
                            offs: offs.as_ptr(),
                            a: a.as_ptr(),
                            zero: zero.as_ptr(),
                            b: self.packed.as_ptr().add((k * panels + p) * self.panel_stride),
                            c: c.as_mut_ptr().add(r0 * self.cout + n0),
                            ldc: self.cout,
                            rows,
                            cols: (self.cout - n0).min(nr),
                            scale: self.ones.as_ptr().add(n0),
                            shift: self.zeros.as_ptr().add(n0),
                            residual: std::ptr::null(),
                            relu: false,
                        };
                        run_tile(self.isa, &t);
                    }
                }
            }
        }
    }

    /// `Y = Aᵀ M A` per tile, then `relu?(scale * Y + shift + residual)` into the output.
    ///
    /// # Safety
    /// `out` must point to an output of geometry `s` with `cout` channels, and no other thread
    /// may access the pixels of tiles `t0..t0 + n` meanwhile.
    unsafe fn output_transform(&self, s: Shape, t0: usize, n: usize, m: &[f32], residual: Option<&[f32]>, out: OutPtr) {
        let (th, tw) = (s.h.div_ceil(2), s.w.div_ceil(2));
        let c = self.cout;
        let bt = m.len() / (16 * c);
        let mut y = vec![0f32; 4 * c];
        let (mut s0, mut s1) = (vec![0f32; 4 * c], vec![0f32; 4 * c]);
        for t in 0..n {
            let g = t0 + t;
            let (img, ty, tx) = (g / (th * tw), (g / tw) % th, g % tw);
            let row = |k: usize| &m[(k * bt + t) * c..(k * bt + t) * c + c];
            // Aᵀ M: s0[nu] = M0nu + M1nu + M2nu, s1[nu] = M1nu - M2nu - M3nu.
            for nu in 0..4 {
                let (m0, m1, m2, m3) = (row(nu), row(4 + nu), row(8 + nu), row(12 + nu));
                for ((((a, b), &w0), &w1), (&w2, &w3)) in
                    s0[nu * c..(nu + 1) * c].iter_mut().zip(&mut s1[nu * c..(nu + 1) * c]).zip(m0).zip(m1).zip(m2.iter().zip(m3))
                {
                    *a = w0 + w1 + w2;
                    *b = w1 - w2 - w3;
                }
            }
            // (Aᵀ M) A: y[i][0] = s_i0 + s_i1 + s_i2, y[i][1] = s_i1 - s_i2 - s_i3.
            for (half, src) in [&s0, &s1].into_iter().enumerate() {
                let q = |k: usize| &src[k * c..(k + 1) * c];
                let (x0, x1, x2, x3) = (q(0), q(1), q(2), q(3));
                let (ya, yb) = y[2 * half * c..(2 * half + 2) * c].split_at_mut(c);
                for ((((a, b), &w0), &w1), (&w2, &w3)) in ya.iter_mut().zip(yb.iter_mut()).zip(x0).zip(x1).zip(x2.iter().zip(x3)) {
                    *a = w0 + w1 + w2;
                    *b = w1 - w2 - w3;
                }
            }
            for (q, yq) in y.chunks_exact(c).enumerate() {
                let (oy, ox) = (2 * ty + q / 2, 2 * tx + q % 2);
                if oy >= s.h || ox >= s.w {
                    continue;
                }
                let o = ((img * s.h + oy) * s.w + ox) * c;
                // SAFETY: pixel (img, oy, ox) lies inside the output (checked above) and
                // belongs to tile g of this block (see the contract of this function).
                let dst = unsafe { std::slice::from_raw_parts_mut(out.0.add(o), c) };
                let (sc, sh) = (&self.scale[..c], &self.shift[..c]);
                match residual {
                    Some(r) => {
                        for ((((d, &v), &a), &b), &res) in dst.iter_mut().zip(yq).zip(sc).zip(sh).zip(&r[o..o + c]) {
                            let val = v * a + b + res;
                            *d = if self.relu { val.max(0.0) } else { val };
                        }
                    }
                    None => {
                        for (((d, &v), &a), &b) in dst.iter_mut().zip(yq).zip(sc).zip(sh) {
                            let val = v * a + b;
                            *d = if self.relu { val.max(0.0) } else { val };
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain 3x3 pad-1 convolution, affine, residual and relu, in f64.
    fn naive(x: &[f32], s: Shape, w: &ConvWeights, a: &Affine, res: Option<&[f32]>, relu: bool) -> Vec<f32> {
        let co = w.out_channels;
        let mut out = vec![0f32; s.n * s.h * s.w * co];
        for n in 0..s.n {
            for y in 0..s.h {
                for xx in 0..s.w {
                    for o in 0..co {
                        let mut acc = w.bias[o] as f64;
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (iy, ix) = (y as isize + ky as isize - 1, xx as isize + kx as isize - 1);
                                if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize {
                                    continue;
                                }
                                for ci in 0..s.c {
                                    let v = x[((n * s.h + iy as usize) * s.w + ix as usize) * s.c + ci] as f64;
                                    acc += v * w.filters[((o * s.c + ci) * 3 + ky) * 3 + kx] as f64;
                                }
                            }
                        }
                        let i = ((n * s.h + y) * s.w + xx) * co + o;
                        let mut v = a.gamma[o] * acc as f32 + a.beta[o] + res.map_or(0.0, |r| r[i]);
                        if relu {
                            v = v.max(0.0);
                        }
                        out[i] = v;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn winograd_matches_a_naive_convolution() {
        let mut rng = visage_core::SeededRng::new(11);
        // Odd and even sides, channel tails, several blocks, one tile.
        for &(n, h, w, cin, cout) in &[(1, 5, 7, 3, 20), (2, 9, 9, 16, 32), (3, 35, 35, 32, 32), (1, 3, 3, 40, 45), (4, 4, 4, 8, 64)] {
            let s = Shape { n, h, w, c: cin };
            let conv = ConvWeights {
                out_channels: cout,
                in_channels: cin,
                kernel: 3,
                stride: 1,
                pad: 1,
                filters: (0..cout * cin * 9).map(|_| rng.centered()).collect(),
                bias: (0..cout).map(|_| rng.centered()).collect(),
            };
            let aff =
                Affine { gamma: (0..cout).map(|_| 1.0 + rng.centered()).collect(), beta: (0..cout).map(|_| rng.centered()).collect() };
            let x: Vec<f32> = (0..s.len()).map(|_| rng.centered()).collect();
            let res: Vec<f32> = (0..n * h * w * cout).map(|_| rng.centered()).collect();
            for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable].into_iter().filter(|i| i.is_supported()) {
                for (relu, r) in [(false, None), (true, Some(res.as_slice()))] {
                    let want = naive(&x, s, &conv, &aff, r, relu);
                    let mut got = vec![f32::NAN; want.len()];
                    WinogradConv::new(isa, &conv, &aff, relu).run(s, &x, r, &mut got);
                    let md = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                    assert!(md < 1e-4, "{isa:?} {:?}: max diff {md}", (n, h, w, cin, cout));
                }
            }
        }
    }
}
