//! The one place that knows the on-disk layout of pods (ARCHITECTURE.md, "On-disk
//! layout"): state roots, pod directories, bundles and what is in them. (The image
//! store's inside is `image::store`'s, a container log's naming `logs`'.)

use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/run/podshim";
pub const DEFAULT_STORE: &str = "/var/lib/podshim";
pub const DEFAULT_LOGS: &str = "/var/log/podshim";

/// Roots of podshim's state, image store and logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Paths {
    pub root: PathBuf,
    pub store: PathBuf,
    pub logs: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            root: PathBuf::from(DEFAULT_ROOT),
            store: PathBuf::from(DEFAULT_STORE),
            logs: PathBuf::from(DEFAULT_LOGS),
        }
    }
}

impl Paths {
    /// `<root>/pods`: one directory per pod.
    pub fn pods(&self) -> PathBuf {
        self.root.join("pods")
    }

    /// `<root>/pods/<ns>_<pod>`: state, bundles, volumes and etc files of one pod.
    pub fn pod_dir(&self, pod_id: &str) -> PathBuf {
        self.pods().join(pod_id)
    }

    /// `<root>/runtimes`: what each runtime binary's `--version` said (checked once).
    pub fn runtime_checks(&self) -> PathBuf {
        self.root.join("runtimes")
    }

    /// `<logs>/pods`: one directory per pod started, kept after `down`.
    pub fn pod_logs(&self) -> PathBuf {
        self.logs.join("pods")
    }

    /// Per-pod log directory, like the kubelet's `/var/log/pods/<ns>_<pod>_<uid>`.
    pub fn pod_log_dir(&self, pod_id: &str, uid: &str) -> PathBuf {
        self.pod_logs().join(format!("{pod_id}_{uid}"))
    }
}

/// A pod directory's state record (`ps` reads it; the supervisor writes it).
pub const STATE_FILE: &str = "state.json";
/// A pod directory's lock: one command at a time on a pod.
pub const LOCK_FILE: &str = "lock";
/// The run plan in a bundle base directory (a pod directory, a generate output).
pub const PLAN_FILE: &str = "plan.json";

pub fn state_file(pod_dir: &Path) -> PathBuf {
    pod_dir.join(STATE_FILE)
}

pub fn lock_file(pod_dir: &Path) -> PathBuf {
    pod_dir.join(LOCK_FILE)
}

pub fn plan_file(base: &Path) -> PathBuf {
    base.join(PLAN_FILE)
}

/// `down --grace-period N`: the override the supervisor reads when told to stop
/// (it holds the decimal seconds).
pub fn stop_grace_file(pod_dir: &Path) -> PathBuf {
    pod_dir.join("stop-grace")
}

/// `podshim resize`'s note to the supervisor: the containers to restart for
/// their new resources (their names, one per line), read on SIGUSR1.
pub fn resize_file(pod_dir: &Path) -> PathBuf {
    pod_dir.join("resize-restart")
}

/// The supervisor's stderr.
pub fn supervisor_log(pod_dir: &Path) -> PathBuf {
    pod_dir.join("supervisor.log")
}

/// A bundle's config.json.
pub fn config_file(bundle: &Path) -> PathBuf {
    bundle.join("config.json")
}

/// A bundle's root filesystem (an overlay mount for a container).
pub fn rootfs_of(bundle: &Path) -> PathBuf {
    bundle.join("rootfs")
}

/// Short links `0`, `1`, ... to a container's layers (its image's first layer up),
/// which `run.sh` mounts a deep image's rootfs from (Docker overlay2's `l/`).
pub fn layer_links_of(bundle: &Path) -> PathBuf {
    bundle.join("layers")
}

/// Where the runtime writes a container's init pid.
pub fn pid_file(bundle: &Path) -> PathBuf {
    bundle.join("pid")
}

/// The host file behind a container's `terminationMessagePath`.
pub fn termination_log_of(bundle: &Path) -> PathBuf {
    bundle.join("termination-log")
}

/// Where one pod's files live. Every path the translator writes into a bundle comes
/// from here, so `up` (under the pod state dir) and `generate` (under `-o DIR`) share
/// one translation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPaths {
    /// The directory holding `bundles/`, `volumes/` and `etc/`.
    pub base: PathBuf,
}

impl PodPaths {
    pub fn new(base: impl Into<PathBuf>) -> Self {
        PodPaths { base: base.into() }
    }
    pub fn bundles(&self) -> PathBuf {
        self.base.join("bundles")
    }
    pub fn bundle(&self, container_id: &str) -> PathBuf {
        self.bundles().join(container_id)
    }
    pub fn rootfs(&self, container_id: &str) -> PathBuf {
        rootfs_of(&self.bundle(container_id))
    }
    /// Overlay upper and work dirs of one container (its writable layer).
    pub fn overlay_upper(&self, container_id: &str) -> PathBuf {
        self.bundle(container_id).join("upper")
    }
    pub fn overlay_work(&self, container_id: &str) -> PathBuf {
        self.bundle(container_id).join("work")
    }
    pub fn volumes(&self) -> PathBuf {
        self.base.join("volumes")
    }
    pub fn volume(&self, name: &str) -> PathBuf {
        self.volumes().join(name)
    }
    /// The empty lower layer of an image that has none (overlayfs needs one).
    pub fn empty_layer(&self, container_id: &str) -> PathBuf {
        self.bundle(container_id).join("empty-layer")
    }
    /// Where the `index`-th volumeMount of a container, a subPath one, is bound
    /// before each start (the kubelet's `volume-subpaths/<volume>/<container>/<index>`):
    /// a path of podshim's that config.json names as the mount source.
    pub fn sub_path(&self, container_id: &str, index: usize) -> PathBuf {
        self.base
            .join("subpaths")
            .join(container_id)
            .join(index.to_string())
    }
    /// The pod-wide `/dev/shm` (one tmpfs, bind-mounted into every container).
    pub fn shm(&self) -> PathBuf {
        self.base.join("shm")
    }
    /// The host file behind a container's `terminationMessagePath`.
    pub fn termination_log(&self, container_id: &str) -> PathBuf {
        termination_log_of(&self.bundle(container_id))
    }
    /// Where the pod's user namespace is pinned (`hostUsers: false`).
    pub fn userns(&self) -> PathBuf {
        self.base.join("userns")
    }
    /// Where the `index`-th id-mapped view of a host path is mounted.
    pub fn idmapped(&self, index: usize) -> PathBuf {
        self.base.join("idmapped").join(index.to_string())
    }
    /// The pod's `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
    pub fn etc(&self) -> PathBuf {
        self.base.join("etc")
    }
    pub fn etc_file(&self, name: &str) -> PathBuf {
        self.etc().join(name)
    }
}
