//! Pod volumes → one host directory (or file) per volume, and what must be written
//! into it before any container starts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::downward::{self, Facts};
use crate::model::{
    DownwardItem, DownwardValue, FsGroupChangePolicy, HostPathType, KeyFile, ProjectedItem,
    StorageMedium, Volume, VolumeSource as Source,
};
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
    /// Secret and projected volumes, which the kubelet also keeps off disk).
    Tmpfs { size_bytes: Option<u128> },
}

/// One file projected into a volume (configMap, secret, downwardAPI, projected).
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
    /// A projection of the API (configMap, secret, downwardAPI, projected): written the
    /// kubelet's AtomicWriter way and mounted read-only into every container,
    /// whatever its `readOnly` says (the kubelet's fix for CVE-2017-1002102: one
    /// container must not rewrite what its siblings are given).
    pub projection: bool,
    /// The pod's `fsGroup`, which owns the volume (never a hostPath: the kubelet
    /// leaves the host's files alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<u32>,
    /// A disk-backed emptyDir's `sizeLimit` in bytes: what its usage is
    /// measured against while the pod runs (a memory-backed one is a tmpfs of
    /// that size instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_limit: Option<(u64, String)>,
    /// Every mount of it is read-only (a persistentVolumeClaim's `readOnly`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// `fsGroupChangePolicy: OnRootMismatch`: a volume that holds files (a
    /// claim's) is walked only when its root lacks the group.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub group_on_root_mismatch: bool,
    /// A claim's volume with a group: the node's pods directory, where the
    /// start looks for a started pod that has it mounted already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_pods: Option<PathBuf>,
}

pub fn plan_volume(
    facts: &Facts<'_>,
    paths: &PodPaths,
    claims: &std::collections::BTreeMap<String, PathBuf>,
    node_pods: Option<&std::path::Path>,
    volume: &Volume,
) -> VolumePlan {
    let mut plan = VolumePlan {
        name: volume.name.to_string(),
        host_path: paths.volume(volume.name.as_str()),
        source: VolumeSource::Directory,
        files: Vec::new(),
        projection: false,
        group: facts.pod.spec.fs_group.map(|g| g.get()),
        disk_limit: None,
        read_only: false,
        group_on_root_mismatch: false,
        node_pods: None,
    };
    match &volume.source {
        Source::PersistentVolumeClaim { claim, read_only } => {
            // A local volume: its data directory must exist when the pod starts
            // (made by `pod::write`, which resolved it; after a reboot run.sh finds
            // it or fails). fsGroup is applied to its files as the kubelet's
            // local volume plugin does: at each start, not to a read-only mount
            // (pkg/volume/local SetUpAt), walked whole unless the pod asks for
            // OnRootMismatch.
            if *read_only {
                plan.group = None;
            }
            plan.node_pods = node_pods
                .filter(|_| plan.group.is_some())
                .map(std::path::Path::to_path_buf);
            plan.group_on_root_mismatch =
                facts.pod.spec.fs_group_change_policy == FsGroupChangePolicy::OnRootMismatch;
            plan.read_only = *read_only;
            plan.host_path = claims
                .get(claim.as_str())
                .cloned()
                .unwrap_or_else(|| paths.volume(volume.name.as_str()));
            plan.source = VolumeSource::HostPath {
                host_path_type: HostPathType::Directory,
            };
        }
        Source::HostPath { path, kind } => {
            plan.group = None;
            plan.host_path = PathBuf::from(path.as_str());
            plan.source = VolumeSource::HostPath {
                host_path_type: *kind,
            };
        }
        Source::EmptyDir { medium, size_limit } => {
            let quantity = size_limit.as_ref().map(|(q, _)| *q);
            if *medium == StorageMedium::Memory {
                plan.source = VolumeSource::Tmpfs {
                    size_bytes: quantity.and_then(|q| q.whole()),
                };
            } else if let Some((q, written)) = size_limit {
                // The eviction manager measures only a positive limit
                // (`size.Sign() == 1`).
                let bytes = q
                    .whole()
                    .and_then(|w| u64::try_from(w).ok())
                    .unwrap_or(u64::MAX);
                if bytes > 0 {
                    plan.disk_limit = Some((bytes, written.clone()));
                }
            }
        }
        Source::ConfigMap { files } | Source::Secret { files } => {
            plan.projection = true;
            if matches!(volume.source, Source::Secret { .. }) {
                plan.source = VolumeSource::Tmpfs { size_bytes: None };
            }
            plan.files = files.iter().map(key_file).collect();
        }
        Source::DownwardApi { items } => {
            plan.projection = true;
            plan.files = items.iter().map(|i| downward_file(facts, i)).collect();
        }
        Source::Projected { files } => {
            plan.projection = true;
            // The kubelet's projected volume is a memory-backed emptyDir whatever
            // its sources (pkg/volume/projected wrappedVolumeSpec): a Secret in it
            // never touches the disk, and neither does the rest.
            plan.source = VolumeSource::Tmpfs { size_bytes: None };
            plan.files = files
                .iter()
                .map(|f| match f {
                    ProjectedItem::Key(k) => key_file(k),
                    ProjectedItem::Downward(d) => downward_file(facts, d),
                })
                .collect();
        }
    }
    plan
}

fn key_file(f: &KeyFile) -> ProjectedFile {
    ProjectedFile {
        path: f.path.to_string(),
        content: f.content.clone(),
        mode: f.mode.bits(),
    }
}

fn downward_file(facts: &Facts<'_>, item: &DownwardItem) -> ProjectedFile {
    ProjectedFile {
        path: item.path.to_string(),
        content: match &item.value {
            DownwardValue::Field(f) => downward::field(facts, f),
            DownwardValue::Resource(r) => downward::resource(facts.host, r),
        }
        .into_bytes(),
        mode: item.mode.bits(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::HostInfo;

    #[test]
    fn each_volume_kind_plans_its_host_side() {
        let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {k: v}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {pw: x}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {a: b}}\nspec:\n  volumes:\n    - {name: hp, hostPath: {path: /var/x, type: Socket}}\n    - {name: ed, emptyDir: {}}\n    - {name: mem, emptyDir: {medium: Memory, sizeLimit: 2Mi}}\n    - {name: cm, configMap: {name: cm, defaultMode: 0600}}\n    - {name: sec, secret: {secretName: s}}\n    - {name: dapi, downwardAPI: {items: [{path: l, fieldRef: {fieldPath: metadata.labels}}]}}\n  containers: [{name: c, image: x}]\n";
        let pod = crate::manifest::parse(yaml, "t").unwrap().pod;
        let host = HostInfo {
            node_name: "n".into(),
            host_ip: "192.0.2.1".into(),
            resolv_conf: String::new(),
            hosts: String::new(),
            cpus: 1,
            memory_bytes: 1 << 30,
            oom_score_adj_floor: None,
            security: Default::default(),
            exec_limits: Default::default(),
        };
        let facts = Facts {
            pod: &pod,
            host: &host,
            pod_ip: None,
        };
        let paths = PodPaths::new("/p");
        let plans: Vec<VolumePlan> = pod
            .spec
            .volumes
            .iter()
            .map(|v| plan_volume(&facts, &paths, &Default::default(), None, v))
            .collect();
        type File<'a> = (&'a str, &'a [u8], u32);
        let rows: [(&str, &str, VolumeSource, &[File]); 6] = [
            (
                "hp",
                "/var/x",
                VolumeSource::HostPath {
                    host_path_type: HostPathType::Socket,
                },
                &[],
            ),
            ("ed", "/p/volumes/ed", VolumeSource::Directory, &[]),
            (
                "mem",
                "/p/volumes/mem",
                VolumeSource::Tmpfs {
                    size_bytes: Some(2 << 20),
                },
                &[],
            ),
            (
                "cm",
                "/p/volumes/cm",
                VolumeSource::Directory,
                &[("k", b"v", 0o600)],
            ),
            (
                "sec",
                "/p/volumes/sec",
                VolumeSource::Tmpfs { size_bytes: None },
                &[("pw", b"x", 0o644)],
            ),
            (
                "dapi",
                "/p/volumes/dapi",
                VolumeSource::Directory,
                &[("l", b"a=\"b\"", 0o644)],
            ),
        ];
        for ((name, path, source, files), plan) in rows.iter().zip(&plans) {
            assert_eq!(plan.name, *name);
            assert_eq!(plan.host_path.to_str(), Some(*path), "{name}");
            assert_eq!(plan.source, *source, "{name}");
            let got: Vec<File> = plan
                .files
                .iter()
                .map(|f| (f.path.as_str(), f.content.as_slice(), f.mode))
                .collect();
            assert_eq!(got, *files, "{name}");
            assert_eq!(
                plan.projection,
                ["cm", "sec", "dapi"].contains(name),
                "{name}"
            );
        }
    }
}
