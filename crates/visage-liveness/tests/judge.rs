//! The shipped model and the judgement on hostile input: answers or "cannot judge", never a panic.

use image::{Rgb, RgbImage};
use visage_core::{Point, Rect};
use visage_liveness::{FeatureSpec, LivenessModel, Unjudgeable, Verdict};

/// A textured colour photo (a deterministic pattern) of `w` x `h`.
fn photo(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = ((x * 7 + y * 13) % 61) as u8;
        Rgb([90 + v, 70 + v / 2, 60 + (x % 17) as u8])
    })
}

/// dlib 5-point landmarks of a frontal face whose eyes are `eye` pixels apart, centred at (cx, cy).
fn landmarks(cx: i64, cy: i64, eye: i64) -> Vec<Point> {
    let p = |x, y| Point { x, y };
    vec![p(cx + eye, cy), p(cx + eye / 3, cy), p(cx - eye, cy), p(cx - eye / 3, cy), p(cx, cy + eye)]
}

fn face_box(cx: i64, cy: i64, side: i64) -> Rect {
    Rect::new(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
}

#[test]
fn the_shipped_model_loads_and_matches_its_recipe() {
    let m = LivenessModel::shipped();
    assert_eq!(m.weights.len(), m.features.len());
    assert!(m.threshold > 0.0 && m.threshold < 1.0, "{}", m.threshold);
    assert!(m.provenance.command.starts_with("visage liveness train"), "{:?}", m.provenance.command);
    assert_eq!(m.provenance.data.len(), 4, "the four NUAA lists with their hashes");
    // Round trip.
    assert_eq!(LivenessModel::from_json(&m.to_json(), "copy").unwrap(), m);
}

#[test]
fn broken_model_files_are_refused_with_the_reason() {
    let m = LivenessModel::shipped();
    let mut short = m.clone();
    short.weights.pop();
    let err = LivenessModel::from_json(&short.to_json(), "short.json").unwrap_err().to_string();
    assert!(err.contains("short.json") && err.contains("weights"), "{err}");
    let text = m.to_json().replacen("visage-liveness/1", "visage-liveness/9", 1);
    assert!(LivenessModel::from_json(&text, "v9").unwrap_err().to_string().contains("format"));
    assert!(LivenessModel::from_json("{", "bad").is_err());
    assert!(LivenessModel::load(std::path::Path::new("/nonexistent/model.json"))
        .unwrap_err()
        .to_string()
        .contains("/nonexistent/model.json"));
}

#[test]
fn the_feature_vector_has_the_documented_length() {
    // Maatta et al.'s 833 grey values, 6 x 59 colour values, and with a grey+colour context crop
    // the same again.
    let face_only = FeatureSpec { context_padding: None, ..FeatureSpec::default() };
    assert_eq!(face_only.len(), 833 + 354);
    assert_eq!(FeatureSpec::default().len(), 2 * (833 + 354));
    let img = photo(320, 240);
    let lm = landmarks(160, 110, 30);
    let d = FeatureSpec::default().describe(&img, &lm).unwrap();
    assert_eq!(d.len(), FeatureSpec::default().len());
    assert!(d.iter().all(|v| v.is_finite() && *v >= 0.0));
}

#[test]
fn faces_that_cannot_be_judged_say_why() {
    let m = LivenessModel::shipped();
    let img = photo(320, 240);
    let judge = |img: &RgbImage, b: Rect, lm: &[Point]| m.judge(img, b, lm, None);
    // A judgeable face gets a score and live or spoof.
    let ok = judge(&img, face_box(160, 110, 90), &landmarks(160, 110, 30));
    assert!(matches!(ok.verdict, Verdict::Live | Verdict::Spoof) && ok.score.is_some(), "{ok:?}");
    // Too small.
    let small = judge(&img, face_box(160, 110, 20), &landmarks(160, 110, 6));
    assert_eq!((small.verdict, small.reason), (Verdict::CannotJudge, Some(Unjudgeable::TooSmall)));
    // Half outside the photo.
    let cut = judge(&img, face_box(5, 110, 90), &landmarks(5, 110, 30));
    assert_eq!(cut.reason, Some(Unjudgeable::CutByBorder));
    // Greyscale.
    let grey = RgbImage::from_fn(320, 240, |x, y| {
        let v = img.get_pixel(x, y).0[0];
        Rgb([v, v, v])
    });
    assert_eq!(judge(&grey, face_box(160, 110, 90), &landmarks(160, 110, 30)).reason, Some(Unjudgeable::NoColour));
    // Under- and over-exposed.
    let dark = RgbImage::from_fn(320, 240, |x, y| Rgb([(x % 7) as u8 + 4, (y % 5) as u8, 6]));
    assert_eq!(judge(&dark, face_box(160, 110, 90), &landmarks(160, 110, 30)).reason, Some(Unjudgeable::TooDark));
    let bright = RgbImage::from_fn(320, 240, |x, _| Rgb([255, 252, 245 + (x % 5) as u8]));
    assert_eq!(judge(&bright, face_box(160, 110, 90), &landmarks(160, 110, 30)).reason, Some(Unjudgeable::TooBright));
    // Degenerate landmarks (all on one point), landmarks far outside the photo, a 1x1 photo,
    // 68 points that are not a face: an answer each, never a panic.
    let same = vec![Point { x: 50, y: 50 }; 5];
    let _ = judge(&img, face_box(50, 50, 90), &same);
    let _ = judge(&img, face_box(5000, -5000, 90), &landmarks(5000, -5000, 30));
    let _ = judge(&RgbImage::new(1, 1), face_box(0, 0, 90), &landmarks(0, 0, 30));
    let _ = judge(&img, face_box(160, 110, 90), &vec![Point { x: 160, y: 110 }; 68]);
    let wrong = judge(&img, face_box(160, 110, 90), &landmarks(160, 110, 30)[..3]);
    assert_eq!(wrong.verdict, Verdict::CannotJudge);
}

#[test]
fn a_threshold_override_moves_the_decision() {
    let m = LivenessModel::shipped();
    let img = photo(320, 240);
    let (b, lm) = (face_box(160, 110, 90), landmarks(160, 110, 30));
    let s = m.judge(&img, b, &lm, None).score.unwrap();
    assert_eq!(m.judge(&img, b, &lm, Some(s - 1e-9)).verdict, Verdict::Live);
    assert_eq!(m.judge(&img, b, &lm, Some(s)).verdict, Verdict::Spoof, "live only strictly above the threshold");
}
