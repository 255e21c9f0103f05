//! Writes a [`PodPlan`] to disk and returns the [`RunPlan`] of what it made: the
//! pod's files and volumes, one bundle directory per container (config.json +
//! rootfs), the rootfs overlay mounts.
//!
//! What to make is laid out purely ([`layout`], golden-tested); [`ensure`] makes
//! the setup steps (and makes them again before a later start); [`write`] does both
//! and writes the files. Mounts go through [`Mounter`] (ARCHITECTURE.md rule 2); a
//! failed write undoes every mount it made (rule 7).

pub mod envfile;
mod mounts;
pub mod overlay;
pub mod ownership;
pub mod projection;
pub mod resolve;
mod setup;
pub mod subpath;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use mounts::{
    MountTable, Mounter, SystemMounter, is_mount_point, mount_points, mounts_under,
    unescape_mountinfo, unmount_all_under,
};
pub use setup::{HOST_DIR_MODE, HOST_FILE_MODE, HostPaths, When, ensure, host_path};

use crate::image::StoredImage;
use crate::model::ContainerKind;
use crate::paths::PodPaths;
use crate::run_plan::{ContainerUser, ImageUse, RunContainer, RunPlan, SetupStep};
use crate::translate::{
    ContainerPlan, PodPlan, SHM_SIZE, UserLookup, VolumePlan, VolumeSource, render_config,
};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error("{path}: {action}: {err}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        err: io::Error,
    },
    #[error("volume {volume:?}: hostPath {path}: {message}")]
    HostPath {
        volume: String,
        path: PathBuf,
        message: String,
    },
    /// fsGroup could not be applied to a claim's files: the pod does not
    /// start (the kubelet's SetUpAt fails the mount).
    #[error("volume {volume:?}: {message}")]
    Ownership { volume: String, message: String },
    #[error("container {container:?}: subPath {sub_path:?}: {message}")]
    SubPath {
        container: String,
        sub_path: String,
        message: String,
    },
    /// A `fileKeyRef` that cannot be read (the kubelet's
    /// CreateContainerConfigError): the start fails, naming the variable.
    #[error("container {container:?}: env {name}: {message}")]
    EnvFile {
        container: String,
        name: String,
        message: String,
    },
    #[error("container {container:?}: user {user:?}: {message}")]
    User {
        container: String,
        user: String,
        message: String,
    },
    #[error("container {container:?}: image {image} has no layers in the store")]
    MissingImage { container: String, image: String },
    #[error(
        "container {container:?}: image {image} has {layers} layers: overlayfs stacks at most {max} (OVL_MAX_STACK)",
        max = overlay::MAX_LOWER_LAYERS
    )]
    TooManyLayers {
        container: String,
        image: String,
        layers: usize,
    },
    #[error("container {container:?}: the rootfs overlay cannot name {path}: it {why}")]
    OverlayPath {
        container: String,
        path: PathBuf,
        why: &'static str,
    },
    #[error(
        "{path}: a memory-backed volume mounted anew has lost its files ({}); write the bundles again (podshim generate, or up from the manifest)",
        files.join(", ")
    )]
    LostFiles { path: PathBuf, files: Vec<String> },
    #[error("{0}\n  and while undoing it: {1}")]
    Rollback(Box<BundleError>, String),
}

pub(crate) fn io_err(
    path: &Path,
    action: &'static str,
) -> impl FnOnce(io::Error) -> BundleError + use<> {
    let path = path.to_path_buf();
    move |err| BundleError::Io { path, action, err }
}

/// Unmounts `mounted` in reverse after `err`, reporting both when that fails too.
pub(crate) fn rollback(
    err: BundleError,
    mounted: &[PathBuf],
    mounter: &dyn Mounter,
) -> BundleError {
    let failures: Vec<String> = mounted
        .iter()
        .rev()
        .filter_map(|m| {
            mounter
                .unmount(m)
                .err()
                .map(|e| format!("unmount {}: {e}", m.display()))
        })
        .collect();
    if failures.is_empty() {
        err
    } else {
        BundleError::Rollback(Box::new(err), failures.join("; "))
    }
}

/// The largest `/etc/passwd` or `/etc/group` of an image podshim reads.
pub const MAX_ETC_FILE: u64 = 10 << 20;

/// What writing `plan` under `base` makes, and what `images` (keyed by normalised
/// name) it uses. Pure: paths, mounts and steps only.
pub fn layout(
    plan: &PodPlan,
    images: &BTreeMap<String, StoredImage>,
    base: &Path,
) -> Result<RunPlan, BundleError> {
    let paths = PodPaths::new(base);
    let mut setup = Vec::new();
    if let Some(u) = &plan.userns {
        setup.push(SetupStep::UserNamespace {
            pin: u.pin.clone(),
            range: u.range,
        });
    }
    setup.push(SetupStep::Tmpfs {
        target: plan.shm.clone(),
        options: format!("mode=1777,size={SHM_SIZE}"),
        files: Vec::new(),
    });
    let pod = format!("{}/{}", plan.namespace, plan.name);
    setup.extend(plan.volumes.iter().flat_map(|v| volume_steps(v, &pod)));
    // The views after what they show: a tmpfs volume is id-mapped once mounted.
    let mut idmapped: Vec<(PathBuf, PathBuf)> = Vec::new();
    if let Some(u) = &plan.userns {
        idmapped = u.idmapped.clone();
        setup.extend(
            u.idmapped
                .iter()
                .map(|(source, target)| SetupStep::IdmapMount {
                    source: source.clone(),
                    target: target.clone(),
                    userns: u.pin.clone(),
                    read_only: false,
                }),
        );
    }
    let mut used: BTreeMap<String, String> = BTreeMap::new();
    for c in &plan.containers {
        let name = c.image.clone().unwrap_or_default();
        let image = images.get(&name).ok_or_else(|| BundleError::MissingImage {
            container: c.name.clone(),
            image: name.clone(),
        })?;
        used.insert(image.name.to_string(), image.manifest_digest.clone());
        let mut lower = image.layer_dirs.clone();
        if let Some(u) = &plan.userns {
            // Each layer is id-mapped once for the pod, under every rootfs
            // that stacks it.
            for layer in &mut lower {
                let view = match idmapped.iter().find(|(s, _)| s == layer) {
                    Some((_, view)) => view.clone(),
                    None => {
                        let view = paths.idmapped(idmapped.len());
                        idmapped.push((layer.clone(), view.clone()));
                        setup.push(SetupStep::IdmapMount {
                            source: layer.clone(),
                            target: view.clone(),
                            userns: u.pin.clone(),
                            read_only: true,
                        });
                        view
                    }
                };
                *layer = view;
            }
        }
        if lower.is_empty() {
            // overlayfs needs a lower layer: an image with no layers gets an empty one.
            let empty = paths.empty_layer(&c.id);
            setup.push(SetupStep::Directory {
                path: empty.clone(),
                mode: 0o755,
                group: None,
            });
            lower.push(empty);
        }
        let (upper, work) = (paths.overlay_upper(&c.id), paths.overlay_work(&c.id));
        // Options longer than mount(2)'s page are no reason to refuse: the
        // mounter passes layers one by one (`lowerdir+`), run.sh by short links.
        overlay::check(&lower, &upper, &work).map_err(|refusal| match refusal {
            overlay::OverlayRefusal::TooManyLayers(layers) => BundleError::TooManyLayers {
                container: c.name.clone(),
                image: name.clone(),
                layers,
            },
            overlay::OverlayRefusal::Path(path, why) => BundleError::OverlayPath {
                container: c.name.clone(),
                path,
                why,
            },
        })?;
        setup.push(SetupStep::Overlay {
            target: paths.rootfs(&c.id),
            lower,
            upper,
            work,
            owner: plan.userns.as_ref().map(|u| u.range.host_id),
        });
    }
    let run = |c: &ContainerPlan| RunContainer {
        id: c.id.clone(),
        name: c.name.clone(),
        kind: c.kind,
        image: c.image.clone(),
        stop_signal: c.stop_signal,
        bundle: paths.bundle(&c.id),
        joins: c.joins.clone(),
        sub_paths: c.sub_paths.clone(),
        probes: c.probes.clone(),
        hooks: c.hooks.clone(),
        termination_message_policy: c.termination_message_policy,
        restart_policy: c.restart_policy,
        restart_rules: c.restart_rules.clone(),
        user: None,
        file_env: c.file_env.files().cloned().collect(),
        stdio: c.stdio,
        resources: c.resources.as_ref().map(crate::run_plan::PlanResources::of),
        resize_policy: c.resize_policy,
    };
    // Last: the pod's cgroup, once everything it would hold can run.
    setup.push(SetupStep::PodCgroup {
        cgroup: plan.cgroup.clone(),
        containers: plan.all().map(|c| c.id.clone()).collect(),
    });
    Ok(RunPlan {
        version: crate::run_plan::VERSION,
        pod_id: plan.pod_id.clone(),
        namespace: plan.namespace.clone(),
        name: plan.name.clone(),
        uid: plan.uid.clone(),
        restart_policy: plan.restart_policy,
        termination_grace_period_seconds: plan.termination_grace_period_seconds,
        active_deadline_seconds: plan.active_deadline_seconds,
        qos_class: Some(plan.qos_class),
        base: base.to_path_buf(),
        setup,
        infra: run(&plan.infra),
        containers: plan.containers.iter().map(run).collect(),
        images: used
            .into_iter()
            .map(|(name, manifest_digest)| ImageUse {
                name,
                manifest_digest,
            })
            .collect(),
        pod_resources: plan
            .pod_resources
            .as_ref()
            .map(crate::run_plan::PlanResources::of),
        volume_limits: plan
            .volumes
            .iter()
            .filter_map(|v| {
                let (bytes, written) = v.disk_limit.clone()?;
                Some(crate::run_plan::VolumeLimit {
                    name: v.name.clone(),
                    path: v.host_path.clone(),
                    bytes,
                    written,
                })
            })
            .collect(),
        network: None,
    })
}

fn volume_steps(volume: &VolumePlan, pod: &str) -> Vec<SetupStep> {
    let path = volume.host_path.clone();
    let step = match &volume.source {
        VolumeSource::HostPath { host_path_type } => {
            let check = SetupStep::HostPath {
                volume: volume.name.clone(),
                path: path.clone(),
                kind: *host_path_type,
            };
            // Only a claim's volume has a group here (a hostPath never does).
            let Some(group) = volume.group else {
                return vec![check];
            };
            return vec![
                check,
                SetupStep::VolumeOwnership {
                    volume: volume.name.clone(),
                    path,
                    group,
                    read_only: volume.read_only,
                    on_root_mismatch: volume.group_on_root_mismatch,
                    node_pods: volume.node_pods.clone(),
                    pod: pod.to_string(),
                },
            ];
        }
        // emptyDir is world-writable like the kubelet's (0777), whatever the
        // umask; with fsGroup its root has that group and the setgid bit, so what
        // containers create in it has the group too (SetVolumeOwnership).
        VolumeSource::Directory => SetupStep::Directory {
            path,
            mode: if volume.group.is_some() {
                0o2777
            } else {
                0o777
            },
            group: volume.group,
        },
        VolumeSource::Tmpfs { size_bytes } => {
            let mut options = match volume.group {
                Some(gid) => format!("mode=2777,gid={gid}"),
                None => "mode=0777".to_string(),
            };
            if let Some(size) = size_bytes {
                options.push_str(&format!(",size={size}"));
            }
            SetupStep::Tmpfs {
                target: path,
                options,
                files: volume
                    .files
                    .iter()
                    .filter_map(|f| crate::model::RelPath::parse(&f.path).ok())
                    .collect(),
            }
        }
    };
    vec![step]
}

/// Writes `plan` as `run` (its [`layout`]) lays it out: the pod's files, the setup
/// steps, the volumes' files, every bundle; returns the run plan, the one thing
/// that is serialized. On failure the mounts made are undone (the caller removes
/// what is left of the base directory).
pub fn write(
    plan: &PodPlan,
    run: RunPlan,
    mounter: &dyn Mounter,
    host_paths: HostPaths,
) -> Result<RunPlan, BundleError> {
    let base = run.base.clone();
    let base = base.as_path();
    // The pod directory holds secrets and rootfs upper dirs: owner only.
    crate::fsutil::mkdir_mode(base, 0o700).map_err(io_err(base, "create directory"))?;
    for file in &plan.files {
        write_file(&file.path, file.content.as_bytes(), file.mode)?;
    }
    let mounted = ensure(&run.setup, mounter, host_paths, When::Writing)?;
    match write_bundles(plan) {
        Ok(users) => {
            let mut run = run;
            for (id, user) in users {
                if let Some(c) = run.containers.iter_mut().find(|c| c.id == id) {
                    c.user = Some(user);
                }
            }
            Ok(run)
        }
        Err(err) => Err(rollback(err, &mounted, mounter)),
    }
}

fn write_bundles(plan: &PodPlan) -> Result<Vec<(String, ContainerUser)>, BundleError> {
    for volume in plan.volumes.iter().filter(|v| v.projection) {
        // The volume is a fresh directory of podshim's (or its tmpfs), so no
        // symlink can be in the way yet.
        projection::write(
            &volume.host_path,
            &volume.files,
            SystemTime::now(),
            volume.group,
        )?;
    }
    let infra_rootfs = root_path(&plan.infra);
    crate::pause::write_rootfs(&infra_rootfs)
        .map_err(io_err(&infra_rootfs, "write the pause rootfs"))?;
    write_config(&plan.infra, &render_config(&plan.infra.spec))?;
    let mut users = Vec::new();
    for c in &plan.containers {
        if let Some(user) = write_container(c)? {
            users.push((c.id.clone(), user));
        }
    }
    Ok(users)
}

fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<(), BundleError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent, "create directory"))?;
    }
    crate::fsutil::write_atomic(path, content, mode).map_err(io_err(path, "write"))
}

fn root_path(c: &ContainerPlan) -> PathBuf {
    c.spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default()
}

fn write_config(c: &ContainerPlan, config: &str) -> Result<(), BundleError> {
    let rootfs = root_path(c);
    let bundle = rootfs.parent().unwrap_or(Path::new("/"));
    write_file(&crate::paths::config_file(bundle), config.as_bytes(), 0o600)
}

/// Writes a container's config.json, its user finished from the rootfs; returns
/// the ids it runs as (what Kubernetes reports as `status.containerStatuses[].user`).
fn write_container(c: &ContainerPlan) -> Result<Option<ContainerUser>, BundleError> {
    debug_assert!(c.kind != ContainerKind::Infra);
    let mut spec = c.spec.clone();
    let mut resolved = None;
    if let (Some(lookup), Some(process)) = (&c.user_lookup, spec.process_mut()) {
        let found = lookup_user(&c.name, &root_path(c), lookup)?;
        if c.run_as_non_root && found.uid == 0 {
            return Err(BundleError::User {
                container: c.name.clone(),
                user: lookup.user.clone(),
                message: "container has runAsNonRoot and image will run as root".into(),
            });
        }
        let u = process.user_mut();
        u.set_uid(found.uid);
        // runAsGroup, when given, was already set and wins over the passwd group.
        if !lookup.keep_gid {
            u.set_gid(found.gid);
        }
        // containerd: the primary group (ensureAdditionalGids), the image's
        // groups of the user (WithAdditionalGIDs, unless Strict), the pod's
        // (WithSupplementalGroups), merged by mergeGids into a sorted set. runc
        // hands them to setgroups(2) as given, without reading /etc/group
        // itself for a numeric "uid:gid".
        let mut groups: Vec<u32> = std::iter::once(u.gid())
            .chain(found.groups)
            .chain(u.additional_gids().iter().flatten().copied())
            .collect();
        groups.sort_unstable();
        groups.dedup();
        u.set_additional_gids(Some(groups.clone()));
        resolved = Some(ContainerUser {
            uid: found.uid,
            gid: u.gid(),
            supplemental_groups: groups,
        });
    }
    if let Some(log) = &c.termination_log {
        write_file(log, b"", 0o666)?;
    }
    if !c.file_env.is_empty() {
        // Values (a Secret's, a `value`'s) beside config.json, as private.
        let root = root_path(c);
        let path = envfile::steps_file(root.parent().unwrap_or(Path::new("/")));
        let text = serde_json::to_vec(&c.file_env).expect("env steps serialize");
        write_file(&path, &text, 0o600)?;
    }
    write_config(c, &render_config(&spec))?;
    Ok(resolved)
}

/// Linux's NGROUPS_MAX: the most supplementary groups a process can have.
const NGROUPS_MAX: usize = 65536;

/// A user as resolved in the rootfs.
#[derive(Debug, PartialEq, Eq)]
struct FoundUser {
    uid: u32,
    gid: u32,
    /// The image's supplementary groups of the user (when asked for).
    groups: Vec<u32>,
}

/// Looks a user up in the rootfs's /etc/passwd (and, for its groups,
/// /etc/group), read inside the rootfs (never through a symlink to the host's)
/// and bounded. A numeric user needs no entry (its group is then 0, as
/// containerd's `WithUserID` has it); a name must have one.
fn lookup_user(
    container: &str,
    rootfs: &Path,
    lookup: &UserLookup,
) -> Result<FoundUser, BundleError> {
    let UserLookup {
        user, image_groups, ..
    } = lookup;
    let err = |message: String| BundleError::User {
        container: container.to_string(),
        user: user.clone(),
        message,
    };
    let read = |name: &str| -> Result<String, BundleError> {
        let bytes = resolve::read_in_root(rootfs, &["etc", name], MAX_ETC_FILE)
            .map_err(|e| err(format!("the image's {e}")))?;
        Ok(String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned())
    };
    let passwd = read("passwd")?;
    let numeric = user.parse::<u32>().ok();
    // passwd(5): name:password:uid:gid:gecos:home:shell. A uid matches by its
    // id field, a name by its name (runc's GetExecUser matches either).
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| match numeric {
            Some(uid) => f.get(2).and_then(|u| u.parse::<u32>().ok()) == Some(uid),
            None => f.first() == Some(&user.as_str()),
        });
    let uid = match (numeric, &entry) {
        (Some(uid), _) => uid,
        (None, Some(f)) => f
            .get(2)
            .and_then(|u| u.parse().ok())
            .ok_or_else(|| err("its /etc/passwd entry has no numeric uid".into()))?,
        (None, None) => return Err(err("no such user in the image's /etc/passwd".into())),
    };
    let gid = entry
        .as_ref()
        .and_then(|f| f.get(3).and_then(|g| g.parse().ok()))
        .unwrap_or(0);
    let name = entry
        .as_ref()
        .and_then(|f| f.first())
        .map(|n| n.to_string());
    let mut groups = Vec::new();
    if let (true, Some(name)) = (*image_groups, &name) {
        let group_file = read("group")?;
        // group(5): name:password:gid:member,member.
        for f in group_file.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            // containerd's WithAdditionalGIDs: groups that list the user as a
            // member, not the one named after the user ("only supplemental").
            // Members as runc's parser reads them: split on ',', not trimmed.
            let member = f.get(3).is_some_and(|m| m.split(',').any(|m| m == name));
            if member && f.first() != Some(&name.as_str()) {
                groups.extend(f.get(2).and_then(|g| g.parse::<u32>().ok()));
            }
            // setgroups(2) takes at most NGROUPS_MAX: an image listing the user
            // in more is refused, not copied into every record.
            if groups.len() > NGROUPS_MAX {
                return Err(err(format!(
                    "the image's /etc/group lists the user in more than {NGROUPS_MAX} groups"
                )));
            }
        }
    }
    Ok(FoundUser { uid, gid, groups })
}

/// The largest config.json podshim reads back (its own, written by [`write`]).
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Before `c` first runs for the pod whose state is in `pod_dir`: marks its
/// config.json with that pod directory and, once the infra runs, writes the infra's
/// pid into its namespace paths (`/proc/<infra-pid>/ns/*`, the design's shape);
/// atomically.
pub fn claim(c: &RunContainer, pod_dir: &Path, infra_pid: Option<i32>) -> Result<(), BundleError> {
    edit_config(c, |config| {
        crate::translate::namespaces::claim(config, &pod_dir.to_string_lossy());
        if let Some(pid) = infra_pid {
            crate::translate::namespaces::join_infra(config, pid);
        }
        Ok(())
    })
}

/// Reads `c`'s config.json (podshim's own, bounded), lets `change` edit it, and
/// writes it back atomically.
pub(crate) fn edit_config(
    c: &RunContainer,
    change: impl FnOnce(&mut serde_json::Value) -> Result<(), BundleError>,
) -> Result<(), BundleError> {
    let path = c.config_file();
    let bytes = crate::fsutil::read_regular(&path, MAX_CONFIG_BYTES).map_err(|e| {
        io_err(&path, "read")(match e {
            crate::fsutil::ReadError::Io(e) => e,
            crate::fsutil::ReadError::TooLarge => io::Error::other("too large"),
        })
    })?;
    let mut config: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| io_err(&path, "parse")(io::Error::other(e)))?;
    change(&mut config)?;
    let text = crate::translate::render_value(config);
    crate::fsutil::write_atomic(&path, text.as_bytes(), 0o600).map_err(io_err(&path, "write"))
}

/// Unmounts everything mounted under `base` and removes it.
pub fn remove(base: &Path, mounter: &dyn Mounter) -> Result<(), BundleError> {
    unmount_all_under(base, mounter).map_err(io_err(base, "unmount"))?;
    if !base.exists() {
        return Ok(());
    }
    // remove_dir_all descends into mounts: never with one left under `base` (a
    // bind of a hostPath or a volume would lose its files).
    let left = mounts_under(base).map_err(io_err(base, "list the mounts under"))?;
    if let Some(m) = left.first() {
        return Err(BundleError::Io {
            path: base.to_path_buf(),
            action: "remove",
            err: std::io::Error::other(format!("{} is still mounted", m.display())),
        });
    }
    fs::remove_dir_all(base).map_err(io_err(base, "remove"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mounter whose unmounts do nothing (as when one fails quietly, or a mount
    /// is made again meanwhile).
    struct StuckMounts;
    impl Mounter for StuckMounts {
        fn mount_overlay(&self, _: &Path, _: &str) -> std::io::Result<()> {
            unreachable!()
        }
        fn mount_tmpfs(&self, _: &Path, _: &str) -> std::io::Result<()> {
            unreachable!()
        }
        fn bind_fd(&self, _: std::os::fd::BorrowedFd<'_>, _: &Path) -> std::io::Result<()> {
            unreachable!()
        }
        fn mount_idmapped(
            &self,
            _: std::os::fd::BorrowedFd<'_>,
            _: &Path,
            _: std::os::fd::BorrowedFd<'_>,
            _: bool,
        ) -> std::io::Result<()> {
            unreachable!()
        }
        fn unmount(&self, _: &Path) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn remove_refuses_a_directory_that_still_has_a_mount_under_it() {
        if !nix::unistd::geteuid().is_root() {
            return crate::testing::cannot_run("mounting a tmpfs needs root");
        }
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("pod");
        let vol = base.join("volumes/data");
        fs::create_dir_all(&vol).unwrap();
        SystemMounter.mount_tmpfs(&vol, "size=1m").unwrap();
        fs::write(vol.join("precious"), "keep").unwrap();
        let err = remove(&base, &StuckMounts).unwrap_err().to_string();
        let kept = fs::read_to_string(vol.join("precious"));
        SystemMounter.unmount(&vol).unwrap();
        assert!(err.contains("is still mounted"), "{err}");
        assert_eq!(kept.unwrap(), "keep", "remove descended into the mount");
        remove(&base, &SystemMounter).unwrap();
        assert!(!base.exists());
    }

    /// A user as the translator leaves it (its gid from /etc/passwd).
    fn user_lookup(user: &str, image_groups: bool) -> UserLookup {
        UserLookup {
            user: user.into(),
            keep_gid: false,
            image_groups,
        }
    }

    #[test]
    fn user_names_and_uids_resolve_in_the_rootfs_passwd() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("etc")).unwrap();
        fs::write(
            tmp.path().join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\nweb:x:33:44::/:/bin/sh\n",
        )
        .unwrap();
        let ids = |user: &str| {
            let f = lookup_user("c", tmp.path(), &user_lookup(user, false)).unwrap();
            (f.uid, f.gid)
        };
        assert_eq!(ids("web"), (33, 44));
        // A uid's group is its passwd entry's (containerd's WithUserID), else 0.
        assert_eq!(ids("33"), (33, 44));
        assert_eq!(ids("4000"), (4000, 0));
        let err = lookup_user("c", tmp.path(), &user_lookup("nobody", false)).unwrap_err();
        assert!(err.to_string().contains("no such user"), "{err}");
    }

    #[test]
    fn merge_adds_the_groups_that_list_the_user_and_strict_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("etc")).unwrap();
        fs::write(
            tmp.path().join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            tmp.path().join("etc/group"),
            "root:x:0:\napp:x:1000:app\nstaff:x:50:web,app\nspaced:x:60:web, app\naudio:x:29:application\nextra:x:50000:app\n",
        )
        .unwrap();
        let found = |user: &str, image_groups| {
            lookup_user("c", tmp.path(), &user_lookup(user, image_groups)).unwrap()
        };
        // By name or by uid; not the group named after the user, not a
        // member whose name only starts with the user's, not " app" (runc's
        // parser does not trim).
        for user in ["app", "1000"] {
            assert_eq!(
                found(user, true),
                FoundUser {
                    uid: 1000,
                    gid: 1000,
                    groups: vec![50, 50000]
                },
                "{user}"
            );
            assert_eq!(found(user, false).groups, Vec::<u32>::new());
        }
        // A uid with no passwd entry has no name to be a member by.
        assert_eq!(found("2000", true).groups, Vec::<u32>::new());
    }

    #[test]
    fn an_image_listing_the_user_in_more_than_ngroups_max_groups_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("etc")).unwrap();
        fs::write(
            tmp.path().join("etc/passwd"),
            "app:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        let groups: String = (0..=NGROUPS_MAX)
            .map(|i| format!("g{i}:x:{}:app\n", 100_000 + i))
            .collect();
        fs::write(tmp.path().join("etc/group"), groups).unwrap();
        let lookup = user_lookup("app", true);
        let err = lookup_user("c", tmp.path(), &lookup)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 65536 groups"), "{err}");
    }

    #[test]
    fn an_image_whose_etc_is_a_link_to_the_host_does_not_read_the_hosts_passwd() {
        let tmp = tempfile::tempdir().unwrap();
        let rootfs = tmp.path().join("rootfs");
        fs::create_dir(&rootfs).unwrap();
        // The host's /etc/passwd has root; the image has no passwd of its own.
        // Inside the rootfs, /etc -> /etc is a loop, not the host's /etc.
        std::os::unix::fs::symlink("/etc", rootfs.join("etc")).unwrap();
        let lookup = user_lookup("root", false);
        let err = lookup_user("c", &rootfs, &lookup).unwrap_err().to_string();
        assert!(err.contains("too many levels of symbolic links"), "{err}");
        // /etc -> /usr/share/../../etc: still the rootfs's own, here missing.
        fs::remove_file(rootfs.join("etc")).unwrap();
        std::os::unix::fs::symlink("/usr/share/../../etc/ssl/..", rootfs.join("etc")).unwrap();
        let err = lookup_user("c", &rootfs, &lookup).unwrap_err().to_string();
        assert!(err.contains("no such user"), "{err}");
    }

    #[test]
    fn an_oversized_passwd_is_refused_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("etc")).unwrap();
        let f = fs::File::create(tmp.path().join("etc/passwd")).unwrap();
        f.set_len(MAX_ETC_FILE + 1).unwrap();
        let lookup = user_lookup("app", false);
        let err = lookup_user("c", tmp.path(), &lookup)
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than 10485760 bytes"), "{err}");
    }
}
