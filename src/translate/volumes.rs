//! Pod volumes → one host directory (or file) per volume, and what must be written
//! into it before any container starts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::downward::{self, Facts};
use crate::model::{DownwardValue, HostPathType, StorageMedium, Volume, VolumeSource as Source};
use crate::paths::PodPaths;

/// What must exist on the host before a container that mounts the volume starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind"
)]
pub enum VolumeSource {
    /// A host path, checked against its `type` when the pod starts.
    HostPath { host_path_type: HostPathType },
    /// A directory under the pod's directory (emptyDir; configMap and downwardAPI
    /// files).
    Directory,
    /// One tmpfs shared by every container of the pod (`emptyDir.medium: Memory`, and
    /// Secret volumes, which the kubelet also keeps off disk).
    Tmpfs { size_bytes: Option<u128> },
}

/// One file projected into a volume (configMap, secret, downwardAPI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectedFile {
    /// Relative to the volume directory, without `..` (a model `RelPath`).
    pub path: String,
    #[serde(skip)]
    pub content: Vec<u8>,
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumePlan {
    pub name: String,
    /// The host directory (or file, for a hostPath file) bind-mounted into containers.
    pub host_path: PathBuf,
    pub source: VolumeSource,
    /// Files written into the volume before any container starts.
    pub files: Vec<ProjectedFile>,
}

pub fn plan_volume(facts: &Facts<'_>, paths: &PodPaths, volume: &Volume) -> VolumePlan {
    let mut plan = VolumePlan {
        name: volume.name.to_string(),
        host_path: paths.volume(volume.name.as_str()),
        source: VolumeSource::Directory,
        files: Vec::new(),
    };
    match &volume.source {
        Source::HostPath { path, kind } => {
            plan.host_path = PathBuf::from(path.as_str());
            plan.source = VolumeSource::HostPath {
                host_path_type: *kind,
            };
        }
        Source::EmptyDir { medium, size_limit } => {
            if *medium == StorageMedium::Memory {
                plan.source = VolumeSource::Tmpfs {
                    size_bytes: size_limit.and_then(|q| q.whole()),
                };
            }
        }
        Source::ConfigMap { files } | Source::Secret { files } => {
            if matches!(volume.source, Source::Secret { .. }) {
                plan.source = VolumeSource::Tmpfs { size_bytes: None };
            }
            plan.files = files
                .iter()
                .map(|f| ProjectedFile {
                    path: f.path.to_string(),
                    content: f.content.clone(),
                    mode: f.mode.bits(),
                })
                .collect();
        }
        Source::DownwardApi { items } => {
            plan.files = items
                .iter()
                .map(|item| ProjectedFile {
                    path: item.path.to_string(),
                    content: match &item.value {
                        DownwardValue::Field(f) => downward::field(facts, f),
                        DownwardValue::Resource(r) => downward::resource(facts.host, r),
                    }
                    .into_bytes(),
                    mode: item.mode.bits(),
                })
                .collect();
        }
    }
    plan
}
