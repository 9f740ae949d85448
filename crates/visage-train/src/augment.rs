//! Training-time augmentation of RGB chips: a horizontal flip, a shift of up to 2 pixels (edges
//! repeated), a contrast gain and a brightness offset of up to 10%.

use visage_core::SeededRng;

/// One chip's augmentation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augmentation {
    /// Mirror left-right.
    pub flip: bool,
    /// Horizontal shift in pixels, in -2..=2.
    pub dx: isize,
    /// Vertical shift in pixels, in -2..=2.
    pub dy: isize,
    /// Contrast gain, in [0.9, 1.1).
    pub gain: f64,
    /// Brightness offset in grey levels, in [-12.75, 12.75).
    pub bias: f64,
}

impl Augmentation {
    /// The horizontal mirror image and nothing else.
    pub const MIRROR: Augmentation = Augmentation { flip: true, dx: 0, dy: 0, gain: 1.0, bias: 0.0 };

    /// Draws one: always five draws from `rng`, so a resumed run can replay them.
    pub fn draw(rng: &mut SeededRng) -> Self {
        let flip = rng.below(2) == 1;
        let (dx, dy) = (rng.below(5) as isize - 2, rng.below(5) as isize - 2);
        let gain = 0.9 + 0.2 * rng.uniform();
        let bias = 25.5 * (rng.uniform() - 0.5);
        Augmentation { flip, dx, dy, gain, bias }
    }

    /// `chip` (row-major RGB, `size` x `size`) with this augmentation applied.
    pub fn apply(&self, chip: &[u8], size: usize) -> Vec<u8> {
        assert_eq!(chip.len(), size * size * 3, "a {size}x{size} RGB chip");
        let mut out = vec![0u8; chip.len()];
        for y in 0..size {
            for x in 0..size {
                let sx = if self.flip { size - 1 - x } else { x } as isize + self.dx;
                let sy = y as isize + self.dy;
                let (sx, sy) = (sx.clamp(0, size as isize - 1) as usize, sy.clamp(0, size as isize - 1) as usize);
                for c in 0..3 {
                    let v = chip[(sy * size + sx) * 3 + c] as f64 * self.gain + self.bias;
                    out[(y * size + x) * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        out
    }
}

/// `chip` augmented with a fresh draw from `rng`.
pub fn augment(chip: &[u8], size: usize, rng: &mut SeededRng) -> Vec<u8> {
    Augmentation::draw(rng).apply(chip, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chip(size: usize) -> Vec<u8> {
        (0..size * size * 3).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn the_identity_draw_changes_nothing() {
        let c = chip(5);
        let id = Augmentation { flip: false, dx: 0, dy: 0, gain: 1.0, bias: 0.0 };
        assert_eq!(id.apply(&c, 5), c);
    }

    #[test]
    fn a_flip_mirrors_and_a_shift_repeats_the_edge() {
        let c = chip(4);
        let px = |v: &[u8], x: usize, y: usize| [v[(y * 4 + x) * 3], v[(y * 4 + x) * 3 + 1], v[(y * 4 + x) * 3 + 2]];
        let f = Augmentation { flip: true, dx: 0, dy: 0, gain: 1.0, bias: 0.0 }.apply(&c, 4);
        assert_eq!(px(&f, 0, 1), px(&c, 3, 1));
        let s = Augmentation { flip: false, dx: 2, dy: -1, gain: 1.0, bias: 0.0 }.apply(&c, 4);
        // Output (x, y) reads source (x + 2, y - 1), clamped to the chip.
        assert_eq!(px(&s, 0, 2), px(&c, 2, 1));
        assert_eq!(px(&s, 3, 0), px(&c, 3, 0));
    }

    #[test]
    fn gain_and_bias_are_applied_and_clamped() {
        let c = vec![100u8, 0, 250];
        let a = Augmentation { flip: false, dx: 0, dy: 0, gain: 1.1, bias: 10.0 }.apply(&c, 1);
        assert_eq!(a, vec![120, 10, 255]);
    }

    #[test]
    fn draws_stay_in_their_ranges_and_repeat_from_a_seed() {
        let (mut r1, mut r2) = (SeededRng::new(9), SeededRng::new(9));
        for _ in 0..200 {
            let a = Augmentation::draw(&mut r1);
            assert_eq!(a, Augmentation::draw(&mut r2));
            assert!((-2..=2).contains(&a.dx) && (-2..=2).contains(&a.dy));
            assert!((0.9..1.1).contains(&a.gain) && (-12.75..12.75).contains(&a.bias));
        }
    }
}
