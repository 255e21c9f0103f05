//! The mounts podshim makes on the host, behind [`Mounter`] (ARCHITECTURE.md rule
//! 2), and the mount table it reads to know what is mounted.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use super::overlay::{FSCONFIG_STRING_MAX, MOUNT_DATA_MAX, OverlayDirs};

/// The mounts podshim makes on the host.
pub trait Mounter {
    /// An overlay with `options` as [`crate::run_plan::SetupStep::overlay_options`]
    /// writes them.
    fn mount_overlay(&self, target: &Path, options: &str) -> io::Result<()>;
    fn mount_tmpfs(&self, target: &Path, options: &str) -> io::Result<()>;
    /// Binds the file or directory `source` is open on (the kubelet's
    /// `doBindSubPath`: the kernel binds that very inode, so no path is resolved
    /// again between the check and the mount).
    fn bind_fd(&self, source: BorrowedFd<'_>, target: &Path) -> io::Result<()>;
    /// Mounts what `source` is open on (with what is mounted under it) again
    /// at `target`, its ids mapped by the user namespace `userns` (a bind of
    /// it, or of anything under it, keeps the mapping); read-only with
    /// `read_only`.
    fn mount_idmapped(
        &self,
        source: BorrowedFd<'_>,
        target: &Path,
        userns: BorrowedFd<'_>,
        read_only: bool,
    ) -> io::Result<()>;
    fn unmount(&self, target: &Path) -> io::Result<()>;
}

/// A mount point of its source's kind: a directory for a directory, else an
/// empty file (0600, never through a link); one already there is kept.
pub fn make_mount_point(target: &Path, dir: bool) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if dir {
        return crate::fsutil::mkdir_mode(target, 0o755);
    }
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
        .map(drop)
}

/// Real mounts: mount(2), and the new mount API for overlays.
pub struct SystemMounter;

impl Mounter for SystemMounter {
    /// With the new mount API, one `lowerdir+` per layer (Linux 6.8), where the
    /// kernel has it: no page limit on the options, so images of many layers
    /// (Docker's historic limit is 128) mount whatever the store's path. On older
    /// kernels, classic mount(2), which takes the options only if they fit a page.
    fn mount_overlay(&self, target: &Path, options: &str) -> io::Result<()> {
        let dirs = OverlayDirs::parse(options)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let why_not = match mount_overlay_by_layers(target, &dirs) {
            Ok(()) => return Ok(()),
            Err(NewApi::Failed(e)) => return Err(e),
            Err(NewApi::Unsupported(why)) => why,
        };
        classic_mount_allowed(options.len(), dirs.lower.len(), &why_not)?;
        nix::mount::mount(
            Some("overlay"),
            target,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(options),
        )
        .map_err(|e| {
            let e = io::Error::from(e);
            io::Error::new(e.kind(), format!("{e} (mount(2), after {why_not})"))
        })
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

    fn bind_fd(&self, source: BorrowedFd<'_>, target: &Path) -> io::Result<()> {
        let proc_path = PathBuf::from(format!("/proc/self/fd/{}", source.as_raw_fd()));
        nix::mount::mount(
            Some(&proc_path),
            target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(io::Error::from)
    }

    /// open_tree(2) clones what `source` is open on, submounts included
    /// (detached), mount_setattr(2) gives the clone the user namespace's
    /// mapping, and move_mount(2) attaches it at `target`.
    fn mount_idmapped(
        &self,
        source: BorrowedFd<'_>,
        target: &Path,
        userns: BorrowedFd<'_>,
        read_only: bool,
    ) -> io::Result<()> {
        use rustix::mount::{MoveMountFlags, OpenTreeFlags, move_mount, open_tree};
        let tree = open_tree(
            source,
            "",
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_EMPTY_PATH
                | OpenTreeFlags::AT_RECURSIVE,
        )
        .map_err(|e| with_context(e.into(), "open_tree".into()))?;
        set_idmap(tree.as_raw_fd(), userns.as_raw_fd(), read_only).map_err(|e| {
            with_context(
                e,
                "mount_setattr MOUNT_ATTR_IDMAP (Linux 5.12 or later, 6.3 for a tmpfs, and a filesystem that supports it)".into(),
            )
        })?;
        move_mount(
            &tree,
            "",
            rustix::fs::CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .map_err(|e| with_context(e.into(), format!("move_mount {}", target.display())))
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH).map_err(io::Error::from)
    }
}

/// `struct mount_attr` (linux/mount.h), which neither nix nor rustix wraps.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// MOUNT_ATTR_IDMAP (linux/mount.h).
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// MOUNT_ATTR_RDONLY (linux/mount.h).
const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;

/// mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, {MOUNT_ATTR_IDMAP
/// (and RDONLY), userns}): the clone and every mount in it.
fn set_idmap(tree: i32, userns: i32, read_only: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP | if read_only { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns as u64,
    };
    // SAFETY: a NUL-terminated empty path and a mount_attr that outlives the
    // call, of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// How the new mount API did not mount an overlay.
#[derive(Debug)]
enum NewApi {
    /// This kernel cannot take the layers one by one: no fsopen(2) (before 5.2,
    /// or filtered by seccomp), no `lowerdir+` (before 6.8: EINVAL, for an unknown
    /// parameter or, through the legacy context of kernels before 6.5, at create),
    /// or a path longer than fsconfig(2) copies. mount(2) may still do.
    Unsupported(String),
    /// A real failure (a missing layer, no permission): mount(2) would fail too.
    Failed(io::Error),
}

/// fsopen("overlay"), `source`, each lower layer topmost first with `lowerdir+`
/// (appended in order, as `lowerdir=` lists them), `upperdir`, `workdir`,
/// create, fsmount with no mount attributes (the mount(2) path passes no flags
/// either), and move_mount onto `target`. The fds close on return; the mount
/// stays attached at `target`.
fn mount_overlay_by_layers(target: &Path, dirs: &OverlayDirs) -> Result<(), NewApi> {
    use rustix::io::Errno;
    use rustix::mount::{
        FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, fsconfig_create,
        fsconfig_set_string, fsmount, fsopen, move_mount,
    };
    let all = dirs.lower.iter().chain([&dirs.upper, &dirs.work]);
    if let Some(long) = all
        .into_iter()
        .find(|p| p.as_os_str().len() > FSCONFIG_STRING_MAX)
    {
        return Err(NewApi::Unsupported(format!(
            "{} is longer than the {FSCONFIG_STRING_MAX} bytes fsconfig(2) takes",
            long.display()
        )));
    }
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| match e {
        Errno::NOSYS | Errno::PERM => NewApi::Unsupported(format!("fsopen: {e}")),
        e => NewApi::Failed(with_context(e.into(), "fsopen overlay".into())),
    })?;
    // EINVAL is how a kernel without `lowerdir+` answers; anything else is the
    // layer's own problem. The kernel's words (read from the context's fd) go
    // with either: EINVAL alone says little.
    let failed = |e: Errno, what: String| {
        let what = format!("{what}{}", kernel_messages(&fs));
        if e == Errno::INVAL {
            NewApi::Unsupported(format!("the new mount API: {what}: {e}"))
        } else {
            NewApi::Failed(with_context(e.into(), what))
        }
    };
    let set = |key: &str, value: &Path| {
        fsconfig_set_string(&fs, key, value)
            .map_err(|e| failed(e, format!("fsconfig {key} {}", value.display())))
    };
    set("source", Path::new("overlay"))?;
    for layer in &dirs.lower {
        set("lowerdir+", layer)?;
    }
    set("upperdir", &dirs.upper)?;
    set("workdir", &dirs.work)?;
    fsconfig_create(&fs).map_err(|e| failed(e, "fsconfig create".into()))?;
    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| NewApi::Failed(with_context(e.into(), "fsmount".into())))?;
    move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| NewApi::Failed(with_context(e.into(), "move_mount".into())))
}

/// Whether mount(2) may be tried after the new mount API could not: only with
/// options that fit its page. Otherwise an error naming the layers and the limit,
/// rather than the kernel's truncated, misleading ENAMETOOLONG/EINVAL.
fn classic_mount_allowed(options: usize, layers: usize, why_not: &str) -> io::Result<()> {
    if options <= MOUNT_DATA_MAX {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{layers} layers: their overlay options are {options} bytes, more than the \
             {MOUNT_DATA_MAX} mount(2) takes, and this kernel cannot take them one by one \
             (overlayfs lowerdir+, Linux 6.8): {why_not}"
        ),
    ))
}

fn with_context(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// The messages the kernel left in an fs context (fsopen(2): one per read,
/// prefixed "e ", "w " or "i "), as " (overlayfs: ...; ...)", or "".
fn kernel_messages(fs: &std::os::fd::OwnedFd) -> String {
    let mut messages = Vec::new();
    let mut buf = [0u8; 1024];
    // The kernel keeps at most 8 (fs/fs_context.c); stop at ENODATA.
    while messages.len() < 8 {
        match rustix::io::read(fs, &mut buf) {
            Ok(n) if n > 0 => {
                let m = String::from_utf8_lossy(&buf[..n]);
                let m = m.trim_end();
                messages.push(m.get(2..).unwrap_or(m).to_string());
            }
            _ => break,
        }
    }
    if messages.is_empty() {
        String::new()
    } else {
        format!(" ({})", messages.join("; "))
    }
}

/// Whether `path` is a mount point (listed in mountinfo: bind mounts of the same
/// filesystem keep the device, so comparing devices is not enough).
pub fn is_mount_point(path: &Path) -> io::Result<bool> {
    Ok(MountTable::read()?.contains(path))
}

/// One reading of this namespace's mount points, for code that checks many paths
/// (each reading parses all of /proc/self/mountinfo).
pub struct MountTable(std::collections::HashSet<PathBuf>);

impl MountTable {
    pub fn read() -> io::Result<MountTable> {
        Ok(MountTable(mount_points()?.into_iter().collect()))
    }

    pub fn contains(&self, path: &Path) -> bool {
        fs::canonicalize(path).is_ok_and(|p| self.0.contains(&p))
    }
}

/// Mount points of this mount namespace (`/proc/self/mountinfo`, field 5, with the
/// kernel's octal escapes undone). An error, never an empty list, when it cannot
/// be read: callers decide from it what is safe to remove.
pub fn mount_points() -> io::Result<Vec<PathBuf>> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| io::Error::new(e.kind(), format!("read /proc/self/mountinfo: {e}")))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .collect())
}

/// The mount points at or under `dir`.
pub fn mounts_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let canonical = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    Ok(mount_points()?
        .into_iter()
        .filter(|m| m.starts_with(&canonical))
        .collect())
}

pub fn unescape_mountinfo(s: &str) -> String {
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

/// Unmounts everything mounted under `dir`, deepest first. A directory that no
/// longer exists (a wiped state directory) is matched by its path as given.
pub fn unmount_all_under(dir: &Path, mounter: &dyn Mounter) -> io::Result<()> {
    let mut mounts = mounts_under(dir)?;
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    // A path listed twice holds stacked mounts: unmount it twice.
    for m in &mounts {
        mounter
            .unmount(m)
            .map_err(|e| io::Error::new(e.kind(), format!("unmount {}: {e}", m.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount2_is_tried_only_with_options_that_fit_its_page() {
        assert!(classic_mount_allowed(MOUNT_DATA_MAX, 40, "fsopen: ENOSYS").is_ok());
        let err = classic_mount_allowed(13_000, 128, "fsopen: ENOSYS").unwrap_err();
        let msg = err.to_string();
        for want in [
            "128 layers",
            "13000 bytes",
            "4095",
            "lowerdir+",
            "fsopen: ENOSYS",
        ] {
            assert!(msg.contains(want), "{want:?} not in {msg}");
        }
    }

    /// The real thing: an overlay of 128 layers whose options are three pages
    /// long, mounted, with its first and last layer and a whiteout seen in order.
    #[test]
    fn system_mounter_mounts_128_layers_whose_options_exceed_a_page() {
        if !nix::unistd::geteuid().is_root() {
            return crate::testing::cannot_run("mounting an overlay needs root");
        }
        let tmp = tempfile::tempdir().unwrap();
        let long = tmp
            .path()
            .join("a-store-whose-path-is-as-long-as-a-real-one-is/layers");
        let lower: Vec<PathBuf> = (0..128)
            .map(|i| {
                let l = long.join(format!("{i:064x}"));
                fs::create_dir_all(&l).unwrap();
                fs::write(l.join(format!("f{i}")), i.to_string()).unwrap();
                l
            })
            .collect();
        fs::write(lower[5].join("hidden"), "").unwrap();
        // An overlay whiteout (a 0/0 character device) in a higher layer.
        nix::sys::stat::mknod(
            &lower[100].join("hidden"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
            0,
        )
        .unwrap();
        let (upper, work, target) = (
            tmp.path().join("upper"),
            tmp.path().join("work"),
            tmp.path().join("rootfs"),
        );
        for d in [&upper, &work, &target] {
            fs::create_dir(d).unwrap();
        }
        let options = crate::run_plan::SetupStep::overlay_options(&lower, &upper, &work);
        assert!(options.len() > 3 * 4096, "{}", options.len());
        SystemMounter.mount_overlay(&target, &options).unwrap();
        let seen = (
            fs::read_to_string(target.join("f0")),
            fs::read_to_string(target.join("f127")),
            target.join("hidden").exists(),
        );
        SystemMounter.unmount(&target).unwrap();
        let (first, last, hidden) = seen;
        assert_eq!(
            (first.unwrap(), last.unwrap(), hidden),
            ("0".into(), "127".into(), false)
        );
    }

    #[test]
    fn system_mounter_names_the_missing_layer() {
        if !nix::unistd::geteuid().is_root() {
            return crate::testing::cannot_run("mounting an overlay needs root");
        }
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        for d in ["l0", "upper", "work", "rootfs"] {
            fs::create_dir(t.join(d)).unwrap();
        }
        let lower = [t.join("l0"), t.join("gone")];
        let options =
            crate::run_plan::SetupStep::overlay_options(&lower, &t.join("upper"), &t.join("work"));
        let err = SystemMounter
            .mount_overlay(&t.join("rootfs"), &options)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert!(
            err.to_string()
                .contains(&format!("lowerdir+ {}", t.join("gone").display())),
            "{err}"
        );
        assert!(!is_mount_point(&t.join("rootfs")).unwrap());
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/a\040b\011c"), "/a b\tc");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
    }
}
