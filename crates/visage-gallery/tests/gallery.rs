//! The gallery on a real SQLite file.

use std::path::Path;
use visage_core::{Metric, Thresholds};
use visage_gallery::{Gallery, GalleryError, IndexOrigin, NewTemplate, OpenOptions};

/// The model these galleries are bound to: any id, dimension and thresholds do, since a
/// gallery takes its model's numbers from the caller.
const MODEL: &str = "test_model";
const THRESHOLDS: Thresholds = Thresholds { l2: 0.5, cosine: 0.1, chi2: 2.5 };

fn opts() -> OpenOptions {
    OpenOptions::new(MODEL, 128).thresholds(THRESHOLDS)
}

/// Creates (or opens for writing) a gallery of `metric`.
fn create(path: &Path, metric: Metric) -> Gallery {
    opts().create(true).metric(Some(metric)).open(path).unwrap()
}

/// Opens an existing gallery for writing, whatever its metric.
fn open(path: &Path) -> Gallery {
    opts().open(path).unwrap()
}

fn emb(seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..128)
        .map(|_| {
            s = s.wrapping_mul(1103515245).wrapping_add(12345);
            ((s >> 8) as f32 / (1u32 << 24) as f32) - 0.5
        })
        .collect()
}

fn tpl(e: Vec<f32>, photo: &str) -> NewTemplate {
    NewTemplate { embedding: e, photo_sha256: photo.into(), face_box: [1, 2, 3, 4], source: None }
}

fn near(e: &[f32], by: f32) -> Vec<f32> {
    e.iter().enumerate().map(|(i, v)| v + if i % 2 == 0 { by } else { -by }).collect()
}

#[test]
fn enroll_search_rename_forget() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let g = create(&path, Metric::L2);
    // The model's L2 threshold (THRESHOLDS).
    assert_eq!(g.threshold().unwrap(), 0.5);
    let (a, b) = (emb(1), emb(2));
    assert_eq!(g.enroll("alice", Some(r#"{"team":"x"}"#), &[tpl(a.clone(), "p1")]).unwrap().added, 1);
    assert_eq!(g.enroll("bob", None, &[tpl(b.clone(), "p2"), tpl(near(&b, 0.01), "p3")]).unwrap().added, 2);
    // Re-enrolling the same photo and face is a no-op.
    let again = g.enroll("alice", None, &[tpl(a.clone(), "p1")]).unwrap();
    assert_eq!((again.added, again.already), (0, 1));
    assert!(g.has_photo("alice", "p1").unwrap() && !g.has_photo("alice", "p2").unwrap());

    let r = g.search(&near(&a, 0.02), 2).unwrap();
    assert_eq!(r[0].name, "alice");
    assert!((r[0].distance - (128f32 * 0.02 * 0.02).sqrt()).abs() < 1e-4);
    assert_eq!(r[1].name, "bob");
    assert!(g.distance_to("bob", &b).unwrap() < 1e-6);
    assert!(matches!(g.distance_to("carol", &b), Err(GalleryError::UnknownSubject { .. })));

    let subjects = g.subjects().unwrap();
    assert_eq!(subjects.iter().map(|s| (s.name.as_str(), s.templates)).collect::<Vec<_>>(), vec![("alice", 1), ("bob", 2)]);
    assert_eq!(subjects[0].metadata.as_deref(), Some(r#"{"team":"x"}"#));

    g.rename("bob", "robert").unwrap();
    assert!(matches!(g.rename("robert", "alice"), Err(GalleryError::NameTaken { .. })));
    assert!(matches!(g.rename("nobody", "x"), Err(GalleryError::UnknownSubject { .. })));
    assert_eq!(g.search(&b, 1).unwrap()[0].name, "robert");

    // Forget leaves no copy of the face in the file or its log.
    let needle: Vec<u8> = b.iter().flat_map(|x| x.to_le_bytes()).collect();
    let out = g.forget("robert").unwrap();
    assert_eq!((out.templates, out.erased), (2, true));
    drop(g);
    for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let bytes = std::fs::read(f.path()).unwrap();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_slice()), "{} still holds the forgotten embedding", f.path().display());
    }
    let g = open(&path);
    assert_eq!(g.counts().unwrap(), (1, 1));
    assert_eq!(g.search(&b, 1).unwrap()[0].name, "alice");
}

#[test]
fn the_contract_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let g = create(&path, Metric::Cosine);
    let e = g.enroll("x", None, &[tpl(vec![0.0; 64], "p")]).unwrap_err();
    assert!(matches!(e, GalleryError::Contract { .. }), "{e}");
    assert!(e.to_string().contains("128-d"), "{e}");
    let mut nan = emb(3);
    nan[5] = f32::NAN;
    assert!(g.enroll("x", None, &[tpl(nan, "p")]).is_err());
    assert!(g.enroll(" x", None, &[]).is_err(), "names are trimmed");
    assert!(g.enroll("x", Some("not json"), &[]).is_err());
    drop(g);
    // Another model or dimension is refused on open; the metric stays the gallery's own.
    let e = OpenOptions::new("some_other_model", 128).open(&path).err().unwrap();
    assert!(matches!(e, GalleryError::Contract { .. }), "{e}");
    assert!(matches!(OpenOptions::new(MODEL, 512).open(&path), Err(GalleryError::Contract { .. })));
    // A metric that contradicts the gallery's is refused, not silently ignored.
    let e = opts().create(true).metric(Some(Metric::L2)).open(&path).err().unwrap();
    assert!(matches!(e, GalleryError::Contract { .. }), "{e}");
    assert!(e.to_string().contains("compared by cosine") && e.to_string().contains("metric l2"), "{e}");
    let g = opts().metric(Some(Metric::Cosine)).open(&path).unwrap();
    assert_eq!(g.contract().metric, Metric::Cosine);
    let g = open(&path);
    assert_eq!(g.contract().metric, Metric::Cosine);
    // It started with the model's threshold for its metric, stored as the f32's shortest
    // decimal form (0.1, not 0.10000000149011612).
    assert_eq!(g.threshold().unwrap(), 0.1);
}

#[test]
fn a_new_gallery_takes_its_model_and_thresholds_from_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    // Without the model's thresholds nothing is created, not even an empty file.
    let e = OpenOptions::new(MODEL, 128).create(true).open(&path).err().unwrap();
    assert!(matches!(e, GalleryError::Invalid(_)) && e.to_string().contains("thresholds"), "{e}");
    assert!(OpenOptions::any_model().create(true).open(&path).is_err());
    assert!(!path.exists());
    // A descriptor gives all three.
    let d = visage_core::ModelDescriptor {
        id: "another_model".into(),
        dim: 4,
        chip: visage_core::ChipGeometry { size: 10, padding: 0.0 },
        landmarks: visage_core::LandmarkScheme::Dlib5,
        input: visage_core::InputNormalization { mean: [0.0; 3], scale: 1.0 },
        thresholds: Thresholds { l2: 0.25, cosine: 0.05, chi2: 1.5 },
    };
    let g = OpenOptions::for_model(&d).create(true).metric(Some(Metric::Chi2)).open(&path).unwrap();
    assert_eq!(g.threshold().unwrap(), 1.5);
    g.enroll("a", None, &[tpl(vec![0.5; 4], "p")]).unwrap();
    drop(g);
    // Opened for the file's own model: for work that needs no embedder, and checked against one.
    let g = OpenOptions::any_model().read_only(true).open(&path).unwrap();
    assert_eq!((g.contract().model.as_str(), g.contract().dim, g.contract().metric), ("another_model", 4, Metric::Chi2));
    assert_eq!(g.subjects().unwrap().len(), 1);
    assert_eq!(g.search(&[0.5; 4], 1).unwrap()[0].distance, 0.0);
    assert!(matches!(g.search(&[0.5; 3], 1), Err(GalleryError::Contract { .. })));
    g.check_model(&d).unwrap();
    let other = visage_core::ModelDescriptor { dim: 8, ..d.clone() };
    let e = g.check_model(&other).unwrap_err();
    assert!(matches!(e, GalleryError::Contract { .. }) && e.to_string().contains("8-d embeddings of another_model"), "{e}");
    let other = visage_core::ModelDescriptor { id: MODEL.into(), ..d };
    assert!(matches!(g.check_model(&other), Err(GalleryError::Contract { .. })));
    drop(g);
    let g = OpenOptions::any_model().open(&path).unwrap();
    g.rename("a", "b").unwrap();
    assert_eq!(g.subjects().unwrap()[0].name, "b");
}

#[test]
fn foreign_files_are_not_galleries() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.db");
    assert!(matches!(opts().open(&missing), Err(GalleryError::NotAGallery { .. })));
    assert!(matches!(opts().read_only(true).create(true).open(&missing), Err(GalleryError::NotAGallery { .. })));
    assert!(!missing.exists(), "opening without create must not create a file");
    let text = dir.path().join("notes.db");
    std::fs::write(&text, "hello, this is not sqlite at all, just some text that is long enough").unwrap();
    let e = opts().create(true).open(&text).err().unwrap();
    assert!(matches!(e, GalleryError::NotAGallery { .. }), "{e}");
    let other = dir.path().join("other.db");
    rusqlite_free_other_db(&other);
    let e = opts().create(true).open(&other).err().unwrap();
    assert!(matches!(e, GalleryError::NotAGallery { .. }), "{e}");
}

/// A SQLite database of some other application.
fn rusqlite_free_other_db(path: &std::path::Path) {
    drop(create(path, Metric::L2));
    // Turn it into a foreign database: drop visage's meta table.
    let c = ::rusqlite::Connection::open(path).unwrap();
    c.execute_batch("DROP TABLE meta; CREATE TABLE cats (name TEXT);").unwrap();
}

#[test]
fn threads_writing_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    create(&path, Metric::L2);
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let path = &path;
            s.spawn(move || {
                // Each thread has its own connection, as separate processes would.
                let g = open(path);
                for i in 0..25 {
                    g.enroll(&format!("p{t}_{i}"), None, &[tpl(emb(t * 100 + i), &format!("{t}/{i}"))]).unwrap();
                }
            });
        }
    });
    let g = open(&path);
    assert_eq!(g.counts().unwrap(), (100, 100));
}

#[test]
fn the_hnsw_graph_is_cached_beside_the_file_and_never_used_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let g = opts().create(true).approx_threshold(100).open(&path).unwrap();
    for s in 0..150u32 {
        g.enroll(&format!("p{s}"), None, &[tpl(emb(s), &format!("{s}a")), tpl(near(&emb(s), 0.01), &format!("{s}b"))]).unwrap();
    }
    let probe = near(&emb(77), 0.015);
    assert_eq!(g.search(&probe, 1).unwrap()[0].name, "p77");
    assert!(g.is_approximate().unwrap());
    let cache = dir.path().join("g.db.hnsw");
    let tag = dir.path().join("g.db.hnsw.generation");
    assert!(cache.exists() && tag.exists(), "the graph is saved beside the gallery");
    assert_eq!(g.index_origin().unwrap(), IndexOrigin::Built);
    drop(g);

    // Reopened unchanged: the cached graph is loaded, not rebuilt.
    let g = opts().approx_threshold(100).open(&path).unwrap();
    assert_eq!(g.search(&probe, 3).unwrap()[0].name, "p77");
    assert_eq!(g.index_origin().unwrap(), IndexOrigin::Cached);

    // An enrollment updates the graph in place: the newcomer is found at once, without a
    // rebuild; the file on disk is now stale, so the next open builds it again.
    let newcomer = emb(9999);
    g.enroll("newcomer", None, &[tpl(newcomer.clone(), "n")]).unwrap();
    assert_eq!(g.search(&newcomer, 1).unwrap()[0].name, "newcomer");
    assert_eq!(g.index_origin().unwrap(), IndexOrigin::Cached);
    drop(g);
    let g = opts().approx_threshold(100).open(&path).unwrap();
    assert_eq!(g.search(&newcomer, 1).unwrap()[0].name, "newcomer");
    assert_eq!(g.index_origin().unwrap(), IndexOrigin::Built);
    // Saving the live graph makes the next open load it.
    g.enroll("late", None, &[tpl(emb(4242), "late")]).unwrap();
    assert!(g.save_index().unwrap());
    drop(g);
    let g = opts().approx_threshold(100).open(&path).unwrap();
    assert_eq!(g.search(&emb(4242), 1).unwrap()[0].name, "late");
    assert_eq!(g.index_origin().unwrap(), IndexOrigin::Cached);
    drop(g);
    // A cache file that does not fit (here: garbage) is ignored.
    std::fs::write(&cache, b"garbage").unwrap();
    let g = opts().approx_threshold(100).open(&path).unwrap();
    assert_eq!(g.search(&newcomer, 1).unwrap()[0].name, "newcomer");
    assert_eq!(g.index_origin().unwrap(), IndexOrigin::Built);
}

#[test]
fn forget_also_deletes_the_cached_graph() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let g = opts().create(true).approx_threshold(10).open(&path).unwrap();
    for s in 0..20u32 {
        g.enroll(&format!("p{s}"), None, &[tpl(emb(s), &format!("{s}"))]).unwrap();
    }
    g.search(&emb(3), 1).unwrap();
    assert!(dir.path().join("g.db.hnsw").exists());
    g.forget("p3").unwrap();
    assert!(!dir.path().join("g.db.hnsw").exists(), "the graph with p3's vector must go");
    assert_ne!(g.search(&emb(3), 1).unwrap()[0].name, "p3");
    // The graph it was removed from may still hold the vector's bytes: it is never saved.
    assert!(!g.save_index().unwrap());
    assert!(!dir.path().join("g.db.hnsw").exists());
}
