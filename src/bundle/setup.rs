//! The one `ensure`: makes what a run plan's setup steps say must exist, skipping
//! what already does. The bundle writer runs it first; the supervisor runs it again
//! before a pod starts (after a reboot, after `stop.sh`, for `up --from`); `run.sh`
//! renders the same steps as shell (`howto::setup_script`).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::mounts::{MountTable, Mounter};
use super::{BundleError, io_err};
use crate::model::HostPathType;
use crate::run_plan::SetupStep;

/// How host paths outside the pod directory are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPaths {
    /// `up`: create `DirectoryOrCreate`/`FileOrCreate` paths, like the kubelet.
    Create,
    /// `generate`: change nothing outside the output directory; missing `*OrCreate`
    /// paths are left for `run.sh` to create.
    Defer,
}

/// When the steps run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// The bundle writer, before it writes the volumes' files.
    Writing,
    /// Before a start: a memory-backed volume that must be mounted anew has lost
    /// its files, which is an error.
    Starting,
}

/// `DirectoryOrCreate`'s mode and `FileOrCreate`'s (pkg/volume/hostpath).
pub const HOST_DIR_MODE: u32 = 0o755;
pub const HOST_FILE_MODE: u32 = 0o644;

/// Makes every step that is not already there. Returns the mount points it mounted,
/// in order; on error, what it mounted is unmounted again.
pub fn ensure(
    steps: &[SetupStep],
    mounter: &dyn Mounter,
    host_paths: HostPaths,
    when: When,
) -> Result<Vec<PathBuf>, BundleError> {
    let mut mounted = Vec::new();
    match ensure_all(steps, mounter, host_paths, when, &mut mounted) {
        Ok(()) => Ok(mounted),
        Err(err) => Err(super::rollback(err, &mounted, mounter)),
    }
}

fn ensure_all(
    steps: &[SetupStep],
    mounter: &dyn Mounter,
    host_paths: HostPaths,
    when: When,
    mounted: &mut Vec<PathBuf>,
) -> Result<(), BundleError> {
    let table = MountTable::read().map_err(io_err(Path::new("/proc/self/mountinfo"), "read"))?;
    for step in steps {
        match step {
            SetupStep::Directory { path, mode, group } => {
                crate::fsutil::mkdir_mode(path, *mode).map_err(io_err(path, "create directory"))?;
                if let Some(gid) = group {
                    // The volume's own directory, in the pod's (0700) directory:
                    // no name in the path is the container's to replace.
                    std::os::unix::fs::chown(path, None, Some(*gid))
                        .map_err(io_err(path, "chown"))?;
                }
            }
            SetupStep::Tmpfs {
                target,
                options,
                files,
            } => {
                // The mount point only: once the tmpfs is mounted on it, a chmod
                // would change the tmpfs's root (its `mode=` is the volume's).
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(target)
                    .map_err(io_err(target, "create directory"))?;
                if !table.contains(target) {
                    mounter
                        .mount_tmpfs(target, options)
                        .map_err(io_err(target, "mount tmpfs"))?;
                    mounted.push(target.clone());
                    if when == When::Starting && !files.is_empty() {
                        return Err(BundleError::LostFiles {
                            path: target.clone(),
                            files: files.iter().map(|f| f.to_string()).collect(),
                        });
                    }
                }
            }
            SetupStep::Overlay {
                target,
                lower,
                upper,
                work,
                owner,
            } => {
                for dir in [target, upper, work] {
                    crate::fsutil::mkdir_mode(dir, 0o755)
                        .map_err(io_err(dir, "create directory"))?;
                }
                if let Some(id) = owner {
                    // podshim's own directories, in the pod's (0700) directory.
                    for dir in [upper, work] {
                        std::os::unix::fs::chown(dir, Some(*id), Some(*id))
                            .map_err(io_err(dir, "chown"))?;
                    }
                }
                if !table.contains(target) {
                    let options = SetupStep::overlay_options(lower, upper, work);
                    mounter
                        .mount_overlay(target, &options)
                        .map_err(io_err(target, "mount the overlay rootfs"))?;
                    mounted.push(target.clone());
                }
            }
            SetupStep::HostPath { volume, path, kind } => {
                host_path(volume, path, *kind, host_paths)?;
            }
            // Before a start only (the supervisor's, run.sh's): the data is
            // the claim's, which neither writing a bundle nor `generate`
            // changes.
            SetupStep::VolumeOwnership {
                volume,
                path,
                group,
                read_only,
                on_root_mismatch,
                node_pods,
                pod,
            } if when == When::Starting => {
                // The local volume plugin gives ownership on the first mount
                // only (pkg/volume/local SetUpAt): a started pod that has it
                // mounted keeps it, and a pod asking another group is told,
                // as its WarnAlreadyMountedVolume event tells.
                let others = node_pods.as_deref().map_or_else(Vec::new, |pods| {
                    crate::workload::claims::mounted_by(pods, path, pod)
                });
                if !others.is_empty() {
                    use std::os::unix::fs::MetadataExt;
                    let had = fs::symlink_metadata(path).map(|m| m.gid()).ok();
                    if had != Some(*group) {
                        tracing::warn!(
                            "volume {volume}: the requested fsGroup is {group}, but the volume has GID {}: it is mounted by {} already and may not be shareable",
                            had.map_or("?".to_string(), |g| g.to_string()),
                            others.join(", ")
                        );
                    }
                    continue;
                }
                let policy = if *on_root_mismatch {
                    super::ownership::Policy::OnRootMismatch
                } else {
                    super::ownership::Policy::Always
                };
                super::ownership::set_volume_ownership(path, *group, *read_only, policy).map_err(
                    |e| BundleError::Ownership {
                        volume: volume.clone(),
                        message: format!("fsGroup {group} on {}: {e}", path.display()),
                    },
                )?;
            }
            SetupStep::VolumeOwnership { .. } => {}
            SetupStep::UserNamespace { pin, range } => {
                // The runtime opens the rootfs and the mounts' sources as the
                // pod's root once in the user namespace: the pod's directory
                // (owner-only otherwise) lets that group through, and no one
                // else (containerd makes a userns pod's bundle directory
                // traversable the same way).
                let base = pin.parent().unwrap_or(Path::new("/"));
                // The range is this directory's, whoever sets it up (run.sh
                // after a reboot, when the leases are gone, too).
                crate::userns::claim(Path::new(crate::userns::LEASE_DIR), range, base).map_err(
                    |e| {
                        io_err(base, "lease user namespace ids for")(io::Error::other(
                            e.to_string(),
                        ))
                    },
                )?;
                let dir = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
                    .open(base)
                    .map_err(io_err(base, "open"))?;
                nix::unistd::fchown(&dir, None, Some(nix::unistd::Gid::from_raw(range.host_id)))
                    .map_err(|e| io_err(base, "chgrp")(e.into()))?;
                dir.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o710))
                    .map_err(io_err(base, "chmod"))?;
                // Undone with the step's mounts on a failure after it.
                if crate::userns::pin_new(range, pin)
                    .map_err(io_err(pin, "pin a user namespace at"))?
                {
                    mounted.push(pin.clone());
                }
            }
            SetupStep::IdmapMount {
                source,
                target,
                userns,
                read_only,
            } => {
                if table.contains(target) {
                    continue;
                }
                let meta = match fs::metadata(source) {
                    Ok(m) => m,
                    // A `*OrCreate` hostPath `generate` leaves for run.sh.
                    Err(e)
                        if e.kind() == io::ErrorKind::NotFound
                            && host_paths == HostPaths::Defer =>
                    {
                        continue;
                    }
                    Err(e) => return Err(io_err(source, "id-map")(e)),
                };
                if let Some(parent) = target.parent() {
                    crate::fsutil::mkdir_mode(parent, 0o755)
                        .map_err(io_err(parent, "create directory"))?;
                }
                super::mounts::make_mount_point(target, meta.is_dir())
                    .map_err(io_err(target, "create mount point"))?;
                let ns = crate::userns::open(userns).map_err(io_err(userns, "open"))?;
                let from = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_PATH)
                    .open(source)
                    .map_err(io_err(source, "open"))?;
                use std::os::fd::AsFd;
                mounter
                    .mount_idmapped(from.as_fd(), target, ns.as_fd(), *read_only)
                    .map_err(io_err(target, "mount an id-mapped view at"))?;
                mounted.push(target.clone());
            }
            // Made before a start only: a `generate` output's cgroup is run.sh's
            // to make, and removed by what stops the pod.
            SetupStep::PodCgroup { cgroup, containers } if when == When::Starting => {
                let h = crate::cgroup::Hierarchies::read()
                    .map_err(io_err(Path::new("/proc/self/mountinfo"), "read"))?;
                crate::cgroup::create(&h, cgroup, containers)?;
            }
            SetupStep::PodCgroup { .. } => {}
        }
    }
    Ok(())
}

/// Kubernetes' hostPath `type` checks (pkg/volume/hostpath), creating
/// `*OrCreate` paths when `host_paths` allows.
pub fn host_path(
    volume: &str,
    path: &Path,
    kind: HostPathType,
    host_paths: HostPaths,
) -> Result<(), BundleError> {
    let err = |message: String| BundleError::HostPath {
        volume: volume.to_string(),
        path: path.to_path_buf(),
        message,
    };
    let ft = fs::metadata(path).map(|m| m.file_type());
    match kind {
        // No type: the kubelet checks nothing, and containerd's CRI (WithMounts)
        // creates a missing source as a 0755 directory, as Docker did; runc would
        // otherwise fail the start on a missing bind source.
        HostPathType::Unset => match ft {
            Ok(_) => Ok(()),
            Err(_) if host_paths == HostPaths::Defer => Ok(()),
            Err(_) => crate::fsutil::mkdir_mode(path, HOST_DIR_MODE)
                .map_err(io_err(path, "create directory")),
        },
        HostPathType::DirectoryOrCreate => match ft {
            Ok(t) if t.is_dir() => Ok(()),
            Ok(_) => Err(err("exists but is not a directory".into())),
            Err(_) if host_paths == HostPaths::Defer => Ok(()),
            Err(_) => crate::fsutil::mkdir_mode(path, HOST_DIR_MODE)
                .map_err(io_err(path, "create directory")),
        },
        HostPathType::FileOrCreate => match ft {
            Ok(t) if t.is_file() => Ok(()),
            Ok(_) => Err(err("exists but is not a file".into())),
            Err(_) => {
                // Kubernetes docs: FileOrCreate does not create the parent directory.
                let parent = path.parent().unwrap_or(Path::new("/"));
                if !parent.is_dir() {
                    return Err(err(format!(
                        "parent directory {} does not exist",
                        parent.display()
                    )));
                }
                if host_paths == HostPaths::Defer {
                    return Ok(());
                }
                match fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(HOST_FILE_MODE)
                    .open(path)
                {
                    Ok(_) => Ok(()),
                    // Created meanwhile: fine if it is a file.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_file() => Ok(()),
                    Err(e) => Err(io_err(path, "create file")(e)),
                }
            }
        },
        other => {
            let name = other.as_str();
            let t = ft.map_err(|e| err(format!("type {name}: {e}")))?;
            let ok = match other {
                HostPathType::Directory => t.is_dir(),
                HostPathType::File => t.is_file(),
                HostPathType::Socket => t.is_socket(),
                HostPathType::CharDevice => t.is_char_device(),
                HostPathType::BlockDevice => t.is_block_device(),
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                Err(err(format!("is not a {name}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn check(p: &Path, t: &str) -> Result<(), BundleError> {
        host_path("v", p, HostPathType::parse(t).unwrap(), HostPaths::Create)
    }

    #[test]
    fn host_path_types_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        let file = tmp.path().join("f");
        fs::create_dir(&dir).unwrap();
        fs::write(&file, "x").unwrap();
        assert!(check(&dir, "Directory").is_ok());
        assert!(check(&file, "File").is_ok());
        assert!(check(&dir, "").is_ok());
        assert!(check(&file, "").is_ok());
        let err = check(&file, "Directory").unwrap_err().to_string();
        assert!(err.contains("is not a Directory"), "{err}");
        assert!(check(&dir, "File").is_err());
        assert!(check(&tmp.path().join("missing"), "Directory").is_err());
        assert!(check(&file, "Socket").is_err());
        assert!(check(&file, "CharDevice").is_err());
        assert!(check(Path::new("/dev/null"), "CharDevice").is_ok());
        assert!(check(&file, "BlockDevice").is_err());
        assert!(check(&file, "DirectoryOrCreate").is_err());
        assert!(check(&dir, "FileOrCreate").is_err());
    }

    #[test]
    fn directory_or_create_makes_0755_and_file_or_create_0644_without_its_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let new_dir = tmp.path().join("a/b");
        check(&new_dir, "DirectoryOrCreate").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&new_dir), 0o755);
        let new_file = tmp.path().join("f.txt");
        check(&new_file, "FileOrCreate").unwrap();
        assert!(new_file.is_file());
        assert_eq!(mode(&new_file), 0o644);
        let orphan = tmp.path().join("no-parent/f.txt");
        let err = check(&orphan, "FileOrCreate").unwrap_err();
        assert!(err.to_string().contains("parent directory"), "{err}");
    }

    #[test]
    fn a_missing_host_path_without_a_type_is_created_as_a_0755_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let new_dir = tmp.path().join("a/b");
        check(&new_dir, "").unwrap();
        assert_eq!(
            fs::metadata(&new_dir).unwrap().permissions().mode() & 0o7777,
            0o755
        );
        let later = tmp.path().join("later");
        host_path("v", &later, HostPathType::Unset, HostPaths::Defer).unwrap();
        assert!(!later.exists());
    }

    #[test]
    fn deferred_host_paths_are_not_created() {
        let tmp = tempfile::tempdir().unwrap();
        let new_dir = tmp.path().join("later");
        host_path(
            "v",
            &new_dir,
            HostPathType::DirectoryOrCreate,
            HostPaths::Defer,
        )
        .unwrap();
        assert!(!new_dir.exists());
    }

    /// Records mounts instead of making them.
    #[derive(Default)]
    struct Recorder(std::cell::RefCell<Vec<String>>);

    impl Mounter for Recorder {
        fn mount_overlay(&self, target: &Path, options: &str) -> io::Result<()> {
            self.0
                .borrow_mut()
                .push(format!("overlay {} {options}", target.display()));
            Ok(())
        }
        fn mount_tmpfs(&self, target: &Path, options: &str) -> io::Result<()> {
            self.0
                .borrow_mut()
                .push(format!("tmpfs {} {options}", target.display()));
            Ok(())
        }
        fn bind_fd(&self, _: std::os::fd::BorrowedFd<'_>, target: &Path) -> io::Result<()> {
            self.0
                .borrow_mut()
                .push(format!("bind {}", target.display()));
            Ok(())
        }
        fn mount_idmapped(
            &self,
            _: std::os::fd::BorrowedFd<'_>,
            target: &Path,
            _: std::os::fd::BorrowedFd<'_>,
            read_only: bool,
        ) -> io::Result<()> {
            self.0
                .borrow_mut()
                .push(format!("idmap {} {read_only}", target.display()));
            Ok(())
        }
        fn unmount(&self, target: &Path) -> io::Result<()> {
            self.0
                .borrow_mut()
                .push(format!("unmount {}", target.display()));
            Ok(())
        }
    }

    #[test]
    fn ensure_makes_each_step_with_its_mode_and_rolls_back_on_error() {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path();
        // Another group as root (the chown is seen); one's own otherwise,
        // which needs no privilege.
        let gid = if nix::unistd::geteuid().is_root() {
            4242
        } else {
            nix::unistd::getegid().as_raw()
        };
        let steps = vec![
            SetupStep::Tmpfs {
                target: b.join("shm"),
                options: "mode=1777".into(),
                files: Vec::new(),
            },
            SetupStep::Directory {
                path: b.join("volumes/ed"),
                mode: 0o777,
                group: None,
            },
            SetupStep::Directory {
                path: b.join("volumes/fs"),
                mode: 0o2777,
                group: Some(gid),
            },
            SetupStep::Overlay {
                target: b.join("c/rootfs"),
                lower: vec![b.join("l1"), b.join("l2")],
                upper: b.join("c/upper"),
                work: b.join("c/work"),
                owner: None,
            },
        ];
        let m = Recorder::default();
        let made = ensure(&steps, &m, HostPaths::Create, When::Writing).unwrap();
        assert_eq!(made, [b.join("shm"), b.join("c/rootfs")]);
        assert_eq!(
            fs::metadata(b.join("volumes/ed"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o777
        );
        // fsGroup's volume: the group, and setgid so that what is made in it
        // has the group too.
        let fs = fs::metadata(b.join("volumes/fs")).unwrap();
        assert_eq!((fs.gid(), fs.permissions().mode() & 0o7777), (gid, 0o2777));
        let log = m.0.borrow().clone();
        assert_eq!(log[0], format!("tmpfs {}/shm mode=1777", b.display()));
        assert_eq!(
            log[1],
            format!(
                "overlay {0}/c/rootfs lowerdir={0}/l2:{0}/l1,upperdir={0}/c/upper,workdir={0}/c/work",
                b.display()
            )
        );
        // A failing step undoes the mounts made before it.
        let mut bad = steps.clone();
        bad.push(SetupStep::HostPath {
            volume: "hp".into(),
            path: b.join("missing"),
            kind: HostPathType::Directory,
        });
        let m = Recorder::default();
        let err = ensure(&bad, &m, HostPaths::Create, When::Writing).unwrap_err();
        assert!(err.to_string().contains("volume \"hp\""), "{err}");
        let log = m.0.borrow().clone();
        assert_eq!(
            &log[2..],
            [
                format!("unmount {}/c/rootfs", b.display()),
                format!("unmount {}/shm", b.display())
            ]
        );
    }

    #[test]
    fn a_memory_volume_mounted_anew_before_a_start_has_lost_its_files() {
        let tmp = tempfile::tempdir().unwrap();
        let steps = vec![SetupStep::Tmpfs {
            target: tmp.path().join("secret"),
            options: "mode=0777".into(),
            files: vec![crate::model::RelPath::parse("password").unwrap()],
        }];
        let m = Recorder::default();
        ensure(&steps, &m, HostPaths::Create, When::Writing).unwrap();
        let err = ensure(
            &steps,
            &Recorder::default(),
            HostPaths::Create,
            When::Starting,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("password"), "{err}");
    }
}
