//! The `visage` gallery commands on a gallery kept in Milvus (`--gallery milvus://HOST:PORT/NAME`,
//! a build with `--features milvus`), against a real server: scripts/test.d/10-milvus.sh starts
//! one in a network namespace and sets VISAGE_MILVUS. Each `visage` call is its own process, so
//! every step also checks that what one process acknowledged, the next one sees.

use std::path::Path;
use std::process::{Command, Output};

fn server(test: &str) -> Option<String> {
    match std::env::var("VISAGE_MILVUS") {
        Ok(u) if !u.is_empty() => Some(u.trim_end_matches('/').to_string()),
        _ if visage_testdata::data_required() => panic!("{test}: VISAGE_REQUIRE_DATA is set and VISAGE_MILVUS (a Milvus server) is not"),
        _ => {
            eprintln!("SKIP {test}: VISAGE_MILVUS is not set (scripts/test.d/10-milvus.sh runs this against a real server)");
            None
        }
    }
}

fn visage(gallery: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage")).arg("--gallery").arg(gallery).arg("-q").args(args).output().expect("run visage")
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn photo(lfw: &Path, person: &str, n: usize) -> String {
    lfw.join(person).join(format!("{person}_{n:04}.jpg")).to_string_lossy().into_owned()
}

fn subjects(url: &str) -> Vec<(String, u64)> {
    let o = visage(url, &["subjects", "list", "--json"]);
    assert!(o.status.success(), "{}", err(&o));
    out(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["name"].as_str().unwrap().to_string(), v["templates"].as_u64().unwrap())
        })
        .collect()
}

#[test]
fn the_gallery_commands_on_a_gallery_in_milvus() {
    let test = "the_gallery_commands_on_a_gallery_in_milvus";
    let Some(base) = server(test) else { return };
    let Some(data) = visage_testdata::data_dir(test) else { return };
    let lfw = data.join("lfw/images");
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() % 1_000_000_000_000;
    let url = format!("{base}/cli_{n}");

    // A gallery that does not exist yet: reads say so.
    let o = visage(&url, &["subjects", "list"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(err(&o).contains("no gallery") && err(&o).contains(&url), "{}", err(&o));

    // One-shot enrollment creates it.
    for person in ["George_W_Bush", "Colin_Powell", "Tony_Blair"] {
        let o = visage(&url, &["enroll", person, &photo(&lfw, person, 1), "--meta", "{\"team\":\"a\"}"]);
        assert!(o.status.success(), "{}", err(&o));
    }
    let o = visage(&url, &["gallery"]);
    assert!(o.status.success(), "{}", err(&o));
    let info = out(&o);
    assert!(info.contains(&url) && info.contains("subjects  3") && info.contains("templates 3"), "{info}");
    // Enrolling the same photo again adds nothing; under another name it is refused.
    let o = visage(&url, &["enroll", "Colin_Powell", &photo(&lfw, "Colin_Powell", 1)]);
    assert!(o.status.success() && err(&o).contains("0 new template(s), 1 already enrolled"), "{}", err(&o));
    let o = visage(&url, &["enroll", "Someone_Else", &photo(&lfw, "Colin_Powell", 1)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("already enrolled as \"Colin_Powell\"") && err(&o).contains("--allow-duplicate"), "{}", err(&o));

    // Verify, 1:1.
    let o = visage(&url, &["verify", "Colin_Powell", &photo(&lfw, "Colin_Powell", 2), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{} {}", out(&o), err(&o));
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert!(v["distance"].as_f64().unwrap() < 0.6 && v["match"] == true && v["metric"] == "l2", "{v}");
    let o = visage(&url, &["verify", "Tony_Blair", &photo(&lfw, "Colin_Powell", 2)]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).starts_with("no match"));

    // Identify, 1:N: known people by name, a never-enrolled person as unknown, top-k.
    let o = visage(
        &url,
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
    let lines: Vec<serde_json::Value> = out(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let names: Vec<String> = lines
        .iter()
        .map(|l| format!("{} {}", l["faces"][0]["decision"].as_str().unwrap(), l["faces"][0]["name"].as_str().unwrap_or("null")))
        .collect();
    assert_eq!(names, ["match George_W_Bush", "match Tony_Blair", "unknown null"]);
    assert_eq!(lines[0]["faces"][0]["candidates"].as_array().unwrap().len(), 3);

    // Batch enrollment from a folder (one sub-folder per person); a re-run resumes.
    let dir = tempfile::tempdir().unwrap();
    let people = dir.path().join("people");
    for person in ["Colin_Powell", "Tony_Blair", "Gerhard_Schroeder"] {
        std::fs::create_dir_all(people.join(person)).unwrap();
        for i in 2..=4 {
            std::os::unix::fs::symlink(photo(&lfw, person, i), people.join(person).join(format!("{i}.jpg"))).unwrap();
        }
    }
    let o = visage(&url, &["enroll-dir", "--largest", &people.to_string_lossy()]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("enrolled 9 new template(s)") && err(&o).contains("4 people, 12 templates"), "{}", err(&o));
    let o = visage(&url, &["enroll-dir", "--largest", &people.to_string_lossy()]);
    assert!(
        o.status.success() && err(&o).contains("enrolled 0 new template(s)") && err(&o).contains("skipped 9 photo(s) already enrolled"),
        "{}",
        err(&o)
    );
    assert_eq!(
        subjects(&url),
        [
            ("Colin_Powell".to_string(), 4),
            ("George_W_Bush".to_string(), 1),
            ("Gerhard_Schroeder".to_string(), 3),
            ("Tony_Blair".to_string(), 4)
        ]
    );

    // Calibration from the gallery's own pairs, stored as its threshold.
    let o = visage(&url, &["calibrate", "--far", "0.1", "--store", "--json"]);
    assert!(o.status.success(), "{}", err(&o));
    let c: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    let t = c["threshold"].as_f64().unwrap();
    assert!(err(&o).contains(&format!("stored threshold {t:.4} in {url}")), "{}", err(&o));
    let o = visage(&url, &["gallery"]);
    assert!(out(&o).contains(&format!("threshold {t:.4}")), "{}", out(&o));

    // Subjects: metadata, rename, forget.
    assert!(visage(&url, &["subjects", "meta", "George_W_Bush", "{\"team\":\"b\"}"]).status.success());
    let list = out(&visage(&url, &["subjects", "list", "--json"]));
    assert!(list.lines().any(|l| l.contains("\"George_W_Bush\"") && l.contains("\"b\"")), "{list}");
    let o = visage(&url, &["subjects", "rename", "Tony_Blair", "Blair"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = visage(&url, &["forget", "Blair"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("forgot \"Blair\": 4 template(s) deleted"), "{}", err(&o));
    let o = visage(&url, &["verify", "Blair", &photo(&lfw, "Tony_Blair", 3)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("no one called \"Blair\""), "{}", err(&o));
    let o = visage(&url, &["identify", "--json", &photo(&lfw, "Tony_Blair", 3)]);
    let v: serde_json::Value = serde_json::from_str(out(&o).lines().next().unwrap()).unwrap();
    assert_ne!(v["faces"][0]["nearest"], "Blair", "{v}");
    assert_eq!(subjects(&url).iter().map(|s| s.1).sum::<u64>(), 8);

    // Milvus has no chi-squared: such a gallery is refused, not half made.
    let o = visage(&format!("{url}_chi2"), &["enroll", "x", &photo(&lfw, "Colin_Powell", 1), "--metric", "chi2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("chi-squared"), "{}", err(&o));
}
