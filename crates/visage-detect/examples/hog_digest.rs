//! Prints, per photo and upsample, a digest of every HOG intermediate (pyramid pixels, fHOG
//! planes, saliency maps, with the default and the scalar code paths) and the detections with
//! their exact score bits: two builds give identical output when their arithmetic is identical.
//! `cargo run --release -p visage-detect --example hog_digest -- PHOTO...`

use std::hash::Hasher;
use visage_core::image_io::load_rgb;
use visage_core::ImageLimits;
use visage_detect::hog::{fhog, resize, scan};
use visage_detect::HogDetector;

fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for b in bytes {
        h.write_u8(b);
    }
    h.finish()
}

fn main() {
    let det = HogDetector::new();
    for path in std::env::args().skip(1) {
        let Ok(img) = load_rgb(std::path::Path::new(&path), &ImageLimits::default()) else { continue };
        for up in [0u32, 1] {
            let mut work = img.clone();
            for _ in 0..up {
                work = resize::pyramid_up(&work);
            }
            let m = det.model();
            let levels =
                resize::pyramid_levels(work.width(), work.height(), m.min_pyramid_layer.0, m.min_pyramid_layer.1, m.max_pyramid_levels);
            let pyr = resize::pyramid(&work, levels);
            let mut h = std::collections::hash_map::DefaultHasher::new();
            for level in &pyr {
                h.write_u64(fnv(level.as_raw().iter().copied()));
                for simd in [true, false] {
                    if let Some(f) = fhog::extract_with(level, simd) {
                        h.write_u64(fnv(f.data.iter().flat_map(|v| v.to_bits().to_le_bytes())));
                        for d in &m.detectors {
                            let s = scan::saliency(&f, d, simd);
                            h.write_u64(fnv(s.iter().flat_map(|v| v.to_bits().to_le_bytes())));
                        }
                    }
                }
            }
            let dets: Vec<String> = det
                .run(&img, up, -0.5)
                .iter()
                .map(|d| {
                    format!(
                        "{},{},{},{}:{:016x}:{:?}",
                        d.rect.left,
                        d.rect.top,
                        d.rect.right,
                        d.rect.bottom,
                        d.score.to_bits(),
                        d.source.sub
                    )
                })
                .collect();
            println!("{path} up{up} {:016x} {}", h.finish(), dets.join(" "));
        }
    }
}
