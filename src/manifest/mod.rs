//! YAML/JSON → podshim's typed, validated [`model::Pod`] (ConfigMap and Secret
//! documents of the same input are resolved into it).
//!
//! Every error names the field path (`spec.containers[0].imagee: unknown field`); all
//! errors of one input are reported at once.
//!
//! The steps, in order:
//! 1. YAML (JSON is YAML) → one `serde_json::Value` per non-empty document.
//! 2. Dispatch on `apiVersion`/`kind`: `v1` Pod, ConfigMap, Secret; anything else is
//!    refused by name. Exactly one Pod.
//! 3. Typed decoding into k8s-openapi types with a strict, path-tracking
//!    deserializer (`de`): wrong types and unknown fields, with their paths.
//! 4. The field tables (`fields`): fields podshim does not implement are refused,
//!    cluster-only fields are accepted with a warning.
//! 5. Kubernetes' validation rules and defaults, applied while the API types are
//!    lowered into the model (`validate`, the one validator).

mod de;
mod defaults;
mod fields;
mod validate;
mod workloads;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};

use crate::model;
use crate::model::workload::{Claim, Workload};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use de::{FieldPath, Seg};

/// The message of a field that Kubernetes knows but podshim does not implement; such
/// an error displays as `not supported: <path>`.
pub const NOT_SUPPORTED: &str = "not supported";

/// One field-level problem in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Which document of a multi-document input (1-based, as displayed). Set when the
    /// input has several documents, and on document-level errors (a refused kind).
    pub document: Option<usize>,
    /// The field path, e.g. `spec.containers[0].image`; empty for document-level
    /// and syntax errors.
    pub path: String,
    /// What is wrong, e.g. `unknown field`, `Required value`.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(doc) = self.document {
            write!(f, "document {doc}: ")?;
        }
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else if self.message == NOT_SUPPORTED {
            write!(f, "{NOT_SUPPORTED}: {}", self.path)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{source_name}: cannot read: {err}")]
    Read {
        source_name: String,
        #[source]
        err: std::io::Error,
    },
    /// Displays one line per error, each `<source>: <error>`.
    #[error("{}", display_invalid(source_name, errors))]
    Invalid {
        source_name: String,
        errors: Vec<FieldError>,
    },
}

fn display_invalid(source_name: &str, errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{source_name}: {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A Pod, validated and defaulted (`metadata.namespace` = `default`;
/// `metadata.uid` derived from namespace/name when absent, so that the same input
/// always yields the same bundles; `spec.restartPolicy` = `Always`,
/// `spec.terminationGracePeriodSeconds` = 30, port `protocol` = `TCP`, requests =
/// limits where unset), with what its ConfigMaps and Secrets hold resolved into it.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub pod: model::Pod,
    /// One line per accepted cluster-only field (`spec.nodeSelector: ignored ...`),
    /// and per envFrom key skipped as the kubelet skips it.
    pub warnings: Vec<String>,
}

/// Everything an input asks for: its bare Pods and its controllers' pods (named
/// and labelled as their controllers name them), the controllers, and the claims.
#[derive(Debug, Clone, Default)]
pub struct ManifestSet {
    /// Every pod wanted now, in document order (a StatefulSet's by ordinal). A
    /// Job's pods are not here: its controller makes them ([`Template`]).
    pub pods: Vec<model::Pod>,
    pub workloads: Vec<Workload>,
    /// PersistentVolumeClaim documents and StatefulSet claims, one per ordinal.
    pub claims: Vec<Claim>,
    /// Each controller's pod template, by the controller's uid.
    pub templates: BTreeMap<String, Template>,
    /// Kinds skipped under `skip_unsupported_kinds`, and cluster-only fields.
    pub warnings: Vec<String>,
}

impl ManifestSet {
    /// The pods of `workload`, in order.
    pub fn pods_of<'a>(&'a self, workload: &'a Workload) -> impl Iterator<Item = &'a model::Pod> {
        self.pods
            .iter()
            .filter(move |p| p.workload.as_ref().is_some_and(|o| o.uid == workload.uid))
    }
    /// Pods no controller of the input owns.
    pub fn bare_pods(&self) -> impl Iterator<Item = &model::Pod> {
        self.pods.iter().filter(|p| p.workload.is_none())
    }
}

/// How to read an input.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Skip kinds a single node cannot serve (Service, Ingress, ...) with a
    /// warning instead of refusing the input.
    pub skip_unsupported_kinds: bool,
}

/// A controller's pod template, able to make its pods: what a Job's controller
/// makes a pod from at each attempt.
#[derive(Debug, Clone)]
pub struct Template {
    pod: Pod,
    /// The namespace's ConfigMaps and Secrets, shared by its templates.
    config_maps: std::sync::Arc<BTreeMap<String, ConfigMap>>,
    secrets: std::sync::Arc<BTreeMap<String, Secret>>,
    /// The pods' controller (a Deployment's ReplicaSet).
    owner: model::workload::OwnerReference,
    /// The workload of the manifest.
    workload: model::workload::OwnerReference,
    hash: String,
    /// Labels the controller adds (pod-template-hash, job-name, ...).
    labels: BTreeMap<String, String>,
}

impl Template {
    /// The pod named `name`, as its controller makes it (validated as any pod).
    pub fn instantiate(&self, name: &str) -> Result<model::Pod, String> {
        self.instantiate_with(name, &BTreeMap::new(), None)
    }

    /// An Indexed Job's pod for `index`, as the job controller makes it: the
    /// `batch.kubernetes.io/job-completion-index` annotation and label, the
    /// hostname `<job>-<index>` (the template's replaced), and
    /// JOB_COMPLETION_INDEX in every container and init container that does
    /// not set it itself (addCompletionIndexEnvVariables).
    pub fn instantiate_index(&self, name: &str, index: u32) -> Result<model::Pod, String> {
        const INDEX: &str = "batch.kubernetes.io/job-completion-index";
        let mut t = self.clone();
        let value = index.to_string();
        t.pod
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(INDEX.to_string(), value.clone());
        if let Some(spec) = t.pod.spec.as_mut() {
            // Whatever the template says (manageJob sets it for every index);
            // ValidateJob saw that the last index's is a label.
            spec.hostname = Some(format!("{}-{index}", self.workload.name));
            let containers = spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten());
            for c in containers {
                let env = c.env.get_or_insert_with(Vec::new);
                if !env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX") {
                    env.push(k8s_openapi::api::core::v1::EnvVar {
                        name: "JOB_COMPLETION_INDEX".into(),
                        value: Some(value.clone()),
                        value_from: None,
                    });
                }
            }
        }
        let labels = BTreeMap::from([(INDEX.to_string(), value)]);
        t.instantiate_with(name, &labels, None)
    }

    fn instantiate_with(
        &self,
        name: &str,
        extra_labels: &BTreeMap<String, String>,
        host: Option<(&str, Option<&str>)>,
    ) -> Result<model::Pod, String> {
        let mut pod = self.pod.clone();
        pod.metadata.name = Some(name.to_string());
        pod.metadata.uid = None;
        let labels = pod.metadata.labels.get_or_insert_with(Default::default);
        labels.extend(self.labels.clone());
        labels.extend(extra_labels.clone());
        if let (Some((hostname, subdomain)), Some(spec)) = (host, pod.spec.as_mut()) {
            spec.hostname = Some(hostname.to_string());
            if let Some(sub) = subdomain {
                spec.subdomain = Some(sub.to_string());
            }
        }
        let refs = validate::Refs {
            config_maps: &self.config_maps,
            secrets: &self.secrets,
        };
        let lowered = validate::pod(&pod, &refs);
        match lowered.pod {
            Some(mut p) => {
                p.owner_references = vec![self.owner.clone()];
                p.workload = Some(self.workload.clone());
                p.template_hash = self.hash.clone();
                Ok(p)
            }
            None => Err(lowered
                .errors
                .iter()
                .map(|(path, m)| format!("spec.template.{path}: {m}"))
                .collect::<Vec<_>>()
                .join("; ")),
        }
    }
}

/// Reads `path` (`-` is stdin) and parses it: exactly one Pod.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let (text, source_name) = read_input(path)?;
    parse(&text, &source_name)
}

/// Reads `path` (`-` is stdin) and parses every object in it.
pub fn load_set(path: &Path, opts: ParseOptions) -> Result<ManifestSet, ManifestError> {
    let (text, source_name) = read_input(path)?;
    parse_set(&text, &source_name, opts)
}

/// The most a manifest may hold: the API server's request limit (3 MiB) is the
/// largest object anyone can have written; a file of many is allowed more.
const MAX_INPUT: u64 = 16 << 20;

/// The text of `path` (`-` is stdin), bounded, and the name errors give it.
pub fn read_input(path: &Path) -> Result<(String, String), ManifestError> {
    read_input_with(path, true)
}

/// [`read_input`]; with `follow` false a link at `path` is refused (what
/// `watch` reads: a directory's entries, which anyone may swap).
pub fn read_input_with(path: &Path, follow: bool) -> Result<(String, String), ManifestError> {
    use std::io::Read;
    let source_name = path.display().to_string();
    let read_err = |err| ManifestError::Read {
        source_name: source_name.clone(),
        err,
    };
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
    } else {
        // Never blocks on a FIFO; only a regular file is read.
        use std::os::unix::fs::OpenOptionsExt;
        let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
        if !follow {
            flags |= libc::O_NOFOLLOW;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)
            .map_err(read_err)?;
        if !file.metadata().map_err(read_err)?.is_file() {
            return Err(read_err(std::io::Error::other("not a regular file")));
        }
        file.take(MAX_INPUT + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
    }
    if bytes.len() as u64 > MAX_INPUT {
        return Err(read_err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_INPUT >> 20
        ))));
    }
    let text =
        String::from_utf8(bytes).map_err(|_| read_err(std::io::Error::other("not UTF-8 text")))?;
    Ok((text, source_name))
}

/// Parses YAML or JSON text holding exactly one Pod (and its ConfigMaps and
/// Secrets): what `generate` and the tests read.
pub fn parse(text: &str, source_name: &str) -> Result<Manifest, ManifestError> {
    let set = parse_set(text, source_name, ParseOptions::default())?;
    let invalid = |message: String| ManifestError::Invalid {
        source_name: source_name.to_string(),
        errors: vec![FieldError {
            document: None,
            path: String::new(),
            message,
        }],
    };
    if let Some(w) = set.workloads.first() {
        return Err(invalid(format!(
            "document {}: a {} (this command takes one Pod: `podshim up` runs controllers)",
            w.document,
            w.kind.as_str()
        )));
    }
    let mut pods = set.pods.into_iter();
    match (pods.next(), pods.next()) {
        (Some(pod), None) => Ok(Manifest {
            pod,
            warnings: set.warnings,
        }),
        (Some(_), Some(second)) => Err(invalid(format!(
            "more than one Pod ({second}, ...): this command takes one; `podshim up` runs them all",
            second = second.key
        ))),
        (None, _) => Err(invalid("no Pod in the input".into())),
    }
}

/// Parses YAML or JSON text, one or more documents (and `List`s), into every
/// object it asks for.
pub fn parse_set(
    text: &str,
    source_name: &str,
    opts: ParseOptions,
) -> Result<ManifestSet, ManifestError> {
    let invalid = |errors| ManifestError::Invalid {
        source_name: source_name.to_string(),
        errors,
    };
    let docs = read_documents(text).map_err(|e| invalid(vec![e]))?;
    let mut p = Parser {
        multi: docs.len() > 1,
        opts,
        prefix: String::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
        pods: Vec::new(),
        controllers: Vec::new(),
        claim_docs: Vec::new(),
        config_maps: BTreeMap::new(),
        secrets: BTreeMap::new(),
        found_kinds: Vec::new(),
        namespaces: Vec::new(),
    };
    for (i, doc) in docs.iter().enumerate() {
        p.document(i + 1, doc);
    }
    let asked = |k: &String| k == "Pod" || model::workload::WorkloadKind::parse(k).is_some();
    // A file of claims alone makes their volumes (as `kubectl apply` creates
    // them); one of ConfigMaps or Secrets alone would do nothing.
    if p.pods.is_empty()
        && p.controllers.is_empty()
        && p.claim_docs.is_empty()
        && !p.found_kinds.iter().any(asked)
    {
        let message = if p.found_kinds.is_empty() {
            "no Pod in the input".to_string()
        } else {
            format!("no Pod in the input (found: {})", p.found_kinds.join(", "))
        };
        p.errors.push(FieldError {
            document: None,
            path: String::new(),
            message,
        });
    }
    let set = p.finish();
    match set {
        Some(set) if p.errors.is_empty() => Ok(set),
        _ => Err(invalid(p.errors)),
    }
}

/// Splits the input into documents. Empty documents (and `null` ones) are skipped,
/// as kubectl does. A syntax error names its line and column.
fn read_documents(text: &str) -> Result<Vec<Value>, FieldError> {
    let options = serde_saphyr::options! {
        // `mode: 0644` means octal in Kubernetes manifests: kubectl's YAML 1.1
        // reader takes a leading 0 as base 8.
        legacy_octal_numbers: true,
        with_snippet: false,
    };
    serde_saphyr::from_multiple_with_options::<Value>(text, options).map_err(|e| FieldError {
        document: None,
        path: String::new(),
        message: syntax_message(&e),
    })
}

fn syntax_message(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    // serde-saphyr ends its message with " at line L, column C"; put the place first,
    // and drop its advice about its own options.
    let text = text.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    match e.location() {
        Some(loc) => {
            let message = text
                .rfind(" at line ")
                .map_or(text.as_str(), |i| &text[..i]);
            format!(
                "YAML syntax error at line {}, column {}: {message}",
                loc.line(),
                loc.column()
            )
        }
        None => format!("YAML syntax error: {text}"),
    }
}

/// A typed Pod and the paths whose validation errors would repeat a decoding error.
struct DecodedPod {
    n: usize,
    prefix: String,
    pod: Pod,
    skip: Vec<FieldPath>,
}

/// A controller document, decoded; lowered once every ConfigMap is known.
struct PendingController {
    n: usize,
    prefix: String,
    name: model::DnsSubdomain,
    namespace: model::DnsLabel,
    uid: String,
    controller: workloads::Controller,
    /// The template as a Pod (its namespace the controller's), and its hash.
    template: DecodedPod,
    hash: String,
}

struct Parser {
    multi: bool,
    opts: ParseOptions,
    /// Put before every path reported: `items[2].` inside a List,
    /// `spec.template.` in a controller's template.
    prefix: String,
    errors: Vec<FieldError>,
    warnings: Vec<String>,
    pods: Vec<DecodedPod>,
    controllers: Vec<PendingController>,
    /// PersistentVolumeClaim documents: the document, its prefix, the claim
    /// (namespace as written, if any).
    claim_docs: Vec<(usize, String, Claim, bool)>,
    /// By (namespace as written or "", name).
    config_maps: BTreeMap<(String, String), ConfigMap>,
    secrets: BTreeMap<(String, String), Secret>,
    /// Kinds met, once each, to explain a missing Pod.
    found_kinds: Vec<String>,
    /// The namespaces that ConfigMap and Secret documents name, by document.
    namespaces: Vec<(usize, String, String)>,
}

/// Kinds a single node cannot serve, refused by name (or skipped under
/// `skip_unsupported_kinds`), with why.
const CLUSTER_KINDS: &[(&str, &str)] = &[
    (
        "Service",
        "no kube-proxy: reach pods by their IPs or hostPorts",
    ),
    ("Ingress", "no ingress controller"),
    (
        "CronJob",
        "no scheduler of jobs: run `podshim up` from cron or a systemd timer",
    ),
    ("HorizontalPodAutoscaler", "no metrics pipeline"),
    ("PodDisruptionBudget", "no eviction API"),
    ("NetworkPolicy", "no network policy controller"),
    ("ServiceAccount", "no API server issues tokens"),
    ("Role", "no API server"),
    ("RoleBinding", "no API server"),
    ("ClusterRole", "no API server"),
    ("ClusterRoleBinding", "no API server"),
    (
        "Namespace",
        "namespaces need no object here: pods name theirs",
    ),
    (
        "PersistentVolume",
        "claims get local volumes under the store",
    ),
    ("StorageClass", "claims get local volumes under the store"),
    ("Endpoints", "no kube-proxy"),
    ("EndpointSlice", "no kube-proxy"),
    ("LimitRange", "no admission control"),
    ("ResourceQuota", "no admission control"),
    ("PodTemplate", "nothing here reads PodTemplate objects"),
];

/// The apiVersion each kind podshim reads is served at.
fn api_version_of(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Pod" | "ConfigMap" | "Secret" | "PersistentVolumeClaim" | "List" => "v1",
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => "apps/v1",
        "Job" => "batch/v1",
        _ => return None,
    })
}

impl Parser {
    /// An error at a field of document `n`.
    fn field_error(&mut self, n: usize, path: impl fmt::Display, message: impl Into<String>) {
        let path = path.to_string();
        let path = match (self.prefix.is_empty(), path.is_empty()) {
            (true, _) => path,
            (false, true) => self.prefix.trim_end_matches('.').to_string(),
            (false, false) => format!("{}{path}", self.prefix),
        };
        self.errors.push(FieldError {
            document: self.multi.then_some(n),
            path,
            message: message.into(),
        });
    }

    /// An error about document `n` as a whole: always names the document.
    fn document_error(&mut self, n: usize, path: &str, message: String) {
        let path = match (self.prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_string(),
            (false, true) => self.prefix.trim_end_matches('.').to_string(),
            (false, false) => format!("{}{path}", self.prefix),
        };
        self.errors.push(FieldError {
            document: Some(n),
            path,
            message,
        });
    }

    fn document(&mut self, n: usize, doc: &Value) {
        let Value::Object(map) = doc else {
            self.document_error(
                n,
                "",
                "not a Kubernetes object (expected a mapping with apiVersion and kind)".into(),
            );
            return;
        };
        let kind = match map.get("kind") {
            Some(Value::String(k)) if !k.is_empty() => k.as_str(),
            _ => {
                self.document_error(n, "kind", "Required value".into());
                return;
            }
        };
        let Some(want) = api_version_of(kind) else {
            let why = CLUSTER_KINDS
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or("podshim runs Pods and their controllers", |(_, why)| why);
            if self.opts.skip_unsupported_kinds {
                let name = map
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                self.warnings.push(format!(
                    "document {n}: {}{kind} {name}: skipped: not served on one node ({why})",
                    self.prefix
                ));
            } else {
                self.document_error(
                    n,
                    "",
                    format!(
                        "kind {kind} is not supported ({why}; podshim reads Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, ConfigMap, Secret, PersistentVolumeClaim, List; --skip-unsupported-kinds skips the others)"
                    ),
                );
            }
            return;
        };
        if !self.found_kinds.iter().any(|k| k == kind) {
            self.found_kinds.push(kind.to_string());
        }
        match map.get("apiVersion") {
            Some(Value::String(v)) if v == want => {}
            Some(Value::String(v)) if !v.is_empty() => {
                self.document_error(
                    n,
                    "apiVersion",
                    format!("Unsupported value: {v:?}: supported values: {want:?}"),
                );
                return;
            }
            _ => {
                self.document_error(n, "apiVersion", "Required value".into());
                return;
            }
        }
        match kind {
            "List" => {
                if !self.prefix.is_empty() {
                    self.document_error(n, "", "a List inside a List".into());
                    return;
                }
                let items = match map.get("items") {
                    Some(Value::Array(items)) => items.clone(),
                    None | Some(Value::Null) => Vec::new(),
                    Some(_) => {
                        self.document_error(n, "items", "invalid type: expected a list".into());
                        return;
                    }
                };
                self.multi = true;
                for (i, item) in items.iter().enumerate() {
                    self.prefix = format!("items[{i}].");
                    self.document(n, item);
                }
                self.prefix.clear();
            }
            "Pod" => self.pod_document(n, doc),
            "ConfigMap" => {
                let (Some(cm), _, skip) = self.decode::<ConfigMap>(n, doc) else {
                    return;
                };
                let mut errs = validate::Errs::default();
                if let Some(data) = &cm.data {
                    validate::data_keys(&mut errs, "data", data.keys());
                }
                if let Some(data) = &cm.binary_data {
                    validate::data_keys(&mut errs, "binaryData", data.keys());
                }
                // ValidateConfigMap: data and binaryData at most 1 MiB together.
                if config_map_bytes(&cm) > MAX_OBJECT_DATA {
                    errs.0.push((
                        String::new(),
                        format!("Too long: must have at most {MAX_OBJECT_DATA} bytes"),
                    ));
                }
                self.named_document(n, cm, errs, &skip, |p| &mut p.config_maps);
            }
            "Secret" => {
                let (Some(secret), _, skip) = self.decode::<Secret>(n, doc) else {
                    return;
                };
                let mut errs = validate::Errs::default();
                if let Some(data) = &secret.data {
                    validate::data_keys(&mut errs, "data", data.keys());
                }
                if let Some(data) = &secret.string_data {
                    validate::data_keys(&mut errs, "stringData", data.keys());
                }
                // ValidateSecret: data at most 1 MiB (MaxSecretSize).
                if secret_bytes(&secret) > MAX_OBJECT_DATA {
                    errs.0.push((
                        "data".into(),
                        format!("Too long: must have at most {MAX_OBJECT_DATA} bytes"),
                    ));
                }
                self.named_document(n, secret, errs, &skip, |p| &mut p.secrets);
            }
            "PersistentVolumeClaim" => self.claim_document(n, doc),
            other => {
                let kind = model::workload::WorkloadKind::parse(other)
                    .expect("api_version_of knows only these kinds");
                self.controller_document(n, kind, doc);
            }
        }
    }

    fn pod_document(&mut self, n: usize, doc: &Value) {
        let (pod, skip) = self.decode_pod(n, doc);
        if let Some(pod) = pod {
            self.pods.push(DecodedPod {
                n,
                prefix: self.prefix.clone(),
                pod,
                skip,
            });
        }
    }

    /// Decodes a Pod document (a Pod, or a controller's template as one) and
    /// checks its fields against the Pod's tables.
    fn decode_pod(&mut self, n: usize, doc: &Value) -> (Option<Pod>, Vec<FieldPath>) {
        let (pod, unknown, skip) = self.decode::<Pod>(n, doc);
        let findings = fields::check_pod(doc, &unknown);
        self.report_findings(n, findings, &skip);
        (pod, skip)
    }

    /// Refuses the unsupported fields the walk found (not under `skip`, which
    /// had errors already) and keeps its warnings, with this document's paths.
    fn report_findings(&mut self, n: usize, findings: fields::Findings, skip: &[FieldPath]) {
        for path in findings.unsupported {
            if !under_any(&path, skip) {
                self.field_error(n, path, NOT_SUPPORTED);
            }
        }
        self.warnings.extend(
            findings
                .warnings
                .into_iter()
                .map(|w| format!("{}{w}", self.prefix)),
        );
    }

    /// Decodes a kind's own fields (its template set aside) and checks them
    /// against the kind's table.
    fn object_fields<T: serde::de::DeserializeOwned>(
        &mut self,
        n: usize,
        kind: &str,
        doc: &Value,
    ) -> Option<Vec<FieldPath>> {
        let (value, unknown, skip) = self.decode::<T>(n, doc);
        let findings = workloads::check_fields(kind, doc, &unknown);
        self.report_findings(n, findings, &skip);
        value.map(|_| skip)
    }

    fn claim_document(&mut self, n: usize, doc: &Value) {
        use k8s_openapi::api::core::v1::PersistentVolumeClaim;
        let Some(skip) =
            self.object_fields::<PersistentVolumeClaim>(n, "PersistentVolumeClaim", doc)
        else {
            return;
        };
        let mut errs = validate::Errs::default();
        let claim = workloads::claim(&mut errs, doc);
        let explicit = doc
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        self.report(n, errs, &skip);
        if let Some(claim) = claim {
            let prefix = self.prefix.clone();
            self.claim_docs.push((n, prefix, claim, explicit));
        }
    }

    fn controller_document(&mut self, n: usize, kind: model::workload::WorkloadKind, doc: &Value) {
        use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch};
        use model::workload::WorkloadKind as K;
        // The template is decoded as a Pod below, with its own paths.
        let mut shell = doc.clone();
        let template = shell
            .get_mut("spec")
            .and_then(|s| s.as_object_mut())
            .and_then(|s| s.insert("template".into(), Value::Object(Default::default())));
        let skip = match kind {
            K::Deployment => self.object_fields::<apps::Deployment>(n, kind.as_str(), &shell),
            K::ReplicaSet => self.object_fields::<apps::ReplicaSet>(n, kind.as_str(), &shell),
            K::StatefulSet => self.object_fields::<apps::StatefulSet>(n, kind.as_str(), &shell),
            K::DaemonSet => self.object_fields::<apps::DaemonSet>(n, kind.as_str(), &shell),
            K::Job => self.object_fields::<batch::Job>(n, kind.as_str(), &shell),
        };
        let Some(skip) = skip else { return };
        let mut errs = validate::Errs::default();
        let name = workloads::controller_name(&mut errs, kind, doc);
        let namespace = workloads::namespace_of(&mut errs, doc);
        let uid = doc
            .get("metadata")
            .and_then(|m| m.get("uid"))
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty());
        let uid = match uid {
            Some(u) => errs
                .name("metadata.uid", u, model::PodUid::parse(u))
                .map(|u| u.to_string()),
            None => None,
        };
        let mut controller = workloads::controller(&mut errs, kind, doc);
        let Some(template) = template.filter(|t| !t.is_null()) else {
            errs.required("spec.template");
            self.report(n, errs, &skip);
            return;
        };
        // A Job's pods must not restart in place forever; a controller's must.
        let restart = template
            .get("spec")
            .and_then(|s| s.get("restartPolicy"))
            .and_then(Value::as_str);
        match (kind, restart) {
            (K::Job, None) => errs.required_because(
                "spec.template.spec.restartPolicy",
                "valid values: \"OnFailure\", \"Never\"",
            ),
            (K::Job, Some("OnFailure")) => {
                if let Some(job) = controller.job.as_mut() {
                    job.restart_on_failure = true;
                    if !job.pod_failure_policy.is_empty() {
                        errs.invalid_str(
                            "spec.template.spec.restartPolicy",
                            "OnFailure",
                            "only \"Never\" is supported when podFailurePolicy is specified",
                        );
                    }
                }
            }
            (K::Job, Some("Never")) => {}
            (K::Job, Some(other)) => errs.unsupported(
                "spec.template.spec.restartPolicy",
                other,
                &["OnFailure", "Never"],
            ),
            (_, None | Some("Always")) => {}
            (_, Some(other)) => {
                errs.unsupported("spec.template.spec.restartPolicy", other, &["Always"])
            }
        }
        if kind != K::Job
            && template
                .get("spec")
                .and_then(|s| s.get("activeDeadlineSeconds"))
                .is_some_and(|v| !v.is_null())
        {
            errs.forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                &format!(
                    "activeDeadlineSeconds in {} is not Supported",
                    kind.as_str()
                ),
            );
        }
        // The template's labels must satisfy the selector
        // (ValidatePodTemplateSpecForReplicaSet).
        let labels: BTreeMap<String, String> = template
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(sel) = &controller.selector
            && !sel.matches(&labels)
        {
            errs.invalid(
                "spec.template.metadata.labels",
                format!("{labels:?}"),
                "`selector` does not match template `labels`",
            );
        }
        self.report(n, errs, &skip);
        let hash = workloads_hash(&template);
        // The template as a Pod in the controller's namespace.
        let mut pod_doc = serde_json::Map::new();
        pod_doc.insert("apiVersion".into(), Value::String("v1".into()));
        pod_doc.insert("kind".into(), Value::String("Pod".into()));
        let mut meta = template
            .get("metadata")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| Value::Object(Default::default()));
        if let Some(ns) = doc
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .filter(|v| !v.is_null())
        {
            meta["namespace"] = ns.clone();
        }
        pod_doc.insert("metadata".into(), meta);
        if let Some(spec) = template.get("spec") {
            pod_doc.insert("spec".into(), spec.clone());
        }
        let pod_doc = Value::Object(pod_doc);
        let outer = std::mem::take(&mut self.prefix);
        self.prefix = format!("{outer}spec.template.");
        let (pod, pod_skip) = self.decode_pod(n, &pod_doc);
        let template_prefix = std::mem::replace(&mut self.prefix, outer);
        let (Some(name), Some(namespace), Some(pod)) = (name, namespace, pod) else {
            return;
        };
        let uid = uid.unwrap_or_else(|| {
            defaults::derived_uid(namespace.as_str(), &format!("{}/{}", kind.as_str(), name))
        });
        self.controllers.push(PendingController {
            n,
            prefix: self.prefix.clone(),
            name,
            namespace,
            uid,
            controller,
            template: DecodedPod {
                n,
                prefix: template_prefix,
                pod,
                skip: pod_skip,
            },
            hash,
        });
    }

    /// Reports validation problems of document `n` (not under `skip`).
    fn report(&mut self, n: usize, errs: validate::Errs, skip: &[FieldPath]) {
        let skip: Vec<String> = skip.iter().map(|p| p.to_string()).collect();
        for (path, message) in errs.0 {
            if !skip.iter().any(|s| path_is_under(&path, s)) {
                self.field_error(n, path, message);
            }
        }
    }

    /// The input's namespace for objects that name none: the one namespace all
    /// its pods and controllers share (a ConfigMap written beside a Pod of
    /// namespace `x` is the Pod's), else `default`.
    fn input_namespace(&self) -> String {
        let mut all = self.pod_namespaces();
        all.sort();
        all.dedup();
        match all.as_slice() {
            [one] => one.clone(),
            _ => defaults::DEFAULT_NAMESPACE.into(),
        }
    }

    /// The namespace of every Pod and controller, in document order.
    fn pod_namespaces(&self) -> Vec<String> {
        self.pods
            .iter()
            .map(|p| {
                p.pod
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| defaults::DEFAULT_NAMESPACE.into())
            })
            .chain(self.controllers.iter().map(|c| c.namespace.to_string()))
            .collect()
    }

    /// Lowers every pod once every ConfigMap, Secret and claim is known.
    fn finish(&mut self) -> Option<ManifestSet> {
        let input_ns = self.input_namespace();
        let ns_of = |written: &str| -> String {
            if written.is_empty() {
                input_ns.clone()
            } else {
                written.to_string()
            }
        };
        let mut config_maps: BTreeMap<String, BTreeMap<String, ConfigMap>> = BTreeMap::new();
        for ((ns, name), cm) in &self.config_maps {
            config_maps
                .entry(ns_of(ns))
                .or_default()
                .insert(name.clone(), cm.clone());
        }
        let mut secrets: BTreeMap<String, BTreeMap<String, Secret>> = BTreeMap::new();
        for ((ns, name), s) in &self.secrets {
            let mut s = s.clone();
            // As the API server does on write: a Secret's `stringData` is merged
            // into its `data` (and wins), so readers only look at `data`.
            defaults::secret(&mut s);
            secrets
                .entry(ns_of(ns))
                .or_default()
                .insert(name.clone(), s);
        }
        // A ConfigMap or Secret of a namespace no pod is in.
        let pod_namespaces = self.pod_namespaces();
        for (doc, prefix, other) in self.namespaces.clone() {
            if !pod_namespaces.is_empty() && !pod_namespaces.contains(&other) {
                let saved = std::mem::replace(&mut self.prefix, prefix);
                self.field_error(
                    doc,
                    "metadata.namespace",
                    format!(
                        "Invalid value: {other:?}: must be the Pod's namespace {:?}",
                        pod_namespaces[0]
                    ),
                );
                self.prefix = saved;
            }
        }
        let empty_cm = BTreeMap::new();
        let empty_secrets = BTreeMap::new();
        let shared_cms: BTreeMap<String, std::sync::Arc<BTreeMap<String, ConfigMap>>> = config_maps
            .iter()
            .map(|(ns, m)| (ns.clone(), std::sync::Arc::new(m.clone())))
            .collect();
        let shared_secrets: BTreeMap<String, std::sync::Arc<BTreeMap<String, Secret>>> = secrets
            .iter()
            .map(|(ns, m)| (ns.clone(), std::sync::Arc::new(m.clone())))
            .collect();
        // The bytes each namespace's ConfigMaps and Secrets hold: what every pod
        // of a controller there may copy into its model.
        let data_bytes = |ns: &str| -> u64 {
            let cm: u64 = config_maps
                .get(ns)
                .map_or(0, |m| m.values().map(config_map_bytes).sum());
            let s: u64 = secrets
                .get(ns)
                .map_or(0, |m| m.values().map(secret_bytes).sum());
            cm + s
        };
        // Bounds on what one input may ask for, checked before any pod is made:
        // a replicas count or a ConfigMap multiplied by it must not exhaust the
        // machine.
        let mut pods_asked: u64 = self.pods.len() as u64;
        let mut bytes_asked: u64 = 0;
        let mut too_big = false;
        // Controllers that repeat another's uid or name make no pods (their
        // pods would only repeat the error).
        let mut repeated: Vec<usize> = Vec::new();
        let mut seen_uids: BTreeMap<String, usize> = BTreeMap::new();
        let mut seen_names: BTreeMap<(String, String, String), usize> = BTreeMap::new();
        let controllers = std::mem::take(&mut self.controllers);
        for (index, c) in controllers.iter().enumerate() {
            let kind = c.controller.kind;
            let want = match kind {
                model::workload::WorkloadKind::DaemonSet => 1,
                model::workload::WorkloadKind::Job => c
                    .controller
                    .job
                    .as_ref()
                    .map_or(1, |j| u64::from(j.parallelism)),
                _ => u64::from(c.controller.replicas),
            };
            pods_asked = pods_asked.saturating_add(want);
            bytes_asked =
                bytes_asked.saturating_add(want.saturating_mul(data_bytes(c.namespace.as_str())));
            let saved = std::mem::replace(&mut self.prefix, c.prefix.clone());
            if let Some(first) = seen_uids.insert(c.uid.clone(), c.n) {
                repeated.push(index);
                self.field_error(
                    c.n,
                    "metadata.uid",
                    format!("Duplicate value: {:?} (also document {first}'s)", c.uid),
                );
            }
            let name = (
                kind.as_str().to_string(),
                c.namespace.to_string(),
                c.name.to_string(),
            );
            if let Some(first) = seen_names.insert(name, c.n) {
                repeated.push(index);
                self.field_error(
                    c.n,
                    "metadata.name",
                    format!(
                        "Duplicate value: {:?} (a {} of document {first})",
                        c.name.as_str(),
                        kind.as_str()
                    ),
                );
            }
            let field = match kind {
                model::workload::WorkloadKind::Job => "spec.parallelism",
                _ => "spec.replicas",
            };
            if want > MAX_PODS {
                too_big = true;
                self.field_error(
                    c.n,
                    field,
                    format!("Invalid value: {want}: must be no more than {MAX_PODS} (the pods one input may run on one node)"),
                );
            }
            self.prefix = saved;
        }
        self.controllers = controllers;
        if pods_asked > MAX_PODS {
            too_big = true;
            self.errors.push(FieldError {
                document: None,
                path: String::new(),
                message: format!(
                    "the input asks for {pods_asked} pods; one input runs at most {MAX_PODS}"
                ),
            });
        }
        if bytes_asked > MAX_POD_DATA {
            too_big = true;
            self.errors.push(FieldError {
                document: None,
                path: String::new(),
                message: format!(
                    "the controllers' pods would hold {} MiB of ConfigMap and Secret data (replicas times the namespace's data); at most {} MiB",
                    bytes_asked >> 20,
                    MAX_POD_DATA >> 20
                ),
            });
        }
        if too_big {
            return None;
        }
        let mut set = ManifestSet::default();
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let bare = std::mem::take(&mut self.pods);
        let mut lowered: Vec<(usize, model::Pod)> = Vec::new();
        for d in &bare {
            let ns = d
                .pod
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| defaults::DEFAULT_NAMESPACE.into());
            let refs = validate::Refs {
                config_maps: config_maps.get(&ns).unwrap_or(&empty_cm),
                secrets: secrets.get(&ns).unwrap_or(&empty_secrets),
            };
            if let Some(mut pod) = self.lower(d, &refs) {
                pod.template_hash =
                    workloads_hash(&serde_json::to_value(&d.pod).unwrap_or(Value::Null));
                lowered.push((d.n, pod));
            }
        }
        let controllers = std::mem::take(&mut self.controllers);
        for (_, c) in controllers
            .iter()
            .enumerate()
            .filter(|(i, _)| !repeated.contains(i))
        {
            let ns = c.namespace.to_string();
            let refs = validate::Refs {
                config_maps: config_maps.get(&ns).unwrap_or(&empty_cm),
                secrets: secrets.get(&ns).unwrap_or(&empty_secrets),
            };
            // The template once as a pod (named as the controller, with a first
            // ordinal's claims), for its errors with its own paths.
            let mut first = DecodedPod {
                n: c.n,
                prefix: c.template.prefix.clone(),
                pod: c.template.pod.clone(),
                skip: c.template.skip.clone(),
            };
            first.pod.metadata.name = Some(c.name.to_string());
            add_claim_volumes(&mut first.pod, c, c.controller.ordinal_start);
            let Some(_) = self.lower(&first, &refs) else {
                continue;
            };
            let workload = Workload {
                kind: c.controller.kind,
                namespace: c.namespace.clone(),
                name: c.name.clone(),
                uid: c.uid.clone(),
                document: c.n,
                replicas: match c.controller.kind {
                    model::workload::WorkloadKind::DaemonSet => 1,
                    model::workload::WorkloadKind::Job => 0,
                    _ => c.controller.replicas,
                },
                template_hash: c.hash.clone(),
                strategy: c.controller.strategy,
                ordered: c.controller.ordered,
                min_ready_seconds: c.controller.min_ready_seconds,
                job: c.controller.job.clone(),
                claim_templates: c
                    .controller
                    .claim_templates
                    .iter()
                    .map(|t| t.name.to_string())
                    .collect(),
                claim_retention: c.controller.claim_retention,
                ordinal_start: c.controller.ordinal_start,
            };
            let template = Template {
                pod: c.template.pod.clone(),
                config_maps: shared_cms.get(&ns).cloned().unwrap_or_default(),
                secrets: shared_secrets.get(&ns).cloned().unwrap_or_default(),
                owner: pod_owner(&workload),
                workload: workload.owner_reference(),
                hash: c.hash.clone(),
                labels: controller_labels(&workload),
            };
            match self.controller_pods(c, &workload, &template) {
                Ok((pods, claims)) => {
                    lowered.extend(pods.into_iter().map(|p| (c.n, p)));
                    set.claims.extend(claims);
                }
                Err(message) => {
                    let saved = std::mem::replace(&mut self.prefix, c.prefix.clone());
                    self.field_error(c.n, "metadata.name", message);
                    self.prefix = saved;
                }
            }
            set.templates.insert(workload.uid.clone(), template);
            set.workloads.push(workload);
        }
        // Document order (stable: a controller's pods keep theirs).
        lowered.sort_by_key(|(n, _)| *n);
        for (n, pod) in lowered {
            let key = pod.key.to_string();
            if let Some(first) = names.insert(key.clone(), n) {
                self.document_error(
                    n,
                    "metadata.name",
                    format!("Duplicate value: pod {key} (also made by document {first})"),
                );
                continue;
            }
            set.pods.push(pod);
        }
        // Claim documents; a StatefulSet's claims come first in `set.claims` and
        // a document of the same name wins over a template's.
        let mut claims: Vec<Claim> = Vec::new();
        for (n, prefix, mut claim, explicit) in std::mem::take(&mut self.claim_docs) {
            if !explicit && let Ok(ns) = model::DnsLabel::parse(&input_ns) {
                claim.namespace = ns;
            }
            if claims
                .iter()
                .any(|c| c.namespace == claim.namespace && c.name == claim.name)
            {
                let saved = std::mem::replace(&mut self.prefix, prefix);
                self.field_error(
                    n,
                    "metadata.name",
                    format!("Duplicate value: {:?}", claim.name.as_str()),
                );
                self.prefix = saved;
                continue;
            }
            claims.push(claim);
        }
        for c in std::mem::take(&mut set.claims) {
            if !claims
                .iter()
                .any(|d| d.namespace == c.namespace && d.name == c.name)
            {
                claims.push(c);
            }
        }
        set.claims = claims;
        set.warnings = std::mem::take(&mut self.warnings);
        Some(set)
    }

    /// Validates a decoded pod and lowers it into the model, reporting its
    /// errors with its document's paths.
    fn lower(&mut self, d: &DecodedPod, refs: &validate::Refs<'_>) -> Option<model::Pod> {
        let lowered = validate::pod(&d.pod, refs);
        let saved = std::mem::replace(&mut self.prefix, d.prefix.clone());
        self.report(d.n, validate::Errs(lowered.errors), &d.skip);
        self.prefix = saved;
        self.warnings.extend(lowered.warnings);
        lowered.pod
    }

    /// The pods a controller wants now, and a StatefulSet's claims.
    fn controller_pods(
        &mut self,
        c: &PendingController,
        w: &Workload,
        template: &Template,
    ) -> Result<(Vec<model::Pod>, Vec<Claim>), String> {
        use crate::workload::names;
        use model::workload::WorkloadKind as K;
        let mut pods = Vec::new();
        let mut claims = Vec::new();
        let none = BTreeMap::new();
        match w.kind {
            K::Job => {}
            K::Deployment | K::ReplicaSet | K::DaemonSet => {
                let owner = match w.kind {
                    K::Deployment => names::replica_set(w.name.as_str(), &w.template_hash),
                    _ => w.name.to_string(),
                };
                for slot in 0..w.replicas {
                    let name = names::pod(&owner, &w.uid, &w.template_hash, slot);
                    pods.push(template.instantiate_with(&name, &none, None)?);
                }
            }
            K::StatefulSet => {
                for i in 0..w.replicas {
                    let ordinal = c.controller.ordinal_start.saturating_add(i);
                    let name = names::ordinal_pod(w.name.as_str(), ordinal);
                    let mut labels = BTreeMap::new();
                    labels.insert(
                        "statefulset.kubernetes.io/pod-name".to_string(),
                        name.clone(),
                    );
                    labels.insert(
                        "apps.kubernetes.io/pod-index".to_string(),
                        ordinal.to_string(),
                    );
                    // Each ordinal's claims, mounted where the template names them
                    // (the controller's updateStorage replaces a same-named volume).
                    let mut t = template.clone();
                    add_claim_volumes(&mut t.pod, c, ordinal);
                    for ct in &c.controller.claim_templates {
                        let claim_name =
                            names::ordinal_claim(ct.name.as_str(), w.name.as_str(), ordinal);
                        let claim_name = model::DnsSubdomain::parse(&claim_name)
                            .map_err(|e| format!("claim {claim_name}: {}", e.0.join("; ")))?;
                        claims.push(Claim {
                            namespace: w.namespace.clone(),
                            name: claim_name,
                            access_modes: ct.access_modes.clone(),
                            storage: ct.storage.clone(),
                            owner: Some(w.uid.clone()),
                        });
                    }
                    let host = c.controller.service_name.as_ref().map(|s| s.as_str());
                    pods.push(t.instantiate_with(&name, &labels, Some((&name, host)))?);
                }
            }
        }
        Ok((pods, claims))
    }

    /// Files a ConfigMap or Secret under its name, after name checks. One with
    /// errors is still filed, so that references to it do not add `Not found` noise.
    fn named_document<T: k8s_openapi::Metadata<Ty = ObjectMeta>>(
        &mut self,
        n: usize,
        obj: T,
        mut errs: validate::Errs,
        skip: &[FieldPath],
        map: impl Fn(&mut Self) -> &mut BTreeMap<(String, String), T>,
    ) {
        let meta = obj.metadata();
        let name = meta.name.clone().unwrap_or_default();
        validate::name_subdomain(&mut errs, "metadata.name", &name);
        let ns = meta.namespace.clone().unwrap_or_default();
        if !ns.is_empty() {
            validate::dns1123_label(&mut errs, "metadata.namespace", &ns);
            let prefix = self.prefix.clone();
            self.namespaces.push((n, prefix, ns.clone()));
        }
        let name = (ns, name);
        let duplicate = map(self).contains_key(&name);
        if duplicate {
            errs.0.push((
                "metadata.name".into(),
                format!("Duplicate value: {:?}", name.1),
            ));
        }
        self.report(n, errs, skip);
        if !name.1.is_empty() && !duplicate {
            map(self).insert(name, obj);
        }
    }

    /// Decodes `doc` as `T`, reporting every wrong type and unknown field. Returns
    /// the value (when decoding could be completed), the unknown fields, and the
    /// paths that had errors.
    ///
    /// Decoding stops at the first error, so to report them all it is retried with
    /// the offending field removed, until the document decodes. The value then serves
    /// only to find further (validation) errors away from those paths.
    fn decode<T: serde::de::DeserializeOwned>(
        &mut self,
        n: usize,
        doc: &Value,
    ) -> (Option<T>, Vec<FieldPath>, Vec<FieldPath>) {
        let mut work = doc.clone();
        let mut unknown: Vec<FieldPath> = Vec::new();
        let mut reported: Vec<(FieldPath, String)> = Vec::new();
        let mut removed: Vec<FieldPath> = Vec::new();
        let mut result = None;
        // Each round removes one field, so this bounds nothing but a logic error.
        for _ in 0..1000 {
            let ignored = RefCell::new(Vec::new());
            let decoded = de::from_value::<T>(&work, &ignored);
            for path in ignored.into_inner() {
                if !unknown.contains(&path) {
                    unknown.push(path);
                }
            }
            let err = match decoded {
                Ok(v) => {
                    result = Some(v);
                    break;
                }
                Err(e) => e,
            };
            let at = err.path.clone().unwrap_or_default();
            // k8s-openapi defaults missing fields rather than refusing them, but
            // serde's own types may not: say it the Kubernetes way, then give up.
            if let Some(field) = missing_field(&err.message) {
                let path = at.key(field);
                if !under_any(&path, &removed) {
                    reported.push((path, "Required value".into()));
                }
                break;
            }
            if under_any(&at, &removed) || reported.iter().any(|(p, _)| *p == at) {
                break;
            }
            let message = if is_data_value(&at) && !err.message.starts_with("invalid type") {
                format!("invalid base64 data: {}", err.message)
            } else {
                err.message
            };
            reported.push((at.clone(), message));
            // Drop the offending field; for a bad list element, its whole list.
            let mut key = at;
            while matches!(key.0.last(), Some(Seg::Index(_))) {
                key.0.pop();
            }
            if !de::remove_key(&mut work, &key) {
                break;
            }
            removed.push(key);
        }
        for path in &unknown {
            self.field_error(n, path, "unknown field");
        }
        for (path, message) in &reported {
            self.field_error(n, path, message.clone());
        }
        let mut skip = removed;
        skip.extend(reported.into_iter().map(|(p, _)| p));
        (result, unknown, skip)
    }
}

/// A StatefulSet ordinal's claims as volumes named after their templates, in
/// place of a same-named volume of the pod template (the StatefulSet
/// controller's updateStorage).
fn add_claim_volumes(pod: &mut Pod, c: &PendingController, ordinal: u32) {
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Volume};
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    if c.controller.claim_templates.is_empty() {
        return;
    }
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    for ct in &c.controller.claim_templates {
        volumes.retain(|v| v.name != ct.name.as_str());
        volumes.push(Volume {
            name: ct.name.to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: crate::workload::names::ordinal_claim(
                    ct.name.as_str(),
                    c.name.as_str(),
                    ordinal,
                ),
                read_only: None,
            }),
            ..Default::default()
        });
    }
}

/// The controller of a workload's pods: a Deployment's ReplicaSet
/// (`<deployment>-<pod-template-hash>`, as the deployment controller names it,
/// with a uid derived from the Deployment's and the hash), else the workload.
fn pod_owner(w: &Workload) -> model::workload::OwnerReference {
    let mut owner = w.owner_reference();
    if w.kind == model::workload::WorkloadKind::Deployment {
        let name = crate::workload::names::replica_set(w.name.as_str(), &w.template_hash);
        owner.kind = "ReplicaSet".into();
        owner.uid = defaults::derived_uid(
            w.namespace.as_str(),
            &format!("ReplicaSet/{}/{name}", w.uid),
        );
        owner.name = name;
    }
    owner
}

/// The most pods one input may ask for (its bare Pods, every controller's
/// replicas, each Job's parallelism).
pub const MAX_PODS: u64 = 500;
/// The most ConfigMap and Secret bytes the controllers' pods of one input may
/// copy (the namespace's data times the replicas).
const MAX_POD_DATA: u64 = 1 << 30;
/// A ConfigMap's or Secret's data, at most (apimachinery's MaxSecretSize,
/// ConfigMap's limit: 1 MiB).
const MAX_OBJECT_DATA: u64 = 1 << 20;

fn config_map_bytes(cm: &ConfigMap) -> u64 {
    let text: u64 = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.len() + v.len()) as u64)
        .sum();
    let binary: u64 = cm
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v)| (k.len() + v.0.len()) as u64)
        .sum();
    text + binary
}

fn secret_bytes(s: &Secret) -> u64 {
    let data: u64 = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.len() + v.0.len()) as u64)
        .sum();
    let text: u64 = s
        .string_data
        .iter()
        .flatten()
        .map(|(k, v)| (k.len() + v.len()) as u64)
        .sum();
    data + text
}

/// The hash a controller's pods carry for its template (or a bare Pod's for its
/// document).
fn workloads_hash(template: &Value) -> String {
    crate::workload::names::template_hash(template)
}

/// The labels a controller adds to the pods it makes (`pod-template-hash` by the
/// deployment controller, `controller-revision-hash` by the StatefulSet and
/// DaemonSet controllers, the job controller's four).
fn controller_labels(w: &Workload) -> BTreeMap<String, String> {
    use model::workload::WorkloadKind as K;
    let mut l = BTreeMap::new();
    match w.kind {
        K::Deployment => {
            l.insert("pod-template-hash".to_string(), w.template_hash.clone());
        }
        K::ReplicaSet => {}
        K::StatefulSet => {
            l.insert(
                "controller-revision-hash".to_string(),
                format!("{}-{}", w.name, w.template_hash),
            );
        }
        K::DaemonSet => {
            l.insert(
                "controller-revision-hash".to_string(),
                w.template_hash.clone(),
            );
            // A first generation: `up` gives the set's pods their generation
            // from the pods that run (pod::apply's daemonset_generation).
            l.insert("pod-template-generation".to_string(), "1".to_string());
        }
        K::Job => {
            for key in ["batch.kubernetes.io/controller-uid", "controller-uid"] {
                l.insert(key.to_string(), w.uid.clone());
            }
            for key in ["batch.kubernetes.io/job-name", "job-name"] {
                l.insert(key.to_string(), w.name.to_string());
            }
        }
    }
    l
}

/// `missing field `name`` (serde's wording) → `name`.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
}

/// `data.<key>` or `binaryData.<key>`: the base64 values of a Secret or ConfigMap.
fn is_data_value(path: &FieldPath) -> bool {
    matches!(path.0.as_slice(), [Seg::Key(f), Seg::Key(_)] if f == "data" || f == "binaryData")
}

fn path_is_under(path: &str, base: &str) -> bool {
    path == base
        || base.is_empty()
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

fn under_any(path: &FieldPath, bases: &[FieldPath]) -> bool {
    bases.iter().any(|b| path.0.starts_with(&b.0))
}
