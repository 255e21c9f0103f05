//! The run plan: what [`crate::bundle::write`] made on disk, and the only thing
//! about a pod that is serialized (`plan.json` beside the bundles). The supervisor,
//! `down`, `ps`, `up --from` and the generated `run.sh`/`stop.sh` all read this one
//! description; none of them re-derives a path or a mount.
//!
//! Every path in it was made by podshim (under the pod's base directory, or a
//! hostPath volume the manifest names), and it holds no secret: projected file
//! contents stay in their volumes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{
    ContainerKind, Hooks, HostPathType, Probes, RelPath, RestartPolicy, RestartRule, Signal,
    TerminationMessagePolicy,
};

/// The format of `plan.json`; a plan of another version is refused by name.
pub const VERSION: u32 = 1;

/// The file holding the plan, in the base directory: its presence marks a complete
/// `generate` output (written last).
pub use crate::paths::PLAN_FILE;

/// The largest `plan.json` podshim reads (a pod of hundreds of containers is far
/// below it).
pub const MAX_PLAN_BYTES: u64 = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunPlan {
    pub version: u32,
    pub pod_id: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub restart_policy: RestartPolicy,
    pub termination_grace_period_seconds: u64,
    /// `activeDeadlineSeconds`: the supervisor fails the pod once it has run
    /// this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<u64>,
    /// Kubernetes' `status.qosClass` (none in a plan written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_class: Option<crate::translate::qos::QosClass>,
    /// The directory holding `bundles/`, `volumes/`, `etc/`: the pod's state
    /// directory for `up FILE`, the output directory of `generate`.
    pub base: PathBuf,
    /// What must exist, in order, before the infra starts: directories, tmpfs and
    /// overlay mounts, hostPath checks. [`crate::bundle::ensure`] makes it (again,
    /// after a reboot or `stop.sh`); `run.sh` renders the same steps.
    pub setup: Vec<SetupStep>,
    pub infra: RunContainer,
    /// Init containers and sidecars in `initContainers` order, then app containers.
    pub containers: Vec<RunContainer>,
    /// The images the rootfs overlays are made of: the pod's lease in the store,
    /// which `prune` and `rmi` never collect.
    pub images: Vec<ImageUse>,
    /// Pod-level `spec.resources` (KEP-2837), defaulted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_resources: Option<PlanResources>,
    /// Disk-backed emptyDirs with a `sizeLimit`: measured while the pod runs,
    /// and the pod evicted once one holds more (the kubelet's eviction manager).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_limits: Vec<VolumeLimit>,
    /// The pod's CNI attachment, made by `up` before the bundles were written;
    /// none for `--network none`, hostNetwork and `generate` output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<PodNetwork>,
}

/// What a pod's CNI attachment is: everything DEL needs, whoever runs it (the
/// supervisor, `down` without one, `down` after a reboot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodNetwork {
    /// The network list's name (the CNI result cache's key).
    pub name: String,
    /// The list as ADD ran it (DEL prefers the copy in the result cache).
    pub config: String,
    /// Where the list was read from (`built-in` for the default network).
    pub source: PathBuf,
    pub bin_dirs: Vec<PathBuf>,
    pub cache_dir: PathBuf,
    /// The pinned network namespace, `<base>/netns` ([`crate::cni::netns`]).
    pub netns: PathBuf,
    /// The infra's id: CNI_CONTAINERID.
    pub container_id: String,
    pub ifname: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<crate::cni::PortMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<crate::cni::Bandwidth>,
    /// The pod's addresses from ADD, IPv4 first.
    pub ips: Vec<String>,
}

impl RunPlan {
    /// Infra first, then the rest in start order.
    pub fn all(&self) -> impl Iterator<Item = &RunContainer> {
        std::iter::once(&self.infra).chain(&self.containers)
    }

    pub fn container(&self, name: &str) -> Option<&RunContainer> {
        self.all().find(|c| c.name == name)
    }

    /// The pod's cgroup (none in a plan written before podshim made one).
    pub fn cgroup(&self) -> Option<&crate::translate::pod_cgroup::PodCgroup> {
        self.setup.iter().find_map(|s| match s {
            SetupStep::PodCgroup { cgroup, .. } => Some(cgroup),
            _ => None,
        })
    }

    /// The pod's host ids under `hostUsers: false`.
    pub fn user_namespace(&self) -> Option<crate::userns::IdRange> {
        self.setup.iter().find_map(|s| match s {
            SetupStep::UserNamespace { range, .. } => Some(*range),
            _ => None,
        })
    }

    /// The ids of the pod's containers, infra first.
    pub fn ids(&self) -> Vec<String> {
        self.all().map(|c| c.id.clone()).collect()
    }

    /// The path of `plan.json` in `base`.
    pub fn file(base: &Path) -> PathBuf {
        crate::paths::plan_file(base)
    }
}

/// One thing that must exist before the pod runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "step",
    deny_unknown_fields
)]
pub enum SetupStep {
    /// A directory of podshim's, with exactly this mode (emptyDir volumes are 0777
    /// whatever the umask, as the kubelet makes them) and, for a volume under
    /// `fsGroup`, that group.
    Directory {
        path: PathBuf,
        mode: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<u32>,
    },
    /// A tmpfs (the pod's /dev/shm, memory-backed and Secret volumes).
    /// `files` names what the volume held when written: a tmpfs mounted anew has
    /// lost them, which is an error rather than an empty volume.
    Tmpfs {
        target: PathBuf,
        options: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<RelPath>,
    },
    /// A container's rootfs: the image's layers (lowest first) under its own
    /// writable upper directory. In a user namespace the upper and work
    /// directories are the pod root's (`owner`, a host id): overlayfs writes
    /// what the pod creates there with the creator's host ids.
    Overlay {
        target: PathBuf,
        lower: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<u32>,
    },
    /// `hostUsers: false`: the pod's user namespace, mapping `range`, pinned
    /// at `pin` (first of the steps: the id-mapped mounts take their mapping
    /// from it).
    UserNamespace {
        pin: PathBuf,
        range: crate::userns::IdRange,
    },
    /// `source` mounted again at `target` with the ids of the user namespace
    /// pinned at `userns` (mount_setattr(2)'s MOUNT_ATTR_IDMAP, Linux >= 5.12;
    /// a layer under overlayfs needs Linux >= 5.19, a tmpfs Linux >= 6.3).
    IdmapMount {
        source: PathBuf,
        target: PathBuf,
        userns: PathBuf,
        /// An image layer's view: the store is never written through it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        read_only: bool,
    },
    /// The pod's cgroup, with its limits ([`crate::cgroup::create`]); each
    /// container's config.json names its own cgroup under it. `containers` are
    /// the pod's container ids, the only cgroups it may hold.
    PodCgroup {
        cgroup: crate::translate::pod_cgroup::PodCgroup,
        containers: Vec<String>,
    },
    /// `fsGroup` on a volume that holds files already (a claim's local
    /// volume), before a pod starts: [`crate::bundle::ownership`].
    VolumeOwnership {
        volume: String,
        path: PathBuf,
        group: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        read_only: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        on_root_mismatch: bool,
        /// The node's pods directory and this pod (`ns/name`): a started pod
        /// there that has the volume mounted already keeps its ownership.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node_pods: Option<PathBuf>,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pod: String,
    },
    /// A hostPath volume, checked against its type; `DirectoryOrCreate` and
    /// `FileOrCreate` are created (0755 / 0644, as the kubelet does) when missing.
    HostPath {
        volume: String,
        path: PathBuf,
        #[serde(rename = "type")]
        kind: HostPathType,
    },
}

impl SetupStep {
    /// The overlay's mount options: `lowerdir` lists the top layer first
    /// (overlayfs(5)), so the store's lowest-first list is reversed.
    pub fn overlay_options(lower: &[PathBuf], upper: &Path, work: &Path) -> String {
        let lower: Vec<String> = lower
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect();
        format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            upper.display(),
            work.display()
        )
    }
}

/// One container of the pod, as run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunContainer {
    /// The runtime's container id.
    pub id: String,
    /// The manifest's name (`POD` for the infra).
    pub name: String,
    pub kind: ContainerKind,
    /// The normalised image name; `None` for the infra.
    pub image: Option<String>,
    pub stop_signal: Signal,
    /// The bundle directory (config.json + rootfs).
    pub bundle: PathBuf,
    /// Namespaces joined from the infra (`pid`, `ipc`, `net`, `uts`): their paths
    /// in config.json are written once the infra's pid is known.
    pub joins: Vec<String>,
    /// subPath mounts, resolved inside their volume and bound to `target` before
    /// every start (CVE-2017-1002101).
    pub sub_paths: Vec<SubPathBind>,
    /// What the supervisor probes (none for the infra and init containers).
    #[serde(default, skip_serializing_if = "Probes::is_empty")]
    pub probes: Probes,
    /// The lifecycle hooks the supervisor runs (likewise).
    #[serde(default, skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
    /// Whether a failed run without a termination message takes its log's end.
    #[serde(default, skip_serializing_if = "TerminationMessagePolicy::is_file")]
    pub termination_message_policy: TerminationMessagePolicy,
    /// The container's own `restartPolicy` (none: the pod's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    /// `restartPolicyRules`, checked in order at each exit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart_rules: Vec<RestartRule>,
    /// The ids the process runs as, once the bundle writer resolved them in
    /// the rootfs (none for the infra).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<ContainerUser>,
    /// `tty`, `stdin`, `stdinOnce`: what the supervisor holds for the main
    /// process and `podshim attach`.
    #[serde(default, skip_serializing_if = "StdioPlan::is_default")]
    pub stdio: StdioPlan,
    /// `fileKeyRef` variables, read before each start (what expands them, the
    /// container's env as steps, is in a private file of its bundle:
    /// `bundle::envfile::steps_file`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_env: Vec<FileEnv>,
    /// The container's CPU and memory as last set (the manifest's, then
    /// `podshim resize`'s); none for the infra.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<PlanResources>,
    #[serde(
        default,
        skip_serializing_if = "crate::model::ResizePolicy::is_default"
    )]
    pub resize_policy: crate::model::ResizePolicy,
}

/// CPU (millicores) and memory (bytes) requests and limits, as the kubelet
/// holds them (`MilliValue`, `Value`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_request_millis: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit_millis: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_request_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
}

impl PlanResources {
    pub fn of(r: &crate::model::Resources) -> PlanResources {
        let millis = |q: Option<crate::model::Quantity>| q.map(|q| q.millis_u64());
        let bytes = |q: Option<crate::model::Quantity>| {
            q.map(|q| {
                q.whole()
                    .and_then(|w| u64::try_from(w).ok())
                    .unwrap_or(u64::MAX)
            })
        };
        PlanResources {
            cpu_request_millis: millis(r.cpu_request),
            cpu_limit_millis: millis(r.cpu_limit),
            memory_request_bytes: bytes(r.memory_request),
            memory_limit_bytes: bytes(r.memory_limit),
        }
    }

    pub fn model(&self) -> crate::model::Resources {
        use crate::model::Quantity;
        crate::model::Resources {
            cpu_request: self
                .cpu_request_millis
                .map(|m| Quantity::from_millis(m.into())),
            cpu_limit: self
                .cpu_limit_millis
                .map(|m| Quantity::from_millis(m.into())),
            memory_request: self
                .memory_request_bytes
                .map(|b| Quantity::from_whole(b.into())),
            memory_limit: self
                .memory_limit_bytes
                .map(|b| Quantity::from_whole(b.into())),
        }
    }
}

/// A container's `tty`, `stdin` and `stdinOnce`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StdioPlan {
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
}

impl StdioPlan {
    pub fn is_default(&self) -> bool {
        *self == StdioPlan::default()
    }
}

/// A disk-backed emptyDir's `sizeLimit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeLimit {
    pub name: String,
    /// The volume's directory on the host (podshim's, under the pod's).
    pub path: PathBuf,
    pub bytes: u64,
    /// The limit as the manifest wrote it (`1Mi`).
    pub written: String,
}

/// A container with `fileKeyRef` variables (KEP-3721): its own variables and
/// its command and args, rebuilt before each start as the kubelet's
/// `makeEnvironmentVariables` builds them, so that a `$(VAR)` naming a file's
/// variable expands to what the file says then. Empty for any other container.
/// It holds values (a Secret's, a `value`'s): kept 0600 in the bundle, never
/// in plan.json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileEnvs {
    /// The container's `env`, in order.
    pub vars: Vec<EnvStep>,
    /// argv as command and args make it, unexpanded; empty when the image's
    /// ENTRYPOINT and CMD are the whole of it (they are never expanded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgStep>,
}

impl FileEnvs {
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// The `fileKeyRef` variables alone.
    pub fn files(&self) -> impl Iterator<Item = &FileEnv> {
        self.vars.iter().filter_map(|v| match v {
            EnvStep::File(f) => Some(f),
            _ => None,
        })
    }
}

/// One of a container's `env` entries, as the start rebuilds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum EnvStep {
    /// A `value`: `$(VAR)`-expanded with the variables before it.
    Value { name: String, value: String },
    /// A value resolved when the plan was made (a ConfigMap's or Secret's key, a
    /// downward API field): never expanded.
    Resolved { name: String, value: String },
    /// Read from its env file.
    File(FileEnv),
}

/// One argument of command and args.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArgStep {
    pub arg: String,
    /// The container's (`$(VAR)`-expanded), not the image's ENTRYPOINT.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expand: bool,
}

/// A `fileKeyRef` variable, set in config.json before each start from the env
/// file in the volume (KEP-3721).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileEnv {
    pub name: String,
    /// The volume's directory on the host: the file is resolved inside it.
    pub volume_path: PathBuf,
    pub path: RelPath,
    pub key: String,
    pub optional: bool,
}

/// Kubernetes' `ContainerUser.linux` (KEP-3619): the uid, gid and
/// supplementary groups a container's first process was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerUser {
    pub uid: u32,
    pub gid: u32,
    pub supplemental_groups: Vec<u32>,
}

impl RunContainer {
    pub fn config_file(&self) -> PathBuf {
        crate::paths::config_file(&self.bundle)
    }
    pub fn rootfs(&self) -> PathBuf {
        crate::paths::rootfs_of(&self.bundle)
    }
}

/// A subPath mount: config.json's mount source is `target`, a path of podshim's
/// that the resolved file is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubPathBind {
    pub volume: String,
    /// The volume's directory on the host.
    pub volume_path: PathBuf,
    pub sub_path: RelPath,
    pub target: PathBuf,
    /// `hostUsers: false`: the pod's pinned user namespace, whose ids the
    /// bind is mapped with (the subPath is resolved, and made, in the volume
    /// itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<PathBuf>,
}

/// An image a pod's rootfs is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageUse {
    pub name: String,
    pub manifest_digest: String,
}

/// Why a plan cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{path}: {err}")]
    Io {
        path: PathBuf,
        #[source]
        err: std::io::Error,
    },
    #[error("{path}: larger than {MAX_PLAN_BYTES} bytes: not a podshim plan")]
    TooLarge { path: PathBuf },
    #[error("{path}: not a podshim plan: {err}")]
    Parse {
        path: PathBuf,
        #[source]
        err: serde_json::Error,
    },
    #[error("{path}: plan version {found}, this podshim reads version {VERSION}")]
    Version { path: PathBuf, found: u32 },
}

/// Reads `<base>/plan.json`: a regular file (never through a symlink), at most
/// [`MAX_PLAN_BYTES`].
pub fn read(base: &Path) -> Result<RunPlan, PlanError> {
    let path = RunPlan::file(base);
    let io = |err| PlanError::Io {
        path: path.clone(),
        err,
    };
    let bytes = crate::fsutil::read_regular(&path, MAX_PLAN_BYTES).map_err(|e| match e {
        crate::fsutil::ReadError::Io(err) => io(err),
        crate::fsutil::ReadError::TooLarge => PlanError::TooLarge { path: path.clone() },
    })?;
    let parse = |err| PlanError::Parse {
        path: path.clone(),
        err,
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(parse)?;
    // The version first: a newer plan is named as such, not as unknown fields.
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        found => {
            return Err(PlanError::Version {
                path: path.clone(),
                found: found.unwrap_or(0) as u32,
            });
        }
    }
    serde_json::from_value(value).map_err(parse)
}

/// The plan's JSON text, as written to `plan.json`.
pub fn render(plan: &RunPlan) -> String {
    serde_json::to_string_pretty(plan).expect("a run plan always serializes") + "\n"
}

/// A run plan for tests: pod `ns/p` in `/b`, its infra `POD`, and `containers`
/// (name, kind) in order.
#[cfg(test)]
pub(crate) fn fixture(
    policy: RestartPolicy,
    grace: u64,
    containers: &[(&str, ContainerKind)],
) -> RunPlan {
    let c = |name: &str, id: String, kind: ContainerKind| RunContainer {
        id,
        name: name.into(),
        kind,
        image: (kind != ContainerKind::Infra).then(|| "img".into()),
        stop_signal: Signal::TERM,
        bundle: PathBuf::from(format!("/b/{name}")),
        joins: vec![],
        sub_paths: vec![],
        probes: Probes::default(),
        hooks: Hooks::default(),
        termination_message_policy: TerminationMessagePolicy::File,
        restart_policy: None,
        restart_rules: vec![],
        user: None,
        file_env: Vec::new(),
        stdio: StdioPlan::default(),
        resources: None,
        resize_policy: Default::default(),
    };
    RunPlan {
        version: VERSION,
        pod_id: "ns_p".into(),
        namespace: "ns".into(),
        name: "p".into(),
        uid: "u".into(),
        restart_policy: policy,
        termination_grace_period_seconds: grace,
        active_deadline_seconds: None,
        qos_class: None,
        base: "/b".into(),
        setup: vec![],
        infra: c("POD", "ns_p".into(), ContainerKind::Infra),
        containers: containers
            .iter()
            .map(|(n, k)| c(n, format!("ns_p_{n}"), *k))
            .collect(),
        images: vec![],
        pod_resources: None,
        volume_limits: Vec::new(),
        network: None,
    }
}
