//! The whole pipeline against face_recognition: for every oracle photo, the faces, their
//! trimmed boxes and landmarks are dlib's, and each embedding equals `encoding` to 1e-4.

use visage::{Rect, Visage};

#[test]
fn whole_photo_embeddings_equal_face_recognitions() {
    let Some(oracle) = visage_testdata::oracle_dir("whole_photo_embeddings_equal_face_recognitions") else { return };
    let v = Visage::load(&visage_testdata::model_store()).unwrap();
    let mut faces = 0;
    let mut worst = 0f64;
    for img in visage_testdata::oracle_images(&oracle) {
        let photo = v.load_image(&img.image_path).unwrap();
        let got = v.analyze(&photo).unwrap();
        assert_eq!(got.len(), img.faces.len(), "{}", img.name);
        for (g, f) in got.iter().zip(&img.faces) {
            let b = f.box_ltrb;
            assert_eq!(g.face.rect, Rect::new(b[0], b[1], b[2], b[3]), "{}: trimmed box", img.name);
            let d = g.embedding.iter().zip(&f.encoding).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
            assert!(d <= 1e-4, "{}: max abs diff {d:e}", img.name);
            worst = worst.max(d);
            faces += 1;
        }
    }
    assert_eq!(faces, 27);
    eprintln!("27/27 whole-photo embeddings within {worst:e} of face_recognition");
}
