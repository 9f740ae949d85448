//! Portable micro-kernel (any CPU): 4 output pixels x 16 output channels in plain Rust,
//! written so that the compiler vectorizes the channel loop.

use super::Tile;

const MR: usize = 4;
const NR: usize = 16;

/// # Safety
/// `t` must be valid (see [`Tile`]).
pub(super) unsafe fn tile(t: &Tile) {
    let mut acc = [[0f32; NR]; MR];
    let mut b = t.b;
    for s in 0..t.nseg {
        let p: [*const f32; MR] = std::array::from_fn(|r| t.row_ptr(s, r, MR));
        for k in 0..t.seg_len {
            let bk: &[f32; NR] = &*(b as *const [f32; NR]);
            b = b.add(NR);
            for r in 0..MR {
                let a = *p[r].add(k);
                for j in 0..NR {
                    acc[r][j] += a * bk[j];
                }
            }
        }
    }
    for (r, row) in acc.iter().enumerate().take(t.rows) {
        for (j, &v) in row.iter().enumerate().take(t.cols) {
            let mut v = v * *t.scale.add(j) + *t.shift.add(j);
            if !t.residual.is_null() {
                v += *t.residual.add(r * t.ldc + j);
            }
            if t.relu {
                v = v.max(0.0);
            }
            *t.c.add(r * t.ldc + j) = v;
        }
    }
}
