//! `visage serve` under load and faults, on loopback only, each bounded in time and count:
//! concurrent clients mixing enroll and identify (every acknowledged enrollment there
//! afterwards; p50/p99 and throughput printed), SIGKILL under load and a restart (nothing
//! acknowledged lost, the gallery consistent), slow clients and hostile photos answered while
//! others are served, and identify throughput over HTTP against the command line's on the
//! same photos and cores.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    base: String,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn visage() -> Command {
    Command::new(env!("CARGO_BIN_EXE_visage"))
}

fn key(data: &Path, scope: &str) -> String {
    let o = visage().args(["keys", "create", "--data", &data.to_string_lossy(), "--tenant", "acme", "--scope", scope]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

fn start(data: &Path, extra: &[&str]) -> Server {
    let mut child = visage()
        .args(["serve", "--listen", "127.0.0.1:0", "--data", &data.to_string_lossy()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).and_then(|s| s.split_whitespace().next()).unwrap_or_else(|| panic!("no address in {line:?}"));
    Server { child, base: format!("http://{addr}"), addr: addr.to_string() }
}

fn multipart(text: &[(&str, &str)], files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let b = "visage-load-boundary-91f3";
    let mut body = Vec::new();
    for (k, v) in text {
        body.extend(format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
    }
    for (k, bytes) in files {
        body.extend(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"; filename=\"{k}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

/// (status, body) or the transport error (connection refused or reset).
fn call(method: &str, url: &str, key: &str, body: Option<(String, Vec<u8>)>) -> Result<(u16, serde_json::Value), String> {
    let req = ureq::request(method, url).set("Authorization", &format!("Bearer {key}")).timeout(Duration::from_secs(60));
    let resp = match body {
        Some((ctype, bytes)) => req.set("Content-Type", &ctype).send_bytes(&bytes),
        None => req.call(),
    };
    let r = match resp {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = r.status();
    let text = r.into_string().map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))))
}

fn ok(r: Result<(u16, serde_json::Value), String>) -> (u16, serde_json::Value) {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn json(v: serde_json::Value) -> Option<(String, Vec<u8>)> {
    Some(("application/json".into(), v.to_string().into_bytes()))
}

/// NUAA's live photos, sorted: (the person's folder, path).
fn live_photos(nuaa: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for part in ["train/live", "test/live"] {
        let mut people: Vec<_> = std::fs::read_dir(nuaa.join(part)).unwrap().flatten().map(|e| e.path()).collect();
        people.sort();
        for p in people {
            let mut files: Vec<_> = std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()).collect();
            files.sort();
            let who = p.file_name().unwrap().to_string_lossy().to_string();
            out.extend(files.into_iter().map(|f| (who.clone(), f)));
        }
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn report(what: &str, mut lat: Vec<Duration>, wall: Duration) {
    lat.sort();
    eprintln!(
        "{what}: {} answered in {:.2} s = {:.1}/s, p50 {:.1} ms, p99 {:.1} ms",
        lat.len(),
        wall.as_secs_f64(),
        lat.len() as f64 / wall.as_secs_f64(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99)
    );
}

/// Every face of every person in the gallery, by person.
fn stored(base: &str, key: &str, gallery: &str) -> BTreeMap<String, BTreeSet<i64>> {
    let (_, v) = ok(call("GET", &format!("{base}/v1/galleries/{gallery}/subjects"), key, None));
    let mut out = BTreeMap::new();
    for s in v["subjects"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        let (_, f) = ok(call("GET", &format!("{base}/v1/galleries/{gallery}/subjects/{name}/faces"), key, None));
        let ids: BTreeSet<i64> = f["faces"].as_array().unwrap().iter().map(|f| f["id"].as_i64().unwrap()).collect();
        assert_eq!(ids.len() as u64, s["templates"].as_u64().unwrap(), "{name}: listed faces and the count agree");
        out.insert(name.to_string(), ids);
    }
    out
}

/// Acknowledged enrollments: (person, face id).
type Acked = Arc<Mutex<Vec<(String, i64)>>>;

/// `clients` threads, until `deadline` or their server goes away: every `enroll_every`-th
/// request enrolls the next unused photo (as its NUAA person), the others identify.
/// Returns the latencies of (enroll, identify), the transport errors, and the 503s.
fn run_clients(
    base: &str,
    setup: &Setup,
    clients: usize,
    enroll_every: usize,
    deadline: Instant,
    acked: &Acked,
) -> (Vec<Duration>, Vec<Duration>, usize, usize) {
    let (key, photos, probes) = (setup.key.as_str(), &setup.photos, &setup.probes);
    let next = Arc::new(AtomicUsize::new(0));
    let results: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..clients)
            .map(|c| {
                let (next, photos, probes, acked) = (next.clone(), photos.clone(), probes.clone(), acked.clone());
                sc.spawn(move || {
                    let (mut enr, mut idf, mut broken, mut busy) = (Vec::new(), Vec::new(), 0usize, 0usize);
                    let mut i = c;
                    while Instant::now() < deadline {
                        i += 1;
                        let t = Instant::now();
                        if i % enroll_every == 0 {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            let Some((who, bytes)) = photos.get(n) else { break };
                            let url = format!("{base}/v1/galleries/load/subjects/p{who}/faces");
                            match call("POST", &url, key, Some(multipart(&[], &[("image", bytes)]))) {
                                Ok((201, v)) => {
                                    enr.push(t.elapsed());
                                    acked.lock().unwrap().push((format!("p{who}"), v["face_id"].as_i64().unwrap()));
                                }
                                Ok((503, _)) => busy += 1,
                                Ok((st, v)) => {
                                    enr.push(t.elapsed());
                                    assert!(st == 422 || st == 409, "enroll: {st} {v}");
                                }
                                Err(_) => {
                                    broken += 1;
                                    break;
                                }
                            }
                        } else {
                            let bytes = &probes[i % probes.len()];
                            match call(
                                "POST",
                                &format!("{base}/v1/galleries/load/identify"),
                                key,
                                Some(multipart(&[], &[("image", bytes)])),
                            ) {
                                Ok((200, _)) => idf.push(t.elapsed()),
                                Ok((503, _)) => busy += 1,
                                Ok((st, v)) => panic!("identify: {st} {v}"),
                                Err(_) => {
                                    broken += 1;
                                    break;
                                }
                            }
                        }
                    }
                    (enr, idf, broken, busy)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut out = (Vec::new(), Vec::new(), 0, 0);
    for (e, i, b, busy) in results {
        out.0.extend(e);
        out.1.extend(i);
        out.2 += b;
        out.3 += busy;
    }
    out
}

/// Holds an exclusive lock on a file under `target/` while alive, so that these tests (each
/// in its own process under nextest) measure one at a time.
struct Serial(#[allow(dead_code)] std::fs::File);

impl Serial {
    fn take() -> Self {
        use std::os::fd::AsRawFd;
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/serve_load.lock");
        let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap();
        // SAFETY: flock(2) on a file descriptor we own; released when the file is closed.
        assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
        Serial(f)
    }
}

struct Setup {
    _serial: Serial,
    _dir: tempfile::TempDir,
    data: PathBuf,
    key: String,
    photos: Arc<Vec<(String, Vec<u8>)>>,
    probes: Arc<Vec<Vec<u8>>>,
}

fn setup() -> Option<Setup> {
    let nuaa = visage_testdata::data_dir("serve_load")?.join("nuaa");
    let serial = Serial::take();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("srv");
    std::fs::create_dir_all(&data).unwrap();
    let key = key(&data, "admin");
    let all = live_photos(&nuaa);
    // Enrollments take every other photo; identify probes come from the rest.
    let photos: Vec<(String, Vec<u8>)> = all.iter().step_by(2).map(|(w, p)| (w.clone(), std::fs::read(p).unwrap())).collect();
    let probes: Vec<Vec<u8>> = all.iter().skip(1).step_by(37).map(|(_, p)| std::fs::read(p).unwrap()).collect();
    Some(Setup { _serial: serial, _dir: dir, data, key, photos: Arc::new(photos), probes: Arc::new(probes) })
}

#[test]
fn concurrent_clients_mixing_enroll_and_identify_lose_no_enrollment() {
    let Some(s) = setup() else { return };
    let srv = start(&s.data, &["--workers", "2", "--queue", "64"]);
    assert_eq!(ok(call("POST", &format!("{}/v1/galleries", srv.base), &s.key, json(serde_json::json!({"name": "load"})))).0, 201);
    let acked: Acked = Default::default();
    let t = Instant::now();
    let (enr, idf, broken, busy) = run_clients(&srv.base, &s, 8, 3, Instant::now() + Duration::from_secs(4), &acked);
    let wall = t.elapsed();
    eprintln!("8 clients, 2 workers, 1 enroll in 3 requests, 4 s:");
    report("  enroll", enr.clone(), wall);
    report("  identify", idf.clone(), wall);
    let mut all: Vec<Duration> = enr.iter().chain(&idf).copied().collect();
    all.sort();
    report("  all", all, wall);
    eprintln!("  503 overloaded: {busy}");
    assert_eq!(broken, 0);
    assert!(enr.len() >= 10 && idf.len() >= 20, "{} enrollments, {} identifications", enr.len(), idf.len());
    // Every acknowledged enrollment is there, by its face id, and nothing else is.
    let have = stored(&srv.base, &s.key, "load");
    let acked = acked.lock().unwrap();
    let want: BTreeSet<(String, i64)> = acked.iter().cloned().collect();
    assert_eq!(want.len(), acked.len(), "face ids are unique");
    let got: BTreeSet<(String, i64)> = have.iter().flat_map(|(n, ids)| ids.iter().map(move |i| (n.clone(), *i))).collect();
    assert_eq!(got, want, "the gallery holds exactly the acknowledged enrollments");
}

#[test]
fn sigkill_under_load_then_restart_loses_nothing_acknowledged() {
    let Some(s) = setup() else { return };
    let srv = start(&s.data, &["--workers", "2"]);
    assert_eq!(ok(call("POST", &format!("{}/v1/galleries", srv.base), &s.key, json(serde_json::json!({"name": "load"})))).0, 201);
    let acked: Acked = Default::default();
    let mut srv = srv;
    let pid = srv.child.id() as i32;
    // Enrollment-heavy load; SIGKILL lands while requests are in flight.
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let (enr, _idf, broken, _) = run_clients(&srv.base, &s, 6, 1, Instant::now() + Duration::from_secs(20), &acked);
    killer.join().unwrap();
    let status = srv.child.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL));
    let acked = acked.lock().unwrap().clone();
    eprintln!("SIGKILL after 1.5 s: {} enrollments acknowledged, {} requests cut off", acked.len(), broken);
    assert!(acked.len() >= 5 && broken >= 1, "the kill came under load: {} acked, {broken} cut off", enr.len());

    // The file is whole, and a restarted server has every acknowledged face.
    let db = s.data.join("tenants/acme/load.db");
    {
        let c = rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE).unwrap();
        let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }
    let srv2 = start(&s.data, &["--workers", "2"]);
    let have = stored(&srv2.base, &s.key, "load");
    for (who, id) in &acked {
        assert!(have.get(who).is_some_and(|ids| ids.contains(id)), "acknowledged face {id} of {who} lost");
    }
    let total: usize = have.values().map(|v| v.len()).sum();
    let (_, g) = ok(call("GET", &format!("{}/v1/galleries", srv2.base), &s.key, None));
    assert_eq!(g["galleries"][0]["templates"].as_u64(), Some(total as u64));
    eprintln!("after restart: {total} faces stored ({} acknowledged, {} in flight when killed)", acked.len(), total - acked.len());
    assert!(total - acked.len() <= broken, "at most the cut-off requests were stored unacknowledged");
    // And it serves: identify finds the enrolled, enrollment goes on.
    let (who, _) = &acked[0];
    let (st, v) =
        ok(call("POST", &format!("{}/v1/galleries/load/identify", srv2.base), &s.key, Some(multipart(&[], &[("image", &s.probes[0])]))));
    assert_eq!(st, 200, "{v}");
    let next = &s.photos[s.photos.len() - 1];
    let (st, v) = ok(call(
        "POST",
        &format!("{}/v1/galleries/load/subjects/p{}/faces", srv2.base, next.0),
        &s.key,
        Some(multipart(&[], &[("image", &next.1)])),
    ));
    assert!(st == 201 || st == 422, "{st} {v}");
    let _ = who;
}

/// A PNG whose header claims `w` x `h` pixels (with valid CRCs), and almost no pixel data.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = b"IHDR".to_vec();
    chunk.extend(w.to_be_bytes());
    chunk.extend(h.to_be_bytes());
    chunk.extend([8, 2, 0, 0, 0]);
    out.extend(13u32.to_be_bytes());
    out.extend(&chunk);
    out.extend(crc32(&chunk).to_be_bytes());
    // A tiny IDAT (an empty zlib stream), so that decoders read the header as a real one's.
    let mut idat = b"IDAT".to_vec();
    idat.extend([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    out.extend(8u32.to_be_bytes());
    out.extend(&idat);
    out.extend(crc32(&idat).to_be_bytes());
    out.extend(0u32.to_be_bytes());
    out.extend(b"IEND");
    out.extend(crc32(b"IEND").to_be_bytes());
    out
}

#[test]
fn slow_clients_and_hostile_photos_are_answered_while_others_are_served() {
    let Some(s) = setup() else { return };
    let srv = start(&s.data, &["--workers", "2", "--body-timeout", "2", "--max-body", "4000000"]);
    let base = srv.base.clone();
    assert_eq!(ok(call("POST", &format!("{base}/v1/galleries"), &s.key, json(serde_json::json!({"name": "load"})))).0, 201);
    let (who, photo) = &s.photos[0];
    assert_eq!(
        ok(call("POST", &format!("{base}/v1/galleries/load/subjects/p{who}/faces"), &s.key, Some(multipart(&[], &[("image", photo)])))).0,
        201
    );

    // Slow clients: headers sent, then a body that trickles and stops.
    let slow: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut c = TcpStream::connect(&srv.addr).unwrap();
            write!(
                c,
                "POST /v1/galleries/load/identify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n",
                s.key
            )
            .unwrap();
            c
        })
        .collect();
    // One that never finishes its headers.
    let mut half = TcpStream::connect(&srv.addr).unwrap();
    half.write_all(b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Le").unwrap();
    let slow_started = Instant::now();

    // Hostile requests, each its answer.
    let live = &s.probes[0];
    let mut junk_jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    junk_jpeg.extend((0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    let huge = vec![7u8; 5_000_000];
    type Body = Option<(String, Vec<u8>)>;
    let cases: Vec<(&str, Body, u16, &str)> = vec![
        ("truncated", Some(multipart(&[], &[("image", &live[..live.len() / 3])])), 400, "bad_photo"),
        ("random bytes after a JPEG marker", Some(multipart(&[], &[("image", &junk_jpeg)])), 400, "bad_photo"),
        ("60000 x 60000 claimed", Some(multipart(&[], &[("image", &png_claiming(60000, 60000))])), 413, "photo_too_large"),
        ("0 x 0 claimed", Some(multipart(&[], &[("image", &png_claiming(0, 0))])), 400, "bad_photo"),
        ("empty photo", Some(multipart(&[], &[("image", b"")])), 400, "bad_photo"),
        ("wrong content type", Some(("image/jpeg".into(), live.clone())), 415, "unsupported_media_type"),
        ("oversized body", Some(multipart(&[], &[("image", &huge)])), 413, "body_too_large"),
        ("broken multipart", Some(("multipart/form-data; boundary=zz".into(), b"--zz\r\nContent-Disp".to_vec())), 400, "bad_request"),
        ("JSON, not base64", json(serde_json::json!({"image": 12})), 400, "bad_request"),
    ];
    // Meanwhile a well-behaved client identifies, and is answered each time.
    let good = std::thread::spawn({
        let (base, key, probe) = (base.clone(), s.key.clone(), live.clone());
        move || {
            let mut lat = Vec::new();
            for _ in 0..15 {
                let t = Instant::now();
                let (st, v) =
                    ok(call("POST", &format!("{base}/v1/galleries/load/identify"), &key, Some(multipart(&[], &[("image", &probe)]))));
                assert_eq!(st, 200, "{v}");
                lat.push(t.elapsed());
            }
            lat
        }
    });
    for (what, body, status, code) in cases {
        let (st, v) = ok(call("POST", &format!("{base}/v1/galleries/load/identify"), &s.key, body));
        assert_eq!((st, v["code"].as_str()), (status, Some(code)), "{what}: {v}");
    }
    let lat = good.join().unwrap();
    let worst = lat.iter().max().unwrap();
    report("identify beside 7 slow clients and 9 hostile requests", lat.clone(), lat.iter().sum());
    assert!(*worst < Duration::from_secs(3), "the well-behaved client waited {worst:?}");

    // The slow clients get 408 in the envelope once their time is up.
    for mut c in slow {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("application/problem+json") && text.contains("\"code\":\"timeout\""), "{text}");
    }
    let waited = slow_started.elapsed();
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(8), "{waited:?}");
    drop(half);
    // Still serving.
    assert_eq!(ok(call("GET", &format!("{base}/v1/galleries"), &s.key, None)).0, 200);
}

#[test]
fn identify_over_http_against_the_command_line_on_the_same_photos_and_cores() {
    let Some(s) = setup() else { return };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let srv = start(&s.data, &["--workers", &cores.to_string()]);
    let base = srv.base.clone();
    assert_eq!(ok(call("POST", &format!("{base}/v1/galleries"), &s.key, json(serde_json::json!({"name": "load"})))).0, 201);
    for (who, p) in s.photos.iter().step_by(50) {
        ok(call("POST", &format!("{base}/v1/galleries/load/subjects/p{who}/faces"), &s.key, Some(multipart(&[], &[("image", p)]))));
    }
    // The same photos for both: written to a folder for the command line.
    let n = 90;
    let photos: Vec<Vec<u8>> = s.photos.iter().skip(1).step_by(2).take(n).map(|p| p.1.clone()).collect();
    let dir = s.data.join("probe-photos");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, p) in photos.iter().enumerate() {
        std::fs::write(dir.join(format!("{i:04}.jpg")), p).unwrap();
    }
    let gallery = s.data.join("tenants/acme/load.db");

    // HTTP: 2 clients per core keep the workers busy; a warm-up first.
    for p in photos.iter().take(4) {
        ok(call("POST", &format!("{base}/v1/galleries/load/identify"), &s.key, Some(multipart(&[], &[("image", p)]))));
    }
    let photos = Arc::new(photos);
    let http_pass = || {
        let next = Arc::new(AtomicUsize::new(0));
        let t = Instant::now();
        let lat: Vec<Duration> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..2 * cores)
                .map(|_| {
                    let (photos, next, base, key) = (photos.clone(), next.clone(), base.clone(), s.key.clone());
                    sc.spawn(move || {
                        let mut lat = Vec::new();
                        while let Some(p) = photos.get(next.fetch_add(1, Ordering::Relaxed)) {
                            let t = Instant::now();
                            let (st, v) = ok(call(
                                "POST",
                                &format!("{base}/v1/galleries/load/identify"),
                                &key,
                                Some(multipart(&[], &[("image", p)])),
                            ));
                            assert_eq!(st, 200, "{v}");
                            lat.push(t.elapsed());
                        }
                        lat
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        (t.elapsed(), lat)
    };
    // The command line on the same photos, gallery and cores; its start-up (loading the
    // models and the gallery) is measured on one photo and taken off.
    let cli = |args: &[&str]| {
        let t = Instant::now();
        let o = visage().arg("identify").args(args).arg("--gallery").arg(&gallery).arg("-q").output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        t.elapsed()
    };
    let one = dir.join("0000.jpg");
    let _ = cli(&[&one.to_string_lossy()]);
    // Rounds of one pass each, alternating, and the best of each kept: other work on the
    // machine slows a pass down, never speeds it up.
    let (mut http, mut cli_rate) = (0f64, 0f64);
    for round in 0..3 {
        let (wall, lat) = http_pass();
        let rate = n as f64 / wall.as_secs_f64();
        report(&format!("HTTP identify, round {round}"), lat, wall);
        http = http.max(rate);
        let startup = cli(&[&one.to_string_lossy()]);
        let all = cli(&[&dir.to_string_lossy()]);
        let rate = (n - 1) as f64 / (all - startup.min(all)).as_secs_f64().max(1e-3);
        eprintln!(
            "command line, round {round}: {n} photos in {:.2} s, start-up {:.2} s: {rate:.1}/s",
            all.as_secs_f64(),
            startup.as_secs_f64()
        );
        cli_rate = cli_rate.max(rate);
    }
    let ratio = http / cli_rate;
    eprintln!(
        "identify throughput on {cores} cores, {n} photos, best of 3: HTTP {http:.1}/s, command line {cli_rate:.1}/s; HTTP / CLI = {:.0}% (goal >= 90%)",
        ratio * 100.0
    );
    // The figure is printed for the record; the bound checked is loose, since other work may
    // share the machine's cores during either half.
    assert!(ratio > 0.5, "HTTP identify is far below the command line's: {ratio:.2}");
}
