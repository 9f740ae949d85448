//! Two `visage serve` processes keeping their galleries in one Milvus server (`--milvus`, a
//! build with the `milvus` feature), against a real server: scripts/test.d/10-milvus.sh starts
//! one in a network namespace and sets VISAGE_MILVUS. The processes have data directories of
//! their own holding the same keys (as replicas behind a load balancer would), so everything
//! one of them sees of the other's galleries came through Milvus.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn milvus(test: &str) -> Option<String> {
    match std::env::var("VISAGE_MILVUS") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if visage_testdata::data_required() => panic!("{test}: VISAGE_REQUIRE_DATA is set and VISAGE_MILVUS (a Milvus server) is not"),
        _ => {
            eprintln!("SKIP {test}: VISAGE_MILVUS is not set (scripts/test.d/10-milvus.sh runs this against a real server)");
            None
        }
    }
}

fn start(data: &Path, milvus: &str, prefix: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "2", "--data", &data.to_string_lossy()])
        .args(["--milvus", milvus, "--milvus-prefix", prefix])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("galleries in Milvus at"), "{line}");
    let addr = line.split("http://").nth(1).and_then(|s| s.split_whitespace().next()).unwrap_or_else(|| panic!("no address in {line:?}"));
    Server { child, base: format!("http://{addr}") }
}

fn key(data: &Path, tenant: &str, scope: &str) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(["keys", "create", "--data", &data.to_string_lossy(), "--tenant", tenant, "--scope", scope])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn multipart(text: &[(&str, &str)], image: &[u8]) -> (String, Vec<u8>) {
    let b = "visage-test-boundary-9d2f";
    let mut body = Vec::new();
    for (k, v) in text {
        body.extend(format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
    }
    body.extend(
        format!("--{b}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(image);
    body.extend(format!("\r\n--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

fn call(method: &str, url: &str, key: &str, body: Option<(String, Vec<u8>)>) -> (u16, serde_json::Value) {
    let req = ureq::request(method, url).set("Authorization", &format!("Bearer {key}"));
    let resp = match body {
        Some((ctype, bytes)) => req.set("Content-Type", &ctype).send_bytes(&bytes),
        None => req.call(),
    };
    let r = match resp {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = r.status();
    let text = r.into_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

const ENROL: &str = "train/live/0007/0007_00_00_01_116.jpg";
const LIVE: &str = "test/live/0007/0007_01_05_03_100.jpg";
const OTHER: &str = "test/live/0011/";

fn first_in(dir: &Path) -> Vec<u8> {
    let mut e: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    e.sort();
    std::fs::read(&e[0]).unwrap()
}

#[test]
fn two_servers_share_one_gallery_in_milvus() {
    let test = "two_servers_share_one_gallery_in_milvus";
    let Some(url) = milvus(test) else { return };
    let Some(data) = visage_testdata::data_dir(test) else { return };
    let n = data.join("nuaa");
    let img = |p: &str| std::fs::read(n.join(p)).unwrap();
    // Keys made once and copied: each process has its own data directory.
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (admin, viewer, other) = (key(da.path(), "acme", "admin"), key(da.path(), "acme", "recognize"), key(da.path(), "globex", "admin"));
    for e in std::fs::read_dir(da.path()).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("keys.db") {
            std::fs::copy(e.path(), db.path().join(e.file_name())).unwrap();
        }
    }
    let prefix = format!(
        "two{}x{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() % 1_000_000_000
    );
    let (a, b) = (start(da.path(), &url, &prefix), start(db.path(), &url, &prefix));
    let (ua, ub) = (|p: &str| format!("{}{p}", a.base), |p: &str| format!("{}{p}", b.base));

    // A creates the gallery; B lists it, and a second create on B is a conflict.
    let (st, v) = call("POST", &ua("/v1/galleries"), &admin, Some(("application/json".into(), br#"{"name":"front-door"}"#.to_vec())));
    assert_eq!(st, 201, "{v}");
    let (st, v) = call("GET", &ub("/v1/galleries"), &viewer, None);
    assert_eq!(
        (st, v["galleries"][0]["name"].as_str(), v["galleries"][0]["templates"].as_u64()),
        (200, Some("front-door"), Some(0)),
        "{v}"
    );
    let (st, v) = call("POST", &ub("/v1/galleries"), &admin, Some(("application/json".into(), br#"{"name":"front-door"}"#.to_vec())));
    assert_eq!((st, v["code"].as_str()), (409, Some("gallery_exists")), "{v}");

    // An enrollment acknowledged by A is in B's very next identify, and the other way round.
    let t = Instant::now();
    let (st, v) = call("POST", &ua("/v1/galleries/front-door/subjects/s7/faces"), &admin, Some(multipart(&[], &img(ENROL))));
    assert_eq!(st, 201, "{v}");
    let enrolled = t.elapsed();
    let t = Instant::now();
    let (st, v) = call("POST", &ub("/v1/galleries/front-door/identify"), &viewer, Some(multipart(&[("top", "2")], &img(LIVE))));
    let identified = t.elapsed();
    assert_eq!(st, 200, "{v}");
    let f = &v["faces"][0];
    assert_eq!((f["decision"].as_str(), f["name"].as_str(), f["threshold"].as_f64()), (Some("match"), Some("s7"), Some(0.6)), "{v}");
    eprintln!("enroll on A acknowledged in {enrolled:?}; identify on B (match s7) in {identified:?}");
    // What an identify costs over Milvus (a photo: decoding, detection and embedding included;
    // an embedding: the gallery's part alone), 5 of each on B.
    let emb = Command::new(env!("CARGO_BIN_EXE_visage")).args(["embed", &n.join(LIVE).to_string_lossy()]).output().unwrap();
    let emb: serde_json::Value = serde_json::from_slice(&emb.stdout).unwrap();
    let by_emb = serde_json::json!({"embedding": emb["faces"][0]["embedding"]}).to_string().into_bytes();
    for (what, body) in [("a photo", multipart(&[], &img(LIVE))), ("an embedding", ("application/json".to_string(), by_emb))] {
        let mut ts: Vec<_> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let (st, v) = call("POST", &ub("/v1/galleries/front-door/identify"), &viewer, Some(body.clone()));
                assert_eq!((st, v["faces"][0]["name"].as_str()), (200, Some("s7")), "{v}");
                t.elapsed()
            })
            .collect();
        ts.sort();
        eprintln!("identify by {what} on B, 5 requests: median {:?}, min {:?}, max {:?}", ts[2], ts[0], ts[4]);
    }
    let eleven = first_in(&n.join(OTHER));
    let (st, v) = call("POST", &ub("/v1/galleries/front-door/subjects/s11/faces"), &admin, Some(multipart(&[], &eleven)));
    assert_eq!(st, 201, "{v}");
    let (_, v) = call("POST", &ua("/v1/galleries/front-door/identify"), &viewer, Some(multipart(&[("top", "2")], &eleven)));
    assert_eq!(v["faces"][0]["name"], "s11", "{v}");
    assert_eq!(v["faces"][0]["candidates"].as_array().unwrap().len(), 2, "{v}");
    // The unknown: a threshold nobody is within.
    let (_, v) = call("POST", &ub("/v1/galleries/front-door/identify"), &viewer, Some(multipart(&[("threshold", "0.1")], &img(LIVE))));
    assert_eq!((v["faces"][0]["decision"].as_str(), v["faces"][0]["name"].is_null()), (Some("unknown"), true), "{v}");
    // The same photo through the other process adds nothing; the face id is the same.
    let (st, v) = call("POST", &ub("/v1/galleries/front-door/subjects/s7/faces"), &admin, Some(multipart(&[], &img(ENROL))));
    assert_eq!((st, v["added"].as_u64(), v["already_enrolled"].as_u64()), (200, Some(0), Some(1)), "{v}");
    let (_, faces) = call("GET", &ua("/v1/galleries/front-door/subjects/s7/faces"), &viewer, None);
    assert_eq!(faces["faces"][0]["id"], v["face_id"], "{faces} {v}");
    // Verify on B against what A enrolled.
    let (_, v) = call("POST", &ub("/v1/galleries/front-door/subjects/s7/verify"), &viewer, Some(multipart(&[], &img(LIVE))));
    assert_eq!((v["match"].as_bool(), v["decision"].as_str()), (Some(true), Some("match")), "{v}");

    // Another tenant, on either process, sees none of it.
    for u in [ua("/v1/galleries"), ub("/v1/galleries")] {
        assert_eq!(call("GET", &u, &other, None).1["galleries"].as_array().unwrap().len(), 0);
    }
    let (st, v) = call("POST", &ub("/v1/galleries/front-door/identify"), &other, Some(multipart(&[], &img(LIVE))));
    assert_eq!((st, v["code"].as_str()), (404, Some("gallery_not_found")), "{v}");

    // Rename on A, forget on B: each seen by the other at once.
    let (st, v) = call(
        "PATCH",
        &ua("/v1/galleries/front-door/subjects/s11"),
        &admin,
        Some(("application/json".into(), br#"{"name":"eleven"}"#.to_vec())),
    );
    assert_eq!(st, 200, "{v}");
    let (_, v) = call("GET", &ub("/v1/galleries/front-door/subjects"), &viewer, None);
    let names: Vec<&str> = v["subjects"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["eleven", "s7"], "{v}");
    let t = Instant::now();
    let (st, v) = call("DELETE", &ub("/v1/galleries/front-door/subjects/s7"), &admin, None);
    assert_eq!((st, v["templates"].as_u64()), (200, Some(1)), "{v}");
    eprintln!("forget on B in {:?}, erased: {}", t.elapsed(), v["erased"]);
    let (_, v) = call("POST", &ua("/v1/galleries/front-door/identify"), &viewer, Some(multipart(&[], &img(LIVE))));
    assert_ne!(v["faces"][0]["name"], "s7", "{v}");
    let (st, v) = call("POST", &ua("/v1/galleries/front-door/subjects/s7/verify"), &viewer, Some(multipart(&[], &img(LIVE))));
    assert_eq!((st, v["code"].as_str()), (404, Some("subject_not_found")), "{v}");

    // B's metrics count the shared gallery.
    let m = ureq::get(&ub("/metrics")).call().unwrap().into_string().unwrap();
    assert!(m.contains("visage_gallery_templates{tenant=\"acme\",gallery=\"front-door\"} 1"), "{m}");

    // A deletes the gallery: B, which has it open, answers 404 from its next request.
    assert_eq!(call("DELETE", &ua("/v1/galleries/front-door"), &admin, None).0, 204);
    let (st, v) = call("GET", &ub("/v1/galleries/front-door/subjects"), &viewer, None);
    assert_eq!((st, v["code"].as_str()), (404, Some("gallery_not_found")), "{v}");
    assert_eq!(call("GET", &ub("/v1/galleries"), &viewer, None).1["galleries"].as_array().unwrap().len(), 0);
}
