//! The batches and augmentation draws of `visage train embedder`, printed by visage's own
//! sampler and augmentation code (compiled from crates/visage-train and visage-core with
//! rustc alone, no burn), for bench/pytorch_scratch_view1.py --check-draws to compare with
//! its Python re-implementation.
//!
//! Edition 2015, so that the sources' `use visage_core::SeededRng` finds the module below.
//! Build: rustc --edition 2015 -O bench/pytorch_scratch_view1_draws.rs -o target/tmp/draws
//! Input: a line "P K SEED STEPS", then the training people's chip counts, one a line.
//! Output: for each batch row of the first 2 steps and of the last, "step person photo flip dx
//! dy gain bias", then a hash of the first 50 steps' rows augmented from a fixed test chip,
//! then per mining strategy and test batch (20 random 64 x 64 distance matrices of P=16 x K=4
//! rows, on a coarse grid so that ties occur) "mining batch candidates triplets hash".

#![allow(dead_code)]

#[path = "../crates/visage-core/src/rng.rs"]
mod rng;
mod visage_core {
    pub use rng::SeededRng;
}
#[path = "../crates/visage-train/src/augment.rs"]
mod augment;
#[path = "../crates/visage-train/src/mining.rs"]
mod mining;
#[path = "../crates/visage-train/src/sampler.rs"]
mod sampler;

use std::io::Read;
use visage_core::SeededRng;

fn main() {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).unwrap();
    let mut lines = s.lines();
    let head: Vec<u64> = lines.next().unwrap().split_whitespace().map(|x| x.parse().unwrap()).collect();
    let (p, k, seed, steps) = (head[0] as usize, head[1] as usize, head[2], head[3] as usize);
    let counts: Vec<usize> = lines.map(|l| l.trim().parse().unwrap()).collect();
    let mut sampler = sampler::PkSampler::new(&counts, p, k, sampler::Shortfall::Repeat, seed).unwrap();
    let mut aug = SeededRng::new(seed ^ 0x5eed);
    let chip: Vec<u8> = (0..64 * 64 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let mut h: u64 = 1469598103934665603;
    for step in 0..steps {
        let b = sampler.next_batch();
        for r in &b.rows {
            let a = augment::Augmentation::draw(&mut aug);
            if step < 2 || step + 1 == steps {
                println!("{} {} {} {} {} {} {:.17} {:.17}", step, r.0, r.1, a.flip, a.dx, a.dy, a.gain, a.bias);
            }
            if step < 50 {
                for v in a.apply(&chip, 64) {
                    h = (h ^ v as u64).wrapping_mul(1099511628211);
                }
            }
        }
    }
    println!("hash {}", h);
    let mut rng = SeededRng::new(seed);
    let n = 64;
    let labels: Vec<usize> = (0..n).map(|i| i / 4).collect();
    for batch in 0..20 {
        let mut d = vec![0f32; n * n];
        for i in 0..n {
            for j in i + 1..n {
                let v = rng.below(40) as f32 * 0.025;
                d[i * n + j] = v;
                d[j * n + i] = v;
            }
        }
        for (name, m) in [("batch-hard", mining::Mining::BatchHard), ("batch-all", mining::Mining::BatchAll), ("semi-hard", mining::Mining::SemiHard)].iter() {
            let mut t: Vec<(usize, usize, usize)> = mining::mine(&d, &labels, 0.2, *m).triplets.iter().map(|t| (t.anchor, t.positive, t.negative)).collect();
            let c = mining::mine(&d, &labels, 0.2, *m).candidates;
            t.sort();
            let mut h: u64 = 1469598103934665603;
            for x in &t {
                for v in [x.0, x.1, x.2].iter() {
                    h = (h ^ *v as u64).wrapping_mul(1099511628211);
                }
            }
            println!("{} {} {} {} {}", name, batch, c, t.len(), h);
        }
    }
}
