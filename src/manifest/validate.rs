//! The one validator: Kubernetes' rules for the Pod fields podshim uses, applied
//! while the API types are lowered into podshim's own [`model::Pod`]. A value that
//! passes becomes a typed field of the model; one that does not becomes an error
//! with its field path, and lowering goes on so that all errors are reported at once.
//! Nothing downstream validates again (ARCHITECTURE.md, "parse, don't validate").
//!
//! Messages follow the API server's (`k8s.io/apimachinery/pkg/util/validation/field`):
//! `<path>: Required value`, `<path>: Invalid value: "x": <why>`,
//! `<path>: Duplicate value: "x"`, `<path>: Not found: "x"`,
//! `<path>: Unsupported value: "x": supported values: "a", "b"`, `<path>: Forbidden: <why>`.
//! Rules cite `pkg/apis/core/validation/validation.go` unless said otherwise. A few
//! rules are the kubelet's or the runtime's, checked here so that they fail with a
//! field path before anything runs (capability names, namespaced sysctls,
//! runAsNonRoot with an explicit root user).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Display;
use std::net::IpAddr;

use k8s_openapi::api::core::v1 as k8s;

use super::defaults;

#[path = "handlers.rs"]
mod handlers;
#[path = "platform.rs"]
mod platform;
use crate::image::ImageRef;
use crate::model::{
    self, AbsPath, AppArmor, AppArmorProfile, CapabilityName, ContainerKind, ContainerPort,
    ContainerSecurity, DnsConfig, DnsLabel, DnsPolicy, DnsSubdomain, DownwardItem, DownwardValue,
    EnvValue, FieldRef, FileMode, HostAlias, HostPathType, Id, ImageName, KeyFile,
    MountPropagation, PodKey, PodUid, ProjectedItem, Protocol, PullPolicy, Quantity, RelPath,
    ResourceField, ResourceRef, Resources, RestartPolicy, SeccompProfile, StorageMedium, Sysctl,
    TerminationMessagePolicy, Volume, VolumeMount, VolumeSource,
};

/// Field path and message of one validation error.
pub(crate) type Problem = (String, String);

#[derive(Default)]
pub(crate) struct Errs(pub(crate) Vec<Problem>);

impl Errs {
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push((path.into(), message.into()));
    }
    pub(crate) fn required(&mut self, path: impl Into<String>) {
        self.push(path, "Required value");
    }
    pub(crate) fn required_because(&mut self, path: impl Into<String>, why: &str) {
        self.push(path, format!("Required value: {why}"));
    }
    pub(crate) fn invalid(&mut self, path: impl Into<String>, value: impl Display, why: &str) {
        self.push(path, format!("Invalid value: {value}: {why}"));
    }
    pub(crate) fn invalid_str(&mut self, path: impl Into<String>, value: &str, why: &str) {
        self.invalid(path, quote(value), why);
    }
    pub(crate) fn duplicate(&mut self, path: impl Into<String>, value: &str) {
        self.push(path, format!("Duplicate value: {}", quote(value)));
    }
    pub(crate) fn not_found(&mut self, path: impl Into<String>, value: &str) {
        self.push(path, format!("Not found: {}", quote(value)));
    }
    pub(crate) fn unsupported(&mut self, path: impl Into<String>, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| quote(s)).collect();
        self.push(
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                quote(value),
                list.join(", ")
            ),
        );
    }
    pub(crate) fn forbidden(&mut self, path: impl Into<String>, why: &str) {
        self.push(path, format!("Forbidden: {why}"));
    }
    pub(crate) fn not_supported(&mut self, path: impl Into<String>, why: &str) {
        self.push(path, format!("not supported: {why}"));
    }
    /// Parses an optional enum field: `None` when unset (the caller defaults it) or
    /// invalid (reported).
    pub(crate) fn one_of<T>(
        &mut self,
        path: impl Into<String>,
        value: Option<&str>,
        supported: &[&str],
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let v = value?;
        let parsed = parse(v);
        if parsed.is_none() {
            self.unsupported(path, v, supported);
        }
        parsed
    }
    /// Reports every reason of a name error as its own `Invalid value`.
    pub(crate) fn name<T>(
        &mut self,
        path: &str,
        value: &str,
        parsed: Result<T, model::NameError>,
    ) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(e) => {
                for why in e.0 {
                    self.invalid_str(path, value, why);
                }
                None
            }
        }
    }
}

/// Quotes a string the way Go's `%q` does for the printable ASCII we expect.
pub(crate) fn quote(s: &str) -> String {
    format!("{s:?}")
}

// --- names and values ----------------------------------------------------------------

pub(crate) fn dns1123_label(errs: &mut Errs, path: &str, value: &str) -> Option<DnsLabel> {
    errs.name(path, value, DnsLabel::parse(value))
}

pub(crate) fn dns1123_subdomain(errs: &mut Errs, path: &str, value: &str) -> Option<DnsSubdomain> {
    errs.name(path, value, DnsSubdomain::parse(value))
}

/// Required, then a DNS-1123 label.
fn name_label(errs: &mut Errs, path: &str, value: &str) -> Option<DnsLabel> {
    if value.is_empty() {
        errs.required(path);
        None
    } else {
        dns1123_label(errs, path, value)
    }
}

/// Required, then a DNS-1123 subdomain (names of Pods, ConfigMaps, Secrets).
pub(crate) fn name_subdomain(errs: &mut Errs, path: &str, value: &str) -> Option<DnsSubdomain> {
    if value.is_empty() {
        errs.required(path);
        None
    } else {
        dns1123_subdomain(errs, path, value)
    }
}

/// Environment variable names, as `validateEnvVarName` checked them before 1.34
/// relaxed it (`[-._a-zA-Z][-._a-zA-Z0-9]*`): such names are portable to every shell.
fn is_env_name(name: &str) -> bool {
    env_name_syntax(name) && chdir_prefix(name).is_none()
}

fn env_name_syntax(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// `hasChDirPrefix` (apimachinery's IsEnvVarName): `.`, `..` and `..x` are refused
/// as names, which would otherwise walk out of a directory they name.
fn chdir_prefix(name: &str) -> Option<&'static str> {
    match name {
        "." => Some("must not be '.'"),
        ".." => Some("must not be '..'"),
        n if n.starts_with("..") => Some("must not start with '..'"),
        _ => None,
    }
}

fn env_name(errs: &mut Errs, path: &str, name: &str) -> bool {
    if name.is_empty() {
        return true;
    }
    if !env_name_syntax(name) {
        errs.invalid_str(
            path,
            name,
            "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
        );
    }
    if let Some(why) = chdir_prefix(name) {
        errs.invalid_str(path, name, why);
    }
    is_env_name(name)
}

/// IsValidPortName (IANA_SVC_NAME): 1-15 of `[a-z0-9-]`, a letter, no `--`, no edge `-`.
fn port_name(errs: &mut Errs, path: &str, name: &str) {
    if name.len() > 15 {
        errs.invalid_str(path, name, "must be no more than 15 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        errs.invalid_str(
            path,
            name,
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        );
    }
    if name.contains("--") {
        errs.invalid_str(path, name, "must not contain consecutive hyphens");
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        errs.invalid_str(path, name, "must contain at least one letter (a-z)");
    }
    if name.starts_with('-') || name.ends_with('-') {
        errs.invalid_str(path, name, "must not begin or end with a hyphen");
    }
}

fn port_number(errs: &mut Errs, path: &str, port: i32) -> Option<u16> {
    match u16::try_from(port) {
        Ok(p) if p >= 1 => Some(p),
        _ => {
            errs.invalid(path, port, "must be between 1 and 65535, inclusive");
            None
        }
    }
}

/// A path inside a volume or an image: relative, no `..` element
/// (`validateLocalDescendingPath`; a `..` would escape the volume on the host).
fn descending_path(errs: &mut Errs, path: &str, value: &str) -> Option<RelPath> {
    match RelPath::parse(value) {
        Ok(p) => Some(p),
        Err(why) => {
            for why in why {
                errs.invalid_str(path, value, why);
            }
            None
        }
    }
}

fn absolute_path(errs: &mut Errs, path: &str, value: &str) -> Option<AbsPath> {
    match AbsPath::parse(value) {
        Ok(p) => Some(p),
        Err(why) => {
            errs.invalid_str(path, value, why);
            None
        }
    }
}

/// File modes of projected files (`validateModeBits`).
fn mode_bits(errs: &mut Errs, path: &str, mode: Option<i32>) -> Option<FileMode> {
    match FileMode::parse(mode?) {
        Ok(m) => Some(m),
        Err(why) => {
            errs.invalid(path, mode?, why);
            None
        }
    }
}

fn id_range(errs: &mut Errs, path: &str, id: Option<i64>) -> Option<Id> {
    match Id::parse(id?) {
        Ok(id) => Some(id),
        Err(why) => {
            errs.invalid(path, id?, why);
            None
        }
    }
}

fn ip_address(errs: &mut Errs, path: &str, ip: &str) -> Option<IpAddr> {
    match ip.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            errs.invalid_str(path, ip, "must be a valid IP address");
            None
        }
    }
}

/// A resource quantity (`resource.ParseQuantity`), at most 2^63-1.
fn quantity(errs: &mut Errs, path: &str, q: &str) -> Option<Quantity> {
    match Quantity::parse(q) {
        Ok(v) => Some(v),
        Err(e) => {
            errs.invalid_str(path, q, &e.to_string());
            None
        }
    }
}

// --- the Pod -----------------------------------------------------------------------

/// Documents of the input that references may name.
pub(crate) struct Refs<'a> {
    pub(crate) config_maps: &'a BTreeMap<String, k8s::ConfigMap>,
    /// `stringData` already merged into `data`.
    pub(crate) secrets: &'a BTreeMap<String, k8s::Secret>,
}

impl Refs<'_> {
    /// What a ConfigMap projects into a volume: `data` and `binaryData`.
    fn config_map_files(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let cm = self.config_maps.get(name)?;
        let mut data: BTreeMap<String, Vec<u8>> = cm
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
            .collect();
        for (k, v) in cm.binary_data.iter().flatten() {
            data.insert(k.clone(), v.0.clone());
        }
        Some(data)
    }
    /// What a ConfigMap gives environment variables: `data` only (the kubelet's
    /// `makeEnvironmentVariables`).
    fn config_map_text(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let cm = self.config_maps.get(name)?;
        Some(
            cm.data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                .collect(),
        )
    }
    fn secret_data(&self, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        let s = self.secrets.get(name)?;
        Some(
            s.data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect(),
        )
    }
}

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const PROPAGATIONS: &[&str] = &["Bidirectional", "HostToContainer", "None"];
/// `medium: HugePages*` is Kubernetes' too, but podshim does not mount hugetlbfs.
const MEDIA: &[&str] = &["", "Memory"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
/// Downward API fields an env var may name (`validEnvDownwardAPIFieldPathExpressions`).
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
/// Downward API fields a volume file may hold (`validVolumeDownwardAPIFieldPathExpressions`).
const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];
const RESOURCE_FIELDS: &[&str] = &[
    "limits.cpu",
    "limits.memory",
    "requests.cpu",
    "requests.memory",
];
/// apimachinery's TotalAnnotationSizeLimitB.
const TOTAL_ANNOTATION_SIZE: usize = 256 << 10;
/// The kubelet's default `terminationMessagePath`.
const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// What lowering a Pod yields: the model when there were no errors, and the
/// warnings that do not stop it (the kubelet's events for skipped keys).
pub(crate) struct Lowered {
    pub(crate) pod: Option<model::Pod>,
    pub(crate) errors: Vec<Problem>,
    pub(crate) warnings: Vec<String>,
}

pub(crate) fn pod(pod: &k8s::Pod, refs: &Refs<'_>) -> Lowered {
    let mut errs = Errs::default();
    let mut warnings = Vec::new();
    let meta = &pod.metadata;
    let name = match meta.name.as_deref() {
        None | Some("") => {
            errs.required("metadata.name");
            None
        }
        Some(name) => dns1123_subdomain(&mut errs, "metadata.name", name),
    };
    let namespace = match meta.namespace.as_deref() {
        Some(ns) => name_label(&mut errs, "metadata.namespace", ns),
        None => DnsLabel::parse(model::DEFAULT_NAMESPACE).ok(),
    };
    // The uid names the pod's log directory (/var/log/podshim/pods/<ns>_<pod>_<uid>),
    // so it must not be able to name another path.
    let uid = match meta.uid.as_deref() {
        Some(uid) => errs.name("metadata.uid", uid, PodUid::parse(uid)),
        None => None,
    };
    // ValidateAnnotationsSize: keys and values together at most 256 KiB (they are
    // copied into every bundle's config.json and the pod's state).
    let annotation_bytes: usize = meta
        .annotations
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if annotation_bytes > TOTAL_ANNOTATION_SIZE {
        errs.push(
            "metadata.annotations",
            format!("Too long: may not be more than {TOTAL_ANNOTATION_SIZE} bytes"),
        );
    }
    let spec = match &pod.spec {
        None => {
            errs.required("spec");
            None
        }
        Some(spec) => pod_spec(
            &mut errs,
            &mut warnings,
            spec,
            refs,
            meta.annotations.as_ref().unwrap_or(&BTreeMap::new()),
        ),
    };
    let lowered = match (name, namespace, spec) {
        (Some(name), Some(namespace), Some(spec)) if errs.0.is_empty() => {
            let key = PodKey { namespace, name };
            let uid = uid.unwrap_or_else(|| {
                PodUid::parse(&defaults::derived_uid(
                    key.namespace.as_str(),
                    key.name.as_str(),
                ))
                .expect("a derived uid is a valid uid")
            });
            Some(model::Pod {
                key,
                uid,
                labels: meta.labels.clone().unwrap_or_default(),
                annotations: meta.annotations.clone().unwrap_or_default(),
                owner_references: Vec::new(),
                workload: None,
                template_hash: String::new(),
                spec,
            })
        }
        _ => None,
    };
    Lowered {
        pod: lowered,
        errors: errs.0,
        warnings,
    }
}

fn pod_spec(
    errs: &mut Errs,
    warnings: &mut Vec<String>,
    spec: &k8s::PodSpec,
    refs: &Refs<'_>,
    annotations: &BTreeMap<String, String>,
) -> Option<model::PodSpec> {
    let restart_policy = errs
        .one_of(
            "spec.restartPolicy",
            spec.restart_policy.as_deref(),
            RestartPolicy::NAMES,
            RestartPolicy::parse,
        )
        .unwrap_or(RestartPolicy::Always);
    // `spec.os.name` (validateOS): podshim runs Linux containers only.
    let os_linux = match spec.os.as_ref().map(|o| o.name.as_str()) {
        None => false,
        Some("linux") => true,
        Some("windows") => {
            errs.not_supported("spec.os.name", "podshim runs Linux containers");
            false
        }
        Some(other) => {
            errs.unsupported("spec.os.name", other, &["linux", "windows"]);
            false
        }
    };
    let grace = spec.termination_grace_period_seconds.unwrap_or(30);
    if grace < 0 {
        errs.invalid(
            "spec.terminationGracePeriodSeconds",
            grace,
            "must be greater than or equal to 0",
        );
    }
    // validatePodSpec: 1..=MaxInt32.
    let active_deadline_seconds = match spec.active_deadline_seconds {
        Some(v) if !(1..=i32::MAX as i64).contains(&v) => {
            errs.invalid(
                "spec.activeDeadlineSeconds",
                v,
                "must be between 1 and 2147483647, inclusive",
            );
            None
        }
        v => v.map(|v| v as u64),
    };
    let hostname = spec
        .hostname
        .as_deref()
        .and_then(|h| dns1123_label(errs, "spec.hostname", h));
    let subdomain = spec
        .subdomain
        .as_deref()
        .and_then(|s| dns1123_label(errs, "spec.subdomain", s));
    let set_hostname_as_fqdn = spec.set_hostname_as_fqdn == Some(true);
    let hostname_override = spec.hostname_override.as_deref().and_then(|h| {
        let path = "spec.hostnameOverride";
        // KEP-4762's validation: a DNS subdomain that fits a kernel hostname
        // (64), never beside setHostnameAsFQDN or on the host's network.
        let parsed = dns1123_subdomain(errs, path, h);
        if h.len() > 64 {
            errs.invalid_str(path, h, "must be no more than 64 characters");
        }
        if set_hostname_as_fqdn {
            errs.forbidden(path, "may not be set when setHostnameAsFQDN is true");
        }
        if spec.host_network == Some(true) {
            errs.forbidden(path, "may not be set when hostNetwork is true");
        }
        parsed.filter(|_| h.len() <= 64)
    });
    let (dns_policy, dns_config) = dns(errs, spec);
    let mut host_aliases = Vec::new();
    for (i, alias) in spec.host_aliases.iter().flatten().enumerate() {
        let base = format!("spec.hostAliases[{i}]");
        ip_address(errs, &format!("{base}.ip"), &alias.ip);
        for (j, h) in alias.hostnames.iter().flatten().enumerate() {
            dns1123_subdomain(errs, &format!("{base}.hostnames[{j}]"), h);
        }
        host_aliases.push(HostAlias {
            ip: alias.ip.clone(),
            hostnames: alias.hostnames.clone().unwrap_or_default(),
        });
    }
    let host_network = spec.host_network == Some(true);
    let host_ipc = spec.host_ipc == Some(true);
    let host_users = spec.host_users != Some(false);
    // Kubernetes' validateHostUsers: a user namespace is not combined with the
    // host's other namespaces (the field names as upstream writes them).
    if !host_users {
        for (set, field) in [
            (host_network, "hostNetwork"),
            (spec.host_pid == Some(true), "HostPID"),
            (host_ipc, "HostIPC"),
        ] {
            if set {
                errs.forbidden(
                    format!("spec.{field}"),
                    "when `pod.Spec.HostUsers` is false",
                );
            }
        }
    }
    let mut pod_user = None;
    let mut pod_group = None;
    let mut pod_non_root = None;
    let mut supplemental_groups = Vec::new();
    let mut supplemental_groups_policy = model::SupplementalGroupsPolicy::default();
    let mut fs_group = None;
    let mut fs_group_change_policy = model::FsGroupChangePolicy::default();
    let mut sysctls = Vec::new();
    let (pod_seccomp, pod_apparmor) =
        pod_profiles(errs, spec.security_context.as_ref(), annotations);
    let mut pod_selinux = None;
    if let Some(sc) = &spec.security_context {
        pod_selinux = platform::selinux(
            warnings,
            "spec.securityContext.seLinuxOptions",
            sc.se_linux_options.as_ref(),
        );
        platform::selinux_change_policy(errs, warnings, sc.se_linux_change_policy.as_deref());
        platform::windows(
            errs,
            warnings,
            "spec.securityContext.windowsOptions",
            sc.windows_options.as_ref(),
            os_linux,
        );
        pod_user = id_range(errs, "spec.securityContext.runAsUser", sc.run_as_user);
        pod_group = id_range(errs, "spec.securityContext.runAsGroup", sc.run_as_group);
        pod_non_root = sc.run_as_non_root;
        for (i, g) in sc.supplemental_groups.iter().flatten().enumerate() {
            let path = format!("spec.securityContext.supplementalGroups[{i}]");
            supplemental_groups.extend(id_range(errs, &path, Some(*g)));
        }
        // validateSupplementalGroupsPolicy, validateFSGroupChangePolicy:
        // NotSupported outside the listed values.
        supplemental_groups_policy = errs
            .one_of(
                "spec.securityContext.supplementalGroupsPolicy",
                sc.supplemental_groups_policy.as_deref(),
                model::SupplementalGroupsPolicy::NAMES,
                model::SupplementalGroupsPolicy::parse,
            )
            .unwrap_or_default();
        fs_group = id_range(errs, "spec.securityContext.fsGroup", sc.fs_group);
        fs_group_change_policy = errs
            .one_of(
                "spec.securityContext.fsGroupChangePolicy",
                sc.fs_group_change_policy.as_deref(),
                model::FsGroupChangePolicy::NAMES,
                model::FsGroupChangePolicy::parse,
            )
            .unwrap_or_default();
        for (i, s) in sc.sysctls.iter().flatten().enumerate() {
            let path = format!("spec.securityContext.sysctls[{i}].name");
            if s.name.is_empty() {
                errs.required(path);
            } else if !is_sysctl_name(&s.name) {
                errs.invalid_str(path, &s.name, "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$");
            } else if !is_namespaced_sysctl(&s.name) {
                // Only namespaced sysctls can be set per pod (Kubernetes: "Using
                // sysctls in a Kubernetes Cluster"); the kubelet refuses the rest.
                errs.invalid_str(path, &s.name, "not a namespaced sysctl");
            } else if s.name.starts_with("net.") && host_network {
                // validateSysctls: net.* ones need the pod's own network namespace,
                // IPC ones its own IPC namespace (else they would change the host's).
                errs.invalid_str(
                    path,
                    &s.name,
                    "may not be specified when 'hostNetwork' is true",
                );
            } else if !s.name.starts_with("net.") && host_ipc {
                errs.invalid_str(path, &s.name, "may not be specified when 'hostIPC' is true");
            } else {
                sysctls.push(Sysctl {
                    name: s.name.clone(),
                    value: s.value.clone(),
                });
            }
        }
    }

    let all: Vec<&k8s::Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .collect();
    let volumes = volumes(
        errs,
        warnings,
        spec.volumes.as_deref().unwrap_or_default(),
        refs,
        &all,
    );

    if spec.containers.is_empty() {
        errs.required("spec.containers");
    }
    let mut names = HashSet::new();
    let mut host_ports = HashSet::new();
    let groups = [
        (
            "spec.initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
            true,
        ),
        ("spec.containers", spec.containers.as_slice(), false),
    ];
    apparmor_annotations_name_containers(errs, annotations, &all);
    let pod_sc = PodSecurityDefaults {
        run_as_user: pod_user,
        run_as_group: pod_group,
        run_as_non_root: pod_non_root,
        seccomp: pod_seccomp,
        apparmor: pod_apparmor,
        selinux: pod_selinux,
        annotations: annotations.clone(),
        host_users,
    };
    let mut containers = Vec::new();
    for (field, list, init) in groups {
        for (i, c) in list.iter().enumerate() {
            let base = format!("{field}[{i}]");
            let ctx = ContainerCtx {
                base: &base,
                init,
                volumes: &volumes,
                refs,
                host_network,
                all: &all,
                pod_sc: &pod_sc,
                os_linux,
                grace,
                pod_restart_policy: restart_policy,
            };
            if let Some(c) = container(errs, warnings, c, &ctx, &mut names, &mut host_ports) {
                containers.push(c);
            }
        }
    }
    let resources = pod_resources(errs, spec, &containers);
    Some(model::PodSpec {
        restart_policy,
        termination_grace_period_seconds: grace.max(0) as u64,
        active_deadline_seconds,
        hostname,
        subdomain,
        hostname_override,
        set_hostname_as_fqdn,
        host_aliases,
        dns_policy,
        dns_config,
        host_network,
        host_pid: spec.host_pid == Some(true),
        host_ipc: spec.host_ipc == Some(true),
        host_users,
        share_process_namespace: spec.share_process_namespace == Some(true),
        supplemental_groups,
        supplemental_groups_policy,
        fs_group,
        fs_group_change_policy,
        sysctls,
        node_name: spec.node_name.clone(),
        service_account_name: [&spec.service_account_name, &spec.service_account]
            .into_iter()
            .flatten()
            .find(|n| !n.is_empty())
            .cloned()
            .unwrap_or_else(|| "default".into()),
        resources,
        volumes: volumes.into_iter().filter_map(|d| d.volume).collect(),
        containers,
    })
}

/// Pod-level `spec.resources` (KEP-2837), as the API server validates
/// (validatePodResourceRequirements, validatePodResourceConsistency) and
/// defaults it (defaultPodRequests); none when it sets neither CPU nor memory
/// (`IsPodLevelResourcesSet`). Names other than cpu and memory are refused by
/// the field tables.
fn pod_resources(
    errs: &mut Errs,
    spec: &k8s::PodSpec,
    containers: &[model::Container],
) -> Option<Resources> {
    let r = spec.resources.as_ref()?;
    let mut out = Resources::default();
    let mut written = BTreeMap::new();
    for (kind, map) in [("limits", &r.limits), ("requests", &r.requests)] {
        for (name, q) in map.iter().flatten() {
            let path = format!("spec.resources.{kind}.{name}");
            let v = quantity(errs, &path, &q.0);
            written.insert((kind, name.as_str()), q.0.clone());
            match (kind, name.as_str()) {
                ("limits", "cpu") => out.cpu_limit = v,
                ("limits", "memory") => out.memory_limit = v,
                ("requests", "cpu") => out.cpu_request = v,
                ("requests", "memory") => out.memory_request = v,
                _ => {}
            }
        }
    }
    if out == Resources::default() {
        return None;
    }
    let text = |kind, name| written.get(&(kind, name)).cloned().unwrap_or_default();
    for (name, request, limit) in [
        ("cpu", out.cpu_request, out.cpu_limit),
        ("memory", out.memory_request, out.memory_limit),
    ] {
        if let (Some(request), Some(limit)) = (request, limit)
            && request.exceeds(&limit)
        {
            errs.invalid_str(
                format!("spec.resources.requests.{name}"),
                &text("requests", name),
                &format!(
                    "must be less than or equal to {name} limit of {}",
                    text("limits", name)
                ),
            );
        }
    }
    let sum = model::totals::of_containers(containers);
    let (cpu_sum, memory_sum) = (
        Quantity::from_millis(sum.requests.cpu),
        Quantity::from_whole(sum.requests.memory),
    );
    for (name, pod, total, shown) in [
        (
            "cpu",
            out.cpu_request,
            cpu_sum,
            match sum.requests.cpu {
                m if m % 1000 == 0 => (m / 1000).to_string(),
                m => format!("{m}m"),
            },
        ),
        (
            "memory",
            out.memory_request,
            memory_sum,
            sum.requests.memory.to_string(),
        ),
    ] {
        if let Some(pod) = pod.filter(|q| !q.is_zero())
            && total.exceeds(&pod)
        {
            errs.invalid_str(
                format!("spec.resources.requests.{name}"),
                &text("requests", name),
                &format!(
                    "must be greater than or equal to aggregate container requests of {shown}"
                ),
            );
        }
    }
    // Each app container's limit fits in the pod's (only `containers`, as the
    // API server checks).
    let apps: Vec<&model::Container> = containers
        .iter()
        .filter(|c| c.kind == model::ContainerKind::App)
        .collect();
    // (A container that did not validate is reported already: indices would
    // not match.)
    let apps = if apps.len() == spec.containers.len() {
        apps
    } else {
        vec![]
    };
    for (i, c) in apps.into_iter().enumerate() {
        for (name, own, pod) in [
            ("cpu", c.resources.cpu_limit, out.cpu_limit),
            ("memory", c.resources.memory_limit, out.memory_limit),
        ] {
            if let (Some(own), Some(pod)) = (own, pod)
                && own.exceeds(&pod)
            {
                let written = spec.containers[i]
                    .resources
                    .as_ref()
                    .and_then(|r| r.limits.as_ref()?.get(name))
                    .map(|q| q.0.clone())
                    .unwrap_or_default();
                errs.invalid_str(
                    format!("spec.containers[{i}].resources.limits.{name}"),
                    &written,
                    &format!(
                        "must be less than or equal to pod limits of {}",
                        text("limits", name)
                    ),
                );
            }
        }
    }
    // defaultPodRequests: with pod-level limits, a request not written is the
    // containers' total where any requests it, else the limit.
    if r.limits.as_ref().is_some_and(|l| !l.is_empty()) {
        if out.cpu_request.is_none() {
            out.cpu_request = (sum.requests.cpu != 0).then_some(cpu_sum).or(out.cpu_limit);
        }
        if out.memory_request.is_none() {
            out.memory_request = (sum.requests.memory != 0)
                .then_some(memory_sum)
                .or(out.memory_limit);
        }
    }
    Some(out)
}

fn is_sysctl_name(name: &str) -> bool {
    name.len() <= 253
        && name.split(['.', '/']).all(|seg| {
            let b = seg.as_bytes();
            !b.is_empty()
                && b.iter().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_'
                })
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
        })
}

/// The kubelet's namespaced sysctl groups (pkg/kubelet/sysctl/namespace.go).
fn is_namespaced_sysctl(name: &str) -> bool {
    name.starts_with("net.")
        || name.starts_with("kernel.shm")
        || name.starts_with("kernel.msg")
        || name.starts_with("kernel.sem")
        || name.starts_with("fs.mqueue.")
}

fn dns(errs: &mut Errs, spec: &k8s::PodSpec) -> (DnsPolicy, Option<DnsConfig>) {
    let policy = errs
        .one_of(
            "spec.dnsPolicy",
            spec.dns_policy.as_deref(),
            DnsPolicy::NAMES,
            DnsPolicy::parse,
        )
        .unwrap_or(DnsPolicy::ClusterFirst);
    if spec.dns_policy.as_deref() == Some("None")
        && spec
            .dns_config
            .as_ref()
            .is_none_or(|c| c.nameservers.as_ref().is_none_or(|n| n.is_empty()))
    {
        errs.required_because(
            "spec.dnsConfig.nameservers",
            "must provide at least one DNS nameserver when `dnsPolicy` is None",
        );
    }
    let Some(cfg) = &spec.dns_config else {
        return (policy, None);
    };
    let nameservers = cfg.nameservers.clone().unwrap_or_default();
    if nameservers.len() > 3 {
        errs.invalid(
            "spec.dnsConfig.nameservers",
            format!("{nameservers:?}"),
            "must not have more than 3 nameservers",
        );
    }
    for (i, ns) in nameservers.iter().enumerate() {
        ip_address(errs, &format!("spec.dnsConfig.nameservers[{i}]"), ns);
    }
    let searches = cfg.searches.clone().unwrap_or_default();
    for (i, s) in searches.iter().enumerate() {
        // A trailing dot (a fully qualified name) is allowed.
        dns1123_subdomain(
            errs,
            &format!("spec.dnsConfig.searches[{i}]"),
            s.strip_suffix('.').unwrap_or(s),
        );
    }
    let mut options = Vec::new();
    for (i, o) in cfg.options.iter().flatten().enumerate() {
        match o.name.as_deref() {
            None | Some("") => errs.required(format!("spec.dnsConfig.options[{i}].name")),
            Some(name) => options.push((name.to_string(), o.value.clone())),
        }
    }
    (
        policy,
        Some(DnsConfig {
            nameservers,
            searches,
            options,
        }),
    )
}

/// A volume as declared: its name, and the volume when it is valid. A mount of an
/// invalid volume is not reported again as `Not found`.
struct Declared {
    name: String,
    volume: Option<Volume>,
}

/// The pod's volumes in order.
fn volumes(
    errs: &mut Errs,
    warnings: &mut Vec<String>,
    volumes: &[k8s::Volume],
    refs: &Refs<'_>,
    all: &[&k8s::Container],
) -> Vec<Declared> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, v) in volumes.iter().enumerate() {
        let base = format!("spec.volumes[{i}]");
        let name_path = format!("{base}.name");
        let name = name_label(errs, &name_path, &v.name);
        if !v.name.is_empty() && !names.insert(v.name.clone()) {
            errs.duplicate(&name_path, &v.name);
        }
        let kinds = [
            v.host_path.is_some(),
            v.empty_dir.is_some(),
            v.config_map.is_some(),
            v.secret.is_some(),
            v.downward_api.is_some(),
            v.projected.is_some(),
            v.persistent_volume_claim.is_some(),
        ];
        let before = errs.0.len();
        match kinds.iter().filter(|k| **k).count() {
            0 => errs.required_because(&base, "must specify a volume type"),
            1 => {}
            _ => errs.forbidden(&base, "may not specify more than 1 volume type"),
        }
        let mut source = None;
        if let Some(hp) = &v.host_path {
            source = host_path(errs, &base, hp);
        }
        if let Some(ed) = &v.empty_dir {
            source = empty_dir(errs, &base, ed);
        }
        if let Some(cm) = &v.config_map {
            source = config_map_volume(errs, &base, cm, refs);
        }
        if let Some(s) = &v.secret {
            source = secret_volume(errs, &base, s, refs);
        }
        if let Some(d) = &v.downward_api {
            source = downward_api_volume(errs, &base, d, all);
        }
        if let Some(p) = &v.projected {
            source = projected_volume(errs, warnings, &base, p, refs, all);
        }
        if let Some(c) = &v.persistent_volume_claim {
            // ValidatePersistentVolumeClaimVolumeSource requires the name; it is a
            // claim's name, so a DNS subdomain, and here it also names a directory.
            let p = format!("{base}.persistentVolumeClaim.claimName");
            source = name_subdomain(errs, &p, &c.claim_name).map(|claim| {
                VolumeSource::PersistentVolumeClaim {
                    claim,
                    read_only: c.read_only.unwrap_or(false),
                }
            });
        }
        let ok = errs.0.len() == before;
        out.push(Declared {
            name: v.name.clone(),
            volume: match (name, source) {
                (Some(name), Some(source)) if ok => Some(Volume { name, source }),
                _ => None,
            },
        });
    }
    out
}

fn host_path(errs: &mut Errs, base: &str, hp: &k8s::HostPathVolumeSource) -> Option<VolumeSource> {
    let p = format!("{base}.hostPath.path");
    let mut path = None;
    if hp.path.is_empty() {
        errs.required(&p);
    } else {
        path = absolute_path(errs, &p, &hp.path);
        if hp.path.split('/').any(|part| part == "..") {
            errs.invalid_str(&p, &hp.path, "must not contain '..'");
            path = None;
        }
    }
    let kind = match hp.type_.as_deref() {
        None => Some(HostPathType::Unset),
        Some(t) => errs.one_of(
            format!("{base}.hostPath.type"),
            Some(t),
            HostPathType::NAMES,
            HostPathType::parse,
        ),
    };
    Some(VolumeSource::HostPath {
        path: path?,
        kind: kind?,
    })
}

fn empty_dir(errs: &mut Errs, base: &str, ed: &k8s::EmptyDirVolumeSource) -> Option<VolumeSource> {
    let medium = match ed.medium.as_deref() {
        None => Some(StorageMedium::Default),
        Some(m) => errs.one_of(
            format!("{base}.emptyDir.medium"),
            Some(m),
            MEDIA,
            |m| match m {
                "" => Some(StorageMedium::Default),
                "Memory" => Some(StorageMedium::Memory),
                _ => None,
            },
        ),
    };
    let size_limit = match &ed.size_limit {
        Some(q) => Some((
            quantity(errs, &format!("{base}.emptyDir.sizeLimit"), &q.0)?,
            q.0.trim().to_string(),
        )),
        None => None,
    };
    Some(VolumeSource::EmptyDir {
        medium: medium?,
        size_limit,
    })
}

/// The paths of one volume's files taken so far, and how a second use of one is
/// reported.
struct Paths {
    taken: HashSet<String>,
    /// `None`: `Duplicate value` at the item (configMap, secret and downwardAPI
    /// volumes). `Some((field, source))`: a projected volume, whose sources share
    /// one set of paths; `validateProjectionSources` reports `Invalid value` at
    /// the volume's `projected` naming the source: its ConfigMap's or Secret's
    /// name, or (`None`, a downwardAPI source) the path itself.
    projected: Option<(String, Option<String>)>,
}

impl Paths {
    fn of_one_source() -> Paths {
        Paths {
            taken: HashSet::new(),
            projected: None,
        }
    }
}

/// The ConfigMap or Secret a configMap or secret volume, or a source of a
/// projected volume, names.
struct Named<'a> {
    /// Where its name is: `name`, or a secret volume's `secretName`.
    name_field: &'static str,
    name: &'a str,
    /// Its data, when it is a document of the input.
    data: Option<BTreeMap<String, Vec<u8>>>,
    items: Option<&'a [k8s::KeyToPath]>,
    optional: bool,
}

/// A ConfigMap's or Secret's keys as files: the name must be that of a document
/// of the input unless `optional`; every key, or the listed `items`.
fn named_key_files(
    errs: &mut Errs,
    src: &str,
    named: Named<'_>,
    default_mode: FileMode,
    paths: &mut Paths,
) -> Vec<KeyFile> {
    let name_path = format!("{src}.{}", named.name_field);
    name_subdomain(errs, &name_path, named.name);
    if !named.name.is_empty() && named.data.is_none() && !named.optional {
        errs.not_found(name_path, named.name);
    }
    let (data, items) = (named.data.as_ref(), named.items);
    key_files(errs, src, data, items, default_mode, named.optional, paths)
}

/// The files of a configMap or secret source: every key, or the listed `items`.
/// A missing optional source (or key) projects nothing.
fn key_files(
    errs: &mut Errs,
    src: &str,
    data: Option<&BTreeMap<String, Vec<u8>>>,
    items: Option<&[k8s::KeyToPath]>,
    default_mode: FileMode,
    optional: bool,
    paths: &mut Paths,
) -> Vec<KeyFile> {
    let mut files = Vec::new();
    let Some(items) = items else {
        for (key, content) in data.into_iter().flatten() {
            // Keys were checked to be file names (`data_keys`).
            if let Ok(path) = RelPath::parse(key) {
                files.push(KeyFile {
                    path,
                    content: content.clone(),
                    mode: default_mode,
                });
            }
        }
        return files;
    };
    for (j, item) in items.iter().enumerate() {
        let ib = format!("{src}.items[{j}]");
        let content = if item.key.is_empty() {
            errs.required(format!("{ib}.key"));
            None
        } else {
            match data.map(|d| d.get(&item.key)) {
                Some(Some(content)) => Some(content.clone()),
                // The source exists but lacks the key: an error unless optional.
                Some(None) if !optional => {
                    errs.not_found(format!("{ib}.key"), &item.key);
                    None
                }
                _ => None,
            }
        };
        let path = item_path(errs, &format!("{ib}.path"), &item.path, paths);
        let mode = match item.mode {
            Some(_) => mode_bits(errs, &format!("{ib}.mode"), item.mode),
            None => Some(default_mode),
        };
        if let (Some(content), Some(path), Some(mode)) = (content, path, mode) {
            files.push(KeyFile {
                path,
                content,
                mode,
            });
        }
    }
    files
}

fn default_mode(errs: &mut Errs, path: &str, mode: Option<i32>) -> FileMode {
    match mode {
        Some(_) => mode_bits(errs, path, mode).unwrap_or(FileMode::DEFAULT),
        None => FileMode::DEFAULT,
    }
}

fn config_map_volume(
    errs: &mut Errs,
    base: &str,
    cm: &k8s::ConfigMapVolumeSource,
    refs: &Refs<'_>,
) -> Option<VolumeSource> {
    let src = format!("{base}.configMap");
    let mode = default_mode(errs, &format!("{src}.defaultMode"), cm.default_mode);
    let named = Named {
        name_field: "name",
        name: &cm.name,
        data: refs.config_map_files(&cm.name),
        items: cm.items.as_deref(),
        optional: cm.optional == Some(true),
    };
    let files = named_key_files(errs, &src, named, mode, &mut Paths::of_one_source());
    Some(VolumeSource::ConfigMap { files })
}

fn secret_volume(
    errs: &mut Errs,
    base: &str,
    s: &k8s::SecretVolumeSource,
    refs: &Refs<'_>,
) -> Option<VolumeSource> {
    let src = format!("{base}.secret");
    let name = s.secret_name.as_deref().unwrap_or_default();
    let mode = default_mode(errs, &format!("{src}.defaultMode"), s.default_mode);
    let named = Named {
        name_field: "secretName",
        name,
        data: refs.secret_data(name),
        items: s.items.as_deref(),
        optional: s.optional == Some(true),
    };
    let files = named_key_files(errs, &src, named, mode, &mut Paths::of_one_source());
    Some(VolumeSource::Secret { files })
}

fn downward_api_volume(
    errs: &mut Errs,
    base: &str,
    d: &k8s::DownwardAPIVolumeSource,
    all: &[&k8s::Container],
) -> Option<VolumeSource> {
    let src = format!("{base}.downwardAPI");
    let mode = default_mode(errs, &format!("{src}.defaultMode"), d.default_mode);
    let items = downward_items(
        errs,
        &src,
        d.items.as_deref().unwrap_or_default(),
        mode,
        all,
        &mut Paths::of_one_source(),
    );
    Some(VolumeSource::DownwardApi { items })
}

/// The files of a downwardAPI volume or source.
fn downward_items(
    errs: &mut Errs,
    src: &str,
    files: &[k8s::DownwardAPIVolumeFile],
    mode: FileMode,
    all: &[&k8s::Container],
    paths: &mut Paths,
) -> Vec<DownwardItem> {
    let mut items = Vec::new();
    for (j, item) in files.iter().enumerate() {
        let ib = format!("{src}.items[{j}]");
        let path = item_path(errs, &format!("{ib}.path"), &item.path, paths);
        let item_mode = match item.mode {
            Some(_) => mode_bits(errs, &format!("{ib}.mode"), item.mode),
            None => Some(mode),
        };
        let value = match (&item.field_ref, &item.resource_field_ref) {
            (None, None) => {
                errs.required(format!("{ib}.fieldRef"));
                None
            }
            (Some(_), Some(_)) => {
                errs.invalid(
                    &ib,
                    "\"\"",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                );
                None
            }
            (Some(f), None) => field_ref(errs, &format!("{ib}.fieldRef"), f, VOLUME_FIELD_PATHS)
                .map(DownwardValue::Field),
            (None, Some(r)) => {
                let p = format!("{ib}.resourceFieldRef");
                let parsed = resource_field_ref(errs, &p, r);
                // In a volume there is no current container to default to.
                let resources = match r.container_name.as_deref().unwrap_or_default() {
                    "" => {
                        errs.required(format!("{p}.containerName"));
                        None
                    }
                    name => {
                        let found = resources_of(all, name);
                        if found.is_none() {
                            errs.not_found(format!("{p}.containerName"), name);
                        }
                        found
                    }
                };
                match (parsed, resources) {
                    (Some((field, divisor)), Some(resources)) => {
                        Some(DownwardValue::Resource(Box::new(ResourceRef {
                            resources,
                            field,
                            divisor,
                        })))
                    }
                    _ => None,
                }
            }
        };
        if let (Some(path), Some(mode), Some(value)) = (path, item_mode, value) {
            items.push(DownwardItem { path, value, mode });
        }
    }
    items
}

/// A projected volume (`validateProjectedVolumeSource`): the files of its sources,
/// each resolved as its configMap, secret or downwardAPI volume's would be, with
/// the volume's `defaultMode`, into one directory (pkg/volume/projected).
fn projected_volume(
    errs: &mut Errs,
    warnings: &mut Vec<String>,
    base: &str,
    p: &k8s::ProjectedVolumeSource,
    refs: &Refs<'_>,
    all: &[&k8s::Container],
) -> Option<VolumeSource> {
    let pb = format!("{base}.projected");
    let mode = default_mode(errs, &format!("{pb}.defaultMode"), p.default_mode);
    let mut paths = Paths::of_one_source();
    let mut files: Vec<ProjectedItem> = Vec::new();
    for (i, s) in p.sources.iter().flatten().enumerate() {
        let sb = format!("{pb}.sources[{i}]");
        let mut these = Vec::new();
        // Projected sources name their Secret by `name`, not `secretName`.
        let named = [
            s.secret.as_ref().map(|x| {
                let data = refs.secret_data(&x.name);
                ("secret", &x.name, data, x.items.as_deref(), x.optional)
            }),
            s.config_map.as_ref().map(|x| {
                let data = refs.config_map_files(&x.name);
                ("configMap", &x.name, data, x.items.as_deref(), x.optional)
            }),
        ];
        for (kind, name, data, items, optional) in named.into_iter().flatten() {
            paths.projected = Some((pb.clone(), Some(name.clone())));
            let named = Named {
                name_field: "name",
                name,
                data,
                items,
                optional: optional == Some(true),
            };
            let keys = named_key_files(errs, &format!("{sb}.{kind}"), named, mode, &mut paths);
            these.extend(keys.into_iter().map(ProjectedItem::Key));
        }
        if let Some(d) = &s.downward_api {
            paths.projected = Some((pb.clone(), None));
            let src = format!("{sb}.downwardAPI");
            let items = d.items.as_deref().unwrap_or_default();
            let items = downward_items(errs, &src, items, mode, all, &mut paths);
            these.extend(items.into_iter().map(ProjectedItem::Downward));
        }
        // serviceAccountToken, clusterTrustBundle and podCertificate were warned
        // about and are skipped (fields.rs says why), but they still count here.
        let kinds = [
            s.secret.is_some(),
            s.config_map.is_some(),
            s.downward_api.is_some(),
            s.service_account_token.is_some(),
            s.cluster_trust_bundle.is_some(),
            s.pod_certificate.is_some(),
        ];
        // An entry of no kind asks for nothing; Kubernetes accepts it too.
        if kinds.iter().filter(|k| **k).count() > 1 {
            errs.forbidden(&sb, "may not specify more than 1 volume type per source");
        }
        for file in these {
            // A source without `items` projects every key, so two sources can name
            // one path where validation cannot see it; the kubelet's payload map
            // keeps the later source's file (pkg/volume/projected collectData).
            match files.iter().position(|f| f.path() == file.path()) {
                Some(at) => {
                    warnings.push(format!(
                        "{sb}: {}: replaces the file an earlier source projects there, as the kubelet does",
                        quote(file.path().as_str())
                    ));
                    files[at] = file;
                }
                None => files.push(file),
            }
        }
    }
    Some(VolumeSource::Projected { files })
}

/// A file path inside a projected volume: required, relative, no `..`, unique.
fn item_path(errs: &mut Errs, path: &str, value: &str, seen: &mut Paths) -> Option<RelPath> {
    if value.is_empty() {
        errs.required(path);
        return None;
    }
    let parsed = descending_path(errs, path, value);
    // validateLocalNonReservedPath: `..`-names are the AtomicWriter's own
    // (`..data`, `..<timestamp>`), so a projected file may not take one.
    if value.starts_with("..") && parsed.is_some() {
        errs.invalid_str(path, value, "must not start with '..'");
        return None;
    }
    if !seen.taken.insert(value.to_string()) {
        match &seen.projected {
            None => errs.duplicate(path, value),
            Some((volume, source)) => errs.invalid_str(
                volume,
                source.as_deref().unwrap_or(value),
                "conflicting duplicate paths",
            ),
        }
        return None;
    }
    parsed
}

/// `fieldPath` may also select one label or annotation: `metadata.labels['key']`.
fn field_ref(
    errs: &mut Errs,
    path: &str,
    f: &k8s::ObjectFieldSelector,
    supported: &[&str],
) -> Option<FieldRef> {
    let fp = f.field_path.as_str();
    let p = format!("{path}.fieldPath");
    if fp.is_empty() {
        errs.required(p);
        return None;
    }
    if let Some(v) = f.api_version.as_deref()
        && v != "v1"
    {
        errs.unsupported(format!("{path}.apiVersion"), v, &["v1"]);
    }
    let subscript = |prefix: &str| -> Option<String> {
        let key = fp.strip_prefix(prefix)?.strip_suffix("']")?;
        (!key.is_empty()).then(|| key.to_string())
    };
    if let Some(key) = subscript("metadata.labels['") {
        return Some(FieldRef::Label(key));
    }
    if let Some(key) = subscript("metadata.annotations['") {
        return Some(FieldRef::Annotation(key));
    }
    if !supported.contains(&fp) {
        errs.unsupported(p, fp, supported);
        return None;
    }
    Some(match fp {
        "metadata.name" => FieldRef::Name,
        "metadata.namespace" => FieldRef::Namespace,
        "metadata.uid" => FieldRef::Uid,
        "metadata.labels" => FieldRef::Labels,
        "metadata.annotations" => FieldRef::Annotations,
        "spec.nodeName" => FieldRef::NodeName,
        "spec.serviceAccountName" => FieldRef::ServiceAccountName,
        "status.hostIP" => FieldRef::HostIp,
        "status.hostIPs" => FieldRef::HostIps,
        "status.podIP" => FieldRef::PodIp,
        "status.podIPs" => FieldRef::PodIps,
        _ => unreachable!("every supported field path is listed"),
    })
}

/// A container's effective security settings start from the pod's.
struct PodSecurityDefaults {
    run_as_user: Option<Id>,
    run_as_group: Option<Id>,
    run_as_non_root: Option<bool>,
    seccomp: Option<SeccompProfile>,
    apparmor: Option<AppArmor>,
    /// Where the pod asked for an SELinux label.
    selinux: Option<String>,
    /// The pod's annotations: the legacy per-container profile annotations.
    annotations: BTreeMap<String, String>,
    /// `hostUsers` (unset: true): `procMount: Unmasked` needs it false.
    host_users: bool,
}

struct ContainerCtx<'a> {
    base: &'a str,
    init: bool,
    volumes: &'a [Declared],
    refs: &'a Refs<'a>,
    host_network: bool,
    /// Every container of the pod, init containers first: `resourceFieldRef`s
    /// name them.
    all: &'a [&'a k8s::Container],
    pod_sc: &'a PodSecurityDefaults,
    /// `spec.os.name: linux`.
    os_linux: bool,
    /// `spec.terminationGracePeriodSeconds` (a sleep hook may not outlast it).
    grace: i64,
    /// `spec.restartPolicy`.
    pod_restart_policy: RestartPolicy,
}

fn container(
    errs: &mut Errs,
    warnings: &mut Vec<String>,
    c: &k8s::Container,
    ctx: &ContainerCtx<'_>,
    names: &mut HashSet<String>,
    host_ports: &mut HashSet<(i32, String, String)>,
) -> Option<model::Container> {
    let base = ctx.base;
    let before = errs.0.len();
    let name_path = format!("{base}.name");
    let name = name_label(errs, &name_path, &c.name);
    // Names are unique across initContainers and containers (they name container ids).
    if !c.name.is_empty() && !names.insert(c.name.clone()) {
        errs.duplicate(&name_path, &c.name);
    }
    let image = match c.image.as_deref().map(str::trim) {
        None | Some("") => {
            errs.required(format!("{base}.image"));
            None
        }
        Some(_) => {
            let written = c.image.clone().unwrap_or_default();
            match ImageRef::parse(&written) {
                Ok(reference) => Some(ImageName { written, reference }),
                Err(e) => {
                    errs.invalid_str(format!("{base}.image"), &written, &e.to_string());
                    None
                }
            }
        }
    };
    let pull_policy = match c.image_pull_policy.as_deref() {
        Some(p) if !PullPolicy::NAMES.contains(&p) => {
            errs.unsupported(format!("{base}.imagePullPolicy"), p, PullPolicy::NAMES);
            None
        }
        written => image
            .as_ref()
            .and_then(|i| PullPolicy::parse_or_default(written, &i.reference)),
    };
    let working_dir = match c.working_dir.as_deref() {
        Some(wd) if !wd.is_empty() => {
            let path = format!("{base}.workingDir");
            let dir = absolute_path(errs, &path, wd);
            // A cwd of /proc/self/fd/N is how CVE-2024-21626 leads a container
            // onto the host through a leaked fd: refused, so that a runc older
            // than 1.1.12 cannot be led out (patched ones fail it at start).
            if dir.as_ref().is_some_and(|d| under(&d.clean(), "/proc")) {
                errs.invalid_str(&path, wd, "must not be /proc or under /proc");
            }
            dir
        }
        _ => None,
    };
    let termination_message_policy = errs
        .one_of(
            format!("{base}.terminationMessagePolicy"),
            c.termination_message_policy.as_deref(),
            TERMINATION_MESSAGE_POLICIES,
            |p| match p {
                "File" => Some(TerminationMessagePolicy::File),
                "FallbackToLogsOnError" => Some(TerminationMessagePolicy::FallbackToLogsOnError),
                _ => None,
            },
        )
        .unwrap_or(TerminationMessagePolicy::File);
    let restart_policy = errs.one_of(
        format!("{base}.restartPolicy"),
        c.restart_policy.as_deref(),
        RestartPolicy::NAMES,
        RestartPolicy::parse,
    );
    let sidecar = ctx.init && restart_policy == Some(RestartPolicy::Always);
    let restart_rules = restart_rules(errs, base, c, sidecar);
    let resize_policy = resize_policy(errs, base, c, ctx.init && !sidecar, ctx.pod_restart_policy);
    if ctx.init && !sidecar {
        for (field, set) in [
            ("livenessProbe", c.liveness_probe.is_some()),
            ("readinessProbe", c.readiness_probe.is_some()),
            ("startupProbe", c.startup_probe.is_some()),
            ("lifecycle", c.lifecycle.is_some()),
        ] {
            if set {
                errs.forbidden(
                    format!("{base}.{field}"),
                    "may not be set for init containers without restartPolicy=Always",
                );
            }
        }
    }
    let kind = match (ctx.init, sidecar) {
        (false, _) => ContainerKind::App,
        (true, true) => ContainerKind::Sidecar,
        (true, false) => ContainerKind::Init,
    };

    let mut env = Vec::new();
    for (i, e) in c.env_from.iter().flatten().enumerate() {
        env_from(
            errs,
            warnings,
            &format!("{base}.envFrom[{i}]"),
            e,
            ctx.refs,
            &mut env,
        );
    }
    for (i, e) in c.env.iter().flatten().enumerate() {
        if let Some(var) = env_var(errs, &format!("{base}.env[{i}]"), e, c, ctx) {
            env.push(var);
        }
    }

    let ports = ports(errs, base, c, ctx.host_network, host_ports);
    let probes = handlers::probes(errs, base, c, &ports);
    let (hooks, stop_signal) = handlers::lifecycle(errs, base, c, &ports, ctx.os_linux, ctx.grace);

    let mut security = security(errs, base, c, ctx.pod_sc);
    let sc = c.security_context.as_ref();
    security.selinux_field = platform::selinux(
        warnings,
        &format!("{base}.securityContext.seLinuxOptions"),
        sc.and_then(|sc| sc.se_linux_options.as_ref()),
    )
    .or_else(|| ctx.pod_sc.selinux.clone());
    platform::windows(
        errs,
        warnings,
        &format!("{base}.securityContext.windowsOptions"),
        sc.and_then(|sc| sc.windows_options.as_ref()),
        ctx.os_linux,
    );
    let mounts = volume_mounts(
        errs,
        base,
        c,
        ctx.volumes,
        security.privileged,
        ctx.pod_sc.host_users,
    );

    let resources = resources(errs, base, c);
    let termination_message_path = absolute_path(
        errs,
        &format!("{base}.terminationMessagePath"),
        c.termination_message_path
            .as_deref()
            .unwrap_or(TERMINATION_MESSAGE_PATH),
    );
    if errs.0.len() != before {
        return None;
    }
    Some(model::Container {
        name: name?,
        kind,
        image: image?,
        pull_policy: pull_policy?,
        command: c.command.clone(),
        args: c.args.clone(),
        working_dir,
        env,
        ports,
        mounts,
        resources,
        resize_policy,
        extended_resources: extended_resources(c),
        security,
        stdin: c.stdin == Some(true),
        stdin_once: c.stdin_once == Some(true),
        tty: c.tty == Some(true),
        termination_message_path: termination_message_path?,
        termination_message_policy,
        probes,
        hooks,
        stop_signal,
        // A sidecar's `Always` is its kind.
        restart_policy: restart_policy.filter(|_| !sidecar),
        restart_rules,
    })
}

/// `resizePolicy` (KEP-1287, validateResizePolicy): cpu and memory once each;
/// `NotRequired` only in a pod that never restarts; none on an init container
/// that is not a sidecar (its resources cannot change).
fn resize_policy(
    errs: &mut Errs,
    base: &str,
    c: &k8s::Container,
    plain_init: bool,
    pod_policy: RestartPolicy,
) -> model::ResizePolicy {
    let mut out = model::ResizePolicy::default();
    let list = c.resize_policy.as_deref().unwrap_or_default();
    if list.is_empty() {
        return out;
    }
    let path = format!("{base}.resizePolicy");
    if plain_init {
        errs.forbidden(
            &path,
            "only allowed for containers and restartable init containers",
        );
        return out;
    }
    let policy = c
        .restart_policy
        .as_deref()
        .and_then(RestartPolicy::parse)
        .unwrap_or(pod_policy);
    let mut seen = HashSet::new();
    for (i, p) in list.iter().enumerate() {
        let name_path = format!("{path}[{i}].resourceName");
        let restart = errs
            .one_of(
                format!("{path}[{i}].restartPolicy"),
                Some(p.restart_policy.as_str()),
                model::ResizeRestart::NAMES,
                model::ResizeRestart::parse,
            )
            .unwrap_or_default();
        if restart == model::ResizeRestart::RestartContainer && policy == RestartPolicy::Never {
            errs.invalid_str(
                format!("{path}[{i}].restartPolicy"),
                &p.restart_policy,
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            );
        }
        if !seen.insert(p.resource_name.clone()) {
            errs.duplicate(&name_path, &p.resource_name);
            continue;
        }
        match p.resource_name.as_str() {
            "cpu" => out.cpu = restart,
            "memory" => out.memory = restart,
            other => errs.push(
                name_path,
                format!(
                    "Unsupported value: {}: supported values: \"cpu\", \"memory\"",
                    quote(other)
                ),
            ),
        }
    }
    out
}

/// `restartPolicyRules` (KEP-5307, KEP-5532's `RestartAllContainers`): at most
/// 20, only with the container's own `restartPolicy`, never on a sidecar.
fn restart_rules(
    errs: &mut Errs,
    base: &str,
    c: &k8s::Container,
    sidecar: bool,
) -> Vec<model::RestartRule> {
    use model::{ExitCodeOperator, RestartAction, RestartRule};
    let rules = c.restart_policy_rules.as_deref().unwrap_or_default();
    if rules.is_empty() {
        return Vec::new();
    }
    let path = format!("{base}.restartPolicyRules");
    if sidecar {
        errs.forbidden(
            &path,
            "may not be set for init containers with restartPolicy=Always",
        );
        return Vec::new();
    }
    if c.restart_policy.is_none() {
        errs.required_because(
            format!("{base}.restartPolicy"),
            "must be set when restartPolicyRules are specified",
        );
    }
    if rules.len() > 20 {
        errs.push(
            &path,
            format!("Too many: {}: must have at most 20 items", rules.len()),
        );
    }
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let rb = format!("{path}[{i}]");
        let action = errs.one_of(
            format!("{rb}.action"),
            Some(r.action.as_str()),
            &["Restart", "RestartAllContainers"],
            |a| match a {
                "Restart" => Some(RestartAction::Restart),
                "RestartAllContainers" => Some(RestartAction::RestartAllContainers),
                _ => None,
            },
        );
        let Some(codes) = &r.exit_codes else {
            errs.required(format!("{rb}.exitCodes"));
            continue;
        };
        let operator = errs.one_of(
            format!("{rb}.exitCodes.operator"),
            Some(codes.operator.as_str()),
            &["In", "NotIn"],
            |o| match o {
                "In" => Some(ExitCodeOperator::In),
                "NotIn" => Some(ExitCodeOperator::NotIn),
                _ => None,
            },
        );
        let values = codes.values.clone().unwrap_or_default();
        if values.len() > 255 {
            errs.push(
                format!("{rb}.exitCodes.values"),
                format!("Too many: {}: must have at most 255 items", values.len()),
            );
        }
        let mut seen = HashSet::new();
        for (j, v) in values.iter().enumerate() {
            if !seen.insert(*v) {
                errs.duplicate(format!("{rb}.exitCodes.values[{j}]"), &v.to_string());
            }
        }
        if let (Some(action), Some(operator)) = (action, operator) {
            out.push(RestartRule {
                action,
                operator,
                values,
            });
        }
    }
    out
}

fn ports(
    errs: &mut Errs,
    base: &str,
    c: &k8s::Container,
    host_network: bool,
    host_ports: &mut HashSet<(i32, String, String)>,
) -> Vec<ContainerPort> {
    let mut port_names = HashSet::new();
    let mut out = Vec::new();
    for (i, p) in c.ports.iter().flatten().enumerate() {
        let pb = format!("{base}.ports[{i}]");
        let container_port = port_number(errs, &format!("{pb}.containerPort"), p.container_port);
        if let Some(name) = p.name.as_deref()
            && !name.is_empty()
        {
            port_name(errs, &format!("{pb}.name"), name);
            if !port_names.insert(name.to_string()) {
                errs.duplicate(format!("{pb}.name"), name);
            }
        }
        let protocol = errs
            .one_of(
                format!("{pb}.protocol"),
                p.protocol.as_deref(),
                PROTOCOLS,
                |p| {
                    Some(match p {
                        "TCP" => Protocol::TCP,
                        "UDP" => Protocol::UDP,
                        "SCTP" => Protocol::SCTP,
                        _ => return None,
                    })
                },
            )
            .unwrap_or(Protocol::TCP);
        let host_ip = match p.host_ip.as_deref() {
            Some(ip) if !ip.is_empty() => ip_address(errs, &format!("{pb}.hostIP"), ip),
            _ => None,
        };
        let mut host_port = None;
        if let Some(hp) = p.host_port
            && hp != 0
        {
            host_port = port_number(errs, &format!("{pb}.hostPort"), hp);
            if host_network && hp != p.container_port {
                errs.invalid(
                    format!("{pb}.hostPort"),
                    hp,
                    "must match `containerPort` when `hostNetwork` is true",
                );
            }
            // Two containers cannot bind the same host port (AccumulateUniqueHostPorts).
            let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            let ip = p.host_ip.clone().unwrap_or_default();
            if !host_ports.insert((hp, proto.clone(), ip)) {
                errs.duplicate(format!("{pb}.hostPort"), &format!("{hp}/{proto}"));
            }
        }
        if let Some(container_port) = container_port {
            out.push(ContainerPort {
                container_port,
                name: p.name.clone().filter(|n| !n.is_empty()),
                protocol,
                host_port,
                host_ip,
            });
        }
    }
    out
}

fn security(
    errs: &mut Errs,
    base: &str,
    c: &k8s::Container,
    pod: &PodSecurityDefaults,
) -> ContainerSecurity {
    let mut out = ContainerSecurity {
        run_as_user: pod.run_as_user,
        run_as_group: pod.run_as_group,
        run_as_non_root: pod.run_as_non_root == Some(true),
        allow_privilege_escalation: true,
        ..Default::default()
    };
    let mut user_field = "spec.securityContext.runAsUser".to_string();
    let (seccomp, apparmor) = container_profiles(errs, base, c, pod);
    out.seccomp = seccomp;
    out.apparmor = apparmor;
    if let Some(sc) = &c.security_context {
        let user_path = format!("{base}.securityContext.runAsUser");
        if sc.run_as_user.is_some() {
            out.run_as_user = id_range(errs, &user_path, sc.run_as_user);
            user_field = user_path;
        }
        if sc.run_as_group.is_some() {
            out.run_as_group = id_range(
                errs,
                &format!("{base}.securityContext.runAsGroup"),
                sc.run_as_group,
            );
        }
        if let Some(non_root) = sc.run_as_non_root {
            out.run_as_non_root = non_root;
        }
        out.privileged = sc.privileged == Some(true);
        out.read_only_root_filesystem = sc.read_only_root_filesystem == Some(true);
        // ValidateProcMountType, and `Unmasked` only in a user namespace
        // (KEP-4265).
        let proc_path = format!("{base}.securityContext.procMount");
        let unmasked = errs.one_of(
            &proc_path,
            sc.proc_mount.as_deref(),
            &["Default", "Unmasked"],
            |v| match v {
                "Default" => Some(false),
                "Unmasked" => Some(true),
                _ => None,
            },
        );
        if unmasked == Some(true) && pod.host_users {
            errs.invalid_str(
                &proc_path,
                "Unmasked",
                "`hostUsers` must be false to use `Unmasked`",
            );
        }
        out.proc_mount_unmasked = unmasked == Some(true);
        // Kubernetes: allowPrivilegeEscalation defaults to true; false sets
        // no_new_privs, and must not be combined with privileged.
        out.allow_privilege_escalation = sc.allow_privilege_escalation != Some(false);
        if sc.privileged == Some(true) && sc.allow_privilege_escalation == Some(false) {
            errs.invalid(
                format!("{base}.securityContext"),
                "\"\"",
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            );
        }
        // Kubernetes' ValidateSecurityContext: no_new_privs with CAP_SYS_ADMIN is a
        // contradiction (it can lift no_new_privs' effect by mounting). The API
        // server compares the name as written, so `SYS_ADMIN` passes there and
        // must here too: the same manifest means the same thing on a cluster.
        let adds_sys_admin = sc
            .capabilities
            .as_ref()
            .and_then(|c| c.add.as_ref())
            .is_some_and(|add| add.iter().any(|c| c == "CAP_SYS_ADMIN"));
        if adds_sys_admin && sc.allow_privilege_escalation == Some(false) {
            errs.invalid(
                format!("{base}.securityContext"),
                "\"\"",
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            );
        }
        if let Some(caps) = &sc.capabilities {
            for (list, names, into) in [
                ("drop", &caps.drop, &mut out.capabilities_drop),
                ("add", &caps.add, &mut out.capabilities_add),
            ] {
                for (i, name) in names.iter().flatten().enumerate() {
                    // The runtime refuses an unknown capability at start; here it is
                    // an error with its field path instead.
                    match CapabilityName::parse(name) {
                        Some(cap) => into.push(cap),
                        None => errs.unsupported_why(
                            format!("{base}.securityContext.capabilities.{list}[{i}]"),
                            name,
                            "not a Linux capability",
                        ),
                    }
                }
            }
        }
    }
    // The kubelet refuses to start such a container ("container's runAsUser breaks
    // non-root policy"); with the user given in the pod, that is known now. With the
    // user from the image, the translator checks it.
    if out.run_as_non_root && out.run_as_user == Some(Id::ROOT) {
        errs.forbidden(
            format!("{base}.securityContext.runAsNonRoot"),
            &format!("container has runAsNonRoot and {user_field} is 0 (root)"),
        );
    }
    out
}

impl Errs {
    fn unsupported_why(&mut self, path: impl Into<String>, value: &str, why: &str) {
        self.push(path, format!("Unsupported value: {}: {why}", quote(value)));
    }
}

/// Whether `path` (cleaned) is `dir` or below it.
fn under(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Files under /proc that runc lets a bind mount cover (its `checkProcMount`
/// allowlist, for lxcfs-style `/proc/meminfo` views); every other mount there is
/// refused by the runtime (CVE-2019-19921: a volume over /proc let a container
/// bypass the LSM settings runc writes through it).
const PROC_MOUNTABLE: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// Why a volume may not be mounted at `path` (cleaned): the container's root, its
/// /proc, or its /dev, which the runtime itself mounts and the container needs
/// (over /dev, runc makes no /dev/null, /dev/pts, ...). A privileged container may
/// take the host's /dev there, as CSI node plugins do.
fn reserved_mount_path(path: &str, privileged: bool) -> Option<&'static str> {
    if path == "/" {
        Some("must not be '/': a volume cannot replace the container's root filesystem")
    } else if under(path, "/proc") && !PROC_MOUNTABLE.contains(&path) {
        Some("must not be /proc or under /proc: the runtime mounts procfs there")
    } else if path == "/dev" && !privileged {
        Some(
            "must not be /dev unless the container is privileged: the runtime mounts the container's devices there",
        )
    } else {
        None
    }
}

fn volume_mounts(
    errs: &mut Errs,
    base: &str,
    c: &k8s::Container,
    volumes: &[Declared],
    privileged: bool,
    host_users: bool,
) -> Vec<VolumeMount> {
    let mut mount_paths = HashSet::new();
    let mut out = Vec::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let mb = format!("{base}.volumeMounts[{i}]");
        let before = errs.0.len();
        // An invalid volume was reported where it is declared.
        let mut volume = None;
        if m.name.is_empty() {
            errs.required(format!("{mb}.name"));
        } else {
            match volumes.iter().find(|d| d.name == m.name) {
                Some(d) => volume = d.volume.as_ref().map(|v| v.name.clone()),
                None => errs.not_found(format!("{mb}.name"), &m.name),
            }
        }
        let mp = format!("{mb}.mountPath");
        let mut mount_path = None;
        if m.mount_path.is_empty() {
            errs.required(&mp);
        } else {
            mount_path = absolute_path(errs, &mp, &m.mount_path);
            if m.mount_path.contains(':') {
                errs.invalid_str(&mp, &m.mount_path, "must not contain ':'");
            }
            // Kubernetes compares the cleaned path, so `/data/` duplicates `/data`.
            if let Some(p) = &mount_path
                && !mount_paths.insert(p.clean())
            {
                errs.duplicate(&mp, &m.mount_path);
            }
            if let Some(why) = mount_path
                .as_ref()
                .and_then(|p| reserved_mount_path(&p.clean(), privileged))
            {
                errs.invalid_str(&mp, &m.mount_path, why);
            }
        }
        let sub_path = match m.sub_path.as_deref() {
            Some(sp) if !sp.is_empty() => descending_path(errs, &format!("{mb}.subPath"), sp),
            _ => None,
        };
        let propagation = errs
            .one_of(
                format!("{mb}.mountPropagation"),
                m.mount_propagation.as_deref(),
                PROPAGATIONS,
                |p| match p {
                    "None" => Some(MountPropagation::None),
                    "HostToContainer" => Some(MountPropagation::HostToContainer),
                    "Bidirectional" => Some(MountPropagation::Bidirectional),
                    _ => None,
                },
            )
            .unwrap_or(MountPropagation::None);
        if propagation == MountPropagation::Bidirectional && !privileged {
            errs.forbidden(
                format!("{mb}.mountPropagation"),
                "Bidirectional mount propagation is available only to privileged containers",
            );
        }
        // Under `hostUsers: false` a volume reaches the container as podshim's
        // id-mapped view of it: a mount of its own, which receives and sends
        // no mount events.
        if propagation != MountPropagation::None && !host_users {
            errs.not_supported(
                format!("{mb}.mountPropagation"),
                "mount propagation with `hostUsers: false` (the volume is an id-mapped view, which propagates nothing)",
            );
        }
        // validateMountRecursiveReadOnly.
        let rro_path = format!("{mb}.recursiveReadOnly");
        let recursive_read_only = errs
            .one_of(
                &rro_path,
                m.recursive_read_only.as_deref(),
                model::RecursiveReadOnly::NAMES,
                model::RecursiveReadOnly::parse,
            )
            .unwrap_or_default();
        if recursive_read_only != model::RecursiveReadOnly::Disabled {
            if m.read_only != Some(true) {
                errs.forbidden(&rro_path, "may only be specified when readOnly is true");
            }
            if propagation != MountPropagation::None {
                errs.forbidden(
                    &rro_path,
                    "may only be specified when mountPropagation is None or not specified",
                );
            }
        }
        if errs.0.len() == before
            && let (Some(volume), Some(mount_path)) = (volume, mount_path)
        {
            out.push(VolumeMount {
                volume,
                mount_path,
                read_only: m.read_only == Some(true),
                sub_path,
                propagation,
                recursive_read_only,
            });
        }
    }
    out
}

fn resources(errs: &mut Errs, base: &str, c: &k8s::Container) -> Resources {
    let mut out = Resources::default();
    let Some(res) = &c.resources else {
        return out;
    };
    for (kind, map) in [("limits", &res.limits), ("requests", &res.requests)] {
        for (name, q) in map.iter().flatten() {
            let v = quantity(errs, &format!("{base}.resources.{kind}.{name}"), &q.0);
            match (kind, name.as_str()) {
                ("limits", "cpu") => out.cpu_limit = v,
                ("limits", "memory") => out.memory_limit = v,
                ("requests", "cpu") => out.cpu_request = v,
                ("requests", "memory") => out.memory_request = v,
                // validateContainerResourceName and the integer rule of
                // ValidateResourceRequirements: an extended resource is whole.
                (_, n)
                    if super::fields::is_extended_resource(n)
                        && v.is_some_and(|v| v.millis().is_none_or(|m| m % 1000 != 0)) =>
                {
                    errs.invalid_str(
                        format!("{base}.resources.{kind}.{name}"),
                        &q.0,
                        "must be an integer",
                    );
                }
                // Other resources are refused by the field tables.
                _ => {}
            }
        }
    }
    // Extended resources cannot be overcommitted: a request equals its limit,
    // and a request needs one (ValidateResourceRequirements).
    for (name, request) in res.requests.iter().flatten() {
        if !super::fields::is_extended_resource(name) {
            continue;
        }
        match res.limits.as_ref().and_then(|l| l.get(name)) {
            None => errs.push(
                format!("{base}.resources.limits"),
                "Required value: Limit must be set for non overcommitable resources",
            ),
            Some(limit) => {
                let same = match (Quantity::parse(&request.0), Quantity::parse(&limit.0)) {
                    (Ok(r), Ok(l)) => !r.exceeds(&l) && !l.exceeds(&r),
                    _ => true,
                };
                if !same {
                    errs.invalid_str(
                        format!("{base}.resources.requests.{name}"),
                        &request.0,
                        &format!("must be equal to {name} limit of {}", limit.0),
                    );
                }
            }
        }
    }
    // ValidateResourceRequirements: a request may not exceed its limit (the
    // runtime would be handed a memory limit below the scheduled request).
    for (name, request, limit) in [
        ("cpu", out.cpu_request, out.cpu_limit),
        ("memory", out.memory_request, out.memory_limit),
    ] {
        if let (Some(request), Some(limit)) = (request, limit)
            && request.exceeds(&limit)
        {
            let written = |map: &Option<
                BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
            >| {
                map.as_ref()
                    .and_then(|m| m.get(name))
                    .map(|q| q.0.clone())
                    .unwrap_or_default()
            };
            errs.invalid_str(
                format!("{base}.resources.requests.{name}"),
                &written(&res.requests),
                &format!(
                    "must be less than or equal to {name} limit of {}",
                    written(&res.limits)
                ),
            );
        }
    }
    // The API server defaults a request that is not set to the limit.
    out.cpu_request = out.cpu_request.or(out.cpu_limit);
    out.memory_request = out.memory_request.or(out.memory_limit);
    out
}

/// The container's extended resources and their limits (whole numbers, checked
/// by [`resources`]; one that is not is left out with its error there).
fn extended_resources(c: &k8s::Container) -> BTreeMap<String, u64> {
    c.resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .into_iter()
        .flatten()
        .filter(|(name, _)| super::fields::is_extended_resource(name))
        .filter_map(|(name, q)| {
            let q = Quantity::parse(&q.0).ok()?;
            let n = q.millis().filter(|m| m % 1000 == 0)? / 1000;
            Some((name.clone(), u64::try_from(n).ok()?))
        })
        .collect()
}

/// The resources of container `name` (for `resourceFieldRef.containerName`).
fn resources_of(all: &[&k8s::Container], name: &str) -> Option<Resources> {
    let c = all.iter().find(|c| c.name == name)?;
    let mut scratch = Errs::default();
    Some(resources(&mut scratch, "", c))
}

fn env_from(
    errs: &mut Errs,
    warnings: &mut Vec<String>,
    eb: &str,
    e: &k8s::EnvFromSource,
    refs: &Refs<'_>,
    env: &mut Vec<model::EnvVar>,
) {
    let prefix = e.prefix.as_deref().unwrap_or_default();
    if !prefix.is_empty() {
        env_name(errs, &format!("{eb}.prefix"), prefix);
    }
    let data = match (&e.config_map_ref, &e.secret_ref) {
        (None, None) => {
            errs.required_because(eb, "must specify one of: `configMapRef` or `secretRef`");
            return;
        }
        (Some(_), Some(_)) => {
            errs.invalid(
                eb,
                "\"\"",
                "may not have more than one field specified at a time",
            );
            return;
        }
        (Some(cm), None) => {
            let p = format!("{eb}.configMapRef.name");
            name_subdomain(errs, &p, &cm.name);
            let data = refs.config_map_text(&cm.name);
            if !cm.name.is_empty() && cm.optional != Some(true) && data.is_none() {
                errs.not_found(p, &cm.name);
            }
            data
        }
        (None, Some(s)) => {
            let p = format!("{eb}.secretRef.name");
            name_subdomain(errs, &p, &s.name);
            let data = refs.secret_data(&s.name);
            if !s.name.is_empty() && s.optional != Some(true) && data.is_none() {
                errs.not_found(p, &s.name);
            }
            data
        }
    };
    let mut skipped = Vec::new();
    for (key, value) in data.into_iter().flatten() {
        let name = format!("{prefix}{key}");
        if is_env_name(&name) {
            env.push(model::EnvVar {
                name,
                value: EnvValue::Data(String::from_utf8_lossy(&value).into_owned()),
            });
        } else {
            skipped.push(name);
        }
    }
    // The kubelet skips such keys and records an event saying so.
    if !skipped.is_empty() {
        warnings.push(format!(
            "{eb}: keys skipped, not valid environment variable names: {}",
            skipped.join(", ")
        ));
    }
}

fn env_var(
    errs: &mut Errs,
    eb: &str,
    e: &k8s::EnvVar,
    c: &k8s::Container,
    ctx: &ContainerCtx<'_>,
) -> Option<model::EnvVar> {
    let np = format!("{eb}.name");
    if e.name.is_empty() {
        errs.required(np);
    } else {
        env_name(errs, &np, &e.name);
    }
    let Some(from) = &e.value_from else {
        return Some(model::EnvVar {
            name: e.name.clone(),
            value: EnvValue::Literal(e.value.clone().unwrap_or_default()),
        });
    };
    let vb = format!("{eb}.valueFrom");
    if e.value.as_deref().is_some_and(|v| !v.is_empty()) {
        errs.invalid(
            &vb,
            "\"\"",
            "may not be specified when `value` is not empty",
        );
    }
    let count = [
        from.field_ref.is_some(),
        from.resource_field_ref.is_some(),
        from.config_map_key_ref.is_some(),
        from.secret_key_ref.is_some(),
        from.file_key_ref.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    match count {
        0 => errs.invalid(
            &vb,
            "\"\"",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`",
        ),
        1 => {}
        _ => errs.invalid(&vb, "\"\"", "may not have more than one field specified at a time"),
    }
    let mut value = None;
    if let Some(f) = &from.field_ref {
        value = field_ref(errs, &format!("{vb}.fieldRef"), f, ENV_FIELD_PATHS).map(EnvValue::Field);
    }
    if let Some(r) = &from.resource_field_ref {
        let p = format!("{vb}.resourceFieldRef");
        if let Some((field, divisor)) = resource_field_ref(errs, &p, r) {
            // An env var's resourceFieldRef defaults to its own container.
            let resources = match r.container_name.as_deref().filter(|n| !n.is_empty()) {
                None => {
                    let mut scratch = Errs::default();
                    Some(resources(&mut scratch, "", c))
                }
                Some(name) => {
                    let found = resources_of(ctx.all, name);
                    if found.is_none() {
                        errs.not_found(format!("{p}.containerName"), name);
                    }
                    found
                }
            };
            value = resources.map(|resources| {
                EnvValue::Resource(Box::new(ResourceRef {
                    resources,
                    field,
                    divisor,
                }))
            });
        }
    }
    if let Some(k) = &from.config_map_key_ref {
        let kb = format!("{vb}.configMapKeyRef");
        value = key_ref(
            errs,
            &kb,
            &k.name,
            &k.key,
            k.optional == Some(true),
            ctx.refs.config_map_text(&k.name),
        );
    }
    if let Some(k) = &from.secret_key_ref {
        let kb = format!("{vb}.secretKeyRef");
        value = key_ref(
            errs,
            &kb,
            &k.name,
            &k.key,
            k.optional == Some(true),
            ctx.refs.secret_data(&k.name),
        );
    }
    if let Some(f) = &from.file_key_ref {
        value = file_key_ref(errs, &format!("{vb}.fileKeyRef"), f, ctx.volumes).map(EnvValue::File);
    }
    value.map(|value| model::EnvVar {
        name: e.name.clone(),
        value,
    })
}

/// The most a `fileKeyRef` key may have (the EnvFiles feature's limit).
const MAX_ENV_FILE_KEY: usize = 128;

/// `fileKeyRef`: a declared volume, a path inside it, a key of printable ASCII
/// without '=' (FileKeySelector's rules).
fn file_key_ref(
    errs: &mut Errs,
    fb: &str,
    f: &k8s::FileKeySelector,
    volumes: &[Declared],
) -> Option<model::FileKeyRef> {
    let before = errs.0.len();
    let mut volume = None;
    if f.volume_name.is_empty() {
        errs.required(format!("{fb}.volumeName"));
    } else {
        match volumes.iter().find(|d| d.name == f.volume_name) {
            // An emptyDir only, as the API server allows: the pod's own scratch
            // space, where an init container writes the file.
            Some(Declared {
                volume: Some(v), ..
            }) if !matches!(v.source, model::VolumeSource::EmptyDir { .. }) => errs.invalid_str(
                format!("{fb}.volumeName"),
                &f.volume_name,
                "must reference an emptyDir volume",
            ),
            Some(d) => volume = d.volume.as_ref().map(|v| v.name.clone()),
            None => errs.not_found(format!("{fb}.volumeName"), &f.volume_name),
        }
    }
    let path = if f.path.is_empty() {
        errs.required(format!("{fb}.path"));
        None
    } else {
        descending_path(errs, &format!("{fb}.path"), &f.path)
    };
    let kp = format!("{fb}.key");
    if f.key.is_empty() {
        errs.required(&kp);
    } else if f.key.len() > MAX_ENV_FILE_KEY {
        errs.invalid_str(&kp, &f.key, "must be no more than 128 characters");
    } else if !f.key.bytes().all(|b| (32..=126).contains(&b) && b != b'=') {
        errs.invalid_str(
            &kp,
            &f.key,
            "must consist of printable ASCII characters except '='",
        );
    }
    if errs.0.len() != before {
        return None;
    }
    Some(model::FileKeyRef {
        volume: volume?,
        path: path?,
        key: f.key.clone(),
        optional: f.optional == Some(true),
    })
}

/// A `configMapKeyRef`/`secretKeyRef`: the document and key must be in the input,
/// unless `optional: true` (then a missing one leaves the variable unset: `None`).
fn key_ref(
    errs: &mut Errs,
    kb: &str,
    name: &str,
    key: &str,
    optional: bool,
    data: Option<BTreeMap<String, Vec<u8>>>,
) -> Option<EnvValue> {
    name_subdomain(errs, &format!("{kb}.name"), name);
    if key.is_empty() {
        errs.required(format!("{kb}.key"));
    }
    if name.is_empty() || key.is_empty() {
        return None;
    }
    match data.as_ref().map(|d| d.get(key)) {
        Some(Some(v)) => Some(EnvValue::Data(String::from_utf8_lossy(v).into_owned())),
        _ if optional => None,
        None => {
            errs.not_found(format!("{kb}.name"), name);
            None
        }
        Some(None) => {
            errs.not_found(format!("{kb}.key"), key);
            None
        }
    }
}

/// ConfigMap and Secret documents: a valid name, and data keys that are valid file
/// names (`IsConfigMapKey`: `[-._a-zA-Z0-9]+`, not `.` or `..`), since volumes
/// project them as files.
pub(crate) fn data_keys<'k>(errs: &mut Errs, field: &str, keys: impl Iterator<Item = &'k String>) {
    for key in keys {
        let ok = !key.is_empty()
            && key.len() <= 253
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && key != "."
            && key != "..";
        if !ok {
            errs.invalid_str(
                format!("{field}[{key}]"),
                key,
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.', and must not be '.' or '..'",
            );
        } else if let Some(why) = chdir_prefix(key) {
            // IsConfigMapKey's hasChDirPrefix: `..data` would be the AtomicWriter's.
            errs.invalid_str(format!("{field}[{key}]"), key, why);
        }
    }
}

/// `resourceFieldRef` (env or downwardAPI volume): a known resource, a valid divisor.
fn resource_field_ref(
    errs: &mut Errs,
    base: &str,
    r: &k8s::ResourceFieldSelector,
) -> Option<(ResourceField, Quantity)> {
    let p = format!("{base}.resource");
    let field = match r.resource.as_str() {
        "" => {
            errs.required(p);
            None
        }
        "limits.cpu" => Some(ResourceField::LimitsCpu),
        "limits.memory" => Some(ResourceField::LimitsMemory),
        "requests.cpu" => Some(ResourceField::RequestsCpu),
        "requests.memory" => Some(ResourceField::RequestsMemory),
        other => {
            errs.unsupported(p, other, RESOURCE_FIELDS);
            None
        }
    };
    let divisor = match &r.divisor {
        Some(d) => {
            let q = quantity(errs, &format!("{base}.divisor"), &d.0)?;
            if q.is_zero() {
                errs.invalid_str(format!("{base}.divisor"), &d.0, "must be greater than zero");
                return None;
            }
            q
        }
        None => Quantity::ONE,
    };
    Some((field?, divisor))
}

// --- seccomp and AppArmor ------------------------------------------------------------
//
// The fields (`seccompProfile`, `appArmorProfile`, pod and container level) are
// validated as validateSeccompProfileField / validateAppArmorProfileField do; the
// legacy annotations (`seccomp.security.alpha.kubernetes.io/pod`,
// `container.seccomp.security.alpha.kubernetes.io/<name>`,
// `container.apparmor.security.beta.kubernetes.io/<name>`) as
// ValidateSeccompProfile / ValidateAppArmorProfileFormat do, and must agree with a
// field set beside them (validateSeccompAnnotationsAndFieldsMatch and its AppArmor
// twin). A container's own setting wins over the pod's; an annotation stands for
// its field when the field is unset (the API server's version-skew sync).

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION: &str = "container.seccomp.security.alpha.kubernetes.io/";
const APPARMOR_CONTAINER_ANNOTATION: &str = "container.apparmor.security.beta.kubernetes.io/";
const PROFILE_TYPES: &[&str] = &["Localhost", "RuntimeDefault", "Unconfined"];

fn annotation_path(key: &str) -> String {
    format!("metadata.annotations[{key}]")
}

#[derive(Clone, Copy, PartialEq)]
enum ProfileType {
    Localhost,
    RuntimeDefault,
    Unconfined,
}

fn profile_type(errs: &mut Errs, path: &str, written: &str) -> Option<ProfileType> {
    errs.one_of(path, Some(written), PROFILE_TYPES, |t| match t {
        "Localhost" => Some(ProfileType::Localhost),
        "RuntimeDefault" => Some(ProfileType::RuntimeDefault),
        "Unconfined" => Some(ProfileType::Unconfined),
        _ => None,
    })
}

fn seccomp_field(errs: &mut Errs, path: &str, p: &k8s::SeccompProfile) -> Option<SeccompProfile> {
    let local_path = format!("{path}.localhostProfile");
    let typ = profile_type(errs, &format!("{path}.type"), &p.type_)?;
    match (typ, p.localhost_profile.as_deref()) {
        (ProfileType::Localhost, None) => {
            errs.required_because(local_path, "must be set when seccomp type is Localhost");
            None
        }
        (ProfileType::Localhost, Some(file)) => Some(SeccompProfile::Localhost {
            path: descending_path(errs, &local_path, file)?,
            field: local_path,
        }),
        (_, Some(file)) => {
            errs.invalid_str(
                local_path,
                file,
                "can only be set when seccomp type is Localhost",
            );
            None
        }
        (ProfileType::RuntimeDefault, None) => Some(SeccompProfile::RuntimeDefault),
        (ProfileType::Unconfined, None) => Some(SeccompProfile::Unconfined),
    }
}

fn seccomp_annotation(errs: &mut Errs, key: &str, value: &str) -> Option<SeccompProfile> {
    let path = annotation_path(key);
    match value {
        "runtime/default" | "docker/default" => Some(SeccompProfile::RuntimeDefault),
        "unconfined" => Some(SeccompProfile::Unconfined),
        _ => match value.strip_prefix("localhost/") {
            Some(file) => Some(SeccompProfile::Localhost {
                path: descending_path(errs, &path, file)?,
                field: path,
            }),
            None => {
                errs.invalid_str(path, value, "must be a valid seccomp profile");
                None
            }
        },
    }
}

/// A field's profile, else its annotation's; a field and annotation that disagree
/// are an error on the field.
fn seccomp_setting(
    errs: &mut Errs,
    path: &str,
    field: Option<&k8s::SeccompProfile>,
    key: &str,
    annotation: Option<&String>,
) -> Option<SeccompProfile> {
    let from_annotation = annotation.and_then(|v| seccomp_annotation(errs, key, v));
    let Some(field) = field else {
        return from_annotation;
    };
    let from_field = seccomp_field(errs, path, field)?;
    if let Some(written) = annotation {
        let same_type = match &from_field {
            SeccompProfile::Unconfined => written == "unconfined",
            SeccompProfile::RuntimeDefault => {
                written == "runtime/default" || written == "docker/default"
            }
            SeccompProfile::Localhost { .. } => written.starts_with("localhost/"),
        };
        if !same_type {
            errs.forbidden(
                format!("{path}.type"),
                "seccomp type in annotation and field must match",
            );
        } else if let SeccompProfile::Localhost { path: file, .. } = &from_field
            && written.strip_prefix("localhost/") != Some(file.as_str())
        {
            errs.forbidden(
                format!("{path}.localhostProfile"),
                "seccomp profile in annotation and field must match",
            );
        }
    }
    Some(from_field)
}

fn apparmor_field(errs: &mut Errs, path: &str, p: &k8s::AppArmorProfile) -> Option<AppArmor> {
    let local_path = format!("{path}.localhostProfile");
    let typ = profile_type(errs, &format!("{path}.type"), &p.type_)?;
    let profile = match (typ, p.localhost_profile.as_deref()) {
        (ProfileType::Localhost, None | Some("")) => {
            errs.required_because(local_path, "must be set when AppArmor type is Localhost");
            return None;
        }
        (ProfileType::Localhost, Some(name)) => {
            if name.trim() != name {
                errs.invalid_str(local_path, name, "must not be padded with whitespace");
                return None;
            }
            if name.len() > 4095 {
                errs.invalid_str(local_path, name, "must be no more than 4095 characters");
                return None;
            }
            AppArmorProfile::Localhost(name.to_string())
        }
        (_, Some(name)) => {
            errs.invalid_str(
                local_path,
                name,
                "can only be set when AppArmor type is Localhost",
            );
            return None;
        }
        (ProfileType::RuntimeDefault, None) => AppArmorProfile::RuntimeDefault,
        (ProfileType::Unconfined, None) => AppArmorProfile::Unconfined,
    };
    Some(AppArmor {
        profile,
        field: path.to_string(),
    })
}

fn apparmor_annotation(errs: &mut Errs, key: &str, value: &str) -> Option<AppArmor> {
    let field = annotation_path(key);
    let profile = match value {
        "runtime/default" => AppArmorProfile::RuntimeDefault,
        "unconfined" => AppArmorProfile::Unconfined,
        _ => match value.strip_prefix("localhost/") {
            Some(name) if !name.is_empty() => AppArmorProfile::Localhost(name.to_string()),
            _ => {
                errs.invalid_str(field, value, "invalid AppArmor profile name");
                return None;
            }
        },
    };
    Some(AppArmor { profile, field })
}

/// The pod-level seccomp and AppArmor profiles (there is no pod-level AppArmor
/// annotation).
fn pod_profiles(
    errs: &mut Errs,
    sc: Option<&k8s::PodSecurityContext>,
    annotations: &BTreeMap<String, String>,
) -> (Option<SeccompProfile>, Option<AppArmor>) {
    let path = "spec.securityContext";
    let seccomp = seccomp_setting(
        errs,
        &format!("{path}.seccompProfile"),
        sc.and_then(|sc| sc.seccomp_profile.as_ref()),
        SECCOMP_POD_ANNOTATION,
        annotations.get(SECCOMP_POD_ANNOTATION),
    );
    let apparmor = sc
        .and_then(|sc| sc.app_armor_profile.as_ref())
        .and_then(|p| apparmor_field(errs, &format!("{path}.appArmorProfile"), p));
    (seccomp, apparmor)
}

/// A container's own profiles (field, else annotation), else the pod's.
fn container_profiles(
    errs: &mut Errs,
    base: &str,
    c: &k8s::Container,
    pod: &PodSecurityDefaults,
) -> (SeccompProfile, Option<AppArmor>) {
    let sc = c.security_context.as_ref();
    let key = format!("{SECCOMP_CONTAINER_ANNOTATION}{}", c.name);
    let seccomp = seccomp_setting(
        errs,
        &format!("{base}.securityContext.seccompProfile"),
        sc.and_then(|sc| sc.seccomp_profile.as_ref()),
        &key,
        pod.annotations.get(&key),
    )
    .or_else(|| pod.seccomp.clone())
    .unwrap_or_default();

    let key = format!("{APPARMOR_CONTAINER_ANNOTATION}{}", c.name);
    let path = format!("{base}.securityContext.appArmorProfile");
    let annotation = pod
        .annotations
        .get(&key)
        .and_then(|v| apparmor_annotation(errs, &key, v));
    let field = sc
        .and_then(|sc| sc.app_armor_profile.as_ref())
        .and_then(|p| apparmor_field(errs, &path, p));
    if let (Some(f), Some(a)) = (&field, &annotation) {
        match (&f.profile, &a.profile) {
            (AppArmorProfile::Localhost(x), AppArmorProfile::Localhost(y)) if x != y => errs
                .forbidden(
                    format!("{path}.localhostProfile"),
                    "apparmor profile in annotation and field must match",
                ),
            (x, y) if std::mem::discriminant(x) != std::mem::discriminant(y) => errs.forbidden(
                format!("{path}.type"),
                "apparmor type in annotation and field must match",
            ),
            _ => {}
        }
    }
    let apparmor = field.or(annotation).or_else(|| pod.apparmor.clone());
    (seccomp, apparmor)
}

/// A per-container AppArmor annotation must name a container of the pod
/// (ValidateAppArmorProfileAnnotations: "container not found").
fn apparmor_annotations_name_containers(
    errs: &mut Errs,
    annotations: &BTreeMap<String, String>,
    all: &[&k8s::Container],
) {
    for key in annotations.keys() {
        if let Some(name) = key.strip_prefix(APPARMOR_CONTAINER_ANNOTATION)
            && !all.iter().any(|c| c.name == name)
        {
            errs.invalid_str(annotation_path(key), name, "container not found");
        }
    }
}
