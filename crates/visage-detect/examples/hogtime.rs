fn main() {
    for p in std::env::args().skip(1) {
        let img = visage_core::image_io::load_rgb(std::path::Path::new(&p), &Default::default()).unwrap();
        let d = visage_detect::HogDetector::new();
        for up in [0u32, 1] {
            d.run(&img, up, 0.0);
            let t = std::time::Instant::now();
            let n = 5;
            for _ in 0..n {
                d.run(&img, up, 0.0);
            }
            println!("{} up{up}: {:.1} ms", p.rsplit('/').next().unwrap(), t.elapsed().as_secs_f64() * 1e3 / n as f64);
        }
    }
}
