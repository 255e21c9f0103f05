//! Pod volumes → one host directory per volume, and each volumeMount → a bind mount.

use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, KeyToPath, Volume};
use oci_spec::runtime::{Mount, MountBuilder};
use serde::{Deserialize, Serialize};

use super::process::{field_ref_value, resource_field_value, source_data};
use super::quantity::Quantity;
use super::{Issues, PlanInput};

/// What must exist on the host before a container that mounts the volume starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "kind"
)]
pub enum VolumeSource {
    /// A host path, checked against its `type` when the pod starts
    /// (`""`, `DirectoryOrCreate`, `Directory`, `FileOrCreate`, `File`, `Socket`,
    /// `CharDevice`, `BlockDevice`).
    HostPath { host_path_type: String },
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
    /// Relative to the volume directory; validated: no absolute path, no `..`.
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

/// A `subPath` mount whose source must be resolved inside the volume when the pod
/// starts: the translator checks it lexically, the bundle writer checks that no
/// symlink leads out of the volume (CVE-2017-1002101, CVE-2021-25741).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubPathCheck {
    pub volume_path: PathBuf,
    pub sub_path: String,
}

const DEFAULT_MODE: i32 = 0o644;

/// `path` made only of normal components: relative, no `..`, not empty.
pub fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && !path.starts_with('/')
}

fn mode_of(mode: Option<i32>, default: i32, field: &str, issues: &mut Issues) -> u32 {
    let mode = mode.unwrap_or(default);
    if !(0..=0o777).contains(&mode) {
        issues.push(
            field.to_string(),
            format!(
                "Invalid value: {mode}: must be a number between 0 and 0777 (octal), both inclusive"
            ),
        );
        return DEFAULT_MODE as u32;
    }
    mode as u32
}

fn key_files(
    data: &std::collections::BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: u32,
    optional: bool,
    field: &str,
    issues: &mut Issues,
) -> Vec<ProjectedFile> {
    match items {
        None => data
            .iter()
            .map(|(k, v)| ProjectedFile {
                path: k.clone(),
                content: v.clone(),
                mode: default_mode,
            })
            .collect(),
        Some(items) => {
            let mut files = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if !is_plain_relative(&item.path) {
                    issues.push(
                        format!("{field}.items[{i}].path"),
                        format!(
                            "Invalid value: {:?}: must be a relative path without '..'",
                            item.path
                        ),
                    );
                    continue;
                }
                let Some(content) = data.get(&item.key) else {
                    if !optional {
                        issues.push(
                            format!("{field}.items[{i}].key"),
                            format!("Not found: {:?}", item.key),
                        );
                    }
                    continue;
                };
                let mode = match item.mode {
                    Some(m) => mode_of(Some(m), 0, &format!("{field}.items[{i}].mode"), issues),
                    None => default_mode,
                };
                files.push(ProjectedFile {
                    path: item.path.clone(),
                    content: content.clone(),
                    mode,
                });
            }
            files
        }
    }
}

pub fn plan_volume(
    input: &PlanInput,
    index: usize,
    volume: &Volume,
    issues: &mut Issues,
) -> Option<VolumePlan> {
    let field = format!("spec.volumes[{index}]");
    let dir = input.paths.volume(&volume.name);
    let mut plan = VolumePlan {
        name: volume.name.clone(),
        host_path: dir,
        source: VolumeSource::Directory,
        files: Vec::new(),
    };
    if let Some(hp) = &volume.host_path {
        if !hp.path.starts_with('/') {
            issues.push(
                format!("{field}.hostPath.path"),
                format!("Invalid value: {:?}: must be an absolute path", hp.path),
            );
            return None;
        }
        let t = hp.type_.clone().unwrap_or_default();
        const TYPES: [&str; 8] = [
            "",
            "DirectoryOrCreate",
            "Directory",
            "FileOrCreate",
            "File",
            "Socket",
            "CharDevice",
            "BlockDevice",
        ];
        if !TYPES.contains(&t.as_str()) {
            issues.push(
                format!("{field}.hostPath.type"),
                format!("Unsupported value: {t:?}: supported values: \"\", \"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", \"File\", \"FileOrCreate\", \"Socket\""),
            );
            return None;
        }
        plan.host_path = PathBuf::from(&hp.path);
        plan.source = VolumeSource::HostPath { host_path_type: t };
    } else if let Some(ed) = &volume.empty_dir {
        let size = match &ed.size_limit {
            Some(q) => match Quantity::parse(&q.0).map(|q| q.whole()) {
                Ok(Some(n)) => Some(n),
                _ => {
                    issues.push(
                        format!("{field}.emptyDir.sizeLimit"),
                        format!("Invalid value: {:?}: not a quantity", q.0),
                    );
                    return None;
                }
            },
            None => None,
        };
        match ed.medium.as_deref().unwrap_or_default() {
            "" => {}
            "Memory" => plan.source = VolumeSource::Tmpfs { size_bytes: size },
            other => {
                issues.push(
                    format!("{field}.emptyDir.medium"),
                    format!("not supported: medium {other:?} (only \"\" and \"Memory\")"),
                );
                return None;
            }
        }
    } else if let Some(cm) = &volume.config_map {
        let f = format!("{field}.configMap");
        let default_mode = mode_of(
            cm.default_mode,
            DEFAULT_MODE,
            &format!("{f}.defaultMode"),
            issues,
        );
        let optional = cm.optional == Some(true);
        match source_data(input, false, &cm.name) {
            Some(data) => {
                plan.files = key_files(&data, cm.items.as_ref(), default_mode, optional, &f, issues)
            }
            None if optional => {}
            None => issues.push(format!("{f}.name"), format!("Not found: {:?}", cm.name)),
        }
    } else if let Some(sec) = &volume.secret {
        let f = format!("{field}.secret");
        let default_mode = mode_of(
            sec.default_mode,
            DEFAULT_MODE,
            &format!("{f}.defaultMode"),
            issues,
        );
        let optional = sec.optional == Some(true);
        let name = sec.secret_name.clone().unwrap_or_default();
        plan.source = VolumeSource::Tmpfs { size_bytes: None };
        match source_data(input, true, &name) {
            Some(data) => {
                plan.files = key_files(
                    &data,
                    sec.items.as_ref(),
                    default_mode,
                    optional,
                    &f,
                    issues,
                )
            }
            None if optional => {}
            None => issues.push(format!("{f}.secretName"), format!("Not found: {name:?}")),
        }
    } else if let Some(dapi) = &volume.downward_api {
        let f = format!("{field}.downwardAPI");
        let default_mode = mode_of(
            dapi.default_mode,
            DEFAULT_MODE,
            &format!("{f}.defaultMode"),
            issues,
        );
        for (i, item) in dapi.items.iter().flatten().enumerate() {
            let item_field = format!("{f}.items[{i}]");
            if !is_plain_relative(&item.path) {
                issues.push(
                    format!("{item_field}.path"),
                    format!(
                        "Invalid value: {:?}: must be a relative path without '..'",
                        item.path
                    ),
                );
                continue;
            }
            let value = if let Some(fr) = &item.field_ref {
                field_ref_value(input, fr)
                    .map_err(|e| (format!("{item_field}.fieldRef.fieldPath"), e))
            } else if let Some(rf) = &item.resource_field_ref {
                resource_field_value(input, None, rf)
                    .map_err(|e| (format!("{item_field}.resourceFieldRef"), e))
            } else {
                Err((
                    item_field.clone(),
                    "Required value: fieldRef or resourceFieldRef".to_string(),
                ))
            };
            match value {
                Ok(v) => plan.files.push(ProjectedFile {
                    path: item.path.clone(),
                    content: v.into_bytes(),
                    mode: match item.mode {
                        Some(m) => mode_of(Some(m), 0, &format!("{item_field}.mode"), issues),
                        None => default_mode,
                    },
                }),
                Err((path, msg)) => issues.push(path, msg),
            }
        }
    } else {
        issues.push(field, "not supported: volume source (supported: hostPath, emptyDir, configMap, secret, downwardAPI)".into());
        return None;
    }
    Some(plan)
}

/// A container's volumeMounts as OCI bind mounts, plus the subPath checks.
pub fn container_mounts(
    volumes: &[VolumePlan],
    container: &Container,
    privileged: bool,
    field: &str,
    issues: &mut Issues,
) -> (Vec<Mount>, Vec<SubPathCheck>) {
    let mut mounts = Vec::new();
    let mut checks = Vec::new();
    for (i, vm) in container.volume_mounts.iter().flatten().enumerate() {
        let f = format!("{field}.volumeMounts[{i}]");
        let Some(volume) = volumes.iter().find(|v| v.name == vm.name) else {
            issues.push(format!("{f}.name"), format!("Not found: {:?}", vm.name));
            continue;
        };
        let mut source = volume.host_path.clone();
        if let Some(sub) = vm.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if !is_plain_relative(sub) {
                issues.push(
                    format!("{f}.subPath"),
                    format!("Invalid value: {sub:?}: must be a relative path without '..'"),
                );
                continue;
            }
            source = source.join(sub);
            checks.push(SubPathCheck {
                volume_path: volume.host_path.clone(),
                sub_path: sub.to_string(),
            });
        }
        // Kubernetes: None → private, HostToContainer → rslave, Bidirectional → rshared,
        // which only privileged containers may use (API validation).
        let propagation = match vm.mount_propagation.as_deref() {
            None | Some("None") => "rprivate",
            Some("HostToContainer") => "rslave",
            Some("Bidirectional") if privileged => "rshared",
            Some("Bidirectional") => {
                issues.push(
                    format!("{f}.mountPropagation"),
                    "Forbidden: Bidirectional mount propagation is available only to privileged containers".into(),
                );
                continue;
            }
            Some(other) => {
                issues.push(
                    format!("{f}.mountPropagation"),
                    format!("Unsupported value: {other:?}: supported values: \"Bidirectional\", \"HostToContainer\", \"None\""),
                );
                continue;
            }
        };
        let mut options = vec!["rbind".to_string(), propagation.to_string()];
        if vm.read_only == Some(true) {
            options.push("ro".into());
        }
        mounts.push(bind_mount(&vm.mount_path, &source, options));
    }
    (mounts, checks)
}

pub fn bind_mount(destination: &str, source: &Path, options: Vec<String>) -> Mount {
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(options)
        .build()
        .expect("a bind mount with a destination is a valid mount")
}
