//! The small CNN trained on burn and exported runs on visage's engine with the same outputs:
//! random weights (after a few training steps, so biases are not zero), random chips, burn's
//! forward against the engine's within 1e-4; and the model file round-trips exactly.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use visage_core::{ChipGeometry, InputNormalization, LandmarkScheme, ModelDescriptor, SeededRng, Thresholds};
use visage_embed::{CnnSpec, Embedder, EngineOptions, TrainedModel};
use visage_train::burn;
use visage_train::cnn::{chips_tensor, SmallCnn};
use visage_train::tensors::values;
use visage_train::{train_device, Metric, Mining, Reduction, TripletLoss};

const SIZE: usize = 40;

fn descriptor(dim: usize) -> ModelDescriptor {
    ModelDescriptor {
        id: "test_small_cnn".into(),
        dim,
        chip: ChipGeometry { size: SIZE as u32, padding: 0.25 },
        landmarks: LandmarkScheme::Dlib5,
        input: InputNormalization { mean: [120.0, 110.0, 100.0], scale: 1.0 / 64.0 },
        thresholds: Thresholds { l2: 0.8, cosine: 0.3, chi2: 1.0 },
    }
}

#[test]
fn burn_s_forward_and_the_engine_s_agree_within_1e_4() {
    let spec = CnnSpec { channels: vec![8, 16, 12], dim: 6 };
    let desc = descriptor(spec.dim);
    let dev = train_device();
    dev.seed(5);
    let mut net = SmallCnn::new(&spec, &dev);
    let mut rng = SeededRng::new(9);
    let chips: Vec<Vec<u8>> = (0..6).map(|_| (0..SIZE * SIZE * 3).map(|_| rng.below(256) as u8).collect()).collect();
    let refs: Vec<&[u8]> = chips.iter().map(|c| c.as_slice()).collect();
    // A few Adam steps on a triplet loss, so every parameter (biases included) moves off its
    // initial value.
    let loss = TripletLoss { margin: 0.2, metric: Metric::SquaredL2, mining: Mining::BatchAll, reduction: Reduction::Mean };
    let mut optim = AdamConfig::new().init();
    for _ in 0..3 {
        let out = loss.forward(net.forward(chips_tensor(&refs, SIZE, &desc, &dev)), &[0, 0, 1, 1, 2, 2]);
        let grads = GradientsParams::from_grads(out.loss.backward(), &net);
        net = optim.step(1e-2, net, grads);
    }
    let net = net.valid();
    let burn_out = values(net.forward(chips_tensor(&refs, SIZE, &desc, &net.embed.weight.val().device())));
    let model = net.export(&spec, &desc, "test");
    assert!(model.tensors["bn0.running_mean"].1.iter().any(|&m| m != 0.0), "running statistics updated");
    assert!(model.tensors["bn0.beta"].1.iter().any(|&b| b != 0.0), "a normalisation shift to fold");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    model.save(&path).unwrap();
    let loaded = TrainedModel::load(&path).unwrap();
    assert_eq!((loaded.descriptor.clone(), loaded.spec.clone()), (desc.clone(), visage_embed::Architecture::SmallCnn(spec.clone())));
    assert_eq!(loaded.tensors, model.tensors, "exact round trip");
    // The network the engine runs uses the folded affines only; the raw state is extra.
    assert!(loaded.spec.parameter_shapes().iter().all(|(n, _)| !n.contains("running")));
    for isa_options in [EngineOptions::default()] {
        let engine = Embedder::from_trained(&loaded, isa_options).unwrap();
        let engine_out = engine.embed_batch(&refs).unwrap();
        let mut worst = 0f32;
        for (i, e) in engine_out.iter().enumerate() {
            assert_eq!(e.len(), spec.dim);
            for (k, &x) in e.iter().enumerate() {
                worst = worst.max((x - burn_out[i * spec.dim + k]).abs());
            }
        }
        eprintln!("burn vs engine: max |difference| {worst:e}");
        assert!(worst < 1e-4, "max difference {worst}");
    }
    // Back into burn from the file: the same function.
    let again = values(SmallCnn::from_model(&loaded, &dev).valid().forward(chips_tensor(&refs, SIZE, &desc, &dev)));
    assert_eq!(again, burn_out);
}

#[test]
fn damaged_model_files_are_refused_with_the_reason() {
    let spec = CnnSpec { channels: vec![4], dim: 3 };
    let dev = train_device();
    let model = SmallCnn::new(&spec, &dev).export(&spec, &descriptor(3), "");
    let bytes = model.to_bytes();
    let e = TrainedModel::from_bytes(&bytes[..bytes.len() / 2], "m").unwrap_err().to_string();
    assert!(e.starts_with("m: not a visage trained model"), "{e}");
    let mut other = model.clone();
    other.spec = visage_embed::Architecture::SmallCnn(CnnSpec { dim: 4, ..spec.clone() });
    let e = TrainedModel::from_bytes(&other.to_bytes(), "m").unwrap_err().to_string();
    assert!(e.contains("does not fit"), "{e}");
    let mut missing = model.clone();
    missing.tensors.remove("embed.bias");
    missing.tensors.remove("bn0.train_gamma");
    let e = TrainedModel::from_bytes(&missing.to_bytes(), "m").unwrap_err().to_string();
    assert!(e.contains("no tensor \"embed.bias\""), "{e}");
    assert!(TrainedModel::from_bytes(b"not a file", "m").is_err());
}

#[test]
fn a_classifier_s_raw_scores_and_metadata_survive_export_to_the_engine() {
    // The liveness path: one output, not normalised (`scores`, `scorer_from_trained`), and the
    // extra metadata a user stores with the weights.
    let spec = CnnSpec { channels: vec![6, 10], dim: 1 };
    let desc = descriptor(1);
    let dev = train_device();
    dev.seed(11);
    let mut net = SmallCnn::new(&spec, &dev);
    let mut rng = SeededRng::new(4);
    let chips: Vec<Vec<u8>> = (0..8).map(|_| (0..SIZE * SIZE * 3).map(|_| rng.below(256) as u8).collect()).collect();
    let refs: Vec<&[u8]> = chips.iter().map(|c| c.as_slice()).collect();
    let mut optim = AdamConfig::new().init();
    for _ in 0..3 {
        let logits = net.scores(chips_tensor(&refs, SIZE, &desc, &dev)).reshape([8]);
        let targets = visage_train::tensors::vector(&[1., 0., 1., 0., 1., 0., 1., 0.], &dev);
        let loss = visage_train::losses::binary_cross_entropy_with_logits(logits, targets, Reduction::Mean);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-2, net, grads);
    }
    let net = net.valid();
    let burn_out = values(net.scores(chips_tensor(&refs, SIZE, &desc, &dev)));
    let mut model = net.export(&spec, &desc, "test");
    model.extra.insert("visage-liveness".into(), "{\"threshold\": 0.5}".into());
    model.extra.insert("a-note".into(), "first".into());
    model.extra.insert("z-note".into(), "last".into());
    // The same model is the same bytes, whatever order the metadata map iterates in (each
    // serialisation builds a fresh, differently seeded map).
    let bytes = model.to_bytes();
    assert!((0..8).all(|_| model.to_bytes() == bytes), "serialisation is not deterministic");
    let loaded = TrainedModel::from_bytes(&bytes, "m").unwrap();
    assert_eq!(loaded.extra, model.extra);
    let engine = Embedder::scorer_from_trained(&loaded, EngineOptions::default()).unwrap();
    let out = engine.embed_batch(&refs).unwrap();
    let worst = out.iter().zip(&burn_out).map(|(e, b)| (e[0] - b).abs()).fold(0f32, f32::max);
    eprintln!("classifier burn vs engine: max |difference| {worst:e}");
    assert!(worst < 1e-4, "max difference {worst}");
    // Not normalised: a one-output embedding would be +-1.
    assert!(out.iter().any(|e| e[0].abs() < 0.999 || e[0].abs() > 1.001));
}
