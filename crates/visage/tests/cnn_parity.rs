//! The pipeline on dlib's CNN detector against face_recognition with `model="cnn"`: boxes
//! (raw and trimmed), landmarks and embeddings, on reference outputs generated with
//! `bench/reference/cnn_fixtures.py` (see tests/fixtures/README.md).

use serde_json::Value;
use visage::{Config, DetectorChoice, Rect, Visage};
use visage_models::ModelFile;

#[test]
fn cnn_boxes_landmarks_and_embeddings_equal_face_recognitions() {
    let Some(_) = visage_testdata::oracle_dir("cnn_boxes_landmarks_and_embeddings_equal_face_recognitions") else { return };
    let Some(_) = visage_testdata::data_dir("cnn_boxes_landmarks_and_embeddings_equal_face_recognitions") else { return };
    let shared = visage_testdata::shared_dir();
    let store = visage_testdata::model_store();
    store.verify(ModelFile::MmodDetector).unwrap_or_else(|e| panic!("the CNN tests need {e} (visage models fetch)"));
    let v = Visage::from_config(&store, &Config { detector: DetectorChoice::Cnn, ..Config::default() }).unwrap();
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cnn_face_recognition.json")).unwrap(),
    )
    .unwrap();
    let (mut faces, mut worst_emb, mut worst_conf) = (0, 0f64, 0f64);
    for photo in fixture["photos"].as_array().unwrap() {
        let path = shared.join(photo["path"].as_str().unwrap());
        let img = v.load_image(&path).unwrap();
        let got = v.analyze(&img).unwrap();
        let want = photo["faces"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{}: face count", path.display());
        for (g, w) in got.iter().zip(want) {
            let ints = |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect::<Vec<_>>();
            let raw = ints(&w["raw_ltrb"]);
            assert_eq!(g.face.detection, Rect::new(raw[0], raw[1], raw[2], raw[3]), "{}: raw box", path.display());
            let css = ints(&w["css"]); // top, right, bottom, left
            assert_eq!(g.face.rect, Rect::new(css[3], css[0], css[1], css[2]), "{}: trimmed box", path.display());
            let lm: Vec<(i64, i64)> =
                w["landmarks"].as_array().unwrap().iter().map(|p| (p[0].as_i64().unwrap(), p[1].as_i64().unwrap())).collect();
            let glm: Vec<(i64, i64)> = g.face.landmarks.iter().map(|p| (p.x, p.y)).collect();
            assert_eq!(glm, lm, "{}: landmarks", path.display());
            assert_eq!(g.face.detector.name, "cnn");
            worst_conf = worst_conf.max((g.face.score - w["confidence"].as_f64().unwrap()).abs());
            let d = g
                .embedding
                .iter()
                .zip(w["encoding"].as_array().unwrap())
                .map(|(a, b)| (*a as f64 - b.as_f64().unwrap()).abs())
                .fold(0.0, f64::max);
            assert!(d <= 1e-5, "{}: embedding max abs diff {d:e}", path.display());
            worst_emb = worst_emb.max(d);
            faces += 1;
        }
    }
    assert!(worst_conf <= 1e-3, "confidence differs by {worst_conf:e}");
    assert_eq!(faces, 17, "the fixture holds 17 faces in 12 photos");
    eprintln!("{faces} CNN faces: boxes and landmarks identical, confidences within {worst_conf:e}, embeddings within {worst_emb:e}");
}
