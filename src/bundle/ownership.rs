//! `fsGroup` on a volume that holds files already (a persistentVolumeClaim's
//! local volume): the kubelet's `SetVolumeOwnership` (pkg/volume/volume_linux.go).
//! Every file and directory is given the group, group read and write (read only
//! for a read-only mount) and, for directories, group search and setgid;
//! symlinks get the group but no chmod, which would go through to their target.
//!
//! The volume's files are a container's: any name in it may be swapped for a
//! symlink while the walk runs. So the walk never resolves a path: each entry is
//! opened relative to its directory's descriptor with `O_NOFOLLOW` (directories
//! with `O_DIRECTORY`, the rest with `O_PATH`), and changed through that
//! descriptor, so what is changed is what was opened, inside the volume.
//! A mount inside the volume (another device) is neither changed nor entered.
//! As the kubelet's `changeFilePermission`, an entry that cannot be changed
//! is logged and the walk goes on; only the root's failure fails the start.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};
use nix::unistd::Gid;

/// The kubelet's masks: group read and write (`rwMask`), read only (`roMask`),
/// group search on directories (`execMask`).
const RW_MASK: u32 = 0o660;
const RO_MASK: u32 = 0o440;
const EXEC_MASK: u32 = 0o110;
/// How deep the walk goes: each level holds two descriptors (the directory
/// read, and one to open its entries at), well under a process's usual 1024.
pub const MAX_DEPTH: usize = 128;

/// Whether the whole volume is walked or only when its root shows it was not
/// done (`fsGroupChangePolicy: OnRootMismatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Always,
    OnRootMismatch,
}

/// Gives `root` and everything under it the group `gid` as the kubelet does.
/// Returns whether it walked (OnRootMismatch skips a root that is right).
pub fn set_volume_ownership(
    root: &Path,
    gid: u32,
    read_only: bool,
    policy: Policy,
) -> io::Result<bool> {
    // The root is podshim's own directory (a claim's `data`): opened without
    // following a link at its last name.
    let fd = nix::fcntl::open(
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let st = fstat(&fd)?;
    if policy == Policy::OnRootMismatch && !requires_change(&st, gid, read_only) {
        return Ok(false);
    }
    change(fd.as_fd(), &st, gid, read_only)?;
    let at = Walk {
        root,
        dev: st.st_dev,
        gid,
        read_only,
    };
    at.walk(fd, Path::new(""), 1)?;
    Ok(true)
}

/// The kubelet's `requiresPermissionChange`: the root's group, its group
/// permissions and its setgid bit.
fn requires_change(st: &FileStat, gid: u32, read_only: bool) -> bool {
    if st.st_gid != gid {
        return true;
    }
    let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    if !is_dir {
        return true;
    }
    let want = (if read_only { RO_MASK } else { RW_MASK }) | EXEC_MASK;
    let perm = st.st_mode & 0o777;
    perm & want != want || st.st_mode & libc::S_ISGID == 0
}

/// The group, then (for all but symlinks) the mode with the masks added, on
/// the file `fd` refers to.
fn change(fd: BorrowedFd<'_>, st: &FileStat, gid: u32, read_only: bool) -> io::Result<()> {
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    // AT_EMPTY_PATH: the descriptor's own file, an O_PATH one included (a
    // symlink opened with O_NOFOLLOW is the link itself: lchown).
    nix::unistd::fchownat(
        fd,
        "",
        None,
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )?;
    if kind == SFlag::S_IFLNK {
        return Ok(());
    }
    let mut mask = if read_only { RO_MASK } else { RW_MASK };
    if kind == SFlag::S_IFDIR {
        mask |= libc::S_ISGID | EXEC_MASK;
    }
    let mode = (st.st_mode & 0o7777) | mask;
    // An O_PATH descriptor takes no fchmod: its /proc/self/fd link names the
    // same inode (the kernel's magic link, not a path walk).
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    std::fs::set_permissions(link, std::os::unix::fs::PermissionsExt::from_mode(mode))
}

/// One volume's walk: its root (named in warnings), its device, the group.
struct Walk<'a> {
    root: &'a Path,
    dev: u64,
    gid: u32,
    read_only: bool,
}

impl Walk<'_> {
    /// The entries of the directory `fd` (at `rel` in the volume), depth first,
    /// on the volume's own device.
    fn walk(&self, fd: OwnedFd, rel: &Path, depth: usize) -> io::Result<()> {
        let Walk {
            root,
            dev,
            gid,
            read_only,
        } = *self;
        // A container may nest directories without end: what lies deeper is
        // left as it is, with a warning, and the start goes on.
        if depth > MAX_DEPTH {
            tracing::warn!(
                "fsGroup {gid}: {}: deeper than {MAX_DEPTH} directories: left as it is",
                root.join(rel).display()
            );
            return Ok(());
        }
        // Read through a second descriptor: `fd` stays free to open entries at.
        let entries = Dir::from_fd(fd.as_fd().try_clone_to_owned()?)?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if is_dot(name) {
                continue;
            }
            let path = rel.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
            let warn = |e: &dyn std::fmt::Display| {
                tracing::warn!("fsGroup {gid}: {}: {e}", root.join(&path).display());
            };
            let opened = match open_entry(fd.as_fd(), name) {
                Ok(o) => o,
                Err(e) => {
                    warn(&e);
                    continue;
                }
            };
            let (fd, is_dir) = match opened {
                Entry::Gone => continue,
                Entry::Dir(sub) => (sub, true),
                Entry::Other(other) => (other, false),
            };
            let st = match fstat(&fd) {
                Ok(st) => st,
                Err(e) => {
                    warn(&e);
                    continue;
                }
            };
            // A mount point: another filesystem's, not the volume's.
            if st.st_dev != dev {
                continue;
            }
            if let Err(e) = change(fd.as_fd(), &st, gid, read_only) {
                warn(&e);
            }
            if is_dir {
                self.walk(fd, &path, depth + 1)?;
            }
        }
        Ok(())
    }
}

enum Entry {
    /// Removed since the directory was read.
    Gone,
    Dir(OwnedFd),
    Other(OwnedFd),
}

/// `name` in `at`, never through a symlink: a directory as a directory, the
/// rest (a symlink too) by an O_PATH descriptor.
fn open_entry(at: BorrowedFd<'_>, name: &CStr) -> io::Result<Entry> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match openat(at, name, flags, Mode::empty()) {
        Ok(fd) => return Ok(Entry::Dir(fd)),
        Err(nix::errno::Errno::ENOENT) => return Ok(Entry::Gone),
        // Not a directory, or a symlink (ELOOP): opened as what it is.
        Err(nix::errno::Errno::ENOTDIR | nix::errno::Errno::ELOOP) => {}
        Err(e) => return Err(e.into()),
    }
    match openat(
        at,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(Entry::Other(fd)),
        Err(nix::errno::Errno::ENOENT) => Ok(Entry::Gone),
        Err(e) => Err(e.into()),
    }
}

fn is_dot(name: &CStr) -> bool {
    matches!(name.to_bytes(), b"." | b"..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }
    fn gid(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().gid()
    }

    #[test]
    fn every_file_and_directory_gets_the_group_and_group_access_as_the_kubelet_gives() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), "x").unwrap();
        std::fs::set_permissions(root.join("a/b/f"), PermissionsExt::from_mode(0o600)).unwrap();
        std::fs::set_permissions(root.join("a"), PermissionsExt::from_mode(0o700)).unwrap();
        assert!(set_volume_ownership(&root, 4242, false, Policy::Always).unwrap());
        for p in [
            &root,
            &root.join("a"),
            &root.join("a/b"),
            &root.join("a/b/f"),
        ] {
            assert_eq!(gid(p), 4242, "{}", p.display());
        }
        assert_eq!(mode(&root.join("a")), 0o2770);
        assert_eq!(mode(&root.join("a/b/f")), 0o660);
        // Read-only: read for the group, no write added.
        std::fs::set_permissions(root.join("a/b/f"), PermissionsExt::from_mode(0o600)).unwrap();
        set_volume_ownership(&root, 4243, true, Policy::Always).unwrap();
        assert_eq!(mode(&root.join("a/b/f")), 0o640);
        assert_eq!(gid(&root.join("a/b/f")), 4243);
    }

    #[test]
    fn a_symlink_in_the_volume_is_given_the_group_itself_and_its_target_is_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "s").unwrap();
        std::fs::set_permissions(outside.join("secret"), PermissionsExt::from_mode(0o600)).unwrap();
        let root = tmp.path().join("data");
        std::fs::create_dir(&root).unwrap();
        // The attack: links out of the volume, to a file and to a directory.
        symlink(outside.join("secret"), root.join("to-file")).unwrap();
        symlink(&outside, root.join("to-dir")).unwrap();
        set_volume_ownership(&root, 4242, false, Policy::Always).unwrap();
        assert_eq!(gid(&root.join("to-file")), 4242);
        assert_eq!(gid(&outside.join("secret")), 0);
        assert_eq!(mode(&outside.join("secret")), 0o600);
        assert_eq!(gid(&outside), 0);
    }

    #[test]
    fn on_root_mismatch_skips_a_volume_whose_root_is_right() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("f"), "x").unwrap();
        assert!(set_volume_ownership(&root, 4242, false, Policy::OnRootMismatch).unwrap());
        std::fs::set_permissions(root.join("f"), PermissionsExt::from_mode(0o600)).unwrap();
        // The root has the group, rw, search and setgid: the files are left.
        assert!(!set_volume_ownership(&root, 4242, false, Policy::OnRootMismatch).unwrap());
        assert_eq!(mode(&root.join("f")), 0o600);
        // Another group: walked again.
        assert!(set_volume_ownership(&root, 4343, false, Policy::OnRootMismatch).unwrap());
        assert_eq!(mode(&root.join("f")), 0o660);
    }

    #[test]
    fn a_mount_inside_the_volume_is_neither_changed_nor_entered() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        let m = root.join("m");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(root.join("f"), "x").unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &m,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("mode=0700"),
        )
        .unwrap();
        std::fs::write(m.join("inside"), "y").unwrap();
        let result = set_volume_ownership(&root, 4242, false, Policy::Always);
        let (m_gid, inside_gid) = (gid(&m), gid(&m.join("inside")));
        nix::mount::umount(&m).unwrap();
        result.unwrap();
        assert_eq!(gid(&root.join("f")), 4242);
        assert_eq!((m_gid, inside_gid), (0, 0));
    }

    #[test]
    fn a_root_that_is_a_symlink_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        symlink(tmp.path().join("real"), tmp.path().join("data")).unwrap();
        assert!(set_volume_ownership(&tmp.path().join("data"), 1, false, Policy::Always).is_err());
    }

    #[test]
    fn a_volume_deeper_than_the_bound_is_walked_to_the_bound_and_the_start_goes_on() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        let mut p = root.clone();
        for _ in 0..MAX_DEPTH + 2 {
            p.push("d");
        }
        std::fs::create_dir_all(&p).unwrap();
        // A container's nesting does not fail every later start (nor
        // overflow the stack): the walk stops at the bound.
        assert!(set_volume_ownership(&root, 4242, false, Policy::Always).unwrap());
        let mut at = root.clone();
        for depth in 0..=MAX_DEPTH + 2 {
            let gid = std::fs::metadata(&at).unwrap().gid();
            assert_eq!(gid == 4242, depth <= MAX_DEPTH, "depth {depth}");
            at.push("d");
        }
    }
}
