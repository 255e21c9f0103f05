//! podshim's own pod: typed and validated once, by `manifest::load` (which parses
//! the Kubernetes API types and lowers them into these), then read by `translate`,
//! `pod` and the CLI. Parse, don't validate (ARCHITECTURE.md): every value here
//! already satisfies Kubernetes' rules, so nothing downstream checks them again,
//! and nothing downstream can fail on them.
//!
//! What the input's ConfigMaps and Secrets hold is resolved into the pod while it is
//! lowered: environment values and projected files carry their data, so there are no
//! references left to dangle.

mod names;
mod probe;
mod quantity;
mod restart;
mod signal;
pub mod totals;
mod values;
pub mod workload;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::image::ImageRef;

pub use names::{
    DEFAULT_NAMESPACE, DNS1123_LABEL_MSG, DNS1123_SUBDOMAIN_MSG, DnsLabel, DnsSubdomain, NameError,
    POD_UID_MSG, PodKey, PodKeyError, PodUid,
};
pub use probe::{
    Hook, HookKind, Hooks, HttpGet, HttpHeader, HttpScheme, Probe, ProbeAction, ProbeKind, Probes,
};
pub use quantity::{Quantity, QuantityError, binary_si};
pub use restart::{AfterExit, ExitCodeOperator, RestartAction, RestartRule, after_exit};
pub use signal::Signal;
pub use values::{AbsPath, FileMode, Id, RelPath};

/// One Pod, valid and defaulted.
#[derive(Debug, Clone)]
pub struct Pod {
    pub key: PodKey,
    /// As given, else derived from the key (stable across runs).
    pub uid: PodUid,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// The controller that made it (a pod of a Deployment, StatefulSet, ...).
    pub owner_references: Vec<workload::OwnerReference>,
    /// The workload of the manifest that wants the pod (a Deployment's pod is
    /// owned by its ReplicaSet, but wanted by the Deployment): what `up`
    /// applies, `ps` groups by and `down FILE` removes.
    pub workload: Option<workload::OwnerReference>,
    /// The hash of what the pod was made from (its controller's template, or
    /// the Pod document): `up` of a changed manifest replaces a pod whose hash
    /// differs.
    pub template_hash: String,
    pub spec: PodSpec,
}

impl Pod {
    pub fn namespace(&self) -> &str {
        self.key.namespace.as_str()
    }
    pub fn name(&self) -> &str {
        self.key.name.as_str()
    }
}

#[derive(Debug, Clone)]
pub struct PodSpec {
    pub restart_policy: RestartPolicy,
    /// Defaulted to 30, as the API server does.
    pub termination_grace_period_seconds: u64,
    /// `activeDeadlineSeconds`: how long the pod may be active.
    pub active_deadline_seconds: Option<u64>,
    pub hostname: Option<DnsLabel>,
    pub subdomain: Option<DnsLabel>,
    /// `hostnameOverride` (KEP-4762): the pod's hostname whatever its name,
    /// hostname and subdomain.
    pub hostname_override: Option<DnsSubdomain>,
    /// `setHostnameAsFQDN`: the kernel hostname is the pod's FQDN.
    pub set_hostname_as_fqdn: bool,
    pub host_aliases: Vec<HostAlias>,
    pub dns_policy: DnsPolicy,
    pub dns_config: Option<DnsConfig>,
    pub host_network: bool,
    pub host_pid: bool,
    pub host_ipc: bool,
    /// `hostUsers` (default true); false: the pod runs in a user namespace of
    /// its own (KEP-127), root inside mapped to an unprivileged host range.
    pub host_users: bool,
    pub share_process_namespace: bool,
    pub supplemental_groups: Vec<Id>,
    /// Whether the groups the image's /etc/group gives the container's user
    /// join `supplemental_groups` (KEP-3619).
    pub supplemental_groups_policy: SupplementalGroupsPolicy,
    /// `fsGroup`: owns the pod's own volumes (setgid) and joins every
    /// container's supplementary groups.
    pub fs_group: Option<Id>,
    /// `fsGroupChangePolicy`, defaulted to `Always` as the kubelet treats unset.
    pub fs_group_change_policy: FsGroupChangePolicy,
    /// Namespaced sysctls only; `net.*` ones only with the pod's own network.
    pub sysctls: Vec<Sysctl>,
    pub node_name: Option<String>,
    /// `serviceAccountName`, else the deprecated `serviceAccount`, else
    /// `default`, as the API server's ServiceAccount admission sets it (what the
    /// downward API's `spec.serviceAccountName` reads).
    pub service_account_name: String,
    /// Pod-level `spec.resources` (KEP-2837), requests defaulted as the API
    /// server's defaultPodRequests does: a pod-level request not written is the
    /// containers' total where they request it, else the pod-level limit.
    pub resources: Option<Resources>,
    pub volumes: Vec<Volume>,
    /// `initContainers` (init containers and native sidecars) in order, then
    /// `containers`. Names are unique across both.
    pub containers: Vec<Container>,
}

impl PodSpec {
    pub fn volume(&self, name: &DnsLabel) -> Option<&Volume> {
        self.volumes.iter().find(|v| &v.name == name)
    }
}

/// `spec.securityContext.supplementalGroupsPolicy` (KEP-3619).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SupplementalGroupsPolicy {
    /// The pod's groups and the ones the image's /etc/group gives the user.
    #[default]
    Merge,
    /// Only the pod's groups (`supplementalGroups`, `fsGroup`) and the primary one.
    Strict,
}

impl SupplementalGroupsPolicy {
    pub const NAMES: &'static [&'static str] = &["Merge", "Strict"];
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Merge" => Self::Merge,
            "Strict" => Self::Strict,
            _ => return None,
        })
    }
}

/// `spec.securityContext.fsGroupChangePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FsGroupChangePolicy {
    /// Every file of the volume is given the group (the kubelet's default).
    #[default]
    Always,
    /// Only when the volume's root does not already have the group and mode.
    OnRootMismatch,
}

impl FsGroupChangePolicy {
    pub const NAMES: &'static [&'static str] = &["Always", "OnRootMismatch"];
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Always" => Self::Always,
            "OnRootMismatch" => Self::OnRootMismatch,
            _ => return None,
        })
    }
}

/// Kubernetes' pod `restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub const NAMES: &'static [&'static str] = &["Always", "OnFailure", "Never"];

    pub fn parse(s: &str) -> Option<RestartPolicy> {
        Some(match s {
            "Always" => RestartPolicy::Always,
            "OnFailure" => RestartPolicy::OnFailure,
            "Never" => RestartPolicy::Never,
            _ => return None,
        })
    }

    /// Whether a container that exited with `code` runs again.
    pub fn restarts(self, code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => code != 0,
            RestartPolicy::Never => false,
        }
    }
}

/// What a container is to its pod. Native sidecars are init containers with
/// `restartPolicy: Always` (KEP-753).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerKind {
    /// The pause container owning the pod's namespaces.
    Infra,
    /// An init container: runs to completion, one at a time, before the next.
    Init,
    /// A native sidecar: started in init order, kept running, stopped after the
    /// app containers.
    Sidecar,
    App,
}

impl ContainerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerKind::Infra => "infra",
            ContainerKind::Init => "init",
            ContainerKind::Sidecar => "sidecar",
            ContainerKind::App => "app",
        }
    }
}

/// Kubernetes' `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub const NAMES: &'static [&'static str] = &["Always", "IfNotPresent", "Never"];

    /// The policy as written, else Kubernetes' default (SetDefaults_Container in
    /// pkg/apis/core/v1/defaults.go): `Always` for the `latest` tag or no tag,
    /// `IfNotPresent` otherwise (so also for a digest-only reference).
    pub fn parse_or_default(written: Option<&str>, image: &ImageRef) -> Option<PullPolicy> {
        Some(match written {
            Some("Always") => PullPolicy::Always,
            Some("IfNotPresent") => PullPolicy::IfNotPresent,
            Some("Never") => PullPolicy::Never,
            Some(_) => return None,
            // ImageRef::parse gives `latest` to a name with neither tag nor digest.
            None if image.tag.as_deref() == Some("latest") => PullPolicy::Always,
            None => PullPolicy::IfNotPresent,
        })
    }
}

/// An image as the manifest names it, and as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// Exactly as written: the key images are looked up by (short names resolve
    /// through registries.conf).
    pub written: String,
    /// Normalised the docker/Kubernetes way.
    pub reference: ImageRef,
}

/// One container of the pod (not the infra).
#[derive(Debug, Clone)]
pub struct Container {
    pub name: DnsLabel,
    pub kind: ContainerKind,
    pub image: ImageName,
    pub pull_policy: PullPolicy,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub working_dir: Option<AbsPath>,
    /// The container's own variables in Kubernetes' order: every `envFrom` source,
    /// then `env`. A later entry of the same name replaces an earlier one in place.
    pub env: Vec<EnvVar>,
    pub ports: Vec<ContainerPort>,
    pub mounts: Vec<VolumeMount>,
    pub resources: Resources,
    /// `resizePolicy`: how `podshim resize` applies a new value of each resource.
    pub resize_policy: ResizePolicy,
    /// Extended resources (`example.com/dongle: 2`), by name: their limits (a
    /// request equals its limit). A CDI spec of that kind gives the devices.
    pub extended_resources: BTreeMap<String, u64>,
    pub security: ContainerSecurity,
    /// `stdin`: the container's stdin is kept open for `podshim attach -i`
    /// (else it reads /dev/null).
    pub stdin: bool,
    /// `stdinOnce`: stdin closes when the first attach session that wrote to
    /// it ends, until the container restarts.
    pub stdin_once: bool,
    /// `tty`: the main process gets a terminal; the supervisor holds its
    /// master, logs what it prints and serves `podshim attach`.
    pub tty: bool,
    /// Defaulted to `/dev/termination-log`.
    pub termination_message_path: AbsPath,
    pub termination_message_policy: TerminationMessagePolicy,
    /// Run by the supervisor; only sidecars and app containers have any.
    pub probes: Probes,
    /// `lifecycle.postStart` and `preStop`, run by the supervisor.
    pub hooks: Hooks,
    /// `lifecycle.stopSignal` (KEP-4960), over the image's STOPSIGNAL.
    pub stop_signal: Option<Signal>,
    /// The container's own `restartPolicy` (KEP-5307), over the pod's; a
    /// sidecar's is `Always` (its kind says so).
    pub restart_policy: Option<RestartPolicy>,
    /// `restartPolicyRules`, in order.
    pub restart_rules: Vec<RestartRule>,
}

/// One environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    pub value: EnvValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// `value`: `$(VAR)`-expanded with the variables defined before it.
    Literal(String),
    /// A ConfigMap or Secret key's data (`envFrom`, `configMapKeyRef`,
    /// `secretKeyRef`), used as is.
    Data(String),
    /// The downward API.
    Field(FieldRef),
    Resource(Box<ResourceRef>),
    /// `fileKeyRef` (KEP-3721): a key of an env file in one of the pod's
    /// volumes, read before each start of the container.
    File(FileKeyRef),
}

/// `valueFrom.fileKeyRef`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileKeyRef {
    /// A volume of the pod (checked).
    pub volume: DnsLabel,
    pub path: RelPath,
    pub key: String,
    /// A missing file or key leaves the variable unset rather than failing the
    /// start.
    pub optional: bool,
}

/// A downward API field (`fieldRef.fieldPath`, pkg/fieldpath).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRef {
    Name,
    Namespace,
    Uid,
    NodeName,
    ServiceAccountName,
    PodIp,
    PodIps,
    HostIp,
    HostIps,
    /// All labels or annotations, one `key="value"` line each (volumes only).
    Labels,
    Annotations,
    Label(String),
    Annotation(String),
}

/// A downward API resource value (`resourceFieldRef`), with the resources of the
/// container it names already looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    pub resources: Resources,
    pub field: ResourceField,
    /// Defaulted to 1.
    pub divisor: Quantity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceField {
    LimitsCpu,
    LimitsMemory,
    RequestsCpu,
    RequestsMemory,
}

/// What an in-place resize of one resource needs (KEP-1287 `resizePolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ResizeRestart {
    /// The cgroup is updated while the container runs.
    #[default]
    NotRequired,
    /// The container is restarted with the new resources.
    RestartContainer,
}

impl ResizeRestart {
    pub const NAMES: &'static [&'static str] = &["NotRequired", "RestartContainer"];
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "NotRequired" => Some(Self::NotRequired),
            "RestartContainer" => Some(Self::RestartContainer),
            _ => None,
        }
    }
}

/// A container's `resizePolicy`, by resource (each defaulted to NotRequired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResizePolicy {
    #[serde(default)]
    pub cpu: ResizeRestart,
    #[serde(default)]
    pub memory: ResizeRestart,
}

impl ResizePolicy {
    pub fn is_default(&self) -> bool {
        *self == ResizePolicy::default()
    }
}

/// CPU and memory, the resources podshim applies. A request that is not set is
/// the limit, as the API server defaults it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_request: Option<Quantity>,
    pub cpu_limit: Option<Quantity>,
    pub memory_request: Option<Quantity>,
    pub memory_limit: Option<Quantity>,
}

/// A container's security settings, the pod's `securityContext` merged under its
/// own (container fields win).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSecurity {
    pub run_as_user: Option<Id>,
    pub run_as_group: Option<Id>,
    pub run_as_non_root: bool,
    pub privileged: bool,
    pub read_only_root_filesystem: bool,
    /// `false` sets no_new_privs; Kubernetes' default is true.
    pub allow_privilege_escalation: bool,
    /// In the order written; `drop` applies before `add`.
    pub capabilities_add: Vec<CapabilityName>,
    pub capabilities_drop: Vec<CapabilityName>,
    /// The container's `seccompProfile`, else its legacy annotation, else the pod's
    /// field, else the pod's annotation (the precedence of the kubelet's
    /// `getSeccompProfile` and the API server's annotation/field sync); unset is
    /// Unconfined (the kubelet's `--seccomp-default` is off by default).
    pub seccomp: SeccompProfile,
    /// The container's `appArmorProfile`, else its legacy annotation, else the
    /// pod's; `None` when nothing asks for one (then the runtime's default applies
    /// where the host has AppArmor, and nothing is required where it has none).
    pub apparmor: Option<AppArmor>,
    /// The field that asked for an SELinux label (the container's
    /// `seLinuxOptions`, else the pod's): podshim sets none, so a host with
    /// SELinux enabled refuses it.
    pub selinux_field: Option<String>,
    /// `procMount: Unmasked`: /proc without masked or read-only paths (only
    /// under `hostUsers: false`).
    pub proc_mount_unmasked: bool,
}

/// A seccomp profile as Kubernetes names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompProfile {
    #[default]
    Unconfined,
    /// The runtime's default profile (containerd's, filtered by the container's
    /// capabilities and the architecture).
    RuntimeDefault,
    /// A profile file under the seccomp profile root (`--seccomp-profile-root`,
    /// the kubelet's `/var/lib/kubelet/seccomp`).
    Localhost {
        path: RelPath,
        /// The field (or annotation) it was given in, for errors about the file.
        field: String,
    },
}

/// An AppArmor profile and the field (or annotation) that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppArmor {
    pub profile: AppArmorProfile,
    pub field: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppArmorProfile {
    Unconfined,
    RuntimeDefault,
    /// A profile loaded on the host, by name.
    Localhost(String),
}

/// A capability as Kubernetes spells it (`NET_ADMIN`, `CAP_NET_ADMIN`, `ALL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapabilityName {
    All,
    One(oci_spec::runtime::Capability),
}

impl CapabilityName {
    pub fn parse(name: &str) -> Option<CapabilityName> {
        if name.eq_ignore_ascii_case("ALL") {
            return Some(CapabilityName::All);
        }
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        // oci-spec's FromStr takes the bare name; its serde form has the prefix.
        bare.parse().ok().map(CapabilityName::One)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TerminationMessagePolicy {
    #[default]
    File,
    FallbackToLogsOnError,
}

impl TerminationMessagePolicy {
    pub fn is_file(&self) -> bool {
        *self == TerminationMessagePolicy::File
    }
}

/// One `ports` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPort {
    pub container_port: u16,
    pub name: Option<String>,
    pub protocol: Protocol,
    pub host_port: Option<u16>,
    pub host_ip: Option<std::net::IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    TCP,
    UDP,
    SCTP,
}

/// One `volumeMounts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// A volume of the pod (checked).
    pub volume: DnsLabel,
    pub mount_path: AbsPath,
    pub read_only: bool,
    pub sub_path: Option<RelPath>,
    pub propagation: MountPropagation,
    pub recursive_read_only: RecursiveReadOnly,
}

/// `volumeMounts[].recursiveReadOnly` (KEP-3857): whether a read-only bind is
/// read-only in its submounts too. Only on read-only mounts without
/// propagation (validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RecursiveReadOnly {
    #[default]
    Disabled,
    /// Where the runtime and kernel can; else a plain read-only bind.
    IfPossible,
    /// Required: the container is refused where the runtime cannot.
    Enabled,
}

impl RecursiveReadOnly {
    pub const NAMES: &'static [&'static str] = &["Disabled", "Enabled", "IfPossible"];
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Disabled" => Self::Disabled,
            "IfPossible" => Self::IfPossible,
            "Enabled" => Self::Enabled,
            _ => return None,
        })
    }
}

/// `mountPropagation`. Bidirectional only on privileged containers (checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountPropagation {
    None,
    HostToContainer,
    Bidirectional,
}

impl MountPropagation {
    /// The OCI mount option: None → rprivate, HostToContainer → rslave,
    /// Bidirectional → rshared.
    pub fn option(self) -> &'static str {
        match self {
            MountPropagation::None => "rprivate",
            MountPropagation::HostToContainer => "rslave",
            MountPropagation::Bidirectional => "rshared",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: DnsLabel,
    pub source: VolumeSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    HostPath {
        path: AbsPath,
        kind: HostPathType,
    },
    EmptyDir {
        medium: StorageMedium,
        /// `sizeLimit`, and as written (what the kubelet's eviction message
        /// quotes).
        size_limit: Option<(Quantity, String)>,
    },
    /// A persistentVolumeClaim: a local volume of the claim's (under the store,
    /// made on first use), bound into the pod; `readOnly` makes every mount of it
    /// read-only.
    PersistentVolumeClaim {
        claim: DnsSubdomain,
        read_only: bool,
    },
    /// A configMap volume, its keys resolved into files.
    ConfigMap {
        files: Vec<KeyFile>,
    },
    /// A secret volume, its keys resolved into files (kept off disk).
    Secret {
        files: Vec<KeyFile>,
    },
    DownwardApi {
        items: Vec<DownwardItem>,
    },
    /// A projected volume: the files of its sources in one directory, every path
    /// projected once (a later source's key replaced an earlier one's, as in the
    /// kubelet's payload map).
    Projected {
        files: Vec<ProjectedItem>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageMedium {
    /// The node's disk (`medium: ""`).
    Default,
    /// tmpfs (`medium: Memory`).
    Memory,
}

/// Kubernetes' hostPath `type` (pkg/volume/hostpath).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostPathType {
    /// `""`: no check.
    #[serde(rename = "")]
    Unset,
    DirectoryOrCreate,
    Directory,
    FileOrCreate,
    File,
    Socket,
    CharDevice,
    BlockDevice,
}

impl HostPathType {
    /// In the order Kubernetes lists them in its message.
    pub const NAMES: &'static [&'static str] = &[
        "",
        "BlockDevice",
        "CharDevice",
        "Directory",
        "DirectoryOrCreate",
        "File",
        "FileOrCreate",
        "Socket",
    ];

    pub fn parse(s: &str) -> Option<HostPathType> {
        Some(match s {
            "" => HostPathType::Unset,
            "DirectoryOrCreate" => HostPathType::DirectoryOrCreate,
            "Directory" => HostPathType::Directory,
            "FileOrCreate" => HostPathType::FileOrCreate,
            "File" => HostPathType::File,
            "Socket" => HostPathType::Socket,
            "CharDevice" => HostPathType::CharDevice,
            "BlockDevice" => HostPathType::BlockDevice,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HostPathType::Unset => "",
            HostPathType::DirectoryOrCreate => "DirectoryOrCreate",
            HostPathType::Directory => "Directory",
            HostPathType::FileOrCreate => "FileOrCreate",
            HostPathType::File => "File",
            HostPathType::Socket => "Socket",
            HostPathType::CharDevice => "CharDevice",
            HostPathType::BlockDevice => "BlockDevice",
        }
    }
}

/// One file of a configMap or secret volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    pub path: RelPath,
    pub content: Vec<u8>,
    pub mode: FileMode,
}

/// One file of a downwardAPI volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownwardItem {
    pub path: RelPath,
    pub value: DownwardValue,
    pub mode: FileMode,
}

/// One file of a projected volume: a ConfigMap or Secret key, or a downward API
/// item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectedItem {
    Key(KeyFile),
    Downward(DownwardItem),
}

impl ProjectedItem {
    pub fn path(&self) -> &RelPath {
        match self {
            ProjectedItem::Key(k) => &k.path,
            ProjectedItem::Downward(d) => &d.path,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownwardValue {
    Field(FieldRef),
    Resource(Box<ResourceRef>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsPolicy {
    ClusterFirst,
    ClusterFirstWithHostNet,
    Default,
    None,
}

impl DnsPolicy {
    pub const NAMES: &'static [&'static str] =
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];

    pub fn parse(s: &str) -> Option<DnsPolicy> {
        Some(match s {
            "ClusterFirst" => DnsPolicy::ClusterFirst,
            "ClusterFirstWithHostNet" => DnsPolicy::ClusterFirstWithHostNet,
            "Default" => DnsPolicy::Default,
            "None" => DnsPolicy::None,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    /// IP addresses, as written.
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    /// `name` or `name:value`.
    pub options: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAlias {
    /// An IP address, as written.
    pub ip: String,
    pub hostnames: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    pub name: String,
    pub value: String,
}
