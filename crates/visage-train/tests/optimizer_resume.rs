//! A run checkpointed and resumed (the network rebuilt from its model file, Adam's state
//! from its bytes) ends with the weights of the same run uninterrupted; resuming with fresh
//! moment estimates does not.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Tensor, TensorData};
use visage_core::{ChipGeometry, InputNormalization, LandmarkScheme, ModelDescriptor, SeededRng, Thresholds};
use visage_embed::{Architecture, CnnSpec, TrainedModel};
use visage_train::burn;
use visage_train::optimizer_state::{assign_param_ids, optimizer_bytes, param_ids, restore_optimizer};
use visage_train::{train_device, EmbedderNet, Mining, Reduction, TripletLoss};

fn batch(step: usize) -> Tensor<4> {
    let mut rng = SeededRng::new(100 + step as u64);
    let v: Vec<f32> = (0..8 * 3 * 16 * 16).map(|_| rng.centered()).collect();
    Tensor::from_data(TensorData::new(v, [8, 3, 16, 16]), &train_device())
}

const LABELS: [usize; 8] = [0, 0, 1, 1, 2, 2, 3, 3];

fn step(net: EmbedderNet, optim: &mut burn::optim::ModuleOptimizer, k: usize) -> EmbedderNet {
    let loss = TripletLoss { margin: 0.2, metric: visage_train::Metric::SquaredL2, mining: Mining::BatchAll, reduction: Reduction::Mean };
    let out = loss.forward(net.forward(batch(k)), &LABELS);
    let grads = GradientsParams::from_grads(out.loss.backward(), &net);
    optim.step(1e-2, net, grads)
}

fn weights(net: &EmbedderNet, arch: &Architecture, d: &ModelDescriptor) -> Vec<f32> {
    let m = net.valid().export(arch, d, "");
    let mut names: Vec<&String> = m.tensors.keys().collect();
    names.sort();
    names.iter().flat_map(|n| m.tensors[*n].1.clone()).collect()
}

#[test]
fn a_resumed_run_ends_where_the_uninterrupted_one_does() {
    let dev = train_device();
    let arch = Architecture::SmallCnn(CnnSpec { channels: vec![4, 8], dim: 6 });
    let d = ModelDescriptor {
        id: "t".into(),
        dim: 6,
        chip: ChipGeometry { size: 16, padding: 0.25 },
        landmarks: LandmarkScheme::Dlib5,
        input: InputNormalization { mean: [0.0; 3], scale: 1.0 },
        thresholds: Thresholds { l2: 1.0, cosine: 0.5, chi2: 1.0 },
    };
    dev.seed(5);
    let start = EmbedderNet::new(&arch, 5, &dev).unwrap();
    let file0 = start.valid().export(&arch, &d, "").to_bytes();

    // Uninterrupted: 10 steps.
    let mut optim = AdamConfig::new().init();
    let mut net = EmbedderNet::from_model(&TrainedModel::from_bytes(&file0, "start").unwrap(), &dev).unwrap();
    for k in 0..10 {
        net = step(net, &mut optim, k);
    }
    let want = weights(&net, &arch, &d);

    // 5 steps, a checkpoint (model file, ids, Adam's bytes), then a new process's view: the
    // network from the file, the ids given back, the state loaded, 5 more steps.
    let mut optim = AdamConfig::new().init();
    let mut net = EmbedderNet::from_model(&TrainedModel::from_bytes(&file0, "start").unwrap(), &dev).unwrap();
    for k in 0..5 {
        net = step(net, &mut optim, k);
    }
    let file = net.valid().export(&arch, &d, "").to_bytes();
    let ids = param_ids(&net);
    let state = optimizer_bytes(&optim).unwrap();
    drop((net, optim));
    let resume = |with_state: bool| {
        let mut net = EmbedderNet::from_model(&TrainedModel::from_bytes(&file, "ckpt").unwrap(), &dev).unwrap();
        let mut optim = AdamConfig::new().init();
        if with_state {
            net = assign_param_ids(net, &ids).unwrap();
            optim = restore_optimizer(optim, state.clone()).unwrap();
        }
        for k in 5..10 {
            net = step(net, &mut optim, k);
        }
        weights(&net, &arch, &d)
    };
    let got = resume(true);
    let gap = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    eprintln!("resumed with Adam's state: {:e}; with fresh moments: {:e}", gap(&got, &want), gap(&resume(false), &want));
    assert!(gap(&got, &want) < 1e-6, "resumed run differs by {:e}", gap(&got, &want));
    assert!(gap(&resume(false), &want) > 1e-3, "fresh moments should change the run (else this test proves nothing)");
    // Ids for another network are refused.
    let other = EmbedderNet::new(&Architecture::SmallCnn(CnnSpec { channels: vec![4], dim: 6 }), 1, &dev).unwrap();
    assert!(assign_param_ids(other, &ids).is_err());
}
