//! A rectangle of an RGB image, read in place (no copy of the crop dlib would cut first).

use visage_core::{Rect, RgbImage};

/// `width` x `height` pixels of an interleaved RGB buffer whose rows start `stride` values
/// apart; `data` starts at the first pixel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

impl<'a> View<'a> {
    /// The whole image.
    pub fn of(img: &'a RgbImage) -> Self {
        View { data: img.as_raw(), width: img.width() as usize, height: img.height() as usize, stride: img.width() as usize * 3 }
    }

    /// The inclusive rectangle `r` of `img`, which must lie inside it; empty when `r` is.
    pub fn rect(img: &'a RgbImage, r: Rect) -> Self {
        let (w, h) = ((r.right - r.left + 1).max(0) as usize, (r.bottom - r.top + 1).max(0) as usize);
        let stride = img.width() as usize * 3;
        if w == 0 || h == 0 {
            return View { data: &[], width: 0, height: 0, stride };
        }
        let start = r.top as usize * stride + r.left as usize * 3;
        View { data: &img.as_raw()[start..start + (h - 1) * stride + w * 3], width: w, height: h, stride }
    }

    /// The `width * 3` values of row `y`.
    pub fn row(&self, y: usize) -> &'a [u8] {
        &self.data[y * self.stride..y * self.stride + self.width * 3]
    }
}
