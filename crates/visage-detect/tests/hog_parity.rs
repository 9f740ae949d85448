//! The HOG detector against dlib: the derived filters, every intermediate stage on the
//! Tom_Hanks goldens, and the final boxes/scores on every oracle photo.

use visage_core::image_io::load_rgb;
use visage_core::{ImageLimits, Rect, RgbImage};
use visage_detect::hog::{fhog, model::HogModel, resize, scan};
use visage_detect::HogDetector;

#[test]
fn separable_filters_equal_dlibs() {
    let Some(oracle) = visage_testdata::oracle_dir("separable_filters_equal_dlibs") else { return };
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(oracle.join("hog/frontal_separable_filters.json")).unwrap()).unwrap();
    let model = HogModel::frontal();
    let dets = json["detectors"].as_array().unwrap();
    let mut taps = 0;
    for (d, (jd, md)) in dets.iter().zip(&model.detectors).enumerate() {
        assert_eq!(jd["bias"].as_f64().unwrap(), md.bias);
        let planes = jd["planes"].as_array().unwrap();
        for (p, (jp, mp)) in planes.iter().zip(&md.planes).enumerate() {
            let comps = jp.as_array().unwrap();
            assert_eq!(comps.len(), mp.len(), "detector {d} plane {p}: component count");
            for (jc, mc) in comps.iter().zip(mp) {
                let col: Vec<f32> = jc["col"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
                let row: Vec<f32> = jc["row"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
                // SVD signs are arbitrary; flipping both halves cancels exactly.
                let sign = if (col[0] > 0.0) == (mc.col[0] > 0.0) { 1.0 } else { -1.0 };
                for i in 0..10 {
                    assert_eq!(col[i], sign * mc.col[i], "detector {d} plane {p} col tap {i}");
                    assert_eq!(row[i], sign * mc.row[i], "detector {d} plane {p} row tap {i}");
                    taps += 2;
                }
            }
        }
    }
    assert_eq!(taps, 6100);
}

fn as_image(a: &visage_testdata::NpyArray) -> RgbImage {
    assert_eq!(a.dtype, "|u1");
    RgbImage::from_raw(a.shape[1] as u32, a.shape[0] as u32, a.data.clone()).unwrap()
}

#[test]
fn every_stage_matches_the_tom_hanks_goldens() {
    let Some(oracle) = visage_testdata::oracle_dir("every_stage_matches_the_tom_hanks_goldens") else { return };
    let g = visage_testdata::read_npz(&oracle.join("hog/Tom_Hanks_54745_up1.npz"));
    let input = as_image(&g["input"]);
    let work = resize::pyramid_up(&input);
    assert!(work == as_image(&g["work"]), "pyramid_up differs");
    let model = HogModel::frontal();
    let levels = resize::pyramid_levels(work.width(), work.height(), 64, 64, 1000);
    let pyr = resize::pyramid(&work, levels);
    let mut checked = 0;
    for (k, level) in pyr.iter().enumerate() {
        let Some(want) = g.get(&format!("level{k}")) else { continue };
        assert!(*level == as_image(want), "pyramid level {k} differs");
        let feats = fhog::extract(level).expect("features");
        let want_f = g[&format!("fhog{k}")].f32s();
        assert_eq!(g[&format!("fhog{k}")].shape, vec![31, feats.rows, feats.cols]);
        let diff = feats.data.iter().zip(&want_f).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(diff, 0, "level {k}: {diff} fHOG values differ");
        for (d, det) in model.detectors.iter().enumerate() {
            let sal = scan::saliency(&feats, det, true);
            let want_s = g[&format!("sal{d}_{k}")].f32s();
            let (rows, cols) = (feats.rows, feats.cols);
            for r in 5..=rows - 5 {
                for c in 5..=cols - 5 {
                    assert_eq!(sal[r * cols + c].to_bits(), want_s[r * cols + c].to_bits(), "saliency d{d} level {k} ({r},{c})");
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 5, "goldens cover {checked} levels");
    let dets = HogDetector::new().run(&input, 1, 0.0);
    let want = g["dets"].f64s();
    assert_eq!(dets.len() * 7, want.len());
    for (d, w) in dets.iter().zip(want.chunks(7)) {
        assert_eq!(d.rect, Rect::new(w[0] as i64, w[1] as i64, w[2] as i64, w[3] as i64));
        assert_eq!(d.score, w[4]);
        assert_eq!(d.source.sub, Some(w[5] as usize));
    }
}

#[test]
fn boxes_and_scores_equal_dlib_on_every_oracle_photo() {
    let Some(oracle) = visage_testdata::oracle_dir("boxes_and_scores_equal_dlib_on_every_oracle_photo") else { return };
    let det = HogDetector::new();
    let mut faces = 0;
    let mut worst = 0f64;
    for img in visage_testdata::oracle_images(&oracle) {
        let photo = load_rgb(&img.image_path, &ImageLimits::default()).unwrap();
        let got = det.run(&photo, 1, 0.0);
        assert_eq!(got.len(), img.faces.len(), "{}: face count", img.name);
        for (g, f) in got.iter().zip(&img.faces) {
            let b = f.box_ltrb_raw;
            assert_eq!(g.rect, Rect::new(b[0], b[1], b[2], b[3]), "{}: raw box", img.name);
            assert!((g.score - f.hog_score).abs() <= 1e-6, "{}: score {} vs {}", img.name, g.score, f.hog_score);
            assert_eq!(g.source.sub, Some(f.hog_weight_index), "{}: filter index", img.name);
            worst = worst.max((g.score - f.hog_score).abs());
            faces += 1;
        }
    }
    assert_eq!(faces, 27);
    eprintln!("27/27 boxes identical; worst score difference {worst:e}");
}
