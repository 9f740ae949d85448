//! Indirect convolution over NHWC activations, feeding the micro-kernels in [`crate::kernels`].
//!
//! The weights are packed once, at load, into `NR`-wide panels. For a given input geometry an
//! [`Indirection`] table holds, for every tile of `MR` output pixels and every kernel segment,
//! the offset of the input values that row multiplies: no im2col copy is ever made. A segment
//! is one kernel tap (`cin` contiguous values) for padded convolutions, or one whole kernel
//! row (`kernel * cin` contiguous values) when there is no padding.

use crate::kernels::{run_tile, Isa, Tile, ZERO_ROW};
use crate::tensor::{Affine, ConvWeights, Shape};
use rayon::prelude::*;

/// A convolution followed by an affine transform and optionally relu, packed for one ISA.
pub(crate) struct ConvLayer {
    isa: Isa,
    pub in_channels: usize,
    pub out_channels: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    relu: bool,
    /// `[panel][k][NR]`, k = (ky * kernel + kx) * in_channels + ci.
    packed: Vec<f32>,
    /// Folded `gamma`, padded to a whole number of panels.
    scale: Vec<f32>,
    /// Folded `gamma * bias + beta`, padded likewise.
    shift: Vec<f32>,
    /// For stride-1 layers of at most [`NARROW_MAX`] outputs: the same layer as a 1x1
    /// convolution to one channel per (output, tap), summed over the taps afterwards. A GEMM
    /// panel of 1 output in 32 would be 97% padding; `cout * k * k` outputs fill them.
    narrow: Option<Box<ConvLayer>>,
}

/// Stride-1 layers with at most this many output channels (and a kernel above 1) run as a
/// 1x1 convolution to every tap, then a sum over the taps.
pub(crate) const NARROW_MAX: usize = 4;

/// The per-geometry offset table of one convolution.
pub(crate) struct Indirection {
    /// The input geometry this table was built for.
    pub input: Shape,
    /// The output geometry.
    pub output: Shape,
    nseg: usize,
    seg_len: usize,
    /// `[tile][segment][MR]`.
    offs: Vec<u32>,
}

/// The output pointer, shared by the tasks of one [`ConvLayer::run`].
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
// SAFETY: a `SyncPtr` only lives inside `ConvLayer::run`, which holds the `&mut [f32]` it was
// made from for the whole parallel loop, and every task writes a block of rows x panels that
// no other task writes (tasks partition tiles x panel groups), so sharing it across threads
// creates no data race and no access outlives the borrow.
unsafe impl Send for SyncPtr {}
// SAFETY: as above: concurrent tasks only write disjoint elements through it.
unsafe impl Sync for SyncPtr {}

impl ConvLayer {
    /// Packs `conv` followed by `affine` (and relu when `relu`) for `isa`.
    pub fn new(isa: Isa, conv: &ConvWeights, affine: &Affine, relu: bool) -> Self {
        let nr = isa.nr();
        let (cin, cout, k) = (conv.in_channels, conv.out_channels, conv.kernel);
        let kk = k * k * cin;
        let panels = cout.div_ceil(nr);
        let mut packed = vec![0f32; panels * kk * nr];
        for o in 0..cout {
            let (panel, j) = (o / nr, o % nr);
            for ci in 0..cin {
                for ky in 0..k {
                    for kx in 0..k {
                        let kidx = (ky * k + kx) * cin + ci;
                        packed[(panel * kk + kidx) * nr + j] = conv.filters[((o * cin + ci) * k + ky) * k + kx];
                    }
                }
            }
        }
        let mut scale = vec![0f32; panels * nr];
        let mut shift = vec![0f32; panels * nr];
        for o in 0..cout {
            scale[o] = affine.gamma[o];
            shift[o] = affine.gamma[o] * conv.bias[o] + affine.beta[o];
        }
        let narrow = (cout <= NARROW_MAX && k > 1 && conv.stride == 1).then(|| {
            // Output channel (o * k + ky) * k + kx of the 1x1 layer is tap (ky, kx) of output o.
            let taps = cout * k * k;
            let mut filters = vec![0f32; taps * cin];
            for o in 0..cout {
                for ci in 0..cin {
                    for t in 0..k * k {
                        filters[(o * k * k + t) * cin + ci] = conv.filters[(o * cin + ci) * k * k + t];
                    }
                }
            }
            let one = ConvWeights { out_channels: taps, in_channels: cin, kernel: 1, stride: 1, pad: 0, filters, bias: vec![0.0; taps] };
            Box::new(ConvLayer::new(isa, &one, &Affine::identity(taps), false))
        });
        Self {
            isa,
            in_channels: cin,
            out_channels: cout,
            kernel: k,
            stride: conv.stride,
            pad: conv.pad,
            relu,
            packed,
            scale,
            shift,
            narrow,
        }
    }

    /// A narrow layer: every tap of every output through the 1x1 layer `taps`, then
    /// `out[y][x][o] = epilogue(sum_{ky,kx} t[y+ky-pad][x+kx-pad][(o*k+ky)*k+kx])`, zero
    /// outside the input.
    fn run_narrow(&self, taps: &ConvLayer, ind: &Indirection, input: &[f32], zero: &[f32], residual: Option<&[f32]>, out: &mut [f32]) {
        let s = ind.input;
        let os = self.output_shape(s);
        assert_eq!(s.c, self.in_channels, "input channels");
        assert!(input.len() >= s.len(), "input buffer too small");
        assert!(out.len() >= os.len(), "output buffer too small");
        if let Some(r) = residual {
            assert!(r.len() >= os.len(), "residual buffer too small");
        }
        let (k, pad, cout) = (self.kernel, self.pad, self.out_channels);
        let nt = cout * k * k;
        // Bands of output rows, each with the tap rows it reads (about 1 MB, so that the
        // tap sum reads from cache), run in parallel.
        let band = ((1usize << 18) / (s.w * nt).max(1)).saturating_sub(k - 1).clamp(4, os.h.max(4));
        let row = os.w * cout;
        let table = |rows: usize| taps.indirection(Shape { n: 1, h: rows, w: s.w, c: s.c });
        let full = table((band + k - 1).min(s.h));
        let per_image = os.h * row;
        out[..os.len()]
            .par_chunks_mut(per_image)
            .enumerate()
            .flat_map(|(n, img)| img.par_chunks_mut(band * row).enumerate().map(move |(b, o)| (n, b, o)))
            .for_each(|(n, b, o)| {
                let y0 = b * band;
                let y1 = (y0 + band).min(os.h);
                // Input rows the band reads: y + ky - pad for y in y0..y1, ky in 0..k.
                let lo = y0.saturating_sub(pad);
                let hi = (y1 + k - 1 - pad).min(s.h);
                let ind = if hi - lo == full.input.h { None } else { Some(table(hi - lo)) };
                let ind = ind.as_ref().unwrap_or(&full);
                let mut t = vec![0f32; ind.output.len()];
                let start = (n * s.h + lo) * s.w * s.c;
                taps.run(ind, &input[start..start + (hi - lo) * s.w * s.c], zero, None, &mut t);
                for (r, o) in o.chunks_mut(row).enumerate() {
                    let y = y0 + r;
                    for x in 0..os.w {
                        for oc in 0..cout {
                            let mut acc = 0f32;
                            for ky in 0..k {
                                let iy = (y + ky) as isize - pad as isize;
                                if iy < lo as isize || iy >= hi as isize {
                                    continue;
                                }
                                let base = (iy as usize - lo) * s.w;
                                for kx in 0..k {
                                    let ix = x as isize + kx as isize - pad as isize;
                                    if ix < 0 || ix >= s.w as isize {
                                        continue;
                                    }
                                    acc += t[(base + ix as usize) * nt + (oc * k + ky) * k + kx];
                                }
                            }
                            let i = x * cout + oc;
                            let mut v = self.scale[oc] * acc + self.shift[oc];
                            if let Some(res) = residual {
                                v += res[((n * os.h) + y) * row + i];
                            }
                            o[i] = if self.relu { v.max(0.0) } else { v };
                        }
                    }
                }
            });
    }

    /// The instruction set the weights are packed for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Whether relu ends the layer.
    pub fn relu(&self) -> bool {
        self.relu
    }

    /// Kernel side, stride and padding.
    pub fn geometry(&self) -> (usize, usize, usize) {
        (self.kernel, self.stride, self.pad)
    }

    /// Filter tap `w[o][ci][ky][kx]`, read back from the packed panels.
    pub fn filter(&self, o: usize, ci: usize, ky: usize, kx: usize) -> f32 {
        let nr = self.isa.nr();
        let kk = self.kernel * self.kernel * self.in_channels;
        self.packed[((o / nr) * kk + (ky * self.kernel + kx) * self.in_channels + ci) * nr + o % nr]
    }

    /// The folded per-channel scale and shift (`out_channels` values each).
    pub fn scale_shift(&self) -> (&[f32], &[f32]) {
        (&self.scale[..self.out_channels], &self.shift[..self.out_channels])
    }

    /// Output geometry for an input geometry.
    pub fn output_shape(&self, input: Shape) -> Shape {
        let oh = 1 + (input.h + 2 * self.pad - self.kernel) / self.stride;
        let ow = 1 + (input.w + 2 * self.pad - self.kernel) / self.stride;
        Shape { n: input.n, h: oh, w: ow, c: self.out_channels }
    }

    /// The longest contiguous segment this layer reads (the zero buffer must be this long).
    pub fn max_seg_len(&self) -> usize {
        if let Some(t) = &self.narrow {
            return t.max_seg_len();
        }
        if self.pad == 0 {
            self.kernel * self.in_channels
        } else {
            self.in_channels
        }
    }

    /// Builds the offset table for `input` (for a narrow layer: its 1x1 tap layer's).
    pub fn indirection(&self, input: Shape) -> Indirection {
        if self.narrow.is_some() {
            // A narrow layer builds the tables of its bands when it runs.
            return Indirection { input, output: self.output_shape(input), nseg: 0, seg_len: 0, offs: Vec::new() };
        }
        assert_eq!(input.c, self.in_channels, "input channels");
        let output = self.output_shape(input);
        let mr = self.isa.mr();
        let m = output.n * output.h * output.w;
        let tiles = m.div_ceil(mr);
        let k = self.kernel;
        let (nseg, seg_len) = if self.pad == 0 { (k, k * input.c) } else { (k * k, input.c) };
        let mut offs = vec![ZERO_ROW; tiles * nseg * mr];
        for row in 0..m {
            let (tile, r) = (row / mr, row % mr);
            let img = row / (output.h * output.w);
            let oy = (row / output.w) % output.h;
            let ox = row % output.w;
            for s in 0..nseg {
                let (ky, kx) = if self.pad == 0 { (s, 0) } else { (s / k, s % k) };
                let iy = (oy * self.stride + ky) as isize - self.pad as isize;
                let ix = (ox * self.stride + kx) as isize - self.pad as isize;
                if iy >= 0 && ix >= 0 && (iy as usize) < input.h && (ix as usize) < input.w {
                    let off = ((img * input.h + iy as usize) * input.w + ix as usize) * input.c;
                    offs[(tile * nseg + s) * mr + r] = u32::try_from(off).expect("activation too large");
                }
            }
        }
        Indirection { input, output, nseg, seg_len, offs }
    }

    /// Computes the layer: `out = relu?(affine(conv(input)) + residual?)`.
    ///
    /// `zero` must hold at least [`Self::max_seg_len`] zeros; `residual`, when given, has the
    /// output's geometry.
    pub fn run(&self, ind: &Indirection, input: &[f32], zero: &[f32], residual: Option<&[f32]>, out: &mut [f32]) {
        if let Some(t) = &self.narrow {
            return self.run_narrow(t, ind, input, zero, residual, out);
        }
        let (mr, nr) = (self.isa.mr(), self.isa.nr());
        assert!(input.len() >= ind.input.len(), "input buffer too small");
        assert!(out.len() >= ind.output.len(), "output buffer too small");
        assert!(zero.len() >= ind.seg_len && zero.iter().all(|&z| z == 0.0), "zero buffer");
        if let Some(r) = residual {
            assert!(r.len() >= ind.output.len(), "residual buffer too small");
        }
        let m = ind.output.n * ind.output.h * ind.output.w;
        let tiles = m.div_ceil(mr);
        let panels = self.out_channels.div_ceil(nr);
        let kk = self.kernel * self.kernel * self.in_channels;

        // Work split: chunks of tiles x groups of panels, enough tasks for every thread.
        let threads = rayon::current_num_threads().max(1);
        let want = 4 * threads;
        let tiles_per_chunk = tiles.div_ceil(want).clamp(1, 64);
        let chunks = tiles.div_ceil(tiles_per_chunk);
        let panel_groups = if chunks >= want { 1 } else { panels.min(want.div_ceil(chunks)) };
        let panels_per_group = panels.div_ceil(panel_groups);
        let panel_groups = panels.div_ceil(panels_per_group);

        let out_ptr = SyncPtr(out.as_mut_ptr());
        let res_ptr = residual.map(|r| r.as_ptr() as usize).unwrap_or(0);
        let ldc = self.out_channels;
        let task = |t: usize| {
            let (chunk, group) = (t / panel_groups, t % panel_groups);
            let tile_range = chunk * tiles_per_chunk..((chunk + 1) * tiles_per_chunk).min(tiles);
            let panel_range = group * panels_per_group..((group + 1) * panels_per_group).min(panels);
            for panel in panel_range {
                let n0 = panel * nr;
                for tile in tile_range.clone() {
                    let m0 = tile * mr;
                    // SAFETY: offsets were built for this input geometry and point inside
                    // `input`; the output block (m0.., n0..) is written by this task alone.
                    unsafe {
                        let t = Tile {
                            nseg: ind.nseg,
                            seg_len: ind.seg_len,
                            offs: ind.offs.as_ptr().add(tile * ind.nseg * mr),
                            a: input.as_ptr(),
                            zero: zero.as_ptr(),
                            b: self.packed.as_ptr().add(panel * kk * nr),
                            c: { out_ptr }.0.add(m0 * ldc + n0),
                            ldc,
                            rows: (m - m0).min(mr),
                            cols: (self.out_channels - n0).min(nr),
                            scale: self.scale.as_ptr().add(n0),
                            shift: self.shift.as_ptr().add(n0),
                            residual: if res_ptr == 0 { std::ptr::null() } else { (res_ptr as *const f32).add(m0 * ldc + n0) },
                            relu: self.relu,
                        };
                        run_tile(self.isa, &t);
                    }
                }
            }
        };
        let ntasks = chunks * panel_groups;
        if ntasks == 1 || threads == 1 {
            (0..ntasks).for_each(task);
        } else {
            (0..ntasks).into_par_iter().for_each(task);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], s: Shape, w: &ConvWeights, a: &Affine, res: Option<&[f32]>, relu: bool) -> (Shape, Vec<f32>) {
        let k = w.kernel;
        let oh = 1 + (s.h + 2 * w.pad - k) / w.stride;
        let ow = 1 + (s.w + 2 * w.pad - k) / w.stride;
        let os = Shape { n: s.n, h: oh, w: ow, c: w.out_channels };
        let mut out = vec![0f32; os.len()];
        for n in 0..s.n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for o in 0..w.out_channels {
                        let mut acc = w.bias[o] as f64;
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * w.stride + ky) as isize - w.pad as isize;
                                let ix = (ox * w.stride + kx) as isize - w.pad as isize;
                                if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize {
                                    continue;
                                }
                                for ci in 0..s.c {
                                    let xv = x[((n * s.h + iy as usize) * s.w + ix as usize) * s.c + ci];
                                    acc += xv as f64 * w.filters[((o * s.c + ci) * k + ky) * k + kx] as f64;
                                }
                            }
                        }
                        let i = ((n * oh + oy) * ow + ox) * w.out_channels + o;
                        let mut v = a.gamma[o] * acc as f32 + a.beta[o];
                        if let Some(r) = res {
                            v += r[i];
                        }
                        out[i] = if relu { v.max(0.0) } else { v };
                    }
                }
            }
        }
        (os, out)
    }

    #[test]
    fn every_kernel_matches_a_naive_convolution() {
        let mut rng = visage_core::SeededRng::new(7);
        // (n, h, w, cin, cout, kernel, stride, pad): channel tails, row tails, strides, padding.
        let cases = [
            (1, 5, 5, 3, 32, 3, 1, 1),
            (2, 7, 6, 5, 17, 3, 2, 0),
            (3, 9, 9, 3, 32, 7, 2, 0),
            (1, 4, 4, 40, 45, 3, 1, 1),
            (2, 3, 3, 16, 64, 3, 1, 1),
            (1, 1, 1, 8, 8, 3, 1, 1),
        ];
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable].into_iter().filter(|i| i.is_supported()) {
            for &(n, h, w, cin, cout, k, stride, pad) in &cases {
                let s = Shape { n, h, w, c: cin };
                let conv = ConvWeights {
                    out_channels: cout,
                    in_channels: cin,
                    kernel: k,
                    stride,
                    pad,
                    filters: (0..cout * cin * k * k).map(|_| rng.centered()).collect(),
                    bias: (0..cout).map(|_| rng.centered()).collect(),
                };
                let aff =
                    Affine { gamma: (0..cout).map(|_| 1.0 + rng.centered()).collect(), beta: (0..cout).map(|_| rng.centered()).collect() };
                let x: Vec<f32> = (0..s.len()).map(|_| rng.centered()).collect();
                for (relu, with_res) in [(false, false), (true, true)] {
                    let layer = ConvLayer::new(isa, &conv, &aff, relu);
                    let ind = layer.indirection(s);
                    let res: Option<Vec<f32>> = with_res.then(|| (0..ind.output.len()).map(|_| rng.centered()).collect());
                    let (os, want) = naive(&x, s, &conv, &aff, res.as_deref(), relu);
                    assert_eq!(ind.output, os);
                    let mut got = vec![f32::NAN; os.len() + 7];
                    let zero = vec![0f32; layer.max_seg_len()];
                    layer.run(&ind, &x, &zero, res.as_deref(), &mut got);
                    let md = got[..os.len()].iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
                    assert!(md < 1e-5, "{isa:?} case {:?}: max diff {md}", (n, h, w, cin, cout, k, stride, pad));
                    assert!(got[os.len()..].iter().all(|v| v.is_nan()), "{isa:?} wrote past the output");
                }
            }
        }
    }
}
