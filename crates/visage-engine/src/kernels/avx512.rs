//! AVX-512F micro-kernel: 12 output pixels x 32 output channels, 24 zmm accumulators; and
//! its half, 12 x 16, for panels with at most 16 valid channels (a layer of 16 or 45
//! outputs would otherwise compute 32 or 64 lanes).

use super::Tile;
use std::arch::x86_64::*;

const MR: usize = 12;
const NR: usize = 32;

/// # Safety
/// AVX-512F must be available and `t` valid (see [`Tile`]).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn tile(t: &Tile) {
    if t.cols <= 16 {
        return half(t);
    }
    let z = _mm512_setzero_ps();
    let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5) = (z, z, z, z, z, z);
    let (mut c6, mut c7, mut c8, mut c9, mut c10, mut c11) = (z, z, z, z, z, z);
    let (mut d0, mut d1, mut d2, mut d3, mut d4, mut d5) = (z, z, z, z, z, z);
    let (mut d6, mut d7, mut d8, mut d9, mut d10, mut d11) = (z, z, z, z, z, z);
    let mut b = t.b;
    for s in 0..t.nseg {
        let p0 = t.row_ptr(s, 0, MR);
        let p1 = t.row_ptr(s, 1, MR);
        let p2 = t.row_ptr(s, 2, MR);
        let p3 = t.row_ptr(s, 3, MR);
        let p4 = t.row_ptr(s, 4, MR);
        let p5 = t.row_ptr(s, 5, MR);
        let p6 = t.row_ptr(s, 6, MR);
        let p7 = t.row_ptr(s, 7, MR);
        let p8 = t.row_ptr(s, 8, MR);
        let p9 = t.row_ptr(s, 9, MR);
        let p10 = t.row_ptr(s, 10, MR);
        let p11 = t.row_ptr(s, 11, MR);
        for k in 0..t.seg_len {
            let b0 = _mm512_loadu_ps(b);
            let b1 = _mm512_loadu_ps(b.add(16));
            b = b.add(NR);
            macro_rules! row {
                ($p:ident, $c:ident, $d:ident) => {
                    let a = _mm512_set1_ps(*$p.add(k));
                    $c = _mm512_fmadd_ps(a, b0, $c);
                    $d = _mm512_fmadd_ps(a, b1, $d);
                };
            }
            row!(p0, c0, d0);
            row!(p1, c1, d1);
            row!(p2, c2, d2);
            row!(p3, c3, d3);
            row!(p4, c4, d4);
            row!(p5, c5, d5);
            row!(p6, c6, d6);
            row!(p7, c7, d7);
            row!(p8, c8, d8);
            row!(p9, c9, d9);
            row!(p10, c10, d10);
            row!(p11, c11, d11);
        }
    }
    let sc0 = _mm512_loadu_ps(t.scale);
    let sc1 = _mm512_loadu_ps(t.scale.add(16));
    let sh0 = _mm512_loadu_ps(t.shift);
    let sh1 = _mm512_loadu_ps(t.shift.add(16));
    let full = t.cols == NR;
    let m0: __mmask16 = if t.cols >= 16 { 0xFFFF } else { ((1u32 << t.cols) - 1) as u16 };
    let m1: __mmask16 = if t.cols >= 32 {
        0xFFFF
    } else if t.cols > 16 {
        ((1u32 << (t.cols - 16)) - 1) as u16
    } else {
        0
    };
    macro_rules! store {
        ($r:expr, $c:ident, $d:ident) => {
            if $r < t.rows {
                let mut v0 = _mm512_fmadd_ps($c, sc0, sh0);
                let mut v1 = _mm512_fmadd_ps($d, sc1, sh1);
                if !t.residual.is_null() {
                    let res = t.residual.add($r * t.ldc);
                    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, res));
                    v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, res.add(16)));
                }
                if t.relu {
                    v0 = _mm512_max_ps(v0, z);
                    v1 = _mm512_max_ps(v1, z);
                }
                let out = t.c.add($r * t.ldc);
                if full {
                    _mm512_storeu_ps(out, v0);
                    _mm512_storeu_ps(out.add(16), v1);
                } else {
                    _mm512_mask_storeu_ps(out, m0, v0);
                    _mm512_mask_storeu_ps(out.add(16), m1, v1);
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
    store!(6, c6, d6);
    store!(7, c7, d7);
    store!(8, c8, d8);
    store!(9, c9, d9);
    store!(10, c10, d10);
    store!(11, c11, d11);
}

/// The first 16 columns of a panel only (the packing stride stays [`NR`]).
///
/// # Safety
/// As [`tile`], with `t.cols <= 16`.
#[target_feature(enable = "avx512f")]
unsafe fn half(t: &Tile) {
    let z = _mm512_setzero_ps();
    let (mut c0, mut c1, mut c2, mut c3, mut c4, mut c5) = (z, z, z, z, z, z);
    let (mut c6, mut c7, mut c8, mut c9, mut c10, mut c11) = (z, z, z, z, z, z);
    let mut b = t.b;
    for s in 0..t.nseg {
        let p: [*const f32; MR] = std::array::from_fn(|r| t.row_ptr(s, r, MR));
        for k in 0..t.seg_len {
            let b0 = _mm512_loadu_ps(b);
            b = b.add(NR);
            macro_rules! row {
                ($r:expr, $c:ident) => {
                    $c = _mm512_fmadd_ps(_mm512_set1_ps(*p[$r].add(k)), b0, $c);
                };
            }
            row!(0, c0);
            row!(1, c1);
            row!(2, c2);
            row!(3, c3);
            row!(4, c4);
            row!(5, c5);
            row!(6, c6);
            row!(7, c7);
            row!(8, c8);
            row!(9, c9);
            row!(10, c10);
            row!(11, c11);
        }
    }
    let sc0 = _mm512_loadu_ps(t.scale);
    let sh0 = _mm512_loadu_ps(t.shift);
    let m0: __mmask16 = if t.cols >= 16 { 0xFFFF } else { ((1u32 << t.cols) - 1) as u16 };
    macro_rules! store {
        ($r:expr, $c:ident) => {
            if $r < t.rows {
                let mut v0 = _mm512_fmadd_ps($c, sc0, sh0);
                if !t.residual.is_null() {
                    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, t.residual.add($r * t.ldc)));
                }
                if t.relu {
                    v0 = _mm512_max_ps(v0, z);
                }
                _mm512_mask_storeu_ps(t.c.add($r * t.ldc), m0, v0);
            }
        };
    }
    store!(0, c0);
    store!(1, c1);
    store!(2, c2);
    store!(3, c3);
    store!(4, c4);
    store!(5, c5);
    store!(6, c6);
    store!(7, c7);
    store!(8, c8);
    store!(9, c9);
    store!(10, c10);
    store!(11, c11);
}
