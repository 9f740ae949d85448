//! The locally connected layer and the DeepFace-style network on burn: gradients against
//! central finite differences; burn's forward against the engine's (the model file runs on
//! the engine with burn's outputs); one softmax step lowers the loss.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Tensor, TensorData};
use visage_core::{ChipGeometry, InputNormalization, LandmarkScheme, ModelDescriptor, SeededRng, Thresholds};
use visage_embed::{Architecture, DeepFaceSpec, Embedder, EngineOptions, TrainedModel};
use visage_engine::{Layer, Tensor as EngineTensor, Weights};
use visage_train::burn;
use visage_train::cnn::chips_tensor;
use visage_train::softmax::IdentityClassifier;
use visage_train::tensors::values;
use visage_train::{train_device, EmbedderNet, LayerNet};

fn random(rng: &mut SeededRng, shape: &[usize]) -> EngineTensor {
    EngineTensor::new(shape.to_vec(), (0..shape.iter().product()).map(|_| rng.centered()).collect()).unwrap()
}

/// `sum(y * r) + sum(y^2) / 2` of the layer's output `y`: quadratic in the weights and in the
/// input, so a central difference is exact up to rounding.
fn objective(net: &LayerNet, x: Tensor<4>, r: &Tensor<2>) -> Tensor<1> {
    let y = net.forward(x);
    (y.clone() * r.clone()).sum() + (y.clone() * y).sum().mul_scalar(0.5)
}

#[test]
fn locally_connected_gradients_agree_with_finite_differences() {
    // 2 images of 3 channels, 6x7; 3x3 windows with stride 2 -> 2x3
    // positions of 4 outputs each, with bias.
    let dev = train_device();
    let mut rng = SeededRng::new(21);
    let layers = vec![Layer::locally_connected("lc", 2)];
    let shapes = vec![("lc.weight".to_string(), vec![2, 3, 3, 3, 3, 4]), ("lc.bias".to_string(), vec![2, 3, 4])];
    let mut w = Weights::new();
    for (n, s) in &shapes {
        w.insert(n.clone(), random(&mut rng, s));
    }
    let xs: Vec<f32> = (0..2 * 3 * 6 * 7).map(|_| rng.centered()).collect();
    let input = |v: &[f32]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), [2, 3, 6, 7]), &dev);
    let rv: Vec<f32> = (0..2 * 4 * 2 * 3).map(|_| rng.centered()).collect();
    let r = Tensor::<2>::from_data(TensorData::new(rv, [2, 24]), &dev);

    let net = LayerNet::new(layers.clone(), &shapes, &w, &dev).unwrap();
    let x = input(&xs).require_grad();
    let grads = objective(&net, x.clone(), &r).backward();
    let gw = values(net.params[0].val().grad(&grads).unwrap());
    let gb = values(net.params[1].val().grad(&grads).unwrap());
    let gx = values(x.grad(&grads).unwrap());

    let value = |w: &Weights, xs: &[f32]| -> f64 {
        let net = LayerNet::new(layers.clone(), &shapes, w, &dev).unwrap().valid();
        values(objective(&net, input(xs), &r))[0] as f64
    };
    let eps = 0.05f32;
    let mut worst = 0f64;
    let mut check = |analytic: f32, plus: f64, minus: f64, what: String| {
        let fd = (plus - minus) / (2.0 * eps as f64);
        let gap = (fd - analytic as f64).abs() / (1.0 + fd.abs());
        assert!(gap < 2e-3, "{what}: finite difference {fd}, autodiff {analytic}");
        worst = worst.max(gap);
    };
    for (p, g) in [("lc.weight", &gw), ("lc.bias", &gb)] {
        // Every bias, and a spread of weights (every 7th).
        let step = if p == "lc.bias" { 1 } else { 7 };
        for i in (0..g.len()).step_by(step) {
            let at = |d: f32| {
                let mut w2 = w.clone();
                let mut t = w2.get(p).unwrap().clone();
                t.data[i] += d;
                w2.insert(p, t);
                value(&w2, &xs)
            };
            check(g[i], at(eps), at(-eps), format!("{p}[{i}]"));
        }
    }
    for i in (0..xs.len()).step_by(5) {
        let at = |d: f32| {
            let mut x2 = xs.clone();
            x2[i] += d;
            value(&w, &x2)
        };
        check(gx[i], at(eps), at(-eps), format!("input[{i}]"));
    }
    eprintln!("largest relative gap {worst:e}");
    // The layer is not a convolution: positions do not share filters, so moving one
    // position's filter changes only that position's outputs.
    let y0 = values(net.valid().forward(input(&xs)));
    let mut w2 = w.clone();
    let mut t = w2.get("lc.weight").unwrap().clone();
    for v in &mut t.data[..3 * 3 * 3 * 4] {
        *v += 1.0; // position (0, 0)'s filters
    }
    w2.insert("lc.weight", t);
    let y1 = values(LayerNet::new(layers.clone(), &shapes, &w2, &dev).unwrap().valid().forward(input(&xs)));
    for (i, (a, b)) in y0.iter().zip(&y1).enumerate() {
        // Output `[n, c, h, w]` flattened: position (0, 0) is index 0 of each channel's 2x3.
        let position = i % 6;
        assert_eq!(position == 0, a != b, "output {i} (position {position})");
    }
}

fn descriptor(spec: &DeepFaceSpec) -> ModelDescriptor {
    ModelDescriptor {
        id: "visage-deepface-test".into(),
        dim: spec.dim,
        chip: ChipGeometry { size: spec.chip as u32, padding: 0.25 },
        landmarks: LandmarkScheme::Dlib5,
        input: InputNormalization { mean: [127.5, 127.5, 127.5], scale: 1.0 / 128.0 },
        thresholds: Thresholds { l2: 1.0, cosine: 0.5, chi2: 1.0 },
    }
}

fn chips(rng: &mut SeededRng, n: usize, side: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| (0..side * side * 3).map(|_| (rng.below(256)) as u8).collect()).collect()
}

#[test]
fn the_deepface_network_trains_on_burn_and_runs_on_the_engine_with_the_same_outputs() {
    let dev = train_device();
    dev.seed(4);
    let spec = DeepFaceSpec { chip: 40, dim: 24 };
    let arch = Architecture::DeepFace { deepface: spec.clone() };
    let d = descriptor(&spec);
    let mut rng = SeededRng::new(8);
    let batch = chips(&mut rng, 6, 40);
    let refs: Vec<&[u8]> = batch.iter().map(|c| c.as_slice()).collect();
    let labels = [0, 0, 1, 1, 2, 2];

    // A few softmax steps: the loss on this batch falls.
    let net = EmbedderNet::new(&arch, 3, &dev).unwrap();
    let mut model = IdentityClassifier::new(net, spec.dim, 3, &dev);
    let mut optim = AdamConfig::new().init();
    let first = model.forward(chips_tensor(&refs, 40, &d, &dev), &labels).loss_value;
    for _ in 0..20 {
        let out = model.forward(chips_tensor(&refs, 40, &d, &dev), &labels);
        let grads = GradientsParams::from_grads(out.loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
    }
    let last = model.forward(chips_tensor(&refs, 40, &d, &dev), &labels).loss_value;
    assert!(last < 0.5 * first, "softmax loss {first} -> {last}");

    // The trained network's file, read back, runs on the engine with burn's outputs.
    let net = model.net.valid();
    let want = values(net.forward(chips_tensor(&refs, 40, &d, &dev)));
    let file = net.export(&arch, &d, "test").to_bytes();
    let loaded = TrainedModel::from_bytes(&file, "test").unwrap();
    assert_eq!(loaded.spec, arch);
    let embedder = Embedder::from_trained(&loaded, EngineOptions::default()).unwrap();
    let got = embedder.embed_batch(&refs).unwrap();
    let worst = got.iter().flatten().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-4, "engine vs burn: {worst:e}");
    eprintln!("engine vs burn after training: {worst:e}");
    // Non-negative unit vectors (relu, then L2 normalisation), as DeepFace's representation.
    for e in &got {
        assert!(e.iter().all(|v| *v >= 0.0));
        let n: f32 = e.iter().map(|v| v * v).sum();
        assert!((n - 1.0).abs() < 1e-4 || n == 0.0, "norm^2 {n}");
    }
    // Resuming from the file gives back the same network.
    let again = EmbedderNet::from_model(&loaded, &dev).unwrap();
    assert_eq!(values(again.forward(chips_tensor(&refs, 40, &d, &dev))), want);
    // Chips of another size are refused with the layer named, not a panic.
    let small = chips(&mut rng, 1, 48);
    let e = embedder.embed_batch(&[small[0].as_slice()]).expect_err("48x48 chips for a 40-pixel network");
    eprintln!("{e}");
}
