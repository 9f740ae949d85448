//! Least-squares similarity transforms (rotation, uniform scale, translation) between two
//! point sets, as dlib's `find_similarity_transform` computes them (Umeyama's method).

use crate::geometry::DPoint;

/// `p -> m * p + b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// The 2x2 linear part, row-major: `[[m00, m01], [m10, m11]]`.
    pub m: [[f64; 2]; 2],
    /// The translation.
    pub b: DPoint,
}

impl Similarity {
    /// Applies the transform.
    pub fn apply(&self, p: DPoint) -> DPoint {
        DPoint::new(self.m[0][0] * p.x + self.m[0][1] * p.y + self.b.x, self.m[1][0] * p.x + self.m[1][1] * p.y + self.b.y)
    }

    /// The rotation angle in radians (of the image of the x axis).
    pub fn angle(&self) -> f64 {
        self.m[1][0].atan2(self.m[0][0])
    }

    /// The scale factor (length of the image of the unit x vector).
    pub fn scale(&self) -> f64 {
        self.m[0][0].hypot(self.m[1][0])
    }
}

/// The similarity transform minimising `sum |T(from_i) - to_i|^2` without reflection.
///
/// With centred points the optimum is `m = [[a, -b], [b, a]]`, `a = sum(f.t) / sum|f|^2`,
/// `b = sum(f x t) / sum|f|^2`: the same transform Umeyama's SVD construction yields.
/// Degenerate input (all `from` points equal) gives the identity scale.
pub fn find_similarity_transform(from: &[DPoint], to: &[DPoint]) -> Similarity {
    assert_eq!(from.len(), to.len(), "point sets must have the same size");
    assert!(!from.is_empty(), "need at least one point");
    let n = from.len() as f64;
    let mean = |ps: &[DPoint]| {
        let s = ps.iter().fold(DPoint::default(), |a, p| DPoint::new(a.x + p.x, a.y + p.y));
        DPoint::new(s.x / n, s.y / n)
    };
    let (mf, mt) = (mean(from), mean(to));
    let (mut dot, mut cross, mut sigma) = (0.0, 0.0, 0.0);
    for (f, t) in from.iter().zip(to) {
        let (fx, fy, tx, ty) = (f.x - mf.x, f.y - mf.y, t.x - mt.x, t.y - mt.y);
        dot += fx * tx + fy * ty;
        cross += fx * ty - fy * tx;
        sigma += fx * fx + fy * fy;
    }
    let (a, b) = if sigma == 0.0 { (1.0, 0.0) } else { (dot / sigma, cross / sigma) };
    let m = [[a, -b], [b, a]];
    let bx = mt.x - (m[0][0] * mf.x + m[0][1] * mf.y);
    let by = mt.y - (m[1][0] * mf.x + m[1][1] * mf.y);
    Similarity { m, b: DPoint::new(bx, by) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_transform() {
        let (s, th, tx, ty) = (2.5f64, 0.3f64, 10.0, -4.0);
        let from = [DPoint::new(0.0, 0.0), DPoint::new(1.0, 0.0), DPoint::new(0.0, 2.0), DPoint::new(3.0, 1.0)];
        let to: Vec<DPoint> = from
            .iter()
            .map(|p| DPoint::new(s * (th.cos() * p.x - th.sin() * p.y) + tx, s * (th.sin() * p.x + th.cos() * p.y) + ty))
            .collect();
        let t = find_similarity_transform(&from, &to);
        assert!((t.scale() - s).abs() < 1e-12);
        assert!((t.angle() - th).abs() < 1e-12);
        for (f, g) in from.iter().zip(&to) {
            let p = t.apply(*f);
            assert!((p.x - g.x).abs() < 1e-12 && (p.y - g.y).abs() < 1e-12);
        }
    }

    fn residual(t: &Similarity, from: &[DPoint], to: &[DPoint]) -> f64 {
        from.iter().zip(to).map(|(f, g)| (t.apply(*f).x - g.x).powi(2) + (t.apply(*f).y - g.y).powi(2)).sum()
    }

    #[test]
    fn never_reflects() {
        // An asymmetric shape and its mirror image (x -> -x). A reflection maps one onto the
        // other exactly (residual 0); the best rotation + scale cannot, so a fit that allowed
        // reflections (plain least-squares affine, or Umeyama without its sign correction)
        // would fail here.
        let from = [DPoint::new(0.0, 0.0), DPoint::new(4.0, 0.0), DPoint::new(0.0, 1.0), DPoint::new(3.0, 2.5), DPoint::new(1.0, -2.0)];
        let to: Vec<DPoint> = from.iter().map(|p| DPoint::new(-p.x + 5.0, p.y + 1.0)).collect();
        let t = find_similarity_transform(&from, &to);
        let det = t.m[0][0] * t.m[1][1] - t.m[0][1] * t.m[1][0];
        assert!(det > 0.0, "the fitted transform must preserve orientation, det = {det}");
        // The mirrored configuration is badly fitted: a large part of the target's spread
        // remains unexplained.
        let mean = to.iter().fold((0.0, 0.0), |a, p| (a.0 + p.x / to.len() as f64, a.1 + p.y / to.len() as f64));
        let spread: f64 = to.iter().map(|p| (p.x - mean.0).powi(2) + (p.y - mean.1).powi(2)).sum();
        let r = residual(&t, &from, &to);
        assert!(r > 0.25 * spread, "residual {r} of spread {spread}: the mirror image was fitted");
        // And it is the best proper similarity: no rotation on a fine grid (with its optimal
        // scale and translation) does better.
        let (mf, mt) = (from.iter().fold((0.0, 0.0), |a, p| (a.0 + p.x / 5.0, a.1 + p.y / 5.0)), mean);
        for k in 0..3600 {
            let th = k as f64 * std::f64::consts::PI / 1800.0;
            let (c, s) = (th.cos(), th.sin());
            let (mut num, mut den) = (0.0, 0.0);
            for (f, g) in from.iter().zip(&to) {
                let (fx, fy) = (f.x - mf.0, f.y - mf.1);
                let (rx, ry) = (c * fx - s * fy, s * fx + c * fy);
                num += rx * (g.x - mt.0) + ry * (g.y - mt.1);
                den += fx * fx + fy * fy;
            }
            let sc = (num / den).max(0.0);
            let m = [[sc * c, -sc * s], [sc * s, sc * c]];
            let b = DPoint::new(mt.0 - (m[0][0] * mf.0 + m[0][1] * mf.1), mt.1 - (m[1][0] * mf.0 + m[1][1] * mf.1));
            assert!(residual(&Similarity { m, b }, &from, &to) >= r - 1e-9, "angle {th} beats the fit");
        }
    }
}
