//! Golden bundles: every example pod under `bundles/` is translated with fixed host
//! facts and image configs, and the result must match the checked-in
//! `bundles/<example>/golden/` byte for byte. Every config.json is also validated
//! against the OCI runtime-spec JSON schema vendored in `tests/oci-schema/`
//! (a byte-for-byte copy of runtime-spec's `schema/`; see its VERSION file).
//!
//! `plan.json` is the run plan `bundle::layout` makes of it over a store with fixed
//! digests. Joining containers name `/proc/INFRA_PID/ns/*` until the infra runs.
//!
//! Refresh after an intended change: `scripts/update-golden`
//! (PODSHIM_UPDATE_GOLDEN=1 cargo test --test golden).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::image::{ConfigBuilder, ImageConfigurationBuilder};
use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceType};
use podshim::image::{ImageRef, StoredImage};
use podshim::paths::PodPaths;
use podshim::translate::{self, HostInfo, HostSecurity, ImageInfo, PlanInput, render_config};
use podshim::{bundle, manifest, run_plan};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The base every golden plan is rendered under, as if by
/// `podshim generate bundles/<example>/pod.yaml -o /tmp/podshim-golden/<example>`.
fn golden_base(example: &str) -> PathBuf {
    PathBuf::from("/tmp/podshim-golden").join(example)
}

fn host() -> HostInfo {
    HostInfo {
        node_name: "node-1".into(),
        host_ip: "192.0.2.10".into(),
        resolv_conf: "nameserver 192.0.2.53\nsearch example.net\n".into(),
        hosts: "127.0.0.1 localhost\n".into(),
        cpus: 4,
        memory_bytes: 8 << 30,
        oom_score_adj_floor: None,
        security: host_security(),
        exec_limits: Default::default(),
    }
}

/// A host like the development machine: every capability but CAP_SYS_RESOURCE,
/// x86_64, no AppArmor, two device nodes (what privileged containers get).
fn host_security() -> HostSecurity {
    let dev = |path: &str, major: i64, minor: i64| {
        LinuxDeviceBuilder::default()
            .path(path)
            .typ(LinuxDeviceType::C)
            .major(major)
            .minor(minor)
            .file_mode(0o666u32)
            .uid(0u32)
            .gid(0u32)
            .build()
            .unwrap()
    };
    HostSecurity {
        capabilities: podshim::translate::capabilities::from_bitmap("000001fffeffffff"),
        devices: vec![dev("/dev/null", 1, 3), dev("/dev/zero", 1, 5)],
        arch: "x86_64".into(),
        apparmor: None,
        selinux: false,
    }
}

/// The config of the busybox image the examples use (as `scripts/make-test-image` imports it).
fn busybox() -> ImageInfo {
    let config = ConfigBuilder::default()
        .env(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ])
        .cmd(vec!["sh".to_string()])
        .build()
        .unwrap();
    ImageInfo {
        name: "localhost/busybox:latest".into(),
        config: ImageConfigurationBuilder::default()
            .architecture(oci_spec::image::Arch::Amd64)
            .os(oci_spec::image::Os::Linux)
            .config(config)
            .build()
            .unwrap(),
    }
}

/// The same image as stored: fixed digests and layer paths, as a store at
/// /var/lib/podshim would hold it.
fn stored_images() -> BTreeMap<String, StoredImage> {
    let image = busybox();
    let stored = StoredImage {
        name: ImageRef::parse(&image.name).unwrap(),
        manifest_digest: format!("sha256:{}", "1".repeat(64)),
        config: image.config,
        layer_dirs: vec![PathBuf::from(format!(
            "/var/lib/podshim/layers/{}",
            "2".repeat(64)
        ))],
    };
    [(image.name, stored)].into()
}

/// The Localhost seccomp profiles of an example: `bundles/<example>/seccomp/`
/// is its profile root (as `--seccomp-profile-root` would be).
fn golden_seccomp_profiles(example: &str) -> BTreeMap<String, String> {
    let root = repo().join("bundles").join(example).join("seccomp");
    let mut files = Vec::new();
    collect_files(&root, &root, &mut files);
    files
        .into_iter()
        .map(|rel| {
            let text = std::fs::read_to_string(root.join(&rel)).unwrap();
            (rel.display().to_string(), text)
        })
        .collect()
}

fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join("bundles"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("pod.yaml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 2, "examples missing under bundles/");
    names
}

/// Renders the golden files of one example: relative path → content.
fn render(example: &str) -> BTreeMap<PathBuf, String> {
    let path = repo().join("bundles").join(example).join("pod.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let manifest = manifest::parse(&text, &path.display().to_string()).unwrap();
    let mut images = BTreeMap::new();
    images.insert("localhost/busybox:latest".to_string(), busybox());
    let base = golden_base(example);
    let paths = PodPaths::new(&base);
    let host = host();
    // runc 1.1's features on Linux >= 5.12.
    let runtime = podshim::runtime::RuntimeFeatures {
        recursive_read_only: true,
    };
    let plan = translate::plan(&PlanInput {
        runtime: &runtime,
        pod: &manifest.pod,
        images: &images,
        paths: &paths,
        host: &host,
        pod_ip: None,
        netns: None,
        seccomp_profiles: &golden_seccomp_profiles(example),
        cgroup: &Default::default(),
        cdi: &Default::default(),
        claims: &Default::default(),
        node_pods: None,
        // The first range of the default pool, for a pod with `hostUsers: false`.
        userns: (!manifest.pod.spec.host_users).then_some(podshim::userns::IdRange {
            host_id: podshim::userns::DEFAULT_POOL.first,
            size: podshim::userns::IDS_PER_POD,
        }),
    })
    .unwrap_or_else(|e| panic!("{example}: {e}"));
    let run = bundle::layout(&plan, &stored_images(), &base).unwrap();
    let mut out = BTreeMap::new();
    for c in plan.all() {
        out.insert(
            PathBuf::from(&c.id).join("config.json"),
            render_config(&c.spec),
        );
    }
    out.insert(PathBuf::from("plan.json"), run_plan::render(&run));
    for f in &plan.files {
        let rel = f.path.strip_prefix(&base).unwrap();
        out.insert(rel.to_path_buf(), f.content.clone());
    }
    out
}

fn golden_dir(example: &str) -> PathBuf {
    repo().join("bundles").join(example).join("golden")
}

#[test]
fn generated_bundles_match_the_golden_files() {
    let update = std::env::var_os("PODSHIM_UPDATE_GOLDEN").is_some();
    for example in examples() {
        let rendered = render(&example);
        let dir = golden_dir(&example);
        if update {
            let _ = std::fs::remove_dir_all(&dir);
            for (rel, text) in &rendered {
                let path = dir.join(rel);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, text).unwrap();
            }
            continue;
        }
        for (rel, text) in &rendered {
            let path = dir.join(rel);
            let golden = std::fs::read_to_string(&path).unwrap_or_else(|_| {
                panic!("{} is missing: run scripts/update-golden", path.display())
            });
            assert_eq!(
                &golden,
                text,
                "{} differs from the translation (run scripts/update-golden if intended)",
                path.display()
            );
        }
        // No stale golden files either.
        let mut on_disk = Vec::new();
        collect_files(&dir, &dir, &mut on_disk);
        for rel in on_disk {
            assert!(
                rendered.contains_key(&rel),
                "stale golden file {}",
                dir.join(rel).display()
            );
        }
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(root, &path, out);
        } else {
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

fn schema_validator() -> jsonschema::Validator {
    let dir = repo().join("tests/oci-schema");
    let dir = std::fs::canonicalize(&dir)
        .unwrap_or_else(|e| panic!("the vendored OCI schema belongs in {}: {e}", dir.display()));
    let path = dir.join("config-schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .with_base_uri(format!("file://{}", path.display()))
        .build(&schema)
        .expect("the OCI runtime-spec schema compiles")
}

#[test]
fn every_generated_config_is_valid_against_the_oci_runtime_schema() {
    let validator = schema_validator();
    let mut checked = 0;
    for example in examples() {
        for (rel, text) in render(&example) {
            if rel.file_name().is_some_and(|n| n == "config.json") {
                let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                let errors: Vec<String> = validator
                    .iter_errors(&value)
                    .map(|e| format!("{} at {}", e, e.instance_path()))
                    .collect();
                assert!(
                    errors.is_empty(),
                    "{example}/{}: {errors:#?}",
                    rel.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 6, "only {checked} config.json files checked");
}

#[test]
fn the_schema_check_rejects_an_invalid_config() {
    // Guards the test above against a validator that accepts anything.
    let validator = schema_validator();
    let bad = serde_json::json!({"ociVersion": "1.0.2", "process": {"cwd": 5}});
    assert!(!validator.is_valid(&bad));
    let good = serde_json::json!({"ociVersion": "1.0.2"});
    assert!(validator.is_valid(&good));
}
