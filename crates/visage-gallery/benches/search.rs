//! Gallery search on synthetic 128-d galleries of 10k, 100k and 1M templates.
//!
//! `cargo bench -p visage-gallery --bench search` (BENCH_SIZES=10000,100000 to choose).
//! The data (common/mod.rs) imitates dlib embeddings measured on LFW: 4 templates per subject
//! with the real within-person spread; probes are fresh samples of enrolled subjects. Prints
//! p50/p99 latency of exact and approximate (HNSW) top-1 and top-10 subjects (both through
//! the `VectorIndex` trait, with the gallery's decision rule above it), recall@1 of the
//! approximate index against exact search, build time and memory.
//! BENCH_HNSW=M,efConstruction,ef,f16|f32 overrides the graph settings.

mod common;

use common::{p50_p99, Population, DIM, PER_SUBJECT};
use std::time::Instant;
use visage_core::Metric;
use visage_gallery::{ExactIndex, HnswIndex, HnswParams, SearchIndex};

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
        let subjects = n / PER_SUBJECT;
        let mut pop = Population::new(subjects, n as u64);
        let rows: Vec<(i64, i64, Vec<f32>)> = (0..subjects)
            .flat_map(|s| (0..PER_SUBJECT).map(move |_| s))
            .enumerate()
            .map(|(i, s)| (i as i64, s as i64, pop.sample(s)))
            .collect();
        let items: Vec<(i64, i64, &[f32])> = rows.iter().map(|(i, s, v)| (*i, *s, v.as_slice())).collect();
        let exact = SearchIndex::with_index(Box::new(ExactIndex::new(Metric::L2, DIM)));
        exact.insert_batch(&items).unwrap();
        let exact_mem = exact.memory_bytes();
        let t = Instant::now();
        let approx = SearchIndex::with_index(Box::new(HnswIndex::new(Metric::L2, DIM, params).unwrap()));
        approx.insert_batch(&items).unwrap();
        let build = t.elapsed().as_secs_f64();
        drop(rows);
        let probes: Vec<Vec<f32>> = (0..1000)
            .map(|_| {
                let s = pop.any_subject();
                pop.sample(s)
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
            p50_p99(&mut v)
        };
        let exact_count = 300;
        // Steady state: the first queries after a build fault in the graph's pages.
        for p in probes.iter().take(200) {
            std::hint::black_box(approx.search(p, 10).unwrap());
            std::hint::black_box(exact.search(p, 1).unwrap());
        }
        let e1 = time(&|p| drop(std::hint::black_box(exact.search(p, 1).unwrap())), exact_count);
        let e10 = time(&|p| drop(std::hint::black_box(exact.search(p, 10).unwrap())), exact_count);
        let a1 = time(&|p| drop(std::hint::black_box(approx.search(p, 1).unwrap())), 1000);
        let a10 = time(&|p| drop(std::hint::black_box(approx.search(p, 10).unwrap())), 1000);
        let hits = probes
            .iter()
            .take(exact_count)
            .filter(|p| approx.search(p, 1).unwrap()[0].subject == exact.search(p, 1).unwrap()[0].subject)
            .count();
        println!(
            "{n:>9} | {:>8.2} / {:>8.2} ms | {:>8.2} / {:>8.2} ms | {:>8.3} / {:>8.3} ms | {:>8.3} / {:>8.3} ms | {:>8.4} | {build:>8.1} | {:>4} / {:>3} MB",
            e1.0,
            e1.1,
            e10.0,
            e10.1,
            a1.0,
            a1.1,
            a10.0,
            a10.1,
            hits as f64 / exact_count as f64,
            exact_mem >> 20,
            approx.memory_bytes() >> 20
        );
    }
    println!("memory: exact index / HNSW index (which holds the vectors too)");
}
