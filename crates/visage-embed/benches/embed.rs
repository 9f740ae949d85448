//! Embedder throughput, side by side with dlib in the same run.
//!
//! `cargo bench -p visage-embed --bench embed` (after `scripts/reference-env.sh` for dlib).
//! Times visage at batch 1 and 32 on all cores and on one, then dlib's own timing of the same
//! chips (through `bench/reference/dlib_embed.py` run by `$VISAGE_REFERENCE_PYTHON`, default
//! `.bench-venv/bin/python`), then visage again, and prints faces/s and the ratios.
//! Options (environment): BENCH_REPEATS (default 7), BENCH_DLIB_REPEATS (default 2).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use visage_embed::Embedder;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Median seconds per face of `embed_batch` over `batch`-sized groups of `chips`.
fn per_face(e: &Embedder, chips: &[Vec<u8>], batch: usize, repeats: usize) -> f64 {
    let group: Vec<&[u8]> = chips.iter().cycle().take(batch.max(chips.len())).map(|c| c.as_slice()).collect();
    e.embed_batch(&group[..batch]).unwrap(); // warm the workspace
    let times = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            let mut faces = 0;
            for g in group.chunks(batch) {
                e.embed_batch(g).unwrap();
                faces += g.len();
            }
            t.elapsed().as_secs_f64() / faces as f64
        })
        .collect();
    median(times)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let chip_dir = visage_testdata::shared_dir().join("oracle/dlib");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&chip_dir)
        .unwrap_or_else(|e| panic!("{}: {e} (set VISAGE_SHARED)", chip_dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("_chip.png"))
        .collect();
    paths.sort();
    let chips: Vec<Vec<u8>> = paths.iter().map(|p| image::open(p).unwrap().to_rgb8().into_raw()).collect();
    let repeats = env_usize("BENCH_REPEATS", 7);

    let store = visage_models::ModelStore::resolve(None).unwrap();
    let embedder = Embedder::from_store(&store).unwrap_or_else(|e| panic!("{e}"));
    let threads = rayon::current_num_threads();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    println!("visage embedder: {} kernels, {threads} threads, {} chips from {}", embedder.isa().name(), chips.len(), chip_dir.display());

    let measure =
        |label: &str| {
            let b1 = per_face(&embedder, &chips, 1, repeats);
            let b32 = per_face(&embedder, &chips, 32, repeats);
            let b32_1t = one.install(|| per_face(&embedder, &chips, 32, repeats));
            println!(
            "  {label}: batch 1 {:.2} ms/face ({:.0} faces/s) | batch 32 {:.2} ms/face ({:.0} faces/s) | batch 32, 1 thread {:.2} ms/face",
            b1 * 1e3, 1.0 / b1, b32 * 1e3, 1.0 / b32, b32_1t * 1e3
        );
            (b1, b32, b32_1t)
        };
    let first = measure("visage (before dlib)");

    let dlib = if let Some(python) = visage_testdata::reference_python() {
        let out = Command::new(&python)
            .arg(visage_testdata::reference_script("dlib_embed.py"))
            .arg(env_usize("BENCH_DLIB_REPEATS", 2).to_string())
            .args(&paths)
            .output()
            .expect("run the dlib reference");
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("reference JSON");
            Some(v)
        } else {
            println!("dlib reference failed: {}", String::from_utf8_lossy(&out.stderr));
            None
        }
    } else {
        None
    };
    let second = measure("visage (after dlib) ");
    let b1 = first.0.min(second.0);
    let b32 = first.1.min(second.1);
    let b32_1t = first.2.min(second.2);

    if let Some(d) = dlib {
        let fe = d["face_encodings_b1"].as_f64().unwrap();
        let d1 = d["descriptor_b1"].as_f64().unwrap();
        let d32 = d["descriptor_b32"].as_f64().unwrap();
        println!("  dlib {} (1 thread): face_encodings batch 1 {:.1} ms/face ({:.1} faces/s) | descriptor batch 1 {:.1} ms | descriptor batch 32 {:.1} ms/face",
            d["dlib_version"].as_str().unwrap_or("?"), fe * 1e3, 1.0 / fe, d1 * 1e3, d32 * 1e3);
        println!("ratio (dlib time / visage time):");
        println!("  batch 1:  {:.0}x  (face_encodings vs visage batch 1)", fe / b1);
        println!("  batch 32: {:.0}x  (dlib batch 32 vs visage batch 32, all cores)", d32 / b32);
        println!("  batch 32, one thread each: {:.0}x", d32 / b32_1t);
    }
}
