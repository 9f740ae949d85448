//! Face detection, side by side with dlib in the same run: the CNN (MMOD) detector and the HOG
//! detector on the same photos, with the ratios.
//!
//! `cargo bench -p visage-detect --bench detect` (after `scripts/reference-env.sh` for dlib).
//! Options (environment): BENCH_REPEATS (default 3), BENCH_CNN_DLIB=0 skips dlib's CNN (it
//! takes about a minute per photo at upsample 1).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use visage_core::image_io::load_rgb;
use visage_core::ImageLimits;
use visage_detect::{HogDetector, MmodDetector};
use visage_engine::EngineOptions;

fn median(repeats: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..repeats)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let repeats: usize = std::env::var("BENCH_REPEATS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let images = visage_testdata::shared_dir().join("oracle/images");
    let cases: Vec<(PathBuf, u32)> = vec![
        (images.join("Tom_Hanks_54745.png"), 1),
        (images.join("t1.jpg"), 0),
        (images.join("t1.jpg"), 1),
        (images.join("sample1.jpg"), 0),
    ];
    let store = visage_models::ModelStore::resolve(None).unwrap();
    let cnn = MmodDetector::from_store(&store, EngineOptions::default()).unwrap_or_else(|e| panic!("{e} (visage models fetch --all)"));
    let threads = rayon::current_num_threads();
    println!("visage detectors: {threads} threads, {} kernels; dlib single-threaded", EngineOptions::default().isa.name());

    let dlib: Option<serde_json::Value> = match (visage_testdata::reference_python(), std::env::var("BENCH_CNN_DLIB").as_deref()) {
        (Some(py), r) if r != Ok("0") => {
            let args: Vec<String> = cases.iter().map(|(p, u)| format!("{}:{u}", p.display())).collect();
            let out = Command::new(py).arg(visage_testdata::reference_script("dlib_cnn.py")).args(&args).output().expect("run dlib");
            if out.status.success() {
                serde_json::from_slice(&out.stdout).ok()
            } else {
                println!("dlib reference failed: {}", String::from_utf8_lossy(&out.stderr));
                None
            }
        }
        _ => None,
    };

    println!("CNN (MMOD) detector:");
    for (path, up) in &cases {
        let img = load_rgb(path, &ImageLimits::default()).unwrap();
        let mut faces = 0;
        let ours = median(repeats, || faces = cnn.run(&img, *up, 0.0).unwrap().len());
        let name = path.file_name().unwrap().to_string_lossy();
        let line = format!("  {name:<20} {}x{} upsample {up}: visage {:>8.1} ms ({faces} faces)", img.width(), img.height(), ours * 1e3);
        let key = format!("{}:{up}", path.display());
        match dlib.as_ref().map(|d| &d["cnn"][&key]) {
            Some(v) if v["s"].is_f64() => {
                let s = v["s"].as_f64().unwrap();
                println!("{line} | dlib {:>8.1} ms ({} faces) | {:.0}x", s * 1e3, v["faces"], s / ours)
            }
            _ => println!("{line}"),
        }
    }
    println!("HOG detector (see `cargo bench -p visage --bench pipeline` for dlib's HOG side by side):");
    for (path, up) in &cases {
        let img = load_rgb(path, &ImageLimits::default()).unwrap();
        let hog = HogDetector::new();
        let ours = median(repeats.max(5), || {
            hog.run(&img, *up, 0.0);
        });
        println!("  {:<20} upsample {up}: visage {:>7.1} ms", path.file_name().unwrap().to_string_lossy(), ours * 1e3);
    }
}
