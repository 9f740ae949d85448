//! Moves galleries between SQLite and Milvus, and drives synthetic enrollments for the tests.
//!
//! ```text
//! visage-milvus import GALLERY.db milvus://HOST:PORT/NAME   # SQLite -> Milvus, counts checked
//! visage-milvus export milvus://HOST:PORT/NAME GALLERY.db   # Milvus -> SQLite, counts checked
//! visage-milvus info milvus://HOST:PORT/NAME                # contract, threshold, counts
//! visage-milvus forget milvus://HOST:PORT/NAME NAME         # delete + compaction
//! visage-milvus enroll-synthetic URL PREFIX SUBJECTS PER SEED   # prints "ack NAME" per subject
//! ```

use std::io::Write;
use std::process::ExitCode;

use visage_gallery::NewTemplate;
use visage_gallery_milvus::{export_sqlite, import_sqlite, synthetic, MilvusGallery, MilvusOptions};

fn run(args: &[String]) -> Result<(), String> {
    let e = |e: visage_gallery_milvus::MilvusError| e.to_string();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["import", db, url] => {
            let src = visage_gallery::OpenOptions::any_model().open(std::path::Path::new(db)).map_err(|e| e.to_string())?;
            let c = src.contract().clone();
            let t = src.threshold().map_err(|e| e.to_string())? as f32;
            let dst = MilvusOptions::new(&c.model, c.dim)
                .thresholds(visage_core::Thresholds { l2: t, cosine: t, chi2: t })
                .metric(Some(c.metric))
                .create(true)
                .open(url)
                .map_err(e)?;
            let r = import_sqlite(&src, &dst).map_err(e)?;
            println!("imported {} subject(s), {} template(s) ({} new) into {url}; counts checked", r.subjects, r.templates, r.added);
        }
        ["export", url, db] => {
            let src = MilvusOptions::any_model().open(url).map_err(e)?;
            let r = export_sqlite(&src, std::path::Path::new(db)).map_err(e)?;
            println!("exported {} subject(s), {} template(s) ({} new) into {db}; counts checked", r.subjects, r.templates, r.added);
        }
        ["info", url] => {
            let g = MilvusOptions::any_model().open(url).map_err(e)?;
            let (s, t) = g.counts().map_err(e)?;
            println!("{url}: {}; threshold {}; {s} subject(s), {t} template(s)", g.contract(), g.threshold().map_err(e)?);
        }
        ["forget", url, name] => {
            let g = MilvusOptions::any_model().open(url).map_err(e)?;
            let o = g.forget(name).map_err(e)?;
            println!("forgot {name:?}: {} template(s) deleted; {}", o.templates, if o.erased { "compacted: no copy left in the stored segments" } else { "compaction still running" });
        }
        ["enroll-synthetic", url, prefix, subjects, per, seed] => {
            let (subjects, per, seed): (usize, usize, u64) =
                (subjects.parse().map_err(|_| "SUBJECTS")?, per.parse().map_err(|_| "PER")?, seed.parse().map_err(|_| "SEED")?);
            let g: MilvusGallery = synthetic::options().create(true).open(url).map_err(e)?;
            let out = std::io::stdout();
            for s in 0..subjects {
                let name = format!("{prefix}{s}");
                let ts: Vec<NewTemplate> = synthetic::templates(prefix, s, per, seed);
                g.enroll(&name, None, &ts, false).map_err(e)?;
                let mut o = out.lock();
                writeln!(o, "ack {name}").ok();
                o.flush().ok();
            }
        }
        _ => return Err("usage: visage-milvus import DB URL | export URL DB | info URL | forget URL NAME | enroll-synthetic URL PREFIX SUBJECTS PER SEED".into()),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(m) => {
            eprintln!("visage-milvus: {m}");
            ExitCode::from(2)
        }
    }
}
