//! Rectangles and points with dlib's conventions: integer rectangles have inclusive corners,
//! so a rectangle's width is `right - left + 1` and its area is 0 when it is empty.

use serde::{Deserialize, Serialize};

/// An integer point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Point {
    /// Column.
    pub x: i64,
    /// Row.
    pub y: i64,
}

/// A real-valued point.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DPoint {
    /// Column.
    pub x: f64,
    /// Row.
    pub y: f64,
}

impl DPoint {
    /// A point.
    pub const fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }
}

impl From<Point> for DPoint {
    fn from(p: Point) -> Self {
        DPoint::new(p.x as f64, p.y as f64)
    }
}

/// An integer rectangle with inclusive corners (dlib's `rectangle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rect {
    /// Leftmost column.
    pub left: i64,
    /// Top row.
    pub top: i64,
    /// Rightmost column (inclusive).
    pub right: i64,
    /// Bottom row (inclusive).
    pub bottom: i64,
}

impl Rect {
    /// A rectangle from its inclusive corners.
    pub const fn new(left: i64, top: i64, right: i64, bottom: i64) -> Self {
        Self { left, top, right, bottom }
    }

    /// `right - left + 1`, or 0 when empty.
    pub fn width(&self) -> i64 {
        if self.is_empty() {
            0
        } else {
            self.right - self.left + 1
        }
    }

    /// `bottom - top + 1`, or 0 when empty.
    pub fn height(&self) -> i64 {
        if self.is_empty() {
            0
        } else {
            self.bottom - self.top + 1
        }
    }

    /// Width times height.
    pub fn area(&self) -> i64 {
        self.width() * self.height()
    }

    /// True when `left > right` or `top > bottom`.
    pub fn is_empty(&self) -> bool {
        self.left > self.right || self.top > self.bottom
    }

    /// The intersection (possibly empty).
    pub fn intersect(&self, o: &Rect) -> Rect {
        Rect::new(self.left.max(o.left), self.top.max(o.top), self.right.min(o.right), self.bottom.min(o.bottom))
    }

    /// The smallest rectangle containing both.
    pub fn union_box(&self, o: &Rect) -> Rect {
        Rect::new(self.left.min(o.left), self.top.min(o.top), self.right.max(o.right), self.bottom.max(o.bottom))
    }

    /// face_recognition's trim: left/top clamped to 0, right/bottom to the image's width and
    /// height (not width-1: that is what `_trim_css_to_bounds` does).
    pub fn trimmed_to(&self, width: u32, height: u32) -> Rect {
        Rect::new(self.left.max(0), self.top.max(0), self.right.min(width as i64), self.bottom.min(height as i64))
    }

    /// The centre as a real point.
    pub fn center(&self) -> DPoint {
        DPoint::new((self.left + self.right) as f64 / 2.0, (self.top + self.bottom) as f64 / 2.0)
    }
}

/// A real-valued rectangle (dlib's `drectangle`), inclusive corners.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DRect {
    /// Left.
    pub left: f64,
    /// Top.
    pub top: f64,
    /// Right.
    pub right: f64,
    /// Bottom.
    pub bottom: f64,
}

impl DRect {
    /// A rectangle from its corners.
    pub const fn new(left: f64, top: f64, right: f64, bottom: f64) -> Self {
        Self { left, top, right, bottom }
    }

    /// dlib's drectangle area: `(right - left + 1) * (bottom - top + 1)`, 0 when empty.
    pub fn area(&self) -> f64 {
        if self.left > self.right || self.top > self.bottom {
            0.0
        } else {
            (self.right - self.left + 1.0) * (self.bottom - self.top + 1.0)
        }
    }

    /// The centre.
    pub fn center(&self) -> DPoint {
        DPoint::new((self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusive_corners() {
        let r = Rect::new(10, 20, 19, 29);
        assert_eq!((r.width(), r.height(), r.area()), (10, 10, 100));
        assert_eq!(Rect::new(5, 5, 4, 9).area(), 0);
        assert_eq!(r.intersect(&Rect::new(15, 25, 40, 40)), Rect::new(15, 25, 19, 29));
        assert_eq!(r.intersect(&Rect::new(30, 30, 40, 40)).area(), 0);
    }

    #[test]
    fn trim_matches_face_recognition() {
        // Tom_Hanks (112x112): raw (6,26,96,116) -> bottom clamps to 112, the image height.
        assert_eq!(Rect::new(6, 26, 96, 116).trimmed_to(112, 112), Rect::new(6, 26, 96, 112));
        assert_eq!(Rect::new(-3, -4, 50, 50).trimmed_to(112, 112), Rect::new(0, 0, 50, 50));
    }
}
