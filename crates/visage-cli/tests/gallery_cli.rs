//! The gallery through the `visage` binary: one-shot enrollment, verify, identify, refusals,
//! a process killed mid-enrollment, and two processes writing at once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn visage(gallery: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage")).arg("--gallery").arg(gallery).arg("-q").args(args).output().expect("run visage")
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn lfw(test: &str) -> Option<PathBuf> {
    visage_testdata::data_dir(test).map(|d| d.join("lfw/images"))
}

fn photo(lfw: &Path, person: &str, n: usize) -> String {
    lfw.join(person).join(format!("{person}_{n:04}.jpg")).to_string_lossy().into_owned()
}

#[test]
fn one_shot_enrollment_then_verify_and_identify() {
    let Some(lfw) = lfw("one_shot_enrollment_then_verify_and_identify") else { return };
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("g.db");
    for person in ["George_W_Bush", "Colin_Powell", "Tony_Blair"] {
        let o = visage(&g, &["enroll", person, &photo(&lfw, person, 1)]);
        assert!(o.status.success(), "{}", err(&o));
    }
    // 1:1 with a different photo of the same person, and of someone else.
    let o = visage(&g, &["verify", "Colin_Powell", &photo(&lfw, "Colin_Powell", 2), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{} {}", out(&o), err(&o));
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert!(v["distance"].as_f64().unwrap() < 0.6 && v["match"] == true);
    let o = visage(&g, &["verify", "Tony_Blair", &photo(&lfw, "Colin_Powell", 2)]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).starts_with("no match"));
    // 1:N: known people by name, a never-enrolled person as unknown.
    let o = visage(
        &g,
        &[
            "identify",
            "--json",
            "--top",
            "3",
            &photo(&lfw, "George_W_Bush", 2),
            &photo(&lfw, "Tony_Blair", 3),
            &photo(&lfw, "Gerhard_Schroeder", 1),
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let names: Vec<String> = out(&o)
        .lines()
        .map(|l| {
            let f = &serde_json::from_str::<serde_json::Value>(l).unwrap()["faces"][0];
            format!("{} {}", f["decision"].as_str().unwrap(), f["name"].as_str().unwrap_or("null"))
        })
        .collect();
    assert_eq!(names, ["match George_W_Bush", "match Tony_Blair", "unknown null"]);
    let first: serde_json::Value = serde_json::from_str(out(&o).lines().next().unwrap()).unwrap();
    assert_eq!(first["faces"][0]["candidates"].as_array().unwrap().len(), 3);
    // Subjects, rename, forget.
    assert!(visage(&g, &["subjects", "rename", "Tony_Blair", "Blair"]).status.success());
    let list = out(&visage(&g, &["subjects", "list", "--json"]));
    assert!(list.contains("\"Blair\"") && !list.contains("Tony_Blair"), "{list}");
    assert!(visage(&g, &["forget", "Blair"]).status.success());
    let o = visage(&g, &["verify", "Blair", &photo(&lfw, "Tony_Blair", 3)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("no one called \"Blair\""), "{}", err(&o));
}

#[test]
fn unusable_photos_are_refused_by_name_and_nothing_is_enrolled() {
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("g.db");
    let blank = dir.path().join("blank.png");
    image::RgbImage::from_pixel(200, 200, image::Rgb([90, 90, 90])).save(&blank).unwrap();
    let o = visage(&g, &["enroll", "someone", &blank.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("blank.png: no face found"), "{}", err(&o));
    assert!(!g.exists(), "a refused enrollment must not even create the gallery");
    let Some(oracle) = visage_testdata::oracle_dir("unusable_photos_are_refused_by_name_and_nothing_is_enrolled") else { return };
    let group = oracle.join("images/t1.jpg").to_string_lossy().into_owned();
    let o = visage(&g, &["enroll", "someone", &group]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("t1.jpg: 6 faces found; choose one with --face N"), "{}", err(&o));
    // With a good photo and a bad one, the whole command is refused.
    let o = visage(&g, &["enroll", "someone", &group, &blank.to_string_lossy(), "--largest"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("blank.png"));
    let o = visage(&g, &["enroll", "someone", &group, "--face", "9"]);
    assert!(err(&o).contains("--face 9 asked for, but the photo has 6"), "{}", err(&o));
    assert!(visage(&g, &["enroll", "someone", &group, "--face", "2"]).status.success());
    assert!(visage(&g, &["enroll", "other", &group, "--largest"]).status.success());
    let list = out(&visage(&g, &["subjects", "list", "--json"]));
    assert_eq!(list.lines().count(), 2, "{list}");
}

/// A folder of `people` LFW people with up to `per` photos each (symlinked).
fn lfw_folder(lfw: &Path, root: &Path, skip: usize, people: usize, per: usize) -> usize {
    let mut names: Vec<PathBuf> = std::fs::read_dir(lfw).unwrap().flatten().map(|e| e.path()).collect();
    names.sort();
    let mut photos = 0;
    for person in names.iter().filter(|p| std::fs::read_dir(p).unwrap().count() >= per).skip(skip).take(people) {
        let dst = root.join(person.file_name().unwrap());
        std::fs::create_dir_all(&dst).unwrap();
        let mut files: Vec<PathBuf> = std::fs::read_dir(person).unwrap().flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files.iter().take(per) {
            std::os::unix::fs::symlink(f, dst.join(f.file_name().unwrap())).unwrap();
            photos += 1;
        }
    }
    photos
}

fn template_count(g: &Path) -> i64 {
    let c = rusqlite::Connection::open_with_flags(g, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.query_row("SELECT count(*) FROM templates", [], |r| r.get(0)).unwrap_or(0)
}

fn check_consistent(g: &Path) {
    let c = rusqlite::Connection::open(g).unwrap();
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    let dups: i64 = c
        .query_row("SELECT count(*) FROM (SELECT 1 FROM templates GROUP BY subject_id, photo_sha256 HAVING count(*) > 1)", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dups, 0, "duplicate templates");
    let orphans: i64 =
        c.query_row("SELECT count(*) FROM templates WHERE subject_id NOT IN (SELECT id FROM subjects)", [], |r| r.get(0)).unwrap();
    assert_eq!(orphans, 0);
}

#[test]
fn killed_mid_enrollment_the_gallery_stays_consistent_and_a_rerun_resumes() {
    let Some(lfw) = lfw("killed_mid_enrollment_the_gallery_stays_consistent_and_a_rerun_resumes") else { return };
    let dir = tempfile::tempdir().unwrap();
    let people = dir.path().join("people");
    let photos = lfw_folder(&lfw, &people, 0, 60, 4);
    assert!(photos >= 200);
    // The reference: a run nobody interrupts.
    let clean = dir.path().join("clean.db");
    let o = visage(&clean, &["enroll-dir", &people.to_string_lossy()]);
    assert!(o.status.success(), "{}", err(&o));
    let expected = template_count(&clean);
    assert!(expected > 150, "{expected}");

    let g = dir.path().join("g.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(["--gallery", &g.to_string_lossy(), "-q", "enroll-dir", &people.to_string_lossy()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Once 20 templates are committed, take the write lock: the child's next commit waits for
    // it, so the kill lands mid-run however fast or slow the machine is.
    let start = Instant::now();
    let lock = loop {
        if g.exists() && template_count(&g) >= 20 {
            let c = rusqlite::Connection::open(&g).unwrap();
            c.busy_timeout(Duration::from_secs(60)).unwrap();
            c.execute_batch("BEGIN IMMEDIATE").unwrap();
            break c;
        }
        assert!(child.try_wait().unwrap().is_none(), "enroll-dir ended before it had committed 20 templates");
        assert!(start.elapsed() < Duration::from_secs(600), "enroll-dir committed fewer than 20 templates in 10 minutes");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(lock);
    let partial = template_count(&g);
    assert!(partial >= 20 && partial < expected, "killed after {partial} of {expected}");
    check_consistent(&g);

    let o = visage(&g, &["enroll-dir", &people.to_string_lossy()]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("already enrolled"), "{}", err(&o));
    assert_eq!(template_count(&g), expected);
    check_consistent(&g);
}

#[test]
fn two_processes_enrolling_at_once_both_succeed() {
    let Some(lfw) = lfw("two_processes_enrolling_at_once_both_succeed") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let na = lfw_folder(&lfw, &a, 100, 25, 3);
    let nb = lfw_folder(&lfw, &b, 200, 25, 3);
    let g = dir.path().join("g.db");
    // Create the gallery first so both start writing at once.
    let blank = dir.path().join("x.png");
    image::RgbImage::new(10, 10).save(&blank).unwrap();
    let spawn = |folder: &Path| {
        Command::new(env!("CARGO_BIN_EXE_visage"))
            .args(["--gallery", &g.to_string_lossy(), "-q", "--threads", "1", "enroll-dir", &folder.to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (pa, pb) = (spawn(&a), spawn(&b));
    let (oa, ob) = (pa.wait_with_output().unwrap(), pb.wait_with_output().unwrap());
    for o in [&oa, &ob] {
        // Both succeed, or one reports a clear busy error; nothing is corrupted either way.
        assert!(o.status.success() || err(o).contains("is busy"), "{}", err(o));
        assert!(!err(o).contains("panicked"));
    }
    check_consistent(&g);
    if oa.status.success() && ob.status.success() {
        let total = template_count(&g) as usize;
        assert!(total > (na + nb) * 8 / 10 && total <= na + nb, "{total} of {}", na + nb);
    }
}
