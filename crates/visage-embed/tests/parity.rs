//! The embedder against dlib: every oracle chip's descriptor must equal dlib's
//! `compute_face_descriptor(chip)` (`encoding_from_chip`) to 1e-4, on every kernel this CPU runs,
//! both through the direct convolution (single chips) and Winograd (the batch of 27).

use visage_embed::{parse_resnet, Embedder, EngineOptions, Isa};
use visage_models::ModelFile;

#[test]
fn all_oracle_chips_match_dlib() {
    let Some(oracle) = visage_testdata::oracle_dir("all_oracle_chips_match_dlib") else { return };
    let store = visage_testdata::model_store();
    let weights = parse_resnet(&store.read_verified(ModelFile::ResnetV1).unwrap()).unwrap();
    let mut chips = Vec::new();
    let mut want = Vec::new();
    for img in visage_testdata::oracle_images(&oracle) {
        for f in &img.faces {
            let chip = image::open(img.chip_dir.join(&f.chip_png)).unwrap().to_rgb8();
            chips.push((format!("{}/{}", img.name, f.chip_png), chip.into_raw()));
            want.push(f.encoding_from_chip.clone());
        }
    }
    assert_eq!(chips.len(), 27, "the oracle holds 27 faces");
    let refs: Vec<&[u8]> = chips.iter().map(|(_, c)| c.as_slice()).collect();

    for isa in Isa::supported() {
        let embedder = Embedder::from_weights(&weights, EngineOptions { isa, winograd: true }).unwrap();
        let batched = embedder.embed_batch(&refs).unwrap();
        let mut worst = 0f64;
        for (i, (name, chip)) in chips.iter().enumerate() {
            let single = embedder.embed(chip).unwrap();
            // Batches of this size run the 3x3 layers through Winograd, single chips through
            // the direct convolution: the same function, rounded differently.
            let gap = single.iter().zip(&batched[i]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(gap <= 1e-5, "{isa:?} {name}: batch and single differ by {gap:e}");
            assert_eq!(single.len(), embedder.descriptor().dim);
            for (path, e) in [("direct", &single), ("winograd", &batched[i])] {
                let d = e.iter().zip(&want[i]).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
                assert!(d <= 1e-4, "{isa:?} {name} ({path}): max abs diff {d:e} > 1e-4");
                worst = worst.max(d);
            }
        }
        eprintln!("{isa:?}: 27 chips, single and batched, worst max abs diff against dlib {worst:e}");
    }
}

#[test]
fn the_reference_forward_pass_also_matches_dlib() {
    // The plain forward pass is the independent check of the fast one; it must agree with dlib too.
    let Some(oracle) = visage_testdata::oracle_dir("the_reference_forward_pass_also_matches_dlib") else { return };
    let store = visage_testdata::model_store();
    let weights = parse_resnet(&store.read_verified(ModelFile::ResnetV1).unwrap()).unwrap();
    let img = &visage_testdata::oracle_images(&oracle)[0];
    let f = &img.faces[0];
    let chip = image::open(img.chip_dir.join(&f.chip_png)).unwrap().to_rgb8();
    let got = visage_embed::reference::forward(&weights, chip.as_raw());
    let d = got.iter().zip(&f.encoding_from_chip).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
    assert!(d <= 1e-5, "max abs diff {d:e}");
}

#[test]
fn wrong_chip_sizes_and_foreign_files_are_errors() {
    let store = visage_testdata::model_store();
    let embedder = Embedder::from_store(&store).unwrap();
    let err = embedder.embed(&[0u8; 100]).unwrap_err();
    assert!(err.to_string().contains("150x150"), "{err}");
    let sp = store.read_verified(ModelFile::ShapePredictor5).unwrap();
    assert!(Embedder::from_bytes(&sp).is_err(), "a shape predictor is not a ResNet");
    let resnet = store.read_verified(ModelFile::ResnetV1).unwrap();
    for cut in [0, 10, 200, 5_000, resnet.len() / 2, resnet.len() - 1] {
        let e = Embedder::from_bytes(&resnet[..cut]).err().expect("truncated file must fail");
        assert!(e.to_string().contains("byte"), "{e}");
    }
}
