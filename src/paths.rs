//! The one place that knows the on-disk layout (DESIGN.md, "On-disk layout").

use std::path::PathBuf;

pub const DEFAULT_ROOT: &str = "/run/podshim";
pub const DEFAULT_STORE: &str = "/var/lib/podshim";
pub const DEFAULT_LOGS: &str = "/var/log/podshim";

/// Roots of podshim's state, image store and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// `<root>/pods/<ns>_<pod>`: state, bundles, volumes and etc files of one pod.
    pub fn pod_dir(&self, pod_id: &str) -> PathBuf {
        self.root.join("pods").join(pod_id)
    }

    /// Per-pod log directory, like the kubelet's `/var/log/pods/<ns>_<pod>_<uid>`.
    pub fn pod_log_dir(&self, pod_id: &str, uid: &str) -> PathBuf {
        self.logs.join("pods").join(format!("{pod_id}_{uid}"))
    }
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
        self.bundle(container_id).join("rootfs")
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
        self.bundle(container_id).join("termination-log")
    }
    /// The pod's `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`.
    pub fn etc(&self) -> PathBuf {
        self.base.join("etc")
    }
    pub fn etc_file(&self, name: &str) -> PathBuf {
        self.etc().join(name)
    }
}
