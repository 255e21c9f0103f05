//! Fixtures shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

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
        .env("PODSHIM_LOGS", state.join("log"));
    cmd
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

/// Ids of the containers in `runc list`.
pub fn runc_ids() -> Vec<String> {
    let out = Command::new("runc")
        .args(["list", "-q"])
        .output()
        .expect("runc list");
    stdout(&out).lines().map(str::to_string).collect()
}

/// Mount points under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    podshim::bundle::mount_points()
        .into_iter()
        .filter(|m| m.starts_with(&dir))
        .collect()
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
