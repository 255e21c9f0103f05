//! Which Pod fields podshim implements, which it ignores with a warning, and the walk
//! that refuses everything else by name.
//!
//! Rule of the house 5: an unsupported field is refused by name, never silently
//! ignored. These two tables are the single place that says what "supported" means;
//! grow `SUPPORTED` when the translator learns a field.

use std::collections::HashSet;
use std::sync::OnceLock;

use serde_json::Value;

use super::de::FieldPath;

/// Fields of a container (`spec.containers[*]` and `spec.initContainers[*]`) that
/// podshim implements. A path names a leaf: its whole value is accepted as is (maps
/// with free-form keys, lists of scalars).
const CONTAINER: &[&str] = &[
    "name",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "workingDir",
    "env[*].name",
    "env[*].value",
    "env[*].valueFrom.fieldRef.fieldPath",
    "env[*].valueFrom.fieldRef.apiVersion",
    "env[*].valueFrom.resourceFieldRef.resource",
    "env[*].valueFrom.resourceFieldRef.containerName",
    "env[*].valueFrom.resourceFieldRef.divisor",
    "env[*].valueFrom.configMapKeyRef.name",
    "env[*].valueFrom.configMapKeyRef.key",
    "env[*].valueFrom.configMapKeyRef.optional",
    "env[*].valueFrom.secretKeyRef.name",
    "env[*].valueFrom.secretKeyRef.key",
    "env[*].valueFrom.secretKeyRef.optional",
    "env[*].valueFrom.fileKeyRef.volumeName",
    "env[*].valueFrom.fileKeyRef.path",
    "env[*].valueFrom.fileKeyRef.key",
    "env[*].valueFrom.fileKeyRef.optional",
    "envFrom[*].configMapRef.name",
    "envFrom[*].configMapRef.optional",
    "envFrom[*].secretRef.name",
    "envFrom[*].secretRef.optional",
    "envFrom[*].prefix",
    "ports[*].containerPort",
    "ports[*].name",
    "ports[*].protocol",
    "ports[*].hostPort",
    "ports[*].hostIP",
    "volumeMounts[*].name",
    "volumeMounts[*].mountPath",
    "volumeMounts[*].readOnly",
    "volumeMounts[*].subPath",
    "volumeMounts[*].mountPropagation",
    "volumeMounts[*].recursiveReadOnly",
    "resources.limits.cpu",
    "resources.limits.memory",
    "resources.requests.cpu",
    "resources.requests.memory",
    "resizePolicy[*].resourceName",
    "resizePolicy[*].restartPolicy",
    "securityContext.runAsUser",
    "securityContext.runAsGroup",
    "securityContext.runAsNonRoot",
    "securityContext.privileged",
    "securityContext.procMount",
    "securityContext.readOnlyRootFilesystem",
    "securityContext.allowPrivilegeEscalation",
    "securityContext.capabilities.add",
    "securityContext.capabilities.drop",
    "securityContext.seccompProfile.type",
    "securityContext.seccompProfile.localhostProfile",
    "securityContext.appArmorProfile.type",
    "securityContext.appArmorProfile.localhostProfile",
    "securityContext.seLinuxOptions.user",
    "securityContext.seLinuxOptions.role",
    "securityContext.seLinuxOptions.type",
    "securityContext.seLinuxOptions.level",
    "securityContext.windowsOptions.gmsaCredentialSpecName",
    "securityContext.windowsOptions.gmsaCredentialSpec",
    "securityContext.windowsOptions.runAsUserName",
    "securityContext.windowsOptions.hostProcess",
    "stdin",
    "stdinOnce",
    "tty",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "lifecycle.postStart.exec.command",
    "lifecycle.postStart.httpGet.path",
    "lifecycle.postStart.httpGet.port",
    "lifecycle.postStart.httpGet.host",
    "lifecycle.postStart.httpGet.scheme",
    "lifecycle.postStart.httpGet.httpHeaders[*].name",
    "lifecycle.postStart.httpGet.httpHeaders[*].value",
    "lifecycle.postStart.sleep.seconds",
    "lifecycle.postStart.tcpSocket",
    "lifecycle.preStop.exec.command",
    "lifecycle.preStop.httpGet.path",
    "lifecycle.preStop.httpGet.port",
    "lifecycle.preStop.httpGet.host",
    "lifecycle.preStop.httpGet.scheme",
    "lifecycle.preStop.httpGet.httpHeaders[*].name",
    "lifecycle.preStop.httpGet.httpHeaders[*].value",
    "lifecycle.preStop.sleep.seconds",
    "lifecycle.preStop.tcpSocket",
    "lifecycle.stopSignal",
    // Container-level restarts (KEP-5307); on an init container `Always` makes
    // a native sidecar.
    "restartPolicy",
    "restartPolicyRules[*].action",
    "restartPolicyRules[*].exitCodes.operator",
    "restartPolicyRules[*].exitCodes.values",
];

/// Pod fields (outside containers) that podshim implements; leaves as in `CONTAINER`.
const POD: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.labels",
    "metadata.annotations",
    "metadata.creationTimestamp",
    // Pod-level resources (KEP-2837): the pod's cgroup.
    "spec.resources.limits.cpu",
    "spec.resources.limits.memory",
    "spec.resources.requests.cpu",
    "spec.resources.requests.memory",
    "spec.volumes[*].name",
    "spec.volumes[*].hostPath.path",
    "spec.volumes[*].hostPath.type",
    "spec.volumes[*].emptyDir.medium",
    "spec.volumes[*].emptyDir.sizeLimit",
    // A local volume under the store that outlives the pod (`workload::claims`).
    "spec.volumes[*].persistentVolumeClaim.claimName",
    "spec.volumes[*].persistentVolumeClaim.readOnly",
    "spec.volumes[*].configMap.name",
    "spec.volumes[*].configMap.items[*].key",
    "spec.volumes[*].configMap.items[*].path",
    "spec.volumes[*].configMap.items[*].mode",
    "spec.volumes[*].configMap.defaultMode",
    "spec.volumes[*].configMap.optional",
    "spec.volumes[*].secret.secretName",
    "spec.volumes[*].secret.items[*].key",
    "spec.volumes[*].secret.items[*].path",
    "spec.volumes[*].secret.items[*].mode",
    "spec.volumes[*].secret.defaultMode",
    "spec.volumes[*].secret.optional",
    "spec.volumes[*].downwardAPI.items[*].path",
    "spec.volumes[*].downwardAPI.items[*].fieldRef.fieldPath",
    "spec.volumes[*].downwardAPI.items[*].fieldRef.apiVersion",
    "spec.volumes[*].downwardAPI.items[*].resourceFieldRef.resource",
    "spec.volumes[*].downwardAPI.items[*].resourceFieldRef.containerName",
    "spec.volumes[*].downwardAPI.items[*].resourceFieldRef.divisor",
    "spec.volumes[*].downwardAPI.items[*].mode",
    "spec.volumes[*].downwardAPI.defaultMode",
    "spec.volumes[*].projected.defaultMode",
    "spec.volumes[*].projected.sources[*].configMap.name",
    "spec.volumes[*].projected.sources[*].configMap.items[*].key",
    "spec.volumes[*].projected.sources[*].configMap.items[*].path",
    "spec.volumes[*].projected.sources[*].configMap.items[*].mode",
    "spec.volumes[*].projected.sources[*].configMap.optional",
    "spec.volumes[*].projected.sources[*].secret.name",
    "spec.volumes[*].projected.sources[*].secret.items[*].key",
    "spec.volumes[*].projected.sources[*].secret.items[*].path",
    "spec.volumes[*].projected.sources[*].secret.items[*].mode",
    "spec.volumes[*].projected.sources[*].secret.optional",
    "spec.volumes[*].projected.sources[*].downwardAPI.items[*].path",
    "spec.volumes[*].projected.sources[*].downwardAPI.items[*].fieldRef.fieldPath",
    "spec.volumes[*].projected.sources[*].downwardAPI.items[*].fieldRef.apiVersion",
    "spec.volumes[*].projected.sources[*].downwardAPI.items[*].resourceFieldRef.resource",
    "spec.volumes[*].projected.sources[*].downwardAPI.items[*].resourceFieldRef.containerName",
    "spec.volumes[*].projected.sources[*].downwardAPI.items[*].resourceFieldRef.divisor",
    "spec.volumes[*].projected.sources[*].downwardAPI.items[*].mode",
    "spec.restartPolicy",
    "spec.terminationGracePeriodSeconds",
    "spec.activeDeadlineSeconds",
    "spec.hostname",
    "spec.subdomain",
    "spec.hostnameOverride",
    "spec.setHostnameAsFQDN",
    "spec.hostAliases[*].ip",
    "spec.hostAliases[*].hostnames",
    "spec.dnsPolicy",
    "spec.dnsConfig.nameservers",
    "spec.dnsConfig.searches",
    "spec.dnsConfig.options[*].name",
    "spec.dnsConfig.options[*].value",
    "spec.hostNetwork",
    "spec.hostPID",
    "spec.hostIPC",
    "spec.hostUsers",
    "spec.shareProcessNamespace",
    "spec.securityContext.runAsUser",
    "spec.securityContext.runAsGroup",
    "spec.securityContext.runAsNonRoot",
    "spec.securityContext.supplementalGroups",
    "spec.securityContext.supplementalGroupsPolicy",
    "spec.securityContext.fsGroup",
    "spec.securityContext.fsGroupChangePolicy",
    "spec.securityContext.sysctls[*].name",
    "spec.securityContext.sysctls[*].value",
    "spec.securityContext.seccompProfile.type",
    "spec.securityContext.seccompProfile.localhostProfile",
    "spec.securityContext.appArmorProfile.type",
    "spec.securityContext.appArmorProfile.localhostProfile",
    "spec.securityContext.seLinuxOptions.user",
    "spec.securityContext.seLinuxOptions.role",
    "spec.securityContext.seLinuxOptions.type",
    "spec.securityContext.seLinuxOptions.level",
    "spec.securityContext.seLinuxChangePolicy",
    "spec.securityContext.windowsOptions.gmsaCredentialSpecName",
    "spec.securityContext.windowsOptions.gmsaCredentialSpec",
    "spec.securityContext.windowsOptions.runAsUserName",
    "spec.securityContext.windowsOptions.hostProcess",
    "spec.enableServiceLinks",
    "spec.nodeName",
    "spec.os.name",
    // The downward API's spec.serviceAccountName (no token is mounted: there is
    // no API server to issue one; automountServiceAccountToken is warned about).
    "spec.serviceAccountName",
    "spec.serviceAccount",
];

/// The probe fields the supervisor runs, under each of the three probes of a
/// container.
const PROBE: &[&str] = &[
    "exec.command",
    "httpGet.path",
    "httpGet.port",
    "httpGet.host",
    "httpGet.scheme",
    "httpGet.httpHeaders[*].name",
    "httpGet.httpHeaders[*].value",
    "tcpSocket.port",
    "tcpSocket.host",
    "grpc.port",
    "grpc.service",
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
    "terminationGracePeriodSeconds",
];

const PROBES: &[&str] = &["startupProbe", "livenessProbe", "readinessProbe"];

/// Fields that only mean something to a cluster (scheduler, API server, controllers):
/// accepted, ignored, and reported with one warning line each.
const CLUSTER_ONLY: &[(&str, &str)] = &[
    ("metadata.resourceVersion", "API server bookkeeping"),
    ("metadata.generation", "API server bookkeeping"),
    ("metadata.selfLink", "API server bookkeeping"),
    ("metadata.managedFields", "API server bookkeeping"),
    ("metadata.ownerReferences", "garbage collection"),
    ("metadata.finalizers", "garbage collection"),
    ("spec.nodeSelector", "scheduling"),
    ("spec.affinity", "scheduling"),
    ("spec.tolerations", "scheduling"),
    ("spec.schedulerName", "scheduling"),
    ("spec.schedulingGates", "scheduling"),
    ("spec.priorityClassName", "scheduling"),
    ("spec.priority", "scheduling"),
    ("spec.preemptionPolicy", "scheduling"),
    ("spec.topologySpreadConstraints", "scheduling"),
    ("spec.readinessGates", "service endpoints"),
    ("spec.automountServiceAccountToken", "service accounts"),
    // Projected sources that only an API server issues: a bound service account
    // token (TokenRequest), the trust anchors of ClusterTrustBundle objects, a
    // certificate from a PodCertificateRequest's signer. As for the service
    // account fields above, there is no API for the pod to present them to, so
    // they are warned about and skipped, and the rest of the volume is projected:
    // the `kube-api-access-*` volume of a Pod read back from a cluster then runs
    // with its ConfigMap and downward API files. (podman kube play refuses every
    // projected volume, "... are currently the only supported VolumeSource",
    // which would refuse such a Pod outright.)
    (
        "spec.volumes[*].projected.sources[*].serviceAccountToken",
        "service accounts: no API server issues a token",
    ),
    (
        "spec.volumes[*].projected.sources[*].clusterTrustBundle",
        "ClusterTrustBundle objects live in a cluster",
    ),
    (
        "spec.volumes[*].projected.sources[*].podCertificate",
        "a cluster signer issues pod certificates",
    ),
    ("status", "written by the cluster"),
];

struct Tables {
    /// Supported leaves: accepted whole.
    leaves: HashSet<String>,
    /// Every proper prefix of a leaf: objects and lists to walk into.
    interior: HashSet<String>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut leaves: HashSet<String> = POD.iter().map(|s| s.to_string()).collect();
        for base in ["spec.containers[*]", "spec.initContainers[*]"] {
            leaves.extend(CONTAINER.iter().map(|f| format!("{base}.{f}")));
            for probe in PROBES {
                leaves.extend(PROBE.iter().map(|f| format!("{base}.{probe}.{f}")));
            }
        }
        build_tables(leaves)
    })
}

fn build_tables(leaves: HashSet<String>) -> Tables {
    let mut interior = HashSet::new();
    for leaf in &leaves {
        for (i, c) in leaf.char_indices() {
            if c == '.' || c == '[' {
                interior.insert(leaf[..i].to_string());
            }
        }
    }
    Tables { leaves, interior }
}

/// What the walk found besides supported fields.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// Fields present, known to Kubernetes, but not implemented.
    pub(crate) unsupported: Vec<FieldPath>,
    /// One line per cluster-only field present.
    pub(crate) warnings: Vec<String>,
}

/// Walks a Pod document (as parsed) and sorts each field present into supported,
/// cluster-only (warned) or unsupported (refused). Paths in `unknown` were already
/// reported as unknown fields and are skipped. A `null`, `{}` or `[]` value asks for
/// nothing (Kubernetes treats them as unset; `kubectl create --dry-run -o yaml` writes
/// `status: {}`), so it is neither refused nor warned about.
pub(crate) fn check_pod(doc: &Value, unknown: &[FieldPath]) -> Findings {
    let mut findings = Findings::default();
    let table = Table {
        tables: tables(),
        cluster_only: CLUSTER_ONLY,
    };
    walk(&table, doc, &FieldPath::default(), unknown, &mut findings);
    findings
}

/// The same walk over another kind's document (a workload without its pod
/// template, a PersistentVolumeClaim), against that kind's own tables.
pub(crate) fn check_object(
    doc: &Value,
    unknown: &[FieldPath],
    supported: &[&str],
    cluster_only: &[(&str, &str)],
) -> Findings {
    let tables = build_tables(supported.iter().map(|s| s.to_string()).collect());
    let mut findings = Findings::default();
    let table = Table {
        tables: &tables,
        cluster_only,
    };
    walk(&table, doc, &FieldPath::default(), unknown, &mut findings);
    findings
}

struct Table<'a> {
    tables: &'a Tables,
    cluster_only: &'a [(&'a str, &'a str)],
}

fn walk(
    table: &Table<'_>,
    value: &Value,
    path: &FieldPath,
    unknown: &[FieldPath],
    out: &mut Findings,
) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = path.key(key);
                if is_empty(child) || unknown.contains(&child_path) {
                    continue;
                }
                let pattern = child_path.pattern();
                if is_resource_map(&path.pattern()) && is_extended_resource(key) {
                    // Validated with the other resources (manifest::validate).
                    out.warnings.push(format!(
                        "{child_path}: scheduled by a cluster: podshim gives devices only where a CDI spec names the resource (--cdi-spec-dir)"
                    ));
                } else if let Some((_, why)) =
                    table.cluster_only.iter().find(|(p, _)| *p == pattern)
                {
                    out.warnings
                        .push(format!("{child_path}: ignored: cluster-only field ({why})"));
                } else if table.tables.leaves.contains(&pattern) {
                    // Accepted whole.
                } else if table.tables.interior.contains(&pattern) {
                    walk(table, child, &child_path, unknown, out);
                } else {
                    out.unsupported.push(child_path);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(table, item, &path.index(i), unknown, out);
            }
        }
        _ => {}
    }
}

/// A container's `resources.limits` or `resources.requests`.
fn is_resource_map(pattern: &str) -> bool {
    [
        "spec.containers[*].resources.",
        "spec.initContainers[*].resources.",
    ]
    .iter()
    .any(|base| {
        pattern
            .strip_prefix(base)
            .is_some_and(|rest| rest == "limits" || rest == "requests")
    })
}

/// An extended resource (`example.com/dongle`, `nvidia.com/gpu`): a
/// domain-qualified name outside `kubernetes.io` (IsExtendedResourceName),
/// and not a quota's `requests.` name.
pub(crate) fn is_extended_resource(name: &str) -> bool {
    let Some((domain, rest)) = name.split_once('/') else {
        return false;
    };
    let native = domain == "kubernetes.io" || domain.ends_with(".kubernetes.io");
    // IsQualifiedName: a DNS subdomain prefix and a name of at most 63
    // alphanumerics, '-', '_' or '.', alphanumeric at both ends.
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let qualified = crate::model::DnsSubdomain::parse(domain).is_ok()
        && rest.len() <= 63
        && ends(rest.chars().next())
        && ends(rest.chars().last())
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    !native && qualified && !name.starts_with("requests.")
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}
