//! The controllers of a manifest (Deployment, ReplicaSet, StatefulSet, DaemonSet,
//! Job) and the claims it makes, as podshim runs them on one node: typed and
//! validated by `manifest`, read by `workload` (apply, the job controller) and the
//! CLI.

use serde::{Deserialize, Serialize};

use super::{DnsLabel, DnsSubdomain, ExitCodeOperator};

/// A controller kind podshim runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 5] = [
        WorkloadKind::Deployment,
        WorkloadKind::ReplicaSet,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::Job,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::Job => "Job",
        }
    }

    pub fn parse(kind: &str) -> Option<WorkloadKind> {
        WorkloadKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The API group/version the kind is served at (and its ownerReferences say).
    pub fn api_version(self) -> &'static str {
        match self {
            WorkloadKind::Job => "batch/v1",
            _ => "apps/v1",
        }
    }

    /// `kubectl`'s short resource name, as `ps` prints an owner (`deployment/web`).
    pub fn resource(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::ReplicaSet => "replicaset",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
            WorkloadKind::Job => "job",
        }
    }
}

/// metadata.ownerReferences[*] of a pod a controller made, as the controller
/// writes it (controller and blockOwnerDeletion true).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub controller: bool,
    pub block_owner_deletion: bool,
}

/// A count or a percentage of the replicas (`intstr.IntOrString`), for
/// maxSurge and maxUnavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOrPercent {
    Int(u32),
    Percent(u32),
}

impl IntOrPercent {
    /// The count for `replicas`, rounded up (maxSurge) or down (maxUnavailable),
    /// as the deployment controller's ResolveFenceposts does.
    pub fn resolve(self, replicas: u32, round_up: bool) -> u32 {
        match self {
            IntOrPercent::Int(n) => n,
            IntOrPercent::Percent(p) => {
                let scaled = u64::from(p) * u64::from(replicas);
                let n = if round_up {
                    scaled.div_ceil(100)
                } else {
                    scaled / 100
                };
                u32::try_from(n).unwrap_or(u32::MAX)
            }
        }
    }
}

/// How pods whose template changed are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateStrategy {
    /// At most `max_surge` pods above `replicas` and `max_unavailable` below it
    /// while old pods are replaced (Deployment and DaemonSet RollingUpdate, a
    /// StatefulSet's RollingUpdate as 0/1, one pod at a time).
    RollingUpdate {
        max_surge: IntOrPercent,
        max_unavailable: IntOrPercent,
    },
    /// Every old pod stopped before any new one starts (Deployment `Recreate`).
    Recreate,
    /// Old pods are replaced only when they are gone (`OnDelete`).
    OnDelete,
}

/// One controller of the manifest.
#[derive(Debug, Clone)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub namespace: DnsLabel,
    pub name: DnsSubdomain,
    /// As given, else derived from kind, namespace and name (stable across runs).
    pub uid: String,
    /// Which document of the input it is (1-based).
    pub document: usize,
    /// The pods it wants now (`replicas`; one for a DaemonSet; none for a Job,
    /// whose controller makes them as it runs).
    pub replicas: u32,
    /// The hash its pods carry (`pod-template-hash`, `controller-revision-hash`).
    pub template_hash: String,
    pub strategy: UpdateStrategy,
    /// A StatefulSet's `OrderedReady`: each pod running and ready before the next
    /// starts (and stops in reverse order).
    pub ordered: bool,
    /// `minReadySeconds`: a new pod counts as available once it has been ready
    /// this long (a rollout, and OrderedReady, wait for that).
    pub min_ready_seconds: u32,
    pub job: Option<JobSpec>,
    /// A StatefulSet's volumeClaimTemplates' names: its ordinals' claims are
    /// `<template>-<set>-<ordinal>`.
    pub claim_templates: Vec<String>,
    /// A StatefulSet's `persistentVolumeClaimRetentionPolicy`.
    pub claim_retention: ClaimRetention,
    /// A StatefulSet's first ordinal (`ordinals.start`): its pods are
    /// `start..start + replicas`.
    pub ordinal_start: u32,
}

/// `persistentVolumeClaimRetentionPolicy` (KEP-1847): whether the ordinals'
/// claims go with the set (`whenDeleted: Delete`) and with the ordinals a
/// scale-down removes (`whenScaled: Delete`); both Retain by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimRetention {
    pub delete_when_deleted: bool,
    pub delete_when_scaled: bool,
}

impl Workload {
    /// Whether `claim` is one of this StatefulSet's ordinals' claims
    /// (`<template>-<set>-<ordinal>`, the controller's own match by name).
    pub fn owns_claim(&self, claim: &str) -> Option<u32> {
        self.claim_templates
            .iter()
            .find_map(|t| self.pod_ordinal(claim.strip_prefix(t.as_str())?.strip_prefix('-')?))
    }

    /// The ordinal of this StatefulSet's pod `pod` (`<set>-<ordinal>`).
    pub fn pod_ordinal(&self, pod: &str) -> Option<u32> {
        pod.strip_prefix(self.name.as_str())?
            .strip_prefix('-')
            // An ordinal as the controller writes it: no sign, no leading 0.
            .filter(|n| {
                !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && (n.len() == 1 || !n.starts_with('0'))
            })?
            .parse()
            .ok()
    }

    pub fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.kind.api_version().to_string(),
            kind: self.kind.as_str().to_string(),
            name: self.name.to_string(),
            uid: self.uid.clone(),
            controller: true,
            block_owner_deletion: true,
        }
    }

    /// `deployment/web`, as kubectl names it.
    pub fn display(&self) -> String {
        format!("{}/{}", self.kind.resource(), self.name)
    }
}

/// What a Job asks (batch/v1 JobSpec), on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// `completions`; None: a work queue, complete once one pod succeeded and
    /// none is active.
    pub completions: Option<u32>,
    pub parallelism: u32,
    pub backoff_limit: u32,
    pub active_deadline_seconds: Option<u64>,
    pub pod_failure_policy: Vec<PodFailureRule>,
    /// The template's restartPolicy is OnFailure: failed containers restart in
    /// place, and their restarts count toward backoffLimit.
    pub restart_on_failure: bool,
    /// `ttlSecondsAfterFinished`: the Job and its pods are removed this long
    /// after it ended (the TTL-after-finished controller's cascade).
    pub ttl_seconds_after_finished: Option<u64>,
    /// `completionMode: Indexed`: each index below `completions` (which is
    /// then set) must have one pod that succeeded.
    pub indexed: bool,
}

/// One `podFailurePolicy.rules[*]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFailureRule {
    pub action: PodFailureAction,
    pub on: PodFailureMatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodFailureAction {
    FailJob,
    Ignore,
    Count,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodFailureMatch {
    /// `onExitCodes`: a container (or any, when None) terminated with a code that
    /// is (In) or is not (NotIn) among `values`; 0 never matches.
    ExitCodes {
        container: Option<String>,
        operator: ExitCodeOperator,
        values: Vec<i32>,
    },
    /// `onPodConditions`: the failed pod has a condition of this type and status.
    Conditions(Vec<(String, String)>),
}

/// How a claim may be mounted (`accessModes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessMode {
    ReadWriteOnce,
    ReadOnlyMany,
    ReadWriteMany,
    /// One pod at a time, node-wide.
    ReadWriteOncePod,
}

impl AccessMode {
    pub const NAMES: &'static [&'static str] = &[
        "ReadOnlyMany",
        "ReadWriteMany",
        "ReadWriteOnce",
        "ReadWriteOncePod",
    ];

    pub fn parse(s: &str) -> Option<AccessMode> {
        Some(match s {
            "ReadWriteOnce" => AccessMode::ReadWriteOnce,
            "ReadOnlyMany" => AccessMode::ReadOnlyMany,
            "ReadWriteMany" => AccessMode::ReadWriteMany,
            "ReadWriteOncePod" => AccessMode::ReadWriteOncePod,
            _ => return None,
        })
    }
}

/// A PersistentVolumeClaim: a document of the input, a StatefulSet's
/// volumeClaimTemplate for one ordinal, or one made on first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub namespace: DnsLabel,
    pub name: DnsSubdomain,
    pub access_modes: Vec<AccessMode>,
    /// `resources.requests.storage`, as written.
    pub storage: Option<String>,
    /// The uid of the StatefulSet whose volumeClaimTemplates made it: the one
    /// whose persistentVolumeClaimRetentionPolicy may remove it.
    pub owner: Option<String>,
}
