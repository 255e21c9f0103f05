//! Kubernetes' validation rules for the Pod fields podshim uses.
//!
//! Messages follow the API server's (`k8s.io/apimachinery/pkg/util/validation/field`):
//! `<path>: Required value`, `<path>: Invalid value: "x": <why>`,
//! `<path>: Duplicate value: "x"`, `<path>: Not found: "x"`,
//! `<path>: Unsupported value: "x": supported values: "a", "b"`, `<path>: Forbidden: <why>`.
//! Rules cite `pkg/apis/core/validation/validation.go` unless said otherwise.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Display;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, KeyToPath, ObjectFieldSelector, Pod, PodSpec, Secret, Volume,
};

/// Field path and message of one validation error.
pub(crate) type Problem = (String, String);

#[derive(Default)]
pub(crate) struct Errs(pub(crate) Vec<Problem>);

impl Errs {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push((path.into(), message.into()));
    }
    fn required(&mut self, path: impl Into<String>) {
        self.push(path, "Required value");
    }
    fn required_because(&mut self, path: impl Into<String>, why: &str) {
        self.push(path, format!("Required value: {why}"));
    }
    fn invalid(&mut self, path: impl Into<String>, value: impl Display, why: &str) {
        self.push(path, format!("Invalid value: {value}: {why}"));
    }
    fn invalid_str(&mut self, path: impl Into<String>, value: &str, why: &str) {
        self.invalid(path, quote(value), why);
    }
    fn duplicate(&mut self, path: impl Into<String>, value: &str) {
        self.push(path, format!("Duplicate value: {}", quote(value)));
    }
    fn not_found(&mut self, path: impl Into<String>, value: &str) {
        self.push(path, format!("Not found: {}", quote(value)));
    }
    fn unsupported(&mut self, path: impl Into<String>, value: &str, supported: &[&str]) {
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
    fn forbidden(&mut self, path: impl Into<String>, why: &str) {
        self.push(path, format!("Forbidden: {why}"));
    }
    /// `value` must be one of `supported`; empty counts as unset.
    fn one_of(&mut self, path: impl Into<String>, value: Option<&str>, supported: &[&str]) {
        if let Some(v) = value
            && !supported.contains(&v)
        {
            self.unsupported(path, v, supported);
        }
    }
}

/// Quotes a string the way Go's `%q` does for the printable ASCII we expect.
fn quote(s: &str) -> String {
    format!("{s:?}")
}

// --- name formats (k8s.io/apimachinery/pkg/util/validation) -------------------------

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

fn is_dns1123_label_chars(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// IsDNS1123Label: at most 63 characters of `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
pub(crate) fn dns1123_label(errs: &mut Errs, path: &str, value: &str) {
    if value.len() > 63 {
        errs.invalid_str(path, value, "must be no more than 63 characters");
    }
    if !is_dns1123_label_chars(value) {
        errs.invalid_str(path, value, DNS1123_LABEL_MSG);
    }
}

/// IsDNS1123Subdomain: at most 253 characters, dot-separated labels.
pub(crate) fn dns1123_subdomain(errs: &mut Errs, path: &str, value: &str) {
    if value.len() > 253 {
        errs.invalid_str(path, value, "must be no more than 253 characters");
    }
    if !value.split('.').all(is_dns1123_label_chars) {
        errs.invalid_str(path, value, DNS1123_SUBDOMAIN_MSG);
    }
}

/// Required, then a DNS-1123 label.
fn name_label(errs: &mut Errs, path: &str, value: &str) {
    if value.is_empty() {
        errs.required(path);
    } else {
        dns1123_label(errs, path, value);
    }
}

/// Required, then a DNS-1123 subdomain (names of Pods, ConfigMaps, Secrets).
pub(crate) fn name_subdomain(errs: &mut Errs, path: &str, value: &str) {
    if value.is_empty() {
        errs.required(path);
    } else {
        dns1123_subdomain(errs, path, value);
    }
}

/// Environment variable names, as `validateEnvVarName` checked them before 1.34
/// relaxed it (`[-._a-zA-Z][-._a-zA-Z0-9]*`): such names are portable to every shell.
fn env_name(errs: &mut Errs, path: &str, name: &str) {
    let ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !ok {
        errs.invalid_str(
            path,
            name,
            "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
        );
    }
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

fn port_number(errs: &mut Errs, path: &str, port: i32) {
    if !(1..=65535).contains(&port) {
        errs.invalid(path, port, "must be between 1 and 65535, inclusive");
    }
}

/// A path inside a volume or an image: relative, no `..` element
/// (`validateLocalDescendingPath`; a `..` would escape the volume on the host).
fn descending_path(errs: &mut Errs, path: &str, value: &str) {
    if value.starts_with('/') {
        errs.invalid_str(path, value, "must be a relative path");
    }
    if value.split('/').any(|part| part == "..") {
        errs.invalid_str(path, value, "must not contain '..'");
    }
}

fn absolute_path(errs: &mut Errs, path: &str, value: &str) {
    if !value.starts_with('/') {
        errs.invalid_str(path, value, "must be an absolute path");
    }
}

/// File modes of projected files: 0..=0777 (`validateModeBits`).
fn mode_bits(errs: &mut Errs, path: &str, mode: Option<i32>) {
    if let Some(m) = mode
        && !(0..=0o777).contains(&m)
    {
        errs.invalid(
            path,
            m,
            "must be a number between 0 and 0777 (octal), both inclusive",
        );
    }
}

fn id_range(errs: &mut Errs, path: &str, id: Option<i64>) {
    if let Some(id) = id
        && !(0..=i64::from(i32::MAX)).contains(&id)
    {
        errs.invalid(path, id, "must be between 0 and 2147483647, inclusive");
    }
}

fn ip_address(errs: &mut Errs, path: &str, ip: &str) {
    if ip.parse::<IpAddr>().is_err() {
        errs.invalid_str(path, ip, "must be a valid IP address");
    }
}

/// Quantity syntax (`resource.ParseQuantity`): a signed decimal number, then an SI
/// (`m`, `k`, `M`, ...), binary (`Ki`, `Mi`, ...) or decimal exponent (`e3`) suffix.
fn quantity(errs: &mut Errs, path: &str, q: &str) {
    let s = q.strip_prefix(['+', '-']).unwrap_or(q);
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let number_ok = !number.is_empty() && number != "." && number.matches('.').count() <= 1;
    let suffix_ok = matches!(
        suffix,
        "" | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
            | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|exp| {
            let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            !exp.is_empty() && exp.chars().all(|c| c.is_ascii_digit())
        })
        .unwrap_or(false);
    if !(number_ok && suffix_ok) {
        errs.invalid_str(
            path,
            q,
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        );
    }
}

// --- the Pod -----------------------------------------------------------------------

/// Documents of the input that references may name.
pub(crate) struct Refs<'a> {
    pub(crate) config_maps: &'a BTreeMap<String, ConfigMap>,
    pub(crate) secrets: &'a BTreeMap<String, Secret>,
}

impl Refs<'_> {
    /// Environment variables read `data` only (kubelet's `makeEnvironmentVariables`).
    fn config_map_has_text(&self, name: &str, key: &str) -> bool {
        self.config_maps
            .get(name)
            .is_some_and(|cm| cm.data.as_ref().is_some_and(|d| d.contains_key(key)))
    }
    /// Volumes project `data` and `binaryData`.
    fn config_map_has(&self, name: &str, key: &str) -> bool {
        self.config_maps.get(name).is_some_and(|cm| {
            cm.data.as_ref().is_some_and(|d| d.contains_key(key))
                || cm.binary_data.as_ref().is_some_and(|d| d.contains_key(key))
        })
    }
    fn secret_has(&self, name: &str, key: &str) -> bool {
        self.secrets.get(name).is_some_and(|s| {
            s.data.as_ref().is_some_and(|d| d.contains_key(key))
                || s.string_data.as_ref().is_some_and(|d| d.contains_key(key))
        })
    }
}

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PROPAGATIONS: &[&str] = &["Bidirectional", "HostToContainer", "None"];
const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];
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

pub(crate) fn pod(pod: &Pod, refs: &Refs<'_>) -> Vec<Problem> {
    let mut errs = Errs::default();
    let meta = &pod.metadata;
    match meta.name.as_deref() {
        None | Some("") => errs.required("metadata.name"),
        Some(name) => dns1123_subdomain(&mut errs, "metadata.name", name),
    }
    if let Some(ns) = meta.namespace.as_deref() {
        name_label(&mut errs, "metadata.namespace", ns);
    }
    // The uid names the pod's log directory (/var/log/podshim/pods/<ns>_<pod>_<uid>),
    // so it must not be able to name another path.
    if let Some(uid) = meta.uid.as_deref()
        && (uid.is_empty()
            || uid.len() > 128
            || !uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        errs.invalid_str(
            "metadata.uid",
            uid,
            "must be 1 to 128 alphanumeric characters or '-'",
        );
    }
    match &pod.spec {
        None => errs.required("spec"),
        Some(spec) => pod_spec(&mut errs, spec, refs),
    }
    errs.0
}

fn pod_spec(errs: &mut Errs, spec: &PodSpec, refs: &Refs<'_>) {
    errs.one_of(
        "spec.restartPolicy",
        spec.restart_policy.as_deref(),
        RESTART_POLICIES,
    );
    if let Some(grace) = spec.termination_grace_period_seconds
        && grace < 0
    {
        errs.invalid(
            "spec.terminationGracePeriodSeconds",
            grace,
            "must be greater than or equal to 0",
        );
    }
    if let Some(h) = spec.hostname.as_deref() {
        dns1123_label(errs, "spec.hostname", h);
    }
    if let Some(s) = spec.subdomain.as_deref() {
        dns1123_label(errs, "spec.subdomain", s);
    }
    dns(errs, spec);
    for (i, alias) in spec.host_aliases.iter().flatten().enumerate() {
        let base = format!("spec.hostAliases[{i}]");
        ip_address(errs, &format!("{base}.ip"), &alias.ip);
        for (j, h) in alias.hostnames.iter().flatten().enumerate() {
            dns1123_subdomain(errs, &format!("{base}.hostnames[{j}]"), h);
        }
    }
    if let Some(sc) = &spec.security_context {
        id_range(errs, "spec.securityContext.runAsUser", sc.run_as_user);
        id_range(errs, "spec.securityContext.runAsGroup", sc.run_as_group);
        for (i, g) in sc.supplemental_groups.iter().flatten().enumerate() {
            id_range(
                errs,
                &format!("spec.securityContext.supplementalGroups[{i}]"),
                Some(*g),
            );
        }
        for (i, s) in sc.sysctls.iter().flatten().enumerate() {
            let path = format!("spec.securityContext.sysctls[{i}].name");
            if s.name.is_empty() {
                errs.required(path);
            } else if !is_sysctl_name(&s.name) {
                errs.invalid_str(path, &s.name, "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$");
            }
        }
    }

    let volumes = volumes(errs, spec.volumes.as_deref().unwrap_or_default(), refs);

    if spec.containers.is_empty() {
        errs.required("spec.containers");
    }
    let mut names = HashSet::new();
    let mut host_ports = HashSet::new();
    let host_network = spec.host_network == Some(true);
    let groups = [
        (
            "spec.initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
            true,
        ),
        ("spec.containers", spec.containers.as_slice(), false),
    ];
    for (field, list, init) in groups {
        for (i, c) in list.iter().enumerate() {
            let base = format!("{field}[{i}]");
            let ctx = ContainerCtx {
                base: &base,
                init,
                volumes: &volumes,
                refs,
                host_network,
            };
            container(errs, c, &ctx, &mut names, &mut host_ports);
        }
    }
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

fn dns(errs: &mut Errs, spec: &PodSpec) {
    errs.one_of("spec.dnsPolicy", spec.dns_policy.as_deref(), DNS_POLICIES);
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
    if let Some(cfg) = &spec.dns_config {
        let nameservers = cfg.nameservers.as_deref().unwrap_or_default();
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
        for (i, s) in cfg.searches.iter().flatten().enumerate() {
            // A trailing dot (a fully qualified name) is allowed.
            dns1123_subdomain(
                errs,
                &format!("spec.dnsConfig.searches[{i}]"),
                s.strip_suffix('.').unwrap_or(s),
            );
        }
        for (i, o) in cfg.options.iter().flatten().enumerate() {
            if o.name.as_deref().is_none_or(str::is_empty) {
                errs.required(format!("spec.dnsConfig.options[{i}].name"));
            }
        }
    }
}

/// Volume name → whether a mount of it is fine (all supported kinds are).
fn volumes(errs: &mut Errs, volumes: &[Volume], refs: &Refs<'_>) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let base = format!("spec.volumes[{i}]");
        let name_path = format!("{base}.name");
        name_label(errs, &name_path, &v.name);
        if !v.name.is_empty() && !names.insert(v.name.clone()) {
            errs.duplicate(&name_path, &v.name);
        }
        let kinds = [
            v.host_path.is_some(),
            v.empty_dir.is_some(),
            v.config_map.is_some(),
            v.secret.is_some(),
            v.downward_api.is_some(),
        ];
        match kinds.iter().filter(|k| **k).count() {
            0 => errs.required_because(&base, "must specify a volume type"),
            1 => {}
            _ => errs.forbidden(&base, "may not specify more than 1 volume type"),
        }
        if let Some(hp) = &v.host_path {
            let p = format!("{base}.hostPath.path");
            if hp.path.is_empty() {
                errs.required(p);
            } else {
                absolute_path(errs, &p, &hp.path);
                if hp.path.split('/').any(|part| part == "..") {
                    errs.invalid_str(p, &hp.path, "must not contain '..'");
                }
            }
            errs.one_of(
                format!("{base}.hostPath.type"),
                hp.type_.as_deref(),
                HOST_PATH_TYPES,
            );
        }
        if let Some(ed) = &v.empty_dir {
            errs.one_of(
                format!("{base}.emptyDir.medium"),
                ed.medium.as_deref(),
                MEDIA,
            );
            if let Some(q) = &ed.size_limit {
                quantity(errs, &format!("{base}.emptyDir.sizeLimit"), &q.0);
            }
        }
        if let Some(cm) = &v.config_map {
            let src = format!("{base}.configMap");
            name_subdomain(errs, &format!("{src}.name"), &cm.name);
            mode_bits(errs, &format!("{src}.defaultMode"), cm.default_mode);
            let optional = cm.optional == Some(true);
            let exists = refs.config_maps.contains_key(&cm.name);
            if !cm.name.is_empty() && !exists && !optional {
                errs.not_found(format!("{src}.name"), &cm.name);
            }
            key_to_paths(errs, &src, cm.items.as_deref(), |key| {
                !exists || optional || refs.config_map_has(&cm.name, key)
            });
        }
        if let Some(s) = &v.secret {
            let src = format!("{base}.secret");
            let name = s.secret_name.as_deref().unwrap_or_default();
            name_subdomain(errs, &format!("{src}.secretName"), name);
            mode_bits(errs, &format!("{src}.defaultMode"), s.default_mode);
            let optional = s.optional == Some(true);
            let exists = refs.secrets.contains_key(name);
            if !name.is_empty() && !exists && !optional {
                errs.not_found(format!("{src}.secretName"), name);
            }
            key_to_paths(errs, &src, s.items.as_deref(), |key| {
                !exists || optional || refs.secret_has(name, key)
            });
        }
        if let Some(d) = &v.downward_api {
            let src = format!("{base}.downwardAPI");
            mode_bits(errs, &format!("{src}.defaultMode"), d.default_mode);
            let mut paths = HashSet::new();
            for (j, item) in d.items.iter().flatten().enumerate() {
                let ib = format!("{src}.items[{j}]");
                item_path(errs, &format!("{ib}.path"), &item.path, &mut paths);
                mode_bits(errs, &format!("{ib}.mode"), item.mode);
                match (&item.field_ref, &item.resource_field_ref) {
                    (None, None) => errs.required(format!("{ib}.fieldRef")),
                    (Some(_), Some(_)) => errs.invalid(
                        &ib,
                        "\"\"",
                        "fieldRef and resourceFieldRef can not be specified simultaneously",
                    ),
                    (Some(f), None) => {
                        field_ref(errs, &format!("{ib}.fieldRef"), f, VOLUME_FIELD_PATHS)
                    }
                    (None, Some(r)) => {
                        resource_field_ref(errs, &format!("{ib}.resourceFieldRef"), r);
                        // In a volume there is no current container to default to.
                        if r.container_name.as_deref().unwrap_or_default().is_empty() {
                            errs.required(format!("{ib}.resourceFieldRef.containerName"));
                        }
                    }
                }
            }
        }
    }
    names
}

/// A file path inside a projected volume: required, relative, no `..`, unique.
fn item_path(errs: &mut Errs, path: &str, value: &str, seen: &mut HashSet<String>) {
    if value.is_empty() {
        errs.required(path);
        return;
    }
    descending_path(errs, path, value);
    if !seen.insert(value.to_string()) {
        errs.duplicate(path, value);
    }
}

fn key_to_paths(
    errs: &mut Errs,
    src: &str,
    items: Option<&[KeyToPath]>,
    key_ok: impl Fn(&str) -> bool,
) {
    let mut paths = HashSet::new();
    for (j, item) in items.unwrap_or_default().iter().enumerate() {
        let ib = format!("{src}.items[{j}]");
        if item.key.is_empty() {
            errs.required(format!("{ib}.key"));
        } else if !key_ok(&item.key) {
            errs.not_found(format!("{ib}.key"), &item.key);
        }
        item_path(errs, &format!("{ib}.path"), &item.path, &mut paths);
        mode_bits(errs, &format!("{ib}.mode"), item.mode);
    }
}

/// `fieldPath` may also select one label or annotation: `metadata.labels['key']`.
fn field_ref(errs: &mut Errs, path: &str, f: &ObjectFieldSelector, supported: &[&str]) {
    let fp = &f.field_path;
    let p = format!("{path}.fieldPath");
    if fp.is_empty() {
        errs.required(p);
        return;
    }
    if let Some(v) = f.api_version.as_deref()
        && v != "v1"
    {
        errs.unsupported(format!("{path}.apiVersion"), v, &["v1"]);
    }
    let subscript = ["metadata.labels['", "metadata.annotations['"]
        .iter()
        .any(|prefix| fp.starts_with(prefix) && fp.ends_with("']") && fp.len() > prefix.len() + 2);
    if !subscript && !supported.contains(&fp.as_str()) {
        errs.unsupported(p, fp, supported);
    }
}

struct ContainerCtx<'a> {
    base: &'a str,
    init: bool,
    volumes: &'a HashSet<String>,
    refs: &'a Refs<'a>,
    host_network: bool,
}

fn container(
    errs: &mut Errs,
    c: &Container,
    ctx: &ContainerCtx<'_>,
    names: &mut HashSet<String>,
    host_ports: &mut HashSet<(i32, String, String)>,
) {
    let base = ctx.base;
    let name_path = format!("{base}.name");
    name_label(errs, &name_path, &c.name);
    // Names are unique across initContainers and containers (they name container ids).
    if !c.name.is_empty() && !names.insert(c.name.clone()) {
        errs.duplicate(&name_path, &c.name);
    }
    if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
        errs.required(format!("{base}.image"));
    }
    errs.one_of(
        format!("{base}.imagePullPolicy"),
        c.image_pull_policy.as_deref(),
        PULL_POLICIES,
    );
    if let Some(wd) = c.working_dir.as_deref()
        && !wd.is_empty()
    {
        absolute_path(errs, &format!("{base}.workingDir"), wd);
    }
    errs.one_of(
        format!("{base}.terminationMessagePolicy"),
        c.termination_message_policy.as_deref(),
        TERMINATION_MESSAGE_POLICIES,
    );
    let sidecar = ctx.init && c.restart_policy.as_deref() == Some("Always");
    if ctx.init {
        // Only `Always` (a native sidecar) is allowed on an init container.
        errs.one_of(
            format!("{base}.restartPolicy"),
            c.restart_policy.as_deref(),
            &["Always"],
        );
        if !sidecar {
            for (field, set) in [
                ("livenessProbe", c.liveness_probe.is_some()),
                ("readinessProbe", c.readiness_probe.is_some()),
                ("startupProbe", c.startup_probe.is_some()),
            ] {
                if set {
                    errs.forbidden(
                        format!("{base}.{field}"),
                        "may not be set for init containers without restartPolicy=Always",
                    );
                }
            }
        }
    }

    for (i, e) in c.env.iter().flatten().enumerate() {
        env_var(errs, &format!("{base}.env[{i}]"), e, ctx.refs);
    }
    for (i, e) in c.env_from.iter().flatten().enumerate() {
        let eb = format!("{base}.envFrom[{i}]");
        if let Some(prefix) = e.prefix.as_deref()
            && !prefix.is_empty()
        {
            env_name(errs, &format!("{eb}.prefix"), prefix);
        }
        match (&e.config_map_ref, &e.secret_ref) {
            (None, None) => {
                errs.required_because(&eb, "must specify one of: `configMapRef` or `secretRef`")
            }
            (Some(_), Some(_)) => errs.invalid(
                &eb,
                "\"\"",
                "may not have more than one field specified at a time",
            ),
            (Some(cm), None) => {
                let p = format!("{eb}.configMapRef.name");
                name_subdomain(errs, &p, &cm.name);
                if !cm.name.is_empty()
                    && cm.optional != Some(true)
                    && !ctx.refs.config_maps.contains_key(&cm.name)
                {
                    errs.not_found(p, &cm.name);
                }
            }
            (None, Some(s)) => {
                let p = format!("{eb}.secretRef.name");
                name_subdomain(errs, &p, &s.name);
                if !s.name.is_empty()
                    && s.optional != Some(true)
                    && !ctx.refs.secrets.contains_key(&s.name)
                {
                    errs.not_found(p, &s.name);
                }
            }
        }
    }

    let mut port_names = HashSet::new();
    for (i, p) in c.ports.iter().flatten().enumerate() {
        let pb = format!("{base}.ports[{i}]");
        port_number(errs, &format!("{pb}.containerPort"), p.container_port);
        if let Some(name) = p.name.as_deref()
            && !name.is_empty()
        {
            port_name(errs, &format!("{pb}.name"), name);
            if !port_names.insert(name.to_string()) {
                errs.duplicate(format!("{pb}.name"), name);
            }
        }
        errs.one_of(format!("{pb}.protocol"), p.protocol.as_deref(), PROTOCOLS);
        if let Some(ip) = p.host_ip.as_deref()
            && !ip.is_empty()
        {
            ip_address(errs, &format!("{pb}.hostIP"), ip);
        }
        if let Some(hp) = p.host_port
            && hp != 0
        {
            port_number(errs, &format!("{pb}.hostPort"), hp);
            if ctx.host_network && hp != p.container_port {
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
    }

    let mut mount_paths = HashSet::new();
    let privileged = c
        .security_context
        .as_ref()
        .and_then(|s| s.privileged)
        .unwrap_or(false);
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let mb = format!("{base}.volumeMounts[{i}]");
        if m.name.is_empty() {
            errs.required(format!("{mb}.name"));
        } else if !ctx.volumes.contains(&m.name) {
            errs.not_found(format!("{mb}.name"), &m.name);
        }
        let mp = format!("{mb}.mountPath");
        if m.mount_path.is_empty() {
            errs.required(&mp);
        } else {
            absolute_path(errs, &mp, &m.mount_path);
            if m.mount_path.contains(':') {
                errs.invalid_str(&mp, &m.mount_path, "must not contain ':'");
            }
            // Kubernetes compares the cleaned path, so `/data/` duplicates `/data`.
            let clean = clean_path(&m.mount_path);
            if !mount_paths.insert(clean) {
                errs.duplicate(&mp, &m.mount_path);
            }
        }
        if let Some(sp) = m.sub_path.as_deref()
            && !sp.is_empty()
        {
            descending_path(errs, &format!("{mb}.subPath"), sp);
        }
        errs.one_of(
            format!("{mb}.mountPropagation"),
            m.mount_propagation.as_deref(),
            PROPAGATIONS,
        );
        if m.mount_propagation.as_deref() == Some("Bidirectional") && !privileged {
            errs.forbidden(
                format!("{mb}.mountPropagation"),
                "Bidirectional mount propagation is available only to privileged containers",
            );
        }
    }

    if let Some(res) = &c.resources {
        for (kind, map) in [("limits", &res.limits), ("requests", &res.requests)] {
            for (name, q) in map.iter().flatten() {
                quantity(errs, &format!("{base}.resources.{kind}.{name}"), &q.0);
            }
        }
    }
    if let Some(sc) = &c.security_context {
        id_range(
            errs,
            &format!("{base}.securityContext.runAsUser"),
            sc.run_as_user,
        );
        id_range(
            errs,
            &format!("{base}.securityContext.runAsGroup"),
            sc.run_as_group,
        );
        if sc.privileged == Some(true) && sc.allow_privilege_escalation == Some(false) {
            errs.invalid(
                format!("{base}.securityContext"),
                "\"\"",
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            );
        }
    }
}

/// Lexical cleaning as Go's `path.Clean`, enough to compare mount points.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

fn env_var(errs: &mut Errs, eb: &str, e: &EnvVar, refs: &Refs<'_>) {
    let np = format!("{eb}.name");
    if e.name.is_empty() {
        errs.required(np);
    } else {
        env_name(errs, &np, &e.name);
    }
    let Some(from) = &e.value_from else {
        return;
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
    ]
    .iter()
    .filter(|s| **s)
    .count();
    match count {
        0 => errs.invalid(
            &vb,
            "\"\"",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ),
        1 => {}
        _ => errs.invalid(&vb, "\"\"", "may not have more than one field specified at a time"),
    }
    if let Some(f) = &from.field_ref {
        field_ref(errs, &format!("{vb}.fieldRef"), f, ENV_FIELD_PATHS);
    }
    if let Some(r) = &from.resource_field_ref {
        resource_field_ref(errs, &format!("{vb}.resourceFieldRef"), r);
    }
    if let Some(k) = &from.config_map_key_ref {
        let kb = format!("{vb}.configMapKeyRef");
        key_ref(
            errs,
            &kb,
            &k.name,
            &k.key,
            k.optional == Some(true),
            refs.config_maps.contains_key(&k.name),
            || refs.config_map_has_text(&k.name, &k.key),
        );
    }
    if let Some(k) = &from.secret_key_ref {
        let kb = format!("{vb}.secretKeyRef");
        key_ref(
            errs,
            &kb,
            &k.name,
            &k.key,
            k.optional == Some(true),
            refs.secrets.contains_key(&k.name),
            || refs.secret_has(&k.name, &k.key),
        );
    }
}

/// A `configMapKeyRef`/`secretKeyRef`: the document and key must be in the input,
/// unless `optional: true` (then a missing one leaves the variable unset).
fn key_ref(
    errs: &mut Errs,
    kb: &str,
    name: &str,
    key: &str,
    optional: bool,
    exists: bool,
    has_key: impl Fn() -> bool,
) {
    name_subdomain(errs, &format!("{kb}.name"), name);
    if key.is_empty() {
        errs.required(format!("{kb}.key"));
    }
    if name.is_empty() || key.is_empty() || optional {
        return;
    }
    if !exists {
        errs.not_found(format!("{kb}.name"), name);
    } else if !has_key() {
        errs.not_found(format!("{kb}.key"), key);
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
        }
    }
}

/// `resourceFieldRef` (env or downwardAPI volume): a known resource, a valid divisor.
fn resource_field_ref(
    errs: &mut Errs,
    base: &str,
    r: &k8s_openapi::api::core::v1::ResourceFieldSelector,
) {
    let p = format!("{base}.resource");
    if r.resource.is_empty() {
        errs.required(p);
    } else if !RESOURCE_FIELDS.contains(&r.resource.as_str()) {
        errs.unsupported(p, &r.resource, RESOURCE_FIELDS);
    }
    if let Some(d) = &r.divisor {
        quantity(errs, &format!("{base}.divisor"), &d.0);
    }
}
