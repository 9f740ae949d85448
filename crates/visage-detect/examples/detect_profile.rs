//! Runs one detector on one photo in a loop, for profiling (`perf record`):
//! `cargo run --release -p visage-detect --example detect_profile -- hog|cnn|fhog PHOTO UPSAMPLE [SECONDS]`.

use std::time::Instant;
use visage_core::image_io::load_rgb;
use visage_core::ImageLimits;
use visage_detect::{HogDetector, MmodDetector};
use visage_engine::EngineOptions;

/// CPU seconds this process has used (user + system), from /proc/self/stat (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = after.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (which, path, up) = (&args[1], &args[2], args[3].parse::<u32>().unwrap());
    let secs: f64 = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(10.0);
    let img = load_rgb(std::path::Path::new(path), &ImageLimits::default()).unwrap();
    let hog = HogDetector::new();
    let mut up_img = img.clone();
    for _ in 0..up {
        up_img = visage_detect::hog::resize::pyramid_up(&up_img);
    }
    let cnn = (which == "cnn").then(|| {
        let store = visage_models::ModelStore::resolve(None).unwrap();
        MmodDetector::from_store(&store, EngineOptions::default()).unwrap()
    });
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let mut times = Vec::new();
    while start.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        let n = match (&cnn, which.as_str()) {
            (Some(c), _) => c.run(&img, up, 0.0).unwrap().len(),
            // fHOG of the (upsampled) photo alone, on this thread.
            (None, "fhog") => visage_detect::hog::fhog::extract(&up_img).map_or(0, |f| f.rows),
            _ => hog.run(&img, up, 0.0).len(),
        };
        std::hint::black_box(n);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let cpu = (cpu_seconds() - cpu0) * 1e3 / times.len() as f64;
    times.sort_by(f64::total_cmp);
    println!(
        "{which} {path} upsample {up}: {} runs, min {:.1} ms, median {:.1} ms, CPU {cpu:.1} ms per run",
        times.len(),
        times[0],
        times[times.len() / 2]
    );
}
