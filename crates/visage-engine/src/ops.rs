//! The cheap layers, over NHWC activations.

use crate::tensor::Shape;
use rayon::prelude::*;

/// Writes RGB byte images (each `per` bytes) as `(pixel - mean[ch]) * scale`, NHWC.
pub(crate) fn normalize_rgb(images: &[&[u8]], mean: [f32; 3], scale: f32, out: &mut [f32]) {
    let per = images[0].len();
    out[..per * images.len()].par_chunks_mut(per).zip(images.par_iter()).for_each(|(dst, img)| {
        for (d, px) in dst.chunks_exact_mut(3).zip(img.chunks_exact(3)) {
            d[0] = (px[0] as f32 - mean[0]) * scale;
            d[1] = (px[1] as f32 - mean[1]) * scale;
            d[2] = (px[2] as f32 - mean[2]) * scale;
        }
    });
}

/// Output side of a window of `size` with `stride` and `pad` over `side` values.
pub(crate) fn pooled_side(side: usize, size: usize, stride: usize, pad: usize) -> Option<usize> {
    (side + 2 * pad).checked_sub(size).map(|v| 1 + v / stride)
}

/// Max pooling; positions outside the input are ignored.
pub(crate) fn max_pool(input: Shape, x: &[f32], size: usize, stride: usize, pad: usize, out: &mut [f32]) -> Shape {
    let oh = pooled_side(input.h, size, stride, pad).expect("planned shape");
    let ow = pooled_side(input.w, size, stride, pad).expect("planned shape");
    let c = input.c;
    out[..input.n * oh * ow * c].par_chunks_mut(oh * ow * c).enumerate().for_each(|(n, out)| {
        for oy in 0..oh {
            for ox in 0..ow {
                let o = &mut out[(oy * ow + ox) * c..][..c];
                o.fill(f32::NEG_INFINITY);
                for ky in 0..size {
                    let iy = (oy * stride + ky) as isize - pad as isize;
                    if iy < 0 || iy as usize >= input.h {
                        continue;
                    }
                    for kx in 0..size {
                        let ix = (ox * stride + kx) as isize - pad as isize;
                        if ix < 0 || ix as usize >= input.w {
                            continue;
                        }
                        let src = &x[((n * input.h + iy as usize) * input.w + ix as usize) * c..][..c];
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

/// Average pooling without padding.
pub(crate) fn avg_pool(input: Shape, x: &[f32], size: usize, stride: usize, out: &mut [f32]) -> Shape {
    let oh = pooled_side(input.h, size, stride, 0).expect("planned shape");
    let ow = pooled_side(input.w, size, stride, 0).expect("planned shape");
    let c = input.c;
    let inv = 1.0 / (size * size) as f32;
    out[..input.n * oh * ow * c].par_chunks_mut(oh * ow * c).enumerate().for_each(|(n, out)| {
        for oy in 0..oh {
            for ox in 0..ow {
                let o = &mut out[(oy * ow + ox) * c..][..c];
                o.fill(0.0);
                for ky in 0..size {
                    for kx in 0..size {
                        let src = &x[((n * input.h + oy * stride + ky) * input.w + ox * stride + kx) * c..][..c];
                        for (a, &b) in o.iter_mut().zip(src) {
                            *a += b;
                        }
                    }
                }
                for a in o.iter_mut() {
                    *a *= inv;
                }
            }
        }
    });
    Shape { n: input.n, h: oh, w: ow, c }
}

/// The extent of dlib's `add_prev` of two activations: the larger on every axis.
pub(crate) fn add_prev_shape(a: Shape, b: Shape) -> Shape {
    Shape { n: a.n, h: a.h.max(b.h), w: a.w.max(b.w), c: a.c.max(b.c) }
}

/// dlib's `add_prev`: `out = a (+) b`, each operand zero-padded at the end of every axis, then
/// relu when asked.
pub(crate) fn add_prev(a_shape: Shape, a: &[f32], b_shape: Shape, b: &[f32], relu: bool, out: &mut [f32]) -> Shape {
    let os = add_prev_shape(a_shape, b_shape);
    let per = os.per_image();
    out[..os.n * per].par_chunks_mut(per).enumerate().for_each(|(n, out)| {
        for y in 0..os.h {
            for xx in 0..os.w {
                let o = &mut out[(y * os.w + xx) * os.c..][..os.c];
                o.fill(0.0);
                for (s, v) in [(a_shape, a), (b_shape, b)] {
                    if y < s.h && xx < s.w {
                        let src = &v[((n * s.h + y) * s.w + xx) * s.c..][..s.c];
                        for (d, &x) in o.iter_mut().zip(src) {
                            *d += x;
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
    });
    os
}

/// `avg_pool_2x2_s2(x) (+) main` (dlib's `add_prev`, zero-padding the smaller operand), then
/// relu when asked: a down block's end in one pass.
pub(crate) fn pooled_skip_add(xs: Shape, x: &[f32], ms: Shape, main: &[f32], relu: bool, out: &mut [f32]) -> Shape {
    let ph = 1 + (xs.h - 2) / 2;
    let pw = 1 + (xs.w - 2) / 2;
    let os = Shape { n: xs.n, h: ph.max(ms.h), w: pw.max(ms.w), c: xs.c.max(ms.c) };
    let per_image = os.per_image();
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
                if relu {
                    for v in o.iter_mut() {
                        *v = v.max(0.0);
                    }
                }
            }
        }
    });
    os
}

/// `x = max(0, x)` in place.
pub(crate) fn relu(x: &mut [f32]) {
    x.par_chunks_mut(1 << 14).for_each(|c| {
        for v in c {
            *v = v.max(0.0);
        }
    });
}

/// `x[c] = gamma[c] * x[c] + beta[c]` in place (NHWC, `c` fastest).
pub(crate) fn affine(x: &mut [f32], gamma: &[f32], beta: &[f32]) {
    let c = gamma.len();
    x.par_chunks_mut(c * 256).for_each(|chunk| {
        for px in chunk.chunks_exact_mut(c) {
            for ((v, &g), &b) in px.iter_mut().zip(gamma).zip(beta) {
                *v = g * *v + b;
            }
        }
    });
}

/// The mean over rows and columns of each channel.
pub(crate) fn global_avg_pool(s: Shape, x: &[f32], out: &mut [f32]) -> Shape {
    let hw = s.h * s.w;
    let inv = 1.0 / hw as f32;
    for n in 0..s.n {
        let o = &mut out[n * s.c..(n + 1) * s.c];
        o.fill(0.0);
        for p in 0..hw {
            for (a, &b) in o.iter_mut().zip(&x[(n * hw + p) * s.c..][..s.c]) {
                *a += b;
            }
        }
        for a in o.iter_mut() {
            *a *= inv;
        }
    }
    Shape { n: s.n, h: 1, w: 1, c: s.c }
}

/// Fully connected: `out[o] = bias[o] + sum_i in[i] * w[i][o]`, `i` counted channel-major
/// (CHW) over each image's NHWC values.
pub(crate) fn fully_connected(s: Shape, x: &[f32], w: &[f32], bias: Option<&[f32]>, outputs: usize, out: &mut [f32]) -> Shape {
    let hw = s.h * s.w;
    for n in 0..s.n {
        let o = &mut out[n * outputs..(n + 1) * outputs];
        match bias {
            Some(b) => o.copy_from_slice(b),
            None => o.fill(0.0),
        }
        let img = &x[n * hw * s.c..(n + 1) * hw * s.c];
        for c in 0..s.c {
            for p in 0..hw {
                let v = img[p * s.c + c];
                let row = &w[(c * hw + p) * outputs..][..outputs];
                for (a, &b) in o.iter_mut().zip(row) {
                    *a += v * b;
                }
            }
        }
    }
    Shape { n: s.n, h: 1, w: 1, c: outputs }
}

/// Global average pool then a bias-free fully connected layer, in the order the face ResNet
/// was checked with (sum, scale, project).
pub(crate) fn pool_and_project(s: Shape, x: &[f32], fc: &[f32], bias: Option<&[f32]>, outputs: usize, out: &mut [f32]) -> Shape {
    let hw = s.h * s.w;
    let inv = 1.0 / hw as f32;
    let mut pooled = vec![0f32; s.c];
    for n in 0..s.n {
        pooled.fill(0.0);
        for p in 0..hw {
            for (a, &b) in pooled.iter_mut().zip(&x[(n * hw + p) * s.c..][..s.c]) {
                *a += b;
            }
        }
        let o = &mut out[n * outputs..(n + 1) * outputs];
        match bias {
            Some(b) => o.copy_from_slice(b),
            None => o.fill(0.0),
        }
        for (i, &v) in pooled.iter().enumerate() {
            let v = v * inv;
            for (a, &w) in o.iter_mut().zip(&fc[i * outputs..(i + 1) * outputs]) {
                *a += v * w;
            }
        }
    }
    Shape { n: s.n, h: 1, w: 1, c: outputs }
}
