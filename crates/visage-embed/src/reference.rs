//! A deliberately plain forward pass of the face ResNet (NCHW, float64 accumulation), written
//! straight from dlib's layer definitions. It is slow; it exists to check the fast path.

use crate::architecture::{Affine, ConvWeights, ResnetWeights};

/// An NCHW activation of one image.
#[derive(Debug, Clone)]
struct Chw {
    c: usize,
    h: usize,
    w: usize,
    data: Vec<f32>,
}

impl Chw {
    fn zeros(c: usize, h: usize, w: usize) -> Self {
        Self { c, h, w, data: vec![0.0; c * h * w] }
    }
    fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.h + y) * self.w + x]
    }
}

fn conv(x: &Chw, cw: &ConvWeights) -> Chw {
    let k = cw.kernel;
    let oh = 1 + (x.h + 2 * cw.pad - k) / cw.stride;
    let ow = 1 + (x.w + 2 * cw.pad - k) / cw.stride;
    let mut out = Chw::zeros(cw.out_channels, oh, ow);
    for o in 0..cw.out_channels {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = cw.bias[o] as f64;
                for ci in 0..cw.in_channels {
                    for ky in 0..k {
                        let iy = (oy * cw.stride + ky) as isize - cw.pad as isize;
                        if iy < 0 || iy >= x.h as isize {
                            continue;
                        }
                        for kx in 0..k {
                            let ix = (ox * cw.stride + kx) as isize - cw.pad as isize;
                            if ix < 0 || ix >= x.w as isize {
                                continue;
                            }
                            let wv = cw.filters[((o * cw.in_channels + ci) * k + ky) * k + kx];
                            acc += wv as f64 * x.at(ci, iy as usize, ix as usize) as f64;
                        }
                    }
                }
                out.data[(o * oh + oy) * ow + ox] = acc as f32;
            }
        }
    }
    out
}

fn affine(x: &mut Chw, a: &Affine) {
    let hw = x.h * x.w;
    for c in 0..x.c {
        for v in &mut x.data[c * hw..(c + 1) * hw] {
            *v = a.gamma[c] * *v + a.beta[c];
        }
    }
}

fn relu(x: &mut Chw) {
    for v in &mut x.data {
        *v = v.max(0.0);
    }
}

fn pool(x: &Chw, size: usize, stride: usize, max: bool) -> Chw {
    let oh = 1 + (x.h - size) / stride;
    let ow = 1 + (x.w - size) / stride;
    let mut out = Chw::zeros(x.c, oh, ow);
    for c in 0..x.c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut m = f32::NEG_INFINITY;
                let mut s = 0.0f64;
                for ky in 0..size {
                    for kx in 0..size {
                        let v = x.at(c, oy * stride + ky, ox * stride + kx);
                        m = m.max(v);
                        s += v as f64;
                    }
                }
                out.data[(c * oh + oy) * ow + ox] = if max { m } else { (s / (size * size) as f64) as f32 };
            }
        }
    }
    out
}

/// dlib's add_prev: the output takes the larger size on every axis and the smaller operand is
/// zero-padded at the end.
fn add_zero_padded(a: &Chw, b: &Chw) -> Chw {
    let (c, h, w) = (a.c.max(b.c), a.h.max(b.h), a.w.max(b.w));
    let mut out = Chw::zeros(c, h, w);
    for t in [a, b] {
        for ch in 0..t.c {
            for y in 0..t.h {
                for x in 0..t.w {
                    out.data[(ch * h + y) * w + x] += t.at(ch, y, x);
                }
            }
        }
    }
    out
}

/// The 128-d descriptor of one 150x150 RGB chip (`rgb` is row-major, 3 bytes per pixel).
pub fn forward(weights: &ResnetWeights, rgb: &[u8]) -> Vec<f32> {
    let s = weights.input_size;
    assert_eq!(rgb.len(), s * s * 3, "chip must be {s}x{s} RGB");
    let mut x = Chw::zeros(3, s, s);
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        for (c, (&v, mean)) in px.iter().zip(weights.input_mean).enumerate() {
            x.data[c * s * s + i] = (v as f32 - mean) / 256.0;
        }
    }
    let mut x = conv(&x, &weights.stem_conv);
    affine(&mut x, &weights.stem_affine);
    relu(&mut x);
    let mut x = pool(&x, 3, 2, true);
    for b in &weights.blocks {
        let mut h = conv(&x, &b.conv1);
        affine(&mut h, &b.affine1);
        relu(&mut h);
        let mut h = conv(&h, &b.conv2);
        affine(&mut h, &b.affine2);
        let skip = if b.down { pool(&x, 2, 2, false) } else { x };
        x = add_zero_padded(&skip, &h);
        relu(&mut x);
    }
    let hw = (x.h * x.w) as f64;
    let pooled: Vec<f64> =
        (0..x.c).map(|c| x.data[c * x.h * x.w..(c + 1) * x.h * x.w].iter().map(|&v| v as f64).sum::<f64>() / hw).collect();
    (0..weights.fc_outputs)
        .map(|o| (0..weights.fc_inputs).map(|i| pooled[i] * weights.fc[i * weights.fc_outputs + o] as f64).sum::<f64>() as f32)
        .collect()
}
