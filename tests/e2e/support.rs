//! Fixtures shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn podshim_bin() -> &'static str {
    env!("CARGO_BIN_EXE_podshim")
}

/// An image store with `localhost/busybox:latest`, made once per test run by
/// `scripts/make-test-image` (from Debian's busybox-static; nothing is pulled).
pub fn store() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-store");
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new(repo().join("scripts/make-test-image"))
            .arg(podshim_bin())
            .env("PODSHIM_STORE", &dir)
            .output()
            .expect("run scripts/make-test-image");
        assert!(
            out.status.success(),
            "make-test-image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// A `podshim` command using the shared store and a private state root.
pub fn podshim(state: &Path) -> Command {
    let mut cmd = Command::new(podshim_bin());
    cmd.env("PODSHIM_STORE", store())
        .env("PODSHIM_ROOT", state.join("run"))
        .env("PODSHIM_LOGS", state.join("log"))
        // Loopback-only pods unless a test brings a network of its own (a bridge
        // and subnet it made, tests/e2e/network.rs): the host's is not touched.
        .env("PODSHIM_NETWORK", "none");
    cmd
}

/// `podshim generate MANIFEST -o OUT` with the state root under `state`.
pub fn generate(state: &Path, manifest: &Path, out: &Path) -> Output {
    podshim(state)
        .arg("generate")
        .arg(manifest)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A namespace no other test (or user pod) uses, so container ids never collide.
pub fn unique_namespace(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "e2e-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// An example manifest moved into `namespace`.
pub fn example_in_namespace(example: &str, namespace: &str) -> String {
    let text =
        std::fs::read_to_string(repo().join("bundles").join(example).join("pod.yaml")).unwrap();
    let marker = format!("  name: {example}\n");
    assert!(
        text.contains(&marker),
        "{example}: metadata.name line not found"
    );
    text.replacen(&marker, &format!("{marker}  namespace: {namespace}\n"), 1)
}

/// Ids of the containers in `runc list`. runc fails a listing when a container
/// of another test is deleted while it reads it: such a listing is taken again.
pub fn runc_ids() -> Vec<String> {
    let mut last = None;
    for _ in 0..20 {
        let out = Command::new("runc")
            .args(["list", "-q"])
            .output()
            .expect("runc list");
        if out.status.success() {
            return stdout(&out).lines().map(str::to_string).collect();
        }
        last = Some(stderr(&out));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("runc list keeps failing: {last:?}");
}

/// Mount points under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    podshim::bundle::mounts_under(dir).expect("read the mount table")
}

/// A runtime that is runc, slow at one verb (as under load): writes it into `dir`
/// and returns its path, for `--runtime`.
pub fn slow_runc(dir: &Path, verb: &str, seconds: u32) -> PathBuf {
    let path = dir.join(format!("slow-{verb}-runc"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = {verb} ] && sleep {seconds} && break; done\nexec runc \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// Deletes the given containers and unmounts everything under `dir` when dropped,
/// so a failing test leaks nothing (by their own ids, never by a broad name).
pub struct Cleanup {
    pub ids: Vec<String>,
    pub dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for id in self.ids.iter().rev() {
            let _ = Command::new("runc").args(["delete", "-f", id]).output();
        }
        let _ = podshim::bundle::remove(&self.dir, &podshim::bundle::SystemMounter);
    }
}

/// A pod started by a test, stopped and removed (by its own ids) when dropped.
pub struct Pod {
    pub tmp: tempfile::TempDir,
    pub ns: String,
    pub name: String,
    pub runtime: Option<String>,
}

impl Pod {
    pub fn new(tag: &str, name: &str) -> Pod {
        Pod {
            tmp: tempfile::tempdir().unwrap(),
            ns: unique_namespace(tag),
            name: name.into(),
            runtime: None,
        }
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }

    pub fn cmd(&self) -> Command {
        let mut c = podshim(self.tmp.path());
        // Short back-off so restart tests take seconds (the kubelet's is 10 s).
        c.env("PODSHIM_BACKOFF_INITIAL_MS", "300");
        c
    }

    /// Writes `yaml` (with `{ns}` and `{name}` substituted) and runs `up` on it.
    pub fn up(&self, yaml: &str, extra: &[&str]) -> Output {
        let path = self.tmp.path().join("pod.yaml");
        std::fs::write(
            &path,
            yaml.replace("{ns}", &self.ns).replace("{name}", &self.name),
        )
        .unwrap();
        let mut c = self.cmd();
        c.arg("up").arg(&path).args(extra);
        if !extra.contains(&"--timeout") {
            c.args(["--timeout", "60"]);
        }
        if let Some(rt) = &self.runtime {
            c.args(["--runtime", rt]);
        }
        c.output().unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// SIGKILLs the pod's supervisor (as the OOM killer or a crash would).
    pub fn kill_supervisor(&self) {
        let pid = self.state()["supervisorPid"].as_i64().unwrap() as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    }

    /// `down` with a 1 s grace period, which must succeed.
    pub fn down(&self) -> Output {
        let out = self.run(&["down", &self.key(), "--grace-period", "1"]);
        assert!(out.status.success(), "down: {}", stderr(&out));
        out
    }

    pub fn state(&self) -> serde_json::Value {
        let out = self.run(&["ps", &self.key(), "-o", "json"]);
        assert!(out.status.success(), "ps: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        v[0].clone()
    }

    pub fn container(&self, name: &str) -> serde_json::Value {
        let s = self.state();
        s["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap()
    }

    pub fn logs(&self, container: &str) -> String {
        stdout(&self.run(&["logs", &self.key(), "-c", container]))
    }

    /// The runtime id podshim gives the infra (`None`) or a container: the
    /// library's own rule, so long names are cut and hashed as podshim does.
    pub fn id(&self, container: Option<&str>) -> String {
        let key = podshim::model::PodKey::parse(&self.name, Some(&self.ns)).unwrap();
        match container {
            Some(c) => key.container_id(&podshim::model::DnsLabel::parse(c).unwrap()),
            None => key.id(),
        }
    }

    /// The config.json of `container`'s bundle in the pod's directory.
    pub fn config(&self, container: &str) -> serde_json::Value {
        let file = self
            .pod_dir()
            .join("bundles")
            .join(self.id(Some(container)))
            .join("config.json");
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap()
    }

    pub fn pod_dir(&self) -> PathBuf {
        self.tmp.path().join("run/pods").join(self.id(None))
    }

    /// Nothing of the pod remains: no runtime container, no mount, no state.
    pub fn assert_nothing_left(&self) {
        // Every id of the pod starts with its namespace, unique to the test
        // (long ids are cut after it, so the infra's is not a prefix of them).
        let prefix = format!("{}_", self.ns);
        let left: Vec<String> = runc_ids()
            .into_iter()
            .filter(|i| i.starts_with(&prefix))
            .collect();
        assert!(left.is_empty(), "containers left: {left:?}");
        assert_eq!(
            mounts_under(self.tmp.path()),
            Vec::<PathBuf>::new(),
            "mounts left"
        );
        assert!(
            !self.pod_dir().exists(),
            "state left in {}",
            self.pod_dir().display()
        );
        // No host id range leased to a directory of the test's.
        let leased: Vec<String> = std::fs::read_dir(podshim::userns::LEASE_DIR)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter(|holder| std::path::Path::new(holder).starts_with(self.tmp.path()))
            .collect();
        assert!(
            leased.is_empty(),
            "user namespace ranges left leased to {leased:?}"
        );
        let cgroups = cgroups_named(&prefix);
        assert!(cgroups.is_empty(), "container cgroups left: {cgroups:?}");
        // The state root is a node of its own: nothing of its cgroup tree stays.
        let parent =
            podshim::translate::pod_cgroup::CgroupParent::for_root(&self.tmp.path().join("run"));
        let left = cgroup_dirs(parent.as_str());
        assert!(left.is_empty(), "cgroups left: {left:?}");
    }

    pub fn wait_until(&self, what: &str, timeout: Duration, mut f: impl FnMut(&Pod) -> bool) {
        let start = Instant::now();
        while !f(self) {
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}: {:#}",
                self.state()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = self.run(&["down", &self.key()]);
        // The test's own namespace starts every id of its pods.
        let prefix = format!("{}_", self.ns);
        for id in runc_ids().into_iter().filter(|i| i.starts_with(&prefix)) {
            let _ = Command::new("runc").args(["delete", "-f", &id]).output();
        }
        let _ = podshim::bundle::remove(
            &self.tmp.path().join("run"),
            &podshim::bundle::SystemMounter,
        );
    }
}

/// youki 0.7, installed by scripts/install-youki (scripts/test runs it). A machine
/// without it fails the test (podshim::testing::cannot_run).
pub fn youki() -> Option<String> {
    let path = std::env::var("PODSHIM_TEST_YOUKI")
        .unwrap_or_else(|_| "/opt/podshim/youki/bin/youki".into());
    if Path::new(&path).is_file() {
        return Some(path);
    }
    podshim::testing::cannot_run(&format!(
        "youki is not installed at {path} (scripts/install-youki)"
    ));
    None
}

/// The runtimes an end-to-end test runs under: runc (the default), then youki.
pub fn runtimes() -> Vec<Option<String>> {
    let mut all = vec![None];
    all.extend(youki().map(Some));
    all
}

/// Starts `yaml` under `runtime`, waits for container `c` to print DONE, returns
/// its log (the pod is left running for the caller to inspect and take down).
pub fn run_until_done(pod: &mut Pod, runtime: &Option<String>, yaml: &str, c: &str) -> String {
    pod.runtime = runtime.clone();
    let out = pod.up(yaml, &[]);
    let rt = runtime.as_deref().unwrap_or("runc");
    assert!(out.status.success(), "up with {rt}: {}", stderr(&out));
    pod.wait_until(&format!("{c} under {rt}"), Duration::from_secs(20), |p| {
        p.logs(c).contains("DONE")
    });
    pod.logs(c)
}

/// A pod of one busybox container `name`: `spec` lines (indented 2) before
/// `containers:`, `container` lines (indented 4) after its image; it runs
/// `script`, prints DONE and sleeps.
pub fn busybox_pod(spec: &str, name: &str, container: &str, script: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: '{{name}}', namespace: '{{ns}}'}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
{spec}  containers:
  - name: {name}
    image: localhost/busybox:latest
    imagePullPolicy: Never
{container}    command: [sh, -c, '{script}; echo DONE; sleep 3600']
"
    )
}

/// The hierarchies' directories of cgroup `path` (absolute within each), those
/// that exist.
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            roots.push(e.path());
        }
    }
    roots
        .into_iter()
        .map(|r| r.join(path.trim_start_matches('/')))
        .filter(|d| d.is_dir())
        .collect()
}

/// cgroups under podshim's parents (`/podshim`, `/podshim-<hash>` of each state
/// root) whose name starts with `prefix` (containers' cgroups are named by
/// their ids).
pub fn cgroups_named(prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs: Vec<PathBuf> = cgroup_dirs("/")
        .into_iter()
        .flat_map(|root| std::fs::read_dir(root).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with("podshim"))
        .map(|e| e.path().join("kubepods"))
        .filter(|d| d.is_dir())
        .collect();
    for _ in 0..3 {
        let mut next = Vec::new();
        for d in dirs {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    if e.file_name().to_string_lossy().starts_with(prefix) {
                        found.push(e.path());
                    }
                    next.push(e.path());
                }
            }
        }
        dirs = next;
    }
    found
}

/// Removes a cgroup directory and the empty cgroups under it, deepest first
/// (rmdir only: a cgroup with a process stays, and the test fails on it).
pub fn remove_cgroup_tree(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// What the file at `path` holds once it contains `needle`, or at `timeout`.
pub fn wait_for(path: &Path, needle: &str, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || start.elapsed() > timeout {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
