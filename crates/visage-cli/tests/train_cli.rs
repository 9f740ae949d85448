//! `visage train head` end to end on a handful of LFW people, then the head in `compare`,
//! `verify`, `identify` and `eval pairs --train-head` (built with `--features train`).

use std::process::Command;

use visage_testdata::lfw_photo as photo;

mod common;
use common::{visage, all_text as text, s};

/// People trained on (photos 1-4 each) and probed (photos 5, 6); one more never seen at all.
const PEOPLE: [&str; 6] = ["Tony_Blair", "Colin_Powell", "Donald_Rumsfeld", "Gerhard_Schroeder", "Ariel_Sharon", "Hugo_Chavez"];
const STRANGER: &str = "Jacques_Chirac";

#[test]
fn a_head_trained_on_six_people_decides_compare_verify_and_identify() {
    let Some(data) = visage_testdata::data_dir("train_cli") else { return };
    let lfw = data.join("lfw").join("images");
    let dir = tempfile::tempdir().unwrap();
    let train = visage_testdata::lfw_people_folder(&lfw, &PEOPLE, 4, &dir.path().join("people"));
    let head = dir.path().join("head.json");
    let o = visage(&["train", "head", "--data", &s(&train), "--kind", "abs", "--out", &s(&head), "--json", "--no-cache-is-not-an-option"]);
    assert_eq!(o.status.code(), Some(2), "an unknown option is refused: {}", text(&o));
    let o = visage(&["train", "head", "--data", &s(&train), "--kind", "abs", "--out", &s(&head), "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // 6 people x C(4, 2) = 36 same-person pairs, as many different-people pairs.
    assert_eq!((r["same_pairs"].as_u64(), r["different_pairs"].as_u64()), (Some(36), Some(36)), "{r}");
    let loss: Vec<f64> = r["epoch_loss"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert!(loss[0] > 0.5 && *loss.last().unwrap() < 0.5 * loss[0], "the loss falls: {loss:?}");
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&head).unwrap()).unwrap();
    assert_eq!(file["format"], "visage-head/1");
    assert_eq!(file["model"], "dlib_face_recognition_resnet_model_v1");
    assert_eq!(file["weights"].as_array().unwrap().len(), 128);

    // compare: the same person (unseen photos) and two people.
    let h = s(&head);
    let o = visage(&["compare", "--head", &h, &s(&photo(&lfw, PEOPLE[0], 5)), &s(&photo(&lfw, PEOPLE[0], 6))]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("same person: abs head probability"), "{}", text(&o));
    let o = visage(&["compare", "--head", &h, "--json", &s(&photo(&lfw, PEOPLE[0], 5)), &s(&photo(&lfw, PEOPLE[1], 5))]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let c: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(c["probability"].as_f64().unwrap() < c["threshold"].as_f64().unwrap(), "{c}");

    // A gallery of two people, one photo each; identify and verify with the head.
    let g = s(&dir.path().join("g.db"));
    for p in &PEOPLE[..2] {
        let o = visage(&["--gallery", &g, "enroll", p, &s(&photo(&lfw, p, 5))]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let probes = [photo(&lfw, PEOPLE[0], 6), photo(&lfw, PEOPLE[1], 6), photo(&lfw, STRANGER, 1)];
    let mut args = vec!["--gallery".to_string(), g.clone(), "identify".into(), "--head".into(), h.clone(), "--json".into(), "--top".into(), "2".into()];
    args.extend(probes.iter().map(|p| s(p)));
    let o = Command::new(env!("CARGO_BIN_EXE_visage")).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let face = |i: usize| lines[i]["faces"][0].clone();
    assert_eq!((face(0)["decision"].as_str(), face(0)["name"].as_str()), (Some("match"), Some(PEOPLE[0])), "{}", lines[0]);
    assert_eq!((face(1)["decision"].as_str(), face(1)["name"].as_str()), (Some("match"), Some(PEOPLE[1])), "{}", lines[1]);
    assert_eq!(face(2)["decision"], "unknown", "a stranger is not named: {}", lines[2]);
    assert_eq!(face(0)["head"], "abs");
    let cands = face(0)["candidates"].as_array().unwrap().clone();
    assert!(cands[0]["probability"].as_f64() >= cands[1]["probability"].as_f64(), "ranked by probability: {cands:?}");
    let o = visage(&["--gallery", &g, "verify", "--head", &h, PEOPLE[1], &s(&photo(&lfw, PEOPLE[1], 7))]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = visage(&["--gallery", &g, "verify", "--head", &h, PEOPLE[0], &s(&photo(&lfw, PEOPLE[1], 7))]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // A head's threshold override is a probability; a damaged head or another model's is refused.
    let o = visage(&["compare", "--head", &h, "--threshold", "1.5", &s(&photo(&lfw, PEOPLE[0], 5)), &s(&photo(&lfw, PEOPLE[0], 6))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("probability in (0, 1)"), "{}", text(&o));
    let other = dir.path().join("other.json");
    std::fs::write(&other, std::fs::read_to_string(&head).unwrap().replace("dlib_face_recognition_resnet_model_v1", "some_other_model")).unwrap();
    let o = visage(&["compare", "--head", &s(&other), &s(&photo(&lfw, PEOPLE[0], 5)), &s(&photo(&lfw, PEOPLE[0], 6))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("the head was trained on some_other_model"), "{}", text(&o));
    std::fs::write(&other, "{\"format\": \"visage-head/1\"").unwrap();
    let o = visage(&["--gallery", &g, "identify", "--head", &s(&other), &s(&probes[0])]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not a visage head file"), "{}", text(&o));
}

#[test]
fn eval_fits_a_head_per_fold_on_the_other_folds() {
    let Some(data) = visage_testdata::data_dir("train_cli") else { return };
    let lfw = data.join("lfw").join("images");
    let dir = tempfile::tempdir().unwrap();
    // A generic pair list over 6 people: photos (1,2), (3,4) same; cross-person pairs different.
    let mut list = String::new();
    for (i, p) in PEOPLE.iter().enumerate() {
        for (a, b) in [(1, 2), (3, 4)] {
            list.push_str(&format!("{}\t{}\t1\n", s(&photo(&lfw, p, a)), s(&photo(&lfw, p, b))));
            let q = PEOPLE[(i + 1 + a % 2) % PEOPLE.len()];
            list.push_str(&format!("{}\t{}\t0\n", s(&photo(&lfw, p, a)), s(&photo(&lfw, q, b))));
        }
    }
    let pairs = dir.path().join("pairs.tsv");
    std::fs::write(&pairs, list).unwrap();
    let cache = s(&dir.path().join("cache"));
    let o = visage(&["eval", "pairs", "--pairs", &s(&pairs), "--folds", "3", "--train-head", "chi2", "--json", "--cache", &cache]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["score"], "chi2 head fitted per fold (negated logit)");
    assert_eq!(r["per_fold"].as_array().unwrap().len(), 3);
    // Famous faces, well apart: the head learnt on two folds separates the third.
    assert!(r["accuracy_mean"].as_f64().unwrap() >= 0.9, "{r}");
    // --head and --train-head exclude each other.
    let o = visage(&["eval", "pairs", "--pairs", &s(&pairs), "--train-head", "abs", "--head", "x.json"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
