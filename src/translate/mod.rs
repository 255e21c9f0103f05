//! PURE: the pod model + image configs + paths → PodPlan, an ordered set of OCI
//! bundle specs.
//!
//! Rule 1 of ARCHITECTURE.md: nothing here touches the filesystem, processes or the
//! clock. Everything the host contributes (its resolv.conf, node name, CPU count)
//! comes in through [`HostInfo`]; everything that must happen on disk (volume
//! directories, projected files, subPath checks, user names) goes out in the plan.
//!
//! The pod is already valid (`model`), so translation can only fail on what the
//! images say (no command to run, a USER or STOPSIGNAL that does not parse, a root
//! user under runAsNonRoot). One module per concern, each a pure function with its
//! own table test: [`process`], [`user`], [`capabilities`], [`namespaces`],
//! [`mounts`] and [`volumes`], [`resources`], [`annotations`], [`etc`].

pub mod annotations;
mod apparmor;
pub mod capabilities;
mod cdi_edits;
mod downward;
mod etc;
mod expand;
pub mod mounts;
pub mod namespaces;
pub mod pod_cgroup;
pub mod process;
pub mod qos;
pub mod resources;
pub mod seccomp;
mod spec;
pub mod user;
pub mod userns;
mod volumes;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxDevice, LinuxResourcesBuilder, Mount, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use serde::{Deserialize, Serialize};

pub use expand::expand;
pub use spec::{render_config, render_value};
pub use user::{UserLookup, UserSpec};
pub use volumes::{ProjectedFile, VolumePlan, VolumeSource};

use crate::model::{
    Container, ContainerKind, Hooks, Pod, Probes, RestartPolicy, RestartRule, Signal,
    TerminationMessagePolicy,
};
use crate::paths::PodPaths;
use downward::Facts;

/// The OCI runtime spec version podshim writes (runc 1.1 implements 1.0.2; every
/// field podshim sets exists there).
pub const OCI_VERSION: &str = "1.0.2";

/// What the host contributes to a pod's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    pub node_name: String,
    pub host_ip: String,
    /// The host's /etc/resolv.conf, merged per dnsPolicy.
    pub resolv_conf: String,
    /// The host's /etc/hosts, used by hostNetwork pods.
    pub hosts: String,
    /// Node allocatable CPUs and memory: what `resourceFieldRef` reads when no limit is set.
    pub cpus: u32,
    pub memory_bytes: u64,
    /// Set where podshim may not lower OOM scores (no CAP_SYS_RESOURCE): its own
    /// score, the lowest a container can be given.
    pub oom_score_adj_floor: Option<i32>,
    pub security: HostSecurity,
    /// What execve accepts here (a container inherits podshim's stack rlimit).
    pub exec_limits: ExecLimits,
}

/// execve(2)'s limits on a process's arguments and environment, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecLimits {
    /// One string, its NUL included (MAX_ARG_STRLEN).
    pub max_string: u64,
    /// Every string with its NUL and a pointer each (ARG_MAX as sysconf says).
    pub total: u64,
}

impl Default for ExecLimits {
    /// Linux with 4 KiB pages and the usual 8 MiB stack rlimit.
    fn default() -> Self {
        ExecLimits {
            max_string: 128 << 10,
            total: 2 << 20,
        }
    }
}

/// What the host offers containers' confinement (read by `host::read`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostSecurity {
    /// The capabilities podshim holds (`CapEff` within `CapBnd` of
    /// /proc/self/status, containerd's cap.Current): what `privileged` and
    /// `capabilities.add: [ALL]` give.
    pub capabilities: HashSet<Capability>,
    /// The host's device nodes under /dev (containerd's HostDevices), which
    /// privileged containers get.
    pub devices: Vec<LinuxDevice>,
    /// The machine's architecture as Rust names it (`std::env::consts::ARCH`): it
    /// picks the default seccomp profile's architectures and syscalls.
    pub arch: String,
    /// `None` without AppArmor (/sys/module/apparmor/parameters/enabled is not
    /// `Y`), else the names of the loaded profiles.
    pub apparmor: Option<BTreeSet<String>>,
    /// SELinux is enabled: podshim sets no labels, so a pod that asks for one
    /// is refused rather than run unlabelled.
    pub selinux: bool,
}

/// An image as the translator needs it: its normalised name and config.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub name: String,
    pub config: ImageConfiguration,
}

pub struct PlanInput<'a> {
    pub pod: &'a Pod,
    /// Keyed by the `image` string exactly as the manifest writes it.
    pub images: &'a BTreeMap<String, ImageInfo>,
    pub paths: &'a PodPaths,
    pub host: &'a HostInfo,
    pub pod_ip: Option<&'a str>,
    /// The pod's pinned network namespace, attached to its network (none: the
    /// infra makes a loopback-only one).
    pub netns: Option<&'a std::path::Path>,
    /// The Localhost seccomp profiles' text, by `localhostProfile` (read inside
    /// the profile root by `pod::prepare`).
    pub seccomp_profiles: &'a BTreeMap<String, String>,
    /// What the runtime that will run the bundles supports.
    pub runtime: &'a crate::runtime::RuntimeFeatures,
    /// Where the pod's cgroup goes and the node's pids limit.
    pub cgroup: &'a pod_cgroup::CgroupConfig,
    /// The CDI devices each container was given, by container name, resolved on
    /// the host ([`crate::cdi::allocate`]).
    pub cdi: &'a BTreeMap<String, crate::cdi::ContainerEdits>,
    /// The pod's host id range under `hostUsers: false` (leased by the caller).
    pub userns: Option<crate::userns::IdRange>,
    /// The local volume (its data directory) of each persistentVolumeClaim the
    /// pod names, by claim name ([`crate::workload::claims`]).
    pub claims: &'a BTreeMap<String, std::path::PathBuf>,
    /// The node's pods directory (the state root's `pods/`), if the pod is to
    /// run on this node: at each start, fsGroup is not applied to a claim a
    /// started pod there has mounted (the local volume plugin gives ownership
    /// on the first mount only), which only the start can know.
    pub node_pods: Option<&'a std::path::Path>,
}

/// One bundle of the pod.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPlan {
    pub id: String,
    pub name: String,
    pub kind: ContainerKind,
    /// The normalised image name; `None` for the infra container.
    pub image: Option<String>,
    #[serde(skip)]
    pub spec: Spec,
    /// Namespaces joined from the infra container (`network`, `ipc`, `uts`, `pid`).
    pub joins: Vec<String>,
    /// The image's STOPSIGNAL, else SIGTERM.
    pub stop_signal: Signal,
    /// `tty`, `stdin`, `stdinOnce`.
    pub stdio: crate::run_plan::StdioPlan,
    /// subPath mounts, resolved inside their volume and bound before each start.
    pub sub_paths: Vec<crate::run_plan::SubPathBind>,
    /// `fileKeyRef` variables, read before each start, and what they expand
    /// (values: never serialized with the plan).
    #[serde(skip)]
    pub file_env: crate::run_plan::FileEnvs,
    /// The user's ids and groups the bundle writer finishes from the rootfs's
    /// /etc/passwd and /etc/group (none for the infra).
    pub user_lookup: Option<UserLookup>,
    /// `runAsNonRoot` must be verified against the resolved uid.
    pub run_as_non_root: bool,
    /// Host file bind-mounted at `terminationMessagePath`.
    pub termination_log: Option<PathBuf>,
    /// What the supervisor probes.
    #[serde(default, skip_serializing_if = "Probes::is_empty")]
    pub probes: Probes,
    /// The lifecycle hooks the supervisor runs.
    #[serde(default, skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
    #[serde(default, skip_serializing_if = "TerminationMessagePolicy::is_file")]
    pub termination_message_policy: TerminationMessagePolicy,
    /// The container's own `restartPolicy` (none: the pod's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    /// `restartPolicyRules`, checked in order at each exit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart_rules: Vec<RestartRule>,
    /// CPU and memory (none for the infra) and how a resize applies them.
    #[serde(skip)]
    pub resources: Option<crate::model::Resources>,
    #[serde(skip)]
    pub resize_policy: crate::model::ResizePolicy,
}

/// A file of the pod's own (`/etc/hosts`, ...), written before any container runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodFile {
    pub path: PathBuf,
    #[serde(skip)]
    pub content: String,
    pub mode: u32,
}

/// Everything needed to run one pod.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodPlan {
    pub pod_id: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub restart_policy: RestartPolicy,
    pub termination_grace_period_seconds: u64,
    pub active_deadline_seconds: Option<u64>,
    /// The pod's QoS class (`GetPodQOS`).
    pub qos_class: qos::QosClass,
    /// The pod's cgroup, every container's parent.
    pub cgroup: pod_cgroup::PodCgroup,
    /// Pod-level `spec.resources`.
    #[serde(skip)]
    pub pod_resources: Option<crate::model::Resources>,
    pub infra: ContainerPlan,
    /// Init containers and sidecars in `initContainers` order, then app containers.
    pub containers: Vec<ContainerPlan>,
    pub volumes: Vec<VolumePlan>,
    pub files: Vec<PodFile>,
    /// The pod-wide /dev/shm: one tmpfs, bind-mounted into every container.
    pub shm: PathBuf,
    /// `hostUsers: false`: the pod's user namespace and what is id-mapped for it.
    pub userns: Option<userns::UsernsPlan>,
}

impl PodPlan {
    /// Infra first, then the rest in start order.
    pub fn all(&self) -> impl Iterator<Item = &ContainerPlan> {
        std::iter::once(&self.infra).chain(&self.containers)
    }
}

/// Every problem the images cause in one translation, each with the field path
/// of the container (and its `image`) involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pod {pod}: {}", issues.iter().map(|(p, m)| format!("{p}: {m}")).collect::<Vec<_>>().join("\n  "))]
pub struct TranslateError {
    pub pod: String,
    pub issues: Vec<(String, String)>,
}

/// pod-wide /dev/shm size: the CRI default (containerd's defaultShmSize, 64 MiB).
pub const SHM_SIZE: u64 = 64 << 20;

/// The field path of each container: `spec.initContainers[i]` for init containers
/// and sidecars, `spec.containers[i]` for app containers.
pub(crate) fn field_paths(pod: &Pod) -> Vec<String> {
    let mut init = 0;
    let mut app = 0;
    pod.spec
        .containers
        .iter()
        .map(|c| {
            if c.kind == ContainerKind::App {
                app += 1;
                format!("spec.containers[{}]", app - 1)
            } else {
                init += 1;
                format!("spec.initContainers[{}]", init - 1)
            }
        })
        .collect()
}

/// Translates one pod.
pub fn plan(input: &PlanInput) -> Result<PodPlan, TranslateError> {
    let pod = input.pod;
    let facts = Facts {
        pod,
        host: input.host,
        pod_ip: input.pod_ip,
    };
    let volumes: Vec<VolumePlan> = pod
        .spec
        .volumes
        .iter()
        .map(|v| volumes::plan_volume(&facts, input.paths, input.claims, input.node_pods, v))
        .collect();
    let ctx = PodContext::new(input, facts).map_err(|issue| TranslateError {
        pod: pod.key.to_string(),
        issues: vec![issue],
    })?;
    let mut issues = Vec::new();
    for (i, v) in pod.spec.volumes.iter().enumerate() {
        if let crate::model::VolumeSource::PersistentVolumeClaim { claim, .. } = &v.source
            && !input.claims.contains_key(claim.as_str())
        {
            issues.push((
                format!("spec.volumes[{i}].persistentVolumeClaim.claimName"),
                format!("claim {claim} has no local volume"),
            ));
        }
    }
    let containers = pod
        .spec
        .containers
        .iter()
        .zip(field_paths(pod))
        .map(|(c, field)| ctx.container(c, &field, &volumes, &mut issues))
        .collect();
    if !issues.is_empty() {
        return Err(TranslateError {
            pod: pod.key.to_string(),
            issues,
        });
    }
    let mut plan = PodPlan {
        pod_id: pod.key.id(),
        namespace: pod.namespace().to_string(),
        name: pod.name().to_string(),
        uid: pod.uid.to_string(),
        restart_policy: pod.spec.restart_policy,
        termination_grace_period_seconds: pod.spec.termination_grace_period_seconds,
        active_deadline_seconds: pod.spec.active_deadline_seconds,
        qos_class: ctx.qos,
        cgroup: ctx.cgroup.clone(),
        pod_resources: pod.spec.resources,
        infra: ctx.infra(),
        containers,
        volumes,
        files: ctx.pod_files(),
        shm: input.paths.shm(),
        userns: None,
    };
    if !pod.spec.host_users {
        let Some(range) = input.userns else {
            return Err(TranslateError {
                pod: pod.key.to_string(),
                issues: vec![(
                    "spec.hostUsers".into(),
                    "no user namespace range was given for the pod".into(),
                )],
            });
        };
        userns::apply(&mut plan, range, input.paths);
    }
    Ok(plan)
}

/// The cluster domain podshim's pods are named under (the kubelet's
/// `--cluster-domain` as clusters set it).
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// The longest kernel hostname (HOST_NAME_MAX + 1, the kubelet's limit on an FQDN
/// given as hostname).
const MAX_FQDN: usize = 64;

/// Pod-level facts shared by all of its containers.
struct PodContext<'a> {
    input: &'a PlanInput<'a>,
    facts: Facts<'a>,
    /// The pod's short hostname, as /etc/hosts names it.
    hostname: String,
    /// `<hostname>.<subdomain>.<namespace>.svc.<cluster domain>` with a subdomain.
    fqdn: Option<String>,
    /// The UTS hostname (and /etc/hostname, HOSTNAME): the FQDN under
    /// setHostnameAsFQDN, else the short hostname.
    kernel_hostname: String,
    qos: qos::QosClass,
    cgroup: pod_cgroup::PodCgroup,
}

impl<'a> PodContext<'a> {
    /// The kubelet's GeneratePodHostNameAndDomain and GetNodenameForKernel.
    fn new(input: &'a PlanInput<'a>, facts: Facts<'a>) -> Result<Self, (String, String)> {
        let pod = input.pod;
        let spec = &pod.spec;
        // hostnameOverride, else spec.hostname, else the pod name; truncated to
        // 63 characters without a trailing '-' or '.' (truncatePodHostnameIfNeeded).
        let mut hostname = match (&spec.hostname_override, &spec.hostname) {
            (Some(o), _) => o.to_string(),
            (None, Some(h)) => h.to_string(),
            (None, None) => pod.name().to_string(),
        };
        hostname.truncate(63);
        let hostname = hostname.trim_end_matches(['-', '.']).to_string();
        // An override has no domain: it is the whole name.
        let fqdn = match (&spec.hostname_override, &spec.subdomain) {
            (None, Some(sub)) => Some(format!(
                "{hostname}.{sub}.{}.svc.{CLUSTER_DOMAIN}",
                pod.namespace()
            )),
            _ => None,
        };
        let kernel_hostname = match &fqdn {
            Some(fqdn) if spec.set_hostname_as_fqdn => {
                if fqdn.len() > MAX_FQDN {
                    return Err((
                        "spec.setHostnameAsFQDN".into(),
                        format!(
                            "Invalid value: true: failed to construct FQDN from pod hostname and cluster domain, FQDN {fqdn} is too long ({MAX_FQDN} characters is the max, {} characters requested)",
                            fqdn.len()
                        ),
                    ));
                }
                fqdn.clone()
            }
            _ => hostname.clone(),
        };
        let qos = qos::pod_qos(spec);
        Ok(PodContext {
            input,
            facts,
            hostname,
            fqdn,
            kernel_hostname,
            qos,
            cgroup: pod_cgroup::plan(pod, qos, input.cgroup),
        })
    }

    /// Every process gets its score written (none inherits the supervisor's -1000).
    fn oom_score_adj(&self, c: &Container) -> i32 {
        let spec = &self.pod().spec;
        let host = self.input.host;
        let adj = qos::container(spec, self.qos, c, host.memory_bytes);
        qos::restrict(adj, host.oom_score_adj_floor)
    }

    fn pod(&self) -> &Pod {
        self.input.pod
    }

    fn pod_files(&self) -> Vec<PodFile> {
        let paths = self.input.paths;
        let pod = self.pod();
        let spec = &pod.spec;
        let host = self.input.host;
        let hosts = if spec.host_network {
            etc::host_network_hosts_file(&host.hosts, &spec.host_aliases)
        } else {
            etc::hosts_file(
                self.input.pod_ip,
                &self.hostname,
                self.fqdn.as_deref(),
                &spec.host_aliases,
            )
        };
        let resolv = etc::resolv_conf(
            spec.dns_policy,
            &host.resolv_conf,
            spec.dns_config.as_ref(),
            spec.host_network,
        );
        let hostname = if spec.host_network {
            format!("{}\n", host.node_name)
        } else {
            format!("{}\n", self.kernel_hostname)
        };
        [
            ("hosts", hosts),
            ("hostname", hostname),
            ("resolv.conf", resolv),
        ]
        .into_iter()
        .map(|(name, content)| PodFile {
            path: paths.etc_file(name),
            content,
            mode: 0o644,
        })
        .collect()
    }

    fn infra(&self) -> ContainerPlan {
        let pod = self.pod();
        let id = pod.key.id();
        let process = ProcessBuilder::default()
            .terminal(false)
            .user(
                UserBuilder::default()
                    .uid(0u32)
                    .gid(0u32)
                    .build()
                    .expect("user"),
            )
            .args(vec![crate::pause::PAUSE_PATH.to_string()])
            .env(vec!["PATH=/".to_string()])
            .cwd("/")
            .capabilities(capabilities::sets(HashSet::new()))
            // Kubernetes sets no rlimits: processes inherit the runtime's.
            .rlimits(Vec::new())
            .no_new_privileges(true)
            .oom_score_adj(qos::restrict(
                qos::INFRA,
                self.input.host.oom_score_adj_floor,
            ))
            .build()
            .expect("process with args and cwd is valid");
        let mut linux = LinuxBuilder::default()
            .namespaces(namespaces::infra(
                &pod.spec,
                self.input.netns.and_then(std::path::Path::to_str),
            ))
            .resources(
                LinuxResourcesBuilder::default()
                    .devices(resources::device_rules(false))
                    .build()
                    .expect("resources"),
            )
            .cgroups_path(self.cgroup.container(&id))
            .masked_paths(spec::masked_paths())
            .readonly_paths(spec::readonly_paths());
        let sysctls: HashMap<String, String> = pod
            .spec
            .sysctls
            .iter()
            .map(|s| (s.name.clone(), s.value.clone()))
            .collect();
        if !sysctls.is_empty() {
            linux = linux.sysctl(sysctls);
        }
        let mut spec = SpecBuilder::default()
            .version(OCI_VERSION)
            .root(
                RootBuilder::default()
                    .path(self.input.paths.rootfs(&id))
                    .readonly(true)
                    .build()
                    .expect("root"),
            )
            .process(process)
            // sysfs is one superblock per network namespace, and the first mount
            // decides whether it is writable: the infra mounts it first, so a pod
            // with a privileged container (the kubelet's privileged sandbox,
            // HasPrivilegedContainer) has its infra mount it read-write, else the
            // privileged containers' read-write /sys would come out read-only.
            // The others still mount it read-only (a per-mount flag).
            .mounts(mounts::defaults(
                pod.spec.containers.iter().any(|c| c.security.privileged),
            ))
            .annotations(annotations::annotations(
                pod,
                ContainerKind::Infra,
                "POD",
                None,
            ))
            .linux(linux.build().expect("linux section"))
            .hostname(self.kernel_hostname.clone())
            .build()
            .expect("spec");
        if pod.spec.host_network {
            // The host's UTS namespace keeps the host's name.
            spec.set_hostname(None);
        }
        ContainerPlan {
            id,
            name: "POD".into(),
            kind: ContainerKind::Infra,
            image: None,
            spec,
            joins: Vec::new(),
            stop_signal: Signal::TERM,
            stdio: Default::default(),
            sub_paths: Vec::new(),
            user_lookup: None,
            file_env: Default::default(),
            run_as_non_root: false,
            termination_log: None,
            probes: Probes::default(),
            hooks: Hooks::default(),
            termination_message_policy: TerminationMessagePolicy::File,
            restart_policy: None,
            restart_rules: Vec::new(),
            resources: None,
            resize_policy: Default::default(),
        }
    }

    /// Defaults, the pod's files, the volumes, the termination log; the subPath
    /// checks; the host file behind the termination log.
    fn mounts(
        &self,
        c: &Container,
        id: &str,
        volumes: &[VolumePlan],
    ) -> (Vec<Mount>, Vec<crate::run_plan::SubPathBind>, PathBuf) {
        let privileged = c.security.privileged;
        let rro = self.input.runtime.recursive_read_only;
        let (volume_mounts, sub_paths) =
            mounts::volume_mounts(self.input.paths, id, volumes, c, rro);
        let taken: HashSet<String> = volume_mounts
            .iter()
            .map(|m| m.destination().to_string_lossy().into_owned())
            .collect();
        let mut all = mounts::defaults(privileged);
        all.extend(mounts::pod_files(
            self.input.paths,
            c.security.read_only_root_filesystem,
            &taken,
        ));
        all.extend(volume_mounts);
        let termination_log = self.input.paths.termination_log(id);
        let path = c.termination_message_path.as_str();
        if !taken.contains(path) {
            all.push(mounts::bind_mount(
                path,
                &termination_log,
                vec!["rbind".into(), "rprivate".into(), "rw".into()],
            ));
        }
        (all, sub_paths, termination_log)
    }

    /// What the image decides for `c`: its user (unless the security context
    /// does) and its stop signal. A USER or STOPSIGNAL that does not parse, or a
    /// root user under runAsNonRoot, is an issue naming the image.
    fn image_facts(
        &self,
        c: &Container,
        field: &str,
        key: &str,
        config: Option<&oci_spec::image::Config>,
        issues: &mut Vec<(String, String)>,
    ) -> (user::User, Signal) {
        let image_user = config.and_then(|c| c.user().as_deref()).unwrap_or("");
        let spec = &self.pod().spec;
        let groups = user::PodGroups {
            supplemental: spec.supplemental_groups.clone(),
            fs_group: spec.fs_group,
            policy: spec.supplemental_groups_policy,
        };
        let user = match user::user(c, image_user, &groups) {
            Ok(u) => u,
            Err(e) => {
                issues.push(match e {
                    user::UserError::ImageUser(e) => {
                        (format!("{field}.image"), format!("image {key:?} USER: {e}"))
                    }
                    user::UserError::RootImageUser => (
                        format!("{field}.securityContext.runAsNonRoot"),
                        "Forbidden: container has runAsNonRoot and image will run as root".into(),
                    ),
                });
                user::User {
                    uid: 0,
                    gid: 0,
                    additional_gids: Vec::new(),
                    lookup: user::UserLookup {
                        user: "0".into(),
                        keep_gid: false,
                        image_groups: false,
                    },
                }
            }
        };
        // `lifecycle.stopSignal` first (KEP-4960), then the image's STOPSIGNAL
        // (an image's that does not parse is an error even when overridden: the
        // image is broken), then SIGTERM.
        let image_signal = match config.and_then(|c| c.stop_signal().as_deref()) {
            None => Signal::TERM,
            Some(text) => Signal::parse(text).unwrap_or_else(|e| {
                issues.push((
                    format!("{field}.image"),
                    format!("image {key:?} STOPSIGNAL: {e}"),
                ));
                Signal::TERM
            }),
        };
        (user, c.stop_signal.unwrap_or(image_signal))
    }

    fn container(
        &self,
        c: &Container,
        field: &str,
        volumes: &[VolumePlan],
        issues: &mut Vec<(String, String)>,
    ) -> ContainerPlan {
        let pod = self.pod();
        let id = pod.key.container_id(&c.name);
        let key = &c.image.written;
        let image = self.input.images.get(key);
        if image.is_none() {
            issues.push((
                format!("{field}.image"),
                format!("image {key:?} was not resolved"),
            ));
        }
        let config = image.and_then(|i| i.config.config().as_ref());

        // containerd sets HOSTNAME to the sandbox's hostname: the node's for a
        // hostNetwork pod.
        let hostname = if self.pod().spec.host_network {
            self.input.host.node_name.as_str()
        } else {
            self.kernel_hostname.as_str()
        };
        let file = |var: &crate::model::EnvVar, f: &crate::model::FileKeyRef| {
            let volume = volumes.iter().find(|v| v.name == f.volume.as_str())?;
            Some(crate::run_plan::FileEnv {
                name: var.name.clone(),
                volume_path: volume.host_path.clone(),
                path: f.path.clone(),
                key: f.key.clone(),
                optional: f.optional,
            })
        };
        let proc = process::process(&self.facts, hostname, c, config, &file);
        if proc.argv.is_empty() && image.is_some() {
            issues.push((
                format!("{field}.command"),
                "Required value: the image has no ENTRYPOINT or CMD, so the container needs a command".into(),
            ));
        }
        issues.extend(process::exec_size_issue(
            field,
            &proc,
            self.input.host.exec_limits,
        ));
        let (user, stop_signal) = self.image_facts(c, field, key, config, issues);
        let sc = &c.security;
        let security = &self.input.host.security;
        let caps = capabilities::effective(sc, &security.capabilities);
        let seccomp = seccomp::filter(sc, &caps, &security.arch, self.input.seccomp_profiles)
            .unwrap_or_else(|issue| {
                issues.push(issue);
                None
            });
        let apparmor = apparmor::profile(sc, security.apparmor.as_ref()).unwrap_or_else(|issue| {
            issues.push(issue);
            None
        });
        if !self.input.runtime.recursive_read_only {
            for (i, m) in c.mounts.iter().enumerate() {
                if m.recursive_read_only == crate::model::RecursiveReadOnly::Enabled {
                    // The kubelet's CreateContainerConfigError: "volume ...
                    // requested recursive read-only mode, but it is not
                    // supported by the runtime".
                    issues.push((
                        format!("{field}.volumeMounts[{i}].recursiveReadOnly"),
                        "Forbidden: Enabled, but the runtime cannot make mounts read-only recursively (its `features` must list the mount option \"rro\", as runc >= 1.1 does, on Linux >= 5.12); use IfPossible to fall back to a read-only mount".into(),
                    ));
                }
            }
        }
        if let (true, Some(field)) = (security.selinux, &sc.selinux_field) {
            issues.push((
                field.clone(),
                "Forbidden: this host has SELinux enabled and podshim sets no SELinux labels (remove seLinuxOptions to run unlabelled)".into(),
            ));
        }
        let mut user_builder = UserBuilder::default().uid(user.uid).gid(user.gid);
        if !user.additional_gids.is_empty() {
            user_builder = user_builder.additional_gids(user.additional_gids.clone());
        }
        let process = ProcessBuilder::default()
            .terminal(c.tty)
            .user(user_builder.build().expect("user"))
            .args(proc.argv)
            .env(proc.env)
            .cwd(proc.cwd)
            .capabilities(capabilities::sets(caps))
            .rlimits(Vec::new())
            .no_new_privileges(!sc.allow_privilege_escalation)
            .oom_score_adj(self.oom_score_adj(c));
        let process = match apparmor {
            Some(profile) => process.apparmor_profile(profile),
            None => process,
        }
        .build()
        .expect("process with args and cwd is valid");

        let (mounts, sub_paths, termination_log) = self.mounts(c, &id, volumes);
        let (ns, joins) = namespaces::container(&pod.spec);
        // oci-spec's builders fall back to its own defaults for unset fields (masked
        // paths, a hostname of "youki", ...): every field is therefore set explicitly.
        // privileged, and `procMount: Unmasked` (containerd's WithMaskedPaths(nil)
        // and WithReadonlyPaths(nil) for UnmaskedProcMount).
        let (masked, readonly) = if sc.privileged || sc.proc_mount_unmasked {
            (Vec::new(), Vec::new())
        } else {
            (spec::masked_paths(), spec::readonly_paths())
        };
        let mut linux = LinuxBuilder::default()
            .namespaces(ns)
            .masked_paths(masked)
            .readonly_paths(readonly)
            .resources(resources::linux(&c.resources, sc.privileged))
            .cgroups_path(self.cgroup.container(&id));
        if sc.privileged {
            // containerd's WithHostDevices (the device cgroup allows all of them).
            linux = linux.devices(security.devices.clone());
        }
        if let Some(seccomp) = seccomp {
            linux = linux.seccomp(seccomp);
        }
        let linux = linux.build().expect("linux section");
        let image_name = image.map(|i| i.name.clone());
        let mut spec = SpecBuilder::default()
            .version(OCI_VERSION)
            .root(
                RootBuilder::default()
                    .path(self.input.paths.rootfs(&id))
                    .readonly(sc.read_only_root_filesystem)
                    .build()
                    .expect("root"),
            )
            .process(process)
            .mounts(mounts)
            .annotations(annotations::annotations(
                pod,
                c.kind,
                c.name.as_str(),
                image_name.as_deref(),
            ))
            .linux(linux)
            .build()
            .expect("spec");
        // A container that joins the pod's UTS namespace must not set a hostname: it
        // would rename the whole pod (the builder's default is "youki").
        spec.set_hostname(None);
        if let Some(edits) = self.input.cdi.get(c.name.as_str()) {
            cdi_edits::apply(&mut spec, edits);
        }
        ContainerPlan {
            id,
            name: c.name.to_string(),
            kind: c.kind,
            image: image_name,
            spec,
            joins,
            stop_signal,
            stdio: crate::run_plan::StdioPlan {
                tty: c.tty,
                stdin: c.stdin,
                stdin_once: c.stdin_once,
            },
            sub_paths,
            user_lookup: Some(user.lookup),
            file_env: proc.file_env,
            run_as_non_root: sc.run_as_non_root,
            termination_log: Some(termination_log),
            probes: c.probes.clone(),
            hooks: c.hooks.clone(),
            termination_message_policy: c.termination_message_policy,
            restart_policy: c.restart_policy,
            restart_rules: c.restart_rules.clone(),
            resources: Some(c.resources),
            resize_policy: c.resize_policy,
        }
    }
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
