//! dlib's ResNet-29 as a trainable burn module ([`LayerNet`]): initialised from dlib's weights
//! its forward equals dlib's descriptors on the oracle chips within 1e-4; split into a frozen
//! prefix on the engine and a trained suffix on burn it computes the same function; after
//! training steps its model file runs on the engine with burn's outputs within 1e-4.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use visage_embed::architecture::{resnet29_layers, resnet29_parameter_shapes};
use visage_embed::{dlib_resnet_descriptor, parse_resnet, Architecture, Embedder, EngineOptions, ResnetWeights, TrainedModel};
use visage_models::ModelFile;
use visage_train::burn;
use visage_train::cnn::chips_tensor;
use visage_train::layer_net::{features_tensor, parameters_of, FrozenPrefix};
use visage_train::tensors::values;
use visage_train::{train_device, LayerNet, Metric, Mining, Reduction, TripletLoss};

/// Each oracle chip's RGB bytes, and dlib's descriptor of it.
type Chips = (Vec<Vec<u8>>, Vec<Vec<f64>>);

fn oracle_chips(test: &str) -> Option<Chips> {
    let oracle = visage_testdata::oracle_dir(test)?;
    let (mut chips, mut want) = (Vec::new(), Vec::new());
    for img in visage_testdata::oracle_images(&oracle) {
        for f in &img.faces {
            chips.push(image::open(img.chip_dir.join(&f.chip_png)).unwrap().to_rgb8().into_raw());
            want.push(f.encoding_from_chip.clone());
        }
    }
    Some((chips, want))
}

fn dlib() -> ResnetWeights {
    parse_resnet(&visage_testdata::model_store().read_verified(ModelFile::ResnetV1).unwrap()).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn the_trainable_resnet_initialised_from_dlib_gives_dlib_s_descriptors() {
    let Some((chips, want)) = oracle_chips("the_trainable_resnet_initialised_from_dlib_gives_dlib_s_descriptors") else { return };
    let w = dlib();
    // The fixed structure a fine-tuned file is rebuilt from is the one dlib's file describes.
    assert_eq!(resnet29_layers(), w.layers());
    let weights = w.weights();
    for (name, shape) in resnet29_parameter_shapes() {
        assert_eq!(weights.get(&name).map(|t| t.shape.clone()), Some(shape), "{name}");
    }
    assert_eq!(parameters_of(&w.layers(), &weights), resnet29_parameter_shapes());
    let dev = train_device();
    let net = LayerNet::new(resnet29_layers(), &resnet29_parameter_shapes(), &weights, &dev).unwrap().valid();
    let d = dlib_resnet_descriptor(w.input_mean);
    let refs: Vec<&[u8]> = chips.iter().map(|c| c.as_slice()).collect();
    let out = values(net.forward(chips_tensor(&refs, 150, &d, &dev)));
    let mut worst = 0f64;
    for (i, e) in out.chunks(128).enumerate() {
        let gap = e.iter().zip(&want[i]).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
        worst = worst.max(gap);
    }
    eprintln!("burn ResNet-29 vs dlib on {} oracle chips: max |difference| {worst:e}", chips.len());
    assert_eq!(out.len(), 128 * chips.len());
    assert!(worst <= 1e-4, "max difference {worst:e}");
}

#[test]
fn frozen_prefix_on_the_engine_then_trained_blocks_on_burn_export_to_the_engine() {
    let Some((chips, _)) = oracle_chips("frozen_prefix_on_the_engine_then_trained_blocks_on_burn_export_to_the_engine") else { return };
    let w = dlib();
    let (layers, weights) = (resnet29_layers(), w.weights());
    let d = dlib_resnet_descriptor(w.input_mean);
    let refs: Vec<&[u8]> = chips.iter().map(|c| c.as_slice()).collect();
    // Train the last residual block and the fc: everything before them is frozen.
    let cut = layers.len() - 4;
    let prefix = FrozenPrefix::new(&layers[..cut], &weights, 150, d.input.mean, d.input.scale).unwrap();
    let (feats, shape) = prefix.features(&refs).unwrap();
    assert_eq!(shape[0], 256);
    let dev = train_device();
    let suffix = layers[cut..].to_vec();
    let mut net = LayerNet::new(suffix.clone(), &parameters_of(&suffix, &weights), &weights, &dev).unwrap();
    let frows: Vec<&[f32]> = feats.iter().map(|f| f.as_slice()).collect();
    // Before training, engine prefix + burn suffix = the pretrained engine.
    let engine = Embedder::from_weights(&w, EngineOptions::default()).unwrap().embed_batch(&refs).unwrap();
    let split = values(net.valid().forward(features_tensor(&frows, shape, &dev)));
    let gap = split.chunks(128).zip(&engine).map(|(a, b)| max_diff(a, b)).fold(0.0, f32::max);
    assert!(gap <= 1e-4, "prefix + suffix differ from the whole network by {gap:e}");
    // A few triplet steps on the oracle faces (labels: the photo each face is in).
    let labels: Vec<usize> = (0..chips.len()).map(|i| i % 4).collect();
    let loss = TripletLoss { margin: 0.2, metric: Metric::SquaredL2, mining: Mining::BatchAll, reduction: Reduction::Mean };
    let mut optim = AdamConfig::new().init();
    for _ in 0..3 {
        let out = loss.forward(net.forward(features_tensor(&frows, shape, &dev)), &labels);
        let grads = GradientsParams::from_grads(out.loss.backward(), &net);
        net = optim.step(1e-3, net, grads);
    }
    let trained = net.valid();
    let burn_out = values(trained.forward(features_tensor(&frows, shape, &dev)));
    assert!(burn_out.chunks(128).zip(&engine).any(|(a, b)| max_diff(a, b) > 1e-3), "training changed nothing");
    // The whole network with the trained tail, as a model file, on the engine.
    let mut tensors: std::collections::HashMap<String, (Vec<usize>, Vec<f32>)> = weights
        .names()
        .into_iter()
        .map(|n| {
            let t = weights.get(n).unwrap();
            (n.to_string(), (t.shape.clone(), t.data.clone()))
        })
        .collect();
    tensors.extend(trained.tensors());
    let model = TrainedModel { descriptor: d.clone(), spec: Architecture::RESNET29, tensors, provenance: "test".into(), extra: Default::default() };
    let loaded = TrainedModel::from_bytes(&model.to_bytes(), "m").unwrap();
    let e = Embedder::from_trained(&loaded, EngineOptions::default()).unwrap().embed_batch(&refs).unwrap();
    let gap = burn_out.chunks(128).zip(&e).map(|(a, b)| max_diff(a, b)).fold(0.0, f32::max);
    eprintln!("fine-tuned tail: burn vs engine max |difference| {gap:e}");
    assert!(gap <= 1e-4, "burn and the engine differ by {gap:e}");
}
