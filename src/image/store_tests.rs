//! Store tests: import, load (hand-written layouts, tars of them, umoci/skopeo
//! when installed), verification, remove/GC, concurrency, overlay use.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::image::unpack::tests::RawTar;
use crate::image::unpack::{OPAQUE_XATTR, get_xattr};
use crate::image::{ImportOptions, host_arch};

fn r(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn put(dir: &Path, bytes: &[u8]) -> (String, u64) {
    let d = Digest::of_bytes(bytes);
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    (d.to_string(), bytes.len() as u64)
}

/// Write one image (config + gzip'd layers + manifest) into the layout at
/// `dir`; returns the manifest's (digest, size).
fn put_image(dir: &Path, arch: &str, layers: &[Vec<u8>], cmd: &str) -> (String, u64) {
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        diff_ids.push(Digest::of_bytes(l).to_string());
        let (d, s) = put(dir, &gz(l));
        descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s}));
    }
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": [cmd]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let (cd, cs) = put(dir, &serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": descs,
    });
    put(dir, &serde_json::to_vec(&manifest).unwrap())
}

fn write_index(dir: &Path, entries: serde_json::Value) {
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": entries});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

fn other_arch() -> &'static str {
    if host_arch() == "amd64" {
        "arm64"
    } else {
        "amd64"
    }
}

/// A layout whose one entry is an image index over two platforms; the
/// host's platform has a layer with `host` in it.
fn multi_platform_layout(dir: &Path, ref_name: &str) {
    let (od, os) = put_image(
        dir,
        other_arch(),
        &[RawTar::new().file("which", b"other").build()],
        "other",
    );
    let (hd, hs) = put_image(
        dir,
        host_arch(),
        &[RawTar::new().file("which", b"host").build()],
        "host",
    );
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": od, "size": os,
             "platform": {"architecture": other_arch(), "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": hd, "size": hs,
             "platform": {"architecture": host_arch(), "os": "linux"}},
        ],
    });
    let (id, is) = put(dir, &serde_json::to_vec(&index).unwrap());
    write_index(
        dir,
        serde_json::json!([{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": id, "size": is,
            "annotations": {"org.opencontainers.image.ref.name": ref_name}}]),
    );
}

/// A one-image layout (no index) with a single gzip'd layer.
fn simple_layout(dir: &Path, ref_name: &str, layer: Vec<u8>) -> String {
    let (md, ms) = put_image(dir, host_arch(), &[layer], "sh");
    write_index(
        dir,
        serde_json::json!([{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": ref_name}}]),
    );
    md
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).unwrap().count()
}

fn busybox_rootfs(dir: &Path) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::write(dir.join("etc/hostname"), b"pod\n").unwrap();
}

#[test]
fn store_open_creates_private_dirs() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    Store::open(&root).unwrap();
    for d in ["", "blobs", "blobs/sha256", "layers", "tmp"] {
        let m = fs::metadata(root.join(d)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o700, "{d}");
    }
    let err = Store::open(&root).unwrap().get(&r("nothere")).unwrap_err();
    assert!(matches!(err, ImageError::NotFound(_)));
    assert!(
        err.to_string().contains("docker.io/library/nothere:latest"),
        "{err}"
    );
}

#[test]
fn import_directory_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let opts = ImportOptions {
        cmd: Some(vec!["sh".into(), "-c".into(), "echo hi".into()]),
        env: vec!["PATH=/bin".into()],
        workdir: Some("/".into()),
        ..Default::default()
    };
    let name = r("localhost/busybox:test");
    let img = store.import(&rootfs, &name, &opts).unwrap();
    let got = store.get(&name).unwrap();
    assert_eq!(got.manifest_digest, img.manifest_digest);
    let cfg = got.config.config().as_ref().unwrap();
    assert_eq!(cfg.cmd().as_deref().unwrap(), ["sh", "-c", "echo hi"]);
    assert_eq!(cfg.env().as_deref().unwrap(), ["PATH=/bin"]);
    assert_eq!(got.config.os().to_string(), "linux");
    assert_eq!(got.config.architecture().to_string(), host_arch());
    assert_eq!(got.layer_dirs.len(), 1);
    let layer = &got.layer_dirs[0];
    assert_eq!(
        fs::read(layer.join("bin/busybox")).unwrap(),
        fs::read("/bin/busybox").unwrap()
    );
    assert_eq!(
        fs::read_link(layer.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    // Importing the same directory again gives the same layer (deterministic tar).
    let again = store
        .import(
            &rootfs,
            &r("localhost/busybox:again"),
            &ImportOptions::default(),
        )
        .unwrap();
    assert_eq!(again.layer_dirs, got.layer_dirs);
    let list = store.list().unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .any(|s| s.name == name && s.digest == img.manifest_digest && s.created.is_some())
    );
    // The store itself is an OCI layout other tools can read.
    assert!(store.root().join("oci-layout").is_file());
}

#[test]
fn import_compressed_tar_keeps_the_blob_as_is() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let tar = RawTar::new().file("hello", b"world").build();
    for (ext, bytes) in [
        ("tar.gz", gz(&tar)),
        ("tar.zst", zstd::encode_all(&tar[..], 3).unwrap()),
    ] {
        let src = tmp.path().join(format!("rootfs.{ext}"));
        fs::write(&src, &bytes).unwrap();
        let img = store
            .import(
                &src,
                &r(&format!("localhost/t:{}", ext.replace('.', "-"))),
                &ImportOptions::default(),
            )
            .unwrap();
        assert!(
            store.blob_path(&Digest::of_bytes(&bytes)).is_file(),
            "{ext}"
        );
        assert_eq!(
            img.config.rootfs().diff_ids()[0],
            Digest::of_bytes(&tar).to_string()
        );
        assert_eq!(fs::read(img.layer_dirs[0].join("hello")).unwrap(), b"world");
    }
    let src = tmp.path().join("plain.tar");
    fs::write(&src, &tar).unwrap();
    let img = store
        .import(&src, &r("localhost/t:plain"), &ImportOptions::default())
        .unwrap();
    assert_eq!(fs::read(img.layer_dirs[0].join("hello")).unwrap(), b"world");
}

#[test]
fn load_picks_this_hosts_platform_from_an_index() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    multi_platform_layout(&layout, "quay.io/org/multi:1.0");
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let imgs = store.load(&layout, None).unwrap();
    assert_eq!(imgs.len(), 1);
    assert_eq!(imgs[0].name, r("quay.io/org/multi:1.0"));
    let got = store.get(&r("quay.io/org/multi:1.0")).unwrap();
    assert_eq!(fs::read(got.layer_dirs[0].join("which")).unwrap(), b"host");
    assert_eq!(
        got.config
            .config()
            .as_ref()
            .unwrap()
            .cmd()
            .as_deref()
            .unwrap(),
        ["host"]
    );
    // By digest too.
    let by_digest = r(&format!("quay.io/org/multi@{}", got.manifest_digest));
    assert_eq!(
        store.get(&by_digest).unwrap().manifest_digest,
        got.manifest_digest
    );
}

#[test]
fn load_of_a_bare_tag_asks_for_a_name() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    simple_layout(&layout, "latest", RawTar::new().file("f", b"1").build());
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let err = store.load(&layout, None).unwrap_err();
    assert!(matches!(err, ImageError::NeedName { .. }), "{err}");
    assert!(err.to_string().contains("NAME"), "{err}");
    let imgs = store.load(&layout, Some(&r("app"))).unwrap();
    assert_eq!(imgs[0].name, r("docker.io/library/app:latest"));
    store.get(&r("app")).unwrap();
}

#[test]
fn load_of_a_tar_of_a_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    multi_platform_layout(&layout, "localhost:5000/x:y");
    let archive = tmp.path().join("layout.tar");
    let mut f = fs::File::create(&archive).unwrap();
    crate::image::import::tar_dir(&layout, &mut f).unwrap();
    drop(f);
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let imgs = store.load(&archive, None).unwrap();
    assert_eq!(imgs[0].name, r("localhost:5000/x:y"));
    assert_eq!(
        fs::read(imgs[0].layer_dirs[0].join("which")).unwrap(),
        b"host"
    );
    // And gzip'd.
    let gzipped = tmp.path().join("layout.tar.gz");
    fs::write(&gzipped, gz(&fs::read(&archive).unwrap())).unwrap();
    let imgs = store.load(&gzipped, Some(&r("localhost/z"))).unwrap();
    assert_eq!(imgs[0].name, r("localhost/z:latest"));
}

/// Nothing of a refused load is left in the store.
fn assert_nothing_stored(store: &Store) {
    assert!(store.list().unwrap().is_empty());
    assert_eq!(count(&store.root().join("layers")), 0);
    assert_eq!(count(&store.root().join("tmp")), 0);
}

#[test]
fn load_refuses_a_blob_whose_digest_does_not_match() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let layer = RawTar::new().file("f", b"1").build();
    let layer_digest = Digest::of_bytes(&gz(&layer));
    simple_layout(&layout, "localhost/t:1", layer);
    // Same size, one byte flipped.
    let p = layout.join("blobs/sha256").join(layer_digest.hex());
    let mut bytes = fs::read(&p).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&p, &bytes).unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let err = store.load(&layout, None).unwrap_err().to_string();
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(
        err.contains(&layer_digest.to_string()) && err.contains("localhost/t:1"),
        "{err}"
    );
    assert!(!store.has_blob(&layer_digest));
    assert_nothing_stored(&store);
}

#[test]
fn load_refuses_a_blob_whose_size_does_not_match() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let layer = RawTar::new().file("f", b"1").build();
    let layer_digest = Digest::of_bytes(&gz(&layer));
    let md = simple_layout(&layout, "localhost/t:1", layer);
    let p = layout.join("blobs/sha256").join(layer_digest.hex());
    fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .unwrap()
        .write_all(b"extra")
        .unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let err = store.load(&layout, None).unwrap_err().to_string();
    assert!(
        err.contains("size mismatch") && err.contains(&layer_digest.to_string()),
        "{err}"
    );
    assert_nothing_stored(&store);
    // A tampered manifest (JSON) is refused the same way.
    let mp = layout
        .join("blobs/sha256")
        .join(Digest::parse(&md).unwrap().hex());
    fs::OpenOptions::new()
        .append(true)
        .open(&mp)
        .unwrap()
        .write_all(b" ")
        .unwrap();
    let err = store.load(&layout, None).unwrap_err().to_string();
    assert!(err.contains("size mismatch") && err.contains(&md), "{err}");
}

#[test]
fn load_refuses_a_layer_that_does_not_match_its_diff_id() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let (md, ms) = {
        // A config whose diff_id is of other content.
        let layer = gz(&RawTar::new().file("f", b"1").build());
        let (ld, ls) = put(&layout, &layer);
        let config = serde_json::json!({"architecture": host_arch(), "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [Digest::of_bytes(b"other").to_string()]}});
        let (cd, cs) = put(&layout, &serde_json::to_vec(&config).unwrap());
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls}]});
        put(&layout, &serde_json::to_vec(&m).unwrap())
    };
    write_index(
        &layout,
        serde_json::json!([{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms}]),
    );
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let err = store
        .load(&layout, Some(&r("localhost/bad")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("diff_ids"), "{err}");
    assert_nothing_stored(&store);
}

#[test]
fn remove_deletes_unreferenced_blobs_and_layers_but_keeps_shared_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let shared = tmp.path().join("shared.tar");
    fs::write(&shared, RawTar::new().file("shared", b"s").build()).unwrap();
    let own = tmp.path().join("own.tar");
    fs::write(&own, RawTar::new().file("own", b"o").build()).unwrap();
    let cmd = |c: &str| ImportOptions {
        cmd: Some(vec![c.into()]),
        ..Default::default()
    };
    let a = store.import(&shared, &r("localhost/a"), &cmd("a")).unwrap();
    let b = store.import(&shared, &r("localhost/b"), &cmd("b")).unwrap();
    let c = store.import(&own, &r("localhost/c"), &cmd("c")).unwrap();
    assert_eq!(a.layer_dirs, b.layer_dirs);
    let blobs = store.root().join("blobs/sha256");
    // a, b: manifest + config each, one shared layer blob; c: 3.
    assert_eq!(count(&blobs), 8);
    store.remove(&r("localhost/a")).unwrap();
    assert!(matches!(
        store.get(&r("localhost/a")),
        Err(ImageError::NotFound(_))
    ));
    assert!(a.layer_dirs[0].is_dir(), "shared layer kept");
    assert_eq!(count(&blobs), 6);
    store.remove(&r("localhost/b")).unwrap();
    assert!(!b.layer_dirs[0].exists(), "unreferenced layer removed");
    assert_eq!(count(&blobs), 3);
    assert_eq!(
        store.get(&r("localhost/c")).unwrap().layer_dirs,
        c.layer_dirs
    );
    assert!(c.layer_dirs[0].join("own").is_file());
    let err = store.remove(&r("localhost/a")).unwrap_err();
    assert!(err.to_string().contains("localhost/a:latest"), "{err}");
}

#[test]
fn concurrent_imports_of_the_same_content_do_not_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let root = tmp.path().join("store");
    Store::open(&root).unwrap();
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let (root, rootfs) = (root.clone(), rootfs.clone());
            std::thread::spawn(move || {
                // Separate Store values: the lock is per open file, like two processes.
                let store = Store::open(&root).unwrap();
                store
                    .import(
                        &rootfs,
                        &r(&format!("localhost/bb:{i}")),
                        &ImportOptions::default(),
                    )
                    .unwrap()
            })
        })
        .collect();
    let imgs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(imgs[0].layer_dirs, imgs[1].layer_dirs);
    let store = Store::open(&root).unwrap();
    assert_eq!(store.list().unwrap().len(), 2);
    assert_eq!(count(&root.join("layers")), 1);
    assert_eq!(count(&root.join("tmp")), 0);
    for i in 0..2 {
        let img = store.get(&r(&format!("localhost/bb:{i}"))).unwrap();
        assert!(img.layer_dirs[0].join("bin/busybox").is_file());
    }
}

/// Unmounts on drop, so a failing assertion does not leave a mount behind.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn layers_work_as_overlay_lowerdirs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let lower = tmp.path().join("lower.tar");
    fs::write(
        &lower,
        RawTar::new()
            .file("gone", b"lower")
            .file("d/lowerfile", b"lower")
            .file("e/x", b"lower")
            .file("e/y", b"lower")
            .build(),
    )
    .unwrap();
    let upper = tmp.path().join("upper.tar");
    fs::write(
        &upper,
        RawTar::new()
            .file(".wh.gone", b"")
            .dir("d")
            .file("d/upperfile", b"upper")
            .file("d/.wh..wh..opq", b"")
            .file("e/.wh.x", b"")
            .build(),
    )
    .unwrap();
    let lo = store
        .import(&lower, &r("localhost/lower"), &ImportOptions::default())
        .unwrap();
    let up = store
        .import(&upper, &r("localhost/upper"), &ImportOptions::default())
        .unwrap();
    assert_eq!(
        get_xattr(&up.layer_dirs[0].join("d"), OPAQUE_XATTR)
            .unwrap()
            .as_deref(),
        Some(&b"y"[..])
    );
    let image = StoredImage {
        layer_dirs: vec![lo.layer_dirs[0].clone(), up.layer_dirs[0].clone()],
        ..up.clone()
    };
    let target = tmp.path().join("merged");
    fs::create_dir(&target).unwrap();
    let data = format!("lowerdir={}", image.overlay_lowerdir());
    nix::mount::mount(
        Some("overlay"),
        &target,
        Some("overlay"),
        nix::mount::MsFlags::MS_RDONLY,
        Some(data.as_str()),
    )
    .unwrap_or_else(|e| panic!("mount overlay {data}: {e}"));
    let _guard = Mounted(target.clone());
    assert!(
        !target.join("gone").exists(),
        "whiteout hides the lower file"
    );
    assert!(
        !target.join("d/lowerfile").exists(),
        "opaque dir hides lower content"
    );
    assert_eq!(fs::read(target.join("d/upperfile")).unwrap(), b"upper");
    assert!(!target.join("e/x").exists());
    assert_eq!(fs::read(target.join("e/y")).unwrap(), b"lower");
}

/// Images written by the real tools: umoci (gzip layers) and skopeo
/// (oci-archive, zstd), which scripts/setup installs.
#[test]
fn load_layouts_written_by_umoci_and_skopeo() {
    let have = |t: &str| {
        Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("umoci") || !have("skopeo") {
        crate::testing::cannot_run("umoci or skopeo is not installed (scripts/setup)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let layout = tmp.path().join("layout");
    let run = |args: &[&str]| {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let l = layout.to_str().unwrap();
    run(&["umoci", "init", "--layout", l]);
    run(&["umoci", "new", "--image", &format!("{l}:t")]);
    // (umoci 0.4.7's `insert` writes a truncated layer tar, which the
    // unpacker rightly refuses; unpack + repack writes a good one.)
    let bundle = tmp.path().join("bundle");
    let b = bundle.to_str().unwrap();
    run(&["umoci", "unpack", "--image", &format!("{l}:t"), b]);
    run(&[
        "cp",
        "-a",
        &format!("{}/.", rootfs.display()),
        &format!("{b}/rootfs/"),
    ]);
    run(&["umoci", "repack", "--image", &format!("{l}:t"), b]);
    run(&[
        "umoci",
        "config",
        "--image",
        &format!("{l}:t"),
        "--config.cmd",
        "sh",
    ]);
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let imgs = store.load(&layout, Some(&r("localhost/umoci:t"))).unwrap();
    let top = imgs[0].layer_dirs.last().unwrap();
    assert!(top.join("bin/busybox").is_file());

    let archive = tmp.path().join("img.tar");
    run(&[
        "skopeo",
        "copy",
        "--dest-compress-format",
        "zstd",
        &format!("oci:{l}:t"),
        &format!(
            "oci-archive:{}:docker.io/library/skopeo:1",
            archive.display()
        ),
    ]);
    let imgs = store.load(&archive, None).unwrap();
    assert_eq!(imgs[0].name, r("skopeo:1"));
    assert!(
        imgs[0]
            .layer_dirs
            .last()
            .unwrap()
            .join("bin/busybox")
            .is_file()
    );
}

#[test]
fn a_leased_image_survives_a_retag_and_prune_until_its_holder_is_gone() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let tar = |name: &str, body: &[u8]| {
        let p = tmp.path().join(format!("{name}.tar"));
        fs::write(&p, RawTar::new().file(name, body).build()).unwrap();
        p
    };
    let opts = ImportOptions {
        cmd: Some(vec!["sh".into()]),
        ..Default::default()
    };
    let v1 = store
        .import(&tar("v1", b"one"), &r("localhost/app"), &opts)
        .unwrap();
    let holder = tmp.path().join("pod");
    fs::create_dir(&holder).unwrap();
    let images = [(v1.name.to_string(), v1.manifest_digest.clone())];
    store.lease(&holder, &images).unwrap();
    assert_eq!(
        store.lease_holders(&v1.manifest_digest).unwrap(),
        vec![holder.clone()]
    );
    // The name moves to another image; a prune must keep what the pod runs on.
    let v2 = store
        .import(&tar("v2", b"two"), &r("localhost/app"), &opts)
        .unwrap();
    assert_ne!(v1.manifest_digest, v2.manifest_digest);
    store.prune().unwrap();
    assert!(v1.layer_dirs[0].join("v1").is_file(), "leased layer pruned");
    // rmi of the name does not take the leased content either.
    store.remove(&r("localhost/app")).unwrap();
    assert!(v1.layer_dirs[0].join("v1").is_file());
    // Released (down), or its holder gone (reboot): collected.
    fs::remove_dir(&holder).unwrap();
    let pruned = store.prune().unwrap();
    assert_eq!(pruned.stale_leases, 1);
    assert!(!v1.layer_dirs[0].exists());
    assert!(!v2.layer_dirs[0].exists());
}

#[test]
fn a_lease_on_content_pruned_meanwhile_is_refused_and_records_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let t = tmp.path().join("a.tar");
    fs::write(&t, RawTar::new().file("a", b"a").build()).unwrap();
    let opts = ImportOptions {
        cmd: Some(vec!["sh".into()]),
        ..Default::default()
    };
    let a = store.import(&t, &r("localhost/a"), &opts).unwrap();
    store.remove(&r("localhost/a")).unwrap();
    let holder = tmp.path().join("pod");
    fs::create_dir(&holder).unwrap();
    let err = store
        .lease(&holder, &[(a.name.to_string(), a.manifest_digest.clone())])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no longer whole in the store"), "{err}");
    assert!(store.leases().unwrap().is_empty());
    store.release(&holder).unwrap();
}

#[test]
fn load_reads_index_json_and_blobs_only_from_regular_files() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let md = simple_layout(
        &layout,
        "localhost/t:1",
        RawTar::new().file("f", b"1").build(),
    );
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let index = layout.join("index.json");
    let saved = fs::read(&index).unwrap();

    // A symlink to /dev/zero would be read until memory runs out.
    fs::remove_file(&index).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &index).unwrap();
    let err = store.load(&layout, None).unwrap_err().to_string();
    assert!(
        err.contains("index.json") && err.contains("symlink"),
        "{err}"
    );

    // A FIFO would block the open until a writer comes.
    fs::remove_file(&index).unwrap();
    nix::unistd::mkfifo(&index, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let err = store.load(&layout, None).unwrap_err().to_string();
    assert!(
        err.contains("index.json") && err.contains("not a regular file"),
        "{err}"
    );

    // The manifest blob as a symlink to /dev/zero.
    fs::remove_file(&index).unwrap();
    fs::write(&index, &saved).unwrap();
    let blob = layout.join("blobs/sha256").join(&md[7..]);
    fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &blob).unwrap();
    let err = store.load(&layout, None).unwrap_err().to_string();
    assert!(err.contains(&md[7..]) && err.contains("symlink"), "{err}");
    assert_nothing_stored(&store);
}

#[test]
fn load_refuses_an_index_json_larger_than_the_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    simple_layout(
        &layout,
        "localhost/t:1",
        RawTar::new().file("f", b"1").build(),
    );
    let mut big = fs::read(layout.join("index.json")).unwrap();
    big.resize((4 << 20) + 1, b' ');
    fs::write(layout.join("index.json"), &big).unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let err = store.load(&layout, None).unwrap_err().to_string();
    assert!(
        err.contains("index.json") && err.contains("4194304"),
        "{err}"
    );
    assert_nothing_stored(&store);
}

#[test]
fn load_refuses_an_image_whose_cmd_exceeds_what_execve_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let cmd = "x".repeat(200 << 10);
    let (md, ms) = put_image(
        &layout,
        host_arch(),
        &[RawTar::new().file("f", b"1").build()],
        &cmd,
    );
    write_index(
        &layout,
        serde_json::json!([{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": "localhost/big:1"}}]),
    );
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let err = store.load(&layout, None).unwrap_err().to_string();
    assert!(
        err.contains("localhost/big:1") && err.contains("Cmd[0]") && err.contains("execve"),
        "{err}"
    );
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn load_refuses_an_image_of_more_layers_than_an_overlay_stacks_before_reading_its_config() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let max = crate::bundle::overlay::MAX_LOWER_LAYERS;
    // Neither the config nor any layer is in the layout: reading either would fail
    // with another error.
    let missing = Digest::of_bytes(b"not in the layout").to_string();
    let layer = serde_json::json!({
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": missing, "size": 1});
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": missing, "size": 1},
        "layers": vec![layer; max + 1],
    });
    let (md, ms) = put(&layout, &serde_json::to_vec(&manifest).unwrap());
    write_index(
        &layout,
        serde_json::json!([{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": "localhost/deep:1"}}]),
    );
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let err = store.load(&layout, None).unwrap_err().to_string();
    assert!(
        err.contains("localhost/deep:1")
            && err.contains(&format!("{} layers", max + 1))
            && err.contains(&max.to_string()),
        "{err}"
    );
    assert_nothing_stored(&store);
}

#[test]
fn a_stopped_unpack_fails_and_leaves_no_temporary_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("store")).unwrap();
    let layer = RawTar::new().file("f", b"1").build();
    let blob = gz(&layer);
    let (ld, _) = store
        .put_blob(&mut &blob[..], None, "localhost/t:1")
        .unwrap();
    let diff_id = Digest::of_bytes(&layer);
    let stop = std::sync::atomic::AtomicBool::new(true);
    let err = store
        .ensure_layer_until(&ld, Compression::Gzip, &diff_id, "localhost/t:1", &stop)
        .unwrap_err()
        .to_string();
    assert!(err.contains("stopped"), "{err}");
    assert_eq!(count(&store.root().join("layers")), 0);
    stop.store(false, std::sync::atomic::Ordering::Relaxed);
    store
        .ensure_layer_until(&ld, Compression::Gzip, &diff_id, "localhost/t:1", &stop)
        .unwrap();
    assert!(store.layer_path(&diff_id).is_dir());
}
