//! The geometry of dlib's `pyramid_down<N>`: where a point of one pyramid level lies on the
//! next one down, and back. The pixel filters live with their users (the aligner's 5-tap
//! `pyramid_down<2>`, the detectors' resampling); the coordinates are shared here.

use crate::{DPoint, DRect};

/// `pyramid_down<N>`: each level is `(N-1)/N` of the one above (`N = 2` halves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PyramidDown(u32);

impl PyramidDown {
    /// dlib's `pyramid_down<2>`.
    pub const HALF: PyramidDown = PyramidDown(2);
    /// dlib's `pyramid_down<6>` (the HOG and MMOD detectors' pyramids).
    pub const FIVE_SIXTHS: PyramidDown = PyramidDown(6);

    /// `pyramid_down<n>`; `None` below 2.
    pub fn new(n: u32) -> Option<Self> {
        (n >= 2).then_some(PyramidDown(n))
    }

    /// The `N` of `pyramid_down<N>`.
    pub fn n(self) -> u32 {
        self.0
    }

    /// A point of a level on the level below: `p / 2 - (1.25, 0.75)` for `N = 2`, otherwise
    /// `(p - 0.3) * (N - 1) / N`.
    pub fn point_down(self, p: DPoint) -> DPoint {
        if self.0 == 2 {
            DPoint::new(p.x / 2.0 - 1.25, p.y / 2.0 - 0.75)
        } else {
            let ratio = (self.0 as f64 - 1.0) / self.0 as f64;
            DPoint::new((p.x - 0.3) * ratio, (p.y - 0.3) * ratio)
        }
    }

    /// The inverse of [`Self::point_down`]: `(p + (1.25, 0.75)) * 2` for `N = 2`, otherwise
    /// `p * N / (N - 1) + 0.3`.
    pub fn point_up(self, p: DPoint) -> DPoint {
        if self.0 == 2 {
            DPoint::new((p.x + 1.25) * 2.0, (p.y + 0.75) * 2.0)
        } else {
            let ratio = self.0 as f64 / (self.0 as f64 - 1.0);
            DPoint::new(p.x * ratio + 0.3, p.y * ratio + 0.3)
        }
    }

    /// A rectangle's corners moved down one level.
    pub fn rect_down(self, r: DRect) -> DRect {
        let tl = self.point_down(DPoint::new(r.left, r.top));
        let br = self.point_down(DPoint::new(r.right, r.bottom));
        DRect::new(tl.x, tl.y, br.x, br.y)
    }

    /// A rectangle's corners moved up `levels` levels.
    pub fn rect_up(self, r: DRect, levels: usize) -> DRect {
        let (mut tl, mut br) = (DPoint::new(r.left, r.top), DPoint::new(r.right, r.bottom));
        for _ in 0..levels {
            tl = self.point_up(tl);
            br = self.point_up(br);
        }
        DRect::new(tl.x, tl.y, br.x, br.y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_inverts_down_and_matches_dlib_formulas() {
        // Hand-computed: pyramid_down<2> of (10, 20) is (3.75, 9.25); pyramid_down<6> of
        // (30.3, 60.3) is (25, 50).
        assert_eq!(PyramidDown::HALF.point_down(DPoint::new(10.0, 20.0)), DPoint::new(3.75, 9.25));
        let d = PyramidDown::FIVE_SIXTHS.point_down(DPoint::new(30.3, 60.3));
        assert!((d.x - 25.0).abs() < 1e-12 && (d.y - 50.0).abs() < 1e-12, "{d:?}");
        for p in [PyramidDown::HALF, PyramidDown::FIVE_SIXTHS, PyramidDown::new(4).unwrap()] {
            let q = DPoint::new(123.5, -7.25);
            let back = p.point_up(p.point_down(q));
            assert!((back.x - q.x).abs() < 1e-9 && (back.y - q.y).abs() < 1e-9, "{p:?}");
        }
        assert!(PyramidDown::new(1).is_none());
    }
}
