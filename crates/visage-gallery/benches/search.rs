//! Gallery search on synthetic 128-d galleries of 10k, 100k and 1M templates.
//!
//! `cargo bench -p visage-gallery --bench search` (BENCH_SIZES=10000,100000 to choose).
//! The data imitates dlib embeddings measured on LFW (bench/reference/lfw_spectrum.py):
//! subjects are drawn with the principal standard deviations of real people's mean embeddings
//! (about 77 effective dimensions), each gets 4 templates with the real within-person spread
//! (added in all 128 dimensions, which only makes the search harder); probes are fresh samples
//! of enrolled subjects. L2 distances do not change under rotation, so the diagonal form has
//! the geometry of the real one. Prints p50/p99 latency of exact and approximate (HNSW) top-1
//! and top-10, recall@1 of the approximate index against exact search, build time and memory.
//! BENCH_HNSW=M,efConstruction,ef,f16|f32 overrides the graph settings.

use std::time::Instant;
use visage_core::Metric;
use visage_gallery::{HnswParams, SearchIndex};

// 1680 LFW people with 2+ photos; per-person means' principal standard deviations.
const BETWEEN_SD: [f32; 128] = [
    0.18205, 0.14919, 0.12805, 0.11848, 0.10671, 0.10184, 0.096294, 0.088638, 0.086893, 0.084111, 0.080123, 0.079731, 0.077015, 0.076399,
    0.072115, 0.069772, 0.068699, 0.06609, 0.065149, 0.06237, 0.061586, 0.060797, 0.059854, 0.058677, 0.057899, 0.055502, 0.054013,
    0.052729, 0.052481, 0.0518, 0.050185, 0.049436, 0.048874, 0.048323, 0.04712, 0.046875, 0.045004, 0.044139, 0.043461, 0.043103,
    0.042877, 0.042489, 0.041137, 0.040301, 0.040055, 0.038945, 0.037802, 0.037334, 0.036854, 0.036441, 0.035906, 0.035515, 0.034415,
    0.033844, 0.033386, 0.033032, 0.032322, 0.031408, 0.030613, 0.030085, 0.029746, 0.02841, 0.027535, 0.027202, 0.026889, 0.026167,
    0.025455, 0.024573, 0.024261, 0.023751, 0.02323, 0.022074, 0.021028, 0.018991, 0.01699, 0.01552, 0.010978, 0.0017741, 0.00069889,
    0.00045033, 0.00024133, 7.7777e-05, 2.7148e-05, 1.8289e-05, 1.2876e-05, 7.7968e-06, 3.8446e-06, 2.4032e-06, 1.6549e-06, 1.3252e-06,
    7.1613e-07, 6.3225e-07, 4.4639e-07, 3.1406e-07, 2.1296e-07, 1.8599e-07, 1.6775e-07, 1.4091e-07, 1.1074e-07, 9.0765e-08, 8.3143e-08,
    7.3776e-08, 7.1216e-08, 6.8523e-08, 6.6613e-08, 6.5442e-08, 6.4628e-08, 6.0547e-08, 5.9231e-08, 5.8891e-08, 5.6773e-08, 5.5045e-08,
    5.242e-08, 5.1427e-08, 5.0783e-08, 4.9965e-08, 4.8553e-08, 4.8246e-08, 4.6212e-08, 4.4143e-08, 4.3215e-08, 4.2483e-08, 4.2083e-08,
    4.0798e-08, 3.8807e-08, 3.8184e-08, 3.6774e-08, 3.5239e-08,
];
// Within-person standard deviation per dimension (pooled over LFW).
const WITHIN_SD: f32 = 0.024991;

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
    let params = match std::env::var("BENCH_HNSW") {
        Ok(v) => {
            let f: Vec<&str> = v.split(',').collect();
            HnswParams {
                connectivity: f[0].parse().unwrap(),
                expansion_add: f[1].parse().unwrap(),
                expansion_search: f[2].parse().unwrap(),
                half_precision: f[3] == "f16",
            }
        }
        Err(_) => HnswParams::default(),
    };
    println!("gallery search, {DIM}-d L2, {} threads, HNSW {params:?}", rayon::current_num_threads());
    println!(
        "{:>9} | {:>21} | {:>21} | {:>21} | {:>21} | {:>8} | {:>8} | {:>9}",
        "templates",
        "exact top-1 p50/p99",
        "exact top-10 p50/p99",
        "approx top-1 p50/p99",
        "approx top-10 p50/p99",
        "recall@1",
        "build s",
        "memory"
    );
    for &n in &sizes {
        let mut rng = Rng(0x9E3779B97F4A7C15 ^ n as u64);
        let subjects = n / PER_SUBJECT;
        let centers: Vec<Vec<f32>> = (0..subjects).map(|_| BETWEEN_SD.iter().map(|sd| rng.normal() * sd).collect()).collect();
        let sample = |rng: &mut Rng, c: &[f32]| -> Vec<f32> { c.iter().map(|x| x + rng.normal() * WITHIN_SD).collect() };
        let mut idx = SearchIndex::new(Metric::L2, DIM);
        for (s, c) in centers.iter().enumerate() {
            for _ in 0..PER_SUBJECT {
                idx.push(s as u32, &sample(&mut rng, c));
            }
        }
        let exact_mem = idx.memory_bytes();
        let t = Instant::now();
        idx.build_approximate_with(params).unwrap();
        let build = t.elapsed().as_secs_f64();
        let probes: Vec<Vec<f32>> = (0..1000)
            .map(|_| {
                let s = (rng.uniform() * subjects as f64) as usize % subjects;
                sample(&mut rng, &centers[s])
            })
            .collect();
        let time = |f: &dyn Fn(&[f32]), count: usize| -> (f64, f64) {
            let mut v: Vec<f64> = probes
                .iter()
                .take(count)
                .map(|p| {
                    let t = Instant::now();
                    f(p);
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            (percentile(&mut v, 0.5), percentile(&mut v, 0.99))
        };
        let exact_count = 300;
        // Steady state: the first queries after a build fault in the graph's pages.
        for p in probes.iter().take(200) {
            std::hint::black_box(idx.search_approx(p, 10));
            std::hint::black_box(idx.search_exact(p, 1));
        }
        let e1 = time(
            &|p| {
                std::hint::black_box(idx.search_exact(p, 1));
            },
            exact_count,
        );
        let e10 = time(
            &|p| {
                std::hint::black_box(idx.search_exact(p, 10));
            },
            exact_count,
        );
        let a1 = time(
            &|p| {
                std::hint::black_box(idx.search_approx(p, 1));
            },
            1000,
        );
        let a10 = time(
            &|p| {
                std::hint::black_box(idx.search_approx(p, 10));
            },
            1000,
        );
        let hits =
            probes.iter().take(exact_count).filter(|p| idx.search_approx(p, 1)[0].subject == idx.search_exact(p, 1)[0].subject).count();
        println!(
            "{n:>9} | {:>8.2} / {:>8.2} ms | {:>8.2} / {:>8.2} ms | {:>8.3} / {:>8.3} ms | {:>8.3} / {:>8.3} ms | {:>8.4} | {build:>8.1} | {:>4} / {:>3} MB",
            e1.0, e1.1, e10.0, e10.1, a1.0, a1.1, a10.0, a10.1, hits as f64 / exact_count as f64, exact_mem >> 20, idx.memory_bytes() >> 20
        );
    }
    println!("memory: exact matrix / matrix + HNSW graph");
}
