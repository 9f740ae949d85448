//! Detection time and whole-pipeline throughput, side by side with dlib in the same run.
//!
//! `cargo bench -p visage --bench pipeline` (after `scripts/reference-env.sh` for dlib).
//! Detection: a 250x250 LFW photo and t1.jpg (1280x886, about 1.1 MP) at upsample 0 and 1.
//! Pipeline: detection (upsample 1) + landmarks + chips + embeddings over the 8 oracle photos.
//! Decoding is excluded on both sides. Options: BENCH_REPEATS (default 9).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use visage::{ModelStore, Visage};
use visage_detect::HogDetector;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<T>(repeats: usize, mut f: impl FnMut() -> T) -> f64 {
    f();
    median(
        (0..repeats)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn main() {
    let shared = visage_testdata::shared_dir();
    let repeats: usize = std::env::var("BENCH_REPEATS").ok().and_then(|v| v.parse().ok()).unwrap_or(9);
    let lfw = shared.join("data/lfw/images/Aaron_Peirsol/Aaron_Peirsol_0001.jpg");
    let t1 = shared.join("oracle/images/t1.jpg");
    let mut photos: Vec<PathBuf> =
        std::fs::read_dir(shared.join("oracle/images")).expect("shared/oracle/images").flatten().map(|e| e.path()).collect();
    photos.sort();
    let limits = visage::ImageLimits::DEFAULT;
    let load = |p: &Path| visage::image_io::load_rgb(p, &limits).unwrap_or_else(|e| panic!("{e}"));

    let v = Visage::load(&ModelStore::resolve(None).unwrap()).unwrap_or_else(|e| panic!("{e}"));
    let threads = rayon::current_num_threads();
    println!("visage pipeline benchmark: {threads} threads, {} kernels, median of {repeats}", visage::EngineOptions::default().isa.name());

    let dlib: Option<serde_json::Value> = if let Some(python) = visage_testdata::reference_python() {
        let out = Command::new(&python)
            .arg(visage_testdata::reference_script("dlib_pipeline.py"))
            .arg(repeats.to_string())
            .args([&lfw, &t1])
            .arg("--")
            .args(&photos)
            .output()
            .expect("run the dlib reference");
        if out.status.success() {
            serde_json::from_slice(&out.stdout).ok()
        } else {
            println!("dlib reference failed: {}", String::from_utf8_lossy(&out.stderr));
            None
        }
    } else {
        None
    };

    println!("detection (dlib single-threaded; visage {threads} threads):");
    for (label, path) in [("LFW 250x250", &lfw), ("t1.jpg 1280x886", &t1)] {
        let img = load(path);
        for up in [0u32, 1] {
            let det = HogDetector::new().with_upsample(up);
            let ours = time(repeats, || det.run(&img, up, 0.0));
            let line = format!("  {label:<16} upsample {up}: visage {:>7.1} ms", ours * 1e3);
            match dlib.as_ref().and_then(|d| d["detect"][path.to_string_lossy().as_ref()][up.to_string()].as_f64()) {
                Some(theirs) => println!("{line} | dlib {:>7.1} ms | {:.1}x", theirs * 1e3, theirs / ours),
                None => println!("{line}"),
            }
        }
    }

    let imgs: Vec<_> = photos.iter().map(|p| load(p)).collect();
    let mut faces = 0;
    let ours = time(repeats.div_ceil(3), || {
        faces = imgs.iter().map(|img| v.analyze(img).unwrap().len()).sum::<usize>();
    });
    let line = format!(
        "pipeline (detect up1 + landmarks + chips + embeddings, {} photos, {faces} faces): visage {:.1} faces/s",
        imgs.len(),
        faces as f64 / ours
    );
    match dlib {
        Some(d) => {
            let theirs = d["pipeline_s"].as_f64().unwrap();
            let n = d["pipeline_faces"].as_f64().unwrap();
            println!("{line} | dlib {:.1} faces/s | {:.1}x", n / theirs, (faces as f64 / ours) / (n / theirs));
        }
        None => println!("{line}"),
    }
}
