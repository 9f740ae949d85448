//! The face ResNet compiled for fast inference, and the reusable buffers of one batch size.

use crate::architecture::ResnetWeights;
use crate::conv::{ConvLayer, Indirection, Shape};
use crate::kernels::Isa;
use crate::ops;

struct Block {
    down: bool,
    conv1: ConvLayer,
    conv2: ConvLayer,
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
    block_ind: Vec<(Indirection, Indirection)>,
}

impl FastResnet {
    /// Packs `w` for `isa`.
    pub fn new(w: &ResnetWeights, isa: Isa) -> Self {
        let stem = ConvLayer::new(isa, &w.stem_conv, &w.stem_affine, true);
        let blocks = w
            .blocks
            .iter()
            .map(|b| Block {
                down: b.down,
                conv1: ConvLayer::new(isa, &b.conv1, &b.affine1, true),
                // Residual blocks add the skip and apply relu in the conv epilogue; down
                // blocks need the pooled, zero-padded skip first, so relu comes later.
                conv2: ConvLayer::new(isa, &b.conv2, &b.affine2, !b.down),
            })
            .collect();
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
        let mut block_ind = Vec::new();
        for b in &self.blocks {
            let i1 = b.conv1.indirection(shape);
            let i2 = b.conv2.indirection(i1.output);
            shape = if b.down {
                let (ph, pw) = (1 + (shape.h - 2) / 2, 1 + (shape.w - 2) / 2);
                Shape { n: batch, h: ph.max(i2.output.h), w: pw.max(i2.output.w), c: shape.c.max(i2.output.c) }
            } else {
                i2.output
            };
            largest = largest.max(i1.output.len()).max(i2.output.len()).max(shape.len());
            max_seg = max_seg.max(b.conv1.max_seg_len()).max(b.conv2.max_seg_len());
            block_ind.push((i1, i2));
        }
        assert_eq!(shape.c, self.fc_inputs, "final channels must match the fc layer");
        Workspace {
            batch,
            input: vec![0.0; input_shape.len()],
            stem_out: vec![0.0; stem_ind.output.len()],
            bufs: [vec![0.0; largest], vec![0.0; largest], vec![0.0; largest]],
            zero: vec![0.0; max_seg],
            stem_ind,
            block_ind,
        }
    }

    /// Descriptors of `chips` (each `input_size`² RGB bytes); `ws.batch` must equal `chips.len()`.
    pub fn forward(&self, chips: &[&[u8]], ws: &mut Workspace) -> Vec<Vec<f32>> {
        assert_eq!(chips.len(), ws.batch, "workspace batch size");
        let Workspace { input, stem_out, bufs, zero, stem_ind, block_ind, .. } = ws;
        ops::normalize_input(chips, self.input_mean, input);
        self.stem.run(stem_ind, input, zero, None, stem_out);
        let [b0, b1, b2] = bufs;
        let (mut x, mut h, mut y) = (b0, b1, b2);
        let mut xs = ops::max_pool(stem_ind.output, stem_out, 3, 2, x);
        for (b, (i1, i2)) in self.blocks.iter().zip(block_ind.iter()) {
            debug_assert_eq!(i1.input, xs);
            b.conv1.run(i1, x, zero, None, h);
            if b.down {
                b.conv2.run(i2, h, zero, None, y);
                xs = ops::pooled_skip_add_relu(xs, x, i2.output, y, h);
                std::mem::swap(&mut x, &mut h);
            } else {
                b.conv2.run(i2, h, zero, Some(x), y);
                xs = i2.output;
                std::mem::swap(&mut x, &mut y);
            }
        }
        ops::pool_and_project(xs, x, &self.fc, self.dim)
    }
}
