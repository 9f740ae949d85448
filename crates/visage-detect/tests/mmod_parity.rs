//! dlib's CNN face detector against dlib: the boxes identical and the confidences within 1e-3
//! on every oracle photo dlib's CNN was run on (upsample 1, as face_recognition's
//! `face_locations(img, 1, model="cnn")`).

use visage_core::image_io::load_rgb;
use visage_core::{ImageLimits, Rect};
use visage_detect::MmodDetector;
use visage_engine::{EngineOptions, Isa};

#[test]
fn cnn_boxes_and_confidences_equal_dlib() {
    let Some(oracle) = visage_testdata::oracle_dir("cnn_boxes_and_confidences_equal_dlib") else { return };
    let store = visage_testdata::model_store();
    let mut photos = 0;
    // Every photo on the best kernels; the smallest (Tom_Hanks, 250x250) on the others too
    // (the portable kernels take a minute for the large ones).
    for (n, isa) in Isa::supported().into_iter().enumerate() {
        let det = MmodDetector::from_store(&store, EngineOptions { isa, winograd: true }).unwrap().with_upsample(1);
        let mut worst = 0f64;
        for img in visage_testdata::oracle_images(&oracle) {
            let Some(want) = &img.cnn else { continue };
            if n > 0 && img.name != "Tom_Hanks_54745" {
                continue;
            }
            let photo = load_rgb(&img.image_path, &ImageLimits::default()).unwrap();
            let got = det.run(&photo, 1, 0.0).unwrap();
            let got_boxes: Vec<Rect> = got.iter().map(|d| d.rect).collect();
            let want_boxes: Vec<Rect> =
                want.iter().map(|w| Rect::new(w.box_ltrb[0], w.box_ltrb[1], w.box_ltrb[2], w.box_ltrb[3])).collect();
            assert_eq!(got_boxes, want_boxes, "{isa:?} {}: boxes", img.name);
            for (g, w) in got.iter().zip(want) {
                let d = (g.score - w.confidence).abs();
                assert!(d <= 1e-3, "{isa:?} {}: confidence {} vs dlib {}", img.name, g.score, w.confidence);
                worst = worst.max(d);
            }
            photos += 1;
        }
        eprintln!("{isa:?}: CNN boxes identical, worst confidence difference {worst:e}");
    }
    assert!(photos >= 3, "the oracle has CNN results for 3 photos, got {photos}");
}
