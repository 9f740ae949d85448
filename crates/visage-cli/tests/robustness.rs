//! The `visage` binary on hostile inputs and options: odd file names, loops, FIFOs, bad
//! thresholds, drawings, folds; and the conventions every command follows for errors and
//! output. Every case runs the real binary, with a time limit so that a hang fails the test.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs visage with `args`, killing it (and failing the test) after 120 s.
fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run visage");
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("visage hung (killed after 120 s); stderr: {}", String::from_utf8_lossy(&o.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 2, no panic, and stderr mentions `needle`.
fn refused(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "exit code; stdout {} stderr {}", out(o), err(o));
    assert!(!err(o).contains("panicked"), "must not panic: {}", err(o));
    assert!(err(o).contains(needle), "stderr should mention {needle:?}: {}", err(o));
}

/// A plain grey PNG: a photo without a face.
fn grey(path: &Path, w: u32, h: u32) -> PathBuf {
    image::RgbImage::from_pixel(w, h, image::Rgb([128, 128, 128])).save_with_format(path, image::ImageFormat::Png).unwrap();
    path.to_path_buf()
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().expect("mkfifo").success();
    assert!(ok, "mkfifo {}", path.display());
}

#[test]
fn file_names_that_are_not_utf8_are_printed_lossily_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join(OsStr::from_bytes(b"caf\xe9.png"));
    grey(&odd, 64, 64);
    grey(&dir.path().join("plain.png"), 64, 64);
    for cmd in ["detect", "embed"] {
        let o = run(&[OsStr::new(cmd), OsStr::new("-q"), dir.path().as_os_str()]);
        assert_eq!(o.status.code(), Some(0), "{cmd}: {}", err(&o));
        let lines = json_lines(&out(&o));
        let paths: Vec<&str> = lines.iter().map(|l| l["path"].as_str().unwrap()).collect();
        assert_eq!(paths.len(), 2, "{cmd}: {paths:?}");
        assert!(paths[0].ends_with("caf\u{FFFD}.png") && paths[1].ends_with("plain.png"), "{cmd}: {paths:?}");
        // Given directly, too.
        let o = run(&[OsStr::new(cmd), odd.as_os_str()]);
        assert_eq!(o.status.code(), Some(0), "{cmd}: {}", err(&o));
    }
    // compare --json, which prints both paths.
    let chip = dir.path().join(OsStr::from_bytes(b"chip\xff.png"));
    grey(&chip, 150, 150);
    let o = run(&[OsStr::new("compare"), OsStr::new("--chip"), OsStr::new("--json"), chip.as_os_str(), chip.as_os_str()]);
    assert!(!err(&o).contains("panicked"), "{}", err(&o));
    let v = &json_lines(&out(&o))[0];
    assert!(v["a"].as_str().unwrap().ends_with("chip\u{FFFD}.png"), "{v}");
}

#[test]
fn a_symbolic_link_loop_is_walked_once_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("A");
    std::fs::create_dir(&a).unwrap();
    grey(&a.join("x.png"), 64, 64);
    std::os::unix::fs::symlink("..", a.join("up")).unwrap();
    for cmd in ["detect", "embed"] {
        let o = run(&[OsStr::new(cmd), dir.path().as_os_str()]);
        assert_eq!(o.status.code(), Some(0), "{cmd}: {}", err(&o));
        assert_eq!(json_lines(&out(&o)).len(), 1, "{cmd}: each photo once: {}", out(&o));
        assert!(err(&o).contains("loop") && err(&o).contains("up"), "{cmd}: say what was skipped: {}", err(&o));
    }
    // identify and recognize walk the same way (they fail later, on the empty gallery / known
    // folder, but must not hang).
    let g = dir.path().join("g.db");
    let o = run(&[OsStr::new("--gallery"), g.as_os_str(), OsStr::new("identify"), dir.path().as_os_str()]);
    assert!(!err(&o).contains("panicked"), "{}", err(&o));
    let known = dir.path().join("known");
    std::fs::create_dir(&known).unwrap();
    grey(&known.join("nobody.png"), 64, 64);
    let o = run(&[OsStr::new("recognize"), known.as_os_str(), a.as_os_str()]);
    assert!(!err(&o).contains("panicked"), "{}", err(&o));
}

#[test]
fn a_fifo_is_not_a_photo() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.jpg");
    mkfifo(&fifo);
    grey(&dir.path().join("plain.png"), 64, 64);
    // Given directly.
    refused(&run(&[OsStr::new("detect"), fifo.as_os_str()]), "pipe.jpg: is a FIFO");
    refused(&run(&[OsStr::new("compare"), fifo.as_os_str(), fifo.as_os_str()]), "pipe.jpg: is a FIFO");
    refused(&run(&[OsStr::new("embed"), fifo.as_os_str()]), "pipe.jpg: is a FIFO");
    // A pair list that is a FIFO.
    let list = dir.path().join("pairs.tsv");
    mkfifo(&list);
    refused(&run(&[OsStr::new("eval"), OsStr::new("pairs"), OsStr::new("--pairs"), list.as_os_str()]), "pairs.tsv: is a FIFO");
    // In a folder: that file fails by name, the others are processed.
    let o = run(&[OsStr::new("detect"), OsStr::new("-q"), dir.path().as_os_str()]);
    refused(&o, "pipe.jpg: is a FIFO");
    let lines = json_lines(&out(&o));
    assert!(lines.iter().any(|l| l["path"].as_str().unwrap().ends_with("plain.png") && l["faces"].is_array()), "{}", out(&o));
    assert!(lines.iter().any(|l| l["path"].as_str().unwrap().ends_with("pipe.jpg") && l["error"].is_string()), "{}", out(&o));
}

#[test]
fn a_150x150_photo_is_a_photo_unless_chip_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let g = grey(&dir.path().join("grey.png"), 150, 150);
    refused(&run(&["compare", g.to_str().unwrap(), g.to_str().unwrap()]), "grey.png: no face found");
    let o = run(&["embed", g.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let v = &json_lines(&out(&o))[0];
    assert_eq!(v["faces"], serde_json::json!([]), "a grey photo has no face: {v}");
    // --chip embeds it as it is.
    let o = run(&["embed", "--chip", g.to_str().unwrap()]);
    assert_eq!(json_lines(&out(&o))[0]["embedding"].as_array().unwrap().len(), 128);
    let o = run(&["compare", "--chip", "--json", g.to_str().unwrap(), g.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    // JSON numbers are what was given or computed, without f32 -> f64 noise.
    assert!(out(&o).contains("\"threshold\":0.6") && out(&o).contains("\"distance\":0.0,"), "{}", out(&o));
    assert!(!out(&o).contains("0.60000"), "{}", out(&o));
    // The default threshold follows the metric.
    let o = run(&["compare", "--chip", "--json", "--metric", "cosine", g.to_str().unwrap(), g.to_str().unwrap()]);
    assert!(out(&o).contains("\"threshold\":0.093") && !out(&o).contains("0.09300"), "{}", out(&o));
}

#[test]
fn thresholds_and_rates_are_checked_when_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let g = grey(&dir.path().join("grey.png"), 64, 64);
    let p = g.to_str().unwrap();
    let gal = dir.path().join("g.db");
    let gal = gal.to_str().unwrap();
    for bad in ["inf", "NaN", "-0.5"] {
        refused(&run(&["--gallery", gal, "verify", "someone", p, "--threshold", bad]), "--threshold");
        refused(&run(&["--gallery", gal, "identify", p, "--threshold", bad]), "--threshold");
        refused(&run(&["compare", p, p, "--threshold", bad]), "--threshold");
        refused(&run(&["recognize", dir.path().to_str().unwrap(), p, "--tolerance", bad]), "--tolerance");
        refused(&run(&["eval", "identify", "--images", dir.path().to_str().unwrap(), "--threshold", bad]), "--threshold");
    }
    for bad in ["-1", "NaN", "2", "0", "1"] {
        let o = run(&["--gallery", gal, "calibrate", "--far", bad]);
        refused(&o, "--far");
        assert!(!err(&o).contains("not enough pairs"), "{}", err(&o));
        refused(&run(&["eval", "pairs", "--pairs", "x.tsv", "--far", bad]), "--far");
    }
    // The messages say what is wrong.
    assert!(err(&run(&["compare", p, p, "--threshold", "inf"])).contains("finite"));
    assert!(err(&run(&["compare", p, p, "--threshold", "-1"])).contains("negative"));
    // --help shows the defaults as typed, not as f32 widened to f64.
    let help = out(&run(&["recognize", "--help"]));
    assert!(help.contains("[default: 0.6]") && !help.contains("0.6000000"), "{help}");
}

#[test]
fn eval_options_are_checked_before_the_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    // Pairs whose photos do not exist: every refusal below must come before any embedding.
    let pairs = |n: usize| {
        let f = dir.path().join(format!("pairs{n}.tsv"));
        std::fs::write(&f, (0..n).map(|i| format!("a{i}.jpg\tb{i}.jpg\t{}\n", i % 2)).collect::<String>()).unwrap();
        f.to_string_lossy().into_owned()
    };
    let p18 = pairs(18);
    let o = run(&["eval", "pairs", "--pairs", &p18]);
    refused(&o, "9 same-person and 9 different-people pairs cannot fill 10 folds");
    assert!(err(&o).contains("--folds 9"), "{}", err(&o));
    refused(&run(&["eval", "pairs", "--pairs", &pairs(40), "--folds", "21"]), "cannot fill 21 folds");
    // An unbounded jitter is refused, with the maximum.
    refused(&run(&["eval", "pairs", "--pairs", &p18, "--jitter", "100000000"]), "maximum of 1000");
    // A plot's format is checked first.
    let o = run(&["eval", "pairs", "--pairs", &pairs(40), "--folds", "2", "--plot", "roc.pdf"]);
    refused(&o, "roc.pdf: a plot is a .png or .svg file, not .pdf");
    assert!(!err(&o).contains("a0.jpg"), "refused before reading any photo: {}", err(&o));
    // eval identify has no pair-protocol options.
    for opt in [["--far", "0.01"], ["--plot", "x.png"], ["--scores", "x.tsv"]] {
        let o = run(&["eval", "identify", "--images", dir.path().to_str().unwrap(), opt[0], opt[1]]);
        refused(&o, opt[0]);
    }
}

#[test]
fn drawings_never_overwrite_inputs_and_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("one")).unwrap();
    std::fs::create_dir_all(d.join("two")).unwrap();
    let a = grey(&d.join("one/img.png"), 64, 64);
    let b = grey(&d.join("two/img.png"), 80, 80);
    // Two inputs with the same name: two drawings.
    let out_dir = d.join("drawn");
    let o = run(&["detect", "-q", a.to_str().unwrap(), b.to_str().unwrap(), "--draw", out_dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(image::open(out_dir.join("img.faces.png")).unwrap().width(), 64);
    assert_eq!(image::open(out_dir.join("img-2.faces.png")).unwrap().width(), 80);
    // A file name for several photos is refused (no folder called x.png).
    let x = d.join("x.png");
    refused(&run(&["detect", a.to_str().unwrap(), b.to_str().unwrap(), "--draw", x.to_str().unwrap()]), "names a folder");
    assert!(!x.exists());
    // The format is the one the name says.
    let webp = d.join("out.webp");
    let o = run(&["detect", a.to_str().unwrap(), "--draw", webp.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let bytes = std::fs::read(&webp).unwrap();
    assert!(bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP", "not WebP");
    let jpg = d.join("out.jpg");
    assert_eq!(run(&["detect", a.to_str().unwrap(), "--draw", jpg.to_str().unwrap()]).status.code(), Some(0));
    assert!(std::fs::read(&jpg).unwrap().starts_with(&[0xFF, 0xD8]));
    refused(&run(&["detect", a.to_str().unwrap(), "--draw", d.join("out.gif").to_str().unwrap()]), "out.gif");
    // Never the input itself.
    let before = std::fs::read(&a).unwrap();
    refused(&run(&["detect", a.to_str().unwrap(), "--draw", a.to_str().unwrap()]), "overwrite the input");
    assert_eq!(std::fs::read(&a).unwrap(), before);
}

#[test]
fn errors_follow_one_convention() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = grey(&d.join("grey.png"), 64, 64);
    let p = g.to_str().unwrap();
    let missing = d.join("missing.png");
    let m = missing.to_str().unwrap();
    // --json commands print one JSON error object on stdout, and the message on stderr.
    for args in [vec!["compare", "--json", p, m], vec!["--gallery", d.join("none.db").to_str().unwrap(), "verify", "x", p, "--json"]] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", err(&o));
        let v = json_lines(&out(&o));
        assert_eq!(v.len(), 1, "{args:?}: {}", out(&o));
        assert!(v[0]["error"].is_string(), "{args:?}: {}", out(&o));
        assert!(err(&o).starts_with("visage: "), "{args:?}: {}", err(&o));
    }
    // A folder where a photo is expected: said once.
    let o = run(&["compare", d.to_str().unwrap(), p]);
    refused(&o, "is a folder");
    assert_eq!(err(&o).matches("folder").count(), 1, "{}", err(&o));
    // A damaged PNG: a sentence, not the decoder's Debug output.
    let mut png = std::fs::read(&g).unwrap();
    png[29] ^= 0xFF; // the IHDR chunk's CRC
    let bad = d.join("bad.png");
    std::fs::write(&bad, &png).unwrap();
    let o = run(&["detect", bad.to_str().unwrap()]);
    refused(&o, "bad.png");
    assert!(!err(&o).contains('{') && !err(&o).contains("ChunkType"), "{}", err(&o));
    // Redirected stderr: no colour codes; -q: no warnings either.
    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&["detect", empty.to_str().unwrap(), p]);
    assert!(err(&o).contains("no photos") && !err(&o).contains('\x1b'), "{:?}", err(&o));
    let o = run(&["detect", "-q", empty.to_str().unwrap(), p]);
    assert_eq!(err(&o), "", "-q is quiet");
}

#[test]
fn enroll_dir_says_what_it_does_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let people = dir.path().join("people");
    std::fs::create_dir_all(people.join("ann/holiday")).unwrap();
    grey(&people.join("ann/a.png"), 64, 64);
    grey(&people.join("ann/holiday/b.png"), 64, 64);
    grey(&people.join("loose.png"), 64, 64);
    let gal = dir.path().join("g.db");
    let o = run(&[OsStr::new("--gallery"), gal.as_os_str(), OsStr::new("enroll-dir"), people.as_os_str()]);
    let e = err(&o);
    assert!(e.contains("1 nested folder(s) skipped") && e.contains("holiday"), "{e}");
    assert!(e.contains("1 photo(s) directly in") && e.contains("loose.png"), "{e}");
}

fn lfw_photo(lfw: &Path, person: &str, n: usize) -> String {
    lfw.join(person).join(format!("{person}_{n:04}.jpg")).to_string_lossy().into_owned()
}

#[test]
fn identify_says_no_match_unambiguously_and_keeps_errors_off_text_stdout() {
    let Some(data) = visage_testdata::data_dir("identify_says_no_match_unambiguously_and_keeps_errors_off_text_stdout") else { return };
    let lfw = data.join("lfw/images");
    let dir = tempfile::tempdir().unwrap();
    let gal = dir.path().join("g.db");
    let g = gal.to_str().unwrap();
    let o = run(&["--gallery", g, "enroll", "Colin", &lfw_photo(&lfw, "Colin_Powell", 1)]);
    assert!(o.status.success(), "{}", err(&o));
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let photos = [lfw_photo(&lfw, "Colin_Powell", 2), lfw_photo(&lfw, "Gerhard_Schroeder", 1), bad.to_string_lossy().into_owned()];
    let mut args = vec!["--gallery", g, "identify"];
    args.extend(photos.iter().map(String::as_str));
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2), "one photo failed: {}", err(&o));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "one sentence per face, errors not on stdout: {text}");
    assert!(lines[0].contains(": Colin (distance "), "{text}");
    assert!(lines[1].contains(": no match: nobody closer than 0.600 (nearest: Colin "), "{text}");
    assert!(err(&o).contains("bad.png"), "{}", err(&o));
    // JSON: a decision no name can imitate, short numbers, and the error as an object.
    args.push("--json");
    let v = json_lines(&out(&run(&args)));
    assert_eq!((v[0]["faces"][0]["decision"].as_str(), v[0]["faces"][0]["name"].as_str()), (Some("match"), Some("Colin")));
    assert_eq!(v[1]["faces"][0]["decision"], "unknown");
    assert!(v[1]["faces"][0]["name"].is_null() && v[1]["faces"][0]["nearest"] == "Colin", "{}", v[1]);
    assert!(v[2]["error"].as_str().unwrap().contains("bad.png"), "{}", v[2]);
    let d = v[1]["faces"][0]["distance"].to_string();
    assert!(d.len() <= 11, "an f32 distance printed as f32, not {d}");
}

#[test]
fn calibrate_says_when_the_sample_cannot_resolve_the_rate() {
    let Some(data) = visage_testdata::data_dir("calibrate_says_when_the_sample_cannot_resolve_the_rate") else { return };
    let lfw = data.join("lfw/images");
    let dir = tempfile::tempdir().unwrap();
    let gal = dir.path().join("g.db");
    let g = gal.to_str().unwrap();
    for person in ["Colin_Powell", "Tony_Blair", "George_W_Bush"] {
        let o = run(&["--gallery", g, "enroll", person, &lfw_photo(&lfw, person, 1), &lfw_photo(&lfw, person, 2)]);
        assert!(o.status.success(), "{}", err(&o));
    }
    let o = run(&["--gallery", g, "calibrate", "--far", "1e-3", "--store"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("only 12 impostor") && err(&o).contains("at least 1000"), "{}", err(&o));
    let o = run(&["--gallery", g, "calibrate", "--json"]);
    let v = &json_lines(&out(&o))[0];
    assert_eq!(v["far_resolved"], false);
    // The threshold is a distance (an f32): printed as one, not widened to 0.6224864721298218.
    assert!(v["threshold"].to_string().len() <= 11, "{v}");
    // The stored threshold is shown at reading precision.
    let info = out(&run(&["--gallery", g, "gallery"]));
    let t = info.lines().find(|l| l.starts_with("threshold")).unwrap();
    assert_eq!(t.split_whitespace().nth(1).unwrap().len(), 6, "{t}");
}

#[test]
fn recognize_warns_about_known_photos_with_several_faces() {
    let Some(oracle) = visage_testdata::oracle_dir("recognize_warns_about_known_photos_with_several_faces") else { return };
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known");
    std::fs::create_dir(&known).unwrap();
    std::fs::copy(oracle.join("images/t1.jpg"), known.join("crowd.jpg")).unwrap();
    let crowd = known.join("crowd.jpg");
    let o = run(&[OsStr::new("recognize"), known.as_os_str(), crowd.as_os_str()]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains("faces found in this known photo; only the largest is used for crowd"), "{}", err(&o));
}

#[test]
fn each_command_lists_only_the_options_it_uses() {
    let help = |args: &[&str]| out(&run(args));
    let models = help(&["models", "fetch", "--help"]);
    assert!(!models.contains("--gallery") && !models.contains("--upsample") && models.contains("--models"), "{models}");
    let detect = help(&["detect", "--help"]);
    assert!(!detect.contains("--gallery") && detect.contains("--upsample") && detect.contains("--max-pixels"), "{detect}");
    let subjects = help(&["subjects", "list", "--help"]);
    assert!(subjects.contains("--gallery") && !subjects.contains("--upsample"), "{subjects}");
    let enroll = help(&["enroll", "--help"]);
    assert!(enroll.contains("--gallery") && enroll.contains("--upsample"), "{enroll}");
    assert!(help(&["eval", "lfw", "--help"]).contains("--upsample"));
    // The box format and what the numbers after names are, where they are printed.
    assert!(out(&run(&["detect", "--help"])).contains("[left, top, right, bottom]"));
    assert!(out(&run(&["identify", "--help"])).contains("lower is closer"));
    // Photo options go after the command; --upsample is refused where no photo is read.
    refused(&run(&["forget", "x", "--upsample", "2"]), "--upsample");
}

#[test]
fn options_that_would_hang_or_mislead_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let one = grey(&dir.path().join("one.png"), 1, 1);
    let one = one.to_str().unwrap();
    // Upsampling has a bound, checked when parsed.
    refused(&run(&["detect", "--upsample", "20", one]), "--upsample");
    // The pixel limit counts the pixels the detector processes: 1500x1500 is under 5 MP,
    // upsampled twice it is 36 MP; the message says how to raise the limit.
    let mid = grey(&dir.path().join("mid.png"), 1500, 1500);
    let o = run(&["detect", "--upsample", "2", "--max-pixels", "5000000", mid.to_str().unwrap()]);
    refused(&o, "mid.png");
    assert!(err(&o).contains("36000000") && err(&o).contains("--max-pixels"), "{}", err(&o));
    assert_eq!(run(&["detect", "--upsample", "0", "--max-pixels", "5000000", mid.to_str().unwrap()]).status.code(), Some(0));
    // Worker threads have a bound (100000 threads take minutes just to start).
    let o = run(&["--threads", "100000", "detect", one]);
    refused(&o, "--threads");
    assert!(err(&o).contains("maximum"), "{}", err(&o));
    refused(&run(&["--threads", "0", "detect", one]), "--threads");
    // --top 0 would list no candidates and read as an empty gallery.
    refused(&run(&["--gallery", dir.path().join("g.db").to_str().unwrap(), "identify", "--top", "0", one]), "--top");
    // A threshold of -0 is 0.
    let chip = grey(&dir.path().join("chip.png"), 150, 150);
    let c = chip.to_str().unwrap();
    let o = run(&["compare", "--chip", "--json", "--threshold", "-0", c, c]);
    assert!(out(&o).contains("\"threshold\":0.0"), "{}", out(&o));
}

#[test]
fn argument_errors_follow_the_json_convention_too() {
    let o = run(&["compare", "--json", "--threshold", "x", "a.png", "b.png"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let v = json_lines(&out(&o));
    assert_eq!(v.len(), 1, "{}", out(&o));
    assert!(v[0]["error"].as_str().unwrap().contains("--threshold"), "{}", v[0]);
    assert!(err(&o).contains("--threshold"), "{}", err(&o));
    // Without --json, nothing on stdout; help still prints normally.
    let o = run(&["compare", "--threshold", "x", "a.png", "b.png"]);
    assert_eq!((o.status.code(), out(&o).as_str()), (Some(2), ""));
    let o = run(&["compare", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(out(&o).contains("--json"));
}

#[test]
fn files_that_are_not_what_a_command_reads_are_named_for_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let photo = grey(&d.join("grey.png"), 64, 64);
    let p = photo.to_str().unwrap();
    // A folder given as the pair list is not "a photo".
    let o = run(&["eval", "pairs", "--pairs", d.to_str().unwrap()]);
    refused(&o, "is a folder, not a pair list");
    let fifo = d.join("pairs.tsv");
    mkfifo(&fifo);
    refused(&run(&["eval", "pairs", "--pairs", fifo.to_str().unwrap()]), "is a FIFO (named pipe), not a pair list");
    // A folder given as the gallery: said so, not "disk I/O error" or "read-only".
    for args in [vec!["identify", p], vec!["enroll", "ann", p], vec!["subjects", "list"], vec!["forget", "ann"]] {
        let mut a = vec!["--gallery", d.to_str().unwrap()];
        a.extend(args);
        let o = run(&a);
        refused(&o, "is a folder, not a gallery file");
        assert!(!err(&o).contains("I/O") && !err(&o).contains("read-only"), "{a:?}: {}", err(&o));
    }
    // A missing gallery is missing, not "not a visage gallery".
    let o = run(&["--gallery", d.join("none.db").to_str().unwrap(), "identify", p]);
    refused(&o, "none.db: no such gallery");
    assert!(!err(&o).contains("not a visage gallery"), "{}", err(&o));
}

#[test]
fn recognize_refuses_known_people_named_like_its_answers() {
    let dir = tempfile::tempdir().unwrap();
    let probe = grey(&dir.path().join("probe.png"), 64, 64);
    for reserved in ["unknown_person", "no_persons_found"] {
        // As a NAME.jpg file, and as a NAME/ folder.
        let known = dir.path().join(format!("known-{reserved}"));
        std::fs::create_dir(&known).unwrap();
        grey(&known.join(format!("{reserved}.png")), 64, 64);
        let o = run(&[OsStr::new("recognize"), known.as_os_str(), probe.as_os_str()]);
        refused(&o, reserved);
        assert!(err(&o).contains("reserved"), "{}", err(&o));
        let folder = dir.path().join(format!("folder-{reserved}"));
        std::fs::create_dir_all(folder.join(reserved)).unwrap();
        grey(&folder.join(reserved).join("a.png"), 64, 64);
        refused(&run(&[OsStr::new("recognize"), folder.as_os_str(), probe.as_os_str()]), "reserved");
    }
}

#[test]
fn eval_refuses_unwritable_outputs_and_bad_folds_before_embedding() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.tsv");
    std::fs::write(&pairs, (0..40).map(|i| format!("a{i}.jpg\tb{i}.jpg\t{}\n", i % 2)).collect::<String>()).unwrap();
    let p = pairs.to_str().unwrap();
    let o = run(&["eval", "pairs", "--pairs", p, "--folds", "0"]);
    refused(&o, "--folds 0");
    assert!(!err(&o).contains("pair file has"), "{}", err(&o));
    let missing = dir.path().join("no/such/folder");
    for opt in ["--plot", "--scores"] {
        let target = missing.join(if opt == "--plot" { "roc.png" } else { "scores.tsv" });
        let o = run(&["eval", "pairs", "--pairs", p, "--folds", "2", opt, target.to_str().unwrap()]);
        refused(&o, "no/such/folder");
        assert!(!err(&o).contains("a0.jpg"), "refused before reading any photo: {}", err(&o));
    }
}

#[test]
fn names_are_matched_by_their_nfc_form_and_shown_as_typed() {
    let Some(data) = visage_testdata::data_dir("names_are_matched_by_their_nfc_form_and_shown_as_typed") else { return };
    let lfw = data.join("lfw/images");
    let dir = tempfile::tempdir().unwrap();
    let gal = dir.path().join("g.db");
    let g = gal.to_str().unwrap();
    let (nfc, nfd) = ("Jos\u{e9} M\u{fc}ller", "Jose\u{301} Mu\u{308}ller");
    assert!(run(&["--gallery", g, "enroll", nfc, &lfw_photo(&lfw, "Colin_Powell", 1)]).status.success());
    // Verified under the other spelling: the same person.
    let o = run(&["--gallery", g, "verify", nfd, &lfw_photo(&lfw, "Colin_Powell", 2)]);
    assert_eq!(o.status.code(), Some(0), "{} {}", out(&o), err(&o));
    assert!(out(&o).contains(nfc), "{}", out(&o));
    // Names in messages are as a person reads them, not Rust escapes.
    let o = run(&["--gallery", g, "verify", "Zoe\u{308}", &lfw_photo(&lfw, "Colin_Powell", 2)]);
    refused(&o, "no one called \"Zo\u{eb}\"");
    let o = run(&["--gallery", g, "forget", nfd]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(err(&o).contains(&format!("forgot \"{nfc}\"")) && !err(&o).contains("\\u{"), "{}", err(&o));
}

#[test]
fn duplicates_name_the_photo_and_enroll_dir_goes_on_past_them() {
    let Some(data) = visage_testdata::data_dir("duplicates_name_the_photo_and_enroll_dir_goes_on_past_them") else { return };
    let lfw = data.join("lfw/images");
    let dir = tempfile::tempdir().unwrap();
    let gal = dir.path().join("g.db");
    let g = gal.to_str().unwrap();
    let colin = lfw_photo(&lfw, "Colin_Powell", 1);
    assert!(run(&["--gallery", g, "enroll", "Colin", &colin]).status.success());
    let copy = dir.path().join("copy.jpg");
    std::fs::copy(&colin, &copy).unwrap();
    let o = run(&["--gallery", g, "enroll", "Powell", copy.to_str().unwrap()]);
    refused(&o, "copy.jpg");
    assert!(err(&o).contains("already enrolled as \"Colin\"") && err(&o).contains("--allow-duplicate"), "{}", err(&o));
    // enroll-dir: the duplicate is refused by name, everything else is enrolled.
    let people = dir.path().join("people");
    for (who, photo) in [("ann", colin.clone()), ("bob", lfw_photo(&lfw, "Tony_Blair", 1)), ("cat", lfw_photo(&lfw, "George_W_Bush", 1))] {
        std::fs::create_dir_all(people.join(who)).unwrap();
        std::fs::copy(photo, people.join(who).join("1.jpg")).unwrap();
    }
    let o = run(&["--gallery", g, "enroll-dir", people.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "the duplicate is a refusal: {}", err(&o));
    assert!(
        err(&o).contains("ann/1.jpg") && err(&o).contains("already enrolled as \"Colin\"") && err(&o).contains("--allow-duplicate"),
        "{}",
        err(&o)
    );
    let list = out(&run(&["--gallery", g, "subjects", "list", "--json"]));
    let names: Vec<String> = json_lines(&list).iter().map(|v| v["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["Colin", "bob", "cat"], "{list}");
}
