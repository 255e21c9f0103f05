//! Finding pods on disk: their state, their logs, whether their supervisor lives.

use std::path::{Path, PathBuf};

use crate::model::{ContainerKind, PodKey};
use crate::paths::Paths;
use crate::state::{self, PodState};

use super::PodError;

/// A pod's directory and state.
pub type PodRecord = (PathBuf, PodState);

/// All pods with a state file, sorted by namespace and name.
pub fn all_pods(paths: &Paths) -> Vec<PodRecord> {
    let mut pods: Vec<PodRecord> = std::fs::read_dir(paths.pods())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let dir = e.path();
            state::read(&dir).ok().map(|s| (dir, s))
        })
        .collect();
    pods.sort_by(|a, b| (&a.1.namespace, &a.1.name).cmp(&(&b.1.namespace, &b.1.name)));
    pods
}

/// A pod's state.
pub fn read_pod(paths: &Paths, key: &PodKey) -> Result<PodRecord, PodError> {
    let dir = paths.pod_dir(&key.id());
    match state::read(&dir) {
        // The directory's name is the pod's id (cut and hashed when long): the
        // state must name this pod.
        Ok(s) if s.namespace == key.namespace.as_str() && s.name == key.name.as_str() => {
            Ok((dir, s))
        }
        _ => Err(PodError::NotFound(key.clone())),
    }
}

/// Log directories of pods named `key` (`<logs>/pods/<ns>_<name>_<uid>`), also of
/// pods already down. Names cannot contain `_`, so the prefix matches no other pod.
pub fn log_dirs(paths: &Paths, key: &PodKey) -> Vec<PathBuf> {
    let prefix = format!("{}_", key.id());
    std::fs::read_dir(paths.pod_logs())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
        })
        .collect()
}

/// A container with logs: its name, kind and latest restart.
pub type LogContainer = (String, ContainerKind, u32);

/// The pod's log directory and containers: from its state, or (after `down`)
/// found by name.
pub fn logs_of(paths: &Paths, key: &PodKey) -> Option<(PathBuf, Vec<LogContainer>)> {
    if let Ok((_, state)) = read_pod(paths, key) {
        let containers = state
            .containers
            .iter()
            .filter(|c| c.kind != ContainerKind::Infra)
            .map(|c| (c.name.clone(), c.kind, c.restart_count))
            .collect();
        return Some((state.log_dir, containers));
    }
    let dir = log_dirs(paths, key).into_iter().next()?;
    let containers = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let restart = crate::logs::latest_restart(&e.path())?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                ContainerKind::App,
                restart,
            ))
        })
        .collect();
    Some((dir, containers))
}

/// Removes the logs of `key` (those `known` to its state, and any found by name).
pub fn remove_logs(paths: &Paths, key: &PodKey, known: Option<PathBuf>) -> Result<(), PodError> {
    for dir in known.into_iter().chain(log_dirs(paths, key)) {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(super::io_err(&dir, "remove"))?;
        }
    }
    Ok(())
}

/// Whether `pid` is alive and is the supervisor of the pod in `pod_dir` (not a
/// recycled pid, nor another pod's supervisor that got it): its executable is
/// `podshim-supervisor` (its `comm`, cut to 15 bytes by the kernel, when the
/// binary was replaced since) and its one argument is this pod's directory.
pub fn supervisor_alive(pid: i32, pod_dir: &Path) -> bool {
    let is_zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true);
    if is_zombie {
        return false;
    }
    let named = |n: &std::ffi::OsStr| {
        n.to_string_lossy()
            .trim_end_matches(" (deleted)")
            .eq(crate::supervisor::BINARY)
    };
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let comm = comm.trim();
    let is_supervisor = exe
        .as_deref()
        .and_then(|e| e.file_name())
        .is_some_and(named)
        || (comm.len() >= 15 && crate::supervisor::BINARY.starts_with(comm));
    is_supervisor && supervises(pid, pod_dir)
}

/// The argument a supervisor of `pod_dir` is started with (absolute, so that it
/// reads the same from any working directory).
pub fn supervisor_arg(pod_dir: &Path) -> PathBuf {
    std::path::absolute(pod_dir).unwrap_or_else(|_| pod_dir.to_path_buf())
}

/// Whether `pid`'s command line is `podshim-supervisor <pod_dir>`.
fn supervises(pid: i32, pod_dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    // argv[0] and a path: PATH_MAX each, at most.
    let Ok(cmdline) =
        crate::fsutil::read_regular(Path::new(&format!("/proc/{pid}/cmdline")), 16 * 1024)
    else {
        return false;
    };
    let mut args = cmdline.split(|b| *b == 0);
    let _argv0 = args.next();
    let Some(arg) = args.next() else {
        return false;
    };
    if arg == supervisor_arg(pod_dir).as_os_str().as_bytes() {
        return true;
    }
    // The same directory by another name (a --root through a symlink).
    use std::os::unix::fs::MetadataExt;
    let arg = Path::new(std::ffi::OsStr::from_bytes(arg));
    match (std::fs::metadata(arg), std::fs::metadata(pod_dir)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether the record of a pod can be trusted: one whose supervisor died shows as
/// `Unknown`, as the kubelet reports a pod it lost contact with.
pub fn phase(pod_dir: &Path, state: &PodState) -> String {
    let live = state
        .supervisor_pid
        .is_some_and(|pid| supervisor_alive(pid, pod_dir));
    let running = matches!(
        state.phase,
        state::PodPhase::Running | state::PodPhase::Pending
    );
    if running && !live {
        "Unknown".into()
    } else {
        format!("{:?}", state.phase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_the_supervisor_of_the_pod_directory_it_was_started_with() {
        let tmp = tempfile::tempdir().unwrap();
        // `sh SCRIPT`: argv[1] is a path, as the supervisor's is its pod directory.
        let script = tmp.path().join("pod-a");
        std::fs::write(&script, "sleep 30\n").unwrap();
        let mut child = std::process::Command::new("sh")
            .arg(supervisor_arg(&script))
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Until it has exec'd, its command line is the test's (a bound, not a
        // threshold: it is checked as soon as it holds).
        let seen = (0..1000).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            supervises(pid, &script)
        });
        let other = supervises(pid, &tmp.path().join("pod-b"));
        // The same file through a symlinked directory.
        std::os::unix::fs::symlink(tmp.path(), tmp.path().join("link")).unwrap();
        let aliased = supervises(pid, &tmp.path().join("link/pod-a"));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(seen, "its own pod directory");
        assert!(!other, "another pod's directory");
        assert!(aliased, "its own pod directory by another name");
        assert!(!supervises(pid, &script), "a pid that is gone");
    }

    #[test]
    fn a_process_that_is_not_podshim_supervisor_is_not_taken_for_one() {
        let me = std::process::id() as i32;
        assert!(!supervisor_alive(me, Path::new("/")));
    }
}
