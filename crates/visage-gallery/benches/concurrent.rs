//! Enrollment and search at the same time on one gallery file of synthetic templates.
//!
//! `cargo bench -p visage-gallery --bench concurrent` (1M templates; `BENCH_SIZE=100000` or
//! `-- 100000` for a quick run). The gallery (4 templates per subject with the LFW spectrum of
//! common/mod.rs) is written once to `BENCH_DIR` (default `$TMPDIR/visage-bench-concurrent`)
//! and reused; its HNSW graph is cached beside it. Prints search p50/p99 with 2 threads
//! searching alone and the same searches while a third thread enrolls new people (one
//! template each, `BENCH_ENROLL_HZ` per second, default 50; rounds of both alternate), and
//! those enrollments' latency.

mod common;

use common::{p50_p99, Population, DIM, MODEL, PER_SUBJECT, THRESHOLDS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use visage_gallery::{Gallery, NewTemplate, OpenOptions};

const SEARCHERS: usize = 2;
const ROUNDS: usize = 10;

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

/// Writes `n` templates straight into a new gallery file in one transaction.
fn write_gallery(path: &std::path::Path, n: usize, pop: &mut Population) {
    drop(OpenOptions::new(MODEL, DIM).thresholds(THRESHOLDS).create(true).open(path).unwrap());
    let mut c = rusqlite::Connection::open(path).unwrap();
    let tx = c.transaction().unwrap();
    {
        let mut subj = tx.prepare("INSERT INTO subjects (id, name, created_at) VALUES (?1, ?2, 0)").unwrap();
        let mut tpl = tx
            .prepare(
                "INSERT INTO templates (subject_id, embedding, photo_sha256, face_box, created_at) VALUES (?1, ?2, ?3, '[0,0,1,1]', 0)",
            )
            .unwrap();
        for s in 0..n / PER_SUBJECT {
            subj.execute(rusqlite::params![s as i64 + 1, format!("s{s}")]).unwrap();
            for j in 0..PER_SUBJECT {
                let v: Vec<u8> = pop.sample(s).iter().flat_map(|x| x.to_le_bytes()).collect();
                tpl.execute(rusqlite::params![s as i64 + 1, v, format!("{s}/{j}")]).unwrap();
            }
        }
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', '1') ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        [],
    )
    .unwrap();
    tx.commit().unwrap();
}

fn main() {
    let arg: Option<usize> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).find_map(|a| a.parse().ok());
    let n = arg.unwrap_or_else(|| env_or("BENCH_SIZE", 1_000_000usize));
    let hz: f64 = env_or("BENCH_ENROLL_HZ", 50.0);
    let queries: usize = env_or("BENCH_QUERIES", 2000);
    let dir = std::env::var_os("BENCH_DIR").map(Into::into).unwrap_or_else(|| std::env::temp_dir().join("visage-bench-concurrent"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("g{n}.db"));
    let subjects = n / PER_SUBJECT;
    let mut pop = Population::new(subjects, n as u64);
    if !path.exists() {
        let t = Instant::now();
        write_gallery(&path, n, &mut pop);
        println!("wrote {n} templates to {} in {:.1} s", path.display(), t.elapsed().as_secs_f64());
    }
    let g = OpenOptions::new(MODEL, DIM).open(&path).unwrap();
    let t = Instant::now();
    g.search(&pop.sample(0), 1).unwrap();
    let (s, tcount) = g.counts().unwrap();
    println!(
        "gallery {}: {s} subjects, {tcount} templates; index {:?} ready in {:.1} s; {} threads",
        path.display(),
        g.index_origin().unwrap(),
        t.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    let probes: Vec<Vec<f32>> = (0..queries)
        .map(|_| {
            let s = pop.any_subject();
            pop.sample(s)
        })
        .collect();
    for p in probes.iter().take(500) {
        std::hint::black_box(g.search(p, 1).unwrap());
    }
    // 2 threads search a slice of the probes (each probe twice), timing every search.
    let search = |g: &Gallery, probes: &[Vec<f32>]| -> Vec<f64> {
        let mut all = Vec::new();
        std::thread::scope(|sc| {
            let hs: Vec<_> = (0..SEARCHERS)
                .map(|t| {
                    sc.spawn(move || {
                        probes
                            .iter()
                            .skip(t)
                            .step_by(SEARCHERS)
                            .chain(probes.iter().skip(t).step_by(SEARCHERS))
                            .map(|p| {
                                let t = Instant::now();
                                std::hint::black_box(g.search(p, 1).unwrap());
                                t.elapsed().as_secs_f64() * 1e3
                            })
                            .collect::<Vec<f64>>()
                    })
                })
                .collect();
            for h in hs {
                all.extend(h.join().unwrap());
            }
        });
        all
    };
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut fresh: Vec<Vec<f32>> = (0..100_000)
        .map(|_| {
            let s = pop.new_subject();
            pop.sample(s)
        })
        .collect();
    // Rounds alternate searching alone and searching while a third thread enrolls new people at
    // `hz`, on the same probes, so that other load on the machine weighs on both alike.
    let (mut alone, mut during, mut enrolls) = (Vec::new(), Vec::new(), Vec::new());
    let mut next_new = 0usize;
    for chunk in probes.chunks(probes.len().div_ceil(ROUNDS)) {
        alone.extend(search(&g, chunk));
        let stop = AtomicBool::new(false);
        std::thread::scope(|sc| {
            let writer = sc.spawn(|| {
                let mut lat = Vec::new();
                let period = Duration::from_secs_f64(1.0 / hz);
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) && next_new < fresh.len() {
                    let i = next_new;
                    let t = NewTemplate {
                        embedding: std::mem::take(&mut fresh[i]),
                        photo_sha256: format!("new/{run}/{i}"),
                        face_box: [0, 0, 1, 1],
                        source: None,
                    };
                    let t0 = Instant::now();
                    g.enroll(&format!("new-{run}-{i}"), None, &[t]).unwrap();
                    lat.push(t0.elapsed().as_secs_f64() * 1e3);
                    next_new += 1;
                    next += period;
                    if let Some(d) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    }
                }
                lat
            });
            during.extend(search(&g, chunk));
            stop.store(true, Ordering::Relaxed);
            enrolls.extend(writer.join().unwrap());
        });
    }
    let (a, d, e) = (p50_p99(&mut alone), p50_p99(&mut during), p50_p99(&mut enrolls));
    println!("{:<40} | {:>9} | {:>9} | {:>7}", "", "p50 ms", "p99 ms", "count");
    println!("{:<40} | {:>9.3} | {:>9.3} | {:>7}", format!("search top-1, {SEARCHERS} threads, alone"), a.0, a.1, alone.len());
    println!("{:<40} | {:>9.3} | {:>9.3} | {:>7}", format!("search top-1, {SEARCHERS} threads, enrolling"), d.0, d.1, during.len());
    println!("{:<40} | {:>9.3} | {:>9.3} | {:>7}", format!("enroll 1 template at {hz}/s, searching"), e.0, e.1, enrolls.len());
    println!("search p99 while enrolling / alone: {:.2}x", d.1 / a.1);
    // The newcomers are found, and the next run can load the updated graph.
    let saved = g.save_index().unwrap();
    println!("graph saved for the next run: {saved}");
}
