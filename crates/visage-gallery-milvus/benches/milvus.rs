//! Milvus against the embedded HNSW, on the same synthetic gallery, in the same run.
//!
//! The templates are the search benchmark's (crates/visage-gallery/benches/common: the LFW
//! spectrum of dlib embeddings, 4 templates per subject). Needs a server:
//! `VISAGE_MILVUS=milvus://127.0.0.1:19530 BENCH_SIZES=100000 cargo bench -p visage-gallery-milvus --bench milvus`
//! (scripts/bench-milvus.sh starts one in a namespace). Prints, per size: Milvus insert
//! throughput, its index build time (flush until the HNSW index covers every segment), search
//! p50/p99 for top-1 and top-10 subjects at `Strong` consistency (the gallery's default) and at
//! `Bounded`, recall@1 against the exact scan at the gallery's ef and at the embedded index's
//! ef; then the embedded HNSW's build time, p50/p99 and recall@1.

#[path = "../../visage-gallery/benches/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{p50_p99, Population, DIM, PER_SUBJECT, THRESHOLDS};
use visage_core::Metric;
use visage_gallery::{ExactIndex, HnswIndex, HnswParams, NewTemplate, SearchIndex};
use visage_gallery_milvus::{MilvusOptions, SearchConsistency};

fn main() {
    let base = std::env::var("VISAGE_MILVUS").expect("VISAGE_MILVUS=milvus://HOST:PORT (a running server)");
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000]);
    let probes_n: usize = std::env::var("BENCH_PROBES").ok().and_then(|s| s.parse().ok()).unwrap_or(500);
    let params = HnswParams::default();
    println!("Milvus 2.3.5 standalone (HNSW M 16, efConstruction 64, ef 4x the templates fetched) vs embedded HNSW {params:?}; {DIM}-d L2, {} threads", rayon::current_num_threads());
    for &n in &sizes {
        let subjects = n / PER_SUBJECT;
        let mut pop = Population::new(subjects, n as u64);
        let rows: Vec<(String, NewTemplate)> = (0..subjects)
            .flat_map(|s| (0..PER_SUBJECT).map(move |i| (s, i)))
            .map(|(s, i)| {
                let e = pop.sample(s);
                (
                    format!("s{s}"),
                    NewTemplate { embedding: e, photo_sha256: format!("{s:032x}{i:032x}"), face_box: [0, 0, 99, 99], source: None },
                )
            })
            .collect();
        let probes: Vec<(usize, Vec<f32>)> = (0..probes_n)
            .map(|_| {
                let s = pop.any_subject();
                (s, pop.sample(s))
            })
            .collect();

        // Ground truth: the exact scan.
        let items: Vec<(i64, i64, &[f32])> =
            rows.iter().enumerate().map(|(i, (_, t))| (i as i64, (i / PER_SUBJECT) as i64, t.embedding.as_slice())).collect();
        let exact = SearchIndex::with_index(Box::new(ExactIndex::new(Metric::L2, DIM)));
        exact.insert_batch(&items).unwrap();
        let truth: Vec<i64> = probes.iter().map(|(_, p)| exact.search(p, 1).unwrap()[0].subject).collect();

        // Milvus.
        let url = format!("{base}/bench_{n}");
        let g = MilvusOptions::new(common::MODEL, DIM).thresholds(THRESHOLDS).create(true).open(&url).unwrap();
        if g.template_count().unwrap() > 0 {
            let old = g;
            old.drop_gallery().unwrap();
            std::thread::sleep(Duration::from_secs(2));
        }
        let g = MilvusOptions::new(common::MODEL, DIM).thresholds(THRESHOLDS).create(true).open(&url).unwrap();
        eprintln!("{n}: loading into Milvus");
        let t = Instant::now();
        g.bulk_load(&rows).unwrap();
        let insert_s = t.elapsed().as_secs_f64();
        eprintln!("{n}: inserted in {insert_s:.1} s; waiting for the index");
        let t = Instant::now();
        let indexed = g.flush_and_wait_index(Duration::from_secs(1800)).unwrap();
        let index_s = t.elapsed().as_secs_f64();
        assert_eq!(g.template_count().unwrap(), n);
        for (_, p) in probes.iter().take(50) {
            g.search(p, 10).unwrap();
        }
        let time = |f: &dyn Fn(&[f32])| {
            let mut v: Vec<f64> = probes
                .iter()
                .map(|(_, p)| {
                    let t = Instant::now();
                    f(p);
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            p50_p99(&mut v)
        };
        let m1 = time(&|p| drop(g.search(p, 1).unwrap()));
        let m10 = time(&|p| drop(g.search(p, 10).unwrap()));
        let m_hits = probes.iter().zip(&truth).filter(|((_, p), t)| g.search(p, 1).unwrap()[0].name == format!("s{t}")).count();
        let wide = params.expansion_search;
        let m_hits_wide =
            probes.iter().zip(&truth).filter(|((_, p), t)| g.search_with(p, 1, wide).unwrap()[0].name == format!("s{t}")).count();
        eprintln!("{n}: Milvus at Strong measured; now Bounded");
        let b = MilvusOptions::new(common::MODEL, DIM).search_consistency(SearchConsistency::Bounded).open(&url).unwrap();
        for (_, p) in probes.iter().take(50) {
            b.search(p, 10).unwrap();
        }
        let b1 = time(&|p| drop(b.search(p, 1).unwrap()));
        let b10 = time(&|p| drop(b.search(p, 10).unwrap()));
        let bw1 = time(&|p| drop(b.search_with(p, 1, wide).unwrap()));

        eprintln!("{n}: Milvus measured; building the embedded HNSW");
        // Embedded HNSW, same data.
        let t = Instant::now();
        let approx = SearchIndex::with_index(Box::new(HnswIndex::new(Metric::L2, DIM, params).unwrap()));
        approx.insert_batch(&items).unwrap();
        let build_s = t.elapsed().as_secs_f64();
        for (_, p) in probes.iter().take(50) {
            approx.search(p, 10).unwrap();
        }
        let h1 = time(&|p| drop(approx.search(p, 1).unwrap()));
        let h10 = time(&|p| drop(approx.search(p, 10).unwrap()));
        let h_hits = probes.iter().zip(&truth).filter(|((_, p), t)| approx.search(p, 1).unwrap()[0].subject == **t).count();
        let e1 = time(&|p| drop(exact.search(p, 1).unwrap()));

        println!("{n} templates ({subjects} subjects), {probes_n} probes:");
        println!(
            "  Milvus    insert {:>8.0} templates/s ({insert_s:.1} s) | index build {index_s:>6.1} s{} | recall@1 {:.4} (ef 64), {:.4} (ef {wide})",
            n as f64 / insert_s,
            if indexed { "" } else { " (NOT finished)" },
            m_hits as f64 / probes_n as f64,
            m_hits_wide as f64 / probes_n as f64
        );
        println!("  Milvus    Strong   top-1 p50/p99 {:>7.2} / {:>7.2} ms | top-10 {:>7.2} / {:>7.2} ms", m1.0, m1.1, m10.0, m10.1);
        println!(
            "  Milvus    Bounded  top-1 p50/p99 {:>7.2} / {:>7.2} ms | top-10 {:>7.2} / {:>7.2} ms | top-1 at ef {wide} {:>7.2} / {:>7.2} ms",
            b1.0, b1.1, b10.0, b10.1, bw1.0, bw1.1
        );
        println!(
            "  embedded  HNSW build {build_s:>6.1} s ({:>8.0} templates/s) | top-1 p50/p99 {:>6.3} / {:>6.3} ms | top-10 {:>6.3} / {:>6.3} ms | recall@1 {:.4}",
            n as f64 / build_s,
            h1.0,
            h1.1,
            h10.0,
            h10.1,
            h_hits as f64 / probes_n as f64
        );
        println!("  exact scan top-1 p50/p99 {:.2} / {:.2} ms (the ground truth)", e1.0, e1.1);
        drop(b);
        g.drop_gallery().unwrap();
    }
}
