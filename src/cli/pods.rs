//! Finding pods on disk and tearing one down without its supervisor.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::ids;
use crate::model::ContainerKind;
use crate::paths::Paths;
use crate::runtime::{CliRuntime, OciRuntime, RuntimeConfig, Status};
use crate::state::{self, PodState};

/// A pod named on the command line: `NAME`, `NS/NAME`, or a manifest FILE.
pub fn pod_key(arg: &str, namespace: Option<&str>) -> Result<(String, String)> {
    let path = Path::new(arg);
    if arg.ends_with(".yaml")
        || arg.ends_with(".yml")
        || arg.ends_with(".json")
        || arg == "-"
        || path.is_file()
    {
        let m = crate::manifest::load(path)?;
        return Ok((m.pod.namespace().to_string(), m.pod.name().to_string()));
    }
    Ok(match arg.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (namespace.unwrap_or("default").to_string(), arg.to_string()),
    })
}

pub fn pod_dir(paths: &Paths, namespace: &str, name: &str) -> PathBuf {
    paths.pod_dir(&ids::pod_id(namespace, name))
}

/// All pods with a state file, sorted by namespace and name.
pub fn all_pods(paths: &Paths) -> Vec<(PathBuf, PodState)> {
    let mut pods: Vec<(PathBuf, PodState)> = std::fs::read_dir(paths.root.join("pods"))
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

/// Reads a pod's state, with an error that says how to list pods.
pub fn read_pod(paths: &Paths, namespace: &str, name: &str) -> Result<(PathBuf, PodState)> {
    let dir = pod_dir(paths, namespace, name);
    match state::read(&dir) {
        Ok(s) => Ok((dir, s)),
        Err(_) => bail!("pod {namespace}/{name} not found (podshim ps lists pods)"),
    }
}

/// Log directories of pods named `ns/name` (`<logs>/pods/<ns>_<name>_<uid>`), also of
/// pods already down. Names cannot contain `_`, so the prefix matches no other pod.
pub fn log_dirs(paths: &Paths, namespace: &str, name: &str) -> Vec<PathBuf> {
    let prefix = format!("{}_", ids::pod_id(namespace, name));
    std::fs::read_dir(paths.logs.join("pods"))
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

pub fn runtime_of(state: &PodState) -> CliRuntime {
    CliRuntime::direct(RuntimeConfig {
        program: state.runtime.program.clone(),
        global_args: state.runtime.global_args.clone(),
        root: state.runtime.root.clone(),
    })
}

/// Whether `pid` is alive and is a podshim supervisor (not a recycled pid): its
/// executable is `podshim-supervisor` (its `comm`, cut to 15 bytes by the kernel,
/// when the binary was replaced since).
pub fn supervisor_alive(pid: i32) -> bool {
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
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let named = |n: &std::ffi::OsStr| {
        n.to_string_lossy()
            .trim_end_matches(" (deleted)")
            .eq(crate::supervisor::BINARY)
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    exe.as_deref()
        .and_then(|e| e.file_name())
        .is_some_and(named)
        || crate::supervisor::BINARY.starts_with(comm.trim()) && comm.trim().len() >= 15
}

/// Stops a pod whose supervisor is gone, from its state file: each container gets
/// its stop signal, SIGKILL after the grace period (app containers first, then
/// sidecars and init containers in reverse, then the infra), and is deleted.
pub fn teardown_without_supervisor(state: &PodState) -> Result<()> {
    let runtime = runtime_of(state);
    let grace = Duration::from_secs(state.termination_grace_period_seconds);
    let apps: Vec<_> = state
        .containers
        .iter()
        .filter(|c| c.kind == ContainerKind::App)
        .collect();
    let others: Vec<_> = state
        .containers
        .iter()
        .rev()
        .filter(|c| !matches!(c.kind, ContainerKind::App | ContainerKind::Infra))
        .collect();
    let infra: Vec<_> = state
        .containers
        .iter()
        .filter(|c| c.kind == ContainerKind::Infra)
        .collect();
    let mut errors = Vec::new();
    let stop = |id: &str, signal: &str| -> Result<()> {
        let running = |rt: &CliRuntime| matches!(rt.state(id), Ok(s) if matches!(s.status, Status::Running | Status::Created | Status::Paused));
        if running(&runtime) {
            let _ = runtime.kill(id, signal, false);
            let deadline = Instant::now() + grace;
            while running(&runtime) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if running(&runtime) {
                let _ = runtime.kill(id, "SIGKILL", true);
            }
        }
        match runtime.delete(id, true) {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = apps
            .iter()
            .map(|c| scope.spawn(|| stop(&c.id, &c.stop_signal.runtime_arg())))
            .collect();
        for h in handles {
            if let Ok(Err(e)) = h.join() {
                errors.push(format!("{e:#}"));
            }
        }
    });
    for c in others.iter().chain(&infra) {
        if let Err(e) = stop(&c.id, &c.stop_signal.runtime_arg()) {
            errors.push(format!("{e:#}"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("{}", errors.join("\n  "))
    }
}

/// Stops a pod and removes it: through its supervisor when it lives (SIGTERM, then
/// wait), else directly. Idempotent. Returns false when there was no such pod.
pub fn stop_and_remove(paths: &Paths, namespace: &str, name: &str) -> Result<bool> {
    let dir = pod_dir(paths, namespace, name);
    if !dir.exists() {
        return Ok(false);
    }
    let lock = state::PodLock::acquire(&dir)?;
    if !lock.is_current() {
        // The pod was removed while we waited for its lock (and may exist anew).
        return Ok(true);
    }
    let Ok(pod) = state::read(&dir) else {
        // A pod directory without state: a crashed `up`; only mounts and files remain.
        crate::supervisor::remove_pod_files(&dir, &dir)?;
        return Ok(true);
    };
    if let Some(pid) = pod.supervisor_pid.filter(|p| supervisor_alive(*p)) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGTERM);
        // The supervisor stops the pod within its grace period, plus a bounded wait
        // after SIGKILL per container and the runtime's deletes.
        let deadline = Instant::now()
            + Duration::from_secs(pod.termination_grace_period_seconds + 30)
            + Duration::from_secs(4) * pod.containers.len() as u32;
        while supervisor_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // Whatever the supervisor did not finish (or was not there to do).
    if let Ok(pod) = state::read(&dir) {
        teardown_without_supervisor(&pod).context("stopping the containers")?;
    }
    if dir.exists() {
        crate::supervisor::remove_pod_files(&dir, &pod.bundle_dir)?;
    }
    Ok(true)
}
