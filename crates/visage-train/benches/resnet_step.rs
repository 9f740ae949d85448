//! Training speed of dlib's ResNet-29 on burn (Flex CPU + autodiff) beside PyTorch, in the same
//! run: one step (forward, backward, Adam) at batch 32 (8 people x 4 photos, batch-hard triplet
//! loss on Euclidean distances), every layer trained, and PyTorch's step on the same network and
//! number of threads (`bench/pytorch_resnet_step.py`).
//!
//! `cargo bench -p visage-train --bench resnet_step`. `BENCH_STEPS` (default 5; the median is
//! printed, after one warm-up step), `BENCH_THREADS` (default 2), `BENCH_PYTHON` (a Python
//! with torch; default `target/torch-venv/bin/python`; PyTorch's side is skipped, saying so,
//! when it cannot run). Random weights and inputs: the cost does not depend on their values.

use std::process::Command;
use std::time::Instant;
use visage_core::SeededRng;
use visage_embed::architecture::{resnet29_layers, resnet29_parameter_shapes};
use visage_engine::{Tensor as EngineTensor, Weights};
use visage_train::burn::optim::{AdamConfig, GradientsParams};
use visage_train::{train_device, LayerNet, Metric, Mining, Reduction, TripletLoss};

fn main() {
    let steps: usize = std::env::var("BENCH_STEPS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let threads: usize = std::env::var("BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| format!("{root}/target/torch-venv/bin/python"));

    // Random weights of the ResNet's shapes (Kaiming-like scale keeps activations finite).
    let mut rng = SeededRng::new(1);
    let mut weights = Weights::new();
    for (name, shape) in resnet29_parameter_shapes() {
        let n: usize = shape.iter().product();
        let fan_in: usize = shape[1..].iter().product::<usize>().max(1);
        let data: Vec<f32> = if name.ends_with(".gamma") {
            vec![1.0; n]
        } else if name.ends_with(".beta") || name.ends_with(".bias") {
            vec![0.0; n]
        } else {
            let s = (2.0 / fan_in as f64).sqrt();
            (0..n).map(|_| ((rng.below(2001) as f64 / 1000.0 - 1.0) * s) as f32).collect()
        };
        weights.insert(name, EngineTensor::new(shape, data).unwrap());
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let burn_s = pool.install(|| {
        let dev = train_device();
        let mut net = LayerNet::new(resnet29_layers(), &resnet29_parameter_shapes(), &weights, &dev).unwrap();
        let x: Vec<f32> = (0..32 * 3 * 150 * 150).map(|_| rng.below(2001) as f32 / 1000.0 - 1.0).collect();
        let labels: Vec<usize> = (0..32).map(|i| i / 4).collect();
        let loss = TripletLoss { margin: 0.1, metric: Metric::L2_EPS, mining: Mining::BatchHard, reduction: Reduction::Mean };
        let mut optim = AdamConfig::new().init();
        let mut times = Vec::new();
        for i in 0..=steps {
            let t = Instant::now();
            let input = visage_train::burn::tensor::Tensor::<4>::from_data(visage_train::burn::tensor::TensorData::new(x.clone(), [32, 3, 150, 150]), &dev);
            let out = loss.forward(net.forward(input), &labels);
            let grads = GradientsParams::from_grads(out.loss.backward(), &net);
            net = optim.step(1e-4, net, grads);
            if i > 0 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    });
    println!("ResNet-29 training step, batch 32 (150x150), every layer, {threads} threads, median of {steps}:");
    println!("  burn 0.22.1 Flex + autodiff  {:7.3} s/step  {:6.1} images/s", burn_s, 32.0 / burn_s);
    let script = format!("{root}/bench/pytorch_resnet_step.py");
    match Command::new(&python).args([&script, &threads.to_string(), &steps.to_string()]).output() {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("the script's JSON line");
            let t = v["seconds_per_step"].as_f64().unwrap();
            println!("  PyTorch {:<20} {:7.3} s/step  {:6.1} images/s", v["torch"].as_str().unwrap_or("?"), t, 32.0 / t);
            println!("  burn / PyTorch time: {:.2}x (PyTorch {:.2}x faster)", burn_s / t, burn_s / t);
        }
        Ok(o) => println!("  PyTorch: skipped ({python} failed: {})", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")),
        Err(e) => println!("  PyTorch: skipped ({python}: {e}); set BENCH_PYTHON to a Python with torch"),
    }
}
