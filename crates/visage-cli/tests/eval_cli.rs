//! `visage eval` on small real subsets of LFW: the pair protocol end to end, the JSON and the
//! plot, and open-set identification.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn visage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_visage")).arg("-q").args(args).output().expect("run visage")
}

fn people_with(lfw: &Path, min: usize, max: usize, take: usize) -> Vec<(String, Vec<PathBuf>)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(lfw).unwrap().flatten().map(|e| e.path()).collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|p| {
            let mut f: Vec<PathBuf> = std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()).collect();
            f.sort();
            (f.len() >= min && f.len() <= max).then(|| (p.file_name().unwrap().to_string_lossy().into_owned(), f))
        })
        .take(take)
        .collect()
}

#[test]
fn pair_protocol_on_a_generic_list() {
    let Some(data) = visage_testdata::data_dir("pair_protocol_on_a_generic_list") else { return };
    let lfw = data.join("lfw/images");
    let dir = tempfile::tempdir().unwrap();
    // 60 same-person pairs and 60 different-people pairs, paths relative to the list.
    let people = people_with(&lfw, 3, 30, 60);
    let mut list = String::from("# generated from LFW\n");
    for (i, (_, photos)) in people.iter().enumerate() {
        let rel = |p: &Path| pathdiff(p, dir.path());
        list.push_str(&format!("{}\t{}\t1\n", rel(&photos[0]), rel(&photos[1])));
        let other = &people[(i + 1) % people.len()].1[2];
        list.push_str(&format!("{}\t{}\t0\n", rel(&photos[2]), rel(other)));
    }
    let file = dir.path().join("pairs.tsv");
    std::fs::write(&file, list).unwrap();
    let plot = dir.path().join("roc.png");
    let cache = dir.path().join("cache");
    let args = [
        "eval",
        "pairs",
        "--pairs",
        file.to_str().unwrap(),
        "--json",
        "--plot",
        plot.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
    ];
    let o = visage(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pairs"], 120);
    assert_eq!(v["folds"], 10);
    assert_eq!(v["per_fold"].as_array().unwrap().len(), 10);
    assert!(v["accuracy_mean"].as_f64().unwrap() > 0.9, "{v}");
    assert!(v["auc"].as_f64().unwrap() > 0.95);
    assert!(v["embedded"].as_u64().unwrap() > 100);
    // 60 impostor pairs (54 per training split) cannot resolve FAR = 1e-3.
    assert_eq!(v["val_resolved"], false, "{v}");
    assert!(v["auc"].as_f64().unwrap() <= 1.0);
    // VAL's threshold is an impostor's distance, an f32: printed as one (0.61027849), not
    // widened to f64 (0.6102784872055054).
    let t = v["per_fold"][0]["val_threshold"].to_string();
    assert!(t.len() <= 11, "{t}");
    let img = image::open(&plot).unwrap();
    assert_eq!((img.width(), img.height()), (1400, 620));
    // The second run reads every embedding from the cache and gives the same numbers.
    let o2 = visage(&args);
    let v2: serde_json::Value = serde_json::from_slice(&o2.stdout).unwrap();
    assert_eq!(v2["embedded"], 0);
    assert_eq!(v2["accuracy_mean"], v["accuracy_mean"]);
    // A malformed list is an error naming the line.
    std::fs::write(&file, "a.jpg b.jpg 1\n").unwrap();
    let o = visage(&["eval", "pairs", "--pairs", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("pairs.tsv:1"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `p` relative to `base` (both absolute), with `..` steps.
fn pathdiff(p: &Path, base: &Path) -> String {
    let (p, base): (Vec<_>, Vec<_>) = (p.components().collect(), base.components().collect());
    let common = p.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut out: Vec<String> = vec!["..".into(); base.len() - common];
    out.extend(p[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    out.join("/")
}

#[test]
fn open_set_identification_names_the_known_and_rejects_strangers() {
    let Some(data) = visage_testdata::data_dir("open_set_identification_names_the_known_and_rejects_strangers") else { return };
    let lfw = data.join("lfw/images");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("people");
    for (name, photos) in people_with(&lfw, 2, 6, 40).into_iter().chain(people_with(&lfw, 1, 1, 40)) {
        std::fs::create_dir_all(root.join(&name)).unwrap();
        for p in photos {
            std::os::unix::fs::symlink(&p, root.join(&name).join(p.file_name().unwrap())).unwrap();
        }
    }
    let o = visage(&["eval", "identify", "--images", root.to_str().unwrap(), "--json", "--no-cache"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["enrolled"], 40);
    assert_eq!(v["unknown_probes"], 40);
    assert!(v["rank1"].as_f64().unwrap() > 0.9, "{v}");
    // With a gallery of 40 people, most strangers are further than 0.6 from all of them.
    assert!(v["at_threshold"]["unknown_rejection_rate"].as_f64().unwrap() > 0.5, "{v}");
}
