//! PURE: a pod in a user namespace of its own (`hostUsers: false`, KEP-127).
//!
//! Every container, the infra too, joins the one user namespace podshim pins
//! at `<pod>/userns` (root inside is the range's first host id), so the pod's
//! network namespace can be made inside it before any container runs, as
//! containerd makes a userns pod's. What a container sees of the host's files
//! is id-mapped as the kubelet has the runtime do it (KEP-127's idmap mounts),
//! but by podshim, so that the runtime needs no support for it (runc 1.1 has
//! none): each volume (and the pod's /etc files and /dev/shm) is mounted again,
//! id-mapped, under `<pod>/idmapped/<n>`, and config.json binds that instead;
//! the image's layers are id-mapped by the bundle layout under each rootfs
//! overlay. A file owned by root on the host's disk is thus owned by the
//! pod's root inside, and what the pod's root writes is owned by root on disk;
//! fsGroup and the volume modes mean what they mean without a user namespace.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceType};
use serde::{Deserialize, Serialize};

use super::{PodPlan, namespaces};
use crate::paths::PodPaths;
use crate::userns::IdRange;

/// What the bundle layout makes for a userns pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsernsPlan {
    pub range: IdRange,
    /// Where the user namespace is pinned.
    pub pin: PathBuf,
    /// (host path, its id-mapped view) for every bind source podshim maps.
    pub idmapped: Vec<(PathBuf, PathBuf)>,
}

/// Puts every container of `plan` in the user namespace of `range`: the
/// namespace joined by its pin with the range's mappings, each bind of a
/// volume, /etc file or /dev/shm from its id-mapped view, and each subPath
/// bound id-mapped.
pub fn apply(plan: &mut PodPlan, range: IdRange, paths: &PodPaths) {
    let pin = paths.userns();
    let mut sources: Vec<PathBuf> = plan.volumes.iter().map(|v| v.host_path.clone()).collect();
    sources.extend(plan.files.iter().map(|f| f.path.clone()));
    sources.push(plan.shm.clone());
    let mut idmapped: Vec<(PathBuf, PathBuf)> = Vec::new();
    for source in sources {
        if !idmapped.iter().any(|(s, _)| *s == source) {
            let target = paths.idmapped(idmapped.len());
            idmapped.push((source, target));
        }
    }
    let view = |p: &std::path::Path| {
        idmapped
            .iter()
            .find(|(s, _)| s == p)
            .map(|(_, t)| t.clone())
    };
    let mapping = || {
        vec![
            LinuxIdMappingBuilder::default()
                .container_id(0u32)
                .host_id(range.host_id)
                .size(range.size)
                .build()
                .expect("an id mapping"),
        ]
    };
    let pin_str = pin.display().to_string();
    for c in std::iter::once(&mut plan.infra).chain(plan.containers.iter_mut()) {
        if let Some(linux) = c.spec.linux_mut() {
            let mut ns = linux.namespaces().clone().unwrap_or_default();
            ns.insert(
                0,
                namespaces::namespace(LinuxNamespaceType::User, Some(pin_str.clone())),
            );
            linux.set_namespaces(Some(ns));
            // runc 1.1 wants the mappings of a user namespace it joins as well.
            linux.set_uid_mappings(Some(mapping()));
            linux.set_gid_mappings(Some(mapping()));
        }
        if let Some(mounts) = c.spec.mounts_mut() {
            for m in mounts.iter_mut() {
                let bind = m
                    .options()
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"));
                if let (true, Some(target)) = (bind, m.source().as_deref().and_then(view)) {
                    m.set_source(Some(target));
                }
            }
        }
        for sp in &mut c.sub_paths {
            sp.userns = Some(pin.clone());
        }
    }
    plan.userns = Some(UsernsPlan {
        range,
        pin,
        idmapped,
    });
}
