//! AVX2 + FMA micro-kernel: 6 output pixels x 16 output channels, 12 ymm accumulators.

use super::Tile;
use std::arch::x86_64::*;

const MR: usize = 6;
const NR: usize = 16;

/// # Safety
/// AVX2 and FMA must be available and `t` valid (see [`Tile`]).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn tile(t: &Tile) {
    let z = _mm256_setzero_ps();
    let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5) = (z, z, z, z, z, z);
    let (mut d0, mut d1, mut d2, mut d3, mut d4, mut d5) = (z, z, z, z, z, z);
    let mut b = t.b;
    for s in 0..t.nseg {
        let p0 = t.row_ptr(s, 0, MR);
        let p1 = t.row_ptr(s, 1, MR);
        let p2 = t.row_ptr(s, 2, MR);
        let p3 = t.row_ptr(s, 3, MR);
        let p4 = t.row_ptr(s, 4, MR);
        let p5 = t.row_ptr(s, 5, MR);
        for k in 0..t.seg_len {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            b = b.add(NR);
            macro_rules! row {
                ($p:ident, $c:ident, $d:ident) => {
                    let a = _mm256_broadcast_ss(&*$p.add(k));
                    $c = _mm256_fmadd_ps(a, b0, $c);
                    $d = _mm256_fmadd_ps(a, b1, $d);
                };
            }
            row!(p0, c0, d0);
            row!(p1, c1, d1);
            row!(p2, c2, d2);
            row!(p3, c3, d3);
            row!(p4, c4, d4);
            row!(p5, c5, d5);
        }
    }
    let sc0 = _mm256_loadu_ps(t.scale);
    let sc1 = _mm256_loadu_ps(t.scale.add(8));
    let sh0 = _mm256_loadu_ps(t.shift);
    let sh1 = _mm256_loadu_ps(t.shift.add(8));
    macro_rules! store {
        ($r:expr, $c:ident, $d:ident) => {
            if $r < t.rows {
                let mut v0 = _mm256_fmadd_ps($c, sc0, sh0);
                let mut v1 = _mm256_fmadd_ps($d, sc1, sh1);
                let out = t.c.add($r * t.ldc);
                if t.cols == NR {
                    if !t.residual.is_null() {
                        let res = t.residual.add($r * t.ldc);
                        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(res));
                        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(res.add(8)));
                    }
                    if t.relu {
                        v0 = _mm256_max_ps(v0, z);
                        v1 = _mm256_max_ps(v1, z);
                    }
                    _mm256_storeu_ps(out, v0);
                    _mm256_storeu_ps(out.add(8), v1);
                } else {
                    let mut tmp = [0f32; NR];
                    _mm256_storeu_ps(tmp.as_mut_ptr(), v0);
                    _mm256_storeu_ps(tmp.as_mut_ptr().add(8), v1);
                    for (j, v) in tmp.iter().enumerate().take(t.cols) {
                        let mut v = *v;
                        if !t.residual.is_null() {
                            v += *t.residual.add($r * t.ldc + j);
                        }
                        if t.relu {
                            v = v.max(0.0);
                        }
                        *out.add(j) = v;
                    }
                }
            }
        };
    }
    store!(0, c0, d0);
    store!(1, c1, d1);
    store!(2, c2, d2);
    store!(3, c3, d3);
    store!(4, c4, d4);
    store!(5, c5, d5);
}
