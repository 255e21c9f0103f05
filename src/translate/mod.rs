//! PURE: Pod + image configs + paths → PodPlan, an ordered set of OCI bundle specs.
//!
//! Rule 1 of DESIGN.md: nothing here touches the filesystem, processes or the clock.
//! Everything the host contributes (its resolv.conf, node name, CPU count) comes in
//! through [`HostInfo`]; everything that must happen on disk (volume directories,
//! projected files, subPath checks, user names) goes out in the plan.

mod etc;
mod expand;
mod process;
mod quantity;
mod spec;
mod volumes;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNamespaceType,
    LinuxResourcesBuilder, Mount, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use serde::{Deserialize, Serialize};

pub use expand::expand;
pub use process::UserSpec;
pub use quantity::Quantity;
pub use spec::render_config;
pub use volumes::{ProjectedFile, SubPathCheck, VolumePlan, VolumeSource};

use crate::ids;
use crate::manifest::PodManifest;
use crate::paths::PodPaths;

/// The OCI runtime spec version podshim writes (runc 1.1 implements 1.0.2; every
/// field podshim sets exists there).
pub const OCI_VERSION: &str = "1.0.2";

/// CRI annotations (containerd's pkg/cri/annotations), so that sandbox-aware
/// runtimes and hooks recognise the pod.
pub mod annotations {
    pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
    pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
    pub const SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
    pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
    pub const SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
    pub const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
    pub const IMAGE_NAME: &str = "io.kubernetes.cri.image-name";
}

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
}

/// An image as the translator needs it: its normalised name and config.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub name: String,
    pub config: ImageConfiguration,
}

pub struct PlanInput<'a> {
    pub manifest: &'a PodManifest,
    /// Keyed by the `image` string exactly as the manifest writes it.
    pub images: &'a BTreeMap<String, ImageInfo>,
    pub paths: &'a PodPaths,
    pub host: &'a HostInfo,
    /// The directory whose `net`, `ipc`, `uts`, `pid` entries are the infra
    /// container's namespaces: `/proc/<infra-pid>/ns` for `up`, a symlink for `generate`.
    pub infra_ns_dir: &'a str,
    pub pod_ip: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerKind {
    /// The pause container owning the pod's namespaces.
    Infra,
    /// An init container: runs to completion, one at a time, before the next.
    Init,
    /// A native sidecar (`initContainers[*].restartPolicy: Always`): started in
    /// init order, kept running, stopped after the app containers.
    Sidecar,
    App,
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
    pub stop_signal: String,
    /// Mount sources to resolve inside their volume before start.
    pub sub_paths: Vec<SubPathCheck>,
    /// A user name to resolve in the rootfs's /etc/passwd before start.
    pub user_lookup: Option<UserSpec>,
    /// `runAsNonRoot` must be verified against the resolved uid.
    pub run_as_non_root: bool,
    /// Host file bind-mounted at `terminationMessagePath`.
    pub termination_log: Option<PathBuf>,
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
    /// `Always`, `OnFailure` or `Never`.
    pub restart_policy: String,
    pub termination_grace_period_seconds: i64,
    pub infra: ContainerPlan,
    /// Init containers and sidecars in `initContainers` order, then app containers.
    pub containers: Vec<ContainerPlan>,
    pub volumes: Vec<VolumePlan>,
    pub files: Vec<PodFile>,
    /// The pod-wide /dev/shm: one tmpfs, bind-mounted into every container.
    pub shm: PathBuf,
}

impl PodPlan {
    /// Infra first, then the rest in start order.
    pub fn all(&self) -> impl Iterator<Item = &ContainerPlan> {
        std::iter::once(&self.infra).chain(&self.containers)
    }
}

/// Every problem found in one translation, each with its field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pod {pod}: {}", issues.iter().map(|(p, m)| format!("{p}: {m}")).collect::<Vec<_>>().join("\n  "))]
pub struct TranslateError {
    pub pod: String,
    pub issues: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub(crate) struct Issues(Vec<(String, String)>);

impl Issues {
    pub(crate) fn push(&mut self, path: String, message: String) {
        self.0.push((path, message));
    }
}

/// pod-wide /dev/shm size: the CRI default (containerd's defaultShmSize, 64 MiB).
pub const SHM_SIZE: u64 = 64 << 20;

/// Translates one pod.
pub fn plan(input: &PlanInput) -> Result<PodPlan, TranslateError> {
    let mut issues = Issues::default();
    let manifest = input.manifest;
    let default_spec = PodSpec::default();
    let pod_spec = manifest.pod.spec.as_ref().unwrap_or(&default_spec);
    let namespace = manifest.namespace().to_string();
    let name = manifest.name().to_string();
    let pod_id = ids::pod_id(&namespace, &name);

    let volumes: Vec<VolumePlan> = pod_spec
        .volumes
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, v)| volumes::plan_volume(input, i, v, &mut issues))
        .collect();

    let ctx = PodContext::new(input, pod_spec, &pod_id);
    let infra = ctx.infra(&mut issues);
    let mut containers = Vec::new();
    for (i, c) in pod_spec.init_containers.iter().flatten().enumerate() {
        let kind = if c.restart_policy.as_deref() == Some("Always") {
            ContainerKind::Sidecar
        } else {
            ContainerKind::Init
        };
        let field = format!("spec.initContainers[{i}]");
        containers.push(ctx.container(c, kind, &field, &volumes, &mut issues));
    }
    for (i, c) in pod_spec.containers.iter().enumerate() {
        let field = format!("spec.containers[{i}]");
        containers.push(ctx.container(c, ContainerKind::App, &field, &volumes, &mut issues));
    }

    if !issues.0.is_empty() {
        return Err(TranslateError {
            pod: format!("{namespace}/{name}"),
            issues: issues.0,
        });
    }
    Ok(PodPlan {
        pod_id,
        namespace,
        name,
        uid: manifest.uid().to_string(),
        restart_policy: pod_spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into()),
        termination_grace_period_seconds: pod_spec.termination_grace_period_seconds.unwrap_or(30),
        infra,
        containers,
        volumes,
        files: ctx.pod_files(),
        shm: input.paths.base.join("shm"),
    })
}

/// Pod-level facts shared by all of its containers.
struct PodContext<'a> {
    input: &'a PlanInput<'a>,
    spec: &'a PodSpec,
    pod_id: String,
    hostname: String,
}

impl<'a> PodContext<'a> {
    fn new(input: &'a PlanInput<'a>, spec: &'a PodSpec, pod_id: &str) -> Self {
        // Kubernetes: the hostname is spec.hostname, else the pod name (truncated to
        // 63 characters, a DNS label).
        let mut hostname = spec
            .hostname
            .clone()
            .unwrap_or_else(|| input.manifest.name().to_string());
        hostname.truncate(63);
        let hostname = hostname.trim_end_matches(['-', '.']).to_string();
        PodContext {
            input,
            spec,
            pod_id: pod_id.to_string(),
            hostname,
        }
    }

    fn host_network(&self) -> bool {
        self.spec.host_network == Some(true)
    }

    fn pod_files(&self) -> Vec<PodFile> {
        let paths = self.input.paths;
        let aliases = self.spec.host_aliases.as_deref().unwrap_or_default();
        let hosts = if self.host_network() {
            etc::host_network_hosts_file(&self.input.host.hosts, aliases)
        } else {
            let fqdn = self.spec.subdomain.as_ref().map(|sub| {
                format!(
                    "{}.{sub}.{}.svc.cluster.local",
                    self.hostname,
                    self.input.manifest.namespace()
                )
            });
            etc::hosts_file(self.input.pod_ip, &self.hostname, fqdn.as_deref(), aliases)
        };
        let resolv = etc::resolv_conf(
            self.spec.dns_policy.as_deref().unwrap_or("ClusterFirst"),
            &self.input.host.resolv_conf,
            self.spec.dns_config.as_ref(),
            self.host_network(),
        );
        let hostname = if self.host_network() {
            format!("{}\n", self.input.host.node_name)
        } else {
            format!("{}\n", self.hostname)
        };
        vec![
            PodFile {
                path: paths.etc_file("hosts"),
                content: hosts,
                mode: 0o644,
            },
            PodFile {
                path: paths.etc_file("hostname"),
                content: hostname,
                mode: 0o644,
            },
            PodFile {
                path: paths.etc_file("resolv.conf"),
                content: resolv,
                mode: 0o644,
            },
        ]
    }

    fn annotations(
        &self,
        kind: ContainerKind,
        name: &str,
        image: Option<&str>,
    ) -> HashMap<String, String> {
        let m = self.input.manifest;
        let mut a = HashMap::new();
        let ty = if kind == ContainerKind::Infra {
            "sandbox"
        } else {
            "container"
        };
        a.insert(annotations::CONTAINER_TYPE.into(), ty.into());
        a.insert(annotations::SANDBOX_ID.into(), self.pod_id.clone());
        a.insert(annotations::SANDBOX_NAME.into(), m.name().into());
        a.insert(annotations::SANDBOX_NAMESPACE.into(), m.namespace().into());
        a.insert(annotations::SANDBOX_UID.into(), m.uid().into());
        if kind != ContainerKind::Infra {
            a.insert(annotations::CONTAINER_NAME.into(), name.into());
            if let Some(image) = image {
                a.insert(annotations::IMAGE_NAME.into(), image.into());
            }
        }
        a
    }

    /// Mounts of the pod's own files and shm, skipping any path the container
    /// mounts a volume on (the kubelet does not mount /etc/hosts over a volume).
    fn pod_mounts(&self, read_only: bool, taken: &HashSet<String>) -> Vec<Mount> {
        let paths = self.input.paths;
        let rw = if read_only { "ro" } else { "rw" };
        let mut mounts = Vec::new();
        for file in ["hosts", "hostname", "resolv.conf"] {
            let dest = format!("/etc/{file}");
            if !taken.contains(&dest) {
                mounts.push(volumes::bind_mount(
                    &dest,
                    &paths.etc_file(file),
                    vec!["rbind".into(), "rprivate".into(), rw.into()],
                ));
            }
        }
        if !taken.contains("/dev/shm") {
            mounts.push(volumes::bind_mount(
                "/dev/shm",
                &paths.base.join("shm"),
                vec![
                    "rbind".into(),
                    "rprivate".into(),
                    "nosuid".into(),
                    "nodev".into(),
                    "noexec".into(),
                ],
            ));
        }
        mounts
    }

    fn sysctls(&self, issues: &mut Issues) -> HashMap<String, String> {
        let mut out = HashMap::new();
        let ctx = self.spec.security_context.as_ref();
        for (i, s) in ctx
            .and_then(|c| c.sysctls.as_ref())
            .into_iter()
            .flatten()
            .enumerate()
        {
            // Only namespaced sysctls can be set per pod; net.* ones need the pod's
            // own network namespace (Kubernetes: "Using sysctls in a Kubernetes Cluster").
            let namespaced = s.name.starts_with("net.")
                || s.name.starts_with("kernel.shm")
                || s.name.starts_with("kernel.msg")
                || s.name.starts_with("kernel.sem")
                || s.name.starts_with("fs.mqueue.");
            if !namespaced {
                issues.push(
                    format!("spec.securityContext.sysctls[{i}].name"),
                    format!("Invalid value: {:?}: not a namespaced sysctl", s.name),
                );
            } else if s.name.starts_with("net.") && self.host_network() {
                issues.push(
                    format!("spec.securityContext.sysctls[{i}].name"),
                    format!(
                        "Invalid value: {:?}: may not be set with hostNetwork",
                        s.name
                    ),
                );
            } else {
                out.insert(s.name.clone(), s.value.clone());
            }
        }
        out
    }

    fn infra(&self, issues: &mut Issues) -> ContainerPlan {
        let paths = self.input.paths;
        let id = self.pod_id.clone();
        let mut ns = vec![spec::namespace(LinuxNamespaceType::Mount, None)];
        if self.spec.host_pid != Some(true) {
            ns.push(spec::namespace(LinuxNamespaceType::Pid, None));
        }
        if self.spec.host_ipc != Some(true) {
            ns.push(spec::namespace(LinuxNamespaceType::Ipc, None));
        }
        if !self.host_network() {
            ns.push(spec::namespace(LinuxNamespaceType::Network, None));
            ns.push(spec::namespace(LinuxNamespaceType::Uts, None));
        }
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
            .capabilities(spec::capabilities(HashSet::new()))
            // Kubernetes sets no rlimits: processes inherit the runtime's.
            .rlimits(Vec::new())
            .no_new_privileges(true)
            .build()
            .expect("process with args and cwd is valid");
        let mut linux = LinuxBuilder::default()
            .namespaces(ns)
            .resources(
                LinuxResourcesBuilder::default()
                    .devices(spec::device_rules(false))
                    .build()
                    .expect("resources"),
            )
            .masked_paths(spec::masked_paths())
            .readonly_paths(spec::readonly_paths());
        let sysctls = self.sysctls(issues);
        if !sysctls.is_empty() {
            linux = linux.sysctl(sysctls);
        }
        let builder = SpecBuilder::default()
            .version(OCI_VERSION)
            .root(
                RootBuilder::default()
                    .path(paths.rootfs(&id))
                    .readonly(true)
                    .build()
                    .expect("root"),
            )
            .process(process)
            .mounts(spec::default_mounts(false))
            .annotations(self.annotations(ContainerKind::Infra, "POD", None))
            .linux(linux.build().expect("linux section"));
        let builder = builder.hostname(self.hostname.clone());
        ContainerPlan {
            id,
            name: "POD".into(),
            kind: ContainerKind::Infra,
            image: None,
            spec: {
                let mut spec = builder.build().expect("spec");
                if self.host_network() {
                    // The host's UTS namespace keeps the host's name.
                    spec.set_hostname(None);
                }
                spec
            },
            joins: Vec::new(),
            stop_signal: "SIGTERM".into(),
            sub_paths: Vec::new(),
            user_lookup: None,
            run_as_non_root: false,
            termination_log: None,
        }
    }

    fn container(
        &self,
        c: &Container,
        kind: ContainerKind,
        field: &str,
        volumes: &[VolumePlan],
        issues: &mut Issues,
    ) -> ContainerPlan {
        let input = self.input;
        let m = input.manifest;
        let id = ids::container_id(m.namespace(), m.name(), &c.name);
        let image_key = c.image.clone().unwrap_or_default();
        let image = input.images.get(&image_key);
        if image.is_none() {
            issues.push(
                format!("{field}.image"),
                format!("image {image_key:?} was not resolved"),
            );
        }
        let image_config = image.and_then(|i| i.config.config().as_ref());

        // Environment: the container's own variables, then the image's under them.
        let own_env = process::container_env(input, c, field, issues);
        let lookup = |name: &str| {
            own_env
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let expand_all = |v: &Option<Vec<String>>| -> Option<Vec<String>> {
            v.as_ref()
                .map(|list| list.iter().map(|s| expand(s, &lookup)).collect())
        };
        let argv = process::argv(
            expand_all(&c.command).as_deref(),
            expand_all(&c.args).as_deref(),
            image_config,
        );
        if argv.is_empty() && image.is_some() {
            issues.push(
                format!("{field}.command"),
                "Required value: the image has no ENTRYPOINT or CMD, so the container needs a command".into(),
            );
        }
        let image_env = image_config
            .and_then(|c| c.env().clone())
            .unwrap_or_default();
        let env = process::merge_env(&image_env, &own_env);

        let cwd = match c.working_dir.as_deref().filter(|w| !w.is_empty()) {
            Some(w) if w.starts_with('/') => w.to_string(),
            Some(w) => {
                issues.push(
                    format!("{field}.workingDir"),
                    format!("Invalid value: {w:?}: must be an absolute path"),
                );
                "/".into()
            }
            None => image_config
                .and_then(|c| c.working_dir().clone())
                .filter(|w| w.starts_with('/'))
                .unwrap_or_else(|| "/".into()),
        };

        // User: securityContext (container over pod), else the image's USER.
        let pod_sc = self.spec.security_context.as_ref();
        let sc = c.security_context.as_ref();
        let run_as_user = sc
            .and_then(|s| s.run_as_user)
            .or(pod_sc.and_then(|s| s.run_as_user));
        let run_as_group = sc
            .and_then(|s| s.run_as_group)
            .or(pod_sc.and_then(|s| s.run_as_group));
        let run_as_non_root = sc
            .and_then(|s| s.run_as_non_root)
            .or(pod_sc.and_then(|s| s.run_as_non_root))
            == Some(true);
        let sc_field = if sc.and_then(|s| s.run_as_user).is_some() {
            format!("{field}.securityContext")
        } else {
            "spec.securityContext".to_string()
        };
        let mut user = match run_as_user {
            Some(uid) => match process::context_id(uid, "runAsUser") {
                Ok(uid) => UserSpec::Numeric { uid, gid: None },
                Err(e) => {
                    issues.push(format!("{sc_field}.runAsUser"), e);
                    UserSpec::Numeric { uid: 0, gid: None }
                }
            },
            None => match process::image_user(
                image_config.and_then(|c| c.user().as_deref()).unwrap_or(""),
            ) {
                Ok(u) => u,
                Err(e) => {
                    issues.push(
                        format!("{field}.image"),
                        format!("image {image_key:?} USER: {e}"),
                    );
                    UserSpec::Numeric { uid: 0, gid: None }
                }
            },
        };
        if let Some(gid) = run_as_group {
            match process::context_id(gid, "runAsGroup") {
                Ok(g) => match &mut user {
                    UserSpec::Numeric { gid, .. } => *gid = Some(g),
                    UserSpec::Named { .. } => {
                        // runAsGroup with a named image user: the name resolves the uid,
                        // the group is given. Represent it numerically once resolved.
                    }
                },
                Err(e) => issues.push(format!("{field}.securityContext.runAsGroup"), e),
            }
        }
        if run_as_non_root && let UserSpec::Numeric { uid: 0, .. } = user {
            issues.push(
                format!("{field}.securityContext.runAsNonRoot"),
                "Forbidden: container has runAsNonRoot and image will run as root".into(),
            );
        }
        let mut additional_gids: Vec<u32> = Vec::new();
        for (i, g) in pod_sc
            .and_then(|s| s.supplemental_groups.clone())
            .into_iter()
            .flatten()
            .enumerate()
        {
            match process::context_id(g, "supplementalGroups") {
                Ok(g) => additional_gids.push(g),
                Err(e) => issues.push(format!("spec.securityContext.supplementalGroups[{i}]"), e),
            }
        }
        let (uid, gid) = match &user {
            UserSpec::Numeric { uid, gid } => (*uid, gid.unwrap_or(0)),
            // Placeholder ids until the bundle writer resolves the name in the rootfs.
            UserSpec::Named { .. } => (0, 0),
        };
        let mut user_builder = UserBuilder::default().uid(uid).gid(gid);
        if !additional_gids.is_empty() {
            user_builder = user_builder.additional_gids(additional_gids);
        }

        // Capabilities and privilege.
        let privileged = sc.and_then(|s| s.privileged) == Some(true);
        let mut caps: HashSet<Capability> = if privileged {
            spec::all_capabilities()
        } else {
            spec::DEFAULT_CAPS
                .iter()
                .map(|n| spec::parse_capability(n).expect("default caps are valid"))
                .collect()
        };
        if let Some(cc) = sc.and_then(|s| s.capabilities.as_ref()) {
            for (i, name) in cc.drop.iter().flatten().enumerate() {
                if name.eq_ignore_ascii_case("ALL") {
                    caps.clear();
                } else {
                    match spec::parse_capability(name) {
                        Ok(cap) => {
                            caps.remove(&cap);
                        }
                        Err(e) => issues
                            .push(format!("{field}.securityContext.capabilities.drop[{i}]"), e),
                    }
                }
            }
            for (i, name) in cc.add.iter().flatten().enumerate() {
                if name.eq_ignore_ascii_case("ALL") {
                    caps = spec::all_capabilities();
                } else {
                    match spec::parse_capability(name) {
                        Ok(cap) => {
                            caps.insert(cap);
                        }
                        Err(e) => {
                            issues.push(format!("{field}.securityContext.capabilities.add[{i}]"), e)
                        }
                    }
                }
            }
        }
        // Kubernetes: allowPrivilegeEscalation defaults to true; false sets
        // no_new_privs (it must not be false with privileged, API validation).
        let no_new_privs = sc.and_then(|s| s.allow_privilege_escalation) == Some(false);
        if no_new_privs && privileged {
            issues.push(
                format!("{field}.securityContext.allowPrivilegeEscalation"),
                "Invalid value: false: cannot set `allowPrivilegeEscalation` to false and `privileged` to true".into(),
            );
        }
        let read_only_root = sc.and_then(|s| s.read_only_root_filesystem) == Some(true);
        // A terminal needs a console socket held by whoever reads it; podshim's
        // supervisor writes logs from pipes and has none yet (use `podshim exec -it`).
        if c.tty == Some(true) {
            issues.push(
                format!("{field}.tty"),
                "not supported: a terminal for the container's main process (podshim exec -t gives one)".into(),
            );
        }
        let tty = false;
        let process = ProcessBuilder::default()
            .terminal(tty)
            .user(user_builder.build().expect("user"))
            .args(argv)
            .env(env)
            .cwd(cwd)
            .capabilities(spec::capabilities(caps))
            .rlimits(Vec::new())
            .no_new_privileges(no_new_privs)
            .build()
            .expect("process with args and cwd is valid");

        // Mounts: defaults, the pod's volumes, the pod's files, the termination log.
        let (volume_mounts, sub_paths) =
            volumes::container_mounts(volumes, c, privileged, field, issues);
        let taken: HashSet<String> = volume_mounts
            .iter()
            .map(|m| m.destination().to_string_lossy().into_owned())
            .collect();
        let mut mounts = spec::default_mounts(privileged);
        mounts.extend(self.pod_mounts(read_only_root, &taken));
        mounts.extend(volume_mounts);
        let termination_path = c
            .termination_message_path
            .clone()
            .unwrap_or_else(|| "/dev/termination-log".into());
        let termination_log = input.paths.bundle(&id).join("termination-log");
        if !termination_path.starts_with('/') {
            issues.push(
                format!("{field}.terminationMessagePath"),
                format!("Invalid value: {termination_path:?}: must be an absolute path"),
            );
        } else if !taken.contains(&termination_path) {
            mounts.push(volumes::bind_mount(
                &termination_path,
                &termination_log,
                vec!["rbind".into(), "rprivate".into(), "rw".into()],
            ));
        }

        // Namespaces: join the infra's, except where the pod uses the host's.
        let ns_dir = input.infra_ns_dir;
        let mut ns = vec![spec::namespace(LinuxNamespaceType::Mount, None)];
        let mut joins = Vec::new();
        let join = |typ: LinuxNamespaceType, file: &str, joins: &mut Vec<String>| {
            joins.push(file.to_string());
            spec::namespace(typ, Some(format!("{ns_dir}/{file}")))
        };
        if self.spec.host_pid != Some(true) {
            if self.spec.share_process_namespace == Some(true) {
                ns.push(join(LinuxNamespaceType::Pid, "pid", &mut joins));
            } else {
                ns.push(spec::namespace(LinuxNamespaceType::Pid, None));
            }
        }
        if self.spec.host_ipc != Some(true) {
            ns.push(join(LinuxNamespaceType::Ipc, "ipc", &mut joins));
        }
        if !self.host_network() {
            ns.push(join(LinuxNamespaceType::Network, "net", &mut joins));
            ns.push(join(LinuxNamespaceType::Uts, "uts", &mut joins));
        }

        // oci-spec's builders fall back to its own defaults for unset fields (masked
        // paths, a hostname of "youki", ...): every field is therefore set explicitly.
        let mut linux = LinuxBuilder::default()
            .namespaces(ns)
            .masked_paths(Vec::<String>::new())
            .readonly_paths(Vec::<String>::new());
        if !privileged {
            linux = linux
                .masked_paths(spec::masked_paths())
                .readonly_paths(spec::readonly_paths());
        }
        linux = linux.resources(self.resources(c, field, privileged, issues));

        let image_name = image.map(|i| i.name.clone());
        let mut spec = SpecBuilder::default()
            .version(OCI_VERSION)
            .root(
                RootBuilder::default()
                    .path(input.paths.rootfs(&id))
                    .readonly(read_only_root)
                    .build()
                    .expect("root"),
            )
            .process(process)
            .mounts(mounts)
            .annotations(self.annotations(kind, &c.name, image_name.as_deref()))
            .linux(linux.build().expect("linux section"))
            .build()
            .expect("spec");
        // A container that joins the pod's UTS namespace must not set a hostname: it
        // would rename the whole pod (the builder's default is "youki").
        spec.set_hostname(None);
        let stop_signal = image_config
            .and_then(|c| c.stop_signal().clone())
            .unwrap_or_else(|| "SIGTERM".into());
        ContainerPlan {
            id,
            name: c.name.clone(),
            kind,
            image: image_name,
            spec,
            joins,
            stop_signal,
            sub_paths,
            user_lookup: matches!(user, UserSpec::Named { .. }).then_some(user),
            run_as_non_root,
            termination_log: Some(termination_log),
        }
    }

    /// requests/limits → cgroup settings, as the kubelet computes them
    /// (pkg/kubelet/cm: MilliCPUToShares, MilliCPUToQuota with a 100 ms period).
    fn resources(
        &self,
        c: &Container,
        field: &str,
        privileged: bool,
        issues: &mut Issues,
    ) -> oci_spec::runtime::LinuxResources {
        let mut res = LinuxResourcesBuilder::default().devices(spec::device_rules(privileged));
        let Some(r) = c.resources.as_ref() else {
            return res.build().expect("resources");
        };
        let get = |map: &Option<
            BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
        >,
                   which: &str,
                   key: &str,
                   issues: &mut Issues|
         -> Option<Quantity> {
            let q = map.as_ref()?.get(key)?;
            match Quantity::parse(&q.0) {
                Ok(v) => Some(v),
                Err(e) => {
                    issues.push(
                        format!("{field}.resources.{which}.{key}"),
                        format!("Invalid value: {:?}: {e}", q.0),
                    );
                    None
                }
            }
        };
        let cpu_limit = get(&r.limits, "limits", "cpu", issues);
        // Kubernetes: a request defaults to the limit when only the limit is set.
        let cpu_request = get(&r.requests, "requests", "cpu", issues).or(cpu_limit);
        let mem_limit = get(&r.limits, "limits", "memory", issues);
        let mut cpu = LinuxCpuBuilder::default();
        let mut any_cpu = false;
        if let Some(millis) = cpu_request.and_then(|q| q.millis()) {
            const MIN_SHARES: u128 = 2;
            let shares = (millis * 1024 / 1000).max(MIN_SHARES);
            cpu = cpu.shares(shares as u64);
            any_cpu = true;
        }
        if let Some(millis) = cpu_limit.and_then(|q| q.millis()) {
            const PERIOD: u128 = 100_000;
            const MIN_QUOTA: u128 = 1000;
            let quota = (millis * PERIOD / 1000).max(MIN_QUOTA);
            cpu = cpu.quota(quota as i64).period(PERIOD as u64);
            any_cpu = true;
        }
        if any_cpu {
            res = res.cpu(cpu.build().expect("cpu"));
        }
        if let Some(bytes) = mem_limit.and_then(|q| q.whole()) {
            res = res.memory(
                LinuxMemoryBuilder::default()
                    .limit(bytes as i64)
                    .build()
                    .expect("memory"),
            );
        }
        res.build().expect("resources")
    }
}

#[cfg(test)]
mod tests;
