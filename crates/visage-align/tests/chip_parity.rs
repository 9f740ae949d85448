//! Chips against dlib: every oracle chip must be pixel-identical, and the rectangle and angle
//! equal to dlib's to 1e-9.

use visage_align::{face_chip, face_chip_details};
use visage_core::image_io::load_rgb;
use visage_core::{ImageLimits, Point};
use visage_embed::DLIB_RESNET_CHIP;

#[test]
fn every_oracle_chip_is_pixel_identical() {
    let Some(oracle) = visage_testdata::oracle_dir("every_oracle_chip_is_pixel_identical") else { return };
    let mut chips = 0;
    for img in visage_testdata::oracle_images(&oracle) {
        let photo = load_rgb(&img.image_path, &ImageLimits::default()).unwrap();
        for f in &img.faces {
            let lm: Vec<Point> = f.landmarks5.iter().map(|p| Point { x: p[0], y: p[1] }).collect();
            let d = face_chip_details(&lm, DLIB_RESNET_CHIP).unwrap();
            let r = f.chip_details.rect;
            for (got, want) in [d.rect.left, d.rect.top, d.rect.right, d.rect.bottom].iter().zip(r) {
                assert!((got - want).abs() < 1e-9, "{}: rect {got} vs {want}", img.name);
            }
            assert!((d.angle - f.chip_details.angle).abs() < 1e-9, "{}: angle", img.name);
            let chip = face_chip(&photo, &lm, DLIB_RESNET_CHIP).unwrap().into_image();
            let want = image::open(img.chip_dir.join(&f.chip_png)).unwrap().to_rgb8();
            let diff = chip.as_raw().iter().zip(want.as_raw()).filter(|(a, b)| a != b).count();
            assert_eq!(diff, 0, "{}: {} differing values", f.chip_png, diff);
            chips += 1;
        }
    }
    assert_eq!(chips, 27);
}

/// (photo, enlargement, face index, dlib's landmarks, checksum of dlib's chip).
type PyramidCase = (&'static str, u32, usize, [(i64, i64); 5], u64);

/// Faces large enough to need dlib's image pyramid (depths 1 to 3): oracle photos enlarged by
/// pixel replication, chips cut from dlib's landmarks, compared by checksum with dlib's chips
/// (fixture made by bench/reference/pyramid_chip_fixtures.py).
#[test]
fn large_faces_go_through_the_same_pyramid_as_dlib() {
    let Some(oracle) = visage_testdata::oracle_dir("large_faces_go_through_the_same_pyramid_as_dlib") else { return };
    let cases: &[PyramidCase] = &include!("dlib_pyramid_chips.in");
    let mut depths = std::collections::BTreeSet::new();
    for (name, k, face, lm, sum) in cases {
        let photo = load_rgb(&oracle.join("images").join(name), &ImageLimits::default()).unwrap();
        let big = image::RgbImage::from_fn(photo.width() * k, photo.height() * k, |x, y| *photo.get_pixel(x / k, y / k));
        let lm: Vec<Point> = lm.iter().map(|&(x, y)| Point { x, y }).collect();
        let d = face_chip_details(&lm, DLIB_RESNET_CHIP).unwrap();
        let mut r = visage_align::pyramid::rect_down(d.rect);
        let mut depth = 0;
        while r.area() > (DLIB_RESNET_CHIP.size * DLIB_RESNET_CHIP.size) as f64 {
            r = visage_align::pyramid::rect_down(r);
            depth += 1;
        }
        depths.insert(depth);
        let chip = face_chip(&big, &lm, DLIB_RESNET_CHIP).unwrap().into_image();
        assert_eq!(fnv1a(chip.as_raw()), *sum, "{name} x{k} face {face} (pyramid depth {depth})");
    }
    assert!(depths.iter().any(|&d| d >= 2), "the cases must exercise the pyramid: depths {depths:?}");
    eprintln!("pyramid depths covered: {depths:?}");
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h = 0xcbf29ce484222325u64;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}
