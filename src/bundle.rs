//! Writes a [`PodPlan`] to disk: the pod's files and volumes, one bundle directory
//! per container (config.json + rootfs), and the rootfs overlay mounts.
//!
//! Mounts go through the [`Mounter`] trait (DESIGN.md rule 2). A failed write undoes
//! every mount it made (rule 7).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::image::StoredImage;
use crate::model::{ContainerKind, HostPathType};
use crate::translate::{
    ContainerPlan, PodPlan, SHM_SIZE, UserLookup, VolumePlan, VolumeSource, render_config,
};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
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
    #[error("container {container:?}: subPath {sub_path:?}: {message}")]
    SubPath {
        container: String,
        sub_path: String,
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
        "container {container:?}: image {image} has {layers} layers: the overlay mount options exceed a page"
    )]
    TooManyLayers {
        container: String,
        image: String,
        layers: usize,
    },
    #[error("{0}\n  and while undoing it: {1}")]
    Rollback(Box<BundleError>, String),
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> BundleError + use<> {
    let path = path.to_path_buf();
    move |err| BundleError::Io { path, action, err }
}

/// The mounts podshim makes on the host.
pub trait Mounter {
    /// An overlay with `options` as [`overlay_options`] writes them.
    fn mount_overlay(&self, target: &Path, options: &str) -> io::Result<()>;
    fn mount_tmpfs(&self, target: &Path, options: &str) -> io::Result<()>;
    fn unmount(&self, target: &Path) -> io::Result<()>;
}

/// Real mounts with mount(2).
pub struct SystemMounter;

impl Mounter for SystemMounter {
    fn mount_overlay(&self, target: &Path, options: &str) -> io::Result<()> {
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(options),
        )
        .map_err(io::Error::from)
    }

    fn mount_tmpfs(&self, target: &Path, options: &str) -> io::Result<()> {
        use nix::mount::MsFlags;
        nix::mount::mount(
            Some("tmpfs"),
            target,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options),
        )
        .map_err(io::Error::from)
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH).map_err(io::Error::from)
    }
}

/// overlayfs options: `lowerdir` lists the top layer first (overlayfs(5)), so the
/// store's lowest-first layer list is reversed.
pub fn overlay_options(lower: &[PathBuf], upper: &Path, work: &Path) -> String {
    let lower: Vec<String> = lower
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    )
}

/// The kernel's limit on mount option data (one page).
const MOUNT_DATA_MAX: usize = 4095;

/// How host paths outside the pod directory are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPaths {
    /// `up`: create `DirectoryOrCreate`/`FileOrCreate` paths, like the kubelet.
    Create,
    /// `generate`: change nothing outside the output directory; missing `*OrCreate`
    /// paths are returned so the run script creates them.
    Defer,
}

/// What was written, for the how-to-run and for undoing it.
#[derive(Debug, Default, Clone)]
pub struct Written {
    /// Mount points made, in order (undo in reverse).
    pub mounts: Vec<PathBuf>,
    /// Overlay mounts as (target, options), for the how-to-run script.
    pub overlays: Vec<(PathBuf, String)>,
    /// tmpfs mounts as (target, options).
    pub tmpfs: Vec<(PathBuf, String)>,
    /// hostPath entries left for the run script to create: (path, is_dir).
    pub deferred_host_paths: Vec<(PathBuf, bool)>,
}

/// Writes `plan` under its pod directory. `images` is keyed by normalised image name.
pub fn write(
    plan: &mut PodPlan,
    base: &Path,
    images: &BTreeMap<String, StoredImage>,
    mounter: &dyn Mounter,
    host_paths: HostPaths,
) -> Result<Written, BundleError> {
    let mut written = Written::default();
    match write_inner(plan, base, images, mounter, host_paths, &mut written) {
        Ok(()) => Ok(written),
        Err(err) => {
            let failures: Vec<String> = written
                .mounts
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
                Err(err)
            } else {
                Err(BundleError::Rollback(Box::new(err), failures.join("; ")))
            }
        }
    }
}

fn mkdir(path: &Path, mode: u32) -> Result<(), BundleError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(io_err(path, "create directory"))
}

fn write_file(path: &Path, content: &[u8], mode: u32) -> Result<(), BundleError> {
    if let Some(parent) = path.parent() {
        mkdir(parent, 0o755)?;
    }
    let tmp = path.with_extension("podshim-tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp, "create file"))?;
    f.write_all(content).map_err(io_err(&tmp, "write"))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(io_err(&tmp, "chmod"))?;
    fs::rename(&tmp, path).map_err(io_err(path, "rename into place"))
}

/// Whether `path` is a mount point (listed in mountinfo: bind mounts of the same
/// filesystem keep the device, so comparing devices is not enough).
pub fn is_mount_point(path: &Path) -> bool {
    MountTable::read().contains(path)
}

/// One reading of this namespace's mount points, for code that checks many paths
/// (each reading parses all of /proc/self/mountinfo).
pub struct MountTable(std::collections::HashSet<PathBuf>);

impl MountTable {
    pub fn read() -> MountTable {
        MountTable(mount_points().into_iter().collect())
    }

    pub fn contains(&self, path: &Path) -> bool {
        fs::canonicalize(path).is_ok_and(|p| self.0.contains(&p))
    }
}

/// Mount points of this mount namespace (`/proc/self/mountinfo`, field 5, with the
/// kernel's octal escapes undone).
pub fn mount_points() -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .collect()
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tmpfs(
    target: &Path,
    options: String,
    mounter: &dyn Mounter,
    written: &mut Written,
    mounted: &MountTable,
) -> Result<(), BundleError> {
    mkdir(target, 0o755)?;
    if !mounted.contains(target) {
        mounter
            .mount_tmpfs(target, &options)
            .map_err(io_err(target, "mount tmpfs"))?;
        written.mounts.push(target.to_path_buf());
    }
    written.tmpfs.push((target.to_path_buf(), options));
    Ok(())
}

fn write_inner(
    plan: &mut PodPlan,
    base: &Path,
    images: &BTreeMap<String, StoredImage>,
    mounter: &dyn Mounter,
    host_paths: HostPaths,
    written: &mut Written,
) -> Result<(), BundleError> {
    // The pod directory holds secrets and rootfs upper dirs: owner only.
    mkdir(base, 0o700)?;
    fs::set_permissions(base, fs::Permissions::from_mode(0o700)).map_err(io_err(base, "chmod"))?;
    for file in &plan.files {
        write_file(&file.path, file.content.as_bytes(), file.mode)?;
    }
    let mounted = MountTable::read();
    tmpfs(
        &plan.shm,
        format!("mode=1777,size={SHM_SIZE}"),
        mounter,
        written,
        &mounted,
    )?;
    for volume in &plan.volumes {
        write_volume(volume, mounter, host_paths, written, &mounted)?;
    }
    write_infra(&plan.infra)?;
    for container in &mut plan.containers {
        write_container(container, images, mounter, written, &mounted)?;
    }
    Ok(())
}

fn write_volume(
    volume: &VolumePlan,
    mounter: &dyn Mounter,
    host_paths: HostPaths,
    written: &mut Written,
    mounted: &MountTable,
) -> Result<(), BundleError> {
    let path = &volume.host_path;
    match &volume.source {
        VolumeSource::HostPath { host_path_type } => {
            if let Some(deferred) = check_host_path(&volume.name, path, host_path_type, host_paths)?
            {
                written.deferred_host_paths.push((path.clone(), deferred));
            }
        }
        VolumeSource::Directory => mkdir(path, 0o777).and_then(|()| {
            // emptyDir is world-writable like the kubelet's (0777), whatever the umask.
            fs::set_permissions(path, fs::Permissions::from_mode(0o777))
                .map_err(io_err(path, "chmod"))
        })?,
        VolumeSource::Tmpfs { size_bytes } => {
            let mut options = "mode=0777".to_string();
            if let Some(size) = size_bytes {
                options.push_str(&format!(",size={size}"));
            }
            tmpfs(path, options, mounter, written, mounted)?;
        }
    }
    for file in &volume.files {
        // Paths were checked by the translator (relative, no `..`); the volume is a
        // fresh directory of ours, so no symlink can be in the way.
        write_file(&path.join(&file.path), &file.content, file.mode)?;
    }
    Ok(())
}

/// Kubernetes' hostPath `type` checks (pkg/volume/hostpath). Returns
/// `Some(is_dir)` when a `*OrCreate` path is missing and creation is deferred.
fn check_host_path(
    volume: &str,
    path: &Path,
    kind: &HostPathType,
    host_paths: HostPaths,
) -> Result<Option<bool>, BundleError> {
    let err = |message: String| BundleError::HostPath {
        volume: volume.to_string(),
        path: path.to_path_buf(),
        message,
    };
    let meta = fs::metadata(path);
    let ft = meta.as_ref().map(|m| m.file_type());
    match kind {
        HostPathType::Unset => Ok(None),
        HostPathType::DirectoryOrCreate => match ft {
            Ok(t) if t.is_dir() => Ok(None),
            Ok(_) => Err(err("exists but is not a directory".into())),
            Err(_) if host_paths == HostPaths::Defer => Ok(Some(true)),
            Err(_) => {
                mkdir(path, 0o755)?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o755))
                    .map_err(io_err(path, "chmod"))?;
                Ok(None)
            }
        },
        HostPathType::FileOrCreate => match ft {
            Ok(t) if t.is_file() => Ok(None),
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
                    return Ok(Some(false));
                }
                fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(path)
                    .map_err(io_err(path, "create file"))?;
                Ok(None)
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
                Ok(None)
            } else {
                Err(err(format!("is not a {name}")))
            }
        }
    }
}

fn write_infra(infra: &ContainerPlan) -> Result<(), BundleError> {
    let rootfs = root_path(&infra.spec);
    crate::pause::write_rootfs(&rootfs).map_err(io_err(&rootfs, "write the pause rootfs"))?;
    write_config(infra)
}

fn root_path(spec: &Spec) -> PathBuf {
    spec.root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default()
}

fn write_config(c: &ContainerPlan) -> Result<(), BundleError> {
    let bundle = root_path(&c.spec)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    write_file(
        &bundle.join("config.json"),
        render_config(&c.spec).as_bytes(),
        0o600,
    )
}

fn write_container(
    c: &mut ContainerPlan,
    images: &BTreeMap<String, StoredImage>,
    mounter: &dyn Mounter,
    written: &mut Written,
    mounted: &MountTable,
) -> Result<(), BundleError> {
    debug_assert!(c.kind != ContainerKind::Infra);
    let image_name = c.image.clone().unwrap_or_default();
    let image = images
        .get(&image_name)
        .ok_or_else(|| BundleError::MissingImage {
            container: c.name.clone(),
            image: image_name.clone(),
        })?;
    let rootfs = root_path(&c.spec);
    let bundle = rootfs.parent().map(Path::to_path_buf).unwrap_or_default();
    let upper = bundle.join("upper");
    let work = bundle.join("work");
    for dir in [&bundle, &rootfs, &upper, &work] {
        mkdir(dir, 0o755)?;
    }
    let mut lower = image.layer_dirs.clone();
    if lower.is_empty() {
        // overlayfs needs a lower layer: an image with no layers gets an empty one.
        let empty = bundle.join("empty-layer");
        mkdir(&empty, 0o755)?;
        lower.push(empty);
    }
    let options = overlay_options(&lower, &upper, &work);
    if options.len() > MOUNT_DATA_MAX {
        return Err(BundleError::TooManyLayers {
            container: c.name.clone(),
            image: image_name,
            layers: lower.len(),
        });
    }
    if !mounted.contains(&rootfs) {
        mounter
            .mount_overlay(&rootfs, &options)
            .map_err(io_err(&rootfs, "mount the overlay rootfs"))?;
        written.mounts.push(rootfs.clone());
    }
    written.overlays.push((rootfs.clone(), options));

    for check in &c.sub_paths {
        resolve_sub_path(&c.name, &check.volume_path, &check.sub_path)?;
    }
    if let Some(user) = &c.user_lookup {
        let (uid, gid) = lookup_user(&c.name, &rootfs, user)?;
        if c.run_as_non_root && uid == 0 {
            return Err(BundleError::User {
                container: c.name.clone(),
                user: format!("{user:?}"),
                message: "container has runAsNonRoot and image will run as root".into(),
            });
        }
        if let Some(process) = c.spec.process_mut() {
            let u = process.user_mut();
            u.set_uid(uid);
            // runAsGroup, when given, was already set and wins over the passwd group.
            if !user.keep_gid {
                u.set_gid(gid);
            }
        }
    }
    if let Some(log) = &c.termination_log {
        write_file(log, b"", 0o666)?;
    }
    write_config(c)
}

/// Resolves `sub_path` inside `volume` component by component, refusing any symlink
/// that leads outside the volume, and creates it as a directory when missing (the
/// kubelet's rule). CVE-2017-1002101 / CVE-2021-25741: a container could otherwise
/// plant a symlink in a shared volume to make another container mount host files.
pub fn resolve_sub_path(
    container: &str,
    volume: &Path,
    sub_path: &str,
) -> Result<PathBuf, BundleError> {
    let err = |message: String| BundleError::SubPath {
        container: container.to_string(),
        sub_path: sub_path.to_string(),
        message,
    };
    let root =
        fs::canonicalize(volume).map_err(|e| err(format!("volume {}: {e}", volume.display())))?;
    let mut current = root.clone();
    for comp in Path::new(sub_path).components() {
        let Component::Normal(name) = comp else {
            if comp == Component::CurDir {
                continue;
            }
            return Err(err("must be a relative path without '..'".into()));
        };
        let next = current.join(name);
        match fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target =
                    fs::canonicalize(&next).map_err(|e| err(format!("{}: {e}", next.display())))?;
                if !target.starts_with(&root) {
                    return Err(err(format!(
                        "{} is a symlink leading outside the volume",
                        next.display()
                    )));
                }
                current = target;
            }
            Ok(_) => current = next,
            Err(_) => {
                mkdir(&next, 0o755)?;
                current = next;
            }
        }
    }
    Ok(current)
}

/// Looks a user (and group) name up in the rootfs's /etc/passwd and /etc/group.
fn lookup_user(
    container: &str,
    rootfs: &Path,
    lookup: &UserLookup,
) -> Result<(u32, u32), BundleError> {
    let UserLookup { user, group, .. } = lookup;
    let err = |message: String| BundleError::User {
        container: container.to_string(),
        user: user.clone(),
        message,
    };
    // Read through the rootfs, refusing symlinks that could point at the host's files.
    let read = |name: &str| -> String {
        let p = rootfs.join("etc").join(name);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() => fs::read_to_string(&p).unwrap_or_default(),
            _ => String::new(),
        }
    };
    let passwd = read("passwd");
    let find = |text: &str, name: &str, id_field: usize| -> Option<(u32, Vec<String>)> {
        text.lines().find_map(|l| {
            let fields: Vec<&str> = l.split(':').collect();
            let matches = fields.first() == Some(&name) || fields.get(2) == Some(&name);
            if matches {
                let id = fields.get(id_field)?.parse().ok()?;
                Some((id, fields.iter().map(|s| s.to_string()).collect()))
            } else {
                None
            }
        })
    };
    let (uid, pw) = match user.parse::<u32>() {
        Ok(uid) => (uid, find(&passwd, user, 2).map(|(_, f)| f)),
        Err(_) => {
            let (uid, fields) = find(&passwd, user, 2)
                .ok_or_else(|| err("no such user in the image's /etc/passwd".into()))?;
            (uid, Some(fields))
        }
    };
    let primary_gid = pw
        .and_then(|f| f.get(3).and_then(|g| g.parse().ok()))
        .unwrap_or(0);
    let gid = match group {
        None => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => find(&read("group"), g, 2)
                .map(|(gid, _)| gid)
                .ok_or_else(|| err(format!("no such group {g:?} in the image's /etc/group")))?,
        },
    };
    Ok((uid, gid))
}

/// Unmounts everything mounted under `dir`, deepest first.
pub fn unmount_all_under(dir: &Path, mounter: &dyn Mounter) -> Result<(), BundleError> {
    let Ok(canonical) = fs::canonicalize(dir) else {
        return Ok(());
    };
    let mut mounts: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|m| m.starts_with(&canonical))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    // A path listed twice holds stacked mounts: unmount it twice.
    for m in &mounts {
        mounter.unmount(m).map_err(io_err(m, "unmount"))?;
    }
    Ok(())
}

/// Unmounts everything mounted under `base` and removes it.
pub fn remove(base: &Path, mounter: &dyn Mounter) -> Result<(), BundleError> {
    if !base.exists() {
        return Ok(());
    }
    unmount_all_under(base, mounter)?;
    fs::remove_dir_all(base).map_err(io_err(base, "remove"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn sub_path_symlink_leading_out_of_the_volume_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let volume = tmp.path().join("vol");
        fs::create_dir(&volume).unwrap();
        symlink("/etc", volume.join("escape")).unwrap();
        let err = resolve_sub_path("c", &volume, "escape/ssh").unwrap_err();
        assert!(
            err.to_string()
                .contains("symlink leading outside the volume"),
            "{err}"
        );
        assert!(!Path::new("/etc/ssh/podshim").exists());
    }

    #[test]
    fn sub_path_symlink_inside_the_volume_is_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let volume = tmp.path().join("vol");
        fs::create_dir_all(volume.join("real")).unwrap();
        symlink("real", volume.join("link")).unwrap();
        let got = resolve_sub_path("c", &volume, "link/x").unwrap();
        assert_eq!(got, fs::canonicalize(&volume).unwrap().join("real/x"));
        assert!(got.is_dir(), "a missing subPath is created as a directory");
    }

    #[test]
    fn sub_path_with_dotdot_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(resolve_sub_path("c", tmp.path(), "../x").is_err());
    }

    #[test]
    fn host_path_types_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        let file = tmp.path().join("f");
        fs::create_dir(&dir).unwrap();
        fs::write(&file, "x").unwrap();
        let check = |p: &Path, t: &str| {
            check_host_path("v", p, &HostPathType::parse(t).unwrap(), HostPaths::Create)
        };
        assert!(check(&dir, "Directory").is_ok());
        assert!(check(&file, "File").is_ok());
        assert!(check(&dir, "").is_ok());
        assert!(check(&tmp.path().join("nothing"), "").is_ok());
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
    fn directory_or_create_makes_0755_and_file_or_create_needs_its_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let new_dir = tmp.path().join("a/b");
        assert_eq!(
            check_host_path(
                "v",
                &new_dir,
                &HostPathType::DirectoryOrCreate,
                HostPaths::Create
            )
            .unwrap(),
            None
        );
        assert_eq!(
            fs::metadata(&new_dir).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let new_file = tmp.path().join("f.txt");
        assert_eq!(
            check_host_path(
                "v",
                &new_file,
                &HostPathType::FileOrCreate,
                HostPaths::Create
            )
            .unwrap(),
            None
        );
        assert!(new_file.is_file());
        let orphan = tmp.path().join("no-parent/f.txt");
        let err = check_host_path("v", &orphan, &HostPathType::FileOrCreate, HostPaths::Create)
            .unwrap_err();
        assert!(err.to_string().contains("parent directory"), "{err}");
    }

    #[test]
    fn deferred_host_paths_are_not_created() {
        let tmp = tempfile::tempdir().unwrap();
        let new_dir = tmp.path().join("later");
        assert_eq!(
            check_host_path(
                "v",
                &new_dir,
                &HostPathType::DirectoryOrCreate,
                HostPaths::Defer
            )
            .unwrap(),
            Some(true)
        );
        assert!(!new_dir.exists());
    }

    #[test]
    fn user_names_resolve_in_the_rootfs_passwd_and_group() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("etc")).unwrap();
        fs::write(
            tmp.path().join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\nweb:x:33:44::/:/bin/sh\n",
        )
        .unwrap();
        fs::write(tmp.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let named = |u: &str, g: Option<&str>| UserLookup {
            user: u.into(),
            group: g.map(Into::into),
            keep_gid: false,
        };
        assert_eq!(
            lookup_user("c", tmp.path(), &named("web", None)).unwrap(),
            (33, 44)
        );
        assert_eq!(
            lookup_user("c", tmp.path(), &named("web", Some("staff"))).unwrap(),
            (33, 50)
        );
        assert_eq!(
            lookup_user("c", tmp.path(), &named("33", Some("staff"))).unwrap(),
            (33, 50)
        );
        let err = lookup_user("c", tmp.path(), &named("nobody", None)).unwrap_err();
        assert!(err.to_string().contains("no such user"), "{err}");
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/a\040b\011c"), "/a b\tc");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
    }

    #[test]
    fn overlay_lists_the_top_layer_first() {
        let opts = overlay_options(
            &[PathBuf::from("/l/bottom"), PathBuf::from("/l/top")],
            Path::new("/u"),
            Path::new("/w"),
        );
        assert_eq!(opts, "lowerdir=/l/top:/l/bottom,upperdir=/u,workdir=/w");
    }
}
