//! Pulls from a hostile registry (issue 8, bounded reads and timeouts): a tiny
//! HTTP/1.1 server on a std `TcpListener` thread of this test binary, serving the
//! distribution API paths for one small image, with scripted misbehaviour per
//! request: endless or huge manifests, bodies longer than their Content-Length,
//! 503s, a blob cut off mid-way, a server that never answers. Plain HTTP on
//! 127.0.0.1 (loopback registries are insecure by default: podshim tries TLS,
//! then HTTP).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use podshim::image::Digest;
use serde_json::json;

use crate::support::*;

// ---------------------------------------------------------------------------
// The server.

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Req {
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server does with a request.
pub enum Reply {
    /// A whole response: status, extra headers, body (Content-Length is the body's).
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// Headers as given (no Content-Length unless listed), then `len` bytes of
    /// `fill` (or as much as the client takes), then the connection closes.
    Flood(u16, Vec<(String, String)>, u8, u64),
    /// Headers as given, then only `body` (shorter than they say), then a close.
    Cut(u16, Vec<(String, String)>, Vec<u8>),
    /// Never answer (the connection stays open until the server is dropped).
    Hang,
}

type Script = dyn Fn(&Req, usize) -> Option<Reply> + Send + Sync;

/// A registry for one image, misbehaving as its script says; shut down on drop.
pub struct Hostile {
    pub port: u16,
    pub image: TestImage,
    pub log: Arc<Mutex<Vec<Req>>>,
    /// Body bytes the server managed to write (a client that stops reading stops it).
    pub written: Arc<AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Hostile {
    /// `script(request, how many earlier requests had the same path)` returns
    /// `None` to serve the image normally.
    pub fn start(
        image: TestImage,
        script: impl Fn(&Req, usize) -> Option<Reply> + Send + Sync + 'static,
    ) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let (img, l, w, s) = (image.clone(), log.clone(), written.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (img, l, w, s, script) =
                    (img.clone(), l.clone(), w.clone(), s.clone(), script.clone());
                std::thread::spawn(move || serve(conn, &img, &l, &w, &s, &*script));
            }
        });
        Hostile {
            port,
            image,
            log,
            written,
            stop,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn name(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host())
    }

    /// Requests whose path ends with `suffix`.
    pub fn requests(&self, suffix: &str) -> Vec<Req> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|r| r.path.ends_with(suffix))
            .cloned()
            .collect()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn read_head(conn: &mut TcpStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() > 64 << 10 || conn.read(&mut byte).ok()? == 0 {
            return None;
        }
        // A TLS ClientHello (podshim tries HTTPS first): not HTTP, closed.
        if buf.is_empty() && byte[0] == 0x16 {
            return None;
        }
        buf.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Req { path, headers })
}

fn head(status: u16, headers: &[(String, String)]) -> Vec<u8> {
    let mut h = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h.into_bytes()
}

fn serve(
    mut conn: TcpStream,
    img: &TestImage,
    log: &Mutex<Vec<Req>>,
    written: &AtomicU64,
    stop: &std::sync::atomic::AtomicBool,
    script: &Script,
) {
    let Some(req) = read_head(&mut conn) else {
        return;
    };
    let n = {
        let mut l = log.lock().unwrap();
        let n = l.iter().filter(|r| r.path == req.path).count();
        l.push(req.clone());
        n
    };
    let reply = script(&req, n).unwrap_or_else(|| img.serve(&req));
    let send = |conn: &mut TcpStream, bytes: &[u8]| -> bool {
        let ok = conn.write_all(bytes).is_ok();
        if ok {
            written.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        }
        ok
    };
    match reply {
        Reply::Full(status, mut headers, body) => {
            headers.push(("Content-Length".into(), body.len().to_string()));
            let _ = conn.write_all(&head(status, &headers));
            send(&mut conn, &body);
        }
        Reply::Flood(status, headers, fill, len) => {
            let _ = conn.write_all(&head(status, &headers));
            let chunk = vec![fill; 64 << 10];
            let mut left = len;
            while left > 0 && !stop.load(Ordering::SeqCst) {
                let k = left.min(chunk.len() as u64) as usize;
                if !send(&mut conn, &chunk[..k]) {
                    break;
                }
                left -= k as u64;
            }
        }
        Reply::Cut(status, headers, body) => {
            let _ = conn.write_all(&head(status, &headers));
            send(&mut conn, &body);
            let _ = conn.flush();
        }
        Reply::Hang => {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let _ = conn.shutdown(Shutdown::Both);
}

// ---------------------------------------------------------------------------
// The image it serves.

/// A one-layer image (a 1 MiB file, so a cut-off download is mid-blob) with a
/// config of the caller's.
#[derive(Clone)]
pub struct TestImage {
    pub layer: Vec<u8>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

impl TestImage {
    pub fn new(config: serde_json::Value) -> TestImage {
        let mut data = vec![0u8; 1 << 20];
        // Not compressible, not constant: a resumed download that splices the
        // wrong bytes fails its digest.
        let mut x: u32 = 0x9e37_79b9;
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "data", &data[..]).unwrap();
        let layer = b.into_inner().unwrap();
        let mut config = config;
        config["rootfs"] = json!({"type": "layers", "diff_ids": [sha(&layer)]});
        TestImage::of(layer, "application/vnd.oci.image.layer.v1.tar", &config)
    }

    /// An image of one layer of `media_type` and `config`, its manifest made.
    pub fn of(layer: Vec<u8>, media_type: &str, config: &serde_json::Value) -> TestImage {
        let config = serde_json::to_vec(config).unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha(&config), "size": config.len()},
            "layers": [{"mediaType": media_type,
                        "digest": sha(&layer), "size": layer.len()}],
        }))
        .unwrap();
        TestImage {
            layer,
            config,
            manifest,
        }
    }

    pub fn plain() -> TestImage {
        TestImage::new(json!({
            "architecture": podshim::image::host_arch(),
            "os": "linux",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        }))
    }

    pub fn layer_digest(&self) -> String {
        sha(&self.layer)
    }

    /// The well-behaved answer to `req`.
    pub fn serve(&self, req: &Req) -> Reply {
        let p = req.path.as_str();
        if p == "/v2/" {
            return Reply::Full(200, vec![], b"{}".to_vec());
        }
        if p.contains("/manifests/") {
            let tag_ok = p.ends_with("/manifests/v1") || p.ends_with(&sha(&self.manifest));
            if !tag_ok {
                return Reply::Full(
                    404,
                    vec![("Content-Type".into(), "application/json".into())],
                    br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                        .to_vec(),
                );
            }
            return Reply::Full(
                200,
                vec![
                    ("Content-Type".into(), OCI_MANIFEST.into()),
                    ("Docker-Content-Digest".into(), sha(&self.manifest)),
                ],
                self.manifest.clone(),
            );
        }
        if p.contains("/tags/list") {
            return Reply::Full(200, vec![], br#"{"name":"x","tags":["v1"]}"#.to_vec());
        }
        let blob = if p.ends_with(&sha(&self.layer)) {
            &self.layer
        } else if p.ends_with(&sha(&self.config)) {
            &self.config
        } else {
            return Reply::Full(
                404,
                vec![],
                br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#.to_vec(),
            );
        };
        let mut headers = vec![("Accept-Ranges".to_string(), "bytes".to_string())];
        if let Some(range) = req.header("Range") {
            let start: usize = range
                .trim_start_matches("bytes=")
                .trim_end_matches('-')
                .parse()
                .unwrap();
            headers.push((
                "Content-Range".into(),
                format!("bytes {start}-{}/{}", blob.len() - 1, blob.len()),
            ));
            return Reply::Full(206, headers, blob[start..].to_vec());
        }
        Reply::Full(200, headers, blob.clone())
    }
}

fn sha(data: &[u8]) -> String {
    Digest::of_bytes(data).to_string()
}

// ---------------------------------------------------------------------------
// Helpers.

use crate::pull::cli;

/// Runs `cmd` and returns its output with its peak resident set (KiB): the
/// last `VmHWM` of `/proc/<pid>/status` read while it ran (the high-water mark
/// only grows; rusage's `ru_maxrss` would count the test binary's own pages
/// from before the exec).
fn run_measured(cmd: &mut Command) -> (Output, u64) {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let mut hwm = 0;
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                hwm = kib;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = child.wait().unwrap();
    (
        Output {
            status,
            stdout: t2.join().unwrap(),
            stderr: t.join().unwrap(),
        },
        hwm,
    )
}

/// Nothing half-written is left in the store's tmp/, and no name was written.
fn assert_nothing_stored(dir: &Path) {
    let tmp = dir.join("store/tmp");
    if tmp.exists() {
        let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
        assert!(left.is_empty(), "tmp/ not empty: {left:?}");
    }
    let index = dir.join("store/index.json");
    if index.exists() {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
        assert_eq!(v["manifests"], json!([]), "a name was written");
    }
}

fn pull(dir: &Path, name: &str) -> Output {
    cli(dir).args(["pull", "-q", name]).output().unwrap()
}

/// A pull that must fail (exit 1) and store nothing; its stderr.
fn pull_refused(dir: &Path, name: &str) -> String {
    let out = pull(dir, name);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_nothing_stored(dir);
    err
}

const CAP: u64 = 4 << 20;

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn an_endless_manifest_is_refused_at_the_cap_without_buffering_it() {
    // 256 MiB with no Content-Length: podshim must stop at 4 MiB + 1.
    let reg = Hostile::start(TestImage::plain(), |req, _| {
        req.path.contains("/manifests/").then(|| {
            Reply::Flood(
                200,
                vec![("Content-Type".into(), OCI_MANIFEST.into())],
                b' ',
                256 << 20,
            )
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/endless:v1");
    let (out, maxrss_kib) = run_measured(cli(tmp.path()).args(["pull", "-q", &name]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&name) && err.contains("manifest") && err.contains("4194304"),
        "{err}"
    );
    assert!(
        maxrss_kib < 64 << 10,
        "podshim pull peaked at {maxrss_kib} KiB"
    );
    // It stopped reading: the server could not write the whole body (socket
    // buffers hold a few MiB at most).
    let written = reg.written.load(Ordering::SeqCst);
    assert!(written < 32 << 20, "the client read {written} bytes");
    assert_nothing_stored(tmp.path());
}

#[test]
fn a_manifest_whose_content_length_exceeds_the_cap_is_refused_before_reading() {
    let reg = Hostile::start(TestImage::plain(), |req, _| {
        req.path.contains("/manifests/").then(|| {
            Reply::Flood(
                200,
                vec![
                    ("Content-Type".into(), OCI_MANIFEST.into()),
                    ("Content-Length".into(), (CAP + 1).to_string()),
                ],
                b' ',
                CAP + 1,
            )
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/big:v1");
    let err = pull_refused(tmp.path(), &name);
    assert!(
        err.contains(&name) && err.contains("4194305") && err.contains("4194304"),
        "{err}"
    );
}

#[test]
fn a_body_longer_than_its_content_length_is_read_only_up_to_it() {
    // Content-Length says 100; 64 MiB follow. podshim reads 100 bytes, finds
    // they are no manifest, and stops.
    let reg = Hostile::start(TestImage::plain(), |req, _| {
        req.path.contains("/manifests/").then(|| {
            Reply::Flood(
                200,
                vec![
                    ("Content-Type".into(), OCI_MANIFEST.into()),
                    ("Content-Length".into(), "100".into()),
                ],
                b'[',
                64 << 20,
            )
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/liar:v1");
    let (out, maxrss_kib) = run_measured(cli(tmp.path()).args(["pull", "-q", &name]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&name) && err.contains("manifest"), "{err}");
    assert!(maxrss_kib < 64 << 10, "peaked at {maxrss_kib} KiB");
    assert!(reg.written.load(Ordering::SeqCst) < 32 << 20);
    assert_nothing_stored(tmp.path());
}

#[test]
fn a_config_blob_longer_than_its_descriptor_is_refused_without_buffering_it() {
    let img = TestImage::plain();
    let config = sha(&img.config);
    let reg = Hostile::start(img, move |req, _| {
        req.path
            .ends_with(&config)
            .then(|| Reply::Flood(200, vec![], b'{', 256 << 20))
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/cfg:v1");
    let (out, maxrss_kib) = run_measured(cli(tmp.path()).args(["pull", "-q", &name]));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&name), "{err}");
    assert!(maxrss_kib < 64 << 10, "peaked at {maxrss_kib} KiB");
    assert_nothing_stored(tmp.path());
}

#[test]
fn a_503_is_retried_with_back_off_and_the_pull_succeeds() {
    let img = TestImage::plain();
    let layer = img.layer_digest();
    let reg = Hostile::start(img, move |req, n| {
        let flaky = req.path.contains("/manifests/") || req.path.ends_with(&layer);
        (flaky && n == 0).then(|| Reply::Full(503, vec![], b"busy".to_vec()))
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/flaky:v1");
    let out = pull(tmp.path(), &name);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(reg.requests("/manifests/v1").len(), 2);
    assert_eq!(reg.requests(&reg.image.layer_digest()).len(), 2);
    assert_nothing_stored_but(tmp.path(), &name);
}

#[test]
fn a_404_is_not_retried() {
    let reg = Hostile::start(TestImage::plain(), |_, _| None);
    let tmp = tempfile::tempdir().unwrap();
    let out = pull(tmp.path(), &reg.name("test/app:nope"));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not found"), "{err}");
    assert_eq!(reg.requests("/manifests/nope").len(), 1);
}

#[test]
fn a_blob_cut_off_mid_way_resumes_with_a_range_request() {
    let img = TestImage::plain();
    let layer = img.layer.clone();
    let ld = img.layer_digest();
    let reg = Hostile::start(img, move |req, n| {
        (req.path.ends_with(&ld) && n == 0).then(|| {
            Reply::Cut(
                200,
                vec![
                    ("Accept-Ranges".into(), "bytes".into()),
                    ("Content-Length".into(), layer.len().to_string()),
                ],
                layer[..layer.len() / 2].to_vec(),
            )
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/cut:v1");
    let out = pull(tmp.path(), &name);
    assert!(out.status.success(), "{}", stderr(&out));
    let gets = reg.requests(&reg.image.layer_digest());
    assert_eq!(gets.len(), 2, "{gets:?}");
    let half = reg.image.layer.len() / 2;
    assert_eq!(gets[1].header("Range"), Some(&*format!("bytes={half}-")));
    assert_nothing_stored_but(tmp.path(), &name);
}

#[test]
fn a_blob_cut_off_by_a_registry_without_ranges_is_fetched_again_whole() {
    // The second answer ignores the Range (200, the whole blob): podshim skips
    // what it has; the digest is checked over the whole blob anyway.
    let img = TestImage::plain();
    let layer = img.layer.clone();
    let ld = img.layer_digest();
    let reg = Hostile::start(img, move |req, n| {
        if !req.path.ends_with(&ld) {
            return None;
        }
        Some(match n {
            0 => Reply::Cut(
                200,
                vec![("Content-Length".into(), layer.len().to_string())],
                layer[..layer.len() / 3].to_vec(),
            ),
            _ => Reply::Full(200, vec![], layer.clone()),
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/noranges:v1");
    let out = pull(tmp.path(), &name);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(reg.requests(&reg.image.layer_digest()).len(), 2);
    assert_nothing_stored_but(tmp.path(), &name);
}

#[test]
fn a_blob_cut_off_every_time_fails_after_the_retries_and_leaves_no_temp_file() {
    let img = TestImage::plain();
    let layer = img.layer.clone();
    let ld = img.layer_digest();
    let reg = Hostile::start(img, move |req, _| {
        req.path.ends_with(&ld).then(|| {
            Reply::Cut(
                200,
                vec![("Content-Length".into(), layer.len().to_string())],
                layer[..1000].to_vec(),
            )
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/broken:v1");
    let err = pull_refused(tmp.path(), &name);
    assert!(
        err.contains(&name) && err.contains(&reg.image.layer_digest()),
        "{err}"
    );
    assert_eq!(reg.requests(&reg.image.layer_digest()).len(), 3);
}

#[test]
fn an_image_whose_env_exceeds_what_execve_accepts_is_refused_at_pull() {
    let big = format!("BIG={}", "x".repeat(200 << 10));
    let reg = Hostile::start(
        TestImage::new(json!({
            "architecture": podshim::image::host_arch(),
            "os": "linux",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin", big]},
        })),
        |_, _| None,
    );
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/bigenv:v1");
    let err = pull_refused(tmp.path(), &name);
    assert!(
        err.contains(&name) && err.contains("Env") && err.contains("execve"),
        "{err}"
    );
}

#[test]
fn up_timeout_bounds_a_pull_from_a_registry_that_never_answers() {
    let reg = Hostile::start(TestImage::plain(), |_, _| Some(Reply::Hang));
    let pod = Pod::new("hang", "hang");
    let image = reg.name("test/hang:v1");
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{name}}\n  namespace: {{ns}}\nspec:\n  containers:\n  - name: app\n    image: {image}\n"
    );
    let t = Instant::now();
    let out = pod.up(&yaml, &["--timeout", "3"]);
    let took = t.elapsed();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(took < Duration::from_secs(15), "up took {took:?}: {err}");
    assert!(err.contains(&image) && err.contains("timed out"), "{err}");
    pod.assert_nothing_left();
}

/// After a successful pull: only `name` is stored, and tmp/ is empty.
fn assert_nothing_stored_but(dir: &Path, name: &str) {
    let tmp: Vec<_> = std::fs::read_dir(dir.join("store/tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "tmp/ not empty: {tmp:?}");
    let store = podshim::image::Store::open(&dir.join("store")).unwrap();
    let names: Vec<String> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, [name]);
}

// ---------------------------------------------------------------------------
// The bearer token flow (distribution spec, "Token Authentication
// Specification"): `/v2/` challenges with a realm on this same server.

/// The token the token endpoint hands out and the registry then requires.
const TOKEN: &str = "t0ken-for-test-tok";
/// A service name with a comma and a space: a challenge's quoted values may hold both.
const SERVICE: &str = "hostile registry, test";

/// `application/x-www-form-urlencoded` query parameters of a request target.
fn query(path: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    };
    path.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// A 401 with a Bearer challenge whose realm is `/token` of the server the
/// request came to (its Host header).
fn challenge(req: &Req, repo: &str) -> Reply {
    let host = req.header("Host").unwrap_or("127.0.0.1");
    Reply::Full(
        401,
        vec![(
            "WWW-Authenticate".into(),
            format!(
                r#"Bearer realm="http://{host}/token",service="{SERVICE}",scope="repository:{repo}:pull""#
            ),
        )],
        br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
    )
}

/// A registry for `repo` whose every API path wants `Bearer TOKEN`, and whose
/// token endpoint answers as `token` says.
fn token_registry(
    repo: &'static str,
    token: impl Fn(&Req) -> Reply + Send + Sync + 'static,
) -> Hostile {
    Hostile::start(TestImage::plain(), move |req, _| {
        if req.path.starts_with("/token") {
            return Some(token(req));
        }
        if req.path == "/v2/" || req.header("Authorization") != Some(&*format!("Bearer {TOKEN}")) {
            return Some(challenge(req, repo));
        }
        None
    })
}

/// An auth file with `user:password` for `host`.
fn auth_file(dir: &Path, host: &str, user_password: &str) -> std::path::PathBuf {
    use base64::Engine as _;
    let path = dir.join("auth.json");
    let b64 = base64::engine::general_purpose::STANDARD.encode(user_password);
    std::fs::write(
        &path,
        format!(r#"{{"auths": {{"{host}": {{"auth": "{b64}"}}}}}}"#),
    )
    .unwrap();
    path
}

#[test]
fn a_bearer_challenge_is_answered_with_a_token_from_its_realm_given_the_auth_files_credentials() {
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("tester:s3cret")
    );
    let reg = token_registry("test/tok", move |req| {
        let mut q = query(&req.path);
        q.sort();
        let want = [
            ("scope".to_string(), "repository:test/tok:pull".to_string()),
            ("service".to_string(), SERVICE.to_string()),
        ];
        if req.header("Authorization") != Some(basic.as_str()) || q != want {
            return Reply::Full(401, vec![], br#"{"details":"bad credentials"}"#.to_vec());
        }
        Reply::Full(
            200,
            vec![("Content-Type".into(), "application/json".into())],
            format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#).into_bytes(),
        )
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/tok:v1");
    let auth = auth_file(tmp.path(), &reg.host(), "tester:s3cret");
    let out = cli(tmp.path())
        .env("REGISTRY_AUTH_FILE", &auth)
        .args(["pull", "-q", &name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(reg.requests("/manifests/v1").len(), 1);
    let tokens: Vec<Req> = reg
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path.starts_with("/token"))
        .cloned()
        .collect();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_nothing_stored_but(tmp.path(), &name);
}

#[test]
fn a_token_server_answering_503_is_asked_again_and_the_pull_succeeds() {
    let tries = Arc::new(AtomicU64::new(0));
    let t = tries.clone();
    let reg = token_registry("test/busy-token", move |_| {
        if t.fetch_add(1, Ordering::SeqCst) == 0 {
            return Reply::Full(503, vec![], b"busy".to_vec());
        }
        Reply::Full(
            200,
            vec![],
            format!(r#"{{"access_token":"{TOKEN}"}}"#).into_bytes(),
        )
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/busy-token:v1");
    let out = pull(tmp.path(), &name);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(tries.load(Ordering::SeqCst), 2);
    assert_nothing_stored_but(tmp.path(), &name);
}

/// containers/image's `MaxAuthTokenBodySize`.
const TOKEN_CAP: u64 = 1 << 20;

#[test]
fn an_endless_token_answer_is_refused_at_the_cap_without_buffering_it() {
    // 512 MiB with no Content-Length from the token server the challenge names.
    let reg = token_registry("test/endless-token", |_| {
        Reply::Flood(
            200,
            vec![("Content-Type".into(), "application/json".into())],
            b' ',
            512 << 20,
        )
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/endless-token:v1");
    let t = Instant::now();
    let (out, maxrss_kib) = run_measured(cli(tmp.path()).args(["pull", "-q", &name]));
    let took = t.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&name)
            && err.contains(&format!("token from http://{}", reg.host()))
            && err.contains(&TOKEN_CAP.to_string()),
        "{err}"
    );
    assert!(
        maxrss_kib < 64 << 10,
        "podshim pull peaked at {maxrss_kib} KiB"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let written = reg.written.load(Ordering::SeqCst);
    assert!(written < 32 << 20, "the client read {written} bytes");
    assert!(reg.requests("/manifests/v1").is_empty());
    assert_nothing_stored(tmp.path());
}

#[test]
fn a_token_server_answering_401_is_unauthorized_naming_the_registry() {
    let reg = token_registry("test/denied", |_| {
        Reply::Full(
            401,
            vec![],
            br#"{"details":"incorrect username or password"}"#.to_vec(),
        )
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/denied:v1");
    let auth = auth_file(tmp.path(), &reg.host(), "tester:wrong");
    let out = cli(tmp.path())
        .env("REGISTRY_AUTH_FILE", &auth)
        .args(["pull", "-q", &name])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("unauthorized")
            && err.contains(&format!("from {}", reg.host()))
            && err.contains(&format!("token from http://{}: HTTP 401", reg.host())),
        "{err}"
    );
    // A refusal is not retried (the wrong password is not sent again).
    let tokens = reg
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path.starts_with("/token"))
        .count();
    assert_eq!(tokens, 1);
    assert!(
        !err.contains("tester:wrong") && !err.contains("dGVzdGVyOndyb25n"),
        "{err}"
    );
    assert_nothing_stored(tmp.path());
}

#[test]
fn a_bearer_realm_that_is_not_an_http_url_is_refused_naming_the_registry() {
    let reg = Hostile::start(TestImage::plain(), |req, _| {
        (req.path == "/v2/").then(|| {
            Reply::Full(
                401,
                vec![(
                    "WWW-Authenticate".into(),
                    r#"Bearer realm="file:///etc/passwd",service="x""#.into(),
                )],
                vec![],
            )
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/realm:v1");
    let err = pull_refused(tmp.path(), &name);
    assert!(
        err.contains(&format!("from {}", reg.host()))
            && err.contains(r#"realm "file:///etc/passwd" is not an http(s) URL"#),
        "{err}"
    );
    assert!(reg.requests("/manifests/v1").is_empty());
}

#[test]
fn a_manifest_of_more_layers_than_an_overlay_stacks_is_refused_before_any_blob_is_fetched() {
    let max = podshim::bundle::overlay::MAX_LOWER_LAYERS;
    let img = TestImage::plain();
    let manifest: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
    let layer = manifest["layers"][0].clone();
    let mut deep = manifest.clone();
    deep["layers"] = json!(vec![layer; max + 1]);
    let deep = serde_json::to_vec(&deep).unwrap();
    let reg = Hostile::start(img, move |req, _| {
        req.path.contains("/manifests/").then(|| {
            Reply::Full(
                200,
                vec![("Content-Type".into(), OCI_MANIFEST.into())],
                deep.clone(),
            )
        })
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/deep:v1");
    let err = pull_refused(tmp.path(), &name);
    assert!(
        err.contains(&name)
            && err.contains(&format!("{} layers", max + 1))
            && err.contains(&max.to_string()),
        "{err}"
    );
    assert!(reg.requests("").iter().all(|r| !r.path.contains("/blobs/")));
}

// ---------------------------------------------------------------------------
// Authentication asked for after /v2/, and tokens that run out.

/// The answer of a token endpoint that wants `tester:s3cret`.
fn token_answer(req: &Req, token: &str, expires_in: u64) -> Reply {
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("tester:s3cret")
    );
    if req.header("Authorization") != Some(basic.as_str()) {
        return Reply::Full(401, vec![], br#"{"details":"bad credentials"}"#.to_vec());
    }
    Reply::Full(
        200,
        vec![("Content-Type".into(), "application/json".into())],
        format!(r#"{{"token":"{token}","expires_in":{expires_in}}}"#).into_bytes(),
    )
}

fn token_requests(reg: &Hostile) -> usize {
    let log = reg.log.lock().unwrap();
    log.iter().filter(|r| r.path.starts_with("/token")).count()
}

fn pull_with_auth(dir: &Path, reg: &Hostile, name: &str) -> Output {
    let auth = auth_file(dir, &reg.host(), "tester:s3cret");
    cli(dir)
        .env("REGISTRY_AUTH_FILE", &auth)
        .args(["pull", "-q", name])
        .output()
        .unwrap()
}

#[test]
fn a_bearer_challenge_of_the_manifest_request_is_answered_though_v2_asked_for_none() {
    // `/v2/` is open (200, no challenge); the repository's paths want a token.
    let reg = Hostile::start(TestImage::plain(), |req, _| {
        if req.path.starts_with("/token") {
            return Some(token_answer(req, TOKEN, 300));
        }
        let authed = req.header("Authorization") == Some(&*format!("Bearer {TOKEN}"));
        (req.path != "/v2/" && !authed).then(|| challenge(req, "test/late"))
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/late:v1");
    let out = pull_with_auth(tmp.path(), &reg, &name);
    assert!(out.status.success(), "{}", stderr(&out));
    // One 401, one token, the manifest sent again with it.
    assert_eq!(reg.requests("/manifests/v1").len(), 2);
    assert_eq!(token_requests(&reg), 1);
    assert_nothing_stored_but(tmp.path(), &name);
}

#[test]
fn a_token_that_runs_out_during_the_pull_is_renewed_before_the_registry_refuses_it() {
    // Tokens live 1 s; the config is answered after 1.5 s, so the token of
    // the manifest is stale by the layer. A stale token gets a bare 401 (no
    // challenge): only the token's expiry tells podshim to renew it.
    let issued: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let img = TestImage::plain();
    let config = sha(&img.config);
    let iss = issued.clone();
    let reg = Hostile::start(img, move |req, _| {
        if req.path.starts_with("/token") {
            let mut iss = iss.lock().unwrap();
            iss.push(Instant::now());
            return Some(token_answer(req, &format!("tok-{}", iss.len() - 1), 1));
        }
        if req.path == "/v2/" {
            return Some(challenge(req, "test/short"));
        }
        let fresh = req
            .header("Authorization")
            .and_then(|a| a.strip_prefix("Bearer tok-"))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| iss.lock().unwrap().get(n).copied())
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1));
        if !fresh {
            return Some(Reply::Full(
                401,
                vec![],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}"#.to_vec(),
            ));
        }
        if req.path.ends_with(&config) {
            std::thread::sleep(Duration::from_millis(1500));
        }
        None
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/short:v1");
    let out = pull_with_auth(tmp.path(), &reg, &name);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        issued.lock().unwrap().len() >= 2,
        "the token was not renewed"
    );
    assert_nothing_stored_but(tmp.path(), &name);
}

#[test]
fn a_401_again_after_authenticating_anew_is_unauthorized_without_asking_again() {
    // Every token is refused: podshim answers the manifest's challenge once.
    let reg = Hostile::start(TestImage::plain(), |req, _| {
        if req.path.starts_with("/token") {
            return Some(token_answer(req, TOKEN, 300));
        }
        (req.path != "/v2/").then(|| challenge(req, "test/never"))
    });
    let tmp = tempfile::tempdir().unwrap();
    let name = reg.name("test/never:v1");
    let out = pull_with_auth(tmp.path(), &reg, &name);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&name) && err.contains("unauthorized"), "{err}");
    assert_eq!(reg.requests("/manifests/v1").len(), 2);
    assert_eq!(token_requests(&reg), 1);
    assert_nothing_stored(tmp.path());
}

// ---------------------------------------------------------------------------
// A deadline that passes while a layer unpacks.

/// An image of one gzip'd layer that unpacks to a file of `gib` GiB of zeros,
/// made of gzip members (gzip allows several in a row; the store's decoder
/// reads them all), so that it is generated in milliseconds. The config's
/// diff_id is not the layer's: the pull never gets that far.
fn zeros_image(gib: u64) -> TestImage {
    use std::io::Write as _;
    let gz = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let chunk = 16u64 << 20;
    let size = gib << 30;
    let mut h = tar::Header::new_gnu();
    h.set_path("zeros").unwrap();
    h.set_mtime(1_700_000_000);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let zeros = gz(&vec![0u8; chunk as usize]);
    let mut layer = gz(h.as_bytes());
    for _ in 0..size / chunk {
        layer.extend_from_slice(&zeros);
    }
    // The two zero blocks that end a tar.
    layer.extend_from_slice(&gz(&[0u8; 1024]));
    let config = json!({
        "architecture": podshim::image::host_arch(),
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(b"not this layer")]},
    });
    TestImage::of(
        layer,
        "application/vnd.oci.image.layer.v1.tar+gzip",
        &config,
    )
}

#[test]
fn up_timeout_stops_a_layer_being_unpacked_and_leaves_no_temporary_files() {
    let reg = Hostile::start(zeros_image(8), |_, _| None);
    let pod = Pod::new("unpack-timeout", "unpack");
    let store = pod.tmp.path().join("store");
    let image = reg.name("test/zeros:v1");
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {}\n  namespace: {}\nspec:\n  containers:\n  - name: app\n    image: {image}\n",
        pod.name, pod.ns
    );
    let path = pod.tmp.path().join("pod.yaml");
    std::fs::write(&path, yaml).unwrap();
    let t = Instant::now();
    let out = pod
        .cmd()
        .env("PODSHIM_STORE", &store)
        .arg("up")
        .arg(&path)
        .args(["--timeout", "2"])
        .output()
        .unwrap();
    let took = t.elapsed();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&image) && err.contains("timed out"), "{err}");
    // Loose: without the cancellation the 8 GiB are written out first (some 30 s).
    assert!(took < Duration::from_secs(20), "up took {took:?}: {err}");
    let leftovers: Vec<_> = ["tmp", "layers"]
        .iter()
        .flat_map(|d| std::fs::read_dir(store.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    assert!(leftovers.is_empty(), "left in the store: {leftovers:?}");
    pod.assert_nothing_left();
}
