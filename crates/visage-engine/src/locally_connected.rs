//! The locally connected layer: a convolution without weight sharing (DeepFace's L4-L6).
//! Every output position has its own `k x k x in x out` filters, so the layer is one small
//! matrix-vector product per position; the positions' filters are read once per batch.

use crate::tensor::Shape;

/// A locally connected layer's parameters, in the engine's layout.
pub(crate) struct LocallyConnected {
    /// Output rows and columns (fixed by the weights).
    pub out_h: usize,
    /// Output columns.
    pub out_w: usize,
    /// Window side.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// `[out_h, out_w, kernel, kernel, in, out]`.
    pub weights: Vec<f32>,
    /// `[out_h, out_w, out]`.
    pub bias: Vec<f32>,
}

impl LocallyConnected {
    /// The smallest input extent this layer accepts (its windows then give exactly its output).
    pub fn input_extent(&self) -> (usize, usize) {
        ((self.out_h - 1) * self.stride + self.kernel, (self.out_w - 1) * self.stride + self.kernel)
    }

    /// Whether an input of `h` x `w` gives this layer's output extent (windows that do not
    /// fit whole are dropped, as a convolution's are).
    pub fn accepts(&self, h: usize, w: usize) -> bool {
        let side = |n: usize| (n >= self.kernel).then(|| (n - self.kernel) / self.stride + 1);
        side(h) == Some(self.out_h) && side(w) == Some(self.out_w)
    }

    /// The output geometry for `input` (whose extent the caller has checked).
    pub fn output_shape(&self, input: Shape) -> Shape {
        Shape { n: input.n, h: self.out_h, w: self.out_w, c: self.out_channels }
    }

    /// Runs the layer on NHWC `input` of shape `s` into `out`, with relu when asked.
    pub fn run(&self, s: Shape, input: &[f32], relu: bool, out: &mut [f32]) {
        let (k, st, ci, co) = (self.kernel, self.stride, self.in_channels, self.out_channels);
        let per_position = k * k * ci * co;
        let row = s.w * ci;
        let out_per_image = self.out_h * self.out_w * co;
        for y in 0..self.out_h {
            for x in 0..self.out_w {
                let p = y * self.out_w + x;
                let w = &self.weights[p * per_position..(p + 1) * per_position];
                let b = &self.bias[p * co..(p + 1) * co];
                for n in 0..s.n {
                    let o = &mut out[n * out_per_image + p * co..][..co];
                    o.copy_from_slice(b);
                    let image = &input[n * s.per_image()..(n + 1) * s.per_image()];
                    for ky in 0..k {
                        // The window's row ky: k pixels of ci channels, contiguous in NHWC.
                        let start = (y * st + ky) * row + x * st * ci;
                        let pixels = &image[start..start + k * ci];
                        let filters = &w[ky * k * ci * co..(ky + 1) * k * ci * co];
                        for (v, f) in pixels.iter().zip(filters.chunks_exact(co)) {
                            for (o, f) in o.iter_mut().zip(f) {
                                *o += v * f;
                            }
                        }
                    }
                    if relu {
                        for v in o.iter_mut() {
                            *v = v.max(0.0);
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

    #[test]
    fn each_position_uses_its_own_filter() {
        // A 1-channel 3x3 input, a 2x2 window with stride 1: four positions, each with its own
        // filter, one output channel. Computed by hand below.
        let input: Vec<f32> = (1..=9).map(|v| v as f32).collect(); // rows 1 2 3 / 4 5 6 / 7 8 9
        let weights = vec![
            1.0, 0.0, 0.0, 0.0, // (0,0): takes the window's top-left: 1
            0.0, 1.0, 0.0, 1.0, // (0,1): right column of window [2 3 / 5 6]: 3 + 6
            1.0, 1.0, 1.0, 1.0, // (1,0): sum of [4 5 / 7 8]: 24
            0.0, 0.0, -1.0, 0.5, // (1,1): -8 + 0.5 * 9
        ];
        let lc = LocallyConnected { out_h: 2, out_w: 2, kernel: 2, stride: 1, in_channels: 1, out_channels: 1, weights, bias: vec![0.0, 0.0, 10.0, 0.0] };
        let s = Shape { n: 1, h: 3, w: 3, c: 1 };
        let mut out = vec![0.0; 4];
        lc.run(s, &input, false, &mut out);
        assert_eq!(out, vec![1.0, 9.0, 34.0, -3.5]);
        lc.run(s, &input, true, &mut out);
        assert_eq!(out, vec![1.0, 9.0, 34.0, 0.0]);
    }

    #[test]
    fn channels_and_stride_index_the_input_as_nhwc() {
        // Two images of 3x3x2, a 1x1 window with stride 2: positions (0,0),(0,2),(2,0),(2,2).
        // Output channel o at position p is in[c=0] * (p + 1) + in[c=1] * o.
        let input: Vec<f32> = (0..36).map(|v| v as f32).collect();
        let mut weights = Vec::new();
        for p in 0..4 {
            for c in 0..2 {
                for o in 0..3 {
                    weights.push(if c == 0 { (p + 1) as f32 } else { o as f32 });
                }
            }
        }
        let lc = LocallyConnected { out_h: 2, out_w: 2, kernel: 1, stride: 2, in_channels: 2, out_channels: 3, weights, bias: vec![0.0; 12] };
        assert_eq!(lc.input_extent(), (3, 3));
        let s = Shape { n: 2, h: 3, w: 3, c: 2 };
        let mut out = vec![0.0; 24];
        lc.run(s, &input, false, &mut out);
        for n in 0..2 {
            for (p, (y, x)) in [(0, 0), (0, 2), (2, 0), (2, 2)].into_iter().enumerate() {
                let at = n * 18 + (y * 3 + x) * 2;
                for o in 0..3 {
                    let want = input[at] * (p + 1) as f32 + input[at + 1] * o as f32;
                    assert_eq!(out[n * 12 + p * 3 + o], want, "image {n} position {p} channel {o}");
                }
            }
        }
    }
}
