//! `get_face_chip_details` and `extract_image_chip` for 5- and 68-point shapes.

use crate::bilinear::{sample_bilinear, Affine};
use crate::pyramid::{down2, rect_down};
use crate::view::View;
use visage_core::similarity::find_similarity_transform;
use visage_core::{AlignedChip, ChipGeometry, DPoint, DRect, Point, Rect, RgbImage};

/// Why a chip could not be cut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlignError {
    /// Chips are defined on dlib's 5- and 68-point schemes only.
    #[error("face chips are defined for 5 or 68 landmarks, not {0}")]
    Landmarks(usize),
    /// A chip must have at least 2 pixels on a side.
    #[error("a chip of {0} pixels on a side cannot be cut")]
    Size(u32),
}

/// The 5-point template in chip-normalised coordinates (dlib's `get_face_chip_details`).
const TEMPLATE: [(f64, f64); 5] = [
    (0.8595674595992, 0.2134981538014),
    (0.6460604764104, 0.2289674387677),
    (0.1205750620789, 0.2137274526848),
    (0.3340850613712, 0.2290642403242),
    (0.4901123135679, 0.6277975316475),
];

/// Mean positions of the 68-point model's points 17-67 in chip-normalised coordinates
/// (dlib's `get_face_chip_details`); the eyebrows (17-26) and the lower lip (55-59, 65-67)
/// are left out of the fit.
const MEAN_68_X: [f64; 51] = [
    0.000213256,
    0.0752622,
    0.18113,
    0.29077,
    0.393397,
    0.586856,
    0.689483,
    0.799124,
    0.904991,
    0.98004,
    0.490127,
    0.490127,
    0.490127,
    0.490127,
    0.36688,
    0.426036,
    0.490127,
    0.554217,
    0.613373,
    0.121737,
    0.187122,
    0.265825,
    0.334606,
    0.260918,
    0.182743,
    0.645647,
    0.714428,
    0.793132,
    0.858516,
    0.79751,
    0.719335,
    0.254149,
    0.340985,
    0.428858,
    0.490127,
    0.551395,
    0.639268,
    0.726104,
    0.642159,
    0.556721,
    0.490127,
    0.423532,
    0.338094,
    0.290379,
    0.428096,
    0.490127,
    0.552157,
    0.689874,
    0.553364,
    0.490127,
    0.42689,
];
const MEAN_68_Y: [f64; 51] = [
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805,
    0.515625, 0.587326, 0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733, 0.245099, 0.244077, 0.231733,
    0.179852, 0.178758, 0.216423, 0.244077, 0.245099, 0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746, 0.784792, 0.824182, 0.831803, 0.824182,
];

/// Where a chip lies in the photo: a rectangle rotated by `angle` about its centre, sampled
/// to `size` x `size` pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChipDetails {
    /// The unrotated rectangle (inclusive corners).
    pub rect: DRect,
    /// Rotation in radians.
    pub angle: f64,
    /// Output side in pixels.
    pub size: usize,
}

/// The chip for the landmarks of dlib's 5-point or 68-point model, as dlib's
/// `get_face_chip_details(shape, size, padding)`.
pub fn face_chip_details(landmarks: &[Point], geometry: ChipGeometry) -> Result<ChipDetails, AlignError> {
    if geometry.size < 2 {
        return Err(AlignError::Size(geometry.size));
    }
    let (size, padding) = (geometry.size as usize, geometry.padding);
    let s = size as f64;
    let norm = |x: f64, y: f64| DPoint::new((padding + x) / (2.0 * padding + 1.0) * s, (padding + y) / (2.0 * padding + 1.0) * s);
    let (from, to): (Vec<DPoint>, Vec<DPoint>) = match landmarks.len() {
        5 => (TEMPLATE.iter().map(|&(x, y)| norm(x, y)).collect(), landmarks.iter().map(|&p| p.into()).collect()),
        68 => (17..68)
            .filter(|i| !((55..=59).contains(i) || (65..=67).contains(i) || (17..=26).contains(i)))
            .map(|i| (norm(MEAN_68_X[i - 17], MEAN_68_Y[i - 17]), DPoint::from(landmarks[i])))
            .unzip(),
        n => return Err(AlignError::Landmarks(n)),
    };
    let t = find_similarity_transform(&from, &to);
    let angle = t.angle();
    let scale = t.scale();
    let c = t.apply(DPoint::new(s / 2.0, s / 2.0));
    let (w, h) = (s * scale - 1.0, s * scale - 1.0);
    Ok(ChipDetails { rect: DRect::new(c.x - w / 2.0, c.y - h / 2.0, c.x + w / 2.0, c.y + h / 2.0), angle, size })
}

/// The aligned chip of a face, as dlib's `get_face_chip(img, shape, size, padding)`.
pub fn face_chip(img: &RgbImage, landmarks: &[Point], geometry: ChipGeometry) -> Result<AlignedChip, AlignError> {
    let chip = extract_chip(img, &face_chip_details(landmarks, geometry)?);
    Ok(AlignedChip::new(chip, geometry).expect("extract_chip makes chips of the asked size"))
}

fn rotate(center: DPoint, p: DPoint, angle: f64) -> DPoint {
    let (s, c) = angle.sin_cos();
    let (x, y) = (p.x - center.x, p.y - center.y);
    DPoint::new(c * x - s * y + center.x, s * x + c * y + center.y)
}

/// dlib's `extract_image_chip` with bilinear interpolation and its image pyramid.
pub fn extract_chip(img: &RgbImage, d: &ChipDetails) -> RgbImage {
    let size = d.size;
    let area = (size * size) as f64;
    let height = d.rect.bottom - d.rect.top + 1.0;
    let width = d.rect.right - d.rect.left + 1.0;
    if d.angle == 0.0 && height == size as f64 && width == size as f64 {
        return plain_copy(img, d);
    }
    // Pyramid depth and the crop margin it needs.
    let mut depth = 0;
    let mut grow = 2.0;
    let mut r = rect_down(d.rect);
    while r.area() > area {
        r = rect_down(r);
        depth += 1;
        grow = grow * 2.0 + 2.0;
    }
    let center = d.rect.center();
    let corners = [
        DPoint::new(d.rect.left, d.rect.top),
        DPoint::new(d.rect.right, d.rect.top),
        DPoint::new(d.rect.left, d.rect.bottom),
        DPoint::new(d.rect.right, d.rect.bottom),
    ]
    .map(|p| rotate(center, p, d.angle));
    let (mut l, mut t, mut rr, mut b) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for p in corners {
        (l, t, rr, b) = (l.min(p.x), t.min(p.y), rr.max(p.x), b.max(p.y));
    }
    let (iw, ih) = (img.width() as f64, img.height() as f64);
    let grown = DRect::new((l - grow).max(0.0), (t - grow).max(0.0), (rr + grow).min(iw - 1.0), (b + grow).min(ih - 1.0));
    let bbox = Rect::new(grown.left.round() as i64, grown.top.round() as i64, grown.right.round() as i64, grown.bottom.round() as i64);
    // dlib crops the box first; the box is read in place here.
    let crop = View::rect(img, bbox);

    let mut levels: Vec<RgbImage> = Vec::with_capacity(depth);
    for i in 0..depth {
        let next = down2(if i == 0 { crop } else { View::of(&levels[i - 1]) });
        levels.push(next);
    }
    let mut level: isize = -1;
    let mut r = DRect::new(
        d.rect.left - bbox.left as f64,
        d.rect.top - bbox.top as f64,
        d.rect.right - bbox.left as f64,
        d.rect.bottom - bbox.top as f64,
    );
    while rect_down(r).area() > area {
        level += 1;
        r = rect_down(r);
    }
    let src = if level < 0 { crop } else { View::of(&levels[level as usize]) };
    // The affine map from chip pixels to the source: chip corners (0,0), (size-1,0), (0,size-1)
    // go to the rotated tl, tr and bl corners of the rectangle.
    let c = r.center();
    let tl = rotate(c, DPoint::new(r.left, r.top), d.angle);
    let tr = rotate(c, DPoint::new(r.right, r.top), d.angle);
    let bl = rotate(c, DPoint::new(r.left, r.bottom), d.angle);
    let n = (size - 1) as f64;
    let (ax, ay) = ((tr.x - tl.x) / n, (tr.y - tl.y) / n);
    let (bx, by) = ((bl.x - tl.x) / n, (bl.y - tl.y) / n);
    sample_bilinear(src, size, Affine { ax, bx, x0: tl.x, ay, by, y0: tl.y })
}

/// dlib's fast path for an unrotated chip of exactly the rectangle's size: a copy, with
/// black outside the photo.
fn plain_copy(img: &RgbImage, d: &ChipDetails) -> RgbImage {
    let (l, t) = (d.rect.left.round() as i64, d.rect.top.round() as i64);
    let (w, h) = (img.width() as i64, img.height() as i64);
    RgbImage::from_fn(d.size as u32, d.size as u32, |x, y| {
        let (sx, sy) = (l + x as i64, t + y as i64);
        if sx >= 0 && sy >= 0 && sx < w && sy < h {
            *img.get_pixel(sx as u32, sy as u32)
        } else {
            image::Rgb([0, 0, 0])
        }
    })
}
