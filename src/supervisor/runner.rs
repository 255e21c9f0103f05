//! The real [`Containers`]: the OCI runtime CLI through the reaper, with each
//! container's stdout/stderr pumped into CRI log files.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::lifecycle::{Containers, Started};
use super::reaper::Reaper;
use crate::bundle::{Mounter, SystemMounter, is_mount_point};
use crate::logs::{self, LogWriter, RotateLimits, Stream};
use crate::model::ContainerKind;
use crate::run_plan::{RunContainer, SetupStep};
use crate::runtime::{CreateOptions, OciRuntime, Stdio3};

pub struct RuntimeContainers {
    pub runtime: Arc<dyn OciRuntime>,
    pub reaper: Arc<Reaper>,
    /// `<log dir>/<container>/<restart>.log`.
    pub log_dir: PathBuf,
    /// The rootfs overlays, to give a restarted container a fresh writable layer.
    pub setup: Vec<SetupStep>,
    /// The containers whose config.json gets the infra's namespaces.
    pub joining: Vec<RunContainer>,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

impl RuntimeContainers {
    fn bundle(&self, c: &RunContainer) -> PathBuf {
        c.bundle.clone()
    }

    /// Kubernetes restarts a container as a new container with a fresh writable
    /// layer: empty the overlay's upper and work dirs and mount it again.
    fn fresh_rootfs(&self, c: &RunContainer) -> Result<(), String> {
        let bundle = self.bundle(c);
        let rootfs = c.rootfs();
        let Some(options) = self.setup.iter().find_map(|s| match s {
            SetupStep::Overlay {
                target,
                lower,
                upper,
                work,
            } if *target == rootfs => Some(SetupStep::overlay_options(lower, upper, work)),
            _ => None,
        }) else {
            return Ok(());
        };
        let options = &options;
        let mounter = SystemMounter;
        if is_mount_point(&rootfs) {
            mounter
                .unmount(&rootfs)
                .map_err(|e| format!("unmount {}: {e}", rootfs.display()))?;
        }
        for dir in ["upper", "work"] {
            let d = bundle.join(dir);
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        mounter
            .mount_overlay(&rootfs, options)
            .map_err(|e| format!("mount the overlay rootfs {}: {e}", rootfs.display()))
    }

    fn pump(writer: Arc<LogWriter>, read: OwnedFd, stream: Stream) {
        std::thread::spawn(move || {
            let file = fs::File::from(read);
            if let Err(e) = logs::copy_stream(file, stream, &writer, &SystemTime::now) {
                tracing::warn!("log {}: {e}", writer.path().display());
            }
        });
    }
}

impl Containers for RuntimeContainers {
    fn start(&self, c: &RunContainer, restart: u32) -> Result<Started, String> {
        let bundle = self.bundle(c);
        if restart > 0 && c.kind != ContainerKind::Infra {
            self.fresh_rootfs(c)?;
        }
        crate::bundle::subpath::bind_all(c, &SystemMounter).map_err(|e| e.to_string())?;
        let pid_file = bundle.join("pid");
        let _ = fs::remove_file(&pid_file);
        let mut stdio = Stdio3::default();
        let mut readers = Vec::new();
        if c.kind != ContainerKind::Infra {
            let dir = self.log_dir.join(&c.name);
            let writer = LogWriter::open(&dir, restart, RotateLimits::default())
                .map_err(|e| format!("log file in {}: {e}", dir.display()))?;
            let (out_r, out_w) = pipe().map_err(|e| format!("pipe: {e}"))?;
            let (err_r, err_w) = pipe().map_err(|e| format!("pipe: {e}"))?;
            stdio.stdout = Some(out_w);
            stdio.stderr = Some(err_w);
            readers.push((writer.clone(), out_r, Stream::Stdout));
            readers.push((writer, err_r, Stream::Stderr));
        }
        let opts = CreateOptions {
            pid_file: Some(pid_file.clone()),
            stdio,
            ..Default::default()
        };
        // `run --detach` creates and starts in one runtime invocation. The container
        // holds the pipes' write ends from here on; ours were moved into `opts` and
        // are closed when it returns.
        let ran = self.runtime.run_detached(&c.id, &bundle, opts);
        for (writer, read, stream) in readers {
            Self::pump(writer, read, stream);
        }
        if let Err(e) = ran {
            let _ = self.runtime.delete(&c.id, true);
            return Err(e.to_string());
        }
        let pid: i32 = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| format!("{}: no pid after run", pid_file.display()))?;
        // The runtime has exited, so the container process is ours (subreaper); an
        // exit that happened already waits in the reaper for this subscription.
        let exit = self.reaper.subscribe(pid);
        Ok(Started { pid, exit })
    }

    fn signal(&self, c: &RunContainer, signal: &str) -> Result<(), String> {
        // SIGKILL goes to every process of the container (its cgroup), as the
        // kubelet's final kill does; the stop signal only to its init.
        let all = signal == "SIGKILL" || signal == "KILL" || signal == "9";
        match self.runtime.kill(&c.id, signal, all) {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() || e.is_not_running() => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn remove(&self, c: &RunContainer) -> Result<(), String> {
        match self.runtime.delete(&c.id, true) {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn last_log_lines(&self, c: &RunContainer, restart: u32) -> String {
        // Give the log pumps a moment to drain what the container wrote last.
        std::thread::sleep(Duration::from_millis(50));
        let path = logs::log_file(&self.log_dir.join(&c.name), restart);
        let mut out = Vec::new();
        let opts = logs::ReadOptions {
            tail: Some(10),
            ..Default::default()
        };
        let _ = logs::read_log(&path, &opts, &mut out, &|| true);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn infra_started(&self, pid: i32) -> Result<(), String> {
        // Every joining bundle names the infra's real /proc/<pid>/ns/* from now on.
        for c in self.joining.iter().filter(|c| !c.joins.is_empty()) {
            crate::bundle::join_infra(c, pid).map_err(|e| e.to_string())?;
        }
        // A hostNetwork pod has no network namespace of its own: nothing to do.
        let own_netns = fs::read_link(format!("/proc/{pid}/ns/net")).ok()
            != fs::read_link("/proc/self/ns/net").ok();
        if own_netns {
            super::netns::loopback_up(pid).map_err(|e| format!("bring lo up: {e}"))?;
        }
        Ok(())
    }
}
