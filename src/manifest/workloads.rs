//! The controller kinds (apps/v1 Deployment, ReplicaSet, StatefulSet, DaemonSet;
//! batch/v1 Job) and PersistentVolumeClaims: their own fields, checked against
//! their tables and Kubernetes' rules (apps/validation, batch/validation,
//! core/validation ValidatePersistentVolumeClaim). The pod template of a
//! controller is checked as a Pod by the caller, with `spec.template.` before
//! its paths.

use std::collections::BTreeMap;

use serde_json::Value;

use super::validate::{self, Errs};
use crate::model::workload::{
    AccessMode, Claim, ClaimRetention, IntOrPercent, JobSpec, PodFailureAction, PodFailureMatch,
    PodFailureRule, UpdateStrategy, WorkloadKind,
};
use crate::model::{DnsLabel, DnsSubdomain, ExitCodeOperator, Quantity};

/// Fields every kind's metadata may hold (the pod's own, as `fields::POD`).
const METADATA: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.labels",
    "metadata.annotations",
    "metadata.creationTimestamp",
];

const SELECTOR: &[&str] = &[
    "spec.selector.matchLabels",
    "spec.selector.matchExpressions[*].key",
    "spec.selector.matchExpressions[*].operator",
    "spec.selector.matchExpressions[*].values",
];

/// The fields of each kind podshim implements, besides METADATA and (for the
/// controllers) SELECTOR and `spec.template`, which is checked as a Pod.
fn supported(kind: &str) -> Vec<&'static str> {
    let own: &[&str] = match kind {
        "Deployment" => &[
            "spec.replicas",
            "spec.minReadySeconds",
            "spec.strategy.type",
            "spec.strategy.rollingUpdate.maxSurge",
            "spec.strategy.rollingUpdate.maxUnavailable",
        ],
        "ReplicaSet" => &["spec.replicas", "spec.minReadySeconds"],
        "StatefulSet" => &[
            "spec.replicas",
            "spec.minReadySeconds",
            "spec.serviceName",
            "spec.podManagementPolicy",
            "spec.updateStrategy.type",
            "spec.updateStrategy.rollingUpdate.partition",
            "spec.updateStrategy.rollingUpdate.maxUnavailable",
            "spec.ordinals.start",
            "spec.persistentVolumeClaimRetentionPolicy.whenDeleted",
            "spec.persistentVolumeClaimRetentionPolicy.whenScaled",
            "spec.volumeClaimTemplates[*].apiVersion",
            "spec.volumeClaimTemplates[*].kind",
            "spec.volumeClaimTemplates[*].metadata.name",
            "spec.volumeClaimTemplates[*].metadata.labels",
            "spec.volumeClaimTemplates[*].metadata.annotations",
            "spec.volumeClaimTemplates[*].spec.accessModes",
            "spec.volumeClaimTemplates[*].spec.resources.requests.storage",
            "spec.volumeClaimTemplates[*].spec.volumeMode",
        ],
        "DaemonSet" => &[
            "spec.minReadySeconds",
            "spec.updateStrategy.type",
            "spec.updateStrategy.rollingUpdate.maxSurge",
            "spec.updateStrategy.rollingUpdate.maxUnavailable",
        ],
        "Job" => &[
            "spec.parallelism",
            "spec.completions",
            "spec.backoffLimit",
            "spec.activeDeadlineSeconds",
            "spec.ttlSecondsAfterFinished",
            "spec.completionMode",
            "spec.suspend",
            "spec.manualSelector",
            "spec.podReplacementPolicy",
            "spec.podFailurePolicy.rules[*].action",
            "spec.podFailurePolicy.rules[*].onExitCodes.containerName",
            "spec.podFailurePolicy.rules[*].onExitCodes.operator",
            "spec.podFailurePolicy.rules[*].onExitCodes.values",
            "spec.podFailurePolicy.rules[*].onPodConditions[*].type",
            "spec.podFailurePolicy.rules[*].onPodConditions[*].status",
        ],
        _ => &[
            "spec.accessModes",
            "spec.resources.requests.storage",
            "spec.volumeMode",
        ],
    };
    let mut out: Vec<&'static str> = METADATA.to_vec();
    out.extend(own);
    if kind != "PersistentVolumeClaim" && kind != "Job" {
        out.extend(SELECTOR);
    }
    // A Job's selector is generated (manualSelector is a cluster's escape hatch).
    out.push("spec.template");
    out
}

/// Fields accepted and ignored, with why.
pub(crate) const CLUSTER_ONLY: &[(&str, &str)] = &[
    ("metadata.resourceVersion", "API server bookkeeping"),
    ("metadata.generation", "API server bookkeeping"),
    ("metadata.selfLink", "API server bookkeeping"),
    ("metadata.managedFields", "API server bookkeeping"),
    ("metadata.ownerReferences", "garbage collection"),
    ("metadata.finalizers", "garbage collection"),
    ("status", "written by the cluster"),
    (
        "spec.revisionHistoryLimit",
        "podshim keeps no old revisions to roll back to",
    ),
    (
        "spec.progressDeadlineSeconds",
        "a cluster's rollout status; `up` has --timeout",
    ),
    (
        "spec.storageClassName",
        "a local volume under the store has no class",
    ),
    (
        "spec.volumeClaimTemplates[*].spec.storageClassName",
        "a local volume under the store has no class",
    ),
    (
        "spec.volumeClaimTemplates[*].status",
        "written by the cluster",
    ),
    ("spec.resources.limits", "a local volume is not capped"),
];

pub(crate) fn check_fields(
    kind: &str,
    doc: &Value,
    unknown: &[super::de::FieldPath],
) -> super::fields::Findings {
    super::fields::check_object(doc, unknown, &supported(kind), CLUSTER_ONLY)
}

/// What a controller document says besides its template.
pub(crate) struct Controller {
    pub(crate) kind: WorkloadKind,
    pub(crate) replicas: u32,
    pub(crate) strategy: UpdateStrategy,
    pub(crate) ordered: bool,
    pub(crate) min_ready_seconds: u32,
    pub(crate) job: Option<JobSpec>,
    /// A StatefulSet's `serviceName` (its pods' subdomain) and first ordinal.
    pub(crate) service_name: Option<DnsLabel>,
    pub(crate) ordinal_start: u32,
    /// A StatefulSet's volumeClaimTemplates, named; the claims are made per ordinal.
    pub(crate) claim_templates: Vec<Claim>,
    pub(crate) claim_retention: ClaimRetention,
    pub(crate) selector: Option<Selector>,
}

/// A label selector (metav1.LabelSelector), validated.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selector {
    pub(crate) match_labels: BTreeMap<String, String>,
    pub(crate) expressions: Vec<(String, String, Vec<String>)>,
}

impl Selector {
    /// metav1.LabelSelectorAsSelector(...).Matches(labels).
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|(key, op, values)| {
                let value = labels.get(key);
                match op.as_str() {
                    "In" => value.is_some_and(|v| values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !values.contains(v)),
                    "Exists" => value.is_some(),
                    _ => value.is_none(),
                }
            })
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut v = v;
    for key in path {
        v = v.get(key)?;
    }
    (!v.is_null()).then_some(v)
}

fn non_negative(errs: &mut Errs, v: &Value, path: &[&str]) -> Option<u64> {
    let value = get(v, path)?.as_i64()?;
    if value < 0 {
        errs.invalid(path.join("."), value, "must be greater than or equal to 0");
        return None;
    }
    Some(value as u64)
}

fn small(errs: &mut Errs, v: &Value, path: &[&str], default: u32) -> u32 {
    non_negative(errs, v, path)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .unwrap_or(default)
}

/// `intstr` for maxSurge/maxUnavailable: an integer, or a percentage
/// (`"25%"`), ValidatePositiveIntOrPercent and IsNotMoreThan100Percent.
fn int_or_percent(
    errs: &mut Errs,
    v: &Value,
    path: &[&str],
    default: IntOrPercent,
) -> IntOrPercent {
    let at = path.join(".");
    // Only maxUnavailable is capped at 100% (a surge of 200% is valid).
    let capped = path.last() == Some(&"maxUnavailable");
    match get(v, path) {
        None => default,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) if i >= 0 => IntOrPercent::Int(u32::try_from(i).unwrap_or(u32::MAX)),
            _ => {
                errs.invalid(&at, n, "must be greater than or equal to 0");
                default
            }
        },
        Some(Value::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<u32>().ok()) {
            Some(p) if p <= 100 || !capped => IntOrPercent::Percent(p),
            Some(_) => {
                errs.invalid_str(&at, s, "must not be greater than 100%");
                default
            }
            None => {
                errs.invalid_str(&at, s, "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')");
                default
            }
        },
        Some(other) => {
            errs.invalid(&at, other, "must be an integer or percentage (e.g '5%')");
            default
        }
    }
}

fn is_zero(v: IntOrPercent) -> bool {
    matches!(v, IntOrPercent::Int(0) | IntOrPercent::Percent(0))
}

fn selector(errs: &mut Errs, doc: &Value, kind: &str) -> Option<Selector> {
    let Some(sel) = get(doc, &["spec", "selector"]) else {
        errs.required("spec.selector");
        return None;
    };
    let mut out = Selector::default();
    if let Some(Value::Object(m)) = sel.get("matchLabels") {
        for (k, v) in m {
            out.match_labels
                .insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
    }
    if let Some(Value::Array(items)) = sel.get("matchExpressions") {
        for (i, e) in items.iter().enumerate() {
            let at = format!("spec.selector.matchExpressions[{i}]");
            let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
            let op = e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let values: Vec<String> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if key.is_empty() {
                errs.required(format!("{at}.key"));
            }
            match op {
                "In" | "NotIn" if values.is_empty() => errs.required_because(
                    format!("{at}.values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ),
                "Exists" | "DoesNotExist" if !values.is_empty() => errs.forbidden(
                    format!("{at}.values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ),
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => errs.unsupported(
                    format!("{at}.operator"),
                    other,
                    &["DoesNotExist", "Exists", "In", "NotIn"],
                ),
            }
            out.expressions
                .push((key.to_string(), op.to_string(), values));
        }
    }
    if out.match_labels.is_empty() && out.expressions.is_empty() {
        errs.invalid(
            "spec.selector",
            "{}",
            &format!("empty selector is invalid for {}", kind.to_lowercase()),
        );
        return None;
    }
    Some(out)
}

/// The controller fields of `doc` (its template aside).
pub(crate) fn controller(errs: &mut Errs, kind: WorkloadKind, doc: &Value) -> Controller {
    // Validated as an int32 >= 0 (ValidateNonnegativeField).
    let min_ready_seconds = non_negative(errs, doc, &["spec", "minReadySeconds"])
        .map_or(0, |n| n.min(i32::MAX as u64) as u32);
    let mut c = Controller {
        kind,
        replicas: 1,
        strategy: UpdateStrategy::RollingUpdate {
            max_surge: IntOrPercent::Percent(25),
            max_unavailable: IntOrPercent::Percent(25),
        },
        ordered: false,
        min_ready_seconds,
        job: None,
        service_name: None,
        ordinal_start: 0,
        claim_templates: Vec::new(),
        claim_retention: ClaimRetention::default(),
        selector: None,
    };
    if kind != WorkloadKind::Job {
        c.selector = selector(errs, doc, kind.as_str());
    }
    match kind {
        WorkloadKind::Deployment => {
            c.replicas = small(errs, doc, &["spec", "replicas"], 1);
            let t = get(doc, &["spec", "strategy", "type"]).and_then(Value::as_str);
            match t.unwrap_or("RollingUpdate") {
                "Recreate" => {
                    if get(doc, &["spec", "strategy", "rollingUpdate"]).is_some() {
                        errs.forbidden(
                            "spec.strategy.rollingUpdate",
                            "may not be specified when strategy `type` is 'Recreate'",
                        );
                    }
                    c.strategy = UpdateStrategy::Recreate;
                }
                "RollingUpdate" => c.strategy = rolling(errs, doc, "strategy", 25, 25),
                other => {
                    errs.unsupported("spec.strategy.type", other, &["Recreate", "RollingUpdate"])
                }
            }
        }
        WorkloadKind::ReplicaSet => {
            c.replicas = small(errs, doc, &["spec", "replicas"], 1);
            // A ReplicaSet never replaces its pods; `up` of a changed one does,
            // one at a time, as a StatefulSet does.
            c.strategy = UpdateStrategy::RollingUpdate {
                max_surge: IntOrPercent::Int(0),
                max_unavailable: IntOrPercent::Int(1),
            };
        }
        WorkloadKind::StatefulSet => {
            c.replicas = small(errs, doc, &["spec", "replicas"], 1);
            c.ordered = match get(doc, &["spec", "podManagementPolicy"]).and_then(Value::as_str) {
                None | Some("OrderedReady") => true,
                Some("Parallel") => false,
                Some(other) => {
                    errs.unsupported(
                        "spec.podManagementPolicy",
                        other,
                        &["OrderedReady", "Parallel"],
                    );
                    true
                }
            };
            // One pod at a time, as the StatefulSet controller replaces them.
            c.strategy = update_strategy(errs, doc, |errs| {
                // What `kubectl get -o yaml` writes (partition 0) is what podshim
                // does: every ordinal updated. A partition above 0 keeps ordinals
                // below it at the old revision, remade from it when they go,
                // which needs revisions podshim does not keep.
                if non_negative(
                    errs,
                    doc,
                    &["spec", "updateStrategy", "rollingUpdate", "partition"],
                )
                .is_some_and(|n| n > 0)
                {
                    errs.not_supported(
                        "spec.updateStrategy.rollingUpdate.partition",
                        "ordinals below a partition would be remade from the old revision, which podshim does not keep; use 0, or OnDelete",
                    );
                }
                // maxUnavailable (MaxUnavailableStatefulSet): podshim replaces
                // one ordinal at a time, which is 1.
                if let Some(v) = get(
                    doc,
                    &["spec", "updateStrategy", "rollingUpdate", "maxUnavailable"],
                ) && v.as_i64() != Some(1)
                {
                    errs.not_supported(
                        "spec.updateStrategy.rollingUpdate.maxUnavailable",
                        "ordinals are replaced one at a time (1)",
                    );
                }
                UpdateStrategy::RollingUpdate {
                    max_surge: IntOrPercent::Int(0),
                    max_unavailable: IntOrPercent::Int(1),
                }
            });
            if let Some(name) = get(doc, &["spec", "serviceName"]).and_then(Value::as_str)
                && !name.is_empty()
            {
                c.service_name = validate::dns1123_label(errs, "spec.serviceName", name);
            }
            c.ordinal_start = small(errs, doc, &["spec", "ordinals", "start"], 0);
            let policy = |errs: &mut Errs, field: &str| match get(
                doc,
                &["spec", "persistentVolumeClaimRetentionPolicy", field],
            )
            .and_then(Value::as_str)
            {
                None | Some("Retain") => false,
                Some("Delete") => true,
                Some(other) => {
                    errs.unsupported(
                        format!("spec.persistentVolumeClaimRetentionPolicy.{field}"),
                        other,
                        &["Delete", "Retain"],
                    );
                    false
                }
            };
            c.claim_retention = ClaimRetention {
                delete_when_deleted: policy(errs, "whenDeleted"),
                delete_when_scaled: policy(errs, "whenScaled"),
            };
            if let Some(Value::Array(templates)) = get(doc, &["spec", "volumeClaimTemplates"]) {
                for (i, t) in templates.iter().enumerate() {
                    let base = format!("spec.volumeClaimTemplates[{i}]");
                    let name = validate::name_subdomain(
                        errs,
                        &format!("{base}.metadata.name"),
                        metadata_name(t),
                    );
                    let (modes, storage) = claim_spec(errs, &base, t);
                    if let Some(name) = name {
                        c.claim_templates.push(Claim {
                            // The ordinal's claim is in the set's namespace.
                            namespace: DnsLabel::parse(crate::model::DEFAULT_NAMESPACE)
                                .expect("the default namespace is a label"),
                            name,
                            access_modes: modes,
                            storage,
                            owner: None,
                        });
                    }
                }
            }
        }
        WorkloadKind::DaemonSet => {
            c.strategy =
                update_strategy(errs, doc, |errs| rolling(errs, doc, "updateStrategy", 0, 1));
        }
        WorkloadKind::Job => c.job = Some(job(errs, doc)),
    }
    c
}

/// A StatefulSet's or DaemonSet's `updateStrategy.type`: RollingUpdate (the
/// default, as `rolling` makes it) or OnDelete.
fn update_strategy(
    errs: &mut Errs,
    doc: &Value,
    rolling: impl FnOnce(&mut Errs) -> UpdateStrategy,
) -> UpdateStrategy {
    match get(doc, &["spec", "updateStrategy", "type"]).and_then(Value::as_str) {
        None | Some("RollingUpdate") => rolling(errs),
        Some("OnDelete") => UpdateStrategy::OnDelete,
        Some(other) => {
            errs.unsupported(
                "spec.updateStrategy.type",
                other,
                &["OnDelete", "RollingUpdate"],
            );
            UpdateStrategy::OnDelete
        }
    }
}

/// A RollingUpdate's maxSurge and maxUnavailable, defaulted, not both 0
/// (ValidateRollingUpdateDeployment, ValidateRollingUpdateDaemonSet).
fn rolling(
    errs: &mut Errs,
    doc: &Value,
    field: &str,
    surge: u32,
    unavailable: u32,
) -> UpdateStrategy {
    let base = ["spec", field, "rollingUpdate"];
    let pct = |n: u32| match field {
        "strategy" => IntOrPercent::Percent(n),
        _ => IntOrPercent::Int(n),
    };
    let max_surge = int_or_percent(
        errs,
        doc,
        &[base[0], base[1], base[2], "maxSurge"],
        pct(surge),
    );
    let max_unavailable = int_or_percent(
        errs,
        doc,
        &[base[0], base[1], base[2], "maxUnavailable"],
        pct(unavailable),
    );
    if is_zero(max_surge) && is_zero(max_unavailable) {
        errs.invalid(
            format!("spec.{field}.rollingUpdate.maxUnavailable"),
            0,
            "may not be 0 when `maxSurge` is 0",
        );
    }
    // ValidateRollingUpdateDaemonSet: one of the two, not both.
    if field == "updateStrategy" && !is_zero(max_surge) && !is_zero(max_unavailable) {
        errs.invalid(
            format!("spec.{field}.rollingUpdate.maxSurge"),
            "non-zero",
            "may not be set when maxUnavailable is non-zero",
        );
    }
    UpdateStrategy::RollingUpdate {
        max_surge,
        max_unavailable,
    }
}

fn job(errs: &mut Errs, doc: &Value) -> JobSpec {
    // The template's container and initContainer names, which rules may name.
    let containers: Vec<String> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| get(doc, &["spec", "template", "spec", k]))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let completions = non_negative(errs, doc, &["spec", "completions"])
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    // Neither set: one pod to completion (the API server defaults both to 1);
    // parallelism alone: a work queue.
    let completions = match (completions, get(doc, &["spec", "parallelism"])) {
        (None, None) => Some(1),
        (c, _) => c,
    };
    let parallelism = small(errs, doc, &["spec", "parallelism"], 1);
    // `false` is what `kubectl get -o yaml` writes, and what podshim does.
    if get(doc, &["spec", "suspend"]).and_then(Value::as_bool) == Some(true) {
        errs.not_supported(
            "spec.suspend",
            "podshim runs a Job's pods once `up` reads it, and keeps no Job to resume later; set false or leave it out",
        );
    }
    if get(doc, &["spec", "manualSelector"]).and_then(Value::as_bool) == Some(true) {
        errs.not_supported(
            "spec.manualSelector",
            "a Job's selector is generated from its uid; leave it out",
        );
    }
    let backoff_limit = small(errs, doc, &["spec", "backoffLimit"], 6);
    let active_deadline_seconds =
        match get(doc, &["spec", "activeDeadlineSeconds"]).and_then(Value::as_i64) {
            Some(n) if n < 0 => {
                errs.invalid(
                    "spec.activeDeadlineSeconds",
                    n,
                    "must be greater than or equal to 0",
                );
                None
            }
            other => other.map(|n| n as u64),
        };
    let indexed = match get(doc, &["spec", "completionMode"]).and_then(Value::as_str) {
        None | Some("NonIndexed") => false,
        Some("Indexed") => true,
        Some(other) => {
            errs.unsupported("spec.completionMode", other, &["Indexed", "NonIndexed"]);
            false
        }
    };
    // ValidateJobSpec: an Indexed Job names its completions, at most
    // maxParallelismForIndexedJob of them and of its parallelism.
    const MAX_INDEXED: u32 = 100_000;
    if indexed {
        match completions {
            None => errs.required_because("spec.completions", "when completion mode is Indexed"),
            Some(c) if c > MAX_INDEXED => errs.invalid(
                "spec.completions",
                c,
                "must be less than or equal to 100000 when completion mode is Indexed",
            ),
            // ValidateJob: the controller names the last index's pod host
            // `<name>-<completions-1>`, which must be a DNS-1123 label, or
            // that pod could never be made.
            Some(c) if c > 0 => {
                let name = get(doc, &["metadata", "name"])
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let host = format!("{name}-{}", c - 1);
                if !name.is_empty() && DnsLabel::parse(&host).is_err() {
                    errs.invalid_str(
                        "metadata.name",
                        name,
                        &format!("will not able to create pod with invalid DNS label: {host}"),
                    );
                }
            }
            Some(_) => {}
        }
        if parallelism > MAX_INDEXED {
            errs.invalid(
                "spec.parallelism",
                parallelism,
                "must be less than or equal to 100000 when completion mode is Indexed",
            );
        }
    }
    if let Some(p) = get(doc, &["spec", "podReplacementPolicy"]).and_then(Value::as_str)
        && !matches!(p, "TerminatingOrFailed" | "Failed")
    {
        errs.unsupported(
            "spec.podReplacementPolicy",
            p,
            &["Failed", "TerminatingOrFailed"],
        );
    }
    let mut rules = Vec::new();
    if let Some(Value::Array(items)) = get(doc, &["spec", "podFailurePolicy", "rules"]) {
        for (i, r) in items.iter().enumerate() {
            let base = format!("spec.podFailurePolicy.rules[{i}]");
            let action = match r.get("action").and_then(Value::as_str).unwrap_or_default() {
                "FailJob" => Some(PodFailureAction::FailJob),
                "Ignore" => Some(PodFailureAction::Ignore),
                "Count" => Some(PodFailureAction::Count),
                "FailIndex" => {
                    errs.not_supported(
                        format!("{base}.action"),
                        "FailIndex needs backoffLimitPerIndex, which podshim does not implement",
                    );
                    None
                }
                "" => {
                    errs.required(format!("{base}.action"));
                    None
                }
                other => {
                    errs.unsupported(
                        format!("{base}.action"),
                        other,
                        &["Count", "FailIndex", "FailJob", "Ignore"],
                    );
                    None
                }
            };
            let codes = r.get("onExitCodes").filter(|v| !v.is_null());
            let conditions = r.get("onPodConditions").and_then(Value::as_array);
            let on = match (codes, conditions) {
                (Some(c), None) => exit_codes(errs, &format!("{base}.onExitCodes"), c, &containers),
                (None, Some(list)) => {
                    let mut pairs = Vec::new();
                    for (j, p) in list.iter().enumerate() {
                        let t = p.get("type").and_then(Value::as_str).unwrap_or_default();
                        if t.is_empty() {
                            errs.required(format!("{base}.onPodConditions[{j}].type"));
                        }
                        let s = p.get("status").and_then(Value::as_str).unwrap_or("True");
                        if !matches!(s, "True" | "False" | "Unknown") {
                            errs.unsupported(
                                format!("{base}.onPodConditions[{j}].status"),
                                s,
                                &["False", "True", "Unknown"],
                            );
                        }
                        pairs.push((t.to_string(), s.to_string()));
                    }
                    Some(PodFailureMatch::Conditions(pairs))
                }
                _ => {
                    errs.invalid(
                        &base,
                        "{}",
                        "specifying one of OnExitCodes and OnPodConditions is required",
                    );
                    None
                }
            };
            if let (Some(action), Some(on)) = (action, on) {
                rules.push(PodFailureRule { action, on });
            }
        }
    }
    // ValidateJobSpec: a non-negative integer (0: removed once it ended).
    let ttl_seconds_after_finished = match get(doc, &["spec", "ttlSecondsAfterFinished"]) {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) if n >= 0 => Some(n as u64),
            _ => {
                errs.invalid(
                    "spec.ttlSecondsAfterFinished",
                    v,
                    "must be greater than or equal to 0",
                );
                None
            }
        },
    };
    JobSpec {
        completions,
        parallelism,
        backoff_limit,
        active_deadline_seconds,
        pod_failure_policy: rules,
        restart_on_failure: false,
        ttl_seconds_after_finished,
        indexed,
    }
}

fn exit_codes(
    errs: &mut Errs,
    base: &str,
    v: &Value,
    containers: &[String],
) -> Option<PodFailureMatch> {
    let operator = match v
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "In" => Some(ExitCodeOperator::In),
        "NotIn" => Some(ExitCodeOperator::NotIn),
        "" => {
            errs.required(format!("{base}.operator"));
            None
        }
        other => {
            errs.unsupported(format!("{base}.operator"), other, &["In", "NotIn"]);
            None
        }
    };
    let values: Vec<i32> = v
        .get("values")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_i64())
                .map(|n| n as i32)
                .collect()
        })
        .unwrap_or_default();
    if values.is_empty() {
        errs.required(format!("{base}.values"));
    }
    let mut sorted = values.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != values.len() {
        errs.invalid(
            format!("{base}.values"),
            format!("{values:?}"),
            "must be unique",
        );
    }
    if operator == Some(ExitCodeOperator::In) && values.contains(&0) {
        errs.invalid(
            format!("{base}.values"),
            0,
            "must not be 0 for the In operator",
        );
    }
    let container = v
        .get("containerName")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(name) = &container
        && !containers.iter().any(|c| c == name)
    {
        errs.invalid_str(
            format!("{base}.containerName"),
            name,
            "must be one of the container or initContainer names in the pod template",
        );
    }
    Some(PodFailureMatch::ExitCodes {
        container,
        operator: operator?,
        values,
    })
}

/// accessModes and resources.requests.storage of a claim (document or template):
/// ValidatePersistentVolumeClaimSpec.
fn claim_spec(errs: &mut Errs, base: &str, doc: &Value) -> (Vec<AccessMode>, Option<String>) {
    let at = |f: &str| {
        if base.is_empty() {
            format!("spec.{f}")
        } else {
            format!("{base}.spec.{f}")
        }
    };
    let mut modes = Vec::new();
    match get(doc, &["spec", "accessModes"]).and_then(Value::as_array) {
        None => errs.required_because(at("accessModes"), "at least 1 access mode is required"),
        Some(list) if list.is_empty() => {
            errs.required_because(at("accessModes"), "at least 1 access mode is required")
        }
        Some(list) => {
            for m in list {
                let m = m.as_str().unwrap_or_default();
                match AccessMode::parse(m) {
                    Some(mode) => modes.push(mode),
                    None => errs.unsupported(at("accessModes"), m, AccessMode::NAMES),
                }
            }
            if modes.contains(&AccessMode::ReadWriteOncePod) && modes.len() > 1 {
                errs.forbidden(
                    at("accessModes"),
                    "may not use ReadWriteOncePod with other access modes",
                );
            }
        }
    }
    let storage = match get(doc, &["spec", "resources", "requests", "storage"]) {
        None => {
            errs.required(at("resources[storage]"));
            None
        }
        Some(v) => {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match Quantity::parse(&text) {
                Ok(q) if q.is_zero() => {
                    errs.invalid(at("resources[storage]"), &text, "must be greater than zero");
                    None
                }
                Ok(_) => Some(text),
                Err(e) => {
                    errs.invalid(at("resources[storage]"), &text, &e.to_string());
                    None
                }
            }
        }
    };
    if let Some(mode) = get(doc, &["spec", "volumeMode"]).and_then(Value::as_str)
        && mode != "Filesystem"
    {
        if mode == "Block" {
            errs.not_supported(
                at("volumeMode"),
                "a local volume is a directory (Filesystem)",
            );
        } else {
            errs.unsupported(at("volumeMode"), mode, &["Block", "Filesystem"]);
        }
    }
    (modes, storage)
}

/// A PersistentVolumeClaim document.
pub(crate) fn claim(errs: &mut Errs, doc: &Value) -> Option<Claim> {
    let name = validate::name_subdomain(errs, "metadata.name", metadata_name(doc));
    let namespace = namespace_of(errs, doc);
    let (access_modes, storage) = claim_spec(errs, "", doc);
    Some(Claim {
        namespace: namespace?,
        name: name?,
        access_modes,
        storage,
        owner: None,
    })
}

/// `metadata.name` as written ("" when absent).
fn metadata_name(doc: &Value) -> &str {
    get(doc, &["metadata", "name"])
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `metadata.namespace`, defaulted.
pub(crate) fn namespace_of(errs: &mut Errs, doc: &Value) -> Option<DnsLabel> {
    match get(doc, &["metadata", "namespace"]).and_then(Value::as_str) {
        None | Some("") => DnsLabel::parse(crate::model::DEFAULT_NAMESPACE).ok(),
        Some(ns) => validate::dns1123_label(errs, "metadata.namespace", ns),
    }
}

/// `metadata.name` of a controller: a DNS subdomain; a StatefulSet's at most 63
/// characters less the ordinal's room, since its pods' names become a label
/// value (`statefulset.kubernetes.io/pod-name`).
pub(crate) fn controller_name(
    errs: &mut Errs,
    kind: WorkloadKind,
    doc: &Value,
) -> Option<DnsSubdomain> {
    let name = metadata_name(doc);
    let parsed = validate::name_subdomain(errs, "metadata.name", name)?;
    // Pod names with the hash and suffix must stay DNS labels for the hostname:
    // apps/validation's ValidateDeploymentName is a subdomain, but the
    // StatefulSet's pods carry their name as a label value (63).
    if kind == WorkloadKind::StatefulSet && name.len() > 52 {
        errs.invalid_str(
            "metadata.name",
            name,
            "must be no more than 52 characters (its pods' names are label values)",
        );
        return None;
    }
    Some(parsed)
}
