//! A container's mounts: the OCI defaults, the pod's own files and `/dev/shm`, its
//! volume mounts as bind mounts, and the termination log.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{Mount, MountBuilder};

use super::volumes::VolumePlan;
use crate::model::{Container, RecursiveReadOnly};
use crate::paths::PodPaths;
use crate::run_plan::SubPathBind;

pub fn bind_mount(destination: &str, source: &Path, options: Vec<String>) -> Mount {
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(options)
        .build()
        .expect("a bind mount with a destination is a valid mount")
}

/// The mounts every container gets (the OCI runtime spec's Linux defaults, as runc's
/// `runc spec` and containerd's default spec write them). `/dev/shm` is not here:
/// the pod shares one, like the kubelet's sandbox shm.
pub fn defaults(privileged: bool) -> Vec<Mount> {
    let m = |dest: &str, typ: &str, source: &str, opts: &[&str]| {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(source)
            .options(opts.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()
            .expect("mount without id mappings is valid")
    };
    let sys_mode = if privileged { "rw" } else { "ro" };
    vec![
        m("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        m(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        m(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        m(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode],
        ),
        m(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_mode],
        ),
    ]
}

/// The pod's `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` and `/dev/shm`,
/// skipping any path the container mounts a volume on (the kubelet does not mount
/// /etc/hosts over a volume).
pub fn pod_files(paths: &PodPaths, read_only: bool, taken: &HashSet<String>) -> Vec<Mount> {
    let rw = if read_only { "ro" } else { "rw" };
    let mut mounts = Vec::new();
    for file in ["hosts", "hostname", "resolv.conf"] {
        let dest = format!("/etc/{file}");
        if !taken.contains(&dest) {
            mounts.push(bind_mount(
                &dest,
                &paths.etc_file(file),
                vec!["rbind".into(), "rprivate".into(), rw.into()],
            ));
        }
    }
    if !taken.contains("/dev/shm") {
        mounts.push(bind_mount(
            "/dev/shm",
            &paths.shm(),
            vec![
                "rbind".into(),
                "rprivate".into(),
                "nosuid".into(),
                "nodev".into(),
                "noexec".into(),
            ],
        ));
    }
    mounts
}

/// A container's volumeMounts as OCI bind mounts, plus its subPath binds. Every
/// mount names a volume of the pod (the model guarantees it). A subPath mount's
/// source is a path of podshim's that the resolved subPath is bound to before each
/// start (`bundle::subpath`), never a path inside the volume that runc would
/// resolve again (CVE-2017-1002101).
///
/// `rro`: the runtime and kernel make binds read-only recursively, so a mount
/// with `recursiveReadOnly` Enabled or IfPossible gets runc's `rro` option
/// (KEP-3857); without, IfPossible stays a plain read-only bind (and Enabled
/// was refused by the translator).
pub fn volume_mounts(
    paths: &PodPaths,
    id: &str,
    volumes: &[VolumePlan],
    c: &Container,
    rro: bool,
) -> (Vec<Mount>, Vec<SubPathBind>) {
    let mut mounts = Vec::new();
    let mut binds = Vec::new();
    for (index, vm) in c.mounts.iter().enumerate() {
        let Some(volume) = volumes.iter().find(|v| v.name == vm.volume.as_str()) else {
            debug_assert!(false, "the model names only declared volumes");
            continue;
        };
        let mut source = volume.host_path.clone();
        if let Some(sub) = &vm.sub_path {
            source = paths.sub_path(id, index);
            binds.push(SubPathBind {
                volume: volume.name.clone(),
                volume_path: volume.host_path.clone(),
                sub_path: sub.clone(),
                target: source.clone(),
                userns: None,
            });
        }
        let mut options = vec!["rbind".to_string(), vm.propagation.option().to_string()];
        if vm.read_only || volume.projection || volume.read_only {
            options.push("ro".into());
        }
        if rro && vm.recursive_read_only != RecursiveReadOnly::Disabled {
            options.push("rro".into());
        }
        mounts.push(bind_mount(vm.mount_path.as_str(), &source, options));
    }
    (mounts, binds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::VolumeSource;

    fn container(mounts: &str) -> Container {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  volumes: [{{name: v, emptyDir: {{}}}}, {{name: h, hostPath: {{path: /srv}}}}, {{name: cm, emptyDir: {{}}}}]\n  containers:\n    - name: c\n      image: x\n      securityContext: {{privileged: true}}\n      volumeMounts: {mounts}\n"
        );
        crate::translate::test_support::first_container(&yaml)
    }

    fn volumes() -> Vec<VolumePlan> {
        let v = |name: &str, path: &str| VolumePlan {
            name: name.into(),
            host_path: path.into(),
            source: VolumeSource::Directory,
            files: vec![],
            projection: false,
            group: None,
            disk_limit: None,
            read_only: false,
            group_on_root_mismatch: false,
            node_pods: None,
        };
        let mut cm = v("cm", "/p/volumes/cm");
        cm.projection = true;
        vec![v("v", "/p/volumes/v"), v("h", "/srv"), cm]
    }

    #[test]
    fn volume_mounts_are_binds_with_their_propagation_and_read_only() {
        let paths = PodPaths::new("/p");
        type Row = (&'static str, &'static str, &'static [&'static str]);
        let rows: [Row; 10] = [
            // A projection is read-only even when the mount says otherwise.
            (
                "{name: cm, mountPath: /a, readOnly: false}",
                "/p/volumes/cm",
                &["rbind", "rprivate", "ro"],
            ),
            (
                "{name: cm, mountPath: /a, subPath: k}",
                "/p/subpaths/id/0",
                &["rbind", "rprivate", "ro"],
            ),
            (
                "{name: v, mountPath: /a}",
                "/p/volumes/v",
                &["rbind", "rprivate"],
            ),
            (
                "{name: v, mountPath: /a, readOnly: true}",
                "/p/volumes/v",
                &["rbind", "rprivate", "ro"],
            ),
            (
                "{name: h, mountPath: /a, mountPropagation: HostToContainer}",
                "/srv",
                &["rbind", "rslave"],
            ),
            (
                "{name: h, mountPath: /a, mountPropagation: Bidirectional}",
                "/srv",
                &["rbind", "rshared"],
            ),
            (
                "{name: v, mountPath: /a, subPath: x/y}",
                "/p/subpaths/id/0",
                &["rbind", "rprivate"],
            ),
            (
                "{name: h, mountPath: /a, readOnly: true, recursiveReadOnly: Enabled}",
                "/srv",
                &["rbind", "rprivate", "ro", "rro"],
            ),
            (
                "{name: h, mountPath: /a, readOnly: true, recursiveReadOnly: IfPossible}",
                "/srv",
                &["rbind", "rprivate", "ro", "rro"],
            ),
            (
                "{name: h, mountPath: /a, readOnly: true, recursiveReadOnly: Disabled}",
                "/srv",
                &["rbind", "rprivate", "ro"],
            ),
        ];
        for (mount, source, options) in rows {
            let (mounts, binds) = volume_mounts(
                &paths,
                "id",
                &volumes(),
                &container(&format!("[{mount}]")),
                true,
            );
            let m = &mounts[0];
            assert_eq!(m.destination().to_str(), Some("/a"), "{mount}");
            assert_eq!(m.source().as_deref(), Some(Path::new(source)), "{mount}");
            assert_eq!(m.options().as_deref().unwrap(), options, "{mount}");
            assert_eq!(
                binds.len(),
                usize::from(mount.contains("subPath")),
                "{mount}"
            );
        }
    }

    #[test]
    fn the_pods_files_are_not_mounted_where_a_volume_is() {
        let paths = PodPaths::new("/p");
        let all = pod_files(&paths, false, &HashSet::new());
        let dests: Vec<_> = all
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert_eq!(
            dests,
            [
                "/etc/hosts",
                "/etc/hostname",
                "/etc/resolv.conf",
                "/dev/shm"
            ]
        );
        let taken: HashSet<String> = ["/etc/hosts".to_string(), "/dev/shm".to_string()].into();
        let some = pod_files(&paths, true, &taken);
        let dests: Vec<_> = some
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        assert_eq!(dests, ["/etc/hostname", "/etc/resolv.conf"]);
        // A read-only root makes the pod's files read-only too.
        assert!(
            some[0]
                .options()
                .as_ref()
                .unwrap()
                .contains(&"ro".to_string())
        );
    }

    #[test]
    fn privileged_containers_get_a_writable_sysfs() {
        let ro = |m: &[Mount]| {
            m.iter()
                .find(|m| m.destination().to_str() == Some("/sys"))
                .unwrap()
                .options()
                .clone()
                .unwrap()
                .contains(&"ro".to_string())
        };
        assert!(ro(&defaults(false)));
        assert!(!ro(&defaults(true)));
    }
}
