//! Deep images (issue 8): a 128-layer image (Docker's historic limit) runs under
//! runc and youki and from `generate`'s run.sh, although its overlay options,
//! with the store's absolute layer paths, are far longer than mount(2)'s one page.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::json;
use sha2::Digest as _;

use crate::support::*;

const LAYERS: usize = 128;
const IMAGE: &str = "localhost/deep-layers:latest";
/// Made in this layer and whited out in a later one.
const HIDDEN_IN: usize = 10;
const WHITED_OUT_IN: usize = 120;

const POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
spec:
  terminationGracePeriodSeconds: 2
  containers:
    - name: deep
      image: localhost/deep-layers:latest
      imagePullPolicy: Never
      command:
        - sh
        - -c
        - |
          echo "layers=$(ls /layers | wc -l)"
          cat /layers/0 /layers/127
          if [ -e /hidden ]; then echo hidden-visible; else echo hidden-gone; fi
          trap 'exit 0' TERM
          while :; do sleep 1; done
"#;

/// What the container logs when it sees every layer and the whiteout.
const SEEN: [&str; 4] = ["layers=128", "layer 0\n", "layer 127\n", "hidden-gone"];

fn sha256(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

fn tar_layer(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    b.into_inner().unwrap()
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn add_dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    b.append_data(&mut h, path, std::io::empty()).unwrap();
}

fn add_file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

/// Layer 0 has busybox and `/layers/0`; layer i adds `/layers/i`; layer
/// HIDDEN_IN adds `/hidden`, which WHITED_OUT_IN deletes (an OCI whiteout,
/// image-spec layer.md#whiteouts).
fn layer(i: usize) -> Vec<u8> {
    tar_layer(|b| {
        if i == 0 {
            add_dir(b, "bin/");
            add_file(
                b,
                "bin/busybox",
                &std::fs::read("/bin/busybox").unwrap(),
                0o755,
            );
            for applet in ["sh", "ls", "wc", "cat", "sleep"] {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                b.append_link(&mut h, format!("bin/{applet}"), "busybox")
                    .unwrap();
            }
            add_dir(b, "etc/");
            add_file(b, "etc/passwd", b"root:x:0:0:root:/:/bin/sh\n", 0o644);
            add_file(b, "etc/group", b"root:x:0:\n", 0o644);
        }
        add_dir(b, "layers/");
        add_file(
            b,
            &format!("layers/{i}"),
            format!("layer {i}\n").as_bytes(),
            0o644,
        );
        if i == HIDDEN_IN {
            add_file(b, "hidden", b"must not be seen\n", 0o644);
        }
        if i == WHITED_OUT_IN {
            add_file(b, ".wh.hidden", b"", 0o644);
        }
    })
}

/// Writes the 128-layer image as an OCI image layout (image-spec image-layout.md).
fn write_layout(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let hex = sha256(data);
        std::fs::write(blobs.join(&hex), data).unwrap();
        format!("sha256:{hex}")
    };
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for i in 0..LAYERS {
        let tar = layer(i);
        let digest = put(&tar);
        diff_ids.push(digest.clone());
        layers.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest,
            "size": tar.len(),
        }));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": podshim::image::host_arch(),
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": put(&config),
            "size": config.len(),
        },
        "layers": layers,
    }))
    .unwrap();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": put(&manifest),
            "size": manifest.len(),
        }],
    });
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Loads the deep image into the shared store, once per test run.
fn deep_image() {
    static LOADED: OnceLock<()> = OnceLock::new();
    LOADED.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let layout = tmp.path().join("layout");
        write_layout(&layout);
        let out = podshim(tmp.path())
            .arg("load")
            .arg(&layout)
            .arg(IMAGE)
            .output()
            .unwrap();
        assert!(out.status.success(), "load: {}", stderr(&out));
    });
}

/// The options mount(2) would need, with this store's layer paths, are over a
/// page: otherwise these tests would prove nothing.
fn assert_options_exceed_a_page() {
    let layer_dir = store().join("layers").join("0".repeat(64));
    let options = LAYERS * (layer_dir.as_os_str().len() + 1);
    assert!(options > 4096, "{options} bytes of lowerdir fit a page");
}

fn deep_pod_runs(runtime: Option<String>) {
    deep_image();
    assert_options_exceed_a_page();
    let mut pod = Pod::new("deep", "deep");
    pod.runtime = runtime;
    let out = pod.up(POD, &[]);
    assert!(out.status.success(), "up: {}{}", stdout(&out), stderr(&out));
    pod.wait_until("the container's log", Duration::from_secs(20), |p| {
        p.logs("deep").contains("hidden-")
    });
    let log = pod.logs("deep");
    for want in SEEN {
        assert!(log.contains(want), "{want:?} not in the log: {log:?}");
    }
    let out = pod.run(&["down", &pod.key()]);
    assert!(out.status.success(), "down: {}", stderr(&out));
    pod.assert_nothing_left();
}

#[test]
fn a_128_layer_image_runs_under_runc_with_its_first_and_last_layer_and_whiteouts() {
    deep_pod_runs(None);
}

#[test]
fn a_128_layer_image_runs_under_youki() {
    let Some(youki) = youki() else {
        return;
    };
    deep_pod_runs(Some(youki));
}

#[test]
fn a_128_layer_image_runs_from_generate_and_run_sh() {
    deep_image();
    assert_options_exceed_a_page();
    let tmp = tempfile::tempdir().unwrap();
    let ns = unique_namespace("deepgen");
    let manifest = tmp.path().join("pod.yaml");
    std::fs::write(
        &manifest,
        POD.replace("{ns}", &ns).replace("{name}", "deep"),
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let ids = vec![format!("{ns}_deep"), format!("{ns}_deep_deep")];
    let _cleanup = Cleanup {
        ids: ids.clone(),
        dir: out_dir.clone(),
    };
    let out = generate(tmp.path(), &manifest, &out_dir);
    assert!(out.status.success(), "generate: {}", stderr(&out));
    // generate mounted the rootfs itself; run.sh must mount it too (after a
    // reboot, or after stop.sh), so it is made to.
    let stop = Command::new(out_dir.join("stop.sh")).output().unwrap();
    assert!(stop.status.success(), "stop.sh: {}", stderr(&stop));
    assert_eq!(mounts_under(&out_dir), Vec::<PathBuf>::new());

    let run = Command::new(out_dir.join("run.sh")).output().unwrap();
    assert!(
        run.status.success(),
        "run.sh: {}{}",
        stdout(&run),
        stderr(&run)
    );
    let log_path = out_dir.join("logs/deep.log");
    let start = std::time::Instant::now();
    let mut log = String::new();
    while start.elapsed() < Duration::from_secs(20) {
        log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("hidden-") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for want in SEEN {
        assert!(
            log.contains(want),
            "{want:?} not in {}: {log:?}",
            log_path.display()
        );
    }
    let stop = Command::new(out_dir.join("stop.sh")).output().unwrap();
    assert!(stop.status.success(), "stop.sh: {}", stderr(&stop));
    let listed = runc_ids();
    for id in &ids {
        assert!(!listed.contains(id), "{id} left in runc list");
    }
    assert_eq!(mounts_under(&out_dir), Vec::<PathBuf>::new());
}
