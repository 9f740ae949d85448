//! `visage train embedder` end to end on ten LFW people: the triplets it trains on get easier,
//! a run killed with SIGKILL resumes from its checkpoint, and the model then enrolls and
//! identifies through the CLI with `--model`, in galleries that refuse dlib's embeddings.

use std::path::Path;
use std::process::{Command, Stdio};

const PEOPLE: [&str; 10] = [
    "Tony_Blair", "Colin_Powell", "Donald_Rumsfeld", "Gerhard_Schroeder", "Ariel_Sharon",
    "Hugo_Chavez", "Jacques_Chirac", "George_W_Bush", "Serena_Williams", "John_Ashcroft",
];

use visage_testdata::lfw_photo as photo;

mod common;
use common::{visage, all_text as text, s};

fn log(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_small_cnn_trains_resumes_after_sigkill_and_recognises_through_the_cli() {
    let Some(data) = visage_testdata::data_dir("train_embedder_cli") else { return };
    let lfw = data.join("lfw").join("images");
    let dir = tempfile::tempdir().unwrap();
    let train = visage_testdata::lfw_people_folder(&lfw, &PEOPLE, 10, &dir.path().join("people"));
    let out = dir.path().join("model.safetensors");
    let cache = s(&dir.path().join("chips"));
    let args = |steps: &str, resume: bool| {
        let mut v = vec!["train", "embedder", "--data", train.to_str().unwrap(), "--out", out.to_str().unwrap(), "--cache", &cache];
        v.extend(["--steps", steps, "--checkpoint-every", "10", "--seed", "3", "--json"]);
        if resume {
            v.push("--resume");
        }
        v.into_iter().map(String::from).collect::<Vec<_>>()
    };
    // Cut and cache the chips first (a short run), so the killed run below is all training.
    let o = visage(&["train", "embedder", "--data", &s(&train), "--out", &s(&dir.path().join("warm.safetensors")), "--cache", &cache, "--steps", "1", "-q"]);
    assert!(o.status.success(), "{}", text(&o));

    // A run of 150 steps killed once its first checkpoint is on disk.
    let ckpt = out.with_extension("ckpt.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_visage")).args(args("150", false)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t = std::time::Instant::now();
    while !ckpt.exists() && t.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let reached: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&ckpt).unwrap()).unwrap();
    let reached = reached["step"].as_u64().unwrap();
    assert!(reached >= 10 && reached.is_multiple_of(10), "checkpointed at {reached}");
    assert!(!out.exists() || reached == 150, "no model written before the end");

    // Resumed: it goes on from the checkpoint, and the log holds every step once.
    let o = Command::new(env!("CARGO_BIN_EXE_visage")).args(args("150", true)).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let resumed = r["resumed_from"].as_u64().unwrap();
    assert!(resumed >= reached, "resumed from {resumed}, checkpoint {reached}: {r}");
    let steps: Vec<u64> = log(&out.with_extension("log.jsonl")).iter().map(|l| l["step"].as_u64().unwrap()).collect();
    assert_eq!(*steps.last().unwrap(), 150);
    assert!(steps.windows(2).filter(|w| w[1] <= w[0]).count() <= 1, "at most one restart in the log");
    let mut unique = steps.clone();
    unique.dedup();
    assert!((1..=150).all(|k| unique.contains(&k)), "every step logged");
    // Learning: the active-triplet fraction falls and negatives move away from positives.
    let l = log(&out.with_extension("log.jsonl"));
    let mean = |xs: &[serde_json::Value], f: &str| xs.iter().map(|x| x[f].as_f64().unwrap()).sum::<f64>() / xs.len() as f64;
    let (early, late) = (&l[..10], &l[l.len() - 10..]);
    assert!(mean(late, "active_fraction") < 0.6 * mean(early, "active_fraction"), "active fraction {} -> {}", mean(early, "active_fraction"), mean(late, "active_fraction"));
    let gap = |xs: &[serde_json::Value]| mean(xs, "mean_negative") - mean(xs, "mean_positive");
    assert!(gap(late) > gap(early) + 0.2, "negatives {} -> {} farther than positives", gap(early), gap(late));
    assert!(r["model"].as_str().unwrap().starts_with("visage-cnn-"), "{r}");

    // The model through the CLI: a gallery of two people enrolled with it, identified with it.
    let m = s(&out);
    let g = s(&dir.path().join("g.db"));
    for p in &PEOPLE[..2] {
        let o = visage(&["--model", &m, "--gallery", &g, "enroll", p, &s(&photo(&lfw, p, 1))]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = visage(&["--model", &m, "--gallery", &g, "identify", "--json", "--top", "2", &s(&photo(&lfw, PEOPLE[0], 2)), &s(&photo(&lfw, PEOPLE[1], 2))]);
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (i, want) in PEOPLE[..2].iter().enumerate() {
        let f = &lines[i]["faces"][0];
        assert_eq!(f["nearest"].as_str(), Some(*want), "{}", lines[i]);
        assert_eq!(f["candidates"].as_array().unwrap().len(), 2);
    }
    // The gallery is bound to the trained model: dlib's embeddings are refused, and so is the
    // model's for a dlib gallery.
    let o = visage(&["--gallery", &g, "identify", &s(&photo(&lfw, PEOPLE[0], 2))]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("visage-cnn-"), "{}", text(&o));
    // A broken model file is refused with the reason.
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"not a model").unwrap();
    let o = visage(&["--model", &s(&bad), "embed", &s(&photo(&lfw, PEOPLE[0], 2))]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("not a visage trained model"), "{}", text(&o));
}

#[test]
fn softmax_over_identities_learns_the_training_people_and_a_triplet_run_starts_from_it() {
    let Some(data) = visage_testdata::data_dir("train_embedder_cli") else { return };
    let lfw = data.join("lfw").join("images");
    let dir = tempfile::tempdir().unwrap();
    let train = visage_testdata::lfw_people_folder(&lfw, &PEOPLE, 6, &dir.path().join("people"));
    let cache = s(&dir.path().join("chips"));
    let soft = dir.path().join("soft.safetensors");
    let o = visage(&["train", "embedder", "--data", &s(&train), "--out", &s(&soft), "--cache", &cache, "--loss", "softmax", "--steps", "80", "--p", "10", "--k", "3", "--lr", "3e-3", "--json", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let l = log(&soft.with_extension("log.jsonl"));
    assert_eq!(l.len(), 80);
    let mean = |xs: &[serde_json::Value], f: &str| xs.iter().map(|x| x[f].as_f64().unwrap()).sum::<f64>() / xs.len() as f64;
    let (early, late) = (&l[..5], &l[l.len() - 10..]);
    // Ten people: chance is 10%; the classifier learns them.
    eprintln!("batch accuracy {} -> {}, loss {} -> {}", mean(early, "accuracy"), mean(late, "accuracy"), mean(early, "loss"), mean(late, "loss"));
    assert!(mean(late, "accuracy") > mean(early, "accuracy") + 0.3, "batch accuracy {} -> {}", mean(early, "accuracy"), mean(late, "accuracy"));
    assert!(mean(late, "loss") < mean(early, "loss") - 0.5, "loss {} -> {}", mean(early, "loss"), mean(late, "loss"));
    // The classifier is not part of the model: the file holds the embedder alone.
    let st = std::fs::read(&soft).unwrap();
    assert!(!String::from_utf8_lossy(&st[..4096.min(st.len())]).contains("classifier"));
    // A triplet run from it, and --init refused for another architecture.
    let tri = dir.path().join("tri.safetensors");
    let o = visage(&["train", "embedder", "--data", &s(&train), "--out", &s(&tri), "--cache", &cache, "--init", &s(&soft), "--steps", "3", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = visage(&["train", "embedder", "--data", &s(&train), "--out", &s(&tri), "--cache", &cache, "--init", &s(&soft), "--channels", "8,16", "--steps", "3", "-q"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--init's architecture"), "{}", text(&o));
}

#[test]
fn the_deepface_network_learns_with_softmax_and_recognises_through_the_cli() {
    let Some(data) = visage_testdata::data_dir("train_embedder_cli") else { return };
    let lfw = data.join("lfw").join("images");
    let dir = tempfile::tempdir().unwrap();
    let train = visage_testdata::lfw_people_folder(&lfw, &PEOPLE, 6, &dir.path().join("people"));
    let cache = s(&dir.path().join("chips"));
    let out = dir.path().join("deepface.safetensors");
    let run = |steps: &str, resume: bool| {
        let mut v = vec!["train", "embedder", "--arch", "deepface", "--dim", "64", "--data", train.to_str().unwrap(), "--out", out.to_str().unwrap()];
        v.extend(["--cache", &cache, "--loss", "softmax", "--steps", steps, "--p", "10", "--k", "3", "--checkpoint-every", "20", "--json", "-q"]);
        if resume {
            v.push("--resume");
        }
        visage(&v)
    };
    // 40 steps, then resumed to 80 from the checkpoint at 40.
    let o = run("40", false);
    assert!(o.status.success(), "{}", text(&o));
    let o = run("80", true);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["resumed_from"].as_u64(), Some(40), "{r}");
    assert!(r["model"].as_str().unwrap().starts_with("visage-deepface-"), "{r}");
    // The checkpoint keeps Adam's state beside the weights; the previous step's files are gone.
    let ckpt: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.with_extension("ckpt.json")).unwrap()).unwrap();
    assert_eq!(ckpt["step"], 80, "{ckpt}");
    assert!(out.with_extension("ckpt-80.adam").exists() && out.with_extension("ckpt-80.safetensors").exists(), "{ckpt}");
    assert!(!out.with_extension("ckpt-60.adam").exists() && !out.with_extension("ckpt-40.safetensors").exists());
    let l = log(&out.with_extension("log.jsonl"));
    assert_eq!(l.iter().map(|x| x["step"].as_u64().unwrap()).collect::<Vec<_>>(), (1..=80).collect::<Vec<_>>());
    let mean = |xs: &[serde_json::Value], f: &str| xs.iter().map(|x| x[f].as_f64().unwrap()).sum::<f64>() / xs.len() as f64;
    let (early, late) = (&l[..5], &l[l.len() - 10..]);
    eprintln!("batch accuracy {} -> {}, loss {} -> {}", mean(early, "accuracy"), mean(late, "accuracy"), mean(early, "loss"), mean(late, "loss"));
    assert!(mean(late, "accuracy") > mean(early, "accuracy") + 0.3, "batch accuracy {} -> {}", mean(early, "accuracy"), mean(late, "accuracy"));
    // The file's header names the architecture; the model embeds (64-d, non-negative, unit
    // length) and enrolls and identifies its training people through the CLI.
    let st = std::fs::read(&out).unwrap();
    assert!(String::from_utf8_lossy(&st[..4096.min(st.len())]).contains("deepface"));
    let m = s(&out);
    let o = visage(&["--model", &m, "embed", &s(&photo(&lfw, PEOPLE[0], 1))]);
    assert!(o.status.success(), "{}", text(&o));
    let e: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    let v: Vec<f64> = e["faces"][0]["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(v.len(), 64);
    assert!(v.iter().all(|x| *x >= 0.0) && (v.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-4, "{v:?}");
    let g = s(&dir.path().join("g.db"));
    for p in &PEOPLE[..3] {
        let o = visage(&["--model", &m, "--gallery", &g, "enroll", p, &s(&photo(&lfw, p, 1))]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = visage(&["--model", &m, "--gallery", &g, "identify", "--json", "--top", "3", &s(&photo(&lfw, PEOPLE[0], 2))]);
    assert!(o.status.success(), "{}", text(&o));
    let line: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(line["faces"][0]["candidates"].as_array().unwrap().len(), 3, "{line}");
    // A DeepFace run cannot start from a small CNN's file, nor take chips it cannot fit.
    let o = visage(&["train", "embedder", "--arch", "deepface", "--chip-size", "24", "--data", &s(&train), "--out", &s(&dir.path().join("x.safetensors")), "--steps", "1", "-q"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("chips of 32"), "{}", text(&o));
}
