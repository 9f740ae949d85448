//! The 5-point shape predictor against dlib on every oracle face (run on face_recognition's
//! trimmed box, as face_recognition does).

use visage_core::image_io::load_rgb;
use visage_core::{ImageLimits, Point, Rect};
use visage_detect::ShapePredictor;

#[test]
fn landmarks_equal_dlib_on_every_oracle_face() {
    let Some(oracle) = visage_testdata::oracle_dir("landmarks_equal_dlib_on_every_oracle_face") else { return };
    let sp = ShapePredictor::from_store(&visage_testdata::model_store()).unwrap();
    assert_eq!(sp.parts(), 5);
    let mut faces = 0;
    for img in visage_testdata::oracle_images(&oracle) {
        let photo = load_rgb(&img.image_path, &ImageLimits::default()).unwrap();
        for f in &img.faces {
            let b = f.box_ltrb;
            let got = sp.predict(&photo, Rect::new(b[0], b[1], b[2], b[3]));
            let want: Vec<Point> = f.landmarks5.iter().map(|p| Point { x: p[0], y: p[1] }).collect();
            assert_eq!(got, want, "{}", img.name);
            faces += 1;
        }
    }
    assert_eq!(faces, 27);
}

#[test]
fn foreign_and_truncated_predictor_files_are_errors() {
    let store = visage_testdata::model_store();
    let bytes = store.read_verified(visage_models::ModelFile::ShapePredictor5).unwrap();
    for cut in [0, 3, 100, bytes.len() / 2, bytes.len() - 1] {
        assert!(ShapePredictor::parse(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let resnet = store.read_verified(visage_models::ModelFile::ResnetV1).unwrap();
    assert!(ShapePredictor::parse(&resnet).is_err());
}
