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

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};

use crate::model;
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

/// Reads `path` (`-` is stdin) and parses it.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let source_name = path.display().to_string();
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|err| ManifestError::Read {
        source_name: source_name.clone(),
        err,
    })?;
    parse(&text, &source_name)
}

/// Parses YAML or JSON text, one or more documents.
pub fn parse(text: &str, source_name: &str) -> Result<Manifest, ManifestError> {
    let invalid = |errors| ManifestError::Invalid {
        source_name: source_name.to_string(),
        errors,
    };
    let docs = read_documents(text).map_err(|e| invalid(vec![e]))?;
    let mut p = Parser {
        multi: docs.len() > 1,
        errors: Vec::new(),
        warnings: Vec::new(),
        pod: None,
        pod_documents: Vec::new(),
        config_maps: BTreeMap::new(),
        secrets: BTreeMap::new(),
        found_kinds: Vec::new(),
        namespaces: Vec::new(),
    };
    for (i, doc) in docs.iter().enumerate() {
        p.document(i + 1, doc);
    }
    match p.pod_documents.len() {
        0 => {
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
        1 => {}
        _ => {
            let first = p.pod_documents[0];
            for &n in &p.pod_documents[1..] {
                p.errors.push(FieldError {
                    document: Some(n),
                    path: String::new(),
                    message: format!(
                        "a second Pod (an input holds one Pod; the first is document {first})"
                    ),
                });
            }
        }
    }
    if let Some((n, pod, skip)) = p.pod.take()
        && let Some(pod) = p.lower_pod(n, &pod, &skip)
        && p.errors.is_empty()
    {
        return Ok(Manifest {
            pod,
            warnings: p.warnings,
        });
    }
    Err(invalid(p.errors))
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
type DecodedPod = (usize, Pod, Vec<FieldPath>);

struct Parser {
    multi: bool,
    errors: Vec<FieldError>,
    warnings: Vec<String>,
    pod: Option<DecodedPod>,
    /// Documents (1-based) whose kind is Pod.
    pod_documents: Vec<usize>,
    config_maps: BTreeMap<String, ConfigMap>,
    secrets: BTreeMap<String, Secret>,
    /// Kinds met, once each, to explain a missing Pod.
    found_kinds: Vec<String>,
    /// The namespaces that ConfigMap and Secret documents name, by document.
    namespaces: Vec<(usize, String)>,
}

impl Parser {
    /// An error at a field of document `n`.
    fn field_error(&mut self, n: usize, path: impl fmt::Display, message: impl Into<String>) {
        self.errors.push(FieldError {
            document: self.multi.then_some(n),
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// An error about document `n` as a whole: always names the document.
    fn document_error(&mut self, n: usize, path: &str, message: String) {
        self.errors.push(FieldError {
            document: Some(n),
            path: path.to_string(),
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
        if !matches!(kind, "Pod" | "ConfigMap" | "Secret") {
            self.document_error(
                n,
                "",
                format!("kind {kind} is not supported (only Pod, ConfigMap, Secret)"),
            );
            return;
        }
        if !self.found_kinds.iter().any(|k| k == kind) {
            self.found_kinds.push(kind.to_string());
        }
        if kind == "Pod" {
            self.pod_documents.push(n);
        }
        match map.get("apiVersion") {
            Some(Value::String(v)) if v == "v1" => {}
            Some(Value::String(v)) if !v.is_empty() => {
                self.document_error(
                    n,
                    "apiVersion",
                    format!("Unsupported value: {v:?}: supported values: \"v1\""),
                );
                return;
            }
            _ => {
                self.document_error(n, "apiVersion", "Required value".into());
                return;
            }
        }
        match kind {
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
                self.named_document(n, cm, errs, &skip, |p| &mut p.config_maps);
            }
            _ => {
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
                self.named_document(n, secret, errs, &skip, |p| &mut p.secrets);
            }
        }
    }

    fn pod_document(&mut self, n: usize, doc: &Value) {
        let (pod, unknown, skip) = self.decode::<Pod>(n, doc);
        let findings = fields::check_pod(doc, &unknown);
        for path in findings.unsupported {
            if !under_any(&path, &skip) {
                self.field_error(n, path, NOT_SUPPORTED);
            }
        }
        if self.pod_documents.len() == 1 {
            self.warnings.extend(findings.warnings);
            if let Some(pod) = pod {
                self.pod = Some((n, pod, skip));
            }
        }
    }

    /// Validates the Pod and lowers it into the model, once every ConfigMap and
    /// Secret of the input is known.
    fn lower_pod(&mut self, n: usize, pod: &Pod, skip: &[FieldPath]) -> Option<model::Pod> {
        let ns = pod
            .metadata
            .namespace
            .as_deref()
            .unwrap_or(defaults::DEFAULT_NAMESPACE);
        // A Pod can only reference objects of its own namespace.
        let foreign: Vec<(usize, String)> = self
            .namespaces
            .iter()
            .filter(|(_, other)| other != ns)
            .cloned()
            .collect();
        for (doc, other) in foreign {
            self.field_error(
                doc,
                "metadata.namespace",
                format!("Invalid value: {other:?}: must be the Pod's namespace {ns:?}"),
            );
        }
        // As the API server does on write: a Secret's `stringData` is merged into
        // its `data` (and wins), so readers only look at `data`.
        let mut secrets = self.secrets.clone();
        secrets.values_mut().for_each(defaults::secret);
        let refs = validate::Refs {
            config_maps: &self.config_maps,
            secrets: &secrets,
        };
        let lowered = validate::pod(pod, &refs);
        let skip: Vec<String> = skip.iter().map(|p| p.to_string()).collect();
        for (path, message) in lowered.errors {
            if !skip.iter().any(|s| path_is_under(&path, s)) {
                self.field_error(n, path, message);
            }
        }
        self.warnings.extend(lowered.warnings);
        lowered.pod
    }

    /// Files a ConfigMap or Secret under its name, after name checks. One with
    /// errors is still filed, so that references to it do not add `Not found` noise.
    fn named_document<T: k8s_openapi::Metadata<Ty = ObjectMeta>>(
        &mut self,
        n: usize,
        obj: T,
        mut errs: validate::Errs,
        skip: &[FieldPath],
        map: impl Fn(&mut Self) -> &mut BTreeMap<String, T>,
    ) {
        let meta = obj.metadata();
        let name = meta.name.clone().unwrap_or_default();
        validate::name_subdomain(&mut errs, "metadata.name", &name);
        if let Some(ns) = meta.namespace.as_deref() {
            validate::dns1123_label(&mut errs, "metadata.namespace", ns);
            self.namespaces.push((n, ns.to_string()));
        }
        let duplicate = map(self).contains_key(&name);
        if duplicate {
            errs.0
                .push(("metadata.name".into(), format!("Duplicate value: {name:?}")));
        }
        let skip: Vec<String> = skip.iter().map(|p| p.to_string()).collect();
        for (path, message) in errs.0 {
            if !skip.iter().any(|s| path_is_under(&path, s)) {
                self.field_error(n, path, message);
            }
        }
        if !name.is_empty() && !duplicate {
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
