//! Pulls from a real registry (issue #4): Debian's docker-registry on 127.0.0.1,
//! one per test (started by scripts/registry, killed by its own pid on drop),
//! and images built here from /bin/busybox, pushed with skopeo. No mocks, and
//! never a public registry.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use podshim::image::{
    AuthFiles, Digest, ImageError, ImageRef, PullFailure, PullOptions, RegistriesConf, Store,
    host_arch,
};
use serde_json::{Value, json};

use crate::support::*;

// ---------------------------------------------------------------------------
// The registry.

struct Registry {
    dir: tempfile::TempDir,
    port: u16,
    pid: i32,
}

fn install_registry() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let out = Command::new(repo().join("scripts/registry"))
            .arg("install")
            .output()
            .expect("scripts/registry install");
        assert!(out.status.success(), "{}", stderr(&out));
    });
}

impl Registry {
    fn start() -> Registry {
        Self::start_with(&[])
    }

    fn start_with_auth(user: &str, password: &str) -> Registry {
        Self::start_with(&[user, password])
    }

    fn start_with(auth: &[&str]) -> Registry {
        install_registry();
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(repo().join("scripts/registry"))
            .arg("start")
            .arg(dir.path())
            .args(auth)
            .output()
            .unwrap();
        assert!(out.status.success(), "registry start: {}", stderr(&out));
        let text = stdout(&out);
        let mut it = text.split_whitespace();
        let port = it.next().unwrap().parse().unwrap();
        let pid = it.next().unwrap().parse().unwrap();
        Registry { dir, port, pid }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `skopeo copy oci:LAYOUT:TAG docker://HOST/DEST`.
    fn push(&self, tag: &str, dest: &str, extra: &[&str]) {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--quiet", "--dest-tls-verify=false"])
            .args(extra)
            .arg(format!("oci:{}:{tag}", layouts().display()))
            .arg(format!("docker://{}/{dest}", self.host()));
        if self.dir.path().join("htpasswd").exists() {
            c.args(["--dest-creds", "tester:s3cret"]);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "skopeo {dest}: {}", stderr(&out));
    }

    /// Where the registry keeps a blob's bytes.
    fn blob_file(&self, d: &Digest) -> PathBuf {
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&d.hex()[..2])
            .join(d.hex())
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let pid = Pid::from_raw(self.pid);
        let _ = kill(pid, Signal::SIGTERM);
        for _ in 0..100 {
            if kill(pid, None).is_err() || is_zombie(self.pid) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = kill(pid, Signal::SIGKILL);
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------
// Test images: an OCI layout built from /bin/busybox.

enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, Vec<u8>, u32),
    Link(&'a str, &'a str),
}

fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Entry::File(p, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, &data[..]).unwrap();
            }
            Entry::Link(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn sha(data: &[u8]) -> String {
    Digest::of_bytes(data).to_string()
}

fn put_blob(dir: &Path, data: &[u8]) -> String {
    let d = sha(data);
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), data).unwrap();
    d
}

/// Writes an image (config, layers, manifest) and returns the manifest's descriptor.
fn image(dir: &Path, arch: &str, layers: &[Vec<u8>], gzipped: bool) -> Value {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in layers {
        diff_ids.push(sha(tar));
        let (blob, mt) = if gzipped {
            (gzip(tar), "application/vnd.oci.image.layer.v1.tar+gzip")
        } else {
            (tar.clone(), "application/vnd.oci.image.layer.v1.tar")
        };
        let d = put_blob(dir, &blob);
        descs.push(json!({"mediaType": mt, "digest": d, "size": blob.len()}));
    }
    let config = serde_json::to_vec(&json!({
        "created": "2024-01-02T03:04:05Z",
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let cd = put_blob(dir, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let md = put_blob(dir, &manifest);
    json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md,
        "size": manifest.len(),
        "platform": {"architecture": arch, "os": "linux"},
    })
}

fn index(dir: &Path, manifests: Vec<Value>) -> Value {
    let bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
    .unwrap();
    let d = put_blob(dir, &bytes);
    json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": bytes.len()})
}

fn platform_layer(text: &str) -> Vec<u8> {
    tar_of(&[
        Entry::Dir("etc/"),
        Entry::File("etc/platform", text.as_bytes().to_vec(), 0o644),
    ])
}

fn other_arches() -> Vec<&'static str> {
    ["arm64", "s390x", "ppc64le", "amd64"]
        .into_iter()
        .filter(|a| *a != host_arch())
        .collect()
}

/// One OCI layout, made once per test run, with tags:
/// - `multi`: two gzip layers (busybox; then a whiteout of etc/gone and etc/new);
/// - `plain`: the same two layers uncompressed (pushed with zstd compression);
/// - `index`: an index of this host's platform and another (etc/platform says which);
/// - `foreign`: an index of two platforms that are not this host's.
fn layouts() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pull-layout");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let busybox = std::fs::read("/bin/busybox").expect("/bin/busybox (busybox-static)");
        let l1 = tar_of(&[
            Entry::Dir("bin/"),
            Entry::File("bin/busybox", busybox, 0o755),
            Entry::Link("bin/sh", "busybox"),
            Entry::Link("bin/cat", "busybox"),
            Entry::Link("bin/sleep", "busybox"),
            Entry::Dir("etc/"),
            Entry::File("etc/gone", b"gone\n".to_vec(), 0o644),
            Entry::File("etc/kept", b"kept\n".to_vec(), 0o644),
        ]);
        let l2 = tar_of(&[
            Entry::Dir("etc/"),
            Entry::File("etc/.wh.gone", Vec::new(), 0o644),
            Entry::File("etc/new", b"new\n".to_vec(), 0o644),
        ]);
        let arch = host_arch();
        let others = other_arches();
        let tag = |mut d: Value, t: &str| {
            d["annotations"] = json!({"org.opencontainers.image.ref.name": t});
            d
        };
        let multi = image(&dir, arch, &[l1.clone(), l2.clone()], true);
        let plain = image(&dir, arch, &[l1.clone(), l2], false);
        let host = image(&dir, arch, &[platform_layer(arch)], true);
        let other = image(&dir, others[0], &[platform_layer(others[0])], true);
        let idx = index(&dir, vec![other.clone(), host]);
        let other2 = image(&dir, others[1], &[platform_layer(others[1])], true);
        let foreign = index(&dir, vec![other, other2]);
        let top = json!({
            "schemaVersion": 2,
            "manifests": [
                tag(multi, "multi"), tag(plain, "plain"), tag(idx, "index"), tag(foreign, "foreign"),
            ],
        });
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
        dir
    })
}

/// The digest of a layer blob of the `multi` image, by position.
fn multi_layer(i: usize) -> Digest {
    let idx: Value =
        serde_json::from_slice(&std::fs::read(layouts().join("index.json")).unwrap()).unwrap();
    let m = &idx["manifests"][0];
    let bytes = std::fs::read(
        layouts()
            .join("blobs/sha256")
            .join(&m["digest"].as_str().unwrap()[7..]),
    )
    .unwrap();
    let m: Value = serde_json::from_slice(&bytes).unwrap();
    Digest::parse(m["layers"][i]["digest"].as_str().unwrap()).unwrap()
}

// ---------------------------------------------------------------------------
// Helpers.

fn opts() -> PullOptions {
    PullOptions {
        auth: AuthFiles { files: vec![] },
        ..PullOptions::default()
    }
}

fn opts_with(conf: &str) -> PullOptions {
    PullOptions {
        registries: RegistriesConf::parse(conf, Path::new("/test/registries.conf")).unwrap(),
        ..opts()
    }
}

fn r(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

/// `podshim` with a private store (and state) under `dir`, no auth files from $HOME.
pub(crate) fn cli(dir: &Path) -> Command {
    let mut c = Command::new(podshim_bin());
    c.env("PODSHIM_STORE", dir.join("store"))
        .env("PODSHIM_ROOT", dir.join("run"))
        .env("PODSHIM_LOGS", dir.join("log"))
        .env("HOME", dir)
        // Loopback-only pods, as support::podshim's (the host's network untouched).
        .env("PODSHIM_NETWORK", "none")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("DOCKER_CONFIG")
        .env_remove("CONTAINERS_REGISTRIES_CONF");
    c
}

/// Every blob in the store has the content its name says, and nothing is
/// left in tmp/ or half-unpacked in layers/.
fn assert_store_clean(store: &Path) {
    for e in std::fs::read_dir(store.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let got = Digest::of_bytes(&std::fs::read(e.path()).unwrap());
        assert_eq!(got.hex(), name, "blob {name} does not match its name");
    }
    let tmp: Vec<_> = std::fs::read_dir(store.join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "tmp/ not empty: {tmp:?}");
    for e in std::fs::read_dir(store.join("layers")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "half-unpacked layer {name}");
    }
}

fn names_in(store: &Path) -> Vec<String> {
    Store::open(store)
        .unwrap()
        .list()
        .unwrap()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect()
}

fn pull_err(store: &Store, image: &str, o: &PullOptions) -> (PullFailure, String) {
    match store.pull(&r(image), o) {
        Err(e @ ImageError::Pull { kind, .. }) => (kind, e.to_string()),
        Err(e) => panic!("{image}: not a pull error: {e}"),
        Ok(_) => panic!("{image}: pulled"),
    }
}

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn pull_by_tag_then_by_digest_unpacks_layers_with_whiteouts() {
    let reg = Registry::start();
    reg.push("multi", "test/multi:v1", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("{}/test/multi:v1", reg.host());

    // By tag, through the CLI: one progress line per layer off a terminal.
    let out = cli(tmp.path()).args(["pull", &name]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let digest = printed.split_whitespace().nth(1).unwrap().to_string();
    assert!(printed.starts_with(&name), "{printed}");
    assert_eq!(stderr(&out).lines().count(), 2, "{}", stderr(&out));
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let image = store.get(&r(&name)).unwrap();
    assert_eq!(image.layer_dirs.len(), 2);
    assert!(image.layer_dirs[0].join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_to_string(image.layer_dirs[0].join("etc/gone")).unwrap(),
        "gone\n"
    );
    // The whiteout became an overlayfs whiteout (a 0:0 character device).
    use std::os::unix::fs::FileTypeExt;
    let wh = std::fs::symlink_metadata(image.layer_dirs[1].join("etc/gone")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(
        image
            .config
            .config()
            .as_ref()
            .unwrap()
            .cmd()
            .as_ref()
            .unwrap(),
        &["sh"]
    );
    assert_store_clean(&tmp.path().join("store"));

    // Again: nothing is fetched, both layers are already present.
    let out = cli(tmp.path()).args(["pull", &name]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).matches("already present").count(),
        2,
        "{}",
        stderr(&out)
    );
    let out = cli(tmp.path())
        .args(["pull", "-q", &name])
        .output()
        .unwrap();
    assert!(
        out.status.success() && stderr(&out).is_empty(),
        "{}",
        stderr(&out)
    );

    // By digest, into a fresh store.
    let fresh = tempfile::tempdir().unwrap();
    let by_digest = format!("{}/test/multi@{digest}", reg.host());
    let got = Store::open(fresh.path())
        .unwrap()
        .pull(&r(&by_digest), &opts())
        .unwrap();
    assert_eq!(got.manifest_digest, digest);
    assert_eq!(names_in(fresh.path()), std::slice::from_ref(&by_digest));
    // A wrong digest is refused.
    let wrong = format!("{}/test/multi@sha256:{}", reg.host(), "0".repeat(64));
    let (kind, _) = pull_err(&Store::open(fresh.path()).unwrap(), &wrong, &opts());
    assert_eq!(kind, PullFailure::UnknownManifest);

    // `images` lists the pulled image.
    let out = cli(tmp.path()).args(["images"]).output().unwrap();
    assert!(stdout(&out).contains(&name), "{}", stdout(&out));
}

#[test]
fn pull_docker_schema2_zstd_layers_and_an_index() {
    let reg = Registry::start();
    reg.push("multi", "test/docker:v1", &["--format", "v2s2"]);
    reg.push("plain", "test/zstd:v1", &["--dest-compress-format", "zstd"]);
    reg.push("index", "test/index:v1", &["--all"]);
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();

    let docker = store
        .pull(&r(&format!("{}/test/docker:v1", reg.host())), &opts())
        .unwrap();
    let mbytes = std::fs::read(
        tmp.path()
            .join("blobs/sha256")
            .join(&docker.manifest_digest[7..]),
    )
    .unwrap();
    let m: Value = serde_json::from_slice(&mbytes).unwrap();
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    assert!(docker.layer_dirs[1].join("etc/new").is_file());

    let zstd = store
        .pull(&r(&format!("{}/test/zstd:v1", reg.host())), &opts())
        .unwrap();
    let mbytes = std::fs::read(
        tmp.path()
            .join("blobs/sha256")
            .join(&zstd.manifest_digest[7..]),
    )
    .unwrap();
    let m: Value = serde_json::from_slice(&mbytes).unwrap();
    assert!(
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["mediaType"].as_str().unwrap().ends_with("+zstd")),
        "{m}"
    );
    // Same diff_ids as the gzip image: the unpacked layers are shared.
    assert_eq!(zstd.layer_dirs, docker.layer_dirs);

    let idx = store
        .pull(&r(&format!("{}/test/index:v1", reg.host())), &opts())
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(idx.layer_dirs[0].join("etc/platform")).unwrap(),
        host_arch()
    );
    assert_store_clean(tmp.path());
}

#[test]
fn short_names_and_docker_io_redirected_to_the_local_registry() {
    let reg = Registry::start();
    reg.push("multi", "library/nginx:latest", &[]);
    reg.push("multi", "team/app:v2", &[]);
    let host = reg.host();
    let dead = format!("127.0.0.1:{}", closed_port());

    // unqualified-search-registries: the first registry that has it wins.
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!("unqualified-search-registries = [\"{dead}\", \"{host}\"]\n"),
    )
    .unwrap();
    let out = cli(tmp.path())
        .args(["--registries-conf"])
        .arg(&conf)
        .args(["pull", "-q", "team/app:v2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("{host}/team/app:v2 ")),
        "{}",
        stdout(&out)
    );

    // A docker.io prefix whose location is the local registry: `nginx` pulls offline.
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let o = opts_with(&format!(
        "[[registry]]\nprefix = \"docker.io\"\nlocation = \"{host}\"\n"
    ));
    let got = store.pull_name("nginx", &o).unwrap();
    assert_eq!(got.name.to_string(), "docker.io/library/nginx:latest");

    // The same through a mirror, the location itself being unreachable: the
    // mirror is tried first and serves it.
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let o = opts_with(&format!(
        "[[registry]]\nprefix = \"docker.io\"\nlocation = \"{dead}\"\n[[registry.mirror]]\nlocation = \"{host}\"\n"
    ));
    let got = store.pull_name("nginx:latest", &o).unwrap();
    assert_eq!(got.name.to_string(), "docker.io/library/nginx:latest");
    assert_eq!(
        names_in(store_dir.path()),
        ["docker.io/library/nginx:latest"]
    );

    // A dead mirror falls back to the location.
    let o = opts_with(&format!(
        "[[registry]]\nprefix = \"docker.io\"\nlocation = \"{host}\"\n[[registry.mirror]]\nlocation = \"{dead}\"\n"
    ));
    store.pull(&r("docker.io/library/nginx"), &o).unwrap();
}

#[test]
fn auth_with_a_credentials_file_and_unauthorized_without() {
    let reg = Registry::start_with_auth("tester", "s3cret");
    reg.push("multi", "private/app:v1", &[]);
    let name = format!("{}/private/app:v1", reg.host());
    let tmp = tempfile::tempdir().unwrap();

    // No credentials: one line, naming image and registry, nothing stored.
    let out = cli(tmp.path())
        .args(["pull", "-q", &name])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "podshim: pulling {name} from {}: unauthorized",
            reg.host()
        )),
        "{err}"
    );

    // Wrong password in a docker config.json: still unauthorized.
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    std::fs::create_dir_all(tmp.path().join(".docker")).unwrap();
    std::fs::write(
        tmp.path().join(".docker/config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            reg.host(),
            b64("tester:wrong")
        ),
    )
    .unwrap();
    let out = cli(tmp.path())
        .args(["pull", "-q", &name])
        .output()
        .unwrap();
    assert!(stderr(&out).contains("unauthorized"), "{}", stderr(&out));

    // $REGISTRY_AUTH_FILE comes first, and has the right one.
    let auth = tmp.path().join("auth.json");
    std::fs::write(
        &auth,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            reg.host(),
            b64("tester:s3cret")
        ),
    )
    .unwrap();
    let out = cli(tmp.path())
        .env("REGISTRY_AUTH_FILE", &auth)
        .args(["pull", "-q", &name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(names_in(&tmp.path().join("store")), [name]);
}

#[test]
fn every_pull_error_is_one_line_naming_image_and_registry_and_stores_nothing() {
    let reg = Registry::start();
    reg.push("multi", "test/multi:v1", &[]);
    reg.push("foreign", "test/foreign:v1", &["--all"]);
    let host = reg.host();
    let dead = format!("127.0.0.1:{}", closed_port());
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).unwrap();
    let blocked = opts_with(&format!(
        "[[registry]]\nlocation = \"{host}\"\nblocked = true\n"
    ));
    let cases: Vec<(String, PullOptions, PullFailure)> = vec![
        (
            format!("{dead}/test/multi:v1"),
            opts(),
            PullFailure::Unreachable,
        ),
        (
            format!("{host}/no/such:v1"),
            opts(),
            PullFailure::UnknownRepository,
        ),
        (
            format!("{host}/test/multi:nope"),
            opts(),
            PullFailure::UnknownManifest,
        ),
        (
            format!("{host}/test/multi:v1"),
            blocked,
            PullFailure::Blocked,
        ),
        (
            format!("{host}/test/foreign:v1"),
            opts(),
            PullFailure::NoMatchingPlatform,
        ),
    ];
    for (image, o, want) in &cases {
        let (kind, msg) = pull_err(&store, image, o);
        assert_eq!(kind, *want, "{image}: {msg}");
        assert!(!msg.contains('\n'), "{msg}");
        let registry = ImageRef::parse(image).unwrap().registry;
        assert!(
            msg.contains(image.as_str()) && msg.contains(&registry),
            "{msg}"
        );
    }
    assert!(names_in(tmp.path()).is_empty());

    // A tampered blob in the registry's storage (same size, one byte flipped).
    let layer = multi_layer(1);
    let file = reg.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let image = format!("{host}/test/multi:v1");
    let (kind, msg) = pull_err(&store, &image, &opts());
    assert_eq!(kind, PullFailure::DigestMismatch, "{msg}");
    assert!(
        msg.contains(&layer.to_string()) && msg.contains(&host),
        "{msg}"
    );
    assert!(names_in(tmp.path()).is_empty());
    assert!(!store.blob_path(&layer).exists());
    assert_store_clean(tmp.path());

    // Through the CLI: exit status 1 and one line on stderr.
    let out = cli(tmp.path())
        .args(["pull", "-q", &image])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn concurrent_pulls_of_the_same_image_share_the_store() {
    let reg = Registry::start();
    reg.push("multi", "test/multi:v1", &[]);
    reg.push("index", "test/index:v1", &["--all"]);
    let name = format!("{}/test/multi:v1", reg.host());
    let tmp = tempfile::tempdir().unwrap();

    // Two processes at once.
    let children: Vec<_> = (0..2)
        .map(|_| {
            cli(tmp.path())
                .args(["pull", "-q", &name])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(
        names_in(&tmp.path().join("store")),
        std::slice::from_ref(&name)
    );
    assert_store_clean(&tmp.path().join("store"));

    // Two threads at once, two different images into a fresh store.
    let fresh = tempfile::tempdir().unwrap();
    let store = Store::open(fresh.path()).unwrap();
    let index = format!("{}/test/index:v1", reg.host());
    std::thread::scope(|s| {
        let a = s.spawn(|| store.pull(&r(&name), &opts()));
        let b = s.spawn(|| store.pull(&r(&name), &opts()));
        let c = s.spawn(|| store.pull(&r(&index), &opts()));
        a.join().unwrap().unwrap();
        b.join().unwrap().unwrap();
        c.join().unwrap().unwrap();
    });
    let mut names = names_in(fresh.path());
    names.sort();
    let mut want = vec![name, index];
    want.sort();
    assert_eq!(names, want);
    assert_store_clean(fresh.path());
}

#[test]
fn an_interrupted_pull_completes_on_rerun_and_prune_sweeps_its_leftovers() {
    let reg = Registry::start();
    reg.push("multi", "test/multi:v1", &[]);
    let name = format!("{}/test/multi:v1", reg.host());
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    let store = Store::open(&store_dir).unwrap();
    // What a pull killed half-way leaves: its first layer blob complete
    // (renamed into blobs/ after verification), the second half-written in
    // tmp/, a half-unpacked layer dir, and no name.
    let first = multi_layer(0);
    std::fs::copy(reg.blob_file(&first), store.blob_path(&first)).unwrap();
    std::fs::write(store_dir.join("tmp/blob-half"), b"partial").unwrap();
    std::fs::create_dir(store_dir.join("layers/.tmp-half")).unwrap();
    assert!(names_in(&store_dir).is_empty());

    let out = cli(tmp.path()).args(["pull", &name]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).matches("already present").count(),
        1,
        "{}",
        stderr(&out)
    );
    assert_eq!(names_in(&store_dir), std::slice::from_ref(&name));

    // prune: the leftovers and an unreferenced blob go; the image stays whole.
    std::fs::write(store.blob_path(&Digest::of_bytes(b"stray")), b"stray").unwrap();
    let out = cli(tmp.path()).args(["prune"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("removed 1 blobs (5 bytes), 0 unpacked layers, 2 leftovers"),
        "{}",
        stdout(&out)
    );
    assert_store_clean(&store_dir);
    store.get(&r(&name)).unwrap();
}

#[test]
fn resolve_images_pulls_per_image_pull_policy() {
    use podshim::pod::prepare as resolve_images_with;
    let reg = Registry::start();
    reg.push("multi", "test/app:latest", &[]);
    reg.push("multi", "test/app:v1", &[]);
    let host = reg.host();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let pod = |containers: &str| {
        let p = tmp.path().join("pod.yaml");
        std::fs::write(
            &p,
            format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n{containers}"),
        )
        .unwrap();
        podshim::manifest::load(&p).unwrap()
    };
    // IfNotPresent (a tag) and Always (no tag) both pull what is missing.
    let m = pod(&format!(
        "    - {{name: a, image: {host}/test/app:v1}}\n    - {{name: b, image: {host}/test/app}}\n"
    ));
    let images = resolve_images_with(&m.pod, &store, &opts()).unwrap();
    let latest = images.infos[&format!("{host}/test/app")].name.clone();
    assert_eq!(latest, format!("{host}/test/app:latest"));
    let first = store.get(&r(&latest)).unwrap().manifest_digest;

    // :latest is Always: a new image under the tag is pulled again.
    reg.push("index", "test/app:latest", &["--all"]);
    resolve_images_with(&m.pod, &store, &opts()).unwrap();
    let second = store.get(&r(&latest)).unwrap().manifest_digest;
    assert_ne!(first, second);
    // v1 is IfNotPresent: what is stored is used, even with the registry gone.
    drop(reg);
    let m = pod(&format!("    - {{name: a, image: {host}/test/app:v1}}\n"));
    resolve_images_with(&m.pod, &store, &opts()).unwrap();
    // Always with the registry unreachable uses the stored image (with a warning).
    let m = pod(&format!(
        "    - {{name: b, image: {host}/test/app:latest}}\n"
    ));
    resolve_images_with(&m.pod, &store, &opts()).unwrap();

    // Never: a missing image is an error naming it.
    let m = pod(&format!(
        "    - name: c\n      image: {host}/test/absent:v1\n      imagePullPolicy: Never\n"
    ));
    let err = format!(
        "{:#}",
        resolve_images_with(&m.pod, &store, &opts()).err().unwrap()
    );
    assert!(
        err.contains(&format!("{host}/test/absent:v1")) && err.contains("Never"),
        "{err}"
    );
    // A missing image from a registry that is gone: the pull error, naming both.
    let m = pod(&format!(
        "    - {{name: d, image: {host}/test/absent:v1}}\n"
    ));
    let err = format!(
        "{:#}",
        resolve_images_with(&m.pod, &store, &opts()).err().unwrap()
    );
    assert!(
        err.contains("container \"d\"") && err.contains("unreachable"),
        "{err}"
    );
}

#[test]
fn up_runs_image_nginx_offline_and_rmi_refuses_while_the_pod_uses_it() {
    let reg = Registry::start();
    reg.push("multi", "library/nginx:latest", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nprefix = \"docker.io\"\nlocation = \"{}\"\n",
            reg.host()
        ),
    )
    .unwrap();
    let ns = unique_namespace("pull");
    let pod = tmp.path().join("pod.yaml");
    std::fs::write(
        &pod,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n    - name: web\n      image: nginx\n      command: [sh, -c, 'cat /etc/new; sleep 3600']\n"
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        cli(tmp.path())
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args(args)
            .output()
            .unwrap()
    };
    let _cleanup = Cleanup {
        ids: vec![format!("{ns}_web"), format!("{ns}_web_web")],
        dir: tmp.path().join("run"),
    };
    let out = run(&["up", pod.to_str().unwrap(), "--timeout", "60"]);
    assert!(out.status.success(), "up: {}", stderr(&out));
    let key = format!("{ns}/web");
    let mut logs = String::new();
    for _ in 0..50 {
        logs = stdout(&run(&["logs", &key, "-c", "web"]));
        if logs.contains("new") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(logs.trim(), "new");

    let out = run(&["rmi", "nginx"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("used by pod {key}")),
        "{}",
        stderr(&out)
    );
    let out = run(&["down", &key]);
    assert!(out.status.success(), "down: {}", stderr(&out));
    let out = run(&["rmi", "nginx"]);
    assert!(out.status.success(), "rmi: {}", stderr(&out));
    assert!(names_in(&tmp.path().join("store")).is_empty());
}
