//! Gallery search on synthetic 128-d galleries of 10k, 100k and 1M templates.
//!
//! `cargo bench -p visage-gallery --bench search` (BENCH_SIZES=10000,100000 to choose).
//! The data imitates dlib embeddings: subjects are points around a common mean (impostor
//! distance ~0.9), each with 4 templates (genuine distance ~0.4); probes are fresh samples of
//! enrolled subjects. Prints p50/p99 latency of exact and approximate (HNSW) top-1 and top-10,
//! recall@1 of the approximate index against exact search, build time and memory.

use std::time::Instant;
use visage_core::Metric;
use visage_gallery::SearchIndex;

const DIM: usize = 128;
const PER_SUBJECT: usize = 4;

/// xorshift64* with Box-Muller normals.
struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f32 {
        ((-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()) as f32
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);
    println!("gallery search, {DIM}-d L2, {} threads", rayon::current_num_threads());
    println!("{:>9} | {:>21} | {:>21} | {:>21} | {:>21} | {:>8} | {:>8} | {:>9}", "templates", "exact top-1 p50/p99", "exact top-10 p50/p99", "approx top-1 p50/p99", "approx top-10 p50/p99", "recall@1", "build s", "memory");
    for &n in &sizes {
        let mut rng = Rng(0x9E3779B97F4A7C15 ^ n as u64);
        let mean: Vec<f32> = (0..DIM).map(|_| rng.normal() * 0.124).collect();
        let subjects = n / PER_SUBJECT;
        let centers: Vec<Vec<f32>> = (0..subjects).map(|_| mean.iter().map(|m| m + rng.normal() * 0.0575).collect()).collect();
        let sample = |rng: &mut Rng, c: &[f32]| -> Vec<f32> { c.iter().map(|x| x + rng.normal() * 0.025).collect() };
        let mut idx = SearchIndex::new(Metric::L2, DIM);
        for (s, c) in centers.iter().enumerate() {
            for _ in 0..PER_SUBJECT {
                idx.push(s as u32, &sample(&mut rng, c));
            }
        }
        let exact_mem = idx.memory_bytes();
        let t = Instant::now();
        idx.build_approximate().unwrap();
        let build = t.elapsed().as_secs_f64();
        let probes: Vec<Vec<f32>> = (0..1000).map(|_| {
            let s = (rng.uniform() * subjects as f64) as usize % subjects;
            sample(&mut rng, &centers[s])
        }).collect();
        let time = |f: &dyn Fn(&[f32]), count: usize| -> (f64, f64) {
            let mut v: Vec<f64> = probes.iter().take(count).map(|p| {
                let t = Instant::now();
                f(p);
                t.elapsed().as_secs_f64() * 1e3
            }).collect();
            (percentile(&mut v, 0.5), percentile(&mut v, 0.99))
        };
        let exact_count = if n >= 1_000_000 { 100 } else { 300 };
        let e1 = time(&|p| { std::hint::black_box(idx.search_exact(p, 1)); }, exact_count);
        let e10 = time(&|p| { std::hint::black_box(idx.search_exact(p, 10)); }, exact_count);
        let a1 = time(&|p| { std::hint::black_box(idx.search_approx(p, 1)); }, 1000);
        let a10 = time(&|p| { std::hint::black_box(idx.search_approx(p, 10)); }, 1000);
        let hits = probes.iter().take(exact_count).filter(|p| idx.search_approx(p, 1)[0].subject == idx.search_exact(p, 1)[0].subject).count();
        println!(
            "{n:>9} | {:>8.2} / {:>8.2} ms | {:>8.2} / {:>8.2} ms | {:>8.3} / {:>8.3} ms | {:>8.3} / {:>8.3} ms | {:>8.4} | {build:>8.1} | {:>4} / {:>3} MB",
            e1.0, e1.1, e10.0, e10.1, a1.0, a1.1, a10.0, a10.1, hits as f64 / exact_count as f64, exact_mem >> 20, idx.memory_bytes() >> 20
        );
    }
    println!("memory: exact matrix / matrix + HNSW graph");
}
