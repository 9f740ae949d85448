//! Liveness cost per face beside the embedding's, in the same run, on one core.
//!
//! `cargo bench -p visage-liveness --bench liveness`. Finds the faces of 64 NUAA test photos
//! once, then times per face: the liveness judgement (two aligned crops, the LBP histograms,
//! the classifier) and the embedding (the 150x150 chip and the ResNet at batch 1 and batch 32),
//! all on one thread, and prints the ratio. BENCH_REPEATS (default 5) rounds, each timing every
//! workload once in turn; the medians are printed. With `VISAGE_LIVENESS_CNN=FILE` (a model made by `visage liveness train --kind cnn`) the CNN's
//! judgement is timed too.

use std::time::Instant;
use visage::{FaceChoice, Visage};
use visage_liveness::LivenessModel;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let repeats: usize = std::env::var("BENCH_REPEATS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let nuaa = visage_testdata::shared_dir().join("data/nuaa");
    let live = std::fs::read_to_string(nuaa.join("test_live.txt")).expect("NUAA test list (set VISAGE_SHARED)");
    let spoof = std::fs::read_to_string(nuaa.join("test_spoof.txt")).expect("NUAA test list");
    let paths: Vec<_> = live.lines().step_by(16).take(32).chain(spoof.lines().step_by(16).take(32)).map(|l| nuaa.join(l)).collect();
    let v = Visage::load(&visage_testdata::model_store()).expect("models");
    let model = LivenessModel::shipped();
    let faces: Vec<_> = paths
        .iter()
        .filter_map(|p| {
            let img = v.load_image(p).ok()?;
            let faces = v.find_faces(&img).ok()?;
            let f = faces[FaceChoice::Largest.pick(&faces, img.width(), img.height())?].clone();
            Some((img, f))
        })
        .collect();
    println!("{} faces from {} NUAA test photos (320x240), one thread, median of {repeats}", faces.len(), paths.len());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(|| {
        let n = faces.len() as f64;
        let spec = model.features;
        let crops: Vec<_> = faces.iter().map(|(img, f)| spec.crops(img, &f.landmarks).unwrap()).collect();
        let chips: Vec<_> = faces.iter().map(|(img, f)| v.chip(img, f).unwrap()).collect();
        let cnn = std::env::var_os("VISAGE_LIVENESS_CNN")
            .map(|p| visage_liveness::load(std::path::Path::new(&p)).expect("the CNN liveness model"));
        // The workloads, each timed once per round and the rounds interleaved, so that a change
        // in the machine's load (it is often shared) weighs on the liveness and the embedding
        // alike.
        let mut work: Vec<Box<dyn Fn() + '_>> = vec![
            Box::new(|| {
                for (img, f) in &faces {
                    std::hint::black_box(model.judge(img, f.detection, &f.landmarks, None));
                }
            }),
            Box::new(|| {
                for (img, f) in &faces {
                    std::hint::black_box(spec.crops(img, &f.landmarks).unwrap());
                }
            }),
            Box::new(|| {
                for (face, ctx) in &crops {
                    std::hint::black_box(spec.describe_crops(face, ctx.as_ref()));
                }
            }),
            Box::new(|| {
                for (img, f) in &faces {
                    std::hint::black_box(v.chip(img, f).unwrap());
                }
            }),
            Box::new(|| {
                for c in &chips {
                    std::hint::black_box(v.embed_chips(std::slice::from_ref(c)).unwrap());
                }
            }),
            Box::new(|| {
                for g in chips.chunks(32) {
                    std::hint::black_box(v.embed_chips(g).unwrap());
                }
            }),
        ];
        if let Some(m) = &cnn {
            let faces = &faces;
            work.push(Box::new(move || {
                for (img, f) in faces {
                    std::hint::black_box(m.judge(img, f.detection, &f.landmarks, None));
                }
            }));
        }
        let mut times = vec![Vec::new(); work.len()];
        for _ in 0..repeats {
            for (w, t) in work.iter().zip(&mut times) {
                let start = Instant::now();
                w();
                t.push(start.elapsed().as_secs_f64() / n);
            }
        }
        let medians: Vec<f64> = times.into_iter().map(median).collect();
        let (liveness, crops_only, describe_only, chip, batch1, batch32) =
            (medians[0], medians[1], medians[2], medians[3], medians[4], medians[5]);
        let cnn = medians.get(6).copied();
        let (e1, e32) = (chip + batch1, chip + batch32);
        println!(
            "liveness judgement     {:8.3} ms/face (crops {:.3} ms, texture {:.3} ms)",
            liveness * 1e3,
            crops_only * 1e3,
            describe_only * 1e3
        );
        println!("embedding, batch 1     {:8.3} ms/face (chip {:.3} ms + network)", e1 * 1e3, chip * 1e3);
        println!("embedding, batch 32    {:8.3} ms/face", e32 * 1e3);
        println!("liveness / embedding:  {:.1}% at batch 1, {:.1}% at batch 32", 100.0 * liveness / e1, 100.0 * liveness / e32);
        if let Some(c) = cnn {
            println!("CNN liveness judgement {:8.3} ms/face ({:.1}% of the embedding at batch 1)", c * 1e3, 100.0 * c / e1);
        }
    });
}
