//! Local binary patterns (Ojala, Pietikainen, Maenpaa 2002): each pixel becomes the bits
//! "neighbour >= centre" of `points` samples on a circle of `radius`, sampled bilinearly,
//! then the uniform patterns (at most two 0/1 transitions around the circle) keep a label each
//! and every other pattern shares one.

use crate::plane::Plane;
use visage_core::vectorised;

/// A circular LBP operator with its uniform-pattern labelling (`LBP^{u2}_{P,R}`).
#[derive(Debug, Clone)]
pub struct Lbp {
    points: usize,
    radius: f64,
    /// How each sample is read from the plane (the same for every pixel).
    taps: Vec<Tap>,
    /// Label of every pattern code.
    labels: Vec<u16>,
    /// The uniform codes, in label order.
    uniform: Vec<u32>,
    bins: usize,
}

/// One sample on the circle: up to four pixels at offsets (dx, dy) from the centre, weighted
/// bilinearly; pixels of weight zero are left out (so a sample on the grid reads one pixel,
/// and no sample reads past the operator's margin).
#[derive(Debug, Clone)]
struct Tap {
    pixels: Vec<((isize, isize), f32)>,
}

/// A tolerance far below one grey level: a flat neighbourhood interpolates to the centre's
/// value give or take rounding, and must read as ">=" every time.
const TIE: f32 = 1e-3;

/// Number of 0/1 transitions around the circle of a `points`-bit pattern.
pub fn transitions(code: u32, points: usize) -> u32 {
    let rotated = ((code >> 1) | ((code & 1) << (points - 1))) & ((1u32 << points) - 1);
    (code ^ rotated).count_ones()
}

impl Lbp {
    /// The operator with `points` samples (2..=16) at `radius` (> 0) pixels.
    pub fn new(points: usize, radius: f64) -> Self {
        assert!((2..=16).contains(&points) && radius > 0.0, "LBP needs 2..=16 points and a positive radius");
        let taps = (0..points)
            .map(|p| {
                let a = 2.0 * std::f64::consts::PI * p as f64 / points as f64;
                // Sample p sits at angle a, counter-clockwise from the right (image y points down).
                // Rounded to 1e-9 so that samples on the pixel grid read one pixel exactly.
                let snap = |v: f64| (v * 1e9).round() / 1e9;
                let (dx, dy) = (snap(radius * a.cos()), snap(-radius * a.sin()));
                let (x0, y0) = (dx.floor(), dy.floor());
                let (fx, fy) = (dx - x0, dy - y0);
                let (x0, y0) = (x0 as isize, y0 as isize);
                let pixels = [
                    ((x0, y0), (1.0 - fx) * (1.0 - fy)),
                    ((x0 + 1, y0), fx * (1.0 - fy)),
                    ((x0, y0 + 1), (1.0 - fx) * fy),
                    ((x0 + 1, y0 + 1), fx * fy),
                ]
                .into_iter()
                .filter(|&(_, w)| w > 0.0)
                .map(|(o, w)| (o, w as f32))
                .collect();
                Tap { pixels }
            })
            .collect();
        let mut labels = vec![0u16; 1 << points];
        let mut next = 0u16;
        for (code, label) in labels.iter_mut().enumerate() {
            if transitions(code as u32, points) <= 2 {
                *label = next;
                next += 1;
            }
        }
        let other = next;
        for (code, label) in labels.iter_mut().enumerate() {
            if transitions(code as u32, points) > 2 {
                *label = other;
            }
        }
        let uniform = (0..1u32 << points).filter(|&c| transitions(c, points) <= 2).collect();
        Lbp { points, radius, taps, labels, uniform, bins: other as usize + 1 }
    }

    /// Histogram bins: `P (P - 1) + 2` uniform patterns and one for the rest (59 for P = 8,
    /// 243 for P = 16).
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Pixels lost at each border: the samples of a pixel closer than this to the edge would
    /// leave the plane.
    pub fn margin(&self) -> usize {
        self.radius.ceil() as usize
    }

    /// The raw pattern code (bit p = sample p >= centre) at (x, y), which must be at least
    /// [`margin`](Self::margin) from every border. Reads the plane as [`label_image`]
    /// does, one pixel at a time.
    ///
    /// [`label_image`]: Self::label_image
    pub fn code(&self, plane: &Plane, x: usize, y: usize) -> u32 {
        let c = plane.get(x, y) as f32;
        let mut code = 0u32;
        for (p, tap) in self.taps.iter().enumerate() {
            let mut v = 0f32;
            for &((dx, dy), w) in &tap.pixels {
                v += w * plane.get((x as isize + dx) as usize, (y as isize + dy) as usize) as f32;
            }
            if v + TIE >= c {
                code |= 1 << p;
            }
        }
        code
    }

    /// The uniform label of a pattern code.
    pub fn label(&self, code: u32) -> u16 {
        self.labels[code as usize]
    }

    /// The pattern codes of the interior, `(width - 2m) x (height - 2m)` with m the margin;
    /// empty when the plane is too small. Every sample of the circle is a fixed offset in the
    /// row-major pixels, so each is computed for the whole interior in one contiguous pass
    /// (the loops vectorise; the codes of the border columns that pass also covers are
    /// skipped when read).
    pub fn codes(&self, plane: &Plane) -> CodeImage<'_> {
        let m = self.margin();
        let (pw, ph) = (plane.width(), plane.height());
        if pw <= 2 * m || ph <= 2 * m {
            return CodeImage { lbp: self, width: 0, height: 0, stride: 0, codes: Vec::new() };
        }
        let (w, h) = (pw - 2 * m, ph - 2 * m);
        let data: Vec<f32> = plane.pixels().iter().map(|&v| v as f32).collect();
        // From the first interior pixel to the last: h - 1 full rows and w pixels.
        let (first, span) = (m * pw + m, (h - 1) * pw + w);
        let mut codes = vec![0u32; span];
        for (p, tap) in self.taps.iter().enumerate() {
            let start = |(dx, dy): (isize, isize)| (first as isize + dy * pw as isize + dx) as usize;
            let reads: Vec<(&[f32], f32)> = tap.pixels.iter().map(|&(o, wt)| (&data[start(o)..start(o) + span], wt)).collect();
            set_bit(&mut codes, &data[first..first + span], &reads, p as u32);
        }
        CodeImage { lbp: self, width: w, height: h, stride: pw, codes }
    }

    /// The label image: `(width - 2m) x (height - 2m)` labels, m the margin, row-major.
    /// Empty when the plane is too small.
    pub fn label_image(&self, plane: &Plane) -> LabelImage {
        self.codes(plane).labels()
    }

    /// Samples on the circle.
    pub fn points(&self) -> usize {
        self.points
    }
}

vectorised! {
/// Sets bit `bit` of each code where the sample, the weighted sum of `reads` (each the
/// pixels at one offset, with its weight), is at least the centre (within [`TIE`]). The
/// sum runs in the order of the reads, from zero (`0 + w v` is `w v`), as [`Lbp::code`]'s.
/// The values are a plane's pixels (integers 0..=255).
fn set_bit(codes: &mut [u32], centre: &[f32], reads: &[(&[f32], f32)], bit: u32) {
    let n = codes.len();
    let one = 1u32 << bit;
    let centre = &centre[..n];
    match *reads {
        // A sample on the grid: `1 * a + TIE >= c` on integers a and c below 256 is `a >= c`.
        [(a, 1.0)] => {
            let a = &a[..n];
            for i in 0..n {
                codes[i] |= if a[i] >= centre[i] { one } else { 0 };
            }
        }
        [(a, wa)] => {
            let a = &a[..n];
            for i in 0..n {
                codes[i] |= if wa * a[i] + TIE >= centre[i] { one } else { 0 };
            }
        }
        [(a, wa), (b, wb)] => {
            let (a, b) = (&a[..n], &b[..n]);
            for i in 0..n {
                codes[i] |= if wa * a[i] + wb * b[i] + TIE >= centre[i] { one } else { 0 };
            }
        }
        [(a, wa), (b, wb), (c, wc), (d, wd)] => {
            let (a, b, c, d) = (&a[..n], &b[..n], &c[..n], &d[..n]);
            for i in 0..n {
                codes[i] |= if wa * a[i] + wb * b[i] + wc * c[i] + wd * d[i] + TIE >= centre[i] { one } else { 0 };
            }
        }
        _ => {
            for i in 0..n {
                let v = reads.iter().fold(0f32, |v, &(r, w)| v + w * r[i]);
                codes[i] |= if v + TIE >= centre[i] { one } else { 0 };
            }
        }
    }
}
}

/// The pattern codes of a plane's interior ([`Lbp::codes`]): the histograms of their labels,
/// counted straight from the codes.
#[derive(Debug, Clone)]
pub struct CodeImage<'a> {
    lbp: &'a Lbp,
    width: usize,
    height: usize,
    /// Row r of the interior starts at code r * stride (the plane's width).
    stride: usize,
    codes: Vec<u32>,
}

impl CodeImage<'_> {
    /// Columns.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Rows.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The codes of row `y`, columns `x0..x1`.
    fn row(&self, y: usize, x0: usize, x1: usize) -> &[u32] {
        &self.codes[y * self.stride + x0..y * self.stride + x1]
    }

    /// The labels of the codes.
    pub fn labels(&self) -> LabelImage {
        // Codes have `points` bits and the table 2^points entries: the mask keeps the index
        // in range without a check.
        let (table, mask) = (&self.lbp.labels, self.lbp.labels.len() - 1);
        let mut labels = vec![0u16; self.width * self.height];
        for (y, row) in labels.chunks_exact_mut(self.width.max(1)).enumerate().take(self.height) {
            for (l, &c) in row.iter_mut().zip(self.row(y, 0, self.width)) {
                *l = table[c as usize & mask];
            }
        }
        LabelImage { width: self.width, height: self.height, labels, bins: self.lbp.bins }
    }

    /// [`LabelImage::histogram`] of the labels, from the codes: with at most 8 points the
    /// codes themselves are counted and the counts summed per label after (no look-up per
    /// pixel), with more the labels are looked up and counted.
    pub fn histogram(&self, x: usize, y: usize, w: usize, h: usize) -> Vec<f32> {
        let (x1, y1) = ((x + w).min(self.width), (y + h).min(self.height));
        let (x0, y0) = (x.min(x1), y.min(y1));
        let rows = (y0..y1).map(|r| self.row(r, x0, x1));
        let (table, mask) = (&self.lbp.labels, self.lbp.labels.len() - 1);
        let n = (x1 - x0) * (y1 - y0);
        // Every label fits a byte (at most 243 for 16 points).
        let counts = if table.len() <= 256 {
            // Each uniform label has one code; the last bin has every other code, so its count
            // is what the uniform ones leave.
            let codes = byte_counts(rows, |c| c as u8);
            let mut counts = vec![0u32; self.lbp.bins];
            for &code in &self.lbp.uniform {
                counts[table[code as usize] as usize] = codes[code as usize];
            }
            counts[self.lbp.bins - 1] = n as u32 - counts.iter().sum::<u32>();
            counts
        } else {
            byte_counts(rows, |c| table[c as usize & mask] as u8)[..self.lbp.bins].to_vec()
        };
        normalised(&counts, n)
    }

    /// The histogram of the whole interior.
    pub fn whole(&self) -> Vec<f32> {
        self.histogram(0, 0, self.width, self.height)
    }

    /// [`LabelImage::grid`] of the labels, from the codes.
    pub fn grid(&self, k: usize) -> Vec<f32> {
        grid_blocks(self.width, self.height, k).flat_map(|(x, y, w, h)| self.histogram(x, y, w, h)).collect()
    }
}

/// How often each byte (`byte` of a value) occurs in `rows`. Four tables in turn, so that runs
/// of one byte do not wait on each other's increments; byte indices need no bounds checks.
#[inline]
fn byte_counts<'a, T: Copy + 'a>(rows: impl Iterator<Item = &'a [T]>, byte: impl Fn(T) -> u8) -> [u32; 256] {
    let mut t = [[0u32; 256]; 4];
    for row in rows {
        let mut quads = row.chunks_exact(4);
        for q in &mut quads {
            for (t, &v) in t.iter_mut().zip(q) {
                t[byte(v) as usize] += 1;
            }
        }
        for &v in quads.remainder() {
            t[0][byte(v) as usize] += 1;
        }
    }
    std::array::from_fn(|b| t[0][b] + t[1][b] + t[2][b] + t[3][b])
}

/// Counts of `n` values divided by `n` (all zeros when `n` is 0). A count below 2^24 is
/// exact in f32, so this is the sum of ones in f32 divided by n, as the histogram was defined.
fn normalised(counts: &[u32], n: usize) -> Vec<f32> {
    counts.iter().map(|&c| if n > 0 { c as f32 / n as f32 } else { c as f32 }).collect()
}

/// The blocks (x, y, w, h) of a `k` x `k` grid over `width` x `height`, row by row, each half
/// as wide again as the grid step (for k = 3 on 62 columns: blocks of 31 at 0, 15, 30).
fn grid_blocks(width: usize, height: usize, k: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let block = |n: usize| (2 * n).div_ceil(k + 1);
    let (bw, bh) = (block(width), block(height));
    let step = |n: usize, b: usize| if k > 1 { (n - b) / (k - 1) } else { 0 };
    let (sx, sy) = (step(width, bw), step(height, bh));
    (0..k).flat_map(move |j| (0..k).map(move |i| (i * sx, j * sy, bw, bh)))
}

/// Uniform LBP labels of a plane's interior.
#[derive(Debug, Clone)]
pub struct LabelImage {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Labels, row-major.
    pub labels: Vec<u16>,
    /// Number of distinct labels.
    pub bins: usize,
}

impl LabelImage {
    /// The L1-normalised histogram of the labels in the block of `w` x `h` at (x, y);
    /// all zeros for an empty block.
    pub fn histogram(&self, x: usize, y: usize, w: usize, h: usize) -> Vec<f32> {
        let (x1, y1) = ((x + w).min(self.width), (y + h).min(self.height));
        let (x0, y0) = (x.min(x1), y.min(y1));
        let mut counts = vec![0u32; self.bins];
        for r in y0..y1 {
            for &l in &self.labels[r * self.width + x0..r * self.width + x1] {
                counts[l as usize] += 1;
            }
        }
        normalised(&counts, (x1 - x0) * (y1 - y0))
    }

    /// The histogram of the whole label image.
    pub fn whole(&self) -> Vec<f32> {
        self.histogram(0, 0, self.width, self.height)
    }

    /// Histograms of a `k` x `k` grid of overlapping blocks, each half as wide again as the
    /// grid step (for k = 3 on 62 columns: blocks of 31 at 0, 15, 30), concatenated row by row.
    pub fn grid(&self, k: usize) -> Vec<f32> {
        grid_blocks(self.width, self.height, k).flat_map(|(x, y, w, h)| self.histogram(x, y, w, h)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_pattern_counts_and_transitions() {
        // P (P - 1) + 2 uniform patterns plus one bin for the rest.
        assert_eq!(Lbp::new(8, 1.0).bins(), 59);
        assert_eq!(Lbp::new(16, 2.0).bins(), 243);
        assert_eq!(transitions(0b0000_0000, 8), 0);
        assert_eq!(transitions(0b0000_1111, 8), 2);
        assert_eq!(transitions(0b1000_0001, 8), 2);
        assert_eq!(transitions(0b0101_0101, 8), 8);
        assert_eq!(transitions(0b0010_0100, 8), 4);
    }

    #[test]
    fn codes_computed_by_hand() {
        // A linear ramp v(x, y) = 10 + 10 x + 30 y: bilinear sampling is exact on it, so sample
        // p at angle a reads 50 + 10 cos a - 30 sin a around the centre (1, 1) = 50, and its bit
        // is set when cos a >= 3 sin a: at 0, 225, 270 and 315 degrees -> bits 0, 5, 6, 7.
        let ramp = Plane::new(3, 3, vec![10, 20, 30, 40, 50, 60, 70, 80, 90]).unwrap();
        let op = Lbp::new(8, 1.0);
        assert_eq!(op.code(&ramp, 1, 1), 1 + 32 + 64 + 128);
        // Flat: every neighbour equals the centre, all bits set, despite interpolation rounding.
        let flat = Plane::new(5, 5, vec![77; 25]).unwrap();
        assert_eq!(op.code(&flat, 2, 2), 255);
        assert_eq!(Lbp::new(16, 2.0).code(&flat, 2, 2), 0xffff);
        // One dark corner (top right = 0): the 45-degree sample at (1.707, 0.293) reads
        // 0.707 * (50 * 0.293 + 0 * 0.707) + 0.293 * 50 = 25 (rows weighted 1 - fy and fy),
        // below 50; every other sample reads 50 -> every bit but bit 1.
        let corner = Plane::new(3, 3, vec![50, 50, 0, 50, 50, 50, 50, 50, 50]).unwrap();
        let s = corner.sample(1.0 + 0.5f64.sqrt(), 1.0 - 0.5f64.sqrt());
        assert!((s - 25.0).abs() < 1e-9, "{s}");
        assert_eq!(op.code(&corner, 1, 1), 255 - 2);
    }

    #[test]
    fn the_row_kernel_agrees_with_one_pixel_at_a_time() {
        let mut rng = visage_core::SeededRng::new(7);
        let (w, h) = (23, 17);
        // Random pixels with runs of equal values (ties are where implementations differ).
        let data: Vec<u8> = (0..w * h).map(|_| (rng.below(6) * 40) as u8).collect();
        let plane = Plane::new(w, h, data).unwrap();
        visage_core::vector::at_each_level(|level| {
            for op in [Lbp::new(8, 1.0), Lbp::new(8, 2.0), Lbp::new(16, 2.0), Lbp::new(12, 1.5), Lbp::new(6, 1.3)] {
                let img = op.label_image(&plane);
                let m = op.margin();
                for y in 0..img.height {
                    for x in 0..img.width {
                        let want = op.label(op.code(&plane, x + m, y + m));
                        assert_eq!(img.labels[y * img.width + x], want, "({x}, {y}) P={} at {level:?}", op.points());
                    }
                }
            }
        });
    }

    #[test]
    fn histograms_from_the_codes_are_the_label_images() {
        let mut rng = visage_core::SeededRng::new(9);
        let data: Vec<u8> = (0..31 * 26).map(|_| (rng.below(4) * 60) as u8).collect();
        let plane = Plane::new(31, 26, data).unwrap();
        for op in [Lbp::new(8, 1.0), Lbp::new(8, 2.0), Lbp::new(16, 2.0), Lbp::new(12, 1.5)] {
            let (codes, labels) = (op.codes(&plane), op.label_image(&plane));
            assert_eq!((codes.width(), codes.height()), (labels.width, labels.height));
            assert_eq!(codes.whole(), labels.whole(), "P={}", op.points());
            assert_eq!(codes.grid(3), labels.grid(3));
            for (x, y, w, h) in [(0, 0, 5, 7), (3, 2, 100, 4), (7, 9, 0, 3), (40, 0, 3, 3)] {
                assert_eq!(codes.histogram(x, y, w, h), labels.histogram(x, y, w, h), "({x}, {y}, {w}, {h}) P={}", op.points());
            }
        }
        let op = Lbp::new(8, 1.0);
        let tiny = op.codes(&Plane::new(2, 2, vec![0; 4]).unwrap());
        assert_eq!((tiny.whole(), tiny.labels().labels.len()), (vec![0.0; 59], 0));
    }

    #[test]
    fn histograms_count_labels() {
        let flat = Plane::new(6, 6, vec![9; 36]).unwrap();
        let op = Lbp::new(8, 1.0);
        let labels = op.label_image(&flat);
        assert_eq!((labels.width, labels.height), (4, 4));
        let h = labels.whole();
        assert_eq!(h.len(), 59);
        // 255 is uniform (no transition): all 16 pixels in its bin.
        assert_eq!(h[op.label(255) as usize], 1.0);
        assert_eq!(h.iter().sum::<f32>(), 1.0);
        // A 3x3 grid of blocks gives 9 histograms, each normalised.
        let g = labels.grid(3);
        assert_eq!(g.len(), 9 * 59);
        assert!(g.chunks(59).all(|c| (c.iter().sum::<f32>() - 1.0).abs() < 1e-6));
        // 01010101 is not uniform: it lands in the last bin.
        assert_eq!(op.label(0b0101_0101), 58);
        // Too small for the operator: no labels, not a panic.
        assert_eq!(op.label_image(&Plane::new(2, 2, vec![0; 4]).unwrap()).labels.len(), 0);
    }
}
