//! The face ResNet compiled for fast inference, and the reusable buffers of one batch size.

use crate::architecture::{Affine, ConvWeights, ResnetWeights};
use crate::conv::{ConvLayer, Indirection, Shape};
use crate::kernels::Isa;
use crate::ops;
use crate::winograd::{self, WinogradConv};
use std::sync::OnceLock;

/// A convolution layer, packed for the direct indirect convolution; where Winograd
/// F(2x2, 3x3) applies, its weights are derived from the direct ones the first time a
/// workspace's plan chooses it (so single-chip use never pays for them).
struct Conv {
    direct: ConvLayer,
    winograd_applies: bool,
    winograd: OnceLock<WinogradConv>,
}

/// Winograd turns a layer into 16 GEMMs (tiles x Cin x Cout) only as deep as its input
/// channels. Measured on the face ResNet: at batch 32 (8-11M multiply-adds per GEMM in every
/// layer) Winograd everywhere is 1.29x faster; at batch 1 (under 0.35M) it never wins. Below
/// this size per GEMM the direct convolution is used.
const WINOGRAD_MIN_GEMM: usize = 1 << 20;

/// What a convolution needs for one input geometry.
enum Plan {
    Direct(Indirection),
    Winograd { input: Shape, output: Shape },
}

impl Plan {
    fn input(&self) -> Shape {
        match self {
            Plan::Direct(i) => i.input,
            Plan::Winograd { input, .. } => *input,
        }
    }
    fn output(&self) -> Shape {
        match self {
            Plan::Direct(i) => i.output,
            Plan::Winograd { output, .. } => *output,
        }
    }
}

impl Conv {
    /// Winograd where it applies (3x3, stride 1, pad 1, input at least 3x3) unless disabled
    /// with `VISAGE_WINOGRAD=0`; the direct indirect convolution otherwise.
    fn new(isa: Isa, w: &ConvWeights, a: &Affine, relu: bool, h: usize, wd: usize) -> Self {
        let enabled = std::env::var("VISAGE_WINOGRAD").map_or(true, |v| v != "0");
        let winograd_applies = enabled && winograd::applies((w.kernel, w.stride, w.pad), h, wd);
        Conv { direct: ConvLayer::new(isa, w, a, relu), winograd_applies, winograd: OnceLock::new() }
    }

    fn plan(&self, input: Shape) -> Plan {
        let tiles = input.n * input.h.div_ceil(2) * input.w.div_ceil(2);
        let cout = self.direct.out_channels;
        if self.winograd_applies && tiles * input.c * cout >= WINOGRAD_MIN_GEMM {
            self.winograd.get_or_init(|| WinogradConv::from_direct(&self.direct));
            Plan::Winograd { input, output: Shape { c: cout, ..input } }
        } else {
            Plan::Direct(self.direct.indirection(input))
        }
    }

    fn max_seg_len(&self) -> usize {
        self.direct.max_seg_len()
    }

    fn run(&self, plan: &Plan, input: &[f32], zero: &[f32], residual: Option<&[f32]>, out: &mut [f32]) {
        match (plan, self.winograd.get()) {
            (Plan::Direct(ind), _) => self.direct.run(ind, input, zero, residual, out),
            (Plan::Winograd { input: s, .. }, Some(w)) => w.run(*s, input, residual, out),
            (Plan::Winograd { .. }, None) => unreachable!("a Winograd plan builds the Winograd weights"),
        }
    }
}

struct Block {
    down: bool,
    conv1: Conv,
    conv2: Conv,
}

/// The network with its weights packed for one instruction set.
pub(crate) struct FastResnet {
    pub isa: Isa,
    pub input_size: usize,
    input_mean: [f32; 3],
    stem: ConvLayer,
    blocks: Vec<Block>,
    fc: Vec<f32>,
    fc_inputs: usize,
    pub dim: usize,
}

/// Buffers and offset tables for one batch size, reused across calls: running a batch
/// allocates nothing but the returned descriptors.
pub(crate) struct Workspace {
    pub batch: usize,
    input: Vec<f32>,
    stem_out: Vec<f32>,
    bufs: [Vec<f32>; 3],
    zero: Vec<f32>,
    stem_ind: Indirection,
    block_plans: Vec<(Plan, Plan)>,
}

impl FastResnet {
    /// Packs `w` for `isa`.
    pub fn new(w: &ResnetWeights, isa: Isa) -> Self {
        let stem = ConvLayer::new(isa, &w.stem_conv, &w.stem_affine, true);
        // Spatial sizes through the network decide where Winograd pays.
        let out = |s: usize, k: usize, st: usize, p: usize| 1 + (s + 2 * p - k) / st;
        let mut side = out(out(w.input_size, w.stem_conv.kernel, w.stem_conv.stride, 0), 3, 2, 0);
        let mut blocks = Vec::new();
        for b in &w.blocks {
            let mid = out(side, b.conv1.kernel, b.conv1.stride, b.conv1.pad);
            blocks.push(Block {
                down: b.down,
                conv1: Conv::new(isa, &b.conv1, &b.affine1, true, side, side),
                // Residual blocks add the skip and apply relu in the conv epilogue; down
                // blocks need the pooled, zero-padded skip first, so relu comes later.
                conv2: Conv::new(isa, &b.conv2, &b.affine2, !b.down, mid, mid),
            });
            side = if b.down { (1 + (side - 2) / 2).max(mid) } else { mid };
        }
        Self {
            isa,
            input_size: w.input_size,
            input_mean: w.input_mean,
            stem,
            blocks,
            fc: w.fc.clone(),
            fc_inputs: w.fc_inputs,
            dim: w.fc_outputs,
        }
    }

    /// Allocates the buffers and offset tables for `batch` images.
    pub fn workspace(&self, batch: usize) -> Workspace {
        let s = self.input_size;
        let input_shape = Shape { n: batch, h: s, w: s, c: 3 };
        let stem_ind = self.stem.indirection(input_shape);
        let pooled = Shape { n: batch, h: 1 + (stem_ind.output.h - 3) / 2, w: 1 + (stem_ind.output.w - 3) / 2, c: stem_ind.output.c };
        let mut shape = pooled;
        let mut largest = pooled.len();
        let mut max_seg = self.stem.max_seg_len();
        let mut block_plans = Vec::new();
        for b in &self.blocks {
            let p1 = b.conv1.plan(shape);
            let p2 = b.conv2.plan(p1.output());
            shape = if b.down {
                let (ph, pw) = (1 + (shape.h - 2) / 2, 1 + (shape.w - 2) / 2);
                Shape { n: batch, h: ph.max(p2.output().h), w: pw.max(p2.output().w), c: shape.c.max(p2.output().c) }
            } else {
                p2.output()
            };
            largest = largest.max(p1.output().len()).max(p2.output().len()).max(shape.len());
            max_seg = max_seg.max(b.conv1.max_seg_len()).max(b.conv2.max_seg_len());
            block_plans.push((p1, p2));
        }
        assert_eq!(shape.c, self.fc_inputs, "final channels must match the fc layer");
        Workspace {
            batch,
            input: vec![0.0; input_shape.len()],
            stem_out: vec![0.0; stem_ind.output.len()],
            bufs: [vec![0.0; largest], vec![0.0; largest], vec![0.0; largest]],
            zero: vec![0.0; max_seg],
            stem_ind,
            block_plans,
        }
    }

    /// Descriptors of `chips` (each `input_size`² RGB bytes); `ws.batch` must equal `chips.len()`.
    pub fn forward(&self, chips: &[&[u8]], ws: &mut Workspace) -> Vec<Vec<f32>> {
        assert_eq!(chips.len(), ws.batch, "workspace batch size");
        let Workspace { input, stem_out, bufs, zero, stem_ind, block_plans, .. } = ws;
        ops::normalize_input(chips, self.input_mean, input);
        self.stem.run(stem_ind, input, zero, None, stem_out);
        let [b0, b1, b2] = bufs;
        let (mut x, mut h, mut y) = (b0, b1, b2);
        let mut xs = ops::max_pool(stem_ind.output, stem_out, 3, 2, x);
        for (b, (p1, p2)) in self.blocks.iter().zip(block_plans.iter()) {
            debug_assert_eq!(p1.input(), xs);
            b.conv1.run(p1, x, zero, None, h);
            if b.down {
                b.conv2.run(p2, h, zero, None, y);
                xs = ops::pooled_skip_add_relu(xs, x, p2.output(), y, h);
                std::mem::swap(&mut x, &mut h);
            } else {
                b.conv2.run(p2, h, zero, Some(x), y);
                xs = p2.output();
                std::mem::swap(&mut x, &mut y);
            }
        }
        ops::pool_and_project(xs, x, &self.fc, self.dim)
    }
}
