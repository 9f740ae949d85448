//! The cheap layers of the network, over NHWC activations.

use crate::conv::Shape;
use rayon::prelude::*;

/// Writes chips (150x150 RGB bytes each) as `(pixel - mean) / 256`, NHWC.
pub(crate) fn normalize_input(chips: &[&[u8]], mean: [f32; 3], out: &mut [f32]) {
    let per = chips[0].len();
    out[..per * chips.len()].par_chunks_mut(per).zip(chips.par_iter()).for_each(|(dst, chip)| {
        for (d, px) in dst.chunks_exact_mut(3).zip(chip.chunks_exact(3)) {
            d[0] = (px[0] as f32 - mean[0]) / 256.0;
            d[1] = (px[1] as f32 - mean[1]) / 256.0;
            d[2] = (px[2] as f32 - mean[2]) / 256.0;
        }
    });
}

/// Max pooling without padding; returns the output geometry.
pub(crate) fn max_pool(input: Shape, x: &[f32], size: usize, stride: usize, out: &mut [f32]) -> Shape {
    let oh = 1 + (input.h - size) / stride;
    let ow = 1 + (input.w - size) / stride;
    let c = input.c;
    out[..input.n * oh * ow * c].par_chunks_mut(oh * ow * c).enumerate().for_each(|(n, out)| {
        for oy in 0..oh {
            for ox in 0..ow {
                let o = &mut out[(oy * ow + ox) * c..][..c];
                o.fill(f32::NEG_INFINITY);
                for ky in 0..size {
                    for kx in 0..size {
                        let src = &x[((n * input.h + oy * stride + ky) * input.w + ox * stride + kx) * c..][..c];
                        for (a, &b) in o.iter_mut().zip(src) {
                            *a = a.max(b);
                        }
                    }
                }
            }
        }
    });
    Shape { n: input.n, h: oh, w: ow, c }
}

/// The end of a down block: `relu(avg_pool_2x2_s2(x) (+) main)`, where (+) is dlib's add_prev:
/// the result takes the larger extent on every axis and each operand is zero-padded at the end.
pub(crate) fn pooled_skip_add_relu(xs: Shape, x: &[f32], ms: Shape, main: &[f32], out: &mut [f32]) -> Shape {
    let ph = 1 + (xs.h - 2) / 2;
    let pw = 1 + (xs.w - 2) / 2;
    let os = Shape { n: xs.n, h: ph.max(ms.h), w: pw.max(ms.w), c: xs.c.max(ms.c) };
    let per_image = os.h * os.w * os.c;
    out[..os.n * per_image].par_chunks_mut(per_image).enumerate().for_each(|(n, out)| {
        for y in 0..os.h {
            for xx in 0..os.w {
                let o = &mut out[(y * os.w + xx) * os.c..][..os.c];
                o.fill(0.0);
                if y < ph && xx < pw {
                    let at = |dy: usize, dx: usize| ((n * xs.h + 2 * y + dy) * xs.w + 2 * xx + dx) * xs.c;
                    let (a, b, c, d) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
                    for ch in 0..xs.c {
                        o[ch] = (x[a + ch] + x[b + ch] + x[c + ch] + x[d + ch]) / 4.0;
                    }
                }
                if y < ms.h && xx < ms.w {
                    let src = &main[((n * ms.h + y) * ms.w + xx) * ms.c..][..ms.c];
                    for (a, &b) in o.iter_mut().zip(src) {
                        *a += b;
                    }
                }
                for v in o.iter_mut() {
                    *v = v.max(0.0);
                }
            }
        }
    });
    os
}

/// Global average pool then `fc` (`[in][out]`, no bias): one descriptor per image.
pub(crate) fn pool_and_project(s: Shape, x: &[f32], fc: &[f32], outputs: usize) -> Vec<Vec<f32>> {
    let hw = s.h * s.w;
    (0..s.n)
        .map(|n| {
            let mut pooled = vec![0f32; s.c];
            for p in 0..hw {
                for (a, &b) in pooled.iter_mut().zip(&x[(n * hw + p) * s.c..][..s.c]) {
                    *a += b;
                }
            }
            let inv = 1.0 / hw as f32;
            let mut out = vec![0f32; outputs];
            for (i, &v) in pooled.iter().enumerate() {
                let v = v * inv;
                for (o, &w) in out.iter_mut().zip(&fc[i * outputs..(i + 1) * outputs]) {
                    *o += v * w;
                }
            }
            out
        })
        .collect()
}
