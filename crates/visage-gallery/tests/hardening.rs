//! Schema upgrades, the index trait, concurrency with other processes, and hardening of the
//! gallery, on real SQLite files and real child processes.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use visage_core::Metric;
use visage_gallery::{Capabilities, EnrollOptions, Gallery, GalleryError, Hit, IndexOrigin, NewTemplate, OpenOptions, VectorIndex};

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

/// The model these galleries are bound to (dlib's id, as the first visage wrote it in the
/// version-1 file below; any model would do).
const MODEL: &str = "dlib_face_recognition_resnet_model_v1";

fn opts() -> OpenOptions {
    // Any thresholds: the gallery stores the one for its metric when it creates a file.
    OpenOptions::new(MODEL, 128).thresholds(visage_core::Thresholds { l2: 0.6, cosine: 0.093, chi2: 2.86 })
}

fn create(path: &Path) -> Gallery {
    opts().create(true).open(path).unwrap()
}

fn blob(e: &[f32]) -> Vec<u8> {
    e.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn file_holds(path: &Path, needle: &[u8]) -> bool {
    std::fs::read(path).map(|b| b.windows(needle.len()).any(|w| w == needle)).unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// Child processes: this test binary run again with VISAGE_GALLERY_HELPER set.

/// Not a test of its own: the body of the child processes the tests below start.
#[test]
fn child_process_helper() {
    let Ok(job) = std::env::var("VISAGE_GALLERY_HELPER") else { return };
    let (what, path) = job.split_once(':').unwrap();
    let path = Path::new(path);
    match what {
        // Holds a read snapshot (as a long `identify` in another process would).
        "hold-read" => {
            let c = rusqlite::Connection::open(path).unwrap();
            c.execute_batch("BEGIN").unwrap();
            let n: i64 = c.query_row("SELECT count(*) FROM templates", [], |r| r.get(0)).unwrap();
            ready_then_wait(&format!("{n}"));
            c.execute_batch("COMMIT").unwrap();
        }
        // Holds an open write transaction (as a slow `enroll` in another process would).
        "hold-write" => {
            let c = rusqlite::Connection::open(path).unwrap();
            c.execute_batch("BEGIN IMMEDIATE; INSERT INTO meta (key, value) VALUES ('held', 'x')").unwrap();
            ready_then_wait("");
            c.execute_batch("ROLLBACK").unwrap();
        }
        // Reads a gallery it may not write to, and checks writes are refused clearly.
        "read-only" => {
            let g = opts().read_only(true).open(path).unwrap();
            assert_eq!(g.counts().unwrap(), (2, 2));
            assert_eq!(g.search(&emb(1), 1).unwrap()[0].name, "alice");
            assert!(g.distance_to("bob", &emb(2)).unwrap() < 1e-6);
            assert_eq!(g.subjects().unwrap().len(), 2);
            let e = g.enroll("carol", None, &[tpl(emb(3), "c")]).unwrap_err();
            assert!(matches!(e, GalleryError::ReadOnly { .. }) && e.to_string().contains("opened read-only"), "{e}");
            let e = opts().open(path).err().unwrap();
            assert!(matches!(e, GalleryError::ReadOnly { .. }), "{e}");
            assert!(!e.to_string().contains("unable to open"), "{e}");
            println!("read-only checks passed");
        }
        _ => panic!("unknown helper job {what}"),
    }
}

fn ready_then_wait(msg: &str) {
    println!("\nHELPER-READY {msg}");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

fn helper(job: &str, path: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["child_process_helper", "--exact", "--nocapture", "--test-threads", "1"])
        .env("VISAGE_GALLERY_HELPER", format!("{job}:{}", path.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    c
}

/// Starts a helper and waits until it reports it holds its lock.
fn start(job: &str, path: &Path) -> Child {
    let mut child = helper(job, path).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if line.contains("HELPER-READY") {
            // Keep reading what it prints, so it never writes into a closed pipe.
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            return child;
        }
        line.clear();
    }
    let status = child.wait().unwrap();
    panic!("helper {job} ended ({status}) before it was ready");
}

fn finish(mut child: Child) {
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

// ---------------------------------------------------------------------------------------------

#[test]
fn a_version_1_gallery_opens_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    // The file exactly as the first version of visage wrote it.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.execute_batch(visage_gallery::schema::V1).unwrap();
        for (k, v) in [
            ("schema_version", "1"),
            ("model", MODEL),
            ("dim", "128"),
            ("metric", "cosine"),
            ("threshold", "0.093"),
            ("created_at", "1"),
            ("generation", "2"),
        ] {
            c.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", [k, v]).unwrap();
        }
        // An NFD name: the upgrade stores it as NFC.
        c.execute("INSERT INTO subjects (id, name, created_at) VALUES (1, 'alice', 1), (2, 'Jose\u{301}', 1)", []).unwrap();
        for (id, s, seed) in [(1, 1, 1u32), (2, 2, 2)] {
            c.execute(
                "INSERT INTO templates (id, subject_id, embedding, photo_sha256, face_box, created_at) VALUES (?1, ?2, ?3, ?4, '[1,2,3,4]', 1)",
                rusqlite::params![id, s, blob(&emb(seed)), format!("p{id}")],
            )
            .unwrap();
        }
    }
    // Read-only opening reads it as it is (and writes nothing).
    let g = opts().read_only(true).open(&path).unwrap();
    assert_eq!(g.counts().unwrap(), (2, 2));
    drop(g);
    let g = opts().open(&path).unwrap();
    assert_eq!(g.contract().metric, Metric::Cosine);
    assert_eq!(g.counts().unwrap(), (2, 2));
    assert_eq!(g.search(&emb(2), 1).unwrap()[0].name, "Jos\u{e9}");
    assert!(g.distance_to("José", &emb(2)).unwrap() < 1e-6);
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: String = c.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).unwrap();
    let uv: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!((v.as_str(), uv), ("2", visage_gallery::schema::SCHEMA_VERSION));
    // Template ids are never reused after the upgrade: forget the newest, enroll again.
    g.forget("José").unwrap();
    g.enroll("carol", None, &[tpl(emb(3), "p3")]).unwrap();
    let ids: Vec<i64> =
        c.prepare("SELECT id FROM templates ORDER BY id").unwrap().query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(ids, vec![1, 3]);
}

#[test]
fn a_gallery_newer_than_this_code_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    drop(create(&path));
    rusqlite::Connection::open(&path).unwrap().execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'", []).unwrap();
    for o in [opts(), opts().read_only(true)] {
        let e = o.open(&path).err().unwrap();
        assert!(matches!(e, GalleryError::NotAGallery { .. }), "{e}");
        assert!(e.to_string().contains("schema version 99 is newer than this visage knows (2)"), "{e}");
    }
}

/// A test-only index: a plain vector of (id, vector), compared one by one.
struct Naive {
    metric: Metric,
    rows: Mutex<Vec<(i64, Vec<f32>)>>,
    searches: Arc<Mutex<usize>>,
}

impl VectorIndex for Naive {
    fn capabilities(&self) -> Capabilities {
        Capabilities { name: "naive", metrics: &Metric::ALL, exact: true }
    }
    fn len(&self) -> usize {
        self.rows.lock().unwrap().len()
    }
    fn contains(&self, id: i64) -> bool {
        self.rows.lock().unwrap().iter().any(|r| r.0 == id)
    }
    fn add(&self, id: i64, v: &[f32]) -> Result<(), GalleryError> {
        let mut rows = self.rows.lock().unwrap();
        rows.retain(|r| r.0 != id);
        rows.push((id, v.to_vec()));
        Ok(())
    }
    fn remove(&self, id: i64) -> Result<bool, GalleryError> {
        let mut rows = self.rows.lock().unwrap();
        let n = rows.len();
        rows.retain(|r| r.0 != id);
        Ok(rows.len() < n)
    }
    fn search(&self, q: &[f32], n: usize) -> Result<Vec<Hit>, GalleryError> {
        *self.searches.lock().unwrap() += 1;
        let mut v: Vec<Hit> =
            self.rows.lock().unwrap().iter().map(|(id, r)| Hit { id: *id, distance: self.metric.distance(q, r) }).collect();
        v.sort_by(|a, b| a.distance.total_cmp(&b.distance));
        v.truncate(n);
        Ok(v)
    }
    fn distances(&self, q: &[f32], ids: &[i64]) -> Result<Vec<Hit>, GalleryError> {
        let rows = self.rows.lock().unwrap();
        Ok(rows.iter().filter(|r| ids.contains(&r.0)).map(|(id, r)| Hit { id: *id, distance: self.metric.distance(q, r) }).collect())
    }
}

#[test]
fn identify_and_verify_work_through_the_index_trait_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let searches = Arc::new(Mutex::new(0));
    let s2 = searches.clone();
    let factory: visage_gallery::IndexFactory = Arc::new(move |metric, _dim| {
        Ok(Box::new(Naive { metric, rows: Mutex::new(Vec::new()), searches: s2.clone() }) as Box<dyn VectorIndex>)
    });
    let g = opts().create(true).index(factory).open(&path).unwrap();
    // Alice has 3 templates, all nearer the probe than Bob's one: top-2 still lists Bob.
    let a = emb(1);
    let near = |by: f32| a.iter().map(|v| v + by).collect::<Vec<f32>>();
    g.enroll("alice", None, &[tpl(near(0.0), "a1"), tpl(near(0.01), "a2"), tpl(near(0.02), "a3")]).unwrap();
    g.enroll("bob", None, &[tpl(emb(2), "b1")]).unwrap();
    assert_eq!(g.index_origin().unwrap(), IndexOrigin::Custom);
    let r = g.search(&near(0.005), 2).unwrap();
    assert_eq!(r.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), vec!["alice", "bob"]);
    assert!((r[0].distance - (128f32 * 0.005 * 0.005).sqrt()).abs() < 1e-4);
    assert!(*searches.lock().unwrap() >= 1, "the search went through the custom index");
    // Verify: the nearest of the claimed person's templates, through the trait.
    assert!((g.distance_to("alice", &near(0.02)).unwrap()).abs() < 1e-5);
    assert!(g.distance_to("bob", &emb(2)).unwrap() < 1e-6);
    // Enroll and forget update the custom index in place.
    g.enroll("carol", None, &[tpl(emb(3), "c1")]).unwrap();
    assert_eq!(g.search(&emb(3), 1).unwrap()[0].name, "carol");
    g.forget("alice").unwrap();
    assert_eq!(g.search(&a, 1).unwrap()[0].name, "bob");
    assert!(matches!(g.distance_to("alice", &a), Err(GalleryError::UnknownSubject { .. })));
}

#[test]
fn another_handles_changes_reach_the_live_index_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let writer = create(&path);
    writer.enroll("alice", None, &[tpl(emb(1), "a")]).unwrap();
    // A second handle (its own connections, as another process) loads its index now...
    let reader = opts().read_only(true).open(&path).unwrap();
    assert_eq!(reader.search(&emb(1), 1).unwrap()[0].name, "alice");
    // ...and follows enrollments, renames and deletions made through the first.
    writer.enroll("bob", None, &[tpl(emb(2), "b")]).unwrap();
    assert_eq!(reader.search(&emb(2), 1).unwrap()[0].name, "bob");
    writer.rename("bob", "robert").unwrap();
    assert_eq!(reader.search(&emb(2), 1).unwrap()[0].name, "robert");
    writer.forget("robert").unwrap();
    writer.enroll("carol", None, &[tpl(emb(3), "c")]).unwrap();
    let mut names: Vec<String> = reader.search(&emb(2), 5).unwrap().into_iter().map(|m| m.name).collect();
    names.sort();
    assert_eq!(names, vec!["alice", "carol"]);
    assert_eq!(reader.search(&emb(3), 1).unwrap()[0].name, "carol");
}

#[test]
fn searches_run_while_another_thread_enrolls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let g = create(&path);
    g.enroll("seed", None, &[tpl(emb(0), "s")]).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 1..=60u32 {
                g.enroll(&format!("p{i}"), None, &[tpl(emb(i), &format!("{i}"))]).unwrap();
            }
        });
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..200 {
                    let r = g.search(&emb(0), 1).unwrap();
                    assert_eq!(r[0].name, "seed");
                }
            });
        }
    });
    for i in 1..=60u32 {
        assert_eq!(g.search(&emb(i), 1).unwrap()[0].name, format!("p{i}"));
    }
}

#[test]
fn the_same_face_under_two_names_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let g = create(&dir.path().join("g.db"));
    g.enroll("alice", None, &[tpl(emb(1), "photo-sha-0123456789abcdef")]).unwrap();
    let e = g.enroll("bob", None, &[tpl(emb(1), "photo-sha-0123456789abcdef")]).unwrap_err();
    assert!(matches!(e, GalleryError::Duplicate { .. }), "{e}");
    assert!(e.to_string().contains("already enrolled as \"alice\""), "{e}");
    assert_eq!(g.counts().unwrap(), (1, 1), "nothing of bob was kept");
    // Another face of the same photo is fine; so is the same face when allowed.
    let mut other = tpl(emb(2), "photo-sha-0123456789abcdef");
    other.face_box = [10, 20, 30, 40];
    g.enroll("bob", None, &[other]).unwrap();
    let out = g.enroll_with("carol", None, &[tpl(emb(1), "photo-sha-0123456789abcdef")], EnrollOptions { allow_duplicate: true }).unwrap();
    assert_eq!(out.added, 1);
}

#[test]
fn names_are_nfc_counted_in_characters_and_unknown_is_reserved() {
    let dir = tempfile::tempdir().unwrap();
    let g = create(&dir.path().join("g.db"));
    let nfc = "Jos\u{e9} M\u{fc}ller";
    let nfd = "Jose\u{301} Mu\u{308}ller";
    assert_ne!(nfc, nfd);
    g.enroll(nfc, None, &[tpl(emb(1), "a")]).unwrap();
    g.enroll(nfd, None, &[tpl(emb(2), "b")]).unwrap();
    let s = g.subjects().unwrap();
    assert_eq!(s.len(), 1, "one person: {s:?}");
    assert_eq!((s[0].name.as_str(), s[0].templates), (nfc, 2));
    assert!(g.has_photo(nfd, "a").unwrap());
    // 200 two-byte characters are 200 characters, within the limit; 201 are not.
    g.enroll(&"é".repeat(200), None, &[]).unwrap();
    let e = g.enroll(&"é".repeat(201), None, &[]).unwrap_err();
    assert!(e.to_string().contains("1 to 200 characters"), "{e}");
    // A 10,000-character name is not echoed back.
    let e = g.enroll(&"x".repeat(10_000), None, &[]).unwrap_err();
    assert!(e.to_string().len() < 300, "{} bytes", e.to_string().len());
    let e = g.distance_to(&"y".repeat(10_000), &emb(1)).unwrap_err();
    assert!(e.to_string().len() < 300, "{} bytes", e.to_string().len());
    for n in ["unknown", "Unknown", "UNKNOWN"] {
        let e = g.enroll(n, None, &[tpl(emb(3), "u")]).unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
    }
    assert!(g.rename(nfc, "unknown").unwrap_err().to_string().contains("reserved"));
}

#[test]
fn read_only_commands_do_not_wait_for_another_processes_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let g = create(&path);
    g.enroll("alice", None, &[tpl(emb(1), "a")]).unwrap();
    drop(g);
    let writer = start("hold-write", &path);
    let t = Instant::now();
    let g = opts().read_only(true).open(&path).unwrap();
    assert_eq!(g.search(&emb(1), 1).unwrap()[0].name, "alice");
    assert_eq!(g.counts().unwrap(), (1, 1));
    assert_eq!(g.subjects().unwrap().len(), 1);
    assert_eq!(g.threshold().unwrap(), 0.6);
    assert!(g.templates().unwrap().len() == 1);
    // Opening for writing takes no lock either when there is nothing to upgrade.
    let w = opts().open(&path).unwrap();
    assert_eq!(w.counts().unwrap(), (1, 1));
    assert!(t.elapsed() < Duration::from_secs(5), "readers waited {:?} for the writer", t.elapsed());
    finish(writer);
}

#[test]
fn forget_reports_a_pending_erase_while_another_process_holds_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let g = opts().create(true).erase_wait(Duration::from_millis(500)).open(&path).unwrap();
    let secret = emb(7);
    g.enroll("alice", None, &[tpl(emb(1), "a")]).unwrap();
    g.enroll("bob", None, &[tpl(secret.clone(), "b")]).unwrap();
    // Everything into the main file first, so bob's embedding is there.
    drop(g);
    let needle = blob(&secret);
    assert!(file_holds(&path, &needle));
    let g = opts().erase_wait(Duration::from_millis(500)).open(&path).unwrap();
    let reader = start("hold-read", &path);
    let out = g.forget("bob").unwrap();
    assert_eq!((out.templates, out.erased), (1, false), "the reader's snapshot keeps the old pages");
    assert!(file_holds(&path, &needle), "the embedding is indeed still in the main file");
    assert_eq!(g.search(&secret, 1).unwrap()[0].name, "alice", "but bob is gone from searches");
    finish(reader);
    drop(g);
    // The next open for writing finishes the erase.
    let g = opts().open(&path).unwrap();
    drop(g);
    for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
        assert!(!file_holds(&f.path(), &needle), "{} still holds the forgotten embedding", f.path().display());
    }
    let c = rusqlite::Connection::open(&path).unwrap();
    let pending: i64 = c.query_row("SELECT count(*) FROM meta WHERE key = 'pending_erase'", [], |r| r.get(0)).unwrap();
    assert_eq!(pending, 0);
}

#[test]
fn a_gallery_in_a_read_only_folder_can_be_searched() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("ro");
    std::fs::create_dir(&folder).unwrap();
    let path = folder.join("g.db");
    let g = create(&path);
    g.enroll("alice", None, &[tpl(emb(1), "a")]).unwrap();
    g.enroll("bob", None, &[tpl(emb(2), "b")]).unwrap();
    drop(g);
    assert!(!folder.join("g.db-wal").exists(), "closed cleanly: no -wal or -shm left");
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = std::fs::metadata(dir.path()).unwrap().uid() == 0;
    let status = if root {
        // Root writes anywhere: run the check as `nobody`, from a copy of this binary it may run.
        let exe = dir.path().join("helper");
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        use std::os::unix::process::CommandExt;
        let mut c2 = Command::new(&exe);
        c2.args(["child_process_helper", "--exact", "--nocapture", "--test-threads", "1"])
            .env("VISAGE_GALLERY_HELPER", format!("read-only:{}", path.display()))
            .uid(65534)
            .gid(65534);
        c2.output().unwrap()
    } else {
        helper("read-only", &path).stdin(Stdio::null()).output().unwrap()
    };
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = String::from_utf8_lossy(&status.stdout).into_owned() + &String::from_utf8_lossy(&status.stderr);
    assert!(status.status.success() && out.contains("read-only checks passed"), "{out}");
}
